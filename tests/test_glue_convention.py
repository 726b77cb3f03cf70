"""glue.py and the Hugging Face conventions (issue 13): --do_* inferred from the data when none is given, the HF
MRPC CSV layout read with no column flags (the choice printed once), --text_column_names/--label_column_name,
predictions_dev.tsv beside the gold labels, --max_predict_samples, and what a training run without validation
data prints."""
import csv
import random
import re

import pytest

import fixtures_glue
import glue

pytestmark = pytest.mark.usefixtures("one_thread")


def flags(model, out, *extra):
    return ["--model", str(model), "--output_dir", str(out), "--report_to", "none", "--learning_rate", "3e-3",
            "--per_device_train_batch_size", "16", *map(str, extra)]


def mrpc_csv(path, n, seed, labelled=True):
    """The HF fixture layout: sentence1,sentence2,label (a CSV with a header)."""
    rng = random.Random(seed)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sentence1", "sentence2", "label"] if labelled else ["sentence1", "sentence2"])
        for i in range(n):
            label = i % 2
            cue = rng.choice(fixtures_glue.GROUP_A if label else fixtures_glue.GROUP_B)
            row = [f"the {rng.choice(fixtures_glue.NEUTRAL)} was served", f"a {cue} story"]
            w.writerow(row + [label] if labelled else row)
    return path


def rows(path):
    lines = path.read_text().splitlines()
    return lines[0].split("\t"), [line.split("\t") for line in lines[1:]]


def test_hf_mrpc_layout_with_no_flags(tiny_bert, tmp_path, capsys):
    train, dev, test = (mrpc_csv(tmp_path / f"{s}.csv", n, i, s != "test")
                        for i, (s, n) in enumerate((("train", 32), ("dev", 12), ("test", 10))))
    out = tmp_path / "out"
    results = glue.main(["--train_file", str(train), "--validation_file", str(dev), "--test_file", str(test),
                         "--max_predict_samples", "4", *flags(tiny_bert, out, "--max_train_steps", 2)])
    stdout = capsys.readouterr().out
    assert stdout.count("columns: text sentence1, sentence2; label label") == 1
    assert "no --do_* flag: do_train, do_eval, do_predict" in stdout
    assert "accuracy" in results
    head, dev_rows = rows(out / "predictions_dev.tsv")
    assert head == ["index", "label", "prediction"] and len(dev_rows) == 12
    gold = [r[2] for r in csv.reader(open(dev))][1:]
    assert [r[1] for r in dev_rows] == gold and {r[2] for r in dev_rows} <= {"0", "1"}
    accuracy = sum(r[1] == r[2] for r in dev_rows) / len(dev_rows)
    assert accuracy == pytest.approx(results["accuracy"])
    assert len(rows(out / "predictions_test.tsv")[1]) == 4  # --max_predict_samples


def test_hf_column_flag_spellings_and_evaluation_alone(tiny_bert, tmp_path, capsys):
    dev = tmp_path / "dev.csv"
    dev.write_text("verdict,body\n" + "".join(f"{['no', 'yes'][i % 2]},goal team {i}\n" for i in range(6)))
    train = tmp_path / "train.csv"
    train.write_text(dev.read_text() * 3)
    out = tmp_path / "out"
    glue.main(["--train_file", str(train), "--text_column_names", "body", "--label_column_name", "verdict",
               "--do_train", *flags(tiny_bert, out, "--max_train_steps", 2)])
    stdout = capsys.readouterr().out
    assert "trained 2 steps; best/ is the last step (no validation data" in stdout and "best: {}" not in stdout
    assert not (out / "eval_results.json").exists()
    # no --do_*, a validation file alone: the trained model evaluated as it is
    results = glue.main(["--validation_file", str(dev), "--text_column_names", "body", "--label_column_name",
                         "verdict", "--model", str(out / "best"), "--output_dir", str(tmp_path / "eval"),
                         "--report_to", "none"])
    assert "accuracy" in results and (tmp_path / "eval" / "predictions_dev.tsv").exists()
    assert "no --do_* flag: do_eval" in capsys.readouterr().out


def test_glue_folder_with_no_flags_does_all_it_holds(tiny_bert, tmp_path, capsys):
    data = fixtures_glue.write_glue(tmp_path / "glue", tasks=("stsb",), sizes=(32, 12, 8))
    out = tmp_path / "out"
    glue.main(["--task_name", "stsb", "--data_dir", str(data / "STS-B"), *flags(tiny_bert, out, "--max_train_steps", 2)])
    assert "no --do_* flag: do_train, do_eval, do_predict" in capsys.readouterr().out
    head, dev_rows = rows(out / "predictions_dev.tsv")
    assert head == ["index", "label", "prediction"] and len(dev_rows) == 12
    float(dev_rows[0][1]), float(dev_rows[0][2])  # scores, gold and predicted
    assert (out / "STS-B.tsv").exists()
    (data / "STS-B" / "test.tsv").unlink()  # no test file: no prediction, no error
    glue.main(["--task_name", "stsb", "--data_dir", str(data / "STS-B"),
               *flags(tiny_bert, tmp_path / "out2", "--max_train_steps", 1)])
    assert "no --do_* flag: do_train, do_eval (as" in capsys.readouterr().out
    assert not (tmp_path / "out2" / "STS-B.tsv").exists()


def test_best_dev_results_are_reused_and_equal_a_fresh_evaluation(tiny_bert, tmp_path, capsys):
    """After training, best/'s dev results and predictions come from the evaluation that picked it (no second pass
    over dev): they equal evaluating the saved best/ afresh, and only the test set is predicted after training."""
    import json
    train, dev = (mrpc_csv(tmp_path / f"{s}.csv", n, i) for i, (s, n) in enumerate((("train", 48), ("dev", 16))))
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    glue.main(["--train_file", str(train), "--validation_file", str(dev), "--num_train_epochs", "2",
               *flags(tiny_bert, out)])
    bars = re.findall(r"(\[Epoch \d+\] )?\[VALID\]", capsys.readouterr().err)  # predict()'s progress bars
    assert bars and all(bars), "dev predicted again after training"
    glue.main(["--do_eval", "--validation_file", str(dev), *flags(out / "best", fresh)])
    again = json.loads((fresh / "eval_results.json").read_text())
    reused = json.loads((out / "eval_results.json").read_text())
    assert reused.keys() == again.keys() and all(reused[k] == pytest.approx(again[k], abs=1e-6) for k in reused)
    assert (out / "predictions_dev.tsv").read_text() == (fresh / "predictions_dev.tsv").read_text()
