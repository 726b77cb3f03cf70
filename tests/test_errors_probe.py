"""probe.py on malformed input: exactly one `error:` line naming the file (and line) and what was expected, exit
code 2, and a finished run in --output_dir byte-identical afterwards, with and without --overwrite_output_dir. And
its hidden-state cache (files.cached): a .npy with a valid header and a zeroed or garbage body, a truncated or missing
file, a missing manifest or a swapped folder is rebuilt with a one-line notice, and the probes come out the same."""
import gzip
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

import fixtures_glue
import fixtures_ner
import fixtures_squad
import probe
from bad_input import expect_error, latin1_line, model_copy, snapshot, write_file

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def sst2(tmp_path_factory):
    return fixtures_glue.write_glue(tmp_path_factory.mktemp("probe-errors-glue"), tasks=("sst2",),
                                    sizes=(64, 16, 4)) / "SST-2"


@pytest.fixture(scope="module")
def conll(tmp_path_factory):
    return fixtures_ner.write_data(tmp_path_factory.mktemp("probe-errors-ner"), sizes=(40, 10, 10))


def flags(data, out, model, cache, *extra):
    return ["--task", "sst2", "--data_dir", data, "--model", model, "--output_dir", out, "--cache_dir", cache,
            "--device", "cpu", "--epochs", 2, "--learning_rate", "1e-2", *extra]


@pytest.fixture(scope="module")
def run(tmp_path_factory, sst2, tiny_bert, one_thread):
    """One finished run (probes, predictions, results) and its cache, shared."""
    base = tmp_path_factory.mktemp("probe-errors-run")
    results = probe.main([str(a) for a in flags(sst2, base / "out", tiny_bert, base / "cache")])
    return SimpleNamespace(out=base / "out", cache=base / "cache", results=results)


# --- the cache: damaged in every way, detected and rebuilt, the same probes after

def header_size(path):
    with open(path, "rb") as f:
        np.lib.format.read_magic(f)
        np.lib.format.read_array_header_1_0(f)
        return f.tell()


def keep_header(fill):
    """Damage: the .npy header stays valid (np.load still opens it), the rows after it become fill(n bytes)."""
    def damage(folder):
        path = folder / "features.npy"
        data, n = path.read_bytes(), header_size(folder / "features.npy")
        path.write_bytes(data[:n] + fill(len(data) - n))
    return damage


def swap(folder):
    """The dev and train folders swap names (each one's manifest names the other's key)."""
    other = next(p for p in folder.parent.iterdir() if p.name.startswith("train-"))
    folder.rename(folder.with_name("swap"))
    other.rename(folder)
    folder.with_name("swap").rename(other)


