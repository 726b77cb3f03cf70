"""GLUE: the nine tasks in the classic TSV layout, or any sentence(-pair) classification or regression.

    accelerate launch glue.py --task_name sst2 --data_dir glue_data/SST-2 --model_name_or_path bert-base-cased \
        --do_train --do_eval --do_predict --learning_rate 2e-5 --per_device_train_batch_size 32

--data_dir is a task's folder as download_glue_data.py writes it; --dataset_name takes the same tasks from
`datasets` (nyu-mll/glue) or a local folder; --train_file/--validation_file/--test_file (CSV, TSV, JSON
lines) with --text_column_names and --label_column_name make any task (a regression when the labels are floats).
--do_train trains (best/ by the dev metric when --do_eval), --do_eval evaluates best/ (or the model as given) on the
validation data and writes predictions_dev.tsv (index, gold label, prediction), --do_predict writes the GLUE
submission file (SST-2.tsv, MNLI-m.tsv, ...): test sets have no labels. With no --do_* flag the data decides: a
train file trains, a validation file evaluates, a test file predicts (GLUE folders and datasets: all that exist).
Without --text_column_names a custom file's columns are inferred from its header as the Hugging Face scripts do (the
usual names first: sentence1/sentence2, question/sentence, premise/hypothesis, sentence, text ...; else the first
one or two columns that are not the label), and the choice is printed once.
Compare runs, the maximum over seeds per task:
    python glue.py --report out/glue

Owns: sentence(-pair) classification and regression: the GLUE tasks (TASKS), their readers, label handling, metrics,
submission files and results table. Knows no other task script (ner.py, squad.py, probe.py ...): it builds on
core.py, flags.py, files.py and loading.py only. Other scripts use it only through the section "the interface for
other scripts": TASKS, examples(), label_codes(), positive_id(), compute_metrics().
"""
import argparse
import csv
import json
import re
import sys
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np
from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding

import core
import files
import flags
import loading

class Task(NamedTuple):
    """A GLUE task as its classic TSV files spell it."""
    folder: str  # its folder in download_glue_data.py's layout, and the stem of its submission file
    text_columns: tuple  # one or two text columns in its TSVs
    label_column: str
    labels: Optional[dict]  # {label in the TSVs: label name} in id order; None: a regression
    metrics: tuple  # the metrics it reports; the first one picks best/


NLI = {"entailment": "entailment", "not_entailment": "not_entailment"}
TASKS = {
    "cola": Task("CoLA", ("sentence",), "label", {"0": "unacceptable", "1": "acceptable"}, ("matthews_correlation",)),
    "sst2": Task("SST-2", ("sentence",), "label", {"0": "negative", "1": "positive"}, ("accuracy",)),
    "mrpc": Task("MRPC", ("#1 String", "#2 String"), "Quality", {"0": "not_equivalent", "1": "equivalent"},
                 ("f1", "accuracy")),
    "stsb": Task("STS-B", ("sentence1", "sentence2"), "score", None, ("pearson", "spearmanr")),
    "qqp": Task("QQP", ("question1", "question2"), "is_duplicate", {"0": "not_duplicate", "1": "duplicate"},
                ("f1", "accuracy")),
    "mnli": Task("MNLI", ("sentence1", "sentence2"), "gold_label",
                 {"entailment": "entailment", "neutral": "neutral", "contradiction": "contradiction"},
                 ("accuracy", "accuracy_mm")),
    "qnli": Task("QNLI", ("question", "sentence"), "label", NLI, ("accuracy",)),
    "rte": Task("RTE", ("sentence1", "sentence2"), "label", NLI, ("accuracy",)),
    "wnli": Task("WNLI", ("sentence1", "sentence2"), "label", {"0": "not_entailment", "1": "entailment"}, ("accuracy",)),
}
HUB_COLUMNS = {"mrpc": ("sentence1", "sentence2"), "mnli": ("premise", "hypothesis")}  # where nyu-mll/glue differs
COLA_COLUMNS = ("source", "label", "original_label", "sentence")  # CoLA's train.tsv and dev.tsv have no header
POSITIVE = "1"  # the class whose F1 MRPC and QQP report
NOTICED = set()  # the inferred (text columns, label) already printed: once per process (main() empties it per run)


