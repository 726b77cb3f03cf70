"""The model/ template and train.py as a user meets them: copied to a folder of their own, trained there,
continued for more epochs; bad data files get one clear line."""
import json
import shutil
import sys

import pytest
import torch
from conftest import ROOT, run

import train


def local_modules(name, found=None):
    """name and, recursively, the modules of the repository's top level that it imports."""
    import ast

    found = found if found is not None else []
    found.append(name)
    for node in ast.walk(ast.parse((ROOT / f"{name}.py").read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
        for module in names:
            if (ROOT / f"{module}.py").exists() and module not in found:
                local_modules(module, found)
    return found


def test_copied_template_trains_and_continues(tiny_bert, topic_data, tmp_path):
    project = tmp_path / "my_task"
    shutil.copytree(ROOT / "model", project / "model")
    for module in local_modules("train"):  # train.py and, recursively, the modules it imports: core, loading, ...
        shutil.copy(ROOT / f"{module}.py", project)
    common = ["--model_name_or_path", str(tiny_bert), "--train_file", str(topic_data / "train.jsonl"),
              "--validation_file", str(topic_data / "valid.jsonl"), "--output_dir", "out", "--report_to", "none",
              "--learning_rate", "3e-3"]
    env = {"PYTHONPATH": ""}  # the copies, not the repository
    first = run([sys.executable, "train.py", *common, "--num_train_epochs", "2"], cwd=project, env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    out = project / "out"
    before = json.loads((out / "training_state.json").read_text())
    assert before["epoch"] == 1 and before["completed_steps"] == 20

    # huggingface-template's "train to epoch N, then continue": epoch count and best loss carry over
    more = run([sys.executable, "train.py", *common, "--num_train_epochs", "3", "--resume_from_checkpoint", "auto"],
               cwd=project, env=env)
    assert more.returncode == 0, more.stderr[-2000:]
    after = json.loads((out / "training_state.json").read_text())
    log = json.loads((out / "log.json").read_text())
    assert after["epoch"] == 2 and after["completed_steps"] == 30
    assert set(k for k in log if k.startswith("Epoch")) == {"Epoch 0", "Epoch 1", "Epoch 2"}
    assert after["best_metric"] <= before["best_metric"]
    if log["Epoch 2"]["valid_log"]["loss"] > before["best_metric"]:
        assert after["best_step"] == before["best_step"]  # the earlier best is kept, not forgotten

    # best/ loads with the template's own class, from the copy
    check = run([sys.executable, "-c", "from model import Model; m = Model.from_pretrained('out/best'); "
                 "print(m.config.id2label[0], m.config.encoder.model_type)"], cwd=project, env=env)
    assert check.returncode == 0 and check.stdout.split() == ["food", "bert"], check.stderr[-2000:]


def test_saved_model_predicts_the_same_after_reload(tiny_bert, topic_data, tmp_path):
    from transformers import AutoTokenizer

    from model import Collator, Model, generate_dataset

    out = tmp_path / "out"
    train.main(["--model", str(tiny_bert), "--train_file", str(topic_data / "train.jsonl"), "--output_dir", str(out),
                "--report_to", "none", "--max_train_steps", "3"])
    model = Model.from_pretrained(out / "best").eval()
    tokenizer = AutoTokenizer.from_pretrained(out / "best")
    batch = Collator(tokenizer)(generate_dataset(topic_data / "test.jsonl", tokenizer, model.config.label2id)[:4])
    with torch.no_grad():
        first = model(**batch)
        again = Model.from_pretrained(out / "last").eval()(**batch)
    assert first.logits.shape == (4, 5) and first.loss is not None
    assert torch.equal(first.logits, again.logits)  # no eval set: best/ is the final model, like last/


@pytest.mark.parametrize("content, expected", [
    ('{"text": "a goal", "labels": ["sports"]}\n{"text": "x", "labels": ["sports"]\n', ":2: not valid JSON"),
    ('{"text": "a goal", "labels": ["sports"]}\n{"body": "x"}\n', ":2: no string field 'text'"),
    ('{"text": "a goal", "labels": "sports"}\n', ":1: 'labels' is not a list of strings"),
    ("", ":1: no records"),
])
def test_bad_training_file_is_one_clear_line(tiny_bert, tmp_path, capsys, content, expected):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content)
    with pytest.raises(SystemExit) as e:
        train.main(["--model", str(tiny_bert), "--train_file", str(bad), "--output_dir", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and err.startswith(f"error: {bad}{expected}")
    assert "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "out" / "best").exists()


def test_unknown_label_in_validation_file(tiny_bert, topic_data, tmp_path, capsys):
    valid = tmp_path / "valid.jsonl"
    valid.write_text('{"text": "a goal", "labels": ["sports"]}\n{"text": "rain", "labels": ["weather"]}\n')
    with pytest.raises(SystemExit) as e:
        train.main(["--model", str(tiny_bert), "--train_file", str(topic_data / "train.jsonl"),
                    "--validation_file", str(valid), "--output_dir", str(tmp_path / "out")])
    assert e.value.code == 2
    assert capsys.readouterr().err.strip() == f"error: {valid}:2: label 'weather' is not in the training data's labels"


def test_template_trains_on_a_distilbert_encoder(topic_data, tmp_path):
    """DistilBERT has no pooler and refuses add_pooling_layer: the head pools the first token's hidden state."""
    import tiny
    from model import Model

    encoder = tiny.build_model("distilbert", tmp_path / "tiny-distilbert")
    out = tmp_path / "out"
    train.main(["--model", str(encoder), "--train_file", str(topic_data / "train.jsonl"), "--validation_file",
                str(topic_data / "valid.jsonl"), "--output_dir", str(out), "--report_to", "none",
                "--max_train_steps", "3"])
    model = Model.from_pretrained(out / "best")
    assert model.config.encoder.model_type == "distilbert" and type(model.encoder).__name__ == "DistilBertModel"
    assert json.loads((out / "eval_results.json").read_text())["loss"] > 0
