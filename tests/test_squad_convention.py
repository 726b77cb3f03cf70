"""squad.py and the Hugging Face conventions (issue 13): --do_train/--do_eval/--do_predict and --test_file (scored
when it has answers, not when it has none), --do_* inferred from the files, --evaluate_only as an alias with its
notice, predictions_dev.jsonl beside the gold answers, --max_predict_samples, and answer() / --question --context
in place of transformers' removed question-answering pipeline."""
import json

import pytest

import fixtures_squad
import squad
import tiny

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("squad-hf")
    v1 = fixtures_squad.write_squad(root / "v1", sizes=(60, 12))
    v2 = fixtures_squad.write_squad(root / "v2", sizes=(20, 6), v2=True, seed=5)
    corpus = v1["corpus"].read_text().splitlines() + v2["corpus"].read_text().splitlines()
    model = tiny.build_model("bert", root / "model", texts=corpus, dropout=0.0)
    return {"v1": v1, "v2": v2, "model": model, "root": root}


def flags(model, out, tmp_path, *extra):
    return ["--model", str(model), "--output_dir", str(out), "--report_to", "none", "--cache_dir",
            str(tmp_path / "cache"), "--max_seq_length", "40", "--doc_stride", "8", "--max_query_length", "12",
            "--learning_rate", "3e-3", "--per_device_train_batch_size", "16", *map(str, extra)]


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """--do_train alone (a validation file given but not asked for): no evaluation, best/ is the last step."""
    tmp = tmp_path_factory.mktemp("trained")
    out = tmp / "run"
    result = squad.main(["--do_train", "--train_file", str(data["v1"]["train"]), "--validation_file",
                         str(data["v1"]["dev"]), *flags(data["model"], out, tmp, "--max_train_steps", 6)])
    assert not result and not (out / "eval_results.json").exists() and (out / "best").is_dir()
    return out


def test_do_train_alone_says_what_it_did(data, tmp_path, capsys):
    out = tmp_path / "run"
    squad.main(["--do_train", "--train_file", str(data["v1"]["train"]),
                *flags(data["model"], out, tmp_path, "--max_train_steps", 2)])
    assert "trained 2 steps; best/ is the last step (no validation data)" in capsys.readouterr().out


