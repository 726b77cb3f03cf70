"""The check every malformed-input case runs: exit code 2, exactly one line on stderr starting with `error:` that
names what it must, no traceback, and (given a finished run) that run byte-identical afterwards. And what the
tests/test_errors_*.py case tables share: damaged model folders, the case's files written and its placeholders
filled in, the --overwrite_output_dir variants."""
import hashlib
import shutil
import sys

import pytest


def snapshot(folder):
    """{relative path: sha256} of every file under folder (empty when it does not exist)."""
    if folder is None or not folder.exists():
        return {}
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def expect_error(capfd, main, argv, *needles, run_dir=None):
    """main(argv) must exit with code 2 and print exactly one line on stderr, starting with 'error:' and containing
    every needle; run_dir (a finished run) must be byte-identical afterwards. Returns the line."""
    before = snapshot(run_dir)
    capfd.readouterr()
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in argv])
    sys.stderr.flush()
    err = capfd.readouterr().err
    lines = [l for l in err.splitlines() if l.strip()]
    assert e.value.code == 2, f"exit code {e.value.code!r}, stderr: {err[-2000:]}"
    assert len(lines) == 1 and lines[0].startswith("error:"), f"not one error line: {err[-2000:]}"
    for needle in needles:
        assert str(needle) in lines[0], f"{needle!r} not in {lines[0]!r}"
    if run_dir is not None:
        assert snapshot(run_dir) == before, f"{run_dir} changed"
    return lines[0]


# --- the case tables: (id, {file name: content}, argv, needles), placeholders {t} (the case's folder) and {name} (a
# path of the module's ctx); run_case writes the files, fills in the placeholders and runs expect_error

def damaged_models(model, root):
    """Copies of a model folder: weights cut in half, garbage weights, garbage config.json, no tokenizer files."""
    found = {}
    for name in ("truncated", "garbage", "badconfig", "notokenizer"):
        folder = root / name
        shutil.copytree(model, folder)
        weights = folder / "model.safetensors"
        if name == "truncated":
            weights.write_bytes(weights.read_bytes()[:weights.stat().st_size // 2])
        elif name == "garbage":
            weights.write_bytes(b"\x00\x01 not safetensors " * 64)
        elif name == "badconfig":
            (folder / "config.json").write_text('{"model_type": "bert", ')
        else:
            for f in folder.iterdir():
                if f.name not in ("config.json", "model.safetensors"):
                    f.unlink()
        found[name] = str(folder)
    return found


def model_copy(model, folder, drop=(), **files):
    """A copy of the model folder at folder, without the files in drop, with files (name: bytes or text, "__" for
    ".": model__safetensors) replaced."""
    shutil.copytree(model, folder)
    for name in drop:
        (folder / name).unlink()
    for name, content in files.items():
        write_file(folder / name.replace("__", "."), content)
    return folder


def latin1_line(data, n):
    """data (bytes) with a Latin-1 word (0xe9, not UTF-8) put at the start of line n."""
    return b"\n".join(b"caf\xe9 " + l if i == n else l for i, l in enumerate(data.split(b"\n"), 1))


def write_file(path, content):
    """content (bytes, or text written as UTF-8) at path, its folders made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def fill(value, ctx, folder):
    """{t} (this case's folder) and {name} (a path of ctx) put in; other braces stay."""
    for key, path in {"t": folder, **ctx}.items():
        value = value.replace("{" + key + "}", str(path))
    return value


def params(cases, overwrite_too):
    """pytest params (name, files, argv, needles, overwrite) of each case, and again with overwrite=True (id
    "<name>-overwrite") where overwrite_too(name, argv)."""
    for name, files, argv, needles in cases:
        yield pytest.param(name, files, argv, needles, False, id=name)
        if overwrite_too(name, argv):
            yield pytest.param(name, files, argv, needles, True, id=f"{name}-overwrite")


def run_case(capfd, main, ctx, folder, files, argv, needles, run_dir=None, before=(), after=()):
    """The case's files written under folder, the placeholders of argv and needles filled in, and main(before + argv +
    after) expected to fail with one line holding every needle, run_dir unchanged."""
    for name, content in files.items():
        write_file(folder / name, content)
    put = lambda value: fill(value, ctx, folder)
    return expect_error(capfd, main, [*before, *map(put, argv), *after], *map(put, needles), run_dir=run_dir)
