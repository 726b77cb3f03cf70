"""split.py: exact counts, every line once, seeded, bytes kept (UTF-8, CRLF, no final newline), shards, and
memory bounded by --buffer_mb rather than the corpus."""
import random
import tracemalloc
from collections import Counter

import pytest

import split


def corpus(path, n, seed=0, newline=b"\n", final_newline=True):
    rng = random.Random(seed)
    words = ["alpha", "béta", "東京", "🎉", "x\ty", "naïve"]
    lines = [f"{i} " + " ".join(rng.choice(words) for _ in range(rng.randint(0, 12))) for i in range(n)]
    data = newline.join(l.encode("utf-8") for l in lines) + (newline if final_newline else b"")
    path.write_bytes(data)
    return [l.encode("utf-8") for l in lines]


def parts(base, num_shards=1):
    train, valid, test = split.output_paths(base, num_shards)
    return [p.read_bytes() for p in train], valid.read_bytes(), test.read_bytes()


def test_counts_every_line_once_and_seeded(tmp_path):
    lines = corpus(tmp_path / "all.txt", 2345)
    counts = split.main(["--data_path", str(tmp_path / "all.txt"), "--base_path", str(tmp_path / "a" / "data.txt"),
                         "--ratio", "100"])
    assert counts == {"train": 2345 - 46, "valid": 23, "test": 23}
    (train,), valid, test = parts(tmp_path / "a" / "data.txt")
    got = [b.splitlines() for b in (train, valid, test)]
    assert [len(g) for g in got] == [2299, 23, 23]
    assert Counter(got[0] + got[1] + got[2]) == Counter(lines)  # every line exactly once, bytes intact
    assert got[0] != sorted(got[0], key=lambda l: int(l.split()[0]))  # shuffled
    valid_ids = sorted(int(l.split()[0]) for l in got[1])
    assert valid_ids[-1] - valid_ids[0] > 1000  # a random sample, not the first lines

    split.main(["--data_path", str(tmp_path / "all.txt"), "--base_path", str(tmp_path / "b" / "data.txt"),
                "--ratio", "100"])
    assert parts(tmp_path / "b" / "data.txt") == parts(tmp_path / "a" / "data.txt")  # reproducible
    split.main(["--data_path", str(tmp_path / "all.txt"), "--base_path", str(tmp_path / "c" / "data.txt"),
                "--ratio", "100", "--seed", "7"])
    assert parts(tmp_path / "c" / "data.txt")[1] != parts(tmp_path / "a" / "data.txt")[1]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"], ids=["lf", "crlf"])
def test_line_endings_kept_and_last_line_without_newline(tmp_path, newline):
    lines = corpus(tmp_path / "all.txt", 50, newline=newline, final_newline=False)
    lines[7] = b"carriage\rinside"  # a lone CR is not a line break
    (tmp_path / "all.txt").write_bytes(newline.join(lines))
    split.main(["--data_path", str(tmp_path / "all.txt"), "--base_path", str(tmp_path / "data.txt"), "--ratio", "10"])
    (train,), valid, test = parts(tmp_path / "data.txt")
    everything = train + valid + test
    assert everything.count(b"\n") == 50 and everything.count(newline) == 50  # the unterminated line got the file's newline
    assert Counter(everything.split(newline)[:-1]) == Counter(lines)


def test_shards_keep_order_and_bad_input(tmp_path, capsys):
    lines = corpus(tmp_path / "all.txt", 1003)
    split.main(["--data_path", str(tmp_path / "all.txt"), "--base_path", str(tmp_path / "data.txt"), "--ratio", "100",
                "--num_shards", "4", "--keep_order"])
    train, valid, test = parts(tmp_path / "data.txt", 4)
    assert [len(t.splitlines()) for t in train] == [245, 246, 246, 246]  # 983 lines in equal shards
    assert (tmp_path / "data.train.00003.txt").exists() and not (tmp_path / "data.train.txt").exists()
    kept = [l for t in train for l in t.splitlines()]
    assert kept == [l for l in lines if l in set(kept)]  # corpus order
    assert not list(tmp_path.glob(".split-*"))  # temporary buckets removed
    assert "all.txt: 1003 lines -> train 983, valid 10, test 10" in capsys.readouterr().out

    (tmp_path / "small.txt").write_text("one\ntwo\n")
    with pytest.raises(SystemExit) as e:
        split.main(["--data_path", str(tmp_path / "small.txt"), "--base_path", str(tmp_path / "s.txt")])
    assert e.value.code == 2 and "2 lines, fewer than --ratio 1000" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        split.main(["--data_path", str(tmp_path / "missing.txt"), "--base_path", str(tmp_path / "s.txt")])
    assert e.value.code == 2 and "missing.txt" in capsys.readouterr().err


def test_memory_is_bounded_by_the_buffer_not_the_corpus(tmp_path):
    """With a 0.25 MB buffer, a corpus 4x larger does not need more memory: only one bucket is ever held."""
    peaks = []
    for n in (25_000, 100_000):
        corpus(tmp_path / "all.txt", n)
        tracemalloc.start()
        counts = split.main(["--data_path", str(tmp_path / "all.txt"), "--base_path", str(tmp_path / "data.txt"),
                             "--ratio", "1000", "--buffer_mb", "0.25", "--overwrite"])
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert counts["train"] == n - 2 * (n // 1000)
        assert len(parts(tmp_path / "data.txt")[0][0].splitlines()) == counts["train"]
    size = (tmp_path / "all.txt").stat().st_size
    assert size > 4_000_000 and peaks[1] < size / 2, f"peak {peaks[1]} bytes for a {size}-byte corpus"
    assert peaks[1] < 1.3 * peaks[0], peaks  # not proportional to the corpus
