"""The shared loop (core.py), driven through train.py and directly: outputs, accumulation, exact resume
after SIGKILL, a kill during a save, overwrite refusal, the NaN stop, two processes."""
import argparse
import json
import os

import numpy as np
import pytest
import torch
from conftest import read_log, run, run_killer
from safetensors.torch import load_file

import batches
import core
import flags
import tiny
import train


def args_for(model, data, out, *extra):
    return ["--model", str(model), "--train_file", str(data / "train.jsonl"),
            "--validation_file", str(data / "valid.jsonl"), "--output_dir", str(out), "--report_to", "none",
            "--per_device_train_batch_size", "8", "--learning_rate", "3e-3", *map(str, extra)]


def weights(folder):
    return load_file(str(folder / "model.safetensors"))


def state(folder):
    return json.loads((folder / "training_state.json").read_text())


def max_diff(a, b):
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def test_outputs_layout_logs_and_model_card(tiny_bert, topic_data, tmp_path):
    out = tmp_path / "out"
    best = train.main(args_for(tiny_bert, topic_data, out, "--num_train_epochs", 2, "--report_to", "tensorboard",
                               "--test_file", topic_data / "test.jsonl"))
    for name in ("best", "last"):
        files = {p.name for p in (out / name).iterdir()}
        assert {"config.json", "model.safetensors", "tokenizer.json", "training_state.json", "README.md"} <= files
        assert not any(f.endswith((".bin", ".pt")) for f in files)  # weights only as safetensors
    state_files = {p.name for p in (out / "last" / "state").iterdir()}
    assert state_files == {"optimizer.safetensors", "resume.json", "rng_0.json", "manifest.json"}  # no pickle
    assert not (out / "best" / "state").exists()
    assert any(p.name.startswith("events.out.tfevents") for p in (out / "runs").iterdir())

    log = json.loads((out / "log.json").read_text())
    assert set(log["Epoch 0"]) == {"train_log", "valid_log"} and set(log["Epoch 1"]) == {"train_log", "valid_log"}
    assert {"loss", "f1_micro", "f1_macro", "exact_match"} <= set(log["Epoch 1"]["valid_log"])
    assert [r["step"] for r in log["train"]] == [10, 20] and [r["step"] for r in log["eval"]] == [10, 20]
    train_records = log["train"]
    assert all("lr" in r for r in train_records) and not any("lr" in r for r in log["eval"])  # kept apart
    assert train_records[-1]["lr"] == 0.0 and train_records[0]["lr"] > 0  # linear schedule ends at 0 exactly

    top = state(out)
    assert top["completed_steps"] == 20 and top["epoch"] == 1 and top["args"]["learning_rate"] == 3e-3
    assert state(out / "best")["best_step"] in (10, 20)
    assert best["loss"] == top["best_metric"] == min(log[f"Epoch {e}"]["valid_log"]["loss"] for e in (0, 1))
    # best/ reloaded gives the metrics it was chosen for
    assert json.loads((out / "eval_results.json").read_text())["loss"] == pytest.approx(best["loss"], abs=1e-6)
    assert (out / "test_results.json").exists()
    assert len((out / "predictions_test.jsonl").read_text().splitlines()) == 24
    card = (out / "best" / "README.md").read_text()
    import yaml
    meta = yaml.safe_load(card.split("---")[1])
    assert "base_model" not in meta and str(tiny_bert) not in card  # a local path is no hub id
    assert f"fine-tuned from a local model (`{tiny_bert.name}`)" in card and "| learning_rate | 0.003 |" in card
    results = meta["model-index"][0]["results"][0]
    assert {m["name"]: m["value"] for m in results["metrics"]}["loss"] == pytest.approx(best["loss"])
    assert f"| loss | {best['loss']:.4f} |" in card