# --- the interface for other scripts (probe.py): TASKS (a Task per GLUE task), examples(), label_codes(),
# positive_id() and compute_metrics(). Other scripts use only these names; everything else here may change.
INTERFACE = ("TASKS", "examples", "label_codes", "positive_id", "compute_metrics")


def examples(args):
    """The labelled splits, read and checked as glue.py reads them: {"train": [...], "dev": [...]}, MNLI also
    "dev_mm" (its mismatched dev set). An example is {"where": "file:line" (for error messages), "texts": [one or two
    strings], "label": the label as the data spells it (a TSV's code, or a `datasets` label name), "index"}.
    Reads from args: task_name (None: a custom task), data_dir, dataset_name, dataset_config_name, train_file,
    validation_file, text_column_names (None: the task's, or inferred from a custom file's header; set to what was
    inferred) and label_column_name."""
    src = sources(args)
    found = {"train": src["train"], **{f"dev{suffix}": x for suffix, x in src["eval"].items()}}
    return {split: load(args, x, True) for split, x in found.items() if x is not None}


def label_codes(task, train):
    """The labels in id order as [(label as the data spells it, label name)]: the GLUE task's, else the sorted
    labels of the training examples (a custom task); None for a regression (STS-B, or labels that are floats)."""
    if task:
        labels = TASKS[task].labels
        return None if labels is None else list(labels.items())
    return None if is_regression(train) else [(l, l) for l in sorted({e["label"] for e in train})]


def positive_id(task, label2id):
    """The id (in label2id: label name -> id) of the class whose F1 MRPC and QQP report; None for other tasks."""
    labels = TASKS[task].labels if task in TASKS else None
    return label2id.get(labels.get(POSITIVE)) if labels else None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.error = flags.fail  # argparse's own errors too: one line, no usage block
    flags.add_args(parser, output_dir="where best/, last/ and the results go (default: out/glue/TASK, or "
                   "out/glue/custom)", metric_for_best_model="(default: the task's first metric: accuracy, f1, "
                   "matthews_correlation or pearson)")
    parser.set_defaults(output_dir=None, metric_for_best_model=None)
    parser.add_argument("--task_name", type=str.lower, default=None, help=f"one of {', '.join(TASKS)} (default: none)")
    parser.add_argument("--data_dir", default=None, help="the task's folder in the classic GLUE layout (default: none)")
    parser.add_argument("--dataset_name", default=None,
                        help="a `datasets` name (nyu-mll/glue) or a local folder (default: none)")
    parser.add_argument("--dataset_config_name", default=None, help="(default: the task name for GLUE, else none)")
    parser.add_argument("--train_file", default=None, help="CSV, TSV (quoting off) or JSON lines (default: none)")
    parser.add_argument("--validation_file", default=None, help="same format, with labels (default: none)")
    parser.add_argument("--test_file", default=None, help="same format, labels not needed (default: none)")
    parser.add_argument("--diagnostic_file", default=None,
                        help="MNLI only: GLUE's diagnostic.tsv, predicted into AX.tsv (default: none)")
    flags.renamed(parser, "--text_column_names", "--text_columns", type=lambda s: tuple(s.split(",")), default=None,
                  help="one or two comma-separated columns (default: the task's; for custom files inferred "
                       "from the header)")
    flags.renamed(parser, "--label_column_name", "--label_column", default=None,
                  help="(default: the task's; 'label' for custom files)")
    parser.add_argument("--max_seq_length", type=int, default=None,
                        help="tokens per example or pair (default: 128, or the model's maximum if less)")
    flags.add_jobs(parser, "train; best/ is picked on the validation data when there is some",
                   "evaluate best/ (or the model as given) on the validation data, write predictions_dev.tsv",
                   "write the test set's submission file")
    parser.add_argument("--config_name", help="a config other than the model's (default: the model's)")
    parser.add_argument("--tokenizer_name", help="a tokenizer other than the model's (default: the model's)")
    parser.add_argument("--max_predict_samples", type=int, default=-1,
                        help="predict the first N test examples (default: %(default)s = all)")
    parser.add_argument("--report", nargs="+", metavar="OUT_DIR", default=None,
                        help="print the results table of the runs under these folders, then stop (default: off)")
    args = parser.parse_args(argv)
    if args.report:
        return args
    if args.task_name is not None and args.task_name not in TASKS:
        flags.fail(f"unknown task name {args.task_name!r}; expected one of {', '.join(TASKS)}")
    if not args.model_name_or_path:
        flags.fail("--model_name_or_path is required")
    given = args.train_file or args.validation_file or args.test_file
    if sum(map(bool, (args.data_dir, args.dataset_name, given))) != 1:
        flags.fail("give one of --data_dir, --dataset_name or --train_file/--validation_file/--test_file")
    if args.data_dir and not args.task_name:
        flags.fail("--data_dir needs --task_name")
    # GLUE folders and datasets: every split may be there (main() checks which are)
    flags.choose_jobs(args, None if given else "--data_dir" if args.data_dir else "--dataset_name")
    if args.diagnostic_file and args.task_name != "mnli":
        flags.fail("--diagnostic_file goes with --task_name mnli")
    if args.text_column_names and not 1 <= len(args.text_column_names) <= 2:
        flags.fail("--text_column_names takes one or two column names")
    if args.max_seq_length is not None and args.max_seq_length < 2:
        flags.fail(f"--max_seq_length {args.max_seq_length}: expected a number of tokens >= 2")
    args.output_dir = args.output_dir or f"out/glue/{args.task_name or 'custom'}"
    return args


