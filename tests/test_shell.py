"""Every shell/*.sh, run with python and accelerate replaced by a recorder (nothing trains): each recorded command
line is parsed by its script's parse_args, so the recorded hyper-parameters cannot rot; --help prints the header
and runs nothing; a missing input is one error line and exit code 2 before anything runs; -v and -v -v print each
command once; shell/demo.sh's own checks say ok or differs against result files made here."""
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

SCRIPTS = sorted(p for p in (ROOT / "shell").glob("*.sh") if not p.name.startswith("_"))
# Records its command line (tab-separated words) instead of running it; `python -` (shell/demo.sh's checks, a
# program on stdin) runs for real.
RECORDER = f"""#!/usr/bin/env bash
if [ "${{1-}}" = - ] && [ "$(basename "$0")" != accelerate ]; then exec {sys.executable} "$@"; fi
{{ printf '%s' "$(basename "$0")"; printf '\\t%s' "$@"; printf '\\n'; }} >> "$RECORD_TO"
"""
GLUE_TASKS = {"SST-2": ["train", "dev", "test"],
              "MNLI": ["train", "dev_matched", "dev_mismatched", "test_matched", "test_mismatched"]}


def demo_results(demo, **change):
    """The result files shell/demo.sh checks, holding its expected numbers (or `change`d ones), as its steps would
    write them."""
    values = {"perplexity": 90.55, "test_f1": 0.9918, "test_em": 0.97, "dev_f1": 0.9877, "dev_em": 0.955,
              "ner_dev": 0.9689, "ner_test": 0.9636, "glue": 1.0, "probe_pretrained": [50.0, 60.0, 62.5],
              "probe_finetuned": [50.0, 60.5, 100.0], "majority": 50.0, "student": 95.53, "parameters": 26857,
              "teacher_parameters": 35465, "distil_glue": 1.0, "squad_em": 96.666, "squad_f1": 98.25, **change}
    layers = lambda accuracies: [{"layer": i, "dev": {"accuracy": a}} for i, a in enumerate(accuracies)]
    files = {
        "mlm-bert/eval_results.json": {"perplexity": values["perplexity"]},
        "topics/test_results.json": {"f1_micro": values["test_f1"], "exact_match": values["test_em"]},
        "topics/eval_results.json": {"f1_micro": values["dev_f1"], "exact_match": values["dev_em"]},
        "ner/eval_results.json": {"f1": values["ner_dev"]},
        "ner/test_results.json": {"f1": values["ner_test"]},
        "glue-runs/sst2/eval_results.json": {"accuracy": values["glue"]},
        "probe-sst2/results.json": {"baseline": {"dev": {"accuracy": values["majority"]}}, "models": {
            f"{demo}/mlm-bert/best": layers(values["probe_pretrained"]),
            f"{demo}/glue-runs/sst2/best": layers(values["probe_finetuned"])}},
        "distil-bert/eval_results.json": {"perplexity": values["student"], "teacher_perplexity": values["perplexity"],
                                          "parameters": values["parameters"],
                                          "teacher_parameters": values["teacher_parameters"]},
        "glue-distil/sst2/eval_results.json": {"accuracy": values["distil_glue"]},
        "squad-out/eval_results.json": {"exact_match": values["squad_em"], "f1": values["squad_f1"]},
    }
    for name, content in files.items():
        (demo / name).parent.mkdir(parents=True, exist_ok=True)
        (demo / name).write_text(json.dumps(content))
    (demo / "data").mkdir(exist_ok=True)
    for split, lines in (("train", 2000), ("valid", 200), ("test", 200)):
        (demo / "data" / f"{split}.jsonl").write_text("{}\n" * lines)


@pytest.fixture
def env(tmp_path):
    """The recorder first on PATH, and every input a script checks made under tmp_path (empty files will do:
    nothing reads them)."""
    shims = tmp_path / "bin"
    shims.mkdir()
    for name in ("python", "python3", "accelerate", "torchrun"):
        (shims / name).write_text(RECORDER)
        (shims / name).chmod(0o755)
    data, glue, corpus = tmp_path / "data", tmp_path / "glue", tmp_path / "corpus" / "all.txt"
    data.mkdir()
    for name in ("train.txt", "dev.txt", "test.txt", "wiki.train.raw", "wiki.valid.raw", "train-v2.0.json",
                 "dev-v2.0.json", "train-v1.1.json", "dev-v1.1.json"):
        (data / name).touch()
    for folder, splits in GLUE_TASKS.items():
        (glue / folder).mkdir(parents=True)
        for split in splits:
            (glue / folder / f"{split}.tsv").touch()
    corpus.parent.mkdir()
    corpus.write_text("one line\n")
    for model in ("teacher", "checkpoint"):
        (tmp_path / model).mkdir()
        (tmp_path / model / "config.json").write_text("{}")
    demo_results(tmp_path / "demo")
    return {**os.environ, "PATH": f"{shims}:{os.environ['PATH']}", "RECORD_TO": str(tmp_path / "record.tsv"),
            "DEMO_DIR": str(tmp_path / "demo"), "DATA_DIR": str(data), "GLUE_DIR": str(glue), "CORPUS": str(corpus),
            "TEACHER": str(tmp_path / "teacher"), "CHECKPOINT": str(tmp_path / "checkpoint"),
            "OUTPUT_DIR": str(tmp_path / "out")}


