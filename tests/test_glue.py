"""glue.py: the classic GLUE layouts (synthetic and the real files), metrics against hand-computed values,
training end to end on a tiny BERT with the submission files, custom CSV/JSON tasks, `datasets` folders,
label alignment with a fine-tuned checkpoint, the report table, and bad input (one line, exit code 2,
nothing overwritten)."""
import csv
import json
from collections import Counter

import numpy as np
import pytest
import torch
from conftest import SHARED

import fixtures_glue
import glue

SIZES = (200, 60, 40)


@pytest.fixture(scope="module")
def glue_data(tmp_path_factory):
    return fixtures_glue.write_glue(tmp_path_factory.mktemp("glue"), sizes=SIZES)


def flags(model, out, *extra):
    return ["--model", str(model), "--output_dir", str(out), "--report_to", "none", "--learning_rate", "3e-3",
            "--per_device_train_batch_size", "16", *map(str, extra)]


def task_flags(task, data, model, out, *extra):
    return ["--task_name", task, "--data_dir", str(data / fixtures_glue.FOLDERS[task]), *flags(model, out, *extra)]


def submission(path):
    lines = path.read_text().splitlines()
    assert lines[0] == "index\tprediction"
    rows = [line.split("\t") for line in lines[1:]]
    assert [r[0] for r in rows] == [str(i) for i in range(len(rows))]
    return [r[1] for r in rows]


def read(task, data, split_flag="--do_train"):
    args = glue.parse_args(["--task_name", task, "--data_dir", str(data / fixtures_glue.FOLDERS[task]), "--model", "m",
                            split_flag])
    src = glue.sources(args)
    return {"train": glue.load(args, src["train"], True),
            **{f"eval{s}": glue.load(args, x, True) for s, x in src["eval"].items()},
            **{n: glue.load(args, x, False) for n, x in src["test"].items()}}


# --- metrics
def onehot(predictions, width=2):
    return np.eye(width)[predictions]


def test_metrics_against_hand_computed_values():
    # CoLA: TP 3, FN 1, FP 1, TN 2 -> (3*2 - 1*1) / sqrt(4*4*3*3) = 5/12
    gold, predicted = np.array([1, 1, 1, 1, 0, 0, 0]), np.array([1, 1, 1, 0, 1, 0, 0])
    assert glue.compute_metrics("cola", onehot(predicted), gold) == {"matthews_correlation": pytest.approx(5 / 12)}
    # MRPC with the positive class at id 0 (a checkpoint's order): TP 2, FN 1, FP 1 -> F1 4/6; at id 1 it is 1/2
    gold, predicted = np.array([0, 0, 1, 1, 0]), np.array([0, 1, 1, 0, 0])
    assert glue.compute_metrics("mrpc", onehot(predicted), gold, positive=0) == {
        "accuracy": pytest.approx(0.6), "f1": pytest.approx(4 / 6)}
    assert glue.compute_metrics("qqp", onehot(predicted), gold, positive=1)["f1"] == pytest.approx(0.5)
    assert glue.compute_metrics("rte", onehot(predicted), gold) == {"accuracy": pytest.approx(0.6)}
    # STS-B: one output column, squeezed; ranks agree (Spearman 1), Pearson = 14 / sqrt(50 * 5)
    result = glue.compute_metrics("stsb", np.array([[1.0], [2.0], [3.0], [10.0]]), np.array([1.0, 2.0, 3.0, 4.0]))
    assert result == {"pearson": pytest.approx(14 / np.sqrt(250)), "spearmanr": pytest.approx(1.0)}
    assert glue.compute_metrics("stsb", np.ones((3, 1)), np.array([1.0, 2.0, 3.0]))["pearson"] == 0.0  # not NaN
    assert set(glue.compute_metrics(None, np.ones((3, 1)), np.array([1.0, 2.0, 3.0]))) == {"pearson", "spearmanr", "mse"}
    assert glue.compute_metrics(None, onehot([0, 1, 1], 3), np.array([0, 1, 2])) == {
        "accuracy": pytest.approx(2 / 3), "f1_macro": pytest.approx((1 + 2 / 3 + 0) / 3)}
    # a task's score: the mean of its metrics, x100
    assert glue.task_score("mrpc", {"f1": 0.9, "accuracy": 0.8}) == pytest.approx(85.0)
    assert glue.task_score("mnli", {"accuracy": 0.84, "accuracy_mm": 0.82, "loss": 0.5}) == pytest.approx(83.0)
    assert glue.task_score("cola", {"matthews_correlation": 0.5}) == pytest.approx(50.0)