def test_hf_model_through_core_loads_in_pipeline(tiny_bert, topic_data, tmp_path):
    """A plain AutoModelFor* trained by core.train: best/ and last/ load in pipeline() by label name."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, pipeline

    labels = sorted(json.loads(l)["labels"][0] for l in (topic_data / "train.jsonl").read_text().splitlines())
    labels = sorted(set(labels))
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)

    def load(name):
        rows = [json.loads(l) for l in (topic_data / name).read_text().splitlines()]
        return [{**tokenizer(r["text"]), "labels": labels.index(r["labels"][0])} for r in rows]

    parser = flags.add_args(__import__("argparse").ArgumentParser())
    args = parser.parse_args(["--output_dir", str(tmp_path / "hf"), "--num_train_epochs", "1", "--report_to", "none",
                              "--model", str(tiny_bert), "--metric_for_best_model", "accuracy"])
    accelerator = core.setup(args)
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_bert, id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
    accuracy = lambda a: {"accuracy": float((a["logits"].argmax(-1) == a["labels"]).mean())}
    best = core.train(args, accelerator, model, tokenizer, load("train.jsonl"), load("valid.jsonl"),
                      DataCollatorWithPadding(tokenizer), evaluate=accuracy)
    assert set(best) == {"loss", "accuracy"} and 0 <= best["accuracy"] <= 1
    for name in ("best", "last"):
        result = pipeline("text-classification", model=str(tmp_path / "hf" / name), device="cpu")("a goal in the match")
        assert result[0]["label"] in labels


def test_gradient_accumulation_matches_the_big_batch(tiny_bert_nodrop, topic_data, tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    train.main(args_for(tiny_bert_nodrop, topic_data, a, "--num_train_epochs", 1, "--classifier_dropout", 0))
    train.main(args_for(tiny_bert_nodrop, topic_data, b, "--num_train_epochs", 1,
                        "--per_device_train_batch_size", 4, "--gradient_accumulation_steps", 2, "--classifier_dropout", 0))
    assert state(a)["completed_steps"] == state(b)["completed_steps"] == 10
    assert max_diff(weights(a / "last"), weights(b / "last")) < 1e-5
    # 20 micro-batches in 3s: 7 optimizer steps (the last one takes the 2 left over), schedule ends at 0
    train.main(args_for(tiny_bert_nodrop, topic_data, c, "--num_train_epochs", 1,
                        "--per_device_train_batch_size", 4, "--gradient_accumulation_steps", 3))
    assert state(c)["completed_steps"] == 7
    assert json.loads((c / "log.json").read_text())["train"][-1]["lr"] == 0.0


def test_exact_resume_after_sigkill_mid_epoch_with_accumulation(tiny_bert, topic_data, tmp_path):
    # 80 examples, batch 4, accumulation 2: 10 steps per epoch, 30 in all; saves every 4 steps.
    # Killed before step 15 (second epoch), it resumes from step 12, 4 batches into epoch 1. Dropout is on,
    # so the RNG state must come back too.
    common = ["--num_train_epochs", 3, "--per_device_train_batch_size", 4, "--gradient_accumulation_steps", 2,
              "--eval_steps", 4, "--logging_steps", 1]
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert run_killer(tmp_path, "train", args_for(tiny_bert, topic_data, full, *common)).returncode == 0
    died = run_killer(tmp_path, "train", args_for(tiny_bert, topic_data, killed, *common), KILL_AT_STEP=15)
    assert died.returncode == -9
    assert state(killed / "last")["completed_steps"] == 12 and state(killed / "last")["batches_in_epoch"] == 4
    resumed = run_killer(tmp_path, "train", args_for(tiny_bert, topic_data, killed, *common, "--resume_from_checkpoint", "auto"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stdout
    a, b = weights(full / "last"), weights(killed / "last")
    assert all(torch.equal(a[k], b[k]) for k in a)  # bitwise
    assert json.loads((full / "eval_results.json").read_text()) == json.loads((killed / "eval_results.json").read_text())
    assert read_log(full) == read_log(killed)  # no step logged twice, none missing


def test_kill_during_save_keeps_last_and_best_loadable(tiny_bert, topic_data, tmp_path):
    from model import Model

    out = tmp_path / "out"
    common = ["--num_train_epochs", 2, "--eval_steps", 4]
    died = run_killer(tmp_path, "train", args_for(tiny_bert, topic_data, out, *common), KILL_IN_SAVE=2)
    assert died.returncode == -9
    assert (out / "last.tmp").exists()  # the interrupted save
    for name in ("best", "last"):
        Model.from_pretrained(out / name)
    assert state(out / "last")["completed_steps"] == 4
    # a kill between the two renames of a save: last/ moved aside, the new one not yet in place
    os.replace(out / "last", out / "last.old")
    resumed = run_killer(tmp_path, "train", args_for(tiny_bert, topic_data, out, *common, "--resume_from_checkpoint", "auto"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stdout and "at step 4" in resumed.stdout
    assert state(out)["completed_steps"] == 20 and not (out / "last.tmp").exists() and not (out / "last.old").exists()


def test_refuses_an_output_dir_holding_a_run(tiny_bert, topic_data, tmp_path, capsys):
    out = tmp_path / "out"
    train.main(args_for(tiny_bert, topic_data, out, "--max_train_steps", 2))
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        train.main(args_for(tiny_bert, topic_data, out, "--max_train_steps", 2))
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and str(out) in err and "--overwrite_output_dir" in err and "\n" not in err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before  # nothing touched
    train.main(args_for(tiny_bert, topic_data, out, "--max_train_steps", 3, "--overwrite_output_dir"))
    assert state(out)["completed_steps"] == 3


def test_nan_loss_stops_naming_the_step_and_keeps_best(tiny_bert, topic_data, tmp_path, capsys):
    from model import Collator, Model, ModelConfig, generate_dataset

    out = tmp_path / "out"
    args = train.parse_args(args_for(tiny_bert, topic_data, out, "--eval_steps", 2, "--logging_steps", 1))
    accelerator = core.setup(args)
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    config = ModelConfig.from_encoder(tiny_bert, ["food", "music", "politics", "science", "sports"])
    model = Model.from_encoder(config)
    data = generate_dataset(topic_data / "train.jsonl", tokenizer, config.label2id)
    calls = []

    def compute_loss(model, batch):
        calls.append(1)
        loss = model(**batch).loss
        return loss * float("nan") if len(calls) == 5 else loss

    with pytest.raises(SystemExit) as e:
        core.train(args, accelerator, model, tokenizer, data, data[:16], Collator(tokenizer),
                   compute_loss=compute_loss)
    assert "loss is not finite at step 5" in str(e.value.code)
    assert state(out / "best")["completed_steps"] == 4 and state(out / "last")["completed_steps"] == 4
    assert all(torch.isfinite(t).all() for t in weights(out / "best").values())


def test_early_stopping(tiny_bert, topic_data, tmp_path):
    out = tmp_path / "out"
    # learning rate 0: the eval loss never improves after the first eval
    train.main(args_for(tiny_bert, topic_data, out, "--learning_rate", 0, "--eval_steps", 2,
                        "--early_stopping_patience", 2, "--num_train_epochs", 3))
    assert state(out)["completed_steps"] == 6 and state(out)["best_step"] == 2


def test_bf16_on_cpu_with_length_grouping(tiny_bert, topic_data, tmp_path):
    out = tmp_path / "out"
    best = train.main(args_for(tiny_bert, topic_data, out, "--mixed_precision", "bf16", "--max_train_steps", 4,
                               "--group_by_length"))
    assert np.isfinite(best["loss"]) and weights(out / "last")["classifier.weight"].dtype == torch.float32


def test_two_processes_match_one(tiny_bert_nodrop, topic_data, tmp_path):
    """accelerate launch --num_processes 2 (gloo on CPU) with batch 4 each = one process with batch 8."""
    one, two = tmp_path / "one", tmp_path / "two"
    common = ["--num_train_epochs", 2, "--eval_steps", 5, "--per_device_eval_batch_size", 5, "--classifier_dropout", 0]
    train.main(args_for(tiny_bert_nodrop, topic_data, one, *common))
    launched = run(["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                    "--mixed_precision", "no", "--dynamo_backend", "no", "train.py",
                    *args_for(tiny_bert_nodrop, topic_data, two, *common, "--per_device_train_batch_size", 4)])
    # every rank's error, not only the last one printed
    errors = [l for l in launched.stderr.splitlines() if "Error" in l or l.startswith(("error:", "[rank"))]
    assert launched.returncode == 0, "\n".join(errors) + "\n...\n" + launched.stderr[-3000:]
    assert (two / "last" / "state" / "rng_1.json").exists()  # both processes saved their RNG
    s1, s2 = state(one), state(two)
    assert s1["completed_steps"] == s2["completed_steps"] == 20
    r1, r2 = (json.loads((d / "eval_results.json").read_text()) for d in (one, two))
    assert r1.keys() == r2.keys() and all(r1[k] == pytest.approx(r2[k], abs=1e-5) for k in r1)
    # dev batches run longest first over both processes; the predictions come back in the file's order
    gold = [[json.loads(l)["gold"] for l in (d / "predictions_dev.jsonl").read_text().splitlines()] for d in (one, two)]
    valid = [json.loads(l)["labels"] for l in (topic_data / "valid.jsonl").read_text().splitlines()]
    assert gold[0] == gold[1] == [sorted(v) for v in valid]
    log1, log2 = (json.loads((d / "log.json").read_text()) for d in (one, two))
    log1, log2 = log1["train"] + log1["eval"], log2["train"] + log2["eval"]
    assert [r["step"] for r in log1] == [r["step"] for r in log2]  # written once, by the main process
    assert [r["lr"] for r in log1 if "lr" in r] == pytest.approx([r["lr"] for r in log2 if "lr" in r])
    assert max_diff(weights(one / "last"), weights(two / "last")) < 1e-4


def test_epoch_sampler_is_seeded_and_groups_lengths():
    lengths = list(np.random.default_rng(0).integers(2, 60, size=400))
    plain, grouped = batches.EpochSampler(400, 7), batches.EpochSampler(400, 7, lengths, group_size=8)
    assert list(plain) == list(batches.EpochSampler(400, 7))
    plain.set_epoch(1)
    assert list(plain) != list(batches.EpochSampler(400, 7)) and sorted(plain) == list(range(400))
    grouped.set_epoch(1)
    assert sorted(grouped) == list(range(400))
    padded = lambda order: sum(max(lengths[i] for i in order[k:k + 8]) * 8 for k in range(0, 400, 8))
    assert padded(list(grouped)) < 0.75 * padded(list(plain))
    small = batches.EpochSampler(400, 7, lengths, group_size=2)  # 4 mega-batches of 100
    for epoch in range(4):  # the longest example in the first batch: the largest allocation while memory is fresh
        small.set_epoch(epoch)
        assert lengths[next(iter(small))] == max(lengths)


def test_streamed_training_set_restarts_until_max_steps(tiny_bert, topic_data, tmp_path):
    from transformers import AutoTokenizer

    from model import Collator, Model, ModelConfig, generate_dataset

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    config = ModelConfig.from_encoder(tiny_bert, ["food", "music", "politics", "science", "sports"])
    examples = generate_dataset(topic_data / "train.jsonl", tokenizer, config.label2id)

    class Stream(torch.utils.data.IterableDataset):  # no __len__: read front to back, like --streaming
        def __iter__(self):
            return iter(examples)

    out = tmp_path / "out"
    args = train.parse_args(args_for(tiny_bert, topic_data, out, "--max_train_steps", 15))
    accelerator = core.setup(args)
    core.train(args, accelerator, Model.from_encoder(config), tokenizer, Stream(), examples[:16], Collator(tokenizer))
    log = json.loads((out / "log.json").read_text())
    assert state(out)["completed_steps"] == 15 and state(out)["epoch"] == 1  # 10 batches a pass: two passes
    assert "valid_log" in log["Epoch 0"] and "valid_log" in log["Epoch 1"]
    args.max_train_steps = -1
    with pytest.raises(SystemExit):
        core.train(args, accelerator, Model.from_encoder(config), tokenizer, Stream(), None, Collator(tokenizer))


def test_trainer_spellings_checkpoints_and_their_limit(tiny_bert, topic_data, tmp_path):
    out = tmp_path / "out"
    train.main(args_for(tiny_bert, topic_data, out, "--max_steps", 7, "--warmup_steps", 2, "--bf16",
                        "--save_steps", 2, "--save_total_limit", 2))
    top = state(out)
    assert top["completed_steps"] == 7 and top["args"]["num_warmup_steps"] == 2
    assert top["args"]["mixed_precision"] == "bf16"
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-6"]  # 2 and 4 rotated out
    assert state(out / "checkpoint-6")["completed_steps"] == 6
    from model import Model
    Model.from_pretrained(out / "checkpoint-6")
    # a checkpoint resumes like last/: from step 6 to the same end, bitwise
    again = tmp_path / "again"
    train.main(args_for(tiny_bert, topic_data, again, "--max_steps", 7, "--warmup_steps", 2, "--bf16",
                        "--resume_from_checkpoint", out / "checkpoint-6"))
    a, b = weights(out / "last"), weights(again / "last")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_report_to_a_missing_tracker_is_one_line(tiny_bert, topic_data, tmp_path, capfd):
    from bad_input import expect_error
    import importlib.util
    missing = next(n for n, packages in flags.TRACKERS.items() if not any(importlib.util.find_spec(p) for p in packages))
    expect_error(capfd, train.main, args_for(tiny_bert, topic_data, tmp_path / "o", "--report_to", missing),
                 f"--report_to {missing}: the", "not installed")
    expect_error(capfd, train.main, args_for(tiny_bert, topic_data, tmp_path / "o", "--report_to", "tensorbored"),
                 "--report_to tensorbored: expected tensorboard")


def test_a_finished_run_extended_continues_its_schedule(tiny_bert, topic_data, tmp_path):
    out = tmp_path / "out"
    common = ["--logging_steps", 1, "--num_warmup_steps", 3]
    train.main(args_for(tiny_bert, topic_data, out, "--num_train_epochs", 2, *common))
    train.main(args_for(tiny_bert, topic_data, out, "--num_train_epochs", 4, *common, "--resume_from_checkpoint", "auto"))
    lrs = {r["step"]: r["lr"] for r in json.loads((out / "log.json").read_text())["train"]}
    # the 4-epoch plan (40 steps, linear, warm-up 3) from step 21 on: no second warm-up, no jump from 0
    assert lrs[20] == 0.0 and lrs[21] == pytest.approx(3e-3 * (40 - 21) / (40 - 3)) and lrs[40] == 0.0


def test_a_checkpoint_at_an_evaluation_links_last_and_resumes(tiny_bert, topic_data, tmp_path):
    """checkpoint-STEP/ of a step that last/ was just saved at shares last/'s files (weights and resume state written
    once) and still resumes bitwise, its manifest checked."""
    out, again = tmp_path / "out", tmp_path / "again"
    common = ("--max_steps", 6, "--eval_steps", 2, "--save_steps", 2)
    train.main(args_for(tiny_bert, topic_data, out, *common))
    for name in ("model.safetensors", "training_state.json", "state/optimizer.safetensors", "state/manifest.json"):
        assert os.path.samefile(out / "checkpoint-6" / name, out / "last" / name), name
    train.main(args_for(tiny_bert, topic_data, again, *common, "--resume_from_checkpoint", out / "checkpoint-4"))
    a, b = weights(out / "last"), weights(again / "last")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_evaluation_runs_longest_first_and_returns_dataset_order(tiny_bert):
    """core.eval_loader batches longest first (little padding); predict() hands the arrays back in dataset order,
    equal to a pass in dataset order, for a list of examples and a datasets.Dataset alike."""
    import datasets
    from accelerate import Accelerator
    from transformers import AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    model = AutoModelForTokenClassification.from_pretrained(tiny_bert, num_labels=3)
    rng = np.random.default_rng(0)
    words = " ".join(tiny.corpus(40)).split()
    texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 30)))) for _ in range(37)]
    data = [{**enc, "labels": [(i + j) % 3 for j in range(len(enc["input_ids"]))]}
            for i, enc in enumerate(dict(tok(t)) for t in texts)]
    collator = DataCollatorForTokenClassification(tok)
    accelerator = Accelerator(cpu=True)
    args = argparse.Namespace(per_device_eval_batch_size=4, dataloader_num_workers=0, seed=0)
    _, plain = core.predict(accelerator, model, accelerator.prepare(batches.loader(data, 4, collator, args)))
    for dataset in (data, datasets.Dataset.from_list(data)):
        loader = core.eval_loader(accelerator, dataset, collator, args)
        widths = [batch["input_ids"].shape[1] for batch in loader]
        assert widths == sorted(widths, reverse=True) and widths[0] == max(len(x["input_ids"]) for x in data)
        _, arrays = core.predict(accelerator, model, loader)
        for i, example in enumerate(data):
            n = len(example["labels"])
            assert arrays["labels"][i, :n].tolist() == example["labels"] and (arrays["labels"][i, n:] == -100).all()
            assert np.allclose(arrays["logits"][i, :n], plain["logits"][i, :n], atol=1e-5)
    assert batches.longest_first([{"input_ids": [1, 2]}] * 3) is None  # all one length: dataset order


FREED = """
import sys
import torch
import heap
page = {page}
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page
if sys.argv[1].startswith("trim"):  # a block freed inside the heap, where freeing alone gives nothing back
    heap.TRIM_EVERY, heap.TRIM_STEPS = 0.0, 1  # (core.train waits 10 s and 10 steps between trims)
    if sys.argv[1] == "trim-varied":  # core.setup(..., varied_batches=True)
        heap.give_back_large_blocks()
    trim = heap.Trim(torch.device("cpu"))
    before = rss()
    block = torch.ones(4 * 2 ** 20)
    pin = torch.ones(1000)  # above it in the heap
    del block
    kept = rss() - before
    trim()
    print(kept, rss() - before)
    sys.exit()