# --- reading: every example keeps where it came from ("file:line"), so every later error can name it
def read_file(path, text_columns, label_column=None, index_column="index", names=None):
    """Examples {where, texts, label, index} of a TSV (quoting off, as GLUE's files need), CSV or JSON lines file;
    `names`: the columns of a file without a header."""
    path = Path(path)
    if path.is_dir():
        flags.fail(f"{path}: a folder; expected a CSV, TSV or JSON lines file")
    if not path.is_file():
        flags.fail(f"{path}: no such file")
    required = [*text_columns, *([label_column] if label_column else [])]
    examples, rows = [], _rows(path, required, names)
    try:
        rows = list(rows)
    except UnicodeDecodeError as e:
        flags.fail(f"{path}: not UTF-8 text (byte {e.start}: {e.reason}); expected a CSV, TSV or JSON lines file")
    for number, row in rows:
        missing = [c for c in required if c not in row]
        if missing:
            flags.fail(f"{path}:{number}: no field '{missing[0]}' (fields: {', '.join(row)})")
        texts = [row[c] for c in text_columns]
        if not all(isinstance(t, str) for t in texts):
            flags.fail(f"{path}:{number}: text field {', '.join(text_columns)} is not a string")
        label = None
        if label_column:
            label = "" if row[label_column] is None else str(row[label_column]).strip()
            if not label:
                flags.fail(f"{path}:{number}: no label in '{label_column}'")
        examples.append({"where": f"{path}:{number}", "texts": texts, "label": label,
                         "index": row.get(index_column, len(examples))})
    if not examples:
        flags.fail(f"{path}:1: no examples; the file is empty or holds only a header")
    return examples


def _rows(path, required, names=None):
    with open(path, encoding="utf-8-sig", newline="") as f:  # utf-8-sig: MRPC's files start with a BOM
        if path.suffix in (".json", ".jsonl"):
            for number, line in enumerate(f, 1):
                if "\0" in line:
                    flags.fail(f"{path}:{number}: a NUL byte (binary data); expected one JSON object per line")
                if line.strip():
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as e:
                        flags.fail(f"{path}:{number}: not valid JSON ({e.msg}); expected one object per line")
                    if not isinstance(row, dict):
                        flags.fail(f"{path}:{number}: expected a JSON object with {', '.join(required)}")
                    yield number, row
            return
        kind = "comma" if path.suffix == ".csv" else "tab"
        reader = csv.reader(f) if kind == "comma" else csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = list(names) if names else None
        for row in _checked(reader, path, kind):
            if not row:
                continue
            if header is None:
                header = row
                missing = [c for c in required if c not in header]
                if missing:
                    flags.fail(f"{path}:{reader.line_num}: no column '{missing[0]}' in the header ({', '.join(header)})")
                continue
            if len(row) != len(header):
                flags.fail(f"{path}:{reader.line_num}: expected {len(header)} {kind}-separated columns, "
                           f"found {len(row)}")
            yield reader.line_num, dict(zip(header, row))