def run(script, *args, env):
    return subprocess.run(["bash", str(script), *args], env=env, capture_output=True, text=True, timeout=60)


def recorded(env):
    record = Path(env["RECORD_TO"])
    return [line.split("\t") for line in record.read_text().splitlines()] if record.exists() else []


def split_launch(command):
    """(script.py, its arguments) from `python X.py ...` or `accelerate launch [opts] X.py ...`."""
    for i, word in enumerate(command):
        if word.endswith(".py"):
            return word, command[i + 1:]
    return None, None


def test_there_are_shell_scripts():
    assert (ROOT / "shell" / "demo.sh") in SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shell_commands_parse(script, env):
    done = run(script, env=env)
    assert done.returncode == 0, done.stderr
    parsed = 0
    for command in recorded(env):
        path, argv = split_launch(command)
        if path is None or not (ROOT / path).exists() or Path(path).parent != Path("."):
            continue  # helpers such as tests/tiny.py
        module = importlib.import_module(Path(path).stem)
        module.parse_args(argv)  # a flag that no longer exists fails here (argparse exits 2)
        parsed += 1
    assert parsed, f"{script.name} runs no task script"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_help_prints_the_header_and_runs_nothing(script, env):
    text = script.read_text()
    header = []
    for line in text.splitlines()[1:]:
        if not line.startswith("#"):
            break
        header.append(line[2:])
    body = text[text.index("source "):]
    read = sorted(set(re.findall(r"\$\{([A-Z_]+):-", body)) - {"ARG_NAME"})  # the environment it reads
    for flag in ("--help", "-h"):
        done = run(script, "-v", flag, env=env)
        assert done.returncode == 0 and not done.stderr, done.stderr
        assert done.stdout.startswith(header[0] + "\n") and header[-1] in done.stdout
        assert "Expected" in done.stdout and "Hardware" in done.stdout
        assert [name for name in read if name not in done.stdout] == []
    assert recorded(env) == []


def test_bad_flag_and_extra_argument_are_usage_errors(env):
    for script, args in (("demo.sh", ["--nope"]), ("train-ner.sh", ["bert-base-cased"]),
                         ("run-glue.sh", ["sst2", "mrpc"])):
        done = run(ROOT / "shell" / script, *args, env=env)
        assert done.returncode == 2 and done.stderr.startswith("usage: "), done.stderr
    assert recorded(env) == []


MISSING = [  # script, argument, environment change, what the error line names
    ("train-distilbert.sh", "{tmp}/no-teacher", {}, "teacher {tmp}/no-teacher: no such folder"),
    ("train-distilbert.sh", "{tmp}/corpus", {}, "teacher's config {tmp}/corpus/config.json: no such file"),
    ("train-distilbert.sh", None, {"CORPUS": "{tmp}/none.txt"}, "corpus {tmp}/none.txt: no such file"),
    ("train-roberta.sh", None, {"CORPUS": "{tmp}/none.txt"}, "corpus {tmp}/none.txt: no such file"),
    ("train-tokenizer.sh", None, {"CORPUS": "{tmp}/none.txt"}, "corpus {tmp}/none.txt: no such file"),
    ("train-tokenizer.sh", None, {"KIND": "char"}, "KIND must be"),
    ("eval-ner.sh", None, {"CHECKPOINT": "{tmp}/out/best"}, "CHECKPOINT {tmp}/out/best: no such folder"),
    ("train-ner.sh", None, {"DATA_DIR": "{tmp}/none"}, "CoNLL-2003 train file {tmp}/none/train.txt: no such file"),
    ("finetune-roberta.sh", None, {"MODEL": "./no-model"}, "MODEL ./no-model: no such folder"),
    ("finetune-roberta.sh", None, {"DATA_DIR": "{tmp}/glue"}, "{tmp}/glue/wiki.train.raw: no such file"),
    ("run-glue.sh", "qnli", {}, "{tmp}/glue/QNLI/train.tsv: no such file"),
    ("run-glue.sh", "sts", {}, "TASK must be one of"),
    ("run-glue-all.sh", None, {"GLUE_DIR": "{tmp}/none"}, "GLUE folder {tmp}/none: no such folder"),
    ("run-glue-all.sh", None, {"GLUE_DIR": "{tmp}/data"}, "no task has a train.tsv"),
    ("run-squad.sh", "v1.1", {"DATA_DIR": "{tmp}/glue"}, "{tmp}/glue/train-v1.1.json: no such file"),
    ("probe.sh", "bert", {"DATA_DIR": "{tmp}/glue"}, "{tmp}/glue/train-v2.0.json: no such file"),
]


