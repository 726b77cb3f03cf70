"""The guarantees of checkpoint.py under attack: a SIGKILL at every point of a save and at random moments resumes
bitwise equal to the uninterrupted run; no pickle is ever loaded; a damaged resume state stops with one line; an
earlier run replaced by --overwrite_output_dir survives a new run that fails or dies before its first checkpoint;
a full or read-only disk is one line."""
import json
import os
import pickle
import random
import shutil
import subprocess
import threading

import pytest
import torch
from bad_input import expect_error, snapshot
from conftest import read_log, run_killer
from safetensors.torch import load_file

import checkpoint
import train

pytestmark = pytest.mark.usefixtures("one_thread")

# 80 examples, batch 4 x accumulation 2: 10 steps; evaluated and saved at steps 3, 6, 9 and 10
COMMON = ["--num_train_epochs", 1, "--per_device_train_batch_size", 4, "--gradient_accumulation_steps", 2,
          "--eval_steps", 3, "--logging_steps", 1, "--learning_rate", 3e-3, "--report_to", "none"]


def argv(model, data, out, *extra):
    return ["--model", model, "--train_file", data / "train.jsonl", "--validation_file", data / "valid.jsonl",
            "--output_dir", out, *COMMON, *extra]


def weights(folder):
    return load_file(str(folder / "model.safetensors"))


def assert_same_run(a, b):
    wa, wb = weights(a / "last"), weights(b / "last")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)  # bitwise
    assert read_log(a) == read_log(b)
    for name in ("best", "last"):
        sa, sb = (json.loads((d / name / "training_state.json").read_text()) for d in (a, b))
        assert {k: v for k, v in sa.items() if k != "args"} == {k: v for k, v in sb.items() if k != "args"}


@pytest.fixture(scope="module")
def full(tiny_bert, topic_data, tmp_path_factory):
    """The uninterrupted run, and how many kill points (steps, state writes, manifests, renames) it passes."""
    tmp = tmp_path_factory.mktemp("full")
    done = run_killer(tmp, "train", argv(tiny_bert, topic_data, tmp / "out"), COUNT_EVENTS=1)
    assert done.returncode == 0, done.stderr[-3000:]
    events = int(done.stdout.split("events:")[1].split()[0])
    return tmp / "out", events


# transformers' from_pretrained patches globals while it loads (PreTrainedModel.tie_weights among them): two threads
# loading at once can leave tie_weights a no-op for the rest of the process, and every later tied model half on the
# meta device. The random-moment test resumes two runs at a time in threads: their loads take turns.
LOADING = threading.Lock()


def kill_and_resume(tiny_bert, topic_data, tmp_path, full_run, **kill):
    out = tmp_path / "killed"
    died = run_killer(tmp_path, "train", argv(tiny_bert, topic_data, out), **kill)
    assert died.returncode == -9, f"{kill}: not killed ({died.returncode}) {died.stderr[-2000:]}"
    # whatever the moment, what is on disk after the start-up recovery is whole
    checkpoint.recover(out)
    from model import Model
    for name in ("best", "last"):
        if (out / name).exists():
            with LOADING:
                Model.from_pretrained(out / name)
    resumed = run_killer(tmp_path, "train", argv(tiny_bert, topic_data, out, "--resume_from_checkpoint", "auto"))
    assert resumed.returncode == 0, f"{kill}: {resumed.stderr[-3000:]}"
    assert_same_run(full_run, out)
    assert not [p.name for p in out.iterdir() if p.name.endswith((".tmp", ".old"))]


# every intermediate point of a save: the state written (no manifest), the folder complete in .tmp, the old folder
# renamed away, the new one in place, the old one half deleted; first and later saves, best/ and last/
SAVE_POINTS = [{"KILL_IN_SAVE": 2}, {"KILL_AFTER_MANIFEST": 3}, {"KILL_AFTER_OLD": 1}, {"KILL_AFTER_OLD": 2},
               {"KILL_AFTER_NEW": 4}, {"KILL_MID_DELETE": 1}]


@pytest.mark.parametrize("kill", SAVE_POINTS, ids=lambda k: "-".join(f"{a}{b}" for a, b in k.items()))
def test_kill_at_each_point_of_a_save_resumes_bitwise(tiny_bert, topic_data, tmp_path, full, kill):
    kill_and_resume(tiny_bert, topic_data, tmp_path, full[0], **kill)


def test_kill_at_ten_random_moments_resumes_bitwise(tiny_bert, topic_data, tmp_path, full):
    from concurrent.futures import ThreadPoolExecutor

    full_run, events = full
    moments = sorted(random.Random(12).sample(range(2, events + 1), 10))
    folders = [tmp_path / str(moment) for moment in moments]
    for folder in folders:
        folder.mkdir()
    with ThreadPoolExecutor(2) as pool:  # two single-threaded runs at a time
        list(pool.map(lambda m, f: kill_and_resume(tiny_bert, topic_data, f, full_run, KILL_AT_EVENT=m),
                      moments, folders))


