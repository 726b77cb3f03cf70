"""The check every malformed-input case runs: exit code 2, exactly one line on stderr starting with `error:` that
names what it must, no traceback, and (given a finished run) that run byte-identical afterwards."""
import hashlib
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
