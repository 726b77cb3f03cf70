"""ner.py: CoNLL reading and tagging schemes, first-sub-token alignment (WordPiece and byte-level BPE),
training and evaluation on tiny models, predictions aligned with the input, the pipeline, --do_eval alone,
truncation, the features cache, bad input (one line, exit 2, nothing overwritten) and the real CoNLL-2003 files."""
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED
from seqeval.metrics import f1_score
from seqeval.metrics.sequence_labeling import get_entities

import fixtures_ner
import ner
import tiny

CONLL = SHARED / "conll2003"
LABELS = ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
pytestmark = pytest.mark.usefixtures("datasets_cache")  # ner.main's default --cache_dir is under it


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return fixtures_ner.write_data(tmp_path_factory.mktemp("ner-data"), sizes=(300, 80, 80))


def texts(data):
    return (data / "sentences.txt").read_text().splitlines()


@pytest.fixture(scope="module")
def bert(tmp_path_factory, data):
    return tiny.build_model("bert", tmp_path_factory.mktemp("ner-bert"), texts=texts(data))


@pytest.fixture(scope="module")
def roberta(tmp_path_factory, data):
    return tiny.build_model("roberta", tmp_path_factory.mktemp("ner-roberta"), texts=texts(data))


def args_for(model, data, out, *extra):
    return ["--model", str(model), "--train_file", str(data / "train.txt"), "--validation_file",
            str(data / "dev.txt"), "--output_dir", str(out), "--report_to", "none", "--learning_rate", "3e-3",
            "--per_device_train_batch_size", "16", *map(str, extra)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, bert, data):
    """Two epochs on the synthetic data: good enough to find entities, not yet perfect."""
    out = tmp_path_factory.mktemp("ner-run") / "out"
    results = ner.main(args_for(bert, data, out, "--num_train_epochs", 2, "--test_file", data / "test.txt"))
    return out, results


def conll_sentences(path):
    """(words, tags) per sentence, read independently of ner.py."""
    sentences, current = [], []
    for line in Path(path).read_text().splitlines():
        cols = line.split()
        if cols and cols[0] != "-DOCSTART-":
            current.append((cols[0], cols[-1]))
        elif current:
            sentences.append(current)
            current = []
    return sentences + ([current] if current else [])


def read_json(path):
    return json.loads(Path(path).read_text())


def prediction_rows(out, split="dev"):
    """predictions_{split}.txt as sentences of [word, gold, predicted]."""
    return [[line.split() for line in block.splitlines()]
            for block in (out / f"predictions_{split}.txt").read_text().split("\n\n") if block.strip()]


