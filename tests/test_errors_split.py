"""split.py on malformed input: exactly one `error:` line naming the file (and line) and what was expected, exit
code 2, and the parts of an earlier split byte-identical afterwards. The input is never an output (by path, symlink
or hard link); existing parts are replaced only with --overwrite; bytes in any ASCII-compatible encoding pass
through unchanged, binary data (NUL bytes, UTF-16) is refused."""
import os
from collections import Counter

import pytest

import split
from bad_input import expect_error, snapshot


def main(argv):
    return split.main([str(a) for a in argv])


def lines(n):
    return b"".join(f"{i} line caf\xc3\xa9\n".encode("latin-1") for i in range(n))


@pytest.fixture
def done(tmp_path):
    """A corpus and a finished split of it in tmp_path/parts: (corpus path, parts folder)."""
    corpus = tmp_path / "all.txt"
    corpus.write_bytes(lines(50))
    main(["--data_path", corpus, "--base_path", tmp_path / "parts" / "data.txt", "--ratio", "10"])
    return corpus, tmp_path / "parts"


def run(args):
    return ["--ratio", "10", *args]


def test_an_output_that_is_the_input_is_refused(done, capfd):
    corpus, parts = done
    train = parts / "data.train.txt"
    for overwrite in ([], ["--overwrite"]):  # split.py once overwrote its own input this way
        expect_error(capfd, split.main, run(["--data_path", train, "--base_path", parts / "data.txt", *overwrite]),
                     f"{train}: this output is the input", "choose another --base_path", run_dir=parts)
        valid = parts / "data.valid.txt"
        expect_error(capfd, split.main, run(["--data_path", valid, "--base_path", parts / "data.txt", *overwrite]),
                     f"{valid}: this output is the input", run_dir=parts)
        sharded = parts / "data.train.00001.txt"
        sharded.write_bytes(lines(30))
        expect_error(capfd, split.main, run(["--data_path", sharded, "--base_path", parts / "data.txt",
                                             "--num_shards", 3, *overwrite]), f"{sharded}: this output is the input",
                     run_dir=parts)
        sharded.unlink()


def test_an_output_that_is_the_input_by_symlink_or_hard_link_is_refused(done, tmp_path, capfd):
    corpus, parts = done
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "data.train.txt").symlink_to(corpus)  # the output's name leads to the input
    expect_error(capfd, split.main, run(["--data_path", corpus, "--base_path", linked / "data.txt", "--overwrite"]),
                 "this output is the input", run_dir=tmp_path)
    (linked / "data.train.txt").unlink()
    os.link(corpus, linked / "data.test.txt")  # a hard link: another path, the same file
    expect_error(capfd, split.main, run(["--data_path", corpus, "--base_path", linked / "data.txt", "--overwrite"]),
                 f"{linked / 'data.test.txt'}: this output is the input", run_dir=tmp_path)
    (linked / "data.test.txt").unlink()
    alias = tmp_path / "alias.txt"  # the input given through a symlink
    alias.symlink_to(parts / "data.valid.txt")
    expect_error(capfd, split.main, run(["--data_path", alias, "--base_path", parts / "data.txt", "--overwrite"]),
                 "data.valid.txt: this output is the input", run_dir=tmp_path)


def test_existing_parts_are_replaced_only_with_overwrite(done, capfd):
    corpus, parts = done
    expect_error(capfd, split.main, run(["--data_path", corpus, "--base_path", parts / "data.txt"]),
                 f"{parts / 'data.train.txt'} already exists (and 2 more)", "pass --overwrite", run_dir=parts)
    before = snapshot(parts)
    counts = main(run(["--data_path", corpus, "--base_path", parts / "data.txt", "--overwrite", "--seed", 7]))
    assert counts == {"train": 40, "valid": 5, "test": 5} and snapshot(parts) != before
    assert sorted(p.name for p in parts.iterdir()) == ["data.test.txt", "data.train.txt", "data.valid.txt"]


def test_overwrite_states_its_default(capsys):
    with pytest.raises(SystemExit):
        split.parse_args(["--help"])
    assert "replace parts that already exist (default: off, refuse)" in " ".join(capsys.readouterr().out.split())


