"""train.py and the model/ template on malformed input: every case exits with code 2 and one line on stderr,
`error: ...`, naming the file (and line) and what was expected; the finished run in --output_dir is byte-identical
afterwards, also with --overwrite_output_dir. Also: a saved Model (best/) trains further."""
import json

import pytest
from bad_input import damaged_models, params, run_case

import train

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ctx(tiny_bert, topic_data, tmp_path_factory):
    """The tiny BERT and damaged copies of it, the topic data and one finished run (dev and test results)."""
    root = tmp_path_factory.mktemp("train-errors")
    run = root / "run"
    train.main(["--model", str(tiny_bert), "--train_file", str(topic_data / "train.jsonl"),
                "--validation_file", str(topic_data / "valid.jsonl"), "--test_file", str(topic_data / "test.jsonl"),
                "--output_dir", str(run), "--report_to", "none", "--max_train_steps", "2"])
    assert (run / "best").is_dir() and (run / "test_results.json").exists() and (run / "predictions_test.jsonl").exists()
    return {"model": str(tiny_bert), "data": str(topic_data), "run": run, "root": root,
            **damaged_models(tiny_bert, root / "models")}


GOOD = '{"text": "a goal today", "labels": ["sports"]}\n{"text": "the minister", "labels": ["politics"]}\n'
BASE = ["--train_file", "{data}/train.jsonl", "--validation_file", "{data}/valid.jsonl"]
T = ["--train_file", "{t}/t.jsonl"]
EXPECTED = 'expected one JSON object per line like {"text": "...", "labels": ["a", "b"]}'
# (id, {file name: content}, argv, needles); later flags win over the base's. {t}: this case's folder.
CASES = [
    ("bad-json-line", {"t.jsonl": GOOD + '{"text": "x", "labels": ["sports"]\n'}, [*BASE, *T],
     ["{t}/t.jsonl:3: not valid JSON", EXPECTED]),
    ("record-not-an-object", {"t.jsonl": GOOD + '["x", ["sports"]]\n'}, [*BASE, *T],
     ["{t}/t.jsonl:3: no string field 'text'", EXPECTED]),
    ("no-text-field", {"t.jsonl": GOOD + '{"body": "x", "labels": []}\n'}, [*BASE, *T],
     ["{t}/t.jsonl:3: no string field 'text'"]),
    ("text-not-a-string", {"t.jsonl": '{"text": 12, "labels": []}\n'}, [*BASE, *T],
     ["{t}/t.jsonl:1: no string field 'text'"]),
    ("labels-not-a-list", {"t.jsonl": GOOD + '{"text": "x", "labels": "sports"}\n'}, [*BASE, *T],
     ["{t}/t.jsonl:3: 'labels' is not a list of strings"]),
    ("labels-not-strings", {"t.jsonl": GOOD + '{"text": "x", "labels": [1, 2]}\n'}, [*BASE, *T],
     ["{t}/t.jsonl:3: 'labels' is not a list of strings"]),
    ("empty-file", {"t.jsonl": ""}, [*BASE, *T], ["{t}/t.jsonl:1: no records"]),
    ("blank-lines-only", {"t.jsonl": "\n \n"}, [*BASE, *T], ["{t}/t.jsonl:1: no records"]),
    ("not-utf8", {"t.jsonl": (GOOD + '{"text": "caf\xe9", "labels": []}\n').encode("latin-1")}, [*BASE, *T],
     ["{t}/t.jsonl:3: not UTF-8 text (byte 0xe9", EXPECTED]),
    ("binary-file", {"t.jsonl": bytes(range(128, 256)) * 4}, [*BASE, *T], ["{t}/t.jsonl:1: not UTF-8 text"]),
    ("train-file-is-a-folder", {"t.jsonl/x": ""}, [*BASE, *T], ["{t}/t.jsonl: a folder; expected one JSON object"]),
    ("train-file-missing", {}, [*BASE, *T], ["{t}/t.jsonl: no such file"]),
    ("validation-bad-line", {"v.jsonl": GOOD + "{oops}\n"}, [*BASE, "--validation_file", "{t}/v.jsonl"],
     ["{t}/v.jsonl:3: not valid JSON"]),
    ("validation-unknown-label", {"v.jsonl": GOOD + '{"text": "rain", "labels": ["weather"]}\n'},
     [*BASE, "--validation_file", "{t}/v.jsonl"], ["{t}/v.jsonl:3: label 'weather' is not in the training data's labels"]),
    ("test-unknown-label", {"v.jsonl": '{"text": "rain", "labels": ["weather"]}\n'},
     [*BASE, "--test_file", "{t}/v.jsonl"], ["{t}/v.jsonl:1: label 'weather' is not in the training data's labels"]),
    ("test-not-utf8", {"v.jsonl": b'{"text": "caf\xe9", "labels": []}\n'}, [*BASE, "--test_file", "{t}/v.jsonl"],
     ["{t}/v.jsonl:1: not UTF-8 text"]),
    ("text-field-absent", {}, [*BASE, "--text_field", "body"], ["{data}/train.jsonl:1: no string field 'body'"]),
    ("model-missing", {}, [*BASE, "--model", "{t}/no-model"], ["--model_name_or_path {t}/no-model: no such folder"]),
    ("model-is-a-file", {}, [*BASE, "--model", "{data}/train.jsonl"],
     ["--model_name_or_path {data}/train.jsonl: a file; expected a model folder"]),
    ("model-weights-truncated", {}, [*BASE, "--model", "{truncated}"],
     ["{truncated}/model.safetensors: damaged weights", "expected a complete safetensors file"]),
    ("model-weights-garbage", {}, [*BASE, "--model", "{garbage}"], ["{garbage}/model.safetensors: damaged weights"]),
    ("model-config-garbage", {}, [*BASE, "--model", "{badconfig}"],
     ["--model_name_or_path {badconfig}: cannot load its config"]),
    ("model-without-tokenizer", {}, [*BASE, "--model", "{notokenizer}"],
     ["{notokenizer}: its tokenizer has no vocabulary"]),
    ("saved-model-other-labels", {"t.jsonl": GOOD + '{"text": "rain", "labels": ["weather"]}\n'},
     [*T, "--model", "{run}/best"], ["{t}/t.jsonl: labels ['politics', 'sports', 'weather'] differ from {run}/best's"]),
    ("max-seq-length-above-positions", {}, [*BASE, "--max_seq_length", "1024"],
     ["--max_seq_length 1024: the model holds at most 128 positions"]),
    ("max-seq-length-zero", {}, [*BASE, "--max_seq_length", "0"], ["--max_seq_length 0: expected a number of tokens"]),
    ("max-seq-length-not-a-number", {}, [*BASE, "--max_seq_length", "1e3"], ["invalid int value: '1e3'"]),
    ("threshold-zero", {}, [*BASE, "--threshold", "0"], ["--threshold 0.0: expected a probability in (0, 1)"]),
    ("threshold-above-one", {}, [*BASE, "--threshold", "1.5"], ["--threshold 1.5"]),
    ("dropout-one", {}, [*BASE, "--classifier_dropout", "1"], ["--classifier_dropout 1.0: expected a probability"]),
    ("dropout-negative", {}, [*BASE, "--classifier_dropout", "-0.1"], ["--classifier_dropout -0.1"]),
    ("no-model", {}, [*BASE, "--model", ""], ["--model_name_or_path is required"]),
    # no training file: the validation file alone means "evaluate the model as it is", and an encoder has no head
    ("no-train-file", {}, ["--validation_file", "{data}/valid.jsonl"],
     ["an encoder with no trained head; without --do_train, expected a model this script saved"]),
]
EARLY_STOP = {"no-model", "no-train-file"}  # parse errors: no overwrite variant


@pytest.mark.parametrize("name, files, argv, needles, overwrite",
                         params(CASES, lambda name, argv: name not in EARLY_STOP))
def test_bad_input(ctx, tmp_path, capfd, name, files, argv, needles, overwrite):
    run_case(capfd, train.main, ctx, tmp_path, files, argv, needles, run_dir=ctx["run"],
             before=["--model", ctx["model"]],  # later flags win
             after=["--output_dir", ctx["run"], "--report_to", "none", *(["--overwrite_output_dir"] * overwrite)])


def test_saved_model_trains_further(ctx, tmp_path):
    """best/ of the template (a ModelConfig transformers does not know by name) is read as one, not as an encoder."""
    out = tmp_path / "more"
    train.main(["--model", str(ctx["run"] / "best"), "--train_file", f"{ctx['data']}/train.jsonl",
                "--output_dir", str(out), "--report_to", "none", "--max_train_steps", "1"])
    config = json.loads((out / "best" / "config.json").read_text())
    saved = json.loads((ctx["run"] / "best" / "config.json").read_text())
    assert config["model_type"] == "template-multilabel" and config["id2label"] == saved["id2label"]