DAMAGE = {
    "zeroed body": keep_header(lambda n: b"\0" * n),
    "garbage body": keep_header(lambda n: np.random.default_rng(0).bytes(n)),
    "truncated": lambda f: (f / "features.npy").write_bytes((f / "features.npy").read_bytes()[:-100]),
    "file missing": lambda f: (f / "features.npy").unlink(),
    "manifest missing": lambda f: (f / "cache.json").unlink(),
    "an extra file": lambda f: (f / "features.npy.tmp").write_bytes(b"x"),
    "swapped folders": swap,
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_cache_is_rebuilt_with_a_notice(damage, run, sst2, tiny_bert, tmp_path, capsys):
    cache = tmp_path / "cache"
    shutil.copytree(run.cache, cache)
    dev = next(p for p in cache.iterdir() if p.name.startswith("dev-"))
    DAMAGE[damage](dev)
    capsys.readouterr()
    again = probe.main([str(a) for a in flags(sst2, tmp_path / "out", tiny_bert, cache)])
    out = capsys.readouterr().out
    assert f"notice: the cache {dev} does not verify (" in out and "); building it again" in out, out
    assert out.count("features loaded from") == (0 if damage == "swapped folders" else 1)
    assert again["models"] == run.results["models"]  # the same features again, so the same probes and scores
    import files
    assert files.manifest_problems(dev, dev / files.CACHE_MANIFEST, key=dev.name) == []  # a cache that verifies now


def test_the_cache_is_read_without_the_model_and_overwrite_cache_rebuilds(run, sst2, tiny_bert, tmp_path, capsys,
                                                                         monkeypatch):
    monkeypatch.setattr(probe, "load_model", lambda *a: pytest.fail("the model was loaded: the cache was not used"))
    again = probe.main([str(a) for a in flags(sst2, tmp_path / "out", tiny_bert, run.cache)])
    assert capsys.readouterr().out.count("features loaded from") == 2 and again["models"] == run.results["models"]
    monkeypatch.undo()
    cache = tmp_path / "cache"
    shutil.copytree(run.cache, cache)
    probe.main([str(a) for a in flags(sst2, tmp_path / "out2", tiny_bert, cache, "--overwrite_cache")])
    assert "features loaded from" not in capsys.readouterr().out
    assert snapshot(cache) == snapshot(run.cache)  # rebuilt: the same bytes, checksums and manifest


# --- bad input: one line; the finished run untouched

class Case(SimpleNamespace):
    def file(self, name, content):
        return write_file(self.tmp / name, content)

    def sst2(self, *extra, data=None, model=None):
        return flags(data or self.data, self.run.out, model or self.model, self.run.cache, *extra)

    def sst2_with(self, name, content, *extra):
        """The SST-2 folder copied, name replaced by content."""
        folder = self.tmp / "SST-2"
        shutil.copytree(self.data, folder)
        (folder / name).write_bytes(content)
        return self.sst2(*extra, data=folder)

    def ner(self, train=None, dev=None):
        return ["--task", "ner", "--model", self.model, "--train_file", train or self.conll / "train.txt",
                "--validation_file", dev or self.conll / "dev.txt", "--output_dir", self.run.out, "--cache_dir",
                self.run.cache, "--device", "cpu"]

    def model_copy(self, drop=(), **files):
        return model_copy(self.model, self.tmp / "model", drop, **files)


CASES = {  # case: (argv from a Case, what the one line must hold)
    # --- encodings and binary data, through each task's reader
    "ner train file not UTF-8": (lambda c: c.ner(c.file("train.txt", latin1_line((c.conll / "train.txt").read_bytes(),
                                                                                     5))),
                                 ["train.txt:5: not UTF-8 text (byte 0xe9", "expected a UTF-8 text file"]),
    "ner dev file gzip": (lambda c: c.ner(dev=c.file("dev.txt", gzip.compress((c.conll / "dev.txt").read_bytes()))),
                          ["dev.txt:1: not UTF-8 text (byte 0x8b"]),
    "ner train file zeroed": (lambda c: c.ner(c.file("train.txt", b"\0" * 512)), ["train.txt:1: a NUL byte"]),
    "sst2 train.tsv not UTF-8": (lambda c: c.sst2_with("train.tsv", latin1_line((c.data / "train.tsv").read_bytes(),
                                                                                3)),
                                 ["train.tsv: not UTF-8 text"]),
    "sst2 dev.tsv UTF-16": (lambda c: c.sst2_with("dev.tsv", (c.data / "dev.tsv").read_text().encode("utf-16")),
                            ["dev.tsv: not UTF-8 text"]),
    "squad train file not UTF-8": (lambda c: ["--task", "squad", "--model", c.model, "--train_file", c.file(
        "train.json", latin1_line(c.squad["train"].read_bytes(), 1)), "--validation_file", c.squad["dev"],
        "--output_dir", c.run.out, "--cache_dir", c.run.cache], ["train.json: not UTF-8 text"]),
    # --- numbers
    "--epochs 0": (lambda c: c.sst2("--epochs", 0), ["--num_train_epochs 0: expected 1 or more"]),
    "--epochs not a number": (lambda c: c.sst2("--epochs", "two"), ["argument --num_train_epochs/--epochs: invalid "
                                                                    "int value: 'two'"]),
    "train batch 0": (lambda c: c.sst2("--per_device_train_batch_size", 0),
                      ["--per_device_train_batch_size 0: expected 1 or more"]),
    "eval batch negative": (lambda c: c.sst2("--per_device_eval_batch_size", -4),
                            ["--per_device_eval_batch_size -4: expected 1 or more"]),
    "learning rate 0": (lambda c: c.sst2("--learning_rate", 0), ["--learning_rate 0.0: expected a positive number"]),
    "learning rate nan": (lambda c: c.sst2("--learning_rate", "nan"), ["--learning_rate nan: expected a positive"]),
    "weight decay negative": (lambda c: c.sst2("--weight_decay", -0.1), ["--weight_decay -0.1: expected 0 or more"]),
    "--max_seq_length 0": (lambda c: c.sst2("--max_seq_length", 0), ["--max_seq_length 0: expected 1 or more"]),
    "--max_seq_length above the positions": (lambda c: c.sst2("--max_seq_length", 4096),
                                             ["--max_seq_length 4096: the model holds at most 128 positions"]),
    "--max_seq_length 2": (lambda c: c.sst2("--max_seq_length", 2), ["--max_seq_length 2: leaves no room"]),
    "--cache_limit_gb negative": (lambda c: c.sst2("--cache_limit_gb", -1), ["--cache_limit_gb -1.0: expected 0 or "
                                                                             "more"]),
    "--doc_stride negative": (lambda c: c.sst2("--doc_stride", -1), ["--doc_stride -1: expected 0 or more"]),
    "--n_best_size 0": (lambda c: c.sst2("--n_best_size", 0), ["--n_best_size 0: expected 1 or more"]),
    "--max_answer_length 0": (lambda c: c.sst2("--max_answer_length", 0), ["--max_answer_length 0: expected 1"]),
    "--max_query_length 0": (lambda c: c.sst2("--max_query_length", 0), ["--max_query_length 0: expected 1"]),
    "--layers negative": (lambda c: c.sst2("--layers=-1,2"), ["has hidden states 0 to 2", "-1 is out of range"]),
    "--device unknown": (lambda c: c.sst2("--device", "tpu7"), ["--device tpu7: expected cpu, cuda"]),
    # --- the model
    "model path missing": (lambda c: c.sst2(model=c.tmp / "none"), ["--model", "none: no such folder"]),
    "model without weights": (lambda c: c.sst2(model=c.model_copy(drop=["model.safetensors"])),
                              ["no weights (model.safetensors) in the folder"]),
    "truncated model.safetensors": (lambda c: c.sst2(model=c.model_copy(model__safetensors=(
        c.model / "model.safetensors").read_bytes()[:-10])), ["model.safetensors: damaged weights"]),
    "garbage model.safetensors": (lambda c: c.sst2(model=c.model_copy(model__safetensors=b"\xff" * 100)),
                                  ["model.safetensors: damaged weights"]),
    "no tokenizer files": (lambda c: c.sst2(model=c.model_copy(drop=["tokenizer.json", "tokenizer_config.json"])),
                           ["its tokenizer has no vocabulary, only"]),
    # --- folders
    "--output_dir is a file": (lambda c: [*c.sst2(), "--output_dir", c.file("out", "x")],
                               ["--output_dir", "out: a file; expected a folder"]),
    "--cache_dir is a file": (lambda c: [*c.sst2(), "--cache_dir", c.file("cache", "x")],
                              ["--cache_dir", "cache: a file; expected a folder"]),
}


@pytest.fixture(scope="module")
def squad(tmp_path_factory):
    return fixtures_squad.write_squad(tmp_path_factory.mktemp("probe-errors-squad"), sizes=(4, 2))


@pytest.mark.parametrize("overwrite", [False, True], ids=["", "--overwrite_output_dir"])
@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_and_the_run_stays(case, overwrite, run, sst2, conll, squad, tiny_bert, tmp_path,
                                                 capfd):
    make, needles = CASES[case]
    c = Case(tmp=tmp_path, data=sst2, conll=conll, squad=squad, model=tiny_bert, run=run)
    expect_error(capfd, probe.main, [*make(c), *(["--overwrite_output_dir"] if overwrite else [])], *needles,
                 run_dir=run.out)


def test_a_runs_probes_are_refused_before_any_work(run, sst2, tiny_bert, capfd, monkeypatch):
    monkeypatch.setattr(probe, "features", lambda *a, **k: pytest.fail("an encoder pass before refusing"))
    expect_error(capfd, probe.main, flags(sst2, run.out, tiny_bert, run.cache), "already holds probes",
                 "pass --overwrite_output_dir", run_dir=run.out)


def test_a_model_that_fails_to_load_leaves_the_old_probes(run, sst2, tiny_bert, tmp_path, capfd, monkeypatch):
    """--overwrite_output_dir replaces the probes only once new ones exist: a model that returns no hidden states
    (found at the first encoder pass) leaves the run as it was."""
    monkeypatch.setattr(probe, "forward", lambda model, batch: None)
    expect_error(capfd, probe.main, [*flags(sst2, run.out, tiny_bert, tmp_path / "cache"), "--overwrite_output_dir"],
                 "returned 0 hidden states", run_dir=run.out)


def copy_of(run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(run.out, out)
    return out, out / probe.slug(str(next(iter(run.results["models"]))))


def test_predict_with_a_damaged_probes_file(run, sst2, tiny_bert, tmp_path, capfd):
    out, folder = copy_of(run, tmp_path)
    path = folder / "probes" / "epoch_2.safetensors"
    path.write_bytes(path.read_bytes()[:200])
    expect_error(capfd, probe.main, ["predict", *flags(sst2, out, tiny_bert, run.cache)],
                 f"{path}: not a probes file of `probe.py train`", "run `probe.py train` again", run_dir=out)


def test_evaluate_with_damaged_or_foreign_predictions(run, sst2, tiny_bert, tmp_path, capfd):
    out, folder = copy_of(run, tmp_path)
    path = folder / "predictions" / "epoch_1.json"
    path.write_bytes(path.read_bytes()[:100])
    expect_error(capfd, probe.main, ["evaluate", *flags(sst2, out, tiny_bert, run.cache)],
                 f"{path}: not readable JSON (", "run `probe.py predict` with the flags of this evaluation", run_dir=out)
    shutil.copy(run.out / path.relative_to(out), path)
    # predictions of all 16 dev sentences, evaluated against the first 5: other data
    expect_error(capfd, probe.main, ["evaluate", *flags(sst2, out, tiny_bert, run.cache, "--max_eval_samples", 5)],
                 f"{folder / 'predictions' / 'epoch_1.json'}: dev task layer 0: not predictions for the 5 examples "
                 "of dev", run_dir=out)