@pytest.mark.parametrize("script, arg, change, message", MISSING, ids=[f"{m[0]}-{m[3][:20]}" for m in MISSING])
def test_missing_input_is_one_error_line_before_anything_runs(script, arg, change, message, env, tmp_path):
    fill = lambda s: s.replace("{tmp}", str(tmp_path))
    env.update({k: fill(v) for k, v in change.items()})
    before = sorted(tmp_path.rglob("*"))
    done = run(ROOT / "shell" / script, *([fill(arg)] if arg else []), env=env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert fill(message) in done.stderr
    assert recorded(env) == [] and sorted(tmp_path.rglob("*")) == before  # nothing ran, nothing was written


def test_a_glue_task_without_its_dev_file_stops_run_glue_all_before_any_task(env, tmp_path):
    (tmp_path / "glue" / "MNLI" / "dev_mismatched.tsv").unlink()
    done = run(ROOT / "shell" / "run-glue-all.sh", env=env)
    assert done.returncode == 2 and "dev_mismatched.tsv: no such file" in done.stderr.splitlines()[-1]
    assert recorded(env) == []


@pytest.mark.parametrize("script", ["demo.sh", "run-glue-all.sh", "train-distilbert.sh"])
def test_verbose_prints_each_command_once(script, env):
    quiet = run(ROOT / "shell" / script, env=env)
    commands = recorded(env)  # (demo.sh's checks run python for real: not recorded)
    assert commands and "+ " not in quiet.stderr
    for flags in (["-v"], ["-v", "-v"]):
        Path(env["RECORD_TO"]).unlink()
        done = run(ROOT / "shell" / script, *flags, env=env)
        assert done.returncode == 0, done.stderr
        assert recorded(env) == commands
        lines = done.stderr.splitlines()
        for command in commands:
            printed = [line for line in lines if line.startswith("+") and line.endswith(" " + " ".join(command))]
            assert len(printed) == 1, (flags, command, printed)
        if flags == ["-v", "-v"]:  # the script's logic is traced too
            assert any(re.match(r"\++ (OUTPUT_DIR|DEMO|GLUE_DIR)=", line) for line in lines), lines[:20]


def test_demo_checks_say_ok_per_step(env):
    done = run(ROOT / "shell" / "demo.sh", env=env)
    steps = [line for line in done.stdout.splitlines() if line.startswith("demo: ")]
    assert done.returncode == 0 and len(steps) == 9, done.stdout
    assert all(line.startswith("demo: ok ") for line in steps[:8])
    assert steps[1] == "demo: ok 2 pretrain_mlm: eval perplexity 90.55 +-2, got 90.55"
    assert re.fullmatch(r"demo: 8/8 steps ok \(\d+ s\)", steps[8])


def test_demo_checks_accept_other_cpus_and_flag_a_real_difference(env, tmp_path):
    # the probe as measured on an AMD EPYC (pretrained state 2: 62.0, fine-tuned state 1: 54.0): ok
    demo_results(tmp_path / "demo", probe_pretrained=[50.0, 60.0, 62.0], probe_finetuned=[50.0, 54.0, 100.0])
    assert run(ROOT / "shell" / "demo.sh", env=env).returncode == 0
    # a perplexity 5% off, a missing file, a parameter count off by one: differs, and the exit code says so
    demo_results(tmp_path / "demo", perplexity=95.2, teacher_parameters=35466)
    (tmp_path / "demo" / "squad-out" / "eval_results.json").unlink()
    done = run(ROOT / "shell" / "demo.sh", env=env)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert "demo: differs 2 pretrain_mlm: eval perplexity 90.55 +-2, got 95.20" in lines
    assert any(line.startswith("demo: differs 7 distill.py: ") and "teacher parameters 35465 exactly, got 35466"
               in line for line in lines)
    assert any(line.startswith("demo: differs 8 squad.py: dev EM 96.67 +-5, got nothing readable") for line in lines)
    assert re.search(r"^demo: 5/8 steps ok", done.stdout, re.M)