def _checked(reader, path, kind):
    """The rows of a csv.reader; its errors (a field over csv's size limit, ...) and NUL bytes (binary data) as one
    line naming the line."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            flags.fail(f"{path}:{reader.line_num + 1}: cannot read a {kind}-separated line ({e}); expected text")
        if any("\0" in field for field in row):
            flags.fail(f"{path}:{reader.line_num}: a NUL byte (binary data); expected text")
        yield row


def read_hub(dataset, name, split, text_columns, label_column, labelled):
    """The same examples from a `datasets` split; ClassLabel ids become their names, -1 (test) no label."""
    if split not in dataset:
        flags.fail(f"{name}: no split '{split}' (splits: {', '.join(dataset)})")
    data, where = dataset[split], f"{name}[{split}]"
    missing = [c for c in (*text_columns, *([label_column] if labelled else [])) if c not in data.column_names]
    if missing:
        flags.fail(f"{where}: no column '{missing[0]}' (columns: {', '.join(data.column_names)})")
    names = getattr(data.features.get(label_column), "names", None)
    gold = data[label_column] if labelled else [None] * len(data)
    indices = data["idx"] if "idx" in data.column_names else range(len(data))
    return [{"where": f"{where} row {i}", "texts": list(texts), "index": index,
             "label": None if label is None or label == -1 else names[label] if names else str(label)}
            for i, (index, label, *texts) in enumerate(zip(indices, gold, *(data[c] for c in text_columns)))]


def sources(args):
    """Where each split comes from: {"train": src, "eval": {metric suffix: src}, "test": {submission: src}};
    a src is a path, or a function that reads a `datasets` split."""
    task, mnli = args.task_name, args.task_name == "mnli"
    submission = TASKS[task].folder if task else "predictions_test"
    if not (args.data_dir or args.dataset_name):
        return {"train": args.train_file, "eval": {"": args.validation_file}, "test": {submission: args.test_file}}
    if args.data_dir:
        src = lambda stem: Path(args.data_dir) / f"{stem}.tsv" if not getattr(args, "inferred", False) or \
            (Path(args.data_dir) / f"{stem}.tsv").is_file() else None
    else:
        from datasets import load_dataset, load_from_disk
        name = args.dataset_name
        try:
            dataset = load_from_disk(name) if (Path(name) / "dataset_dict.json").exists() else \
                load_dataset(name, args.dataset_config_name or (task if "glue" in name else None))
        except Exception as e:  # noqa: BLE001 (datasets raises many kinds; one line is what the user needs)
            flags.fail(f"{name}: cannot load ({(str(e).splitlines() or [type(e).__name__])[0]})")
        text = args.text_column_names or HUB_COLUMNS.get(task) or (TASKS[task].text_columns if task else ("sentence",))
        label = args.label_column_name or "label"
        split = lambda stem: stem.replace("dev", "validation")
        src = lambda stem: None if getattr(args, "inferred", False) and split(stem) not in dataset else \
            lambda labelled: read_hub(dataset, name, split(stem), text, label, labelled)
    return {"train": src("train"),
            "eval": {"": src("dev_matched"), "_mm": src("dev_mismatched")} if mnli else {"": src("dev")},
            "test": {"MNLI-m": src("test_matched"), "MNLI-mm": src("test_mismatched")} if mnli
            else {submission: src("test")}}


USUAL_COLUMNS = (("sentence1", "sentence2"), ("question", "sentence"), ("premise", "hypothesis"),
                 ("question1", "question2"), ("#1 String", "#2 String"), ("sentence",), ("text",), ("question",))
NOT_TEXT = {"idx", "index", "id", "label", "labels"}


def header(path):
    """The column names of a CSV/TSV file's header or of a JSON lines file's first object ([] if unreadable)."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            if path.suffix in (".json", ".jsonl"):
                line = next((l for l in f if l.strip()), "")
                row = json.loads(line) if line else {}
                return list(row) if isinstance(row, dict) else []
            reader = csv.reader(f) if path.suffix == ".csv" else csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            return next((r for r in reader if r), [])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, csv.Error):
        return []


def infer_columns(columns, label):
    """The text columns as the Hugging Face scripts pick them: the usual names first, else the first one or two
    columns that are neither the label nor an index; None when there is none."""
    for usual in USUAL_COLUMNS:
        if all(c in columns for c in usual):
            return usual
    rest = [c for c in columns if c != label and c.lower() not in NOT_TEXT]
    return tuple(rest[:2]) or None