def assert_first_subtoken_argmax(out, n=10):
    """The predicted column is best/'s argmax on each word's first sub-token, recomputed here."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    model = AutoModelForTokenClassification.from_pretrained(out / "best").eval()
    tokenizer = AutoTokenizer.from_pretrained(out / "best")
    for sentence in prediction_rows(out)[:n]:
        enc = tokenizer([r[0] for r in sentence], is_split_into_words=True, return_tensors="pt")
        with torch.no_grad():
            ids = model(**enc).logits[0].argmax(-1).tolist()
        first = {w: p for p, w in reversed(list(enumerate(enc.word_ids()))) if w is not None}
        assert [model.config.id2label[ids[first[w]]] for w in range(len(sentence))] == [r[2] for r in sentence]


# --- reading and alignment

def test_reading_skips_docstart_detects_the_scheme_and_orders_labels(data, tmp_path):
    train = ner.read_file(str(data / "train.txt"), ner.parse_args(["--model", "m", "--train_file", "x"]))
    assert [list(zip(s["words"], s["tags"])) for s in train] == conll_sentences(data / "train.txt")
    assert len(train) == 300 and not any("-DOCSTART-" in s["words"] for s in train)
    assert ner.scheme(train) == "IOB2" and ner.label_list(train) == LABELS
    iob1 = fixtures_ner.write_data(tmp_path / "iob1", sizes=(300, 10, 10), scheme="iob1")
    train1 = ner.read_file(str(iob1 / "train.txt"), ner.parse_args(["--model", "m", "--train_file", "x"]))
    assert ner.scheme(train1) == "IOB1"
    # the same entities either way: B- appears in IOB1 only where two entities of a type touch
    assert [get_entities(s["tags"]) for s in train1] == [get_entities(s["tags"]) for s in train]
    assert {"B-LOC", "B-MISC", "I-PER"} <= set(ner.label_list(train1)) and "B-PER" not in ner.label_list(train1)


@pytest.mark.parametrize("arch", ["bert", "roberta"])
def test_first_subtoken_alignment(arch, tiny_bert, roberta):
    # tiny_bert's WordPiece vocabulary comes from other text, so names split into several pieces
    tokenizer = ner.load_tokenizer(tiny_bert if arch == "bert" else roberta)
    label2id = {t: i for i, t in enumerate(LABELS)}
    sentence = {"words": ["Peter", "Blackburn", "visited", "Sao", "Paulo", "."],
                "tags": ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O"]}
    (first,), (kept,) = ner.encode([sentence], tokenizer, label2id, 64)
    (every,), _ = ner.encode([sentence], tokenizer, label2id, 64, label_all_tokens=True)
    word_ids = tokenizer(sentence["words"], is_split_into_words=True).word_ids()
    assert len(word_ids) > len(sentence["words"]) + 4  # several words split into sub-tokens
    assert kept == list(range(6))
    previous = None
    for position, w in enumerate(word_ids):
        if w is None:  # specials: ignored in both
            assert first["labels"][position] == every["labels"][position] == -100
        elif w != previous:
            assert first["labels"][position] == every["labels"][position] == label2id[sentence["tags"][w]]
        else:  # continuation: ignored, or with label_all_tokens the word's tag with B- made I-
            assert first["labels"][position] == -100
            assert every["labels"][position] == label2id[sentence["tags"][w].replace("B-", "I-")]
        previous = w
    if arch == "roberta":  # add_prefix_space: every word starts with the byte-level space mark
        assert tokenizer.add_prefix_space
        pieces = tokenizer.convert_ids_to_tokens(first["input_ids"])
        starts = [p for p, w, prev in zip(pieces, word_ids, [None] + word_ids) if w is not None and w != prev]
        assert all(p.startswith("Ġ") for p in starts), starts


# --- training and evaluation

def test_end_to_end_files_predictions_and_f1(trained, bert, data):
    out, results = trained
    for name in ("eval_results.json", "test_results.json", "predictions_dev.txt", "predictions_test.txt",
                 "log.json", "best/config.json", "last/config.json"):
        assert (out / name).exists(), name
    config = read_json(out / "best" / "config.json")
    assert config["id2label"] == {str(i): t for i, t in enumerate(LABELS)}
    assert config["label2id"] == {t: i for i, t in enumerate(LABELS)}

    for split, name in (("dev", "eval"), ("test", "test")):
        gold = conll_sentences(data / f"{split}.txt")
        rows = prediction_rows(out, split)
        assert [[(r[0], r[1]) for r in s] for s in rows] == gold  # one line per input word, same sentences
        predicted = [[r[2] for r in s] for s in rows]
        saved = read_json(out / f"{name}_results.json")
        assert saved == pytest.approx(results[split])
        assert saved["f1"] == pytest.approx(f1_score([[t for _, t in s] for s in gold], predicted))
        assert saved["entities"] == len(get_entities([[t for _, t in s] for s in gold]))
        assert saved["scheme"] == "IOB2" and saved["words_cut"] == 0 and saved["sentences"] == 80
        assert saved["entities"] == sum(saved[f"{k}_number"] for k in ("LOC", "MISC", "ORG", "PER"))
    assert results["dev"]["f1"] > 0.3  # learned something

    # best/ is chosen by dev F1, and the predictions are best/'s first-sub-token argmax
    log = read_json(out / "log.json")
    f1s = [log[f"Epoch {e}"]["valid_log"]["f1"] for e in (0, 1)]
    assert read_json(out / "training_state.json")["best_metric"] == max(f1s) == pytest.approx(results["dev"]["f1"])
    assert_first_subtoken_argmax(out)


def test_pipeline_returns_entity_names(trained):
    from transformers import pipeline

    out, _ = trained
    tagger = pipeline("token-classification", model=str(out / "best"), aggregation_strategy="simple", device="cpu")
    entities = tagger("Peter Blackburn visited New York on Monday . Reuters said profits rose in Paris .")
    found = [(e["entity_group"], e["word"]) for e in entities]
    assert {group for group, _ in found} <= {"PER", "LOC", "ORG", "MISC"}, found  # names, not LABEL_n or B-/I-
    assert ("PER", "peter blackburn") in found, found  # B-PER + I-PER merged into one entity


def test_do_eval_alone_reproduces_the_results(trained, data, tmp_path):
    out, results = trained
    evaluated = ner.main(["--do_eval", "--model", str(out / "best"), "--validation_file", str(data / "dev.txt"),
                          "--test_file", str(data / "test.txt"), "--output_dir", str(tmp_path / "eval")])
    for split, name in (("dev", "eval"), ("test", "test")):
        assert evaluated[split] == pytest.approx(results[split], abs=1e-5)
        assert read_json(tmp_path / "eval" / f"{name}_results.json") == pytest.approx(results[split], abs=1e-5)
        assert (tmp_path / "eval" / f"predictions_{split}.txt").read_text() == \
            (out / f"predictions_{split}.txt").read_text()
    assert not (tmp_path / "eval" / "best").exists()


def test_label_all_tokens_changes_training_labels_not_evaluation(tiny_bert, data, tmp_path):
    tokenizer = ner.load_tokenizer(tiny_bert)
    args = ner.parse_args(["--model", "m", "--train_file", "x"])
    train = ner.read_file(str(data / "train.txt"), args)
    label2id = {t: i for i, t in enumerate(LABELS)}
    count = lambda features: sum(l != -100 for f in features for l in f["labels"])
    every, first = (ner.encode(train, tokenizer, label2id, 128, label_all_tokens=a)[0] for a in (True, False))
    assert count(every) > 1.3 * count(first)
    # tiny_bert splits the names into pieces; a barely trained head still predicts varied tags, so scoring
    # any sub-token but the first would show in the predicted column
    results = ner.main(args_for(tiny_bert, data, tmp_path / "all", "--label_all_tokens", "--max_train_steps", 2,
                                "--learning_rate", "1e-5"))
    gold = [[t for _, t in s] for s in conll_sentences(data / "dev.txt")]
    assert results["dev"]["entities"] == len(get_entities(gold))  # scored on words, as the gold file counts
    assert [[r[1] for r in s] for s in prediction_rows(tmp_path / "all")] == gold
    assert_first_subtoken_argmax(tmp_path / "all")  # not an argmax over every sub-token


def test_truncation_warns_and_predicts_o(roberta, data, tmp_path, capsys):
    out = tmp_path / "cut"
    results = ner.main(args_for(roberta, data, out, "--max_seq_length", 8, "--max_train_steps", 3))
    tokenizer = ner.load_tokenizer(roberta)
    cut, hit = 0, 0
    for sentence in conll_sentences(data / "dev.txt"):  # words whose first sub-token lies past position 6
        word_ids = tokenizer([w for w, _ in sentence], is_split_into_words=True).word_ids()
        first = {w: p for p, w in reversed(list(enumerate(word_ids))) if w is not None}
        cut, hit = cut + sum(p > 6 for p in first.values()), hit + any(p > 6 for p in first.values())
    assert cut > 100
    assert f"warning: dev: {cut} words in {hit} sentences have no sub-token within --max_seq_length 8" in \
        capsys.readouterr().err
    assert results["dev"]["words_cut"] == cut
    rows = prediction_rows(out)
    assert [[(r[0], r[1]) for r in s] for s in rows] == conll_sentences(data / "dev.txt")
    # everything after the few words that fit is O
    assert all(r[2] == "O" for s in rows for r in s[6:])


def test_iob1_input(bert, data, tmp_path, capsys):
    iob1 = fixtures_ner.write_data(tmp_path / "iob1", sizes=(300, 80, 80), scheme="iob1")
    results = ner.main(args_for(bert, iob1, tmp_path / "out", "--max_train_steps", 3))
    words = sum(map(len, conll_sentences(iob1 / "train.txt")))
    assert f"train.txt: 300 sentences, {words} words, tagging scheme IOB1" in capsys.readouterr().out
    config = read_json(tmp_path / "out" / "best" / "config.json")
    assert "B-PER" not in config["label2id"] and "B-LOC" in config["label2id"]
    assert results["dev"]["scheme"] == "IOB1"
    iob2_gold = [[t for _, t in s] for s in conll_sentences(data / "dev.txt")]
    assert results["dev"]["entities"] == len(get_entities(iob2_gold))  # the same entities as the IOB2 copy


def test_json_files_and_dataset_folders(bert, data, tmp_path):
    import datasets

    for split in ("train", "dev"):
        fixtures_ner.write_jsonl(tmp_path / f"{split}.jsonl", conll_sentences(data / f"{split}.txt"))
    results = ner.main(["--model", str(bert), "--train_file", str(tmp_path / "train.jsonl"), "--validation_file",
                        str(tmp_path / "dev.jsonl"), "--output_dir", str(tmp_path / "out"), "--report_to", "none",
                        "--max_train_steps", "2"])
    gold = [[t for _, t in s] for s in conll_sentences(data / "dev.txt")]
    assert results["dev"]["sentences"] == 80 and results["dev"]["entities"] == len(get_entities(gold))

    args = ner.parse_args(["--model", "m", "--dataset_name", str(data)])  # a folder of CoNLL files
    folder = ner.read_dataset(args)
    assert sorted(folder) == ["dev", "test", "train"] and len(folder["train"]) == 300
    # a datasets folder with integer tags: names come from the ClassLabel feature
    features = datasets.Features({"tokens": datasets.List(datasets.Value("string")),
                                  "ner_tags": datasets.List(datasets.ClassLabel(names=LABELS))})
    parquet = tmp_path / "parquet"
    parquet.mkdir()
    for split, name in (("train", "train"), ("dev", "validation")):
        rows = conll_sentences(data / f"{split}.txt")
        datasets.Dataset.from_dict({"tokens": [[w for w, _ in s] for s in rows],
                                    "ner_tags": [[LABELS.index(t) for _, t in s] for s in rows]},
                                   features=features).to_parquet(str(parquet / f"{name}.parquet"))
    loaded = ner.read_dataset(ner.parse_args(["--model", "m", "--dataset_name", str(parquet)]))
    assert [(s["words"], s["tags"]) for s in loaded["dev"]] == [(s["words"], s["tags"]) for s in folder["dev"]]


# --- the features cache

def test_second_run_reads_the_features_cache(bert, data, tmp_path, monkeypatch, capsys):
    run = lambda out: ner.main(args_for(bert, data, out, "--max_train_steps", 3, "--test_file", data / "test.txt",
                                        "--cache_dir", tmp_path / "cache"))
    first = run(tmp_path / "a")
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "cache").iterdir()) == ["dev", "test", "train"]
    monkeypatch.setattr(ner, "encode", lambda *a, **k: pytest.fail("tokenized again"))
    capsys.readouterr()
    second = run(tmp_path / "b")
    assert capsys.readouterr().out.count("features loaded from") == 3
    assert {split: pytest.approx(second[split]) for split in second} == first  # same features, seed: same model
    for name in ("predictions_dev.txt", "predictions_test.txt"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()


def featurizing(model, tmp_path):
    """What ner.featurize takes beside the sentences: args (the features cache under tmp_path), a set-up accelerator,
    the model's tokenizer and LABELS' ids."""
    import core

    args = ner.parse_args(["--model", str(model), "--train_file", "x", "--output_dir", str(tmp_path),
                           "--cache_dir", str(tmp_path / "cache")])
    return args, core.setup(args, training=False), ner.load_tokenizer(model), {t: i for i, t in enumerate(LABELS)}


def test_features_cache_is_keyed_on_content_and_settings(bert, roberta, data, tmp_path, monkeypatch):
    args, accelerator, tokenizer, label2id = featurizing(bert, tmp_path)
    dev = tmp_path / "dev.txt"
    dev.write_text((data / "dev.txt").read_text())
    read = lambda path, n=None: ner.read_file(str(path), args)[:n]

    def featurize(sentences, tokenizer=tokenizer, label2id=label2id, max_seq_length=64, label_all_tokens=False,
                  args=args):
        return ner.featurize(sentences, "dev", tokenizer, label2id, max_seq_length, label_all_tokens, args,
                             accelerator)
    features, kept = featurize(read(dev))
    direct, direct_kept = ner.encode(read(dev), tokenizer, label2id, 64)  # what ner.py encoded before the cache
    assert features[:] == {k: [f[k] for f in direct] for k in direct[0]} and [list(k) for k in kept] == direct_kept
    monkeypatch.setattr(ner, "encode", lambda *a, **k: pytest.fail("tokenized again"))
    copy = tmp_path / "copy" / "dev.txt"
    copy.parent.mkdir()
    copy.write_text(dev.read_text())
    for sentences in (read(dev), read(copy)):  # keyed on the content, not the path
        again, kept_again = featurize(sentences)
        assert again[:] == features[:] and [list(k) for k in kept_again] == direct_kept
    # an edit that keeps the file's size and time (a path + mtime key would miss it)
    stat = os.stat(dev)
    dev.write_text(set_line(3, lambda l: "Z" + l[1:])(dev.read_text()))
    os.utime(dev, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert os.stat(dev).st_size == stat.st_size and read(dev)[0]["words"][0].startswith("Z")
    other = {"max_seq_length": 32, "label_all_tokens": True, "tokenizer": ner.load_tokenizer(roberta),
             "label2id": {t: i for i, t in enumerate(reversed(LABELS))},
             "args": ner.parse_args(["--model", "m", "--train_file", "x", "--label_column", "-1",
                                     "--cache_dir", str(tmp_path / "cache")])}
    for sentences, change in [(read(dev), {}), (read(copy, 40), {})] + [(read(copy), {k: v}) for k, v in other.items()]:
        with pytest.raises(pytest.fail.Exception, match="tokenized again"):
            featurize(sentences, **change)
    # from `datasets` (no file to hash): keyed on the words and tags themselves
    rows = [{**s, "src": "conll[validation]"} for s in read(copy)]
    monkeypatch.undo()
    assert featurize(rows)[0][:] == features[:]
    monkeypatch.setattr(ner, "encode", lambda *a, **k: pytest.fail("tokenized again"))
    assert featurize([dict(s) for s in rows])[0][:] == features[:]
    rows[5] = {**rows[5], "words": ["Z" + rows[5]["words"][0], *rows[5]["words"][1:]]}
    with pytest.raises(pytest.fail.Exception, match="tokenized again"):
        featurize(rows)
    # --overwrite_cache tokenizes again
    with pytest.raises(pytest.fail.Exception, match="tokenized again"):
        featurize(read(copy), args=ner.parse_args(["--model", "m", "--train_file", "x", "--overwrite_cache",
                                                   "--cache_dir", str(tmp_path / "cache")]))


# --- bad input: one line naming file, line and problem; exit 2; a run already in output_dir untouched

def set_line(n, new):
    """An edit: line n (1-based) replaced by new (line 3 is the first word of each synthetic file)."""
    return lambda text: "\n".join(new(l) if i == n else l for i, l in enumerate(text.split("\n"), 1))


RECORD = '{"tokens": ["EU"], "ner_tags": ["B-ORG"]}\n'
BAD = {  # file edited, edit, extra flags, what the error line must hold
    "malformed line": ("train.txt", set_line(4, lambda l: " ".join(l.split()[:3])), [],
                       ["train.txt:4: found 3 column(s), expected 4 as on line 3"]),
    "tag missing": ("train.txt", lambda t: "EU B-ORG\nrejects O\nGerman\n\ncall O\n", [],
                    ["train.txt:3: found 1 column(s), expected 2 as on line 1"]),
    "empty file": ("dev.txt", lambda t: "", [], ["dev.txt:1: no sentences"]),
    "only DOCSTART": ("dev.txt", lambda t: "-DOCSTART- -X- -X- O\n\n", [], ["dev.txt:1: no sentences"]),
    "unseen dev tag": ("dev.txt", set_line(4, lambda l: l.rsplit(" ", 1)[0] + " B-FAC"), [],
                       ["dev.txt:4: tag 'B-FAC' is not among the training tags (O, B-LOC, I-LOC, B-MISC"]),
    "label column out of range": ("train.txt", lambda t: t, ["--label_column", "7"],
                                  ["train.txt:3: --label_column_name 7 is out of range: lines have 4 columns"]),
    "label column not a number": ("train.txt", lambda t: t, ["--label_column", "ner"],
                                  ["train.txt:1: --label_column_name 'ner' must be a column number"]),
    "label column of POS tags": ("train.txt", lambda t: t, ["--label_column", "1"],
                                 ["train.txt:3: tag 'NN", "is not O, B-TYPE or I-TYPE (wrong --label_column_name?)"]),
    "json without tokens": ("train.jsonl", lambda t: RECORD + '{"words": ["EU"], "ner_tags": ["B-ORG"]}\n', [],
                            ["train.jsonl:2: no 'tokens' field (found: words, ner_tags)"]),
    "json without tags": ("train.jsonl", lambda t: '{"tokens": ["EU"]}\n', [],
                          ["train.jsonl:1: no 'ner_tags/tags/ner/labels' field (found: tokens)"]),
    "json unknown label column": ("train.jsonl", lambda t: RECORD, ["--label_column", "ner"],
                                  ["train.jsonl:1: no 'ner' field (found: tokens, ner_tags)"]),
    "json length mismatch": ("train.jsonl", lambda t: '\n{"tokens": ["EU", "x"], "ner_tags": ["B-ORG"]}\n', [],
                             ["train.jsonl:2: 2 words but 1 tags"]),
    "json broken": ("train.jsonl", lambda t: RECORD + '{"tokens": [\n', [], ["train.jsonl:2: not valid JSON"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_fails_with_one_line(case, bert, data, tmp_path, capsys):
    name, edit, extra, message = BAD[case]
    for split in ("train", "dev"):
        (tmp_path / f"{split}.txt").write_text((data / f"{split}.txt").read_text())
    source = data / ("train.txt" if name.startswith("train") else "dev.txt")
    (tmp_path / name).write_text(edit(source.read_text()))
    out = tmp_path / "out"  # a run already there: --overwrite_output_dir must not remove it for bad input
    (out / "best").mkdir(parents=True)
    (out / "best" / "config.json").write_text("{}")
    (out / "log.json").write_text('{"steps": []}')
    (out / "eval_results.json").write_text('{"f1": 0.5}')
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    train = tmp_path / (name if name.startswith("train") else "train.txt")
    with pytest.raises(SystemExit) as e:
        ner.main(["--model", str(bert), "--train_file", str(train), "--validation_file", str(tmp_path / "dev.txt"),
                  "--output_dir", str(out), "--overwrite_output_dir", "--report_to", "none", *extra])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == err.splitlines()[-1] and err.startswith(f"error: {tmp_path}/"), err
    assert all(m in err for m in message), err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_do_eval_needs_a_model_trained_on_the_tags(bert, data, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        ner.main(["--do_eval", "--model", str(bert), "--validation_file", str(data / "dev.txt"),
                  "--output_dir", str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "dev.txt:3: tag '" in err and f"is not among {bert}'s labels (LABEL_0, LABEL_1)" in err
    assert not any(tmp_path.iterdir())


# --- the real CoNLL-2003 files

@pytest.mark.skipif(not SHARED.exists(), reason="needs ../shared/data")
def test_real_conll2003_counts_and_a_few_steps(tmp_path):
    args = ner.parse_args(["--model", "m", "--train_file", "x"])
    counts = {}
    for split in ("train", "dev", "test"):
        sentences = ner.read_file(str(CONLL / f"{split}.txt"), args)
        counts[split] = (len(sentences), sum(len(s["words"]) for s in sentences), ner.scheme(sentences))
        if split == "train":
            assert ner.label_list(sentences) == LABELS
            corpus = [" ".join(s["words"]) for s in sentences[:2000]]
    assert counts == {"train": (14041, 203621, "IOB2"), "dev": (3250, 51362, "IOB2"), "test": (3453, 46435, "IOB2")}

    model = tiny.build_model("bert", tmp_path / "tiny", texts=corpus)
    results = ner.main(["--model", str(model), "--train_file", str(CONLL / "train.txt"), "--validation_file",
                        str(CONLL / "dev.txt"), "--test_file", str(CONLL / "test.txt"), "--output_dir",
                        str(tmp_path / "out"), "--report_to", "none", "--max_train_samples", "64",
                        "--max_eval_samples", "64", "--max_train_steps", "3", "--per_device_eval_batch_size", "128"])
    assert results["dev"]["sentences"] == 64
    assert results["test"]["sentences"] == 3453 and results["test"]["entities"] == 5648  # the published count
    assert results["test"]["scheme"] == "IOB2" and np.isfinite(results["test"]["loss"])
    lines = [l for l in (tmp_path / "out" / "predictions_test.txt").read_text().splitlines() if l]
    assert len(lines) == 46435


@pytest.mark.parametrize("damage", ["truncated", "garbage", "zeroed", "missing file", "no manifest", "empty folder",
                                    "swapped", "extra file"])
def test_a_damaged_features_cache_is_rebuilt_with_a_notice(bert, data, tmp_path, capsys, damage):
    args, accelerator, tokenizer, label2id = featurizing(bert, tmp_path)
    featurize = lambda path, split: ner.featurize(ner.read_file(str(path), args), split, tokenizer, label2id, 64,
                                                  False, args, accelerator)
    features, kept = featurize(data / "dev.txt", "dev")
    features, kept = features[:], [list(k) for k in kept]  # copied: the cache is memory-mapped, and damaged below
    featurize(data / "test.txt", "test")
    folder, other = (next((tmp_path / "cache").glob(f"{split}-*")) for split in ("dev", "test"))
    arrow = next(folder.glob("*.arrow"))
    if damage == "truncated":
        arrow.write_bytes(arrow.read_bytes()[: arrow.stat().st_size // 2])
    elif damage in ("garbage", "zeroed"):  # same size, so only a checksum finds it
        size = arrow.stat().st_size
        arrow.write_bytes(os.urandom(size) if damage == "garbage" else bytes(size))
    elif damage == "missing file":
        (folder / "state.json").unlink()
    elif damage == "no manifest":
        (folder / "cache.json").unlink()
    elif damage == "empty folder":
        shutil.rmtree(folder)
        folder.mkdir()
    elif damage == "swapped":  # another key's complete, valid cache under this key's name
        shutil.rmtree(folder)
        shutil.copytree(other, folder)
    else:
        (folder / "notes.txt").write_text("left here\n")
    capsys.readouterr()
    again, kept_again = featurize(data / "dev.txt", "dev")
    printed = capsys.readouterr().out
    assert f"notice: the cache {folder} does not verify" in printed and "building it again" in printed
    assert again[:] == features and [list(k) for k in kept_again] == kept
    capsys.readouterr()
    featurize(data / "dev.txt", "dev")  # rebuilt whole: now it verifies
    assert "dev: features loaded from" in capsys.readouterr().out
