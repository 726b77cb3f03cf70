"""glue.py on malformed input: every case exits with code 2 and one line on stderr, `error: ...`, naming the file
(and line) and what was expected; where a finished run sits in --output_dir, it is byte-identical afterwards, also
with --overwrite_output_dir."""
import shutil

import pytest
from bad_input import damaged_models, expect_error, params, run_case

import fixtures_glue
import glue

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ctx(tiny_bert, tmp_path_factory):
    """The tiny model, damaged copies of it, GLUE folders and one finished SST-2 run."""
    root = tmp_path_factory.mktemp("glue-errors")
    data = fixtures_glue.write_glue(root / "glue", tasks=("sst2", "stsb"), sizes=(48, 16, 8))
    run = root / "run"
    glue.main(["--task_name", "sst2", "--data_dir", str(data / "SST-2"), "--model", str(tiny_bert),
               "--output_dir", str(run), "--report_to", "none", "--do_train", "--do_eval", "--do_predict",
               "--max_train_steps", "2"])
    assert (run / "best").is_dir() and (run / "eval_results.json").exists() and (run / "SST-2.tsv").exists()
    models = damaged_models(tiny_bert, root / "models")
    return {"model": str(tiny_bert), "data": str(data), "run": run, "root": root, **models}


CSV = "text,label\n" + "".join(f"word{i} goal team,{i % 3 * 0.5 + 1.25}\n" for i in range(8))
TSV_SST2 = "sentence\tlabel\n" + "".join(f"goal team {i} \t{i % 2}\n" for i in range(6))
STSB_HEAD = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
STSB = lambda *scores: STSB_HEAD + "".join(f"{i}\tm\tf\t2012\t{i}\tn\tn\tgoal team\tmatch coach\t{s}\n"
                                           for i, s in enumerate(scores))
JSONL = "".join(f'{{"text": "goal {i}", "label": "{["yes", "no"][i % 2]}"}}\n' for i in range(6))

# (id, {file name: content}, argv after the common flags, needles); {t}: this case's folder, {data}: the GLUE
# folders, {model}: the tiny model (and {truncated}, {garbage}, ...: its damaged copies), {run}: the finished run.
# Every case runs with --output_dir {run}; those marked "train" also with --overwrite_output_dir.
CUSTOM = ["--train_file", "{t}/train.csv", "--validation_file", "{t}/train.csv", "--text_columns", "text",
          "--do_train", "--do_eval"]
