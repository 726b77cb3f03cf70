"""Every script's command line built side by side: each shared concept has one spelling and one meaning, the names a
Hugging Face user types work wherever their concept exists, old spellings still work and say what they are now
called, and --do_train/--do_eval/--do_predict decide the same jobs in every script that has them."""
import argparse
import importlib

import pytest

import flags

SCRIPTS = ["ner", "glue", "squad", "train", "pretrain_mlm", "distill", "probe", "split"]
JOB_SCRIPTS = ["ner", "glue", "squad", "train"]
# a Hugging Face example script's or the Trainer's spelling -> the concept (dest) it names here
HF_NAMES = {"--model_name_or_path": "model_name_or_path", "--config_name": "config_name",
            "--tokenizer_name": "tokenizer_name", "--text_column_name": "text_column_name",
            "--text_column_names": "text_column_names", "--label_column_name": "label_column_name",
            "--max_train_samples": "max_train_samples", "--max_eval_samples": "max_eval_samples",
            "--max_predict_samples": "max_predict_samples", "--do_train": "do_train", "--do_eval": "do_eval",
            "--do_predict": "do_predict", "--bf16": "mixed_precision", "--fp16": "mixed_precision",
            "--warmup_steps": "num_warmup_steps", "--max_steps": "max_train_steps", "--save_steps": "save_steps",
            "--save_total_limit": "save_total_limit", "--report_to": "report_to", "--output_dir": "output_dir",
            "--overwrite_output_dir": "overwrite_output_dir", "--overwrite_cache": "overwrite_cache",
            "--preprocessing_num_workers": "preprocessing_num_workers", "--max_seq_length": "max_seq_length",
            "--per_device_train_batch_size": "per_device_train_batch_size", "--seed": "seed",
            "--resume_from_checkpoint": "resume_from_checkpoint", "--dataset_name": "dataset_name",
            "--dataset_config_name": "dataset_config_name", "--train_file": "train_file",
            "--validation_file": "validation_file", "--test_file": "test_file"}


class _Built(Exception):
    pass


def parser_of(name, monkeypatch):
    """The parser a script's parse_args builds, taken at the moment it would parse."""
    def grab(self, *args, **kwargs):
        raise _Built(self)
    with monkeypatch.context() as m:
        m.setattr(argparse.ArgumentParser, "parse_args", grab)
        with pytest.raises(_Built) as built:
            importlib.import_module(name).parse_args([])
    return built.value.args[0]


@pytest.fixture(scope="module")
def parsers():
    with pytest.MonkeyPatch.context() as monkeypatch:
        return {name: parser_of(name, monkeypatch) for name in SCRIPTS}


def options(parser):
    """{option string: action} for every flag (not --help)."""
    return {o: a for a in parser._actions if not isinstance(a, argparse._HelpAction) for o in a.option_strings}


def meaning(action):
    """What a flag does, apart from its default and help: the value it stores, and how."""
    kind = "flag" if action.nargs == 0 else "value"
    return action.dest, kind, action.const if kind == "flag" else None, getattr(action.type, "__name__", None)


def test_an_option_means_the_same_in_every_script(parsers):
    seen = {}
    for name, parser in parsers.items():
        for option, action in options(parser).items():
            seen.setdefault(option, {}).setdefault(meaning(action), []).append(name)
    differ = {o: m for o, m in seen.items() if len(m) > 1}
    assert not differ, differ


def test_a_concept_has_one_spelling(parsers):
    """The first (canonical) spelling of each concept is the same everywhere; the rest are aliases."""
    spelling = {}
    for name, parser in parsers.items():
        for action in parser._actions:
            if action.option_strings and action.dest != "help" and action.dest != "mixed_precision":
                spelling.setdefault(action.dest, {}).setdefault(action.option_strings[0], []).append(name)
    differ = {d: s for d, s in spelling.items() if len(s) > 1}
    assert not differ, differ


def test_hugging_face_names_work_where_their_concept_exists(parsers):
    missing = []
    for name, parser in parsers.items():
        dests, opts = {a.dest for a in parser._actions}, options(parser)
        for option, dest in HF_NAMES.items():
            if dest in dests and option not in opts:
                missing.append(f"{name}.py {option}")
            elif option in opts and opts[option].dest != dest:
                missing.append(f"{name}.py {option} means {opts[option].dest}")
    assert not missing


def test_the_jobs_and_the_names_are_everywhere_they_apply(parsers):
    """Every script that trains and evaluates on files has the three jobs and --max_predict_samples; every script
    that reads columns names them as the Hugging Face scripts do."""
    for name in JOB_SCRIPTS:
        assert {"--do_train", "--do_eval", "--do_predict", "--max_predict_samples", "--config_name",
                "--tokenizer_name"} <= set(options(parsers[name])), name
    for name in ("ner", "train", "probe"):
        assert {"--text_column_name", "--label_column_name"} <= set(options(parsers[name])), name
    for name in ("glue", "probe"):
        assert "--text_column_names" in options(parsers[name]), name


def parse(name, *argv):
    return importlib.import_module(name).parse_args(["--model_name_or_path", "m", *argv])


