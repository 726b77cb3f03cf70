"""bench/streaming_memory.py: the corpus writer's counts are the file's, the RSS curve's tenths and floor, the
table's medians and size ratio come from the runs, and one tiny streamed run end to end (no timing asserted)."""
import json
import sys

import pytest
from conftest import ROOT, SHARED

sys.path.insert(0, str(ROOT / "bench"))
import streaming_memory  # noqa: E402


def test_write_corpus_counts_what_it_writes(tmp_path):
    pool, counts = ["alpha beta", "gamma", "délta epsilon zeta"], [2, 1, 3]
    found = streaming_memory.write_corpus(tmp_path / "c.txt", pool, counts, 10_000, seed=1)
    data = (tmp_path / "c.txt").read_bytes()
    lines = data.decode("utf-8").splitlines()
    assert found == {"lines": len(lines), "bytes": len(data), "tokens": sum(counts[pool.index(l)] for l in lines)}
    assert 10_000 <= len(data) < 10_000 + 21  # stops at the first line past the size
    assert found == streaming_memory.write_corpus(tmp_path / "d.txt", pool, counts, 10_000, seed=1)
    assert (tmp_path / "d.txt").read_bytes() == data  # seeded


def test_curve_tenths_floor_and_high_water():
    # seconds, rss, anon, file, hwm, children, tokens, offset: 5 startup samples, 100 in training, 5 after
    samples = [[i, 100, 80, 20, 100, 0, 0, 0] for i in range(5)]
    for i in range(100):
        rss = 200 + (i % 2) * 50 + (30 if i >= 90 else 0)  # steps come and go; the last tenth is 30 MB higher
        samples.append([5 + i, rss, rss - 20, 20, 280 if i >= 90 else 250, 0, (i + 1) * 1000, i * 10])
    samples += [[105 + i, 400, 380, 20, 400, 0, 100_000, 990] for i in range(5)]  # final save: not training
    out = streaming_memory.curve({"samples": samples})
    assert len(out["tenths"]) == 10 and all(t["samples"] == 10 for t in out["tenths"])
    assert out["floor_growth_mb"] == 30 and out["hwm_first_tenth_mb"] == 250
    assert out["hwm_end_of_training_mb"] == 280 and out["rss_max_sampled_mb"] == 400
    assert len(out["points"]) == 60 and out["points"][-1][3] == 100_000


def fake_run(mode, gb, peak, tokens=1000, wall=10.0):
    return {"mode": mode, "corpus_gb": gb, "corpus_lines": int(gb * 100), "corpus_tokens": int(gb * 10_000),
            "corpus_bytes": int(gb * 1e9), "steps": 5, "train_tokens": tokens, "token_share": tokens / (gb * 10_000),
            "corpus_bytes_read": 1e7, "read_share": 1e7 / (gb * 1e9), "peak_rss_mb": peak,
            "hwm_first_tenth_mb": peak - 10, "hwm_end_of_training_mb": peak, "floor_growth_mb": 1.0,
            "first_batch_seconds": 3.0, "wall_seconds": wall, "cache_bytes": None}


def test_summarize_medians_and_ratio_come_from_the_runs():
    runs = [fake_run("streaming", 1, 800), fake_run("streaming", 4, 820), fake_run("streaming", 1, 900),
            fake_run("streaming", 4, 830), fake_run("streaming", 1, 810), fake_run("no_streaming", 0.05, 700)]
    table, lines, verdict = streaming_memory.summarize(runs)
    assert [(t["mode"], t["corpus_gb"], t["runs"]) for t in table] == [
        ("streaming", 1, 3), ("streaming", 4, 2), ("no_streaming", 0.05, 1)]
    assert table[0]["peak_rss_mb"] == 810 and table[0]["peak_rss_mb_range"] == [800, 900]
    assert table[1]["peak_rss_mb"] == 825
    assert verdict == {"smallest_gb": 1, "largest_gb": 4, "peak_rss_ratio": 825 / 810,
                       "peak_rss_difference_mb": 15}
    assert len(lines) == 2 + len(table) and "| streaming | 4 | 400 | 2 | 5 | 1,000 (2.50%) |" in lines[3]


@pytest.mark.skipif(not (SHARED / "wikitext-2").is_dir(), reason="needs ../shared/data/wikitext-2")
def test_one_tiny_streamed_run(tmp_path):
    out = tmp_path / "result.json"
    record = streaming_memory.main(["--sizes_gb", "0.001", "--rounds", "1", "--no_streaming_gb", "",
                                    "--tokenizer_gb", "", "--read_gb", "", "--max_train_steps", "2",
                                    "--vocab_size", "400", "--work_dir", str(tmp_path), "--output", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(record))
    assert record["command"].endswith(f"--work_dir {tmp_path} --output {out}")
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # the corpus folder is gone
    (run,) = record["runs"]
    corpus = record["corpora"]["0.001"]
    assert run["mode"] == "streaming" and 1e6 <= corpus["bytes"] < 1e6 + 5000
    assert run["train_tokens"] == 2 * 16 * 128  # packed blocks: no padding
    assert run["token_share"] == run["train_tokens"] / corpus["tokens"]
    assert run["peak_rss_mb"] == record["medians"][0]["peak_rss_mb"] >= run["vm_hwm_at_end_of_main_mb"] > 100
    assert 0 < run["corpus_bytes_read"] <= corpus["bytes"] and record["streaming_largest_vs_smallest"] is None
