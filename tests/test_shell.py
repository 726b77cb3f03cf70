"""Every shell/*.sh: run with python and accelerate replaced by a recorder, then each recorded command
line is parsed by its script's parse_args, so the recorded hyper-parameters cannot rot."""
import importlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT

SCRIPTS = sorted(p for p in (ROOT / "shell").glob("*.sh") if not p.name.startswith("_"))
RECORDER = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["RECORD_TO"], "a") as f:
    f.write(json.dumps([os.path.basename(sys.argv[0])] + sys.argv[1:]) + "\\n")
"""


def recorded_commands(script, tmp_path):
    shims = tmp_path / "bin"
    shims.mkdir(exist_ok=True)
    for name in ("python", "python3", "accelerate", "torchrun"):
        (shims / name).write_text(RECORDER.replace("#!/usr/bin/env python3", f"#!{os.sys.executable}"))
        (shims / name).chmod(0o755)
    record = tmp_path / "record.jsonl"
    record.unlink(missing_ok=True)
    env = {**os.environ, "PATH": f"{shims}:{os.environ['PATH']}", "RECORD_TO": str(record),
           "DEMO_DIR": str(tmp_path / "demo")}
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [json.loads(l) for l in record.read_text().splitlines()] if record.exists() else []


def split_launch(command):
    """(script.py, its arguments) from `python X.py ...` or `accelerate launch [opts] X.py ...`."""
    for i, word in enumerate(command):
        if word.endswith(".py"):
            return word, command[i + 1:]
    return None, None


def test_there_are_shell_scripts():
    assert (ROOT / "shell" / "demo.sh") in SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shell_commands_parse(script, tmp_path):
    commands = recorded_commands(script, tmp_path)
    parsed = 0
    for command in commands:
        path, argv = split_launch(command)
        if path is None or not (ROOT / path).exists() or Path(path).parent != Path("."):
            continue  # helpers such as tests/tiny.py
        module = importlib.import_module(Path(path).stem)
        module.parse_args(argv)  # a flag that no longer exists fails here (argparse exits 2)
        parsed += 1
    assert parsed, f"{script.name} runs no task script"


def test_verbose_flag_prints_commands(tmp_path):
    shims = tmp_path / "bin"
    recorded_commands(ROOT / "shell" / "demo.sh", tmp_path)  # builds the shims
    env = {**os.environ, "PATH": f"{shims}:{os.environ['PATH']}", "RECORD_TO": str(tmp_path / "r"),
           "DEMO_DIR": str(tmp_path / "demo")}
    quiet = subprocess.run(["bash", "shell/demo.sh"], cwd=ROOT, env=env, capture_output=True, text=True)
    loud = subprocess.run(["bash", "shell/demo.sh", "-v"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert "+ python train.py" not in quiet.stderr and "+ python train.py" in loud.stderr
    bad = subprocess.run(["bash", "shell/demo.sh", "--nope"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "usage" in bad.stderr
