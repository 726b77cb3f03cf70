"""bench/preprocess.py on tiny fixture files: the reference preprocessing (run_qa / run_ner as written there) makes
the same features as squad.py and ner.py, and the JSON record's medians and ratios come from its runs."""
import json
import statistics
import sys

import pytest

from conftest import ROOT
import fixtures_ner
import fixtures_squad
import tiny

sys.path.insert(0, str(ROOT / "bench"))
import preprocess  # noqa: E402


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """The real files' layout under ../shared/data, with fixture content; SQuAD contexts made longer than a window
    (other paragraphs' text in front), so questions have several windows, some without the answer."""
    folder = tmp_path_factory.mktemp("data")
    (folder / "squad").mkdir()
    for tag, v2 in (("v1.1", False), ("v2.0", True)):
        paths = fixtures_squad.write_squad(folder / f"tmp-{tag}", sizes=(2, 20), v2=v2)
        squad = json.loads(paths["dev"].read_text())
        paragraphs = [p for article in squad["data"] for p in article["paragraphs"]]
        for i, p in enumerate(paragraphs):
            prefix = " ".join(q["context"] for q in paragraphs[i + 1:] + paragraphs[:i])[:1500 * (i % 3)] + " "
            p["context"] = prefix + p["context"]
            for qa in p["qas"]:
                for answer in qa["answers"]:
                    answer["answer_start"] += len(prefix)
        (folder / f"squad/dev-{tag}.explorer-rebuilt.json").write_text(json.dumps(squad))
    fixtures_ner.write_data(folder / "conll2003", sizes=(120, 2, 2))
    return folder


@pytest.fixture(scope="module")
def tokenizer_dir(data_dir, tmp_path_factory):
    """A WordPiece tokenizer that takes 512 tokens, as MiniLM's does (the benchmark's windows are 384 long)."""
    texts = (data_dir / "tmp-v1.1/corpus.txt").read_text().splitlines()
    texts += (data_dir / "conll2003/sentences.txt").read_text().splitlines()
    tokenizer = tiny.train_tokenizer("wordpiece", texts)
    tokenizer.model_max_length = 512
    folder = tmp_path_factory.mktemp("tokenizer")
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("case", list(preprocess.CASES))
def test_both_sides_make_the_same_features(case, data_dir, tokenizer_dir, tmp_path, capsys):
    import ner
    import squad
    from accelerate import Accelerator
    from transformers import AutoTokenizer

    file, task, training = preprocess.CASES[case]
    path = str(data_dir / file)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    assert tokenizer.is_fast
    found = {}
    for side in ("ours", "reference"):
        cache = tmp_path / side
        cache.mkdir()
        for state in ("cold", "cached"):
            timers = {}
            if side == "reference":
                n, features = preprocess.reference_squad(path, tokenizer, training, str(cache), timers) \
                    if task == "squad" else preprocess.reference_ner(path, tokenizer, str(cache), timers)
            elif task == "squad":
                args = squad.parse_args(["--model", "unused", "--validation_file", path, "--cache_dir", str(cache)])
                n, features = preprocess.ours_squad(path, tokenizer, training, args, Accelerator(cpu=True), timers)
            else:
                args = ner.parse_args(["--model", "unused", "--train_file", path, "--cache_dir", str(cache)])
                n, features = preprocess.ours_ner(path, tokenizer, args, Accelerator(cpu=True), timers)
            found[side, state] = (n, *preprocess.digest(task, side, features))
            if side == "reference" and state == "cold" and task == "squad":
                assert "flatten" in timers
            if side == "reference" and state == "cached":
                assert "flatten" not in timers and len(list(cache.rglob("cache-*.arrow"))) >= 1
            if side == "ours":  # cold: tokenized and saved; cached: loaded from what the cold run saved
                assert ("loaded from" in capsys.readouterr().out) == (state == "cached")
                assert len(list(cache.iterdir())) == 1
    assert len(set(found.values())) == 1, found
    n, features, _ = found["ours", "cold"]
    assert features >= n > 0 and (features > n or task == "ner")  # SQuAD contexts overflow into several windows


def test_record_is_computed_from_its_runs(data_dir, tokenizer_dir, tmp_path):
    output = tmp_path / "preprocess.json"
    record = preprocess.main(["--data_dir", str(data_dir), "--model_name_or_path", str(tokenizer_dir),
                              "--cases", "conll_train", "--rounds", "1", "--output", str(output)])
    assert json.loads(output.read_text()) == json.loads(json.dumps(record))
    runs, t = record["runs"], record["medians"]["conll_train"]
    assert sorted((r["side"], r["state"]) for r in runs) == [("ours", "cached"), ("ours", "cold"),
                                                             ("reference", "cached"), ("reference", "cold")]
    seconds = {f"{r['side']}_{r['state']}": r["seconds"] for r in runs}
    assert t["median_seconds"] == seconds
    assert t["ratio_cold"] == pytest.approx(seconds["reference_cold"] / seconds["ours_cold"])
    assert t["ratio_cached"] == pytest.approx(seconds["reference_cached"] / seconds["ours_cached"])
    assert t["ratios_per_round"] == {"cold": [pytest.approx(t["ratio_cold"])],
                                     "cached": [pytest.approx(t["ratio_cached"])]}
    cpu = {f"{r['side']}_{r['state']}": r["cpu_seconds"] for r in runs}
    assert t["median_cpu_seconds"] == cpu
    assert t["ratio_cold_cpu"] == pytest.approx(cpu["reference_cold"] / cpu["ours_cold"])
    assert t["examples"] == 120 and t["features"] == 120 and t["same_features"]
    assert all(r["peak_rss_mb"] >= r["rss_start_mb"] > 0 for r in runs)
    assert "tokenizer" in runs[0]["parts"] and statistics.median([r["seconds"] for r in runs]) > 0
    assert "| conll_train | train.txt | 120 | 120 |" in record["table"]