CASES = [
    # labels
    ("float-labels-with-na", {"train.csv": CSV + "word9 goal,n/a\n" + CSV.split("\n", 1)[1]}, CUSTOM,
     ["train.csv:10:", "label 'n/a' is not a finite number", "expected a number"]),
    ("float-labels-with-nan", {"train.csv": CSV + "word9 goal,nan\n"}, CUSTOM,
     ["train.csv:10:", "label 'nan' is not a finite number"]),
    ("int-labels-with-na", {"train.csv": "text,label\n" + "a,0\nb,1\n" * 4 + "c,n/a\n"}, CUSTOM,
     ["train.csv:10:", "label 'n/a'", "expected a number"]),
    ("jsonl-nan-label", {"train.jsonl": '{"text": "a", "label": 0.5}\n{"text": "b", "label": 1.5}\n'
                                        '{"text": "c", "label": NaN}\n'},
     ["--train_file", "{t}/train.jsonl", "--validation_file", "{t}/train.jsonl", "--text_columns", "text",
      "--do_train", "--do_eval"], ["train.jsonl:3:", "label 'nan'"]),
    ("stsb-nan-score", {"STS-B/train.tsv": STSB("4.5", "nan", "1.0"), "STS-B/dev.tsv": STSB("1.0")},
     ["--task_name", "stsb", "--data_dir", "{t}/STS-B", "--do_train", "--do_eval"],
     ["STS-B/train.tsv:3:", "label 'nan' is not a number", "expected a finite number"]),
    ("stsb-inf-score-in-dev", {"STS-B/train.tsv": STSB("4.5", "1.0"), "STS-B/dev.tsv": STSB("2.0", "2.5", "-inf")},
     ["--task_name", "stsb", "--data_dir", "{t}/STS-B", "--do_train", "--do_eval"],
     ["STS-B/dev.tsv:4:", "label '-inf' is not a number"]),
    ("stsb-word-score", {"STS-B/train.tsv": STSB("4.5", "high"), "STS-B/dev.tsv": STSB("1.0")},
     ["--task_name", "stsb", "--data_dir", "{t}/STS-B", "--do_train", "--do_eval"],
     ["STS-B/train.tsv:3:", "label 'high' is not a number"]),
    ("sst2-unknown-label", {"SST-2/train.tsv": TSV_SST2 + "goal \t2\n", "SST-2/dev.tsv": TSV_SST2},
     ["--task_name", "sst2", "--data_dir", "{t}/SST-2", "--do_train", "--do_eval"],
     ["SST-2/train.tsv:8:", "label '2' is not in the sst2 task's labels (0, 1)"]),
    ("empty-label", {"train.csv": "text,label\na,yes\nb,\n"}, CUSTOM, ["train.csv:3:", "no label in 'label'"]),
    ("dev-label-not-in-train", {"train.csv": "text,label\na,yes\nb,no\n", "dev.csv": "text,label\na,maybe\n"},
     ["--train_file", "{t}/train.csv", "--validation_file", "{t}/dev.csv", "--text_columns", "text", "--do_train",
      "--do_eval"], ["dev.csv:2:", "label 'maybe' is not in the training data's labels (no, yes)"]),
    # layout
    ("csv-ragged-row", {"train.csv": "text,label\na,yes\nb,no,extra\n"}, CUSTOM,
     ["train.csv:3:", "expected 2 comma-separated columns, found 3"]),
    ("tsv-ragged-row", {"SST-2/train.tsv": TSV_SST2 + "one\ttwo\tthree\n", "SST-2/dev.tsv": TSV_SST2},
     ["--task_name", "sst2", "--data_dir", "{t}/SST-2", "--do_train"],
     ["SST-2/train.tsv:8:", "expected 2 tab-separated columns, found 3"]),
    ("no-text-column", {"train.csv": "sentence,label\na,yes\n"}, CUSTOM,
     ["train.csv:1:", "no column 'text' in the header (sentence, label)"]),
    ("no-label-column", {"train.csv": "text,verdict\na,yes\n"}, CUSTOM,
     ["train.csv:1:", "no column 'label' in the header (text, verdict)"]),
    ("empty-file", {"train.csv": ""}, CUSTOM, ["train.csv:1:", "no examples"]),
    ("header-only", {"train.csv": "text,label\n"}, CUSTOM, ["train.csv:1:", "no examples"]),
    ("nul-bytes", {"train.csv": b"text,label\na,yes\nb\x00c,no\n"}, CUSTOM,
     ["train.csv:3:", "a NUL byte (binary data); expected text"]),
    ("not-utf8", {"train.csv": "text,label\ncaf\xe9,yes\n".encode("latin-1")}, CUSTOM,
     ["train.csv", "not UTF-8 text", "expected a CSV, TSV or JSON lines file"]),
    ("binary-file", {"train.csv": bytes(range(256)) * 4}, CUSTOM, ["train.csv", "not UTF-8 text"]),
    ("jsonl-bad-line", {"train.jsonl": JSONL + '{"text": "b", "label": "no"\n'},
     ["--train_file", "{t}/train.jsonl", "--validation_file", "{t}/train.jsonl", "--text_columns", "text",
      "--do_train", "--do_eval"], ["train.jsonl:7:", "not valid JSON", "expected one object per line"]),
    ("jsonl-not-object", {"train.jsonl": JSONL + '["b", "no"]\n'},
     ["--train_file", "{t}/train.jsonl", "--validation_file", "{t}/train.jsonl", "--text_columns", "text",
      "--do_train", "--do_eval"], ["train.jsonl:7:", "expected a JSON object with text, label"]),
    ("jsonl-missing-field", {"train.jsonl": JSONL + '{"text": "b"}\n'},
     ["--train_file", "{t}/train.jsonl", "--validation_file", "{t}/train.jsonl", "--text_columns", "text",
      "--do_train", "--do_eval"], ["train.jsonl:7:", "no field 'label'"]),
    ("jsonl-text-not-string", {"train.jsonl": JSONL + '{"text": 5, "label": "no"}\n'},
     ["--train_file", "{t}/train.jsonl", "--validation_file", "{t}/train.jsonl", "--text_columns", "text",
      "--do_train", "--do_eval"], ["train.jsonl:7:", "text field text is not a string"]),
    ("train-file-is-a-folder", {"folder.csv/x": ""},
     ["--train_file", "{t}/folder.csv", "--text_columns", "text", "--do_train"],
     ["folder.csv: a folder; expected a CSV, TSV or JSON lines file"]),
    ("train-file-missing", {}, ["--train_file", "{t}/missing.csv", "--do_train"], ["missing.csv: no such file"]),
    ("data-dir-without-dev", {"SST-2/train.tsv": TSV_SST2},
     ["--task_name", "sst2", "--data_dir", "{t}/SST-2", "--do_train", "--do_eval"], ["SST-2/dev.tsv: no such file"]),
    # flags
    ("unknown-task", {}, ["--task_name", "sst3", "--data_dir", "{data}/SST-2", "--do_train"],
     ["unknown task name 'sst3'; expected one of cola, sst2"]),
    ("three-text-columns", {}, ["--train_file", "{data}/SST-2/train.tsv", "--text_columns", "a,b,c", "--do_train"],
     ["--text_column_names takes one or two column names"]),
    ("max-seq-length-zero", {}, ["--task_name", "sst2", "--data_dir", "{data}/SST-2", "--do_train",
                                 "--max_seq_length", "0"], ["--max_seq_length 0: expected a number of tokens >= 2"]),
    ("max-seq-length-negative", {}, ["--task_name", "sst2", "--data_dir", "{data}/SST-2", "--do_train",
                                     "--max_seq_length", "-5"], ["--max_seq_length -5"]),
    ("max-seq-length-above-positions", {}, ["--task_name", "sst2", "--data_dir", "{data}/SST-2", "--do_train",
                                            "--max_seq_length", "4096"],
     ["--max_seq_length 4096: the model holds at most 128 positions"]),
    ("max-seq-length-not-a-number", {}, ["--task_name", "sst2", "--data_dir", "{data}/SST-2", "--do_train",
                                         "--max_seq_length", "long"], ["--max_seq_length", "invalid int value: 'long'"]),
    ("nothing-to-do", {"README": "no data here\n"}, ["--task_name", "sst2", "--data_dir", "{t}"],
     ["nothing to do", "has no training, validation or test data"]),
    ("data-dir-without-task", {}, ["--data_dir", "{data}/SST-2", "--do_train"], ["--data_dir needs --task_name"]),
    ("two-data-sources", {}, ["--task_name", "sst2", "--data_dir", "{data}/SST-2", "--train_file", "x.csv",
                              "--do_train"], ["give one of --data_dir, --dataset_name or --train_file"]),
    ("predict-without-test-file", {}, ["--train_file", "{data}/SST-2/train.tsv", "--do_predict"],
     ["--do_predict needs --test_file"]),
    ("diagnostic-without-mnli", {}, ["--task_name", "sst2", "--data_dir", "{data}/SST-2", "--do_predict",
                                     "--diagnostic_file", "x.tsv"], ["--diagnostic_file goes with --task_name mnli"]),
    # the model
    ("model-missing", {}, ["--task_name", "sst2", "--data_dir", "{data}/SST-2", "--do_train", "--model",
                           "{t}/no-such-model"], ["--model_name_or_path {t}/no-such-model: no such folder"]),
    ("model-is-a-file", {}, ["--task_name", "sst2", "--data_dir", "{data}/SST-2", "--do_train", "--model",
                             "{data}/SST-2/train.tsv"], ["train.tsv: a file; expected a model folder"]),
    ("model-weights-truncated", {}, ["--task_name", "sst2", "--data_dir", "{data}/SST-2", "--do_train", "--model",
                                     "{truncated}"],
     ["truncated/model.safetensors: damaged weights", "expected a complete safetensors file"]),
    ("model-weights-garbage", {}, ["--task_name", "sst2", "--data_dir", "{data}/SST-2", "--do_train", "--model",
                                   "{garbage}"], ["garbage/model.safetensors: damaged weights"]),
    ("model-config-garbage", {}, ["--task_name", "sst2", "--data_dir", "{data}/SST-2", "--do_train", "--model",
                                  "{badconfig}"], ["--model_name_or_path {badconfig}: cannot load its config",
                                                   "config.json"]),
    ("model-without-tokenizer", {}, ["--task_name", "sst2", "--data_dir", "{data}/SST-2", "--do_train", "--model",
                                     "{notokenizer}"], ["notokenizer: its tokenizer has no vocabulary", "expected its tokenizer files"]),
]
TRAIN = {c[0] for c in CASES if "--do_train" in c[2] and c[0] not in (
    "nothing-to-do", "predict-without-test-file", "diagnostic-without-mnli")}


