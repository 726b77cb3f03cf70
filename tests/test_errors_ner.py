"""ner.py on malformed input: exactly one `error:` line naming the file (and line) and what was expected, exit code 2,
no traceback, and a finished run in --output_dir byte-identical afterwards, with and without --overwrite_output_dir.
Also: --do_eval never replaces an earlier run's results or predictions unless --overwrite_output_dir."""
import gzip
import json
import shutil
from types import SimpleNamespace

import pytest

import fixtures_ner
import ner
from bad_input import expect_error, latin1_line, model_copy, snapshot, write_file

pytestmark = pytest.mark.usefixtures("one_thread", "datasets_cache")
RESULTS = ["eval_results.json", "test_results.json", "predictions_dev.txt", "predictions_test.txt"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return fixtures_ner.write_data(tmp_path_factory.mktemp("ner-errors-data"), sizes=(80, 12, 12))


@pytest.fixture(scope="module")
def run(tmp_path_factory, data, tiny_bert, one_thread):
    """One finished run, shared: best/, last/, log.json, results and predictions for dev and test."""
    out = tmp_path_factory.mktemp("ner-errors-run") / "run"
    ner.main([str(a) for a in ["--model", tiny_bert, "--train_file", data / "train.txt", "--validation_file",
                               data / "dev.txt", "--test_file", data / "test.txt", "--output_dir", out,
                               "--report_to", "none", "--max_train_steps", 2, "--cache_dir", out.parent / "cache"]])
    assert all((out / name).is_file() for name in RESULTS) and (out / "best").is_dir()
    return out


def set_line(n, new):
    """An edit of line n (1-based; line 3 holds the first word of each synthetic file)."""
    return lambda text: "\n".join(new(l) if i == n else l for i, l in enumerate(text.split("\n"), 1))


class Case(SimpleNamespace):
    """tmp: this test's folder; data: the synthetic files; model: tiny_bert; run: the finished run."""

    def file(self, name, content):
        return write_file(self.tmp / name, content)

    def edited(self, name, edit, source="train.txt"):
        return self.file(name, edit((self.data / source).read_text()))

    def train(self, train=None, dev=None, model=None, *extra):
        return ["--model", model or self.model, "--train_file", train or self.data / "train.txt", "--validation_file",
                dev or self.data / "dev.txt", "--report_to", "none", "--max_train_steps", 1, "--cache_dir",
                self.tmp / "cache", *extra]

    def evaluate(self, dev=None, model=None, *extra):
        return ["--do_eval", "--model", model or self.run / "best", "--validation_file", dev or self.data / "dev.txt",
                "--cache_dir", self.tmp / "cache", *extra]

    def folder(self, **files):
        """A --dataset_name folder of CoNLL files, split name: content."""
        folder = self.tmp / "dataset"
        folder.mkdir()
        for split, content in files.items():
            write_file(folder / f"{split}.txt", content)
        return folder

    def model_copy(self, drop=(), **files):
        """A copy of tiny_bert without the files in drop, with files (name: bytes or text) replaced."""
        return model_copy(self.model, self.tmp / "model", drop, **files)


def jsonl(*records):
    return "".join(json.dumps(r) + "\n" for r in records)


RECORD = {"tokens": ["EU", "rejects", "German", "call"], "ner_tags": ["B-ORG", "O", "B-MISC", "O"]}
# case: (argv from a Case, what the line must hold (a callable of the Case for paths), detected after core.setup)
CASES = {
    # --- encodings and binary data
    "conll not UTF-8": (lambda c: c.train(c.file("train.txt", latin1_line((c.data / "train.txt").read_bytes(), 5))),
                        ["train.txt:5: not UTF-8 text (byte 0xe9", "expected a UTF-8 text file"]),
    "conll gzip": (lambda c: c.train(c.file("train.txt", gzip.compress((c.data / "train.txt").read_bytes()))),
                   ["train.txt:1: not UTF-8 text (byte 0x8b"]),
    "conll zeroed": (lambda c: c.train(c.file("train.txt", b"\0" * 4096)),
                     ["train.txt:1: a NUL byte (binary data); expected a UTF-8 text file"]),
    "conll UTF-16": (lambda c: c.train(c.file("train.txt", (c.data / "train.txt").read_text().encode("utf-16"))),
                     ["train.txt:1: not UTF-8 text (byte 0xff"]),
    "dev file Latin-1 on line 7": (lambda c: c.train(dev=c.file("dev.txt", latin1_line((c.data / "dev.txt").read_bytes(),
                                                                                      7))),
                                   ["dev.txt:7: not UTF-8 text (byte 0xe9"]),
    "json not UTF-8": (lambda c: c.train(c.file("train.jsonl", jsonl(RECORD).encode() + b'{"tokens": ["caf\xe9"]}\n')),
                       ["train.jsonl:2: not UTF-8 text (byte 0xe9"]),
    "json binary": (lambda c: c.train(c.file("train.json", jsonl(RECORD).encode() + b"\0\0\0\0")),
                    ["train.json:2: a NUL byte (binary data); expected UTF-8 JSON text"]),
    # --- CoNLL layout
    "first line lacks its tag": (lambda c: c.train(c.edited("train.txt", set_line(3, lambda l: l.rsplit(" ", 1)[0]))),
                                 ["train.txt:3: found 3 column(s), expected 4 as on line 4 (a tag missing?)"]),
    "a later line lacks its tag": (lambda c: c.train(c.edited("train.txt", set_line(9, lambda l: l.rsplit(" ", 1)[0]))),
                                   ["train.txt:9: found 3 column(s), expected 4 as on line 3"]),
    "an extra column": (lambda c: c.train(c.edited("train.txt", set_line(5, lambda l: l + " X"))),
                        ["train.txt:5: found 5 column(s), expected 4 as on line 3 (a space inside a word"]),
    "words only": (lambda c: c.train(c.file("train.txt", "EU\nrejects\n\nGerman\n")),
                   ["train.txt:1: 1 column; expected a word and a tag"]),
    "a tag that is not O/B-/I-": (lambda c: c.train(c.edited("train.txt", set_line(3, lambda l: l.rsplit(" ", 1)[0]
                                                                                      + " PER"))),
                                  ["train.txt:3: tag 'PER' is not O, B-TYPE or I-TYPE"]),
    "a dev tag not O/B-/I-": (lambda c: c.train(dev=c.edited("dev.txt", set_line(4, lambda l: l.rsplit(" ", 1)[0]
                                                                                  + " per"), "dev.txt")),
                              ["dev.txt:4: tag 'per' is not O, B-TYPE or I-TYPE"]),
    "empty file": (lambda c: c.train(c.file("train.txt", "")), ["train.txt:1: no sentences (empty file?)"]),
    "blank lines only": (lambda c: c.train(dev=c.file("dev.txt", "\n\n  \n")), ["dev.txt:1: no sentences"]),
    "label column out of range": (lambda c: c.train(None, None, None, "--label_column", -9),
                                  ["train.txt:3: --label_column_name -9 is out of range: lines have 4 columns"]),
    "a directory as --train_file": (lambda c: c.train(c.tmp), ["a directory; expected a CoNLL column file"]),
    "a missing --validation_file": (lambda c: c.train(dev=c.tmp / "nope.txt"), ["nope.txt: no such file"]),
    # --- JSON records
    "json words and tags differ": (lambda c: c.train(c.file("train.jsonl", jsonl(RECORD, {"tokens": ["a", "b"],
                                                                                          "ner_tags": ["O"]}))),
                                   ["train.jsonl:2: 2 words but 1 tags"]),
    "json empty word": (lambda c: c.train(c.file("train.jsonl", jsonl({"tokens": ["EU", ""], "ner_tags": ["O", "O"]}))),
                        ["train.jsonl:1: word 1 of 'tokens' is \"\"; expected a non-empty string"]),
    "json null word": (lambda c: c.train(c.file("train.jsonl", jsonl({"tokens": [None], "ner_tags": ["O"]}))),
                       ["train.jsonl:1: word 0 of 'tokens' is null"]),
    "json tags not a list": (lambda c: c.train(c.file("train.jsonl", jsonl({"tokens": ["EU"], "ner_tags": "B-ORG"}))),
                             ["train.jsonl:1: 'tokens' and 'ner_tags' must be lists"]),
    "json list of numbers": (lambda c: c.train(c.file("train.json", "[1, 2]")),
                             ["train.json:1: expected a record with 'tokens' and tags, found int"]),
    "json pretty-printed object": (lambda c: c.train(c.file("train.jsonl", json.dumps(RECORD, indent=1))),
                                   ["train.jsonl:1: not valid JSON"]),
    # --- the model
    "model path missing": (lambda c: c.train(model=c.tmp / "no-model"),
                           [lambda c: f"--model_name_or_path {c.tmp / 'no-model'}: no such folder"]),
    "model path is a file": (lambda c: c.train(model=c.file("weights.bin", b"x")), ["weights.bin: a file; expected"]),
    "model without config.json": (lambda c: c.train(model=c.model_copy(drop=["config.json"])),
                                  ["no config.json in the folder"]),
    "model without weights": (lambda c: c.train(model=c.model_copy(drop=["model.safetensors"])),
                              ["no weights (model.safetensors) in the folder"]),
    "truncated model.safetensors": (lambda c: c.train(model=c.model_copy(model__safetensors=(
        c.model / "model.safetensors").read_bytes()[:5000])),
        ["model/model.safetensors: damaged weights (", "expected a complete safetensors file"]),
    "garbage model.safetensors": (lambda c: c.train(model=c.model_copy(model__safetensors=b"\x93NUMPY" * 300)),
                                  ["model/model.safetensors: damaged weights"]),
    "config.json not JSON": (lambda c: c.train(model=c.model_copy(config__json="{ not json")),
                             ["cannot load its config"]),
    "config.json field of a wrong type": (lambda c: c.train(model=c.model_copy(config__json=json.dumps(
        {**json.loads((c.model / "config.json").read_text()), "hidden_size": "32"}))),
        ["cannot load its config (", "hidden_size"]),
    "config.json of an unknown model type": (lambda c: c.train(model=c.model_copy(config__json='{"model_type": "x"}')),
                                             ["cannot load its config (", "model type `x`"]),
    "no tokenizer files": (lambda c: c.train(model=c.model_copy(drop=["tokenizer.json", "tokenizer_config.json"])),
                           ["its tokenizer has no vocabulary, only 5 special tokens; expected its tokenizer files (tokenizer.json"]),
    "tokenizer.json garbage": (lambda c: c.train(model=c.model_copy(tokenizer__json="{ garbage")),
                               ["cannot load its tokenizer ("]),
    "garbage pytorch_model.bin": (lambda c: c.train(model=c.model_copy(drop=["model.safetensors"],
                                                                       pytorch_model__bin=b"garbage" * 100)),
                                  ["cannot load it for token classification (Weights only load failed.)"], "late"),
    "a dataset folder with a bad file": (lambda c: c.train()[:2] + ["--dataset_name", c.folder(
        train=(c.data / "train.txt").read_text(), dev=latin1_line((c.data / "dev.txt").read_bytes(), 4))],
        ["dev.txt:4: not UTF-8 text"]),
    # --- numbers
    "--max_seq_length above the positions": (lambda c: c.train(None, None, None, "--max_seq_length", 4096),
                                             ["--max_seq_length 4096: the model holds at most 128 positions"]),
    "--max_seq_length 0": (lambda c: c.train(None, None, None, "--max_seq_length", 0),
                           ["--max_seq_length 0: expected a positive number"]),
    "--max_seq_length negative": (lambda c: c.evaluate(None, None, "--max_seq_length", -3),
                                  ["--max_seq_length -3: expected a positive number"]),
    "--max_seq_length 2": (lambda c: c.train(None, None, None, "--max_seq_length", 2),
                           ["--max_seq_length 2: leaves no room for a word beside the 2 special tokens"]),
    "--max_seq_length not a number": (lambda c: c.train(None, None, None, "--max_seq_length", "1e3"),
                                      ["argument --max_seq_length: invalid int value: '1e3'"]),
    "an unknown flag": (lambda c: c.train(None, None, None, "--label_columns", 3),
                        ["unrecognized arguments: --label_columns 3"]),
    "no --model": (lambda c: c.train()[2:], ["--model_name_or_path is required"]),
    "--do_eval with --train_file": (lambda c: [*c.evaluate(), "--train_file", c.data / "train.txt"],
                                    ["--do_eval/--do_predict without --do_train evaluate --model_name_or_path as it is; drop --train_file"]),
    "--dataset_name and --train_file": (lambda c: [*c.train(), "--dataset_name", c.data],
                                        ["give --dataset_name or the *_file flags, not both"]),
    "--cache_dir is a file": (lambda c: [*c.train(), "--cache_dir", c.file("cache", "x")],
                              ["--cache_dir", "cache: a file; expected a folder"]),
    # --- evaluation only
    "eval: a tag the model was not trained on": (lambda c: c.evaluate(c.edited("dev.txt", set_line(
        4, lambda l: l.rsplit(" ", 1)[0] + " B-FAC"), "dev.txt")),
        ["dev.txt:4: tag 'B-FAC' is not among", "best's labels (B-LOC, B-MISC"]),
    "eval: test file not UTF-8": (lambda c: c.evaluate(None, None, "--test_file", c.file("test.txt", b"EU B-ORG\n\xff\n")),
                                  ["test.txt:2: not UTF-8 text (byte 0xff"]),
    "eval: garbage model.safetensors": (lambda c: c.evaluate(model=c.model_copy(model__safetensors=b"\0" * 64)),
                                        ["model/model.safetensors: damaged weights"]),
    "eval: model with default labels": (lambda c: c.evaluate(model=c.model),
                                        ["dev.txt:3: tag '", "'s labels (LABEL_0, LABEL_1)"]),
}


def variants():
    for case in CASES:
        yield pytest.param(case, False, id=f"{case}")
        yield pytest.param(case, True, id=f"{case}, --overwrite_output_dir")


@pytest.mark.parametrize("case, overwrite", variants())
def test_bad_input_is_one_line_and_the_run_stays(case, overwrite, data, tiny_bert, run, tmp_path, capfd):
    make, needles, *late = CASES[case]
    c = Case(tmp=tmp_path, data=data, model=tiny_bert, run=run)
    argv = make(c)
    needles = [n(c) if callable(n) else n for n in needles]
    # a finished run in --output_dir; without --overwrite_output_dir an error found after core.setup would be its
    # refusal of that run, so those cases write to a fresh folder (which must stay absent)
    out = tmp_path / "fresh" if late and not overwrite else run
    expect_error(capfd, ner.main, [*argv, "--output_dir", out, *(["--overwrite_output_dir"] if overwrite else [])],
                 *needles, run_dir=run)
    assert not (tmp_path / "fresh").exists()


# --- results of an earlier run or evaluation are never replaced silently

def expensive(monkeypatch):
    """Refusals must come before the model loads or any data is tokenized."""
    monkeypatch.setattr(ner, "featurize", lambda *a, **k: pytest.fail("tokenized before refusing"))
    monkeypatch.setattr(ner.AutoModelForTokenClassification, "from_pretrained",
                        lambda *a, **k: pytest.fail("loaded the model before refusing"))


def test_do_eval_keeps_a_runs_results(run, data, tmp_path, capfd, monkeypatch):
    flags = ["--do_eval", "--model", run / "best", "--validation_file", data / "dev.txt", "--test_file",
             data / "test.txt", "--cache_dir", tmp_path / "cache", "--output_dir", run]
    with monkeypatch.context() as m:
        expensive(m)
        expect_error(capfd, ner.main, flags, f"{run / 'eval_results.json'} already exists (and 3 more)",
                     "pass --overwrite_output_dir", run_dir=run)
        # only what this evaluation would write counts: a test-only evaluation meets test_results.json first
        expect_error(capfd, ner.main, [*flags[:3], *flags[5:]], f"{run / 'test_results.json'} already exists (and 1 "
                     "more)", run_dir=run)
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / "predictions_test.txt").write_text("stale\n")
    before = snapshot(copy)
    results = ner.main([str(a) for a in [*flags[:-1], copy, "--overwrite_output_dir"]])
    after = snapshot(copy)
    assert {k for k in after if after[k] != before[k]} <= set(RESULTS)
    words_and_gold = lambda path: [l.split()[:2] for l in path.read_text().splitlines()]
    assert words_and_gold(copy / "predictions_test.txt") == words_and_gold(run / "predictions_test.txt")
    assert json.loads((copy / "eval_results.json").read_text()) == pytest.approx(results["dev"])