def test_files_decide_and_test_file_with_and_without_answers(data, trained, tmp_path, capsys):
    dev, v1 = squad.read_squad(data["v1"]["dev"]), data["v1"]
    unanswered = json.loads(v1["dev"].read_text())
    for article in unanswered["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                del qa["answers"]
    (tmp_path / "test.json").write_text(json.dumps(unanswered))
    # no --do_*: a validation file evaluates, a test file (with answers) predicts and is scored
    out = tmp_path / "a"
    results = squad.main(["--validation_file", str(v1["dev"]), "--test_file", str(v1["dev"]),
                          *flags(trained / "best", out, tmp_path)])
    assert set(results) == {"exact_match", "f1"}
    test_results = json.loads((out / "test_results.json").read_text())
    assert test_results == pytest.approx(results)  # the same file, the same numbers
    assert json.loads((out / "predictions_test.json").read_text()) == json.loads((out / "predictions.json").read_text())
    rows = [json.loads(line) for line in (out / "predictions_dev.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [e["id"] for e in dev]
    assert all(r["gold"] == [a["text"] for a in e["answers"]] for r, e in zip(rows, dev))
    # --do_predict alone, a file with no answers: predictions, no metric; --max_predict_samples
    out = tmp_path / "b"
    assert squad.main(["--do_predict", "--test_file", str(tmp_path / "test.json"), "--max_predict_samples", "5",
                       *flags(trained / "best", out, tmp_path)]) is None
    assert "no answers in the file: no metric" in capsys.readouterr().out
    predictions = json.loads((out / "predictions_test.json").read_text())
    assert list(predictions) == [e["id"] for e in dev[:5]] and not (out / "test_results.json").exists()
    assert not (out / "predictions.json").exists()


def test_evaluate_only_is_an_alias(data, trained, tmp_path, capsys):
    results = squad.main(["--evaluate_only", "--validation_file", str(data["v1"]["dev"]),
                          *flags(trained / "best", tmp_path / "e", tmp_path)])
    out = capsys.readouterr().out
    assert out.count("note: --evaluate_only is --do_eval without --do_train") == 1
    again = squad.main(["--do_eval", "--validation_file", str(data["v1"]["dev"]),
                        *flags(trained / "best", tmp_path / "f", tmp_path)])
    assert again == pytest.approx(results)


@pytest.mark.parametrize("argv, needle", [
    (["--do_predict", "--validation_file", "{dev}"], "--do_predict needs --test_file"),
    (["--do_eval", "--train_file", "{dev}"], "--do_eval needs --validation_file"),
    (["--question", "Who?"], "--question and --context go together"),
])
def test_flag_errors(data, tmp_path, capsys, argv, needle):
    argv = [a.replace("{dev}", str(data["v1"]["dev"])) for a in argv]
    with pytest.raises(SystemExit) as e:
        squad.main([*argv, *flags(data["model"], tmp_path / "x", tmp_path)])
    assert e.value.code == 2 and needle in capsys.readouterr().err


def test_answer_is_a_span_of_the_context(trained, capsys):
    context = ("Some people said the city was very big and the report was new. The capital of Dorvia is Greywater. "
               "The report was new and some people said the city was very big. ") * 3  # several windows
    question = "What is the capital of Dorvia?"
    result = squad.answer(trained / "best", question, context)
    assert set(result) == {"answer", "score", "start", "end"}
    assert result["answer"] and context[result["start"]:result["end"]] == result["answer"]
    assert 0 < result["score"] <= 1
    # the command line prints the same as JSON
    printed = squad.main(["--model_name_or_path", str(trained / "best"), "--question", question,
                          "--context", context])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == printed == result


def test_answer_v2_threshold(data, tmp_path):
    out = tmp_path / "v2"
    squad.main(["--do_train", "--train_file", str(data["v2"]["train"]), "--version_2_with_negative",
                *flags(data["model"], out, tmp_path, "--max_train_steps", 2)])
    context = "The river of Kelmor is Lune. Some people said the city was very big."
    # v2 read from the run's training_state.json: '' when null score - best span score > threshold
    assert squad.answer(out / "best", "What is the river of Kelmor?", context,
                        null_score_diff_threshold=-1e9) == {"answer": "", "score": pytest.approx(
                            squad.answer(out / "best", "What is the river of Kelmor?", context,
                                         null_score_diff_threshold=-1e9)["score"]), "start": 0, "end": 0}
    spanned = squad.answer(out / "best", "What is the river of Kelmor?", context, null_score_diff_threshold=1e9)
    assert spanned["answer"] and context[spanned["start"]:spanned["end"]] == spanned["answer"]


def test_datasets_layout_files(data, tmp_path):
    """The `datasets` layout (a row per question) as JSON lines, as JSON with a "data" list, and as a saved
    `datasets` folder reads as the official file does; bad rows are one line naming the row."""
    import datasets

    official = squad.read_squad(data["v2"]["dev"])
    rows = [{"id": e["id"], "title": "t", "context": e["context"], "question": e["question"],
             "answers": {"text": [a["text"] for a in e["answers"]],
                         "answer_start": [a["answer_start"] for a in e["answers"]]}} for e in official]
    (tmp_path / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "dev.json").write_text(json.dumps({"version": "v2.0", "data": rows}))
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))
    strip = lambda examples: [{k: v for k, v in e.items() if k != "where"} for e in examples]
    for path in ("dev.jsonl", "dev.json", "saved"):
        assert strip(squad.read_squad(tmp_path / path)) == strip(official), path
    (tmp_path / "bad.jsonl").write_text(json.dumps(rows[0]) + "\n" + json.dumps({**rows[1], "answers": ["x"]}) + "\n")
    with pytest.raises(SystemExit):
        squad.read_squad(tmp_path / "bad.jsonl")
    datasets.DatasetDict({"validation": datasets.Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "dict"))
    with pytest.raises(SystemExit):
        squad.read_squad(tmp_path / "dict")


def test_datasets_layout_end_to_end(data, trained, tmp_path):
    official = squad.read_squad(data["v1"]["dev"])
    rows = [{"id": e["id"], "title": "t", "context": e["context"], "question": e["question"],
             "answers": {"text": [a["text"] for a in e["answers"]],
                         "answer_start": [a["answer_start"] for a in e["answers"]]}} for e in official]
    (tmp_path / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    a = squad.main(["--do_eval", "--validation_file", str(tmp_path / "dev.jsonl"),
                    *flags(trained / "best", tmp_path / "a", tmp_path)])
    b = squad.main(["--do_eval", "--validation_file", str(data["v1"]["dev"]),
                    *flags(trained / "best", tmp_path / "b", tmp_path)])
    assert a == pytest.approx(b)