def load(args, src, labelled):
    if callable(src):
        return src(labelled)
    spec = TASKS.get(args.task_name)
    if not spec and not args.text_column_names:  # a custom file: its columns, inferred once, printed once
        label = args.label_column_name or "label"
        inferred = infer_columns(header(src), label)
        if inferred:
            args.text_column_names = inferred  # the other files are read with the same columns
            if (inferred, label) not in NOTICED:
                NOTICED.add((inferred, label))
                print(f"columns: text {', '.join(inferred)}; label {label} (inferred from {Path(src).name}'s "
                      "header; --text_column_names to choose)")
    text = args.text_column_names or (spec.text_columns if spec else ("sentence",))
    label = (args.label_column_name or (spec.label_column if spec else "label")) if labelled else None
    names = COLA_COLUMNS if args.task_name == "cola" and labelled and args.data_dir else None
    return read_file(src, text, label, "id" if args.task_name == "qqp" else "index", names)


NUMBER = r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?"  # a finite number: not nan, inf or n/a


def is_regression(examples):
    """Floats make a regression; labels that are all integers (0/1) stay classes. A column of mostly numbers with a
    few others (n/a, nan, inf, a typo) is neither: one line naming the first of them, not a class per value."""
    labels = [e["label"] for e in examples]
    numbers = [bool(re.fullmatch(NUMBER, l)) for l in labels]
    if sum(numbers) * 2 > len(labels) and not all(numbers):
        bad = examples[numbers.index(False)]
        flags.fail(f"{bad['where']}: label {bad['label']!r} is not a finite number, unlike {sum(numbers)} of the "
                   f"{len(labels)} labels; expected a number in every row (or class names that are not numbers)")
    return all(numbers) and not all(re.fullmatch(r"[-+]?\d+", l) for l in labels)


# --- metrics
def compute_metrics(task, logits, labels, positive=1):
    """GLUE's metrics from logits (one column: a regression) and gold label ids (or scores)."""
    # imported here: scipy.stats and sklearn.metrics take 1.6 s to import, which accuracy alone does not need
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import f1_score, matthews_corrcoef
    if logits.shape[-1] == 1:
        predictions = logits.squeeze(-1)
        # constant predictions: no correlation (0, where scipy warns and gives NaN, which no best/ can beat)
        correlation = lambda f: 0.0 if predictions.std() == 0 or labels.std() == 0 else float(f(predictions, labels)[0])
        result = {"pearson": correlation(pearsonr), "spearmanr": correlation(spearmanr)}
        return result if task else {**result, "mse": float(((predictions - labels) ** 2).mean())}
    predictions = logits.argmax(-1)
    if task == "cola":
        return {"matthews_correlation": float(matthews_corrcoef(labels, predictions))}
    result = {"accuracy": float((predictions == labels).mean())}
    if task in ("mrpc", "qqp"):  # F1 of the positive class, whatever its id
        result["f1"] = float(f1_score(labels == positive, predictions == positive, zero_division=0))
    elif task is None:
        result["f1_macro"] = float(f1_score(labels, predictions, average="macro", zero_division=0))
    return result


def task_score(task, results):
    """A task's score in the averages: the mean of its metrics, x100."""
    return float(np.mean([100 * results[k] for k in TASKS[task].metrics]))


def align_labels(config, labels, model_name):
    """label2id for the task's labels: the checkpoint's own ids when it was fine-tuned on them (names or the
    TSVs' labels, any case), so its head keeps its meaning; else ids in the task's order."""
    theirs = {str(k).lower(): v for k, v in (config.label2id or {}).items()}
    ids = [next((theirs[k.lower()] for k in (name, code) if k.lower() in theirs), None) for code, name in labels]
    if len(theirs) == len(labels) and None not in ids and len(set(ids)) == len(ids):
        return {name: i for (_, name), i in zip(labels, ids)}
    if theirs and not all(re.fullmatch(r"label_\d+", k) for k in theirs):
        print(f"note: {model_name}'s labels {sorted(config.label2id)} are not this task's; "
              f"using {[n for _, n in labels]} in that order", file=sys.stderr)
    return {name: i for i, (_, name) in enumerate(labels)}