def test_do_eval_writes_beside_results_of_other_splits(run, data, tmp_path):
    folder = tmp_path / "eval"
    folder.mkdir()
    shutil.copy(run / "eval_results.json", folder / "eval_results.json")
    before = (folder / "eval_results.json").read_bytes()
    ner.main([str(a) for a in ["--do_eval", "--model", run / "best", "--test_file", data / "test.txt",
                               "--output_dir", folder, "--cache_dir", tmp_path / "cache"]])
    assert (folder / "eval_results.json").read_bytes() == before and (folder / "test_results.json").is_file()


def test_training_keeps_an_evaluations_results(run, data, tiny_bert, tmp_path, capfd, monkeypatch):
    folder = tmp_path / "evaluated"
    folder.mkdir()
    shutil.copy(run / "eval_results.json", folder / "eval_results.json")
    with monkeypatch.context() as m:
        expensive(m)
        expect_error(capfd, ner.main, ["--model", tiny_bert, "--train_file", data / "train.txt", "--validation_file",
                                       data / "dev.txt", "--output_dir", folder, "--report_to", "none"],
                     f"{folder} already holds a run (eval_results.json)", run_dir=folder)


def test_output_dir_that_is_a_file(data, tiny_bert, tmp_path, capfd):
    blocker = tmp_path / "out"
    blocker.write_text("not a folder")
    expect_error(capfd, ner.main, ["--model", tiny_bert, "--train_file", data / "train.txt", "--output_dir", blocker],
                 f"--output_dir {blocker}: a file; expected a folder", run_dir=tmp_path)
