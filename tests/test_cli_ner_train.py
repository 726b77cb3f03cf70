"""Issue 13's one convention, for ner.py and train.py: Hugging Face's flag names (--do_train/--do_eval/--do_predict,
--text_column_name, --max_predict_samples, --config_name, --tokenizer_name) with the old spellings as aliases,
column inference for JSON ({"words", "ner"} as HF's fixtures have it), IOBES scored by seqeval's strict mode, and
train.py's dev predictions beside the gold labels."""
import json

import pytest

import fixtures_ner
import ner
import tiny
import train

pytestmark = pytest.mark.usefixtures("datasets_cache")


@pytest.mark.parametrize("module", [ner, train])
@pytest.mark.parametrize("hf, old", [("--text_column_name", "--text_column"),
                                     ("--label_column_name", "--label_column")])
def test_hf_spellings_and_aliases_share_a_destination(module, hf, old):
    if module is train:
        old = {"--text_column": "--text_field", "--label_column": "--label_field"}[old]
    base = ["--model", "m", "--train_file", "x"]
    dest = hf[2:]
    assert getattr(module.parse_args([*base, hf, "field"]), dest) == "field"
    assert getattr(module.parse_args([*base, old, "field"]), dest) == "field"
    assert not hasattr(module.parse_args(base), old[2:])


@pytest.mark.parametrize("module", [ner, train])
def test_hf_flags_exist_and_files_decide_without_them(module):
    args = module.parse_args(["--model", "m", "--train_file", "x", "--validation_file", "d", "--config_name", "c",
                              "--tokenizer_name", "t", "--max_predict_samples", "5"])
    assert (args.do_train, args.do_eval, args.do_predict) == (True, True, False)
    assert (args.config_name, args.tokenizer_name, args.max_predict_samples) == ("c", "t", 5)
    args = module.parse_args(["--model", "m", "--do_train", "--do_eval", "--train_file", "x", "--validation_file", "d"])
    assert (args.do_train, args.do_eval, args.do_predict) == (True, True, False)
    args = module.parse_args(["--model", "m", "--do_eval", "--do_predict", "--validation_file", "d", "--test_file", "t"])
    assert (args.do_train, args.do_eval, args.do_predict) == (False, True, True)


