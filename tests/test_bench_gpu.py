"""bench/gpu.sh --smoke: the GPU benchmark's whole pipeline on CPU with a tiny bert (glue.py, pretrain_mlm.py and the
Trainer, each in its own process), and the JSON it writes has every field with sane values (no speed asserted)."""
import json
import os
import re
import subprocess
import sys
from argparse import Namespace

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import gpu  # noqa: E402


def positive(x):
    return isinstance(x, (int, float)) and x > 0


def test_smoke_writes_every_field(tmp_path):
    out = tmp_path / "gpu.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp_path / "hf-datasets")}
    proc = subprocess.run(["bash", str(ROOT / "bench/gpu.sh"), "--smoke", "--output", str(out)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["smoke"] is True and r["ok"] is True
    assert r["device"].startswith("cpu") and r["cuda"] is False
    assert r["commit"] and (r["commit"] == "unknown" or re.fullmatch(r"[0-9a-f]{40}", r["commit"]))
    assert {"torch", "transformers", "accelerate", "datasets", "tokenizers"} <= set(r["versions"])
    assert positive(r["peak"]["bf16_flops"])
    assert r["setup"]["config"] == "configs/bert-base.json" and r["setup"]["mixed_precision"] == "bf16"
    for kind in ("finetune", "mlm"):
        params = r["setup"]["parameters"][kind]
        assert 0 < params["non_embedding_parameters"] < params["parameters"]
    # model FLOP utilisation: 6 x non-embedding parameters x tokens / seconds / the measured peak (on a CPU under
    # load the 512 x 512 "peak" of a smoke run can be below what a tiny model reaches: the formula is what is checked)
    mfu = lambda kind, tokens, seconds: (6 * r["setup"]["parameters"][kind]["non_embedding_parameters"] * tokens
                                         / seconds / r["peak"]["bf16_flops"])

    # every command recorded, in order, and exited 0
    cmds = [c["cmd"] for c in r["commands"]]
    assert len(cmds) == 6 and all(c["returncode"] == 0 and positive(c["wall_seconds"]) for c in r["commands"])
    assert "glue.py --task_name sst2" in cmds[0] and "--mixed_precision bf16" in cmds[0]
    assert "--child trainer_finetune" in cmds[1]
    for i, seq in ((2, 128), (4, 512)):
        assert "pretrain_mlm.py" in cmds[i] and "--model_type bert --config_name configs/bert-base.json" in cmds[i]
        assert f"--max_seq_length {seq}" in cmds[i] and "--mixed_precision bf16" in cmds[i]
        assert "--child trainer_mlm" in cmds[i + 1]
    ft, steps = r["setup"]["finetune"], r["setup"]["finetune"]["steps"]
    assert f"--max_train_steps {steps}" in cmds[0] and ft["examples"] == steps * ft["batch"]
    assert 0 < ft["real_tokens"] <= ft["examples"] * ft["max_seq_length"]

    # 1. fine-tuning: samples/s, wall, ratio, MFU on both sides
    f = r["finetune"]
    for side in ("ours", "trainer"):
        s = f[side]
        assert s["returncode"] == 0 and positive(s["wall_seconds"]) and positive(s["train_seconds"])
        assert s["train_seconds"] < s["wall_seconds"]
        assert abs(s["train_samples_per_second"] - ft["examples"] / s["train_seconds"]) < 1e-6
        assert s["mfu"] == pytest.approx(mfu("finetune", ft["real_tokens"], s["train_seconds"]))
    assert abs(f["ratio"] - f["ours"]["train_samples_per_second"] / f["trainer"]["train_samples_per_second"]) < 1e-9
    assert positive(f["wall_ratio"])

    # 2. MLM at 128 and 512: tokens/s, ratio, MFU; every block full on both sides
    for seq in ("128", "512"):
        m = r["mlm"][seq]
        assert m["seq"] == int(seq) and m["steps"] == r["setup"]["mlm"]["steps"][seq]
        for side in ("ours", "trainer"):
            s = m[side]
            assert s["returncode"] == 0 and positive(s["train_seconds"]) and positive(s["tokens_per_second"])
            assert s["train_tokens"] == m["steps"] * r["setup"]["mlm"]["batch"] * int(seq)
            assert abs(s["tokens_per_second"] - s["train_tokens"] / s["train_seconds"]) < 1e-6
            assert s["mfu"] == pytest.approx(mfu("mlm", s["train_tokens"], s["train_seconds"]))
        assert abs(m["ratio"] - m["ours"]["tokens_per_second"] / m["trainer"]["tokens_per_second"]) < 1e-9
    assert set(r["goals"]) == {"finetune_ratio_at_least_1.3", "mlm_128_ratio_at_least_1.3",
                               "mlm_512_ratio_at_least_1.3", "mlm_512_mfu_at_least_0.45"}
    assert all(isinstance(v, bool) for v in r["goals"].values())


def test_generated_data_when_shared_is_absent(tmp_path):
    args = Namespace(data_dir=str(tmp_path / "none"), ft_steps=3, ft_batch=4, smoke=True, vocab_size=300)
    rows, text, valid, source = gpu.make_data(args, tmp_path)
    assert source == {"sst2": "generated", "mlm": "generated"}
    assert len(rows) == 12 and all(r[1] in ("0", "1") and r[0] for r in rows)
    header, train = gpu.read_tsv(tmp_path / "sst2/train.tsv")
    assert header == ["sentence", "label"] and train == rows
    assert text and valid and all(line.strip() for line in text)
    tokenizer, learned = gpu.make_tokenizer(args, tmp_path, [r[0] for r in rows], text)
    assert len(tokenizer) == 300 and learned <= 300  # filled up with [unusedN] to the asked size
    assert len(tokenizer(rows[0][0])["input_ids"]) > 2 and tokenizer.unk_token_id not in tokenizer(text[0])["input_ids"]