# --- reading the classic layouts
def test_reads_every_classic_layout(glue_data):
    for task, (folder, _, _, codes, _) in glue.TASKS.items():
        splits = read(task, glue_data)
        dev_names = ["eval", "eval_mm"] if task == "mnli" else ["eval"]
        test_names = ["MNLI-m", "MNLI-mm"] if task == "mnli" else [folder]
        assert sorted(splits) == sorted(["train", *dev_names, *test_names])
        sizes = [len(splits[n]) for n in ["train", *dev_names, *test_names]]
        assert sizes == [SIZES[0]] + [SIZES[1]] * len(dev_names) + [SIZES[2]] * len(test_names)
        train = splits["train"]
        assert all(len(e["texts"]) == (1 if task in ("cola", "sst2") else 2) for e in train)
        assert all("\t" not in t for e in train for t in e["texts"])
        # QUOTE_NONE: a sentence starting with an unbalanced quote stays one field of one line
        assert any(e["texts"][0].startswith('" ') for e in train)
        if codes:
            assert {e["label"] for e in train} == set(codes)
        else:
            assert all(0 <= float(e["label"]) <= 5 for e in train)
        assert all(e["label"] is None for n in test_names for e in splits[n])
        assert [e["index"] for e in splits[test_names[0]]] == [str(i) for i in range(40)]
    cola = read("cola", glue_data)["train"][0]  # no header: the first line is an example, text in column 4
    first = (glue_data / "CoLA" / "train.tsv").read_text().splitlines()[0].split("\t")
    assert cola["texts"] == [first[3]] and cola["label"] == first[1] and cola["where"].endswith("train.tsv:1")
    mrpc = read("mrpc", glue_data)["train"][0]  # the BOM is not part of the first column's name
    assert mrpc["where"].endswith("train.tsv:2") and mrpc["label"] in ("0", "1")


