"""probe.py: feature shapes and the cache (reused without a model), a planted layer found by the table, the
batched probes equal to independent ones, the majority baseline and control task recomputed by hand, the plot of
several models, the CS224N project's train/predict/evaluate steps on NER, SQuAD v2 with the official metric, and bad input
(one line, exit 2)."""
import argparse
import csv
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import fixtures_glue
import fixtures_ner
import fixtures_squad
import probe
import tiny


@pytest.fixture(scope="module")
def sst2(tmp_path_factory):
    return fixtures_glue.write_glue(tmp_path_factory.mktemp("glue"), tasks=("sst2",), sizes=(160, 48, 8)) / "SST-2"


@pytest.fixture(scope="module")
def distilbert(tmp_path_factory):
    return tiny.build_model("distilbert", tmp_path_factory.mktemp("distil"), dropout=0.0, seed=1)


def sst2_flags(data, out, *models, extra=()):
    return ["--task", "sst2", "--data_dir", str(data), *[a for m in models for a in ("--model", str(m))],
            "--output_dir", str(out), "--cache_dir", str(out.parent / "cache"), "--device", "cpu",
            "--learning_rate", "1e-2", "--epochs", "2", *map(str, extra)]


def tsv_labels(path):
    with open(path, encoding="utf-8") as f:
        return [int(r["label"]) for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]


def cached(out):
    return {a.shape for a in map(lambda p: np.load(p, mmap_mode="r"), (out.parent / "cache").glob("*/features.npy"))}


@pytest.fixture(scope="module")
def sst2_run(tmp_path_factory, sst2, tiny_bert, distilbert):
    out = tmp_path_factory.mktemp("sst2") / "out"
    return out, probe.main(sst2_flags(sst2, out, tiny_bert, distilbert))