if sys.argv[1] == "setting":
    heap.give_back_large_blocks()
kept = []
for _ in range(3):  # glibc's own policy maps the first block and serves the later ones from its heap
    before = rss()
    block = torch.ones(4 * 2 ** 20)  # 16 MB, touched
    del block
    kept.append(rss() - before)
print(max(kept[1:]), int(heap.trim_with is not None))  # left resident by the later blocks; trimming on
"""
GLIBC = pytest.mark.skipif(not os.confstr_names.get("CS_GNU_LIBC_VERSION"), reason="glibc's malloc")


def freed(how, **env):
    import subprocess
    import sys
    env = {**os.environ, "OMP_NUM_THREADS": "1", **env}
    script = FREED.format(page=os.sysconf("SC_PAGE_SIZE"))
    out = subprocess.run([sys.executable, "-c", script, how], env=env, capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(core.__file__)).stdout
    return [int(x) for x in out.split()]


@GLIBC
@pytest.mark.parametrize("user_threshold", [False, True])
def test_a_cpu_run_gives_freed_large_blocks_back(user_threshold):
    """core.setup's allocator setting for varied batches on a CPU (heap.give_back_large_blocks): a 16 MB block freed
    goes back to the system at once, not only the first one (glibc's own threshold rises to it, and later ones stay
    resident); a user's MALLOC_MMAP_THRESHOLD_ is left alone (at 64 MB, with no trimming, the heap keeps them), and
    then core.train does not trim either."""
    env = {"MALLOC_MMAP_THRESHOLD_": str(64 * 2 ** 20), "MALLOC_TRIM_THRESHOLD_": str(2 ** 30)} if user_threshold \
        else {}
    (with_setting, trims), (without, _) = freed("setting", **env), freed("none", **env)
    assert without > 8 * 2 ** 20  # glibc's own policy: the block stays in the heap
    if user_threshold:
        assert with_setting > 8 * 2 ** 20 and not trims
    else:
        assert with_setting < 2 ** 20 and trims


@GLIBC
def test_the_heaps_free_pages_go_back_every_few_seconds_of_training():
    """heap.Trim, called by core.train after each optimizer step: in a run of varied batches, a block freed inside
    glibc's heap stays resident until the trim gives its pages back; in a run of one batch shape (no
    varied_batches) the trim does nothing."""
    env = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2 ** 30)}  # every block in the heap, kept
    kept, after_trim = freed("trim-varied", **env)
    assert kept > 8 * 2 ** 20 and after_trim < 4 * 2 ** 20
    kept, after_trim = freed("trim-uniform", **env)
    assert kept > 8 * 2 ** 20 and after_trim > 8 * 2 ** 20