@pytest.mark.parametrize("name, files, argv, needles, overwrite", params(CASES, lambda name, argv: name in TRAIN))
def test_bad_input(ctx, tmp_path, capfd, name, files, argv, needles, overwrite):
    run_case(capfd, glue.main, ctx, tmp_path, files, argv, needles, run_dir=ctx["run"],
             after=[*(["--model", ctx["model"]] * ("--model" not in argv)), "--output_dir", ctx["run"],
                    "--report_to", "none", *(["--overwrite_output_dir"] * overwrite)])


def test_missing_model_flag(ctx, capfd):
    expect_error(capfd, glue.main, ["--task_name", "sst2", "--data_dir", f"{ctx['data']}/SST-2", "--do_train"],
                 "--model_name_or_path is required")


@pytest.mark.parametrize("extra, needles", [
    ([], ["holds a training run whose eval_results.json the report reads"]),  # eval into a training run's folder
    (["--do_predict"], ["eval_results.json already exists (and 1 more)", "pass --overwrite_output_dir"]),  # an evaluation's earlier files
])
def test_evaluation_never_replaces_earlier_results(ctx, tmp_path, capfd, extra, needles):
    out = ctx["run"]
    if extra:  # a folder that holds only an earlier evaluation's files
        out = tmp_path / "eval"
        out.mkdir()
        for f in ("eval_results.json", "SST-2.tsv"):
            shutil.copy(ctx["run"] / f, out / f)
    expect_error(capfd, glue.main, ["--task_name", "sst2", "--data_dir", f"{ctx['data']}/SST-2", "--do_eval",
                                    *extra, "--model", ctx["model"], "--output_dir", str(out)], *needles, run_dir=out)