def test_two_models_table_plot_shapes_and_probe_files(sst2_run, tiny_bert, distilbert):
    out, results = sst2_run
    # features [examples, layers + 1, hidden], one file per split and model (both models: 2 layers, hidden 32)
    assert cached(out) == {(160, 3, 32), (48, 3, 32)} and len(list((out.parent / "cache").glob("*/features.npy"))) == 4
    assert list(results["models"]) == [str(tiny_bert), str(distilbert)]
    for rows in results["models"].values():
        assert [r["layer"] for r in rows] == [0, 1, 2]
        for r in rows:
            assert sorted(r["epochs"]) == [1, 2] and r["best_epoch"] in (1, 2)
            best = max(r["epochs"][e]["dev"]["accuracy"] for e in (1, 2))
            assert r["dev"]["accuracy"] == best == r["epochs"][r["best_epoch"]]["dev"]["accuracy"]
    probes = load_file(out / probe.slug(str(tiny_bert)) / "probes" / "epoch_2.safetensors")
    assert probes["task.layer_2.weight"].shape == (32, 2) and probes["control.layer_0.bias"].shape == (2,)
    assert len(probes) == 2 * 3 * 2  # (task, control) x 3 layers x (weight, bias)
    md = (out / "results.md").read_text()
    assert f"## {tiny_bert}" in md and f"## {distilbert}" in md and "by model" in md
    png = (out / "probe.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    import matplotlib.image
    assert matplotlib.image.imread(out / "probe.png").shape[:2] == (540, 840)  # 7 x 4.5 inches at 120 dpi
    saved = json.loads((out / "results.json").read_text())
    assert saved["metric"] == "accuracy" and set(saved["models"]) == set(results["models"])


def test_majority_baseline_and_control_task_by_hand(sst2_run, sst2, tiny_bert):
    out, results = sst2_run
    train, dev = tsv_labels(sst2 / "train.tsv"), tsv_labels(sst2 / "dev.tsv")
    majority = int(np.bincount(train).argmax())
    assert results["baseline"]["dev"]["accuracy"] == pytest.approx(100 * np.mean(np.array(dev) == majority))
    # control labels: each sentence's first word's, from the training label distribution, the same in every split
    with open(sst2 / "dev.tsv", encoding="utf-8") as f:
        first = [r["sentence"].split()[0].lower() for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]
    control = probe.control_labels(first, np.bincount(train), 42)
    assert all(c == probe.control_labels([w], np.bincount(train), 42)[0] for w, c in zip(first, control))
    row = results["models"][str(tiny_bert)][1]
    predictions = json.loads((out / probe.slug(str(tiny_bert)) / "predictions" / f"epoch_{row['best_epoch']}.json")
                             .read_text())["dev"]
    assert row["dev"]["control_accuracy"] == pytest.approx(100 * np.mean(np.array(predictions["control"]["1"]) == control))
    assert row["dev"]["accuracy"] == pytest.approx(100 * np.mean(np.array(predictions["task"]["1"]) == dev))
    assert row["dev"]["selectivity"] == pytest.approx(row["dev"]["accuracy"] - row["dev"]["control_accuracy"])


def test_control_labels_follow_the_training_distribution():
    words = [f"w{i}" for i in range(4000)]
    labels = probe.control_labels(words, np.array([300, 100, 0, 600]), seed=1)
    share = np.bincount(labels, minlength=4) / len(words)
    assert share == pytest.approx([0.3, 0.1, 0.0, 0.6], abs=0.03)
    assert (probe.control_labels(words, np.array([300, 100, 0, 600]), seed=2) != labels).mean() > 0.3  # seeded


def test_cache_is_reused_without_loading_the_model(sst2_run, sst2, tiny_bert, distilbert, monkeypatch, capsys):
    out, results = sst2_run
    monkeypatch.setattr(probe, "load_model", lambda *a: pytest.fail("the model was loaded: the cache was not used"))
    again = probe.main(sst2_flags(sst2, out, tiny_bert, distilbert, extra=["--overwrite_output_dir"]))
    assert capsys.readouterr().out.count("features loaded from") == 4
    assert again["models"] == results["models"]  # the same numbers again


def test_features_are_the_models_hidden_states(sst2, tiny_bert, tmp_path):
    """Mean pooling over the real tokens, hidden state 0 = the embeddings, --layers picks the states, in file order."""
    from transformers import AutoModel, AutoTokenizer
    out = tmp_path / "out"
    probe.main(sst2_flags(sst2, out, tiny_bert, extra=["--pooling", "mean", "--layers", "0,2", "--epochs", 1]))
    cache = np.load(next((tmp_path / "cache").glob("dev-*/features.npy")))
    with open(sst2 / "dev.tsv", encoding="utf-8") as f:
        texts = [r["sentence"] for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]
    tokenizer, model = AutoTokenizer.from_pretrained(tiny_bert), AutoModel.from_pretrained(tiny_bert).eval()
    batch = tokenizer(texts[:5], padding=True, return_tensors="pt")
    with torch.no_grad():
        states = model(**batch, output_hidden_states=True).hidden_states
    mask = batch["attention_mask"][:, :, None]
    for i, layer in enumerate((0, 2)):
        mean = (states[layer] * mask).sum(1) / mask.sum(1)
        np.testing.assert_allclose(cache[:5, i], mean.numpy(), atol=2e-3)
    assert cache.shape == (48, 2, 32) and cache.dtype == np.float16
    assert not np.allclose(cache[:, 0], cache[:, 1], atol=1e-2)  # two different states


def test_planted_layer_is_found(sst2, tiny_bert, tmp_path, monkeypatch):
    """Hidden state 1 carries the label (a GROUP_B cue word makes a sentence positive), the others are noise."""
    from transformers import AutoTokenizer
    vocab = AutoTokenizer.from_pretrained(tiny_bert).get_vocab()
    cues = torch.tensor([vocab[w] for w in fixtures_glue.GROUP_B])
    noise = torch.Generator().manual_seed(0)

    def forward(model, batch):
        ids = batch["input_ids"]
        states = [torch.randn(*ids.shape, 32, generator=noise) for _ in range(3)]
        states[1] += 2.0 * (2.0 * torch.isin(ids, cues).any(1)[:, None, None] - 1)  # +-2 in every dimension
        return tuple(states)
    monkeypatch.setattr(probe, "forward", forward)
    results = probe.main(sst2_flags(sst2, tmp_path / "out", tiny_bert))
    accuracy = [r["dev"]["accuracy"] for r in results["models"][str(tiny_bert)]]
    assert accuracy[1] == 100.0 and max(accuracy[0], accuracy[2]) < 75
    table = (tmp_path / "out" / "results.md").read_text().splitlines()
    cells = lambda start: next(line for line in table if line.startswith(start)).strip("| ").split(" | ")
    assert dict(zip(cells("| layer |"), cells("| 1 |")))["accuracy"] == "100.00"


@pytest.mark.parametrize("task", ["sst2", "squad"])
def test_batched_probes_equal_independent_ones(task):
    """The same init, data and order: all layers (and the control task) at once, or each layer alone."""
    g = torch.Generator().manual_seed(0)
    counts = np.array([1] * 40) if task == "sst2" else torch.randint(3, 9, (40,), generator=g).numpy()
    x = torch.randn(int(counts.sum()), 4, 6, generator=g)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    if task == "sst2":
        targets, shape = torch.randint(0, 3, (40, 2), generator=g).numpy(), (2, 4, 6, 3)
    else:
        targets, shape = np.stack([torch.randint(0, c, (2,), generator=g).numpy() for c in counts]), (1, 4, 6, 2)
    args = argparse.Namespace(task=task, learning_rate=1e-2, weight_decay=0.01, num_train_epochs=2,
                              per_device_train_batch_size=8, seed=0)
    rows = lambda layers: lambda ids: torch.cat([x[offsets[i]:offsets[i + 1], layers] for i in ids])
    weight, bias = probe.train_probes(rows(slice(None)), counts, targets, shape, args, "cpu")
    assert weight.abs().min() > 0  # every probe learnt something
    for layer in range(4):
        alone, alone_bias = probe.train_probes(rows(slice(layer, layer + 1)), counts, targets,
                                               (shape[0], 1, *shape[2:]), args, "cpu")
        torch.testing.assert_close(weight[:, layer:layer + 1], alone, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(bias[:, layer:layer + 1], alone_bias, atol=1e-6, rtol=1e-5)


def test_ner_train_predict_evaluate_steps(tmp_path):
    """The CS224N project's three steps, one subcommand each, and a test set scored at the epoch dev picked."""
    data = fixtures_ner.write_data(tmp_path / "data", sizes=(80, 24, 24))
    model = tiny.build_model("bert", tmp_path / "bert", texts=(data / "sentences.txt").read_text().splitlines())
    flags = ["--task", "ner", "--model", str(model), "--train_file", str(data / "train.txt"), "--validation_file",
             str(data / "dev.txt"), "--test_file", str(data / "test.txt"), "--output_dir", str(tmp_path / "out"),
             "--cache_dir", str(tmp_path / "cache"), "--layers", "0,2", "--learning_rate", "1e-2"]
    folder = tmp_path / "out" / probe.slug(str(model))
    assert probe.main(["train", *flags]) is None
    assert [p.name for p in sorted((folder / "probes").iterdir())] == [f"epoch_{e}.safetensors" for e in (1, 2, 3)]
    assert not (folder / "predictions").exists() and not (tmp_path / "out" / "results.json").exists()
    probe.main(["predict", *flags])
    assert len(list((folder / "predictions").glob("epoch_*.json"))) == 3
    results = probe.main(["evaluate", *flags])
    words = {split: [line.split() for line in (data / f"{split}.txt").read_text().splitlines()
                     if line.strip() and not line.startswith("-DOCSTART-")] for split in ("train", "dev", "test")}
    assert cached(tmp_path / "out") == {(len(words[s]), 2, 32) for s in words}  # a row per word, layers 0 and 2
    baseline = results["baseline"]["dev"]
    assert baseline["f1"] == 0.0 and baseline["accuracy"] == pytest.approx(
        100 * np.mean([w[-1] == "O" for w in words["dev"]]))
    rows = results["models"][str(model)]
    assert [r["layer"] for r in rows] == [0, 2]
    for r in rows:
        assert r["test"] == r["epochs"][r["best_epoch"]]["test"] and 0 <= r["test"]["f1"] <= 100
        assert {"precision", "recall", "PER_f1", "control_accuracy"} <= set(r["dev"])
    assert "test f1" in (tmp_path / "out" / "results.md").read_text()


def test_squad_v2_official_metric_and_streamed_features(tmp_path):
    paths = fixtures_squad.write_squad(tmp_path / "data", sizes=(30, 10), v2=True)
    model = tiny.build_model("bert", tmp_path / "bert", texts=paths["corpus"].read_text().splitlines())
    flags = ["--task", "squad", "--model", str(model), "--train_file", str(paths["train"]), "--validation_file",
             str(paths["dev"]), "--version_2_with_negative", "--output_dir", str(tmp_path / "out"), "--cache_dir",
             str(tmp_path / "cache"), "--max_seq_length", "48", "--doc_stride", "16", "--max_query_length", "16",
             "--epochs", "1"]
    results = probe.main(flags)
    dev = [q for a in json.loads(paths["dev"].read_text())["data"] for p in a["paragraphs"] for q in p["qas"]]
    no_answer = 100 * np.mean([q["is_impossible"] for q in dev])
    assert results["baseline"]["dev"]["f1"] == pytest.approx(no_answer) and no_answer == 50.0
    rows = results["models"][str(model)]
    assert len(rows) == 3 and all({"exact", "f1", "HasAns_f1", "NoAns_f1", "best_f1"} <= set(r["dev"]) for r in rows)
    shapes = cached(tmp_path / "out")  # a row per token of every window: more rows than questions
    assert all(s[1:] == (3, 32) and s[0] > 10 * len(dev) for s in shapes) and len(shapes) == 2
    predictions = json.loads((tmp_path / "out" / probe.slug(str(model)) / "predictions" / "epoch_1.json").read_text())
    assert set(predictions["dev"]["task"]["2"]["predictions"]) == {q["id"] for q in dev}
    # features over --cache_limit_gb: an encoder pass per batch, nothing cached, the same kind of results
    streamed = probe.main([*flags, "--overwrite_output_dir", "--cache_limit_gb", "0", "--cache_dir",
                           str(tmp_path / "none")])
    assert not (tmp_path / "none").exists() and len(streamed["models"][str(model)]) == 3


def test_bad_input_is_one_clear_line(sst2, tiny_bert, tmp_path, capsys, monkeypatch):
    def fails(argv, expected):
        with pytest.raises(SystemExit) as e:
            probe.main(argv)
        err = capsys.readouterr().err.strip()
        assert e.value.code == 2 and err.startswith("error: ") and len(err.splitlines()) == 1, err
        assert expected in err, err
    out = tmp_path / "out"
    fails(["--task", "pos", "--model", "m", "--train_file", "a", "--validation_file", "b"], "unknown task 'pos'")
    fails(sst2_flags(sst2, out, tiny_bert, extra=["--layers", "0,3,99"]), "has hidden states 0 to 2")
    fails(sst2_flags(sst2, out, tiny_bert, extra=["--layers", "1,x"]), "expected comma-separated layer numbers")
    custom = tmp_path / "custom"  # train.py's template model: AutoModel does not know it
    custom.mkdir()
    (custom / "config.json").write_text(json.dumps({"model_type": "template-multilabel"}))
    fails(sst2_flags(sst2, out, custom), "needs a Hugging Face encoder (AutoModel)")
    fails(["predict", *sst2_flags(sst2, out, tiny_bert)], "no probes; run `probe.py train`")
    fails(["--task", "stsb", "--data_dir", str(sst2), "--model", "m"], "unknown task 'stsb'")
    monkeypatch.setattr(probe, "forward", lambda model, batch: None)
    fails(sst2_flags(sst2, out, tiny_bert, extra=["--overwrite_output_dir", "--cache_dir", tmp_path / "c2"]),
          "returned 0 hidden states")
    assert not (out / "results.json").exists()