# --- the results table
def report(dirs):
    runs = {}  # model -> task -> [eval results of each run]
    for path in sorted({p.resolve() for d in dirs for p in Path(d).rglob("eval_results.json")}):
        state = path.parent / "training_state.json"
        run_args = json.loads(state.read_text())["args"] if state.exists() else {}
        task, results = run_args.get("task_name"), json.loads(path.read_text())
        if task not in TASKS or not all(k in results for k in TASKS[task].metrics):
            print(f"note: {path.parent} left out: no GLUE task name and metrics in its training_state.json and "
                  "eval_results.json", file=sys.stderr)
            continue
        runs.setdefault(run_args["model_name_or_path"], {}).setdefault(task, []).append(results)
    order = sorted(TASKS)
    names = {"matthews_correlation": "Matthews corr.", "accuracy": "acc.", "accuracy_mm": "mm acc.", "f1": "F1",
             "pearson": "Pearson", "spearmanr": "Spearman"}
    lines = [f"| model | average w/o wnli | average all | {' | '.join(order)} |", "|---" * (len(order) + 3) + "|",
             f"| | | | {' | '.join('/'.join(names[k] for k in TASKS[t].metrics) for t in order)} |"]
    notes = []
    for model, tasks in runs.items():
        # the best run by the task's score, both metrics from that run (not the best of each metric)
        best = {t: max(results, key=lambda r: task_score(t, r)) for t, results in tasks.items()}

        def average(included):
            scores = [task_score(t, best[t]) for t in included if t in best]
            return "-" if not scores else f"{np.mean(scores):.2f}" + (
                "" if len(scores) == len(included) else f" ({len(scores)}/{len(included)} tasks)")
        cells = ["/".join(f"{100 * best[t][k]:.2f}" for k in TASKS[t].metrics) if t in best else "-" for t in order]
        without_wnli = average([t for t in order if t != "wnli"])
        lines.append(f"| {model} | {without_wnli} | {average(order)} | {' | '.join(cells)} |")
        many = [f"{t} {len(v)}" for t, v in sorted(tasks.items()) if len(v) > 1]
        if many:
            notes.append(f"{model}: best of several runs: {', '.join(many)}")
    return "\n".join(lines + ([""] + notes if notes else []))


def main(argv=None):
    NOTICED.clear()  # one run of the script: its notices printed once
    args = parse_args(argv)
    if args.report:
        print(report(args.report))
        return None
    train, evals, tests = read_jobs(args)  # read and checked before anything is written
    config = loading.config_for(args)
    labels, label2id = check_labels(args, config, train, evals)
    regression = labels is None
    if not args.metric_for_best_model:
        spec = TASKS.get(args.task_name)
        args.metric_for_best_model = spec.metrics[0] if spec else "pearson" if regression else "accuracy"
    out = Path(args.output_dir)
    if not args.do_train and (out / "training_state.json").exists() and not args.overwrite_output_dir:
        flags.fail(f"{out} holds a training run whose eval_results.json the report reads; evaluate into another "
                   "--output_dir, or pass --overwrite_output_dir")
    if not args.do_train:  # an evaluation never replaces earlier results silently
        flags.refuse_existing([out / "eval_results.json"] * bool(evals) + [out / f"{name}.tsv" for name in tests],
                              args.overwrite_output_dir)
    tokenizer = loading.tokenizer_for(args)  # before setup: cheap, and its errors write nothing
    if args.max_seq_length is None:  # the default: 128, or what the model takes if less
        args.max_seq_length = min(128, tokenizer.model_max_length)
    flags.check_max_seq_length(args.max_seq_length, config)
    accelerator = core.setup(args, training=args.do_train, varied_batches=True)
    model = load_model(args, config, label2id, regression)
    collator = DataCollatorWithPadding(tokenizer)
    evals = {s: list(core.limit(x, args.max_eval_samples)) for s, x in evals.items()}
    eval_datasets = {s: encode(x, tokenizer, args.max_seq_length) for s, x in evals.items()}
    loaders = {s: core.eval_loader(accelerator, d, collator, args) for s, d in eval_datasets.items()}
    evaluate_all = evaluator(args.task_name, accelerator, loaders, positive_id(args.task_name, label2id))
    best = None
    if args.do_train:
        train_dataset = encode(core.limit(train, args.max_train_samples), tokenizer, args.max_seq_length)
        model, best = train_model(args, accelerator, model, tokenizer, collator, train_dataset,
                                  eval_datasets.get(""), evaluate_all)
    model = accelerator.prepare(model)
    id2code = None if regression else {label2id[name]: code for code, name in labels}
    dev_arrays = best["arrays"] if best else {}
    # best/ (or the model as given) on dev: the scores that picked best/, or a pass now
    results = best["results"] if best else evaluate_all(model, kept=dev_arrays) if loaders else None
    if results is not None:
        accelerator.print(f"eval: {json.dumps(results)}")
        if accelerator.is_main_process:
            write_dev(out, results, evals, dev_arrays, id2code, accelerator.print)
    for name, examples in tests.items():
        predict_test(args, accelerator, model, encode(examples, tokenizer, args.max_seq_length), collator, name,
                     examples, id2code)
    return results