@pytest.mark.parametrize("name", JOB_SCRIPTS)
def test_the_jobs_mean_the_same_in_every_script(name, capsys):
    files = {"--train_file": "t.json", "--validation_file": "v.json", "--test_file": "p.json"}
    given = lambda *keys: [x for k in keys for x in (k, files[k])]
    jobs = lambda a: (a.do_train, a.do_eval, a.do_predict)
    # none given: the files decide
    assert jobs(parse(name, *given("--train_file", "--validation_file"))) == (True, True, False)
    assert jobs(parse(name, *given("--train_file", "--validation_file", "--test_file"))) == (True, True, True)
    assert jobs(parse(name, *given("--validation_file"))) == (False, True, False)
    # given: exactly those; --do_eval alone evaluates the model as it is (no training)
    assert jobs(parse(name, "--do_eval", *given("--validation_file"))) == (False, True, False)
    assert jobs(parse(name, "--do_train", *given("--train_file", "--validation_file"))) == (True, False, False)
    assert jobs(parse(name, "--do_train", "--do_eval", *given("--train_file", "--validation_file"))) == (True, True, False)
    capsys.readouterr()
    for argv, expected in ((["--do_predict", *given("--validation_file")], "--do_predict needs --test_file"),
                           (["--do_eval", *given("--train_file", "--validation_file")], "drop --train_file")):
        with pytest.raises(SystemExit) as e:
            parse(name, *argv)
        err = capsys.readouterr().err.strip()
        assert e.value.code == 2 and err.startswith("error: ") and expected in err and "\n" not in err, err


def test_an_old_spelling_works_and_says_its_new_name_once(capsys):
    parser = argparse.ArgumentParser()
    flags.renamed(parser, "--label_column_name", "--label_column_old_test", default=None)
    flags.renamed(parser, "--flag_new", "--flag_old_test", action="store_true")
    args = parser.parse_args(["--label_column_old_test", "tag", "--flag_old_test"])
    assert args.label_column_name == "tag" and args.flag_new is True
    assert parser.parse_args([]).flag_new is False
    out = capsys.readouterr().out.splitlines()
    assert out == ["notice: --label_column_old_test is now --label_column_name", "notice: --flag_old_test is now --flag_new"]
    parser.parse_args(["--label_column_old_test", "x", "--label_column_name", "y"])
    assert capsys.readouterr().out == ""  # once per process; the new name is silent


@pytest.mark.parametrize("name, old, new, value", [("ner", "--text_column", "--text_column_name", "words"),
                                                   ("train", "--label_field", "--label_column_name", "tags"),
                                                   ("glue", "--text_columns", "--text_column_names", ("a", "b")),
                                                   ("probe", "--label_column", "--label_column_name", "tag")])
def test_scripts_old_spellings_are_aliases(name, old, new, value, monkeypatch):
    parser = parser_of(name, monkeypatch)
    monkeypatch.setattr(flags._Renamed, "told", set())
    raw = ",".join(value) if isinstance(value, tuple) else value
    assert getattr(parser.parse_args([old, raw]), new[2:]) == value == getattr(parser.parse_args([new, raw]), new[2:])


def test_no_script_leans_on_another_scripts_internals():
    """A task script imports no other task script, except probe.py, which reads ner, glue and squad through the
    names each declares in INTERFACE (renaming anything else there must not break it); each declared name exists."""
    import ast
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    for name in SCRIPTS:
        tree = ast.parse((root / f"{name}.py").read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names} | \
            {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        others = imported & set(SCRIPTS) - {name}
        assert others <= ({"ner", "glue", "squad"} if name == "probe" else set()), (name, others)
        if name == "probe":
            for other in others:
                used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                        and isinstance(n.value, ast.Name) and n.value.id == other}
                declared = importlib.import_module(other).INTERFACE
                assert used and used <= set(declared), (other, used - set(declared))
                assert all(hasattr(importlib.import_module(other), d) for d in declared), other


def test_config_and_tokenizer_names_are_taken_and_checked(tiny_bert, capsys):
    """--config_name/--tokenizer_name (glue.py, squad.py): the named config and tokenizer are the ones loaded; a
    config file instead of a folder, or a missing folder, is one line."""
    import types

    import loading
    args = types.SimpleNamespace(model_name_or_path=str(tiny_bert), config_name=None, tokenizer_name=None)
    assert loading.config_for(args).vocab_size == loading.load_config(str(tiny_bert)).vocab_size
    args.config_name, args.tokenizer_name = str(tiny_bert), str(tiny_bert)
    assert loading.config_for(args).model_type == "bert" and len(loading.tokenizer_for(args)) > 10
    for name, needle in ((str(tiny_bert / "config.json"), "a file; expected a config folder"),
                         (str(tiny_bert / "nope"), "no such folder")):
        args.config_name = name
        with pytest.raises(SystemExit) as e:
            loading.config_for(args)
        err = capsys.readouterr().err.strip()
        assert e.value.code == 2 and err.startswith(f"error: --config_name {name}: ") and needle in err, err