# --- end to end on a tiny BERT
@pytest.fixture(scope="module")
def sst2_run(tiny_bert, glue_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("sst2") / "out"
    glue.main(task_flags("sst2", glue_data, tiny_bert, out, "--do_train", "--do_eval", "--do_predict",
                         "--num_train_epochs", 5))
    return out


def test_single_sentence_task_end_to_end(sst2_run):
    results = json.loads((sst2_run / "eval_results.json").read_text())
    assert set(results) == {"loss", "accuracy"}
    assert results["accuracy"] > 0.8  # learned: labels and sentences stay aligned
    state = json.loads((sst2_run / "training_state.json").read_text())
    assert state["args"]["metric_for_best_model"] == "accuracy" and state["best_metric"] == results["accuracy"]
    config = json.loads((sst2_run / "best" / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    predictions = submission(sst2_run / "SST-2.tsv")
    assert len(predictions) == 40 and set(predictions) <= {"0", "1"} and len(set(predictions)) == 2


@pytest.mark.parametrize("task, keys, files, values", [
    ("mrpc", {"loss", "accuracy", "f1"}, ["MRPC"], {"0", "1"}),
    ("rte", {"loss", "accuracy"}, ["RTE"], {"entailment", "not_entailment"}),
    ("cola", {"loss", "matthews_correlation"}, ["CoLA"], {"0", "1"}),
    ("mnli", {"loss", "accuracy", "loss_mm", "accuracy_mm"}, ["MNLI-m", "MNLI-mm", "AX"],
     {"entailment", "neutral", "contradiction"}),
])
def test_classification_tasks_end_to_end(tiny_bert, glue_data, tmp_path, task, keys, files, values):
    extra = ["--diagnostic_file", glue_data / "diagnostic" / "diagnostic.tsv"] if task == "mnli" else []
    glue.main(task_flags(task, glue_data, tiny_bert, tmp_path, "--do_train", "--do_eval", "--do_predict",
                         "--max_train_steps", 4, *extra))
    results = json.loads((tmp_path / "eval_results.json").read_text())
    assert set(results) == keys
    state = json.loads((tmp_path / "training_state.json").read_text())
    assert state["args"]["metric_for_best_model"] == glue.TASKS[task].metrics[0] and state["completed_steps"] == 4
    assert set(json.loads((tmp_path / "log.json").read_text())["Epoch 0"]["valid_log"]) == keys
    for name in files:
        predictions = submission(tmp_path / f"{name}.tsv")
        assert len(predictions) == 40 and set(predictions) <= values


def test_stsb_regression_end_to_end(tiny_bert, glue_data, tmp_path):
    glue.main(task_flags("stsb", glue_data, tiny_bert, tmp_path, "--do_train", "--do_eval", "--do_predict",
                         "--num_train_epochs", 2))
    results = json.loads((tmp_path / "eval_results.json").read_text())
    assert set(results) == {"loss", "pearson", "spearmanr"} and -1 <= results["pearson"] <= 1
    config = json.loads((tmp_path / "best" / "config.json").read_text())
    assert len(config["id2label"]) == 1 and config["problem_type"] == "regression"
    predictions = submission(tmp_path / "STS-B.tsv")
    assert len(predictions) == 40 and all(0 <= float(p) <= 5 and len(p.split(".")[1]) == 3 for p in predictions)


# --- custom files
def test_custom_csv_classification_and_jsonl_regression(tiny_bert, tmp_path):
    rows = fixtures_glue.examples("rte", 80, seed=5)
    with open(tmp_path / "train.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["premise", "hypothesis", "verdict", "note"])
        for i, (a, b, y) in enumerate(rows):  # CSV quoting: commas and quotes inside fields
            writer.writerow([f'{a}, "so"', b, ["yes", "no"][y], f"n{i}"])
    with open(tmp_path / "test.csv", "w", newline="") as f:
        csv.writer(f).writerows([["premise", "hypothesis"], *((a, b) for a, b, _ in rows[:7])])
    out = tmp_path / "csv"
    glue.main(flags(tiny_bert, out, "--train_file", tmp_path / "train.csv", "--validation_file", tmp_path / "train.csv",
                    "--test_file", tmp_path / "test.csv", "--text_columns", "premise,hypothesis",
                    "--label_column", "verdict", "--do_train", "--do_eval", "--do_predict", "--max_train_steps", 3))
    assert set(json.loads((out / "eval_results.json").read_text())) == {"loss", "accuracy", "f1_macro"}
    assert json.loads((out / "best" / "config.json").read_text())["id2label"] == {"0": "no", "1": "yes"}
    predictions = submission(out / "predictions_test.tsv")
    assert len(predictions) == 7 and set(predictions) <= {"yes", "no"}

    scores = fixtures_glue.examples("stsb", 60, seed=6)
    jsonl = "".join(json.dumps({"text": a, "score": round(y, 1) + 0.5}) + "\n" for a, _, y in scores)
    (tmp_path / "train.jsonl").write_text(jsonl)
    out = tmp_path / "jsonl"
    glue.main(flags(tiny_bert, out, "--train_file", tmp_path / "train.jsonl", "--validation_file", tmp_path / "train.jsonl",
                    "--text_columns", "text", "--label_column", "score", "--do_train", "--do_eval", "--max_train_steps", 2))
    assert set(json.loads((out / "eval_results.json").read_text())) == {"loss", "pearson", "spearmanr", "mse"}
    assert json.loads((out / "training_state.json").read_text())["args"]["metric_for_best_model"] == "pearson"
    assert len(json.loads((out / "best" / "config.json").read_text())["id2label"]) == 1
    regression = lambda *labels: glue.is_regression([{"label": l} for l in labels])
    assert regression("0", "0.5") and regression("1e-3", "2") and regression("-1.5", "3.0")
    assert not regression("0", "1") and not regression("0.5", "yes") and not regression("nan", "1.5")


def test_datasets_folder_with_class_labels(tiny_bert, glue_data, tmp_path):
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    splits = read("sst2", glue_data)
    features = Features({"sentence": Value("string"), "label": ClassLabel(names=["negative", "positive"]),
                         "idx": Value("int32")})
    table = lambda examples, gold: Dataset.from_dict(
        {"sentence": [e["texts"][0] for e in examples], "label": gold, "idx": list(range(len(examples)))}, features=features)
    DatasetDict({"train": table(splits["train"], [int(e["label"]) for e in splits["train"]]),
                 "validation": table(splits["eval"], [int(e["label"]) for e in splits["eval"]]),
                 "test": table(splits["SST-2"], [-1] * 40)}).save_to_disk(tmp_path / "hub")
    out = tmp_path / "out"
    glue.main(["--task_name", "sst2", "--dataset_name", str(tmp_path / "hub"), *flags(tiny_bert, out),
               "--do_train", "--do_eval", "--do_predict", "--max_train_steps", "2"])
    assert set(json.loads((out / "eval_results.json").read_text())) == {"loss", "accuracy"}
    assert len(submission(out / "SST-2.tsv")) == 40


# --- a fine-tuned checkpoint keeps its label order
def test_label_order_follows_the_checkpoint(sst2_run, glue_data, tmp_path):
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    config = AutoConfig.from_pretrained(sst2_run / "best")
    assert glue.align_labels(config, list(glue.TASKS["sst2"].labels.items()), "m") == {"negative": 0, "positive": 1}
    mnli = AutoConfig.from_pretrained(sst2_run / "best", id2label={0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"})
    mnli.label2id = {v: k for k, v in mnli.id2label.items()}  # roberta-large-mnli's order
    assert glue.align_labels(mnli, list(glue.TASKS["mnli"].labels.items()), "m") == {
        "entailment": 2, "neutral": 1, "contradiction": 0}
    plain = AutoConfig.from_pretrained(sst2_run / "best", id2label={0: "LABEL_0", 1: "LABEL_1"})
    plain.label2id = {"LABEL_0": 0, "LABEL_1": 1}
    assert glue.align_labels(plain, list(glue.TASKS["rte"].labels.items()), "m") == {"entailment": 0, "not_entailment": 1}

    # the same model with its two classes swapped (head rows and names, upper case): same accuracy, same file
    model = AutoModelForSequenceClassification.from_pretrained(sst2_run / "best")
    with torch.no_grad():
        model.classifier.weight.copy_(model.classifier.weight.flip(0))
        model.classifier.bias.copy_(model.classifier.bias.flip(0))
    model.config.id2label, model.config.label2id = {0: "POSITIVE", 1: "NEGATIVE"}, {"POSITIVE": 0, "NEGATIVE": 1}
    model.save_pretrained(tmp_path / "swapped")
    AutoTokenizer.from_pretrained(sst2_run / "best").save_pretrained(tmp_path / "swapped")
    for name, checkpoint in (("original", sst2_run / "best"), ("swapped", tmp_path / "swapped")):
        glue.main(task_flags("sst2", glue_data, checkpoint, tmp_path / name, "--do_eval", "--do_predict"))
    with pytest.raises(SystemExit) as e:  # evaluating into a training run's folder would change what the report reads
        glue.main(task_flags("sst2", glue_data, tmp_path / "swapped", sst2_run, "--do_eval"))
    assert e.value.code == 2
    original, swapped = (json.loads((tmp_path / n / "eval_results.json").read_text()) for n in ("original", "swapped"))
    assert swapped["accuracy"] == original["accuracy"] > 0.8
    assert submission(tmp_path / "swapped" / "SST-2.tsv") == submission(sst2_run / "SST-2.tsv")


# --- the report
def fake_run(folder, task, model, **metrics):
    folder.mkdir(parents=True)
    (folder / "eval_results.json").write_text(json.dumps({"loss": 0.5, **metrics}))
    (folder / "training_state.json").write_text(json.dumps({"args": {"task_name": task, "model_name_or_path": model}}))


def test_report_takes_the_best_seed_and_averages(tmp_path, capsys):
    fake_run(tmp_path / "a" / "rte-seed1", "rte", "bert", accuracy=0.60)
    fake_run(tmp_path / "a" / "rte-seed2", "rte", "bert", accuracy=0.70)
    fake_run(tmp_path / "b" / "rte-seed3", "rte", "bert", accuracy=0.65)
    fake_run(tmp_path / "a" / "mrpc", "mrpc", "bert", f1=0.90, accuracy=0.80)
    fake_run(tmp_path / "a" / "mrpc-2", "mrpc", "bert", f1=0.92, accuracy=0.70)  # score 81 < 85: not the best
    fake_run(tmp_path / "a" / "cola", "cola", "bert", matthews_correlation=0.40)
    fake_run(tmp_path / "a" / "wnli", "wnli", "bert", accuracy=0.50)
    fake_run(tmp_path / "a" / "sst2", "sst2", "tiny", accuracy=0.75)
    fake_run(tmp_path / "a" / "custom", None, "bert", accuracy=0.99)
    glue.main(["--report", str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "a" / "rte-seed1")])
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == ("| model | average w/o wnli | average all | cola | mnli | mrpc | qnli | qqp | rte | sst2 | "
                        "stsb | wnli |")
    assert lines[2] == ("| | | | Matthews corr. | acc./mm acc. | F1/acc. | acc. | F1/acc. | acc. | acc. | "
                        "Pearson/Spearman | acc. |")
    # bert: rte max(60, 70, 65) = 70, mrpc 85 (the run, not the max per metric), cola 40, wnli 50
    assert lines[3] == ("| bert | 65.00 (3/8 tasks) | 61.25 (4/9 tasks) | 40.00 | - | 90.00/80.00 | - | - | 70.00 | "
                        "- | - | 50.00 |")
    assert lines[4] == "| tiny | 75.00 (1/8 tasks) | 75.00 (1/9 tasks) | - | - | - | - | - | - | 75.00 | - | - |"
    assert "bert: best of several runs: mrpc 2, rte 3" in out  # rte-seed1 given twice, counted once
    assert "custom left out" in err
    assert glue.parse_args(["--report", "out/glue"]).report == ["out/glue"]


# --- bad input: one line naming file and line, exit code 2, the run already in output_dir kept
BAD = [
    ("sst2", "train.tsv", "sentence\tlabel\na b \t1\nc d \t0\ne f\t1\textra\n",
     ":4: expected 2 tab-separated columns, found 3"),
    ("sst2", "train.tsv", "sentence\tlabel\na b \t1\nc d \t\n", ":3: no label in 'label'"),
    ("sst2", "train.tsv", "", ":1: no examples; the file is empty or holds only a header"),
    ("sst2", "train.tsv", "sentence\tlabel\n", ":1: no examples; the file is empty or holds only a header"),
    ("sst2", "dev.tsv", "sentence\tlabel\na b \t1\nc d \t2\n", ":3: label '2' is not in the sst2 task's labels (0, 1)"),
    ("sst2", "dev.tsv", "sentence\tgold\na b \t1\n", ":1: no column 'label' in the header (sentence, gold)"),
    ("cola", "train.tsv", "gj04\t1\t\ta b .\ngj04\t0\ta b .\n", ":2: expected 4 tab-separated columns, found 3"),
    ("stsb", "train.tsv", "index\tsentence1\tsentence2\tscore\n0\ta\tb\t4.5\n1\ta\tb\thigh\n",
     ":3: label 'high' is not a number (a regression task)"),
    ("rte", "test.tsv", "index\tsentence1\tsentence2\n0\ta\tb\n1\tcaf\xe9\tb\n".encode("latin-1"), ": not UTF-8 text"),
]


def check_failure(capsys, e, where, expected, out):
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2
    assert err == f"error: {where}{expected}" or err.startswith(f"error: {where}{expected}")
    assert "\n" not in err and "Traceback" not in err
    assert (out / "best" / "keep.txt").read_text() == "earlier run" and (out / "training_state.json").exists()


@pytest.fixture
def earlier_run(tmp_path):
    out = tmp_path / "out"
    (out / "best").mkdir(parents=True)
    (out / "best" / "keep.txt").write_text("earlier run")
    (out / "training_state.json").write_text("{}")
    return out


@pytest.mark.parametrize("task, name, content, expected", BAD)
def test_bad_glue_file_is_one_clear_line(tiny_bert, glue_data, tmp_path, capsys, earlier_run, task, name, content, expected):
    folder = tmp_path / "data"
    folder.mkdir()
    for f in (glue_data / fixtures_glue.FOLDERS[task]).iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(SystemExit) as e:
        glue.main(["--task_name", task, "--data_dir", str(folder), *flags(tiny_bert, earlier_run),
                   "--do_train", "--do_eval", "--do_predict", "--overwrite_output_dir"])
    check_failure(capsys, e, folder / name, expected, earlier_run)


@pytest.mark.parametrize("train, dev, extra, bad, expected", [
    ("text,label\na,yes\nb,no\n", "text,label\na,yes\nb,maybe\n", [], "dev",
     ":3: label 'maybe' is not in the training data's labels (no, yes)"),
    ("text,label\na,yes\nb,no\n", "text,verdict\na,yes\n", [], "dev", ":1: no column 'label' in the header (text, verdict)"),
    ('{"text": "a", "label": 1.5}\n{"text": "b"}\n', '{"text": "a", "label": 1.5}\n', [], "train",
     ":2: no field 'label' (fields: text)"),
    ('{"text": "a", "label": 1.5}\n{"text": "b", "label": 2.5\n', "", [], "train", ":2: not valid JSON"),
    ("text,label\na,yes\n", "text,label\na,yes\n", ["--task_name", "sst3"], None,
     "unknown task name 'sst3'; expected one of cola, sst2"),
])
def test_bad_custom_file_or_task_is_one_clear_line(tiny_bert, tmp_path, capsys, earlier_run, train, dev, extra, bad,
                                                   expected):
    ext = ".jsonl" if train.startswith("{") else ".csv"
    paths = {"train": tmp_path / f"train{ext}", "dev": tmp_path / f"dev{ext}"}
    paths["train"].write_text(train)
    paths["dev"].write_text(dev)
    with pytest.raises(SystemExit) as e:
        glue.main([*extra, "--train_file", str(paths["train"]), "--validation_file", str(paths["dev"]),
                   "--text_columns", "text", *flags(tiny_bert, earlier_run), "--do_train", "--do_eval",
                   "--overwrite_output_dir"])
    check_failure(capsys, e, paths[bad] if bad else "", expected, earlier_run)


# --- the real GLUE files
REAL = pytest.mark.skipif(not (SHARED / "glue").exists(), reason="needs ../shared/data/glue")
# task: (train, dev, test) counts and the train label distribution, from shared/data/README.md
REAL_COUNTS = {
    "cola": ((8551, 1043, 1063), {"1": 6023, "0": 2528}),
    "sst2": ((67349, 872, 1821), {"1": 37569, "0": 29780}),
    "mrpc": ((3668, 408, 1725), {"1": 2474, "0": 1194}),
    "rte": ((2490, 277, 3000), {"entailment": 1249, "not_entailment": 1241}),
    "stsb": ((5749, 1500, 1379), None),
    "wnli": ((635, 71, 146), {"1": 312, "0": 323}),
}


@REAL
def test_real_glue_files_parse_with_the_published_counts():
    glue_dir = SHARED / "glue"
    for task, (counts, distribution) in REAL_COUNTS.items():
        splits = read(task, glue_dir)
        test_name = glue.TASKS[task].folder
        assert (len(splits["train"]), len(splits["eval"]), len(splits[test_name])) == counts, task
        if distribution:
            assert Counter(e["label"] for e in splits["train"]) == distribution, task
        else:
            assert all(0 <= float(e["label"]) <= 5 for split in ("train", "eval") for e in splits[split])
        assert [e["index"] for e in splits[test_name]] == [str(i) for i in range(counts[2])]
    args = glue.parse_args(["--task_name", "qnli", "--data_dir", str(glue_dir / "QNLI"), "--model", "m", "--do_eval"])
    src = glue.sources(args)
    assert len(glue.load(args, src["eval"][""], True)) == len(glue.load(args, src["test"]["QNLI"], False)) == 5463
    assert len(glue.read_file(glue_dir / "diagnostic" / "diagnostic.tsv", ("sentence1", "sentence2"))) == 1104


@REAL
@pytest.mark.parametrize("task", sorted(REAL_COUNTS))
def test_real_glue_trains_a_few_steps(tiny_bert, tmp_path, task):
    glue.main(task_flags(task, SHARED / "glue", tiny_bert, tmp_path, "--do_train", "--do_eval", "--do_predict",
                         "--max_train_samples", 64, "--max_eval_samples", 64, "--max_train_steps", 2,
                         "--max_seq_length", 32, "--per_device_eval_batch_size", 512))  # fast: 14k test examples
    results = json.loads((tmp_path / "eval_results.json").read_text())
    assert set(results) == {"loss", *glue.TASKS[task].metrics} and np.isfinite(results["loss"])
    assert len(submission(tmp_path / f"{glue.TASKS[task].folder}.tsv")) == REAL_COUNTS[task][0][2]


@REAL
def test_real_qnli_evaluates_and_predicts_without_training(tiny_bert, tmp_path):
    results = glue.main(task_flags("qnli", SHARED / "glue", tiny_bert, tmp_path, "--do_eval", "--do_predict",
                                   "--max_eval_samples", 64, "--max_seq_length", 32,
                                   "--per_device_eval_batch_size", 512))
    assert set(results) == {"loss", "accuracy"} and not (tmp_path / "best").exists()
    assert set(submission(tmp_path / "QNLI.tsv")) <= {"entailment", "not_entailment"}
