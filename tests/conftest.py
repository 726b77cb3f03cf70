import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import tiny  # noqa: E402


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