@pytest.mark.parametrize("module", [ner, train])
@pytest.mark.parametrize("argv, message", [
    (["--do_train", "--validation_file", "d"], "--do_train needs --train_file"),
    (["--do_predict", "--validation_file", "d"], "--do_predict needs --test_file"),
    (["--do_eval", "--train_file", "x", "--validation_file", "d"], "without --do_train evaluate"),
])
def test_do_flags_without_their_files_are_one_line(module, argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        module.parse_args(["--model", "m", *argv])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and message in err and "\n" not in err


def test_ner_old_do_eval_with_a_test_file_still_predicts_it(capsys):
    args = ner.parse_args(["--model", "m", "--do_eval", "--validation_file", "d", "--test_file", "t"])
    assert (args.do_train, args.do_eval, args.do_predict) == (False, True, True)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("notice: --do_eval with --test_file also predicts")


def test_iobes_is_scored_strictly():
    gold, predicted = [["B-PER", "E-PER", "O", "S-LOC"]], [["B-PER", "I-PER", "O", "S-LOC"]]  # PER never ends
    assert ner.score(gold, predicted, "IOB2")["f1"] == 1.0  # conlleval's leniency: I- ends an entity too
    strict = ner.score(gold, predicted, "IOBES")
    assert strict["precision"] == 1.0 and strict["recall"] == 0.5 and strict["PER_recall"] == 0.0
    assert ner.scoring("IOBES") == "seqeval strict (IOBES)" and ner.scoring("IOB1") == "conlleval (IOB1)"


def write_hf_json(path, sentences, tags=None):
    """The HF test fixture layout: {"words": [...], "ner": [...]} per line."""
    with open(path, "w") as f:
        for i, s in enumerate(sentences):
            f.write(json.dumps({"id": str(i), "words": [w for w, _ in s],
                                "ner": tags(s) if tags else [t for _, t in s]}) + "\n")
    return path


def iobes(sentence):
    tags = [t for _, t in sentence] + ["O"]
    out = []
    for tag, following in zip(tags, tags[1:]):
        ends = following[:2] != "I-" or following[2:] != tag[2:]
        out.append(tag if tag == "O" else
                   ("S-" if ends else "B-") + tag[2:] if tag.startswith("B-") else ("E-" if ends else "I-") + tag[2:])
    return out


def test_ner_hf_layout_do_train_do_eval_do_predict(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    dev = write_hf_json(data / "dev.json", fixtures_ner.sentences(12, 1), iobes)
    texts = [" ".join(w for w, _ in s) for s in fixtures_ner.sentences(60, 0)]
    model = tiny.build_model("bert", tmp_path / "bert", texts=texts)
    out = tmp_path / "out"
    capsys.readouterr()
    train_file = write_hf_json(data / "train.json", fixtures_ner.sentences(60, 0), iobes)
    results = ner.main([str(a) for a in [
        "--model", model, "--do_train", "--do_eval", "--do_predict", "--train_file", train_file,
        "--validation_file", dev, "--test_file", write_hf_json(data / "test-iobes.json", fixtures_ner.sentences(12, 2),
                                                               iobes),
        "--max_predict_samples", 5, "--max_train_steps", 2, "--report_to", "none", "--output_dir", out,
        "--config_name", model, "--tokenizer_name", model]])
    stdout = capsys.readouterr().out
    assert stdout.count("notice: words from column 'words', tags from column 'ner'") == 1, stdout
    evaluated = json.loads((out / "eval_results.json").read_text())
    assert evaluated["scheme"] == "IOBES" and evaluated["scoring"] == "seqeval strict (IOBES)"
    assert results["test"]["sentences"] == 5 and json.loads((out / "test_results.json").read_text())["sentences"] == 5
    assert (out / "predictions_test.txt").read_text().count("\n\n") == 5
    # evaluation only, HF's spelling: the model as it is, the same dev results; no test prediction, no training
    again = ner.main([str(a) for a in ["--model", out / "best", "--do_eval", "--validation_file", dev,
                                       "--output_dir", tmp_path / "eval"]])
    assert set(again) == {"dev"} and again["dev"] == pytest.approx(results["dev"], abs=1e-5)
    assert not (tmp_path / "eval" / "test_results.json").exists() and not (tmp_path / "eval" / "best").exists()


def test_train_writes_dev_predictions_with_gold_and_evaluates_alone(tiny_bert, topic_data, tmp_path):
    out = tmp_path / "out"
    train.main([str(a) for a in ["--model", tiny_bert, "--do_train", "--do_eval", "--do_predict",
                                 "--train_file", topic_data / "train.jsonl", "--validation_file",
                                 topic_data / "valid.jsonl", "--test_file", topic_data / "test.jsonl",
                                 "--text_field", "text", "--max_train_steps", 2, "--max_predict_samples", 7,
                                 "--report_to", "none", "--output_dir", out]])
    gold = [json.loads(l)["labels"] for l in (topic_data / "valid.jsonl").read_text().splitlines() if l.strip()]
    dev = [json.loads(l) for l in (out / "predictions_dev.jsonl").read_text().splitlines()]
    assert [sorted(r["gold"]) for r in dev] == [sorted(g) for g in gold] and all("predicted" in r for r in dev)
    assert len((out / "predictions_test.jsonl").read_text().splitlines()) == 7
    # evaluate best/ on its own: the same dev results, nothing trained
    alone = train.main([str(a) for a in ["--model", out / "best", "--do_eval", "--validation_file",
                                         topic_data / "valid.jsonl", "--output_dir", tmp_path / "eval",
                                         "--report_to", "none"]])
    assert alone["dev"] == pytest.approx(json.loads((out / "eval_results.json").read_text()), abs=1e-5)
    assert (tmp_path / "eval" / "predictions_dev.jsonl").read_text() == (out / "predictions_dev.jsonl").read_text()
    assert not (tmp_path / "eval" / "best").exists()


def test_columns_inferred_as_hf_does(capsys):
    args = ner.parse_args(["--model", "m", "--train_file", "x"])
    ner.NOTICED.clear()
    assert ner.infer_columns({"id": "1", "toks": ["EU"], "lab": ["B-ORG"]}, args) == ("toks", "lab")
    assert ner.infer_columns({"words": ["EU"], "tags": ["B-ORG"], "tokens": ["eu"]}, args) == ("tokens", "tags")
    assert ner.infer_columns({"id": "2", "toks": ["EU"], "lab": ["B-ORG"]}, args) == ("toks", "lab")
    assert capsys.readouterr().out.count("notice: words from column 'toks', tags from column 'lab'") == 1
    given = ner.parse_args(["--model", "m", "--train_file", "x", "--text_column", "toks", "--label_column", "lab"])
    assert ner.infer_columns({"toks": ["EU"], "lab": ["B-ORG"], "words": []}, given) == ("toks", "lab")
    assert capsys.readouterr().out == ""  # chosen, not inferred: nothing to say
