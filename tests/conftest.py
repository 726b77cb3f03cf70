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


def run(args, cwd=ROOT, env=None, timeout=300):
    """A command in a subprocess with the test environment; returns CompletedProcess (text)."""
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


KILLER = textwrap.dedent("""
    import importlib, os, signal, sys, torch
    import accelerate
    torch.set_num_threads(1)
    kill_step, kill_save = int(os.environ.get("KILL_AT_STEP", 0)), int(os.environ.get("KILL_IN_SAVE", 0))
    counts = {"step": 0, "save": 0}
    step, save_state = torch.optim.AdamW.step, accelerate.Accelerator.save_state
    def killing_step(self, *a, **k):
        counts["step"] += 1
        if counts["step"] == kill_step:  # dies before optimizer step number kill_step
            os.kill(os.getpid(), signal.SIGKILL)
        return step(self, *a, **k)
    def killing_save_state(self, output_dir, **k):
        counts["save"] += 1
        result = save_state(self, output_dir, **k)
        if counts["save"] == kill_save:  # dies mid-save: weights and state written to last.tmp, not swapped in
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    torch.optim.AdamW.step, accelerate.Accelerator.save_state = killing_step, killing_save_state
    importlib.import_module(sys.argv[1]).main(sys.argv[2:])
""")


def run_killer(tmp_path, module, args, **env):
    """module.main(args) in a subprocess that SIGKILLs itself before optimizer step KILL_AT_STEP, or right
    after the KILL_IN_SAVE-th accelerator.save_state; returncode -9 when it did."""
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    return run([sys.executable, str(script), module, *map(str, args)], env={k: str(v) for k, v in env.items()})