def test_a_planted_pickle_never_runs(tiny_bert, topic_data, tmp_path, full):
    out = tmp_path / "out"
    died = run_killer(tmp_path, "train", argv(tiny_bert, topic_data, out), KILL_AT_STEP=8)
    assert died.returncode == -9
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    for name in ("custom_checkpoint_0.pkl", "random_states_0.pkl", "optimizer.bin", "scheduler.bin"):
        (out / "last" / "state" / name).write_bytes(pickle.dumps(Payload()))
    torch.save({"x": Payload()}, out / "last" / "state" / "optimizer.pt")
    resumed = run_killer(tmp_path, "train", argv(tiny_bert, topic_data, out, "--resume_from_checkpoint", "auto"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not marker.exists()
    assert_same_run(full[0], out)
    # nothing a run writes is a pickle
    for path in out.rglob("*"):
        if path.is_file() and not path.name.endswith((".pkl", ".bin", ".pt")):
            assert not path.read_bytes()[:2] == b"\x80\x04" and path.suffix in (".json", ".safetensors", ".md", ".txt", ".jsonl", ""), path


def damage(path, how):
    if how == "delete":
        path.unlink()
    elif how == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:  # garbage of the same length
        path.write_bytes(bytes(random.Random(0).randrange(256) for _ in range(path.stat().st_size)))


@pytest.fixture(scope="module")
def killed_run(tiny_bert, topic_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("killed")
    died = run_killer(tmp, "train", argv(tiny_bert, topic_data, tmp / "out"), KILL_AT_STEP=8)
    assert died.returncode == -9
    return tmp / "out"


@pytest.mark.parametrize("name,how", [
    ("state/rng_0.json", "delete"), ("state/rng_0.json", "truncate"), ("state/optimizer.safetensors", "garbage"),
    ("state/optimizer.safetensors", "truncate"), ("state/resume.json", "delete"), ("state/resume.json", "garbage"),
    ("state/manifest.json", "delete"), ("model.safetensors", "truncate"), ("model.safetensors", "garbage"),
    ("training_state.json", "garbage")])
def test_a_damaged_resume_state_stops_naming_the_file(tiny_bert, topic_data, tmp_path, killed_run, capfd, name, how):
    out = tmp_path / "out"
    shutil.copytree(killed_run, out)
    damage(out / "last" / name, how)
    expect_error(capfd, train.main, argv(tiny_bert, topic_data, out, "--resume_from_checkpoint", "auto"),
                 out / "last" / name, "damaged", run_dir=out)


@pytest.mark.parametrize("name,skipped", [("state/rng_0.json", "rng"), ("state/resume.json", "optimizer, schedule")])
def test_resume_inexact_goes_on_with_a_warning(tiny_bert, topic_data, tmp_path, killed_run, capfd, name, skipped):
    out = tmp_path / "out"
    shutil.copytree(killed_run, out)
    damage(out / "last" / name, "delete")
    train.main(list(map(str, argv(tiny_bert, topic_data, out, "--resume_from_checkpoint", "auto", "--resume_inexact"))))
    printed = capfd.readouterr().out
    assert f"resumed without the {skipped} state" in printed and "no longer exactly" in printed
    steps = json.loads((out / "log.json").read_text())["train"]
    lrs = [r["lr"] for r in steps if "lr" in r]
    assert json.loads((out / "training_state.json").read_text())["completed_steps"] == 10 and lrs[-1] == 0.0
    assert lrs == sorted(lrs, reverse=True)  # the schedule went on where it was, not from a new start


def test_a_finished_run_survives_a_replacing_run_that_fails(tiny_bert, topic_data, tmp_path, full, capfd):
    out = tmp_path / "out"
    shutil.copytree(full[0], out)
    (out / "predictions_dev.txt").write_text("an earlier run's predictions\n")
    before = snapshot(out)
    # fails at its first evaluation, after training steps and log records (so with progress bars before the line)
    with pytest.raises(SystemExit) as e:
        train.main(list(map(str, argv(tiny_bert, topic_data, out, "--overwrite_output_dir",
                                      "--metric_for_best_model", "nope"))))
    assert e.value.code == 2 and "error: --metric_for_best_model nope" in capfd.readouterr().err.splitlines()[-1]
    assert snapshot(out) == before
    assert not (out / checkpoint.PREVIOUS).exists()


@pytest.mark.parametrize("kill", [{"KILL_AT_STEP": 2}, {"KILL_IN_SAVE": 1}, {"KILL_AFTER_NEW": 1}])
def test_a_finished_run_survives_a_replacing_run_killed_before_its_first_checkpoint(
        tiny_bert, topic_data, tmp_path, full, capfd, kill):
    out = tmp_path / "out"
    shutil.copytree(full[0], out)
    before = snapshot(out)
    died = run_killer(tmp_path, "train", argv(tiny_bert, topic_data, out, "--overwrite_output_dir"), **kill)
    assert died.returncode == -9
    # the next start of any run puts it back: here one that refuses to touch the folder
    expect_error(capfd, train.main, argv(tiny_bert, topic_data, out), "already holds a run")
    assert snapshot(out) == before and not (out / checkpoint.PREVIOUS).exists()


def test_a_replaced_run_leaves_nothing_behind(tiny_bert, topic_data, tmp_path, full):
    out = tmp_path / "out"
    shutil.copytree(full[0], out)
    (out / "predictions_dev.txt").write_text("an earlier run's predictions\n")
    (out / "notes.txt").write_text("the user's own file\n")
    died = run_killer(tmp_path, "train", argv(tiny_bert, topic_data, out, "--overwrite_output_dir",
                                              "--max_train_steps", 4), KILL_AFTER_MANIFEST=2)
    assert died.returncode == -9  # killed after its first checkpoint: the earlier run is gone
    checkpoint.recover(out)
    assert not (out / "predictions_dev.txt").exists() and not (out / "eval_results.json").exists()
    assert (out / "notes.txt").exists() and not (out / checkpoint.PREVIOUS).exists()
    assert json.loads((out / "last" / "training_state.json").read_text())["completed_steps"] == 3


def test_recover_undoes_a_set_aside_cut_short(tmp_path):
    out = tmp_path / "out"
    for name in ("best", "last", "runs"):
        (out / name).mkdir(parents=True)
        (out / name / "f").write_text(name)
    (out / "log.json").write_text("{}")
    before = snapshot(out)
    (out / checkpoint.PREVIOUS).mkdir()
    os.replace(out / "best", out / checkpoint.PREVIOUS / "best")  # killed after the first move, no .moved mark
    checkpoint.recover(out)
    assert snapshot(out) == before and sorted(p.name for p in out.iterdir()) == ["best", "last", "log.json", "runs"]


def test_nan_before_any_checkpoint_says_so(tiny_bert, topic_data, tmp_path):
    from transformers import AutoTokenizer

    import core
    from model import Collator, Model, ModelConfig, generate_dataset

    args = train.parse_args(list(map(str, argv(tiny_bert, topic_data, tmp_path / "out"))))
    accelerator = core.setup(args)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    config = ModelConfig.from_encoder(tiny_bert, ["food", "music", "politics", "science", "sports"])
    data = generate_dataset(topic_data / "train.jsonl", tokenizer, config.label2id)
    with pytest.raises(SystemExit) as e:
        core.train(args, accelerator, Model.from_encoder(config), tokenizer, data, data[:8], Collator(tokenizer),
                   compute_loss=lambda model, batch: model(**batch).loss * float("nan"))
    assert str(e.value.code) == "error: loss is not finite at step 1; stopping: no checkpoint was saved"


needs_root = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="mounting a tmpfs needs root")


def mount(folder, *options):
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(folder)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")


@needs_root
def test_a_full_disk_is_one_line_and_keeps_the_last_checkpoint(tiny_bert, topic_data, tmp_path, full, capfd):
    size = lambda folder: sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    best, last = size(full[0] / "best"), size(full[0] / "last")
    disk = tmp_path / "disk"
    mount(disk, f"size={last + best // 2 + 64 * 1024}")  # one best/ and last/ (its weights linked), half a new best/
    try:
        out = disk / "out"
        with pytest.raises(SystemExit) as e:  # during training: progress bars come before the line
            train.main(list(map(str, argv(tiny_bert, topic_data, out))))
        line = capfd.readouterr().err.splitlines()[-1]
        assert e.value.code == 2 and line == (f"error: cannot save {out / 'best'}: No space left on device; "
                                              "best/ keeps step 3 and last/ keeps step 3"), line
        assert not [p.name for p in out.iterdir() if p.name.endswith((".tmp", ".old"))]
        from model import Model
        Model.from_pretrained(out / "last")
    finally:
        subprocess.run(["umount", str(disk)])


@needs_root
def test_a_read_only_output_dir_is_one_line(tiny_bert, topic_data, tmp_path, capfd):
    disk = tmp_path / "ro"
    mount(disk, "size=1m", "ro")
    try:
        expect_error(capfd, train.main, argv(tiny_bert, topic_data, disk / "out"), str(disk), "read-only")
    finally:
        subprocess.run(["umount", str(disk)])


def test_accelerate_launch_quiet_keeps_the_error_to_one_line(tiny_bert, topic_data, tmp_path):
    from conftest import run
    done = run(["accelerate", "launch", "-q", "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no",
                "--dynamo_backend", "no", "train.py",
                *map(str, argv(tiny_bert, topic_data, tmp_path / "out", "--per_device_train_batch_size", 0))])
    lines = [l for l in done.stderr.splitlines() if l.strip()]
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert lines == ["error: --per_device_train_batch_size 0: expected a whole number of at least 1"], done.stderr


def test_last_is_linked_from_best_when_they_are_the_same_step(full):
    """last/ of the same step as best/ shares its files (the weights are written once) and adds the resume state."""
    best, last = full[0] / "best", full[0] / "last"
    assert json.loads((best / "training_state.json").read_text())["completed_steps"] == \
        json.loads((last / "training_state.json").read_text())["completed_steps"]
    assert not (best / "state").exists() and (last / "state" / "optimizer.safetensors").is_file()
    for name in ("model.safetensors", "config.json", "training_state.json", "README.md"):
        assert os.path.samefile(best / name, last / name), name