def read_jobs(args):
    """The data of each job: training examples (or None), {metric suffix: dev examples} and {submission name: test
    examples}, read and checked: a bad line stops here with its file and line."""
    src = sources(args)
    if args.inferred:  # no --do_* flag: what the data holds
        src["eval"] = {s: x for s, x in src["eval"].items() if x is not None}
        src["test"] = {n: x for n, x in src["test"].items() if x is not None}
        args.do_train = args.do_train and src["train"] is not None
        args.do_eval, args.do_predict = args.do_eval and bool(src["eval"]), args.do_predict and bool(src["test"])
        if not (args.do_train or args.do_eval or args.do_predict):
            flags.fail(f"nothing to do: {args.data_dir or args.dataset_name} has no training, validation or test "
                       "data; expected train.tsv, dev.tsv or test.tsv (or such splits)")
        print(f"no --do_* flag: {', '.join(f for f in ('do_train', 'do_eval', 'do_predict') if getattr(args, f))} "
              "(as the data implies)")
    train = load(args, src["train"], True) if args.do_train else None
    evals = {s: load(args, x, True) for s, x in src["eval"].items()} if args.do_eval else {}
    tests = {n: load(args, x, False) for n, x in src["test"].items()} if args.do_predict else {}
    tests = {n: list(core.limit(x, args.max_predict_samples)) for n, x in tests.items()}
    if args.diagnostic_file and args.do_predict:  # GLUE's AX set, scored by the MNLI model
        tests["AX"] = read_file(args.diagnostic_file, ("sentence1", "sentence2"))
    for e in (e for split in tests.values() for e in split):
        e["label"] = None  # test sets are predicted, never evaluated
    return train, evals, tests


def check_labels(args, config, train, evals):
    """The labels [(label in the files, name)] in id order (None: a regression) and label2id: the task's (a
    fine-tuned checkpoint's ids), or the training file's, or the model's; every gold label checked and turned into
    its id (a regression: its float), in place."""
    task, spec = args.task_name, TASKS.get(args.task_name)
    if spec or train:
        labels = label_codes(task, train)
    else:  # a custom task evaluated without training: the fine-tuned checkpoint knows its labels
        labels = None if config.num_labels == 1 else [(l, l) for l in config.id2label.values()]
    regression = labels is None
    label2id = {} if regression else align_labels(config, labels, args.model_name_or_path)
    to_id = {key: label2id[name] for code, name in (labels or []) for key in (code, name)}
    known = ", ".join(code for code, _ in labels or [])
    for e in [*(train or []), *(e for split in evals.values() for e in split)]:
        if e["label"] is None:
            flags.fail(f"{e['where']}: no label")
        if regression:
            if not re.fullmatch(NUMBER, e["label"]):  # float() would take nan and inf, and stop training on NaN
                flags.fail(f"{e['where']}: label {e['label']!r} is not a number (a regression task); expected a "
                           "finite number")
            e["label"] = float(e["label"])
        elif e["label"] not in to_id:
            where = f"the {task} task's" if spec else "the training data's" if train else "the model's"
            flags.fail(f"{e['where']}: label {e['label']!r} is not in {where} labels ({known})")
        else:
            e["label"] = to_id[e["label"]]
    return labels, label2id