def test_other_encodings_pass_through_byte_for_byte(tmp_path):
    """split.py never decodes: Latin-1 (here a 0xe9 byte that is not UTF-8) comes out as it went in."""
    corpus = tmp_path / "latin1.txt"
    data = b"".join(f"{i} caf\xe9 na\xefve\r\n".encode("latin-1") for i in range(40))
    corpus.write_bytes(data)
    main(["--data_path", corpus, "--base_path", tmp_path / "d.txt", "--ratio", "10"])
    out = b"".join((tmp_path / f"d.{p}.txt").read_bytes() for p in ("train", "valid", "test"))
    assert Counter(out.split(b"\r\n")) == Counter(data.split(b"\r\n"))


def nul_at_line_3(path):
    path.write_bytes(lines(2) + b"x\x00y\n" + lines(20))


def utf16(path):
    path.write_bytes("first line\nsecond line\n".encode("utf-16"))


def garbage(path):
    path.write_bytes(b"\x00" * 4096)


BAD = {  # case: (make the input (None: leave it), extra flags, what the one line must hold)
    "missing input": (lambda p: None, [], ["missing.txt: no such file; expected a text file"]),
    "input is a directory": (lambda p: p.mkdir(), [], ["input: a directory; expected a text file"]),
    "empty input": (lambda p: p.write_bytes(b""), [], ["empty.txt: 0 lines, fewer than --ratio 10"]),
    "fewer lines than ratio": (lambda p: p.write_bytes(lines(9)), [], ["short.txt: 9 lines, fewer than --ratio 10"]),
    "binary input": (garbage, [], ["zeros.bin:1: a NUL byte (binary data", "expected a text file"]),
    "NUL byte on line 3": (nul_at_line_3, [], ["nul.txt:3: a NUL byte"]),
    "UTF-16 input": (utf16, [], ["utf16.txt:1: a NUL byte (binary data, or UTF-16 text)"]),
    "ratio 0": (None, ["--ratio", 0], ["--ratio 0: expected 2 or more"]),
    "ratio negative": (None, ["--ratio", -5], ["--ratio -5: expected 2 or more"]),
    "ratio 1": (None, ["--ratio", 1], ["--ratio 1: expected 2 or more"]),
    "ratio not a number": (None, ["--ratio", "1/10"], ["--ratio", "invalid int value: '1/10'"]),
    "shards 0": (None, ["--num_shards", 0], ["--num_shards 0: expected 1 or more"]),
    "shards negative": (None, ["--num_shards", -2], ["--num_shards -2: expected 1 or more"]),
    "buffer 0": (None, ["--buffer_mb", 0], ["--buffer_mb 0.0: expected a positive number of MB"]),
    "buffer negative": (None, ["--buffer_mb", -1], ["--buffer_mb -1.0: expected a positive number"]),
    "buffer nan": (None, ["--buffer_mb", "nan"], ["--buffer_mb nan: expected a positive number"]),
    "no base path": (None, ["--base_path"], ["argument --base_path: expected one argument"]),
    "unknown flag": (None, ["--ratios", "10,10"], ["unrecognized arguments: --ratios"]),
}
NAMES = {"missing input": "missing.txt", "input is a directory": "input", "empty input": "empty.txt",
         "fewer lines than ratio": "short.txt", "binary input": "zeros.bin", "NUL byte on line 3": "nul.txt",
         "UTF-16 input": "utf16.txt"}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line(case, done, capfd):
    corpus, parts = done
    make, extra, needles = BAD[case]
    if make is not None:
        corpus = corpus.parent / NAMES[case]
        make(corpus)
    argv = ["--data_path", corpus, "--base_path", parts / "data.txt", "--ratio", "10", "--overwrite", *extra]
    if case == "no base path":
        argv = ["--data_path", corpus, "--base_path"]
    expect_error(capfd, split.main, argv, *needles, run_dir=parts)
    assert not list(parts.glob(".split-*"))


def test_outputs_where_a_file_blocks_the_folder(done, tmp_path, capfd):
    corpus, parts = done
    (tmp_path / "blocker").write_text("a file, not a folder")
    expect_error(capfd, split.main, run(["--data_path", corpus, "--base_path", tmp_path / "blocker" / "sub" / "d.txt"]),
                 f"{tmp_path / 'blocker'}: a file; expected a folder", run_dir=parts)
    (parts / "d.valid.txt").mkdir()
    expect_error(capfd, split.main, run(["--data_path", corpus, "--base_path", parts / "d.txt", "--overwrite"]),
                 f"{parts / 'd.valid.txt'}: a directory where an output file goes")
