import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import tiny  # noqa: E402


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest on one thread, and a loaded 2-core machine makes two threads spin for seconds.
    A module opts in with pytestmark = pytest.mark.usefixtures("one_thread")."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def datasets_cache(tmp_path_factory):
    """A temporary $HF_DATASETS_CACHE (ner.main's default --cache_dir is under it), not the user's. A module opts in
    with pytestmark = pytest.mark.usefixtures("datasets_cache")."""
    patch = pytest.MonkeyPatch()
    patch.setenv("HF_DATASETS_CACHE", str(tmp_path_factory.mktemp("hf-datasets")))
    yield
    patch.undo()


@pytest.fixture(scope="session")
def topic_data(tmp_path_factory):
    return tiny.write_topic_data(tmp_path_factory.mktemp("topics"), sizes=(80, 24, 24))


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory, topic_data):
    return tiny.build_model("bert", tmp_path_factory.mktemp("tiny-bert"), dropout=0.1)


@pytest.fixture(scope="session")
def tiny_bert_nodrop(tmp_path_factory):
    """No dropout: runs that must agree across batch layouts (accumulation, 2 processes)."""
    return tiny.build_model("bert", tmp_path_factory.mktemp("tiny-bert-nodrop"), dropout=0.0)


@pytest.fixture(autouse=True)
def transformers_globals_intact():
    """transformers patches globals while it loads a model and restores them after; loads racing in two threads
    can leave a patch in place (tie_weights a no-op: every later tied model half on the meta device). Caught at the
    test that did it, not tests later."""
    from transformers import PreTrainedModel
    yield
    assert PreTrainedModel.tie_weights.__name__ == "tie_weights", "a from_pretrained race left tie_weights patched"


def read_log(folder):
    """log.json without its wall-clock seconds (which differ between two runs of the same training): the records a
    resumed run must reproduce exactly."""
    log = json.loads((Path(folder) / "log.json").read_text())
    assert set(log.pop("seconds")) == {"train", "evaluate", "save"}
    return log


def run(args, cwd=ROOT, env=None, timeout=300):
    """A command in a subprocess with the test environment; returns CompletedProcess (text)."""
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


KILLER = textwrap.dedent("""
    import importlib, os, shutil, signal, sys, torch
    import checkpoint
    torch.set_num_threads(1)
    env = lambda name: int(os.environ.get(name, 0))
    kill = lambda: os.kill(os.getpid(), signal.SIGKILL)
    counts = {}
    def counted(name, original, when=lambda *a: True, before=False):
        def wrapper(*a, **k):
            hit = when(*a)  # asked before the call: a rename changes what it looks at
            if hit:
                counts[name] = counts.get(name, 0) + 1
                if before and counts[name] == env(name):
                    kill()
            result = original(*a, **k)
            if not before and hit and counts[name] == env(name):
                kill()
            return result
        return wrapper
    rmtree = shutil.rmtree
    def partial_rmtree(path, *a, **k):  # delete some files of a replaced folder, then die
        if str(path).endswith(".old") and env("KILL_MID_DELETE"):
            counts["delete"] = counts.get("delete", 0) + 1
            if counts["delete"] == env("KILL_MID_DELETE"):
                files = sorted(p for p in __import__("pathlib").Path(path).rglob("*") if p.is_file())
                for p in files[:len(files) // 2]:
                    p.unlink()
                kill()
        return rmtree(path, *a, **k)
    # KILL_AT_STEP=N: before optimizer step N; KILL_IN_SAVE=N: after the N-th resume state is written (before the
    # manifest); KILL_AFTER_MANIFEST=N: a folder complete in .tmp, not swapped in; KILL_AFTER_OLD=N: after the N-th
    # rename of a folder to .old; KILL_AFTER_NEW=N: after the N-th .tmp renamed into place; KILL_MID_DELETE=N: half
    # way through deleting the N-th .old; KILL_AT_EVENT=N: at the N-th of all those events (a moment chosen at random)
    torch.optim.AdamW.step = counted("KILL_AT_STEP", torch.optim.AdamW.step, before=True)
    checkpoint.write_state = counted("KILL_IN_SAVE", checkpoint.write_state)
    checkpoint.write_manifest = counted("KILL_AFTER_MANIFEST", checkpoint.write_manifest)
    replace = os.replace
    checkpoint.os.replace = os.replace = counted("KILL_AFTER_OLD", counted(
        "KILL_AFTER_NEW", replace, when=lambda src, dst: str(src).endswith(".tmp") and os.path.isdir(src)),
        when=lambda src, dst: str(dst).endswith(".old"))
    checkpoint.shutil.rmtree = shutil.rmtree = partial_rmtree
    if env("KILL_AT_EVENT") or os.environ.get("COUNT_EVENTS"):
        events = {"n": 0}
        def event(original):
            def wrapper(*a, **k):
                events["n"] += 1
                if events["n"] == env("KILL_AT_EVENT"):
                    kill()
                return original(*a, **k)
            return wrapper
        torch.optim.AdamW.step = event(torch.optim.AdamW.step)
        checkpoint.write_state, checkpoint.write_manifest = event(checkpoint.write_state), event(checkpoint.write_manifest)
        checkpoint.os.replace = os.replace = event(os.replace)
    importlib.import_module(sys.argv[1]).main(sys.argv[2:])
    if os.environ.get("COUNT_EVENTS"):
        print("events:", events["n"])
""")


def run_killer(tmp_path, module, args, **env):
    """module.main(args) in a subprocess that SIGKILLs itself at a chosen moment (see KILLER's comments);
    returncode -9 when it did."""
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    return run([sys.executable, str(script), module, *map(str, args)], env={k: str(v) for k, v in env.items()})