def load_model(args, config, label2id, regression):
    config.id2label = {0: "score"} if regression else {i: name for name, i in label2id.items()}
    config.label2id = {v: k for k, v in config.id2label.items()}
    config.problem_type = "regression" if regression else "single_label_classification"
    try:
        # ignore_mismatched_sizes: a new head when the checkpoint had another number of labels (RTE from MNLI)
        return AutoModelForSequenceClassification.from_pretrained(args.model_name_or_path, config=config,
                                                                  ignore_mismatched_sizes=True)
    except (OSError, ValueError) as e:
        flags.fail(f"{args.model_name_or_path}: cannot load ({(str(e).splitlines() or [type(e).__name__])[0]})")


def encode(examples, tokenizer, max_seq_length):
    encoded = tokenizer(*zip(*[e["texts"] for e in examples]), truncation=True, max_length=max_seq_length)
    return [{**{k: v[i] for k, v in encoded.items()}, **({} if e["label"] is None else {"labels": e["label"]})}
            for i, e in enumerate(examples)]


def evaluator(task, accelerator, loaders, positive):
    def evaluate_all(model, first=None, kept=None):
        """Metrics on every dev set (MNLI: matched, then mismatched with the suffix _mm); `first`: the arrays
        core.train already has for the first one; `kept`: a dict that receives each dev set's arrays."""
        results = {}
        for suffix, loader in loaders.items():
            loss, arrays = (None, first) if first is not None and not suffix else \
                core.predict(accelerator, model, loader, desc=f"[VALID{suffix}]")
            if kept is not None:
                kept[suffix] = arrays
            results.update({**({f"loss{suffix}": loss} if loss is not None else {}),
                            **{f"{k}{suffix}": v for k, v in
                               compute_metrics(task, arrays["logits"], arrays["labels"], positive).items()}})
        return results
    return evaluate_all


def train_model(args, accelerator, model, tokenizer, collator, train_dataset, first_eval, evaluate_all):
    """core.train, best/ picked on the first dev set when there is one. Returns best/ loaded, and its dev results
    and arrays from the evaluation that picked it (None after a resume that began later): not predicted twice."""
    latest, best = {}, {}
    core.train(args, accelerator, model, tokenizer, train_dataset, first_eval, collator,
               evaluate=(lambda arrays: evaluate_all(model, arrays, kept=latest)) if first_eval else None,
               on_best=lambda metrics, arrays: best.update(results=metrics, arrays=dict(latest)))
    return AutoModelForSequenceClassification.from_pretrained(Path(args.output_dir) / "best"), best or None


def write_dev(out, results, evals, dev_arrays, id2code, say):
    """eval_results.json, and predictions_dev.tsv (MNLI: also _mm): each dev prediction beside its gold label;
    id2code: {label id: label as in the files}, None for a regression."""
    out.mkdir(parents=True, exist_ok=True)
    files.write_json(out / "eval_results.json", results)
    for suffix, arrays in dev_arrays.items():
        logits = arrays["logits"]
        if id2code is None:  # a regression
            rows = [f"{e['index']}\t{e['label']:.3f}\t{s:.3f}" for e, s in zip(evals[suffix], logits[:, 0])]
        else:
            rows = [f"{e['index']}\t{id2code[e['label']]}\t{id2code[int(i)]}"
                    for e, i in zip(evals[suffix], logits.argmax(-1))]
        path = out / f"predictions_dev{suffix}.tsv"
        files.write_text(path, "\n".join(["index\tlabel\tprediction"] + rows) + "\n")
        say(f"wrote {path} ({len(rows)} predictions with their gold labels)")


def predict_test(args, accelerator, model, dataset, collator, name, examples, id2code):
    """A test set's submission file (index, prediction), label names as in the TSVs."""
    _, arrays = core.predict(accelerator, model, core.eval_loader(accelerator, dataset, collator, args),
                             keys=("logits",), desc=f"[best] [TEST {name}]")
    logits = arrays["logits"]
    if id2code is None:  # a regression
        scores = np.clip(logits[:, 0], 0, 5) if args.task_name == "stsb" else logits[:, 0]  # STS-B scores are 0-5
        predictions = [f"{s:.3f}" for s in scores]
    else:
        predictions = [id2code[i] for i in logits.argmax(-1)]
    if accelerator.is_main_process:
        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        lines = ["index\tprediction"] + [f"{e['index']}\t{p}" for e, p in zip(examples, predictions)]
        files.write_text(out / f"{name}.tsv", "\n".join(lines) + "\n")
        accelerator.print(f"wrote {out / f'{name}.tsv'} ({len(predictions)} predictions)")

if __name__ == "__main__":
    main()
