"""pretrain_mlm.py against transformers.Trainer + DataCollatorForLanguageModeling: the same small RoBERTa from
scratch on WikiText-2, the same number of steps, on this CPU.

    HF_HUB_OFFLINE=1 python bench/pretrain_mlm_bench.py --steps 60 --rounds 3 --output bench/results/pretrain_mlm.json

Settings, each run in its own subprocess, in rotation (A B C D, A B C D, ...):
  trainer_fp32 / trainer_bf16  the run_mlm.py way: datasets.map tokenizes the lines, group_texts concatenates
                               them into --max_seq_length blocks, DataCollatorForLanguageModeling masks 15%
                               (80/10/10) in the loader, RobertaForMaskedLM computes the loss on all logits
  ours_fp32 / ours_bf16        pretrain_mlm.py --tokenizer_name ... --config_name configs/roberta-small.json
Both: one BPE tokenizer (8,000, trained once here on the training file by pretrain_mlm.py), wiki.test.tokens
trains and wiki.valid.tokens evaluates (../shared has no train split), batch 32 x 128 tokens, lr 5e-4 linear
with 10% warmup, weight decay 0.01, betas (0.9, 0.98), eps 1e-6, clipping 1.0, fused AdamW, seed 42, no eval
or saving during training.
Tokens/s: ours, what pretrain_mlm.py reports in train_results.json (real tokens of all N steps over the "train"
seconds of log.json: the run's wall time without evaluation and saving, measured by core, not here); the
Trainer's, real tokens of steps 2..N over the time from the end of step 1 to the end of step N (a callback's
clock: the first step's warm-up left out). Padding share: padding positions / all positions fed to the model.
Perplexity: every final model evaluated here the same way, on the first --eval_blocks 128-token blocks of the
validation file with fixed seeded BERT masks.
"""
import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from _common import machine, save

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ("trainer_fp32", "ours_fp32", "trainer_bf16", "ours_bf16")
COMMON = dict(batch=32, seq=128, lr=5e-4, warmup_ratio=0.1, weight_decay=0.01, beta2=0.98, eps=1e-6, seed=42,
              vocab_size=8000, config="configs/roberta-small.json")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", default=str(ROOT.parent / "shared/data/wikitext-2"),
                        help="folder with wiki.test.tokens and wiki.valid.tokens (default: ../shared/data/wikitext-2)")
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps per run (default: 60)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every setting (default: 3)")
    parser.add_argument("--settings", default=",".join(SETTINGS), help=f"(default: {','.join(SETTINGS)})")
    parser.add_argument("--eval_blocks", type=int, default=256, help="validation blocks for perplexity (default: 256)")
    parser.add_argument("--output", default=None, help="JSON file with every run (default: none)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # internal: run one setting
    parser.add_argument("--work", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def perplexity(folder, tokenizer, valid_file, blocks):
    """The final model on fixed masks: pretrain_mlm's packing and masking, seed 0, the same for every run."""
    import torch
    from transformers import AutoModelForMaskedLM

    import core
    import mlm
    lines = [line.strip() for line in Path(valid_file).read_text(encoding="utf-8").splitlines() if line.strip()]
    ids = tokenizer(lines, add_special_tokens=False, return_attention_mask=False)["input_ids"]
    packed = mlm.pack({"input_ids": ids}, COMMON["seq"], tokenizer.cls_token_id, tokenizer.sep_token_id)
    batch = {"input_ids": list(core.limit(packed["input_ids"], blocks))}
    specials = torch.tensor(tokenizer.all_special_ids)
    masked = mlm.fixed_masks(batch, range(len(batch["input_ids"])), 0, specials, tokenizer.mask_token_id,
                             len(tokenizer), 0.15)
    model = mlm.masked_only(AutoModelForMaskedLM.from_pretrained(folder)).eval()
    nll = count = 0.0
    with torch.inference_mode():
        for i in range(0, len(masked["input_ids"]), 32):
            ids = torch.tensor(masked["input_ids"][i:i + 32])
            labels = torch.tensor(masked["labels"][i:i + 32])
            out = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels)
            nll, count = nll + out.masked_nll.double().sum().item(), count + out.masked_tokens.sum().item()
    return float(torch.tensor(nll / count).exp())


def child_ours(args, work, bf16):
    import pretrain_mlm
    argv = ["--train_file", str(Path(args.data_dir) / "wiki.test.tokens"), "--tokenizer_name", str(work / "tokenizer"),
            "--config_name", str(ROOT / COMMON["config"]), "--max_seq_length", str(COMMON["seq"]),
            "--per_device_train_batch_size", str(COMMON["batch"]), "--learning_rate", str(COMMON["lr"]),
            "--warmup_ratio", str(COMMON["warmup_ratio"]), "--weight_decay", str(COMMON["weight_decay"]),
            "--adam_beta2", str(COMMON["beta2"]), "--adam_epsilon", str(COMMON["eps"]), "--seed", str(COMMON["seed"]),
            "--max_train_steps", str(args.steps), "--logging_steps", "10",
            "--validation_file", str(Path(args.data_dir) / "wiki.valid.tokens"), "--max_eval_samples", "32", "--report_to", "none",
            "--cache_dir", str(work / "cache"), "--mixed_precision", "bf16" if bf16 else "no",
            "--output_dir", str(work / "out")]
    results = pretrain_mlm.main(argv)
    return {"tokens_per_second": results["tokens_per_second"], "padding_share": results["padding_share"],
            "timed_steps": args.steps, "model": str(work / "out/last"), "argv": argv}  # (as train_results.json)


def child_trainer(args, work, bf16):
    import datasets
    from transformers import (AutoConfig, AutoModelForMaskedLM, AutoTokenizer, DataCollatorForLanguageModeling,
                              Trainer, TrainerCallback, TrainingArguments, set_seed)
    set_seed(COMMON["seed"])  # as run_mlm.py: before the model is initialised
    tokenizer = AutoTokenizer.from_pretrained(work / "tokenizer")
    seq = COMMON["seq"]
    raw = datasets.load_dataset("text", data_files=str(Path(args.data_dir) / "wiki.test.tokens"), split="train",
                                cache_dir=str(work / "cache"))
    tokenized = raw.map(lambda b: tokenizer(b["text"], return_special_tokens_mask=True), batched=True,
                        remove_columns=["text"])

    def group_texts(batch):  # run_mlm.py: concatenate everything, cut into seq-token blocks, drop the remainder
        joined = {k: sum(batch[k], []) for k in batch}
        total = len(joined["input_ids"]) // seq * seq
        return {k: [v[i:i + seq] for i in range(0, total, seq)] for k, v in joined.items()}
    train = tokenized.map(group_texts, batched=True)
    config = AutoConfig.from_pretrained(ROOT / COMMON["config"], vocab_size=len(tokenizer),
                                        max_position_embeddings=seq + tokenizer.pad_token_id + 1,
                                        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                                        eos_token_id=tokenizer.eos_token_id)
    model = AutoModelForMaskedLM.from_config(config)
    ends, fed = [], {"real": 0, "positions": 0}

    class Clock(TrainerCallback):
        def on_step_end(self, *_, **__):
            ends.append(time.perf_counter())
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    count = lambda features: (fed.update(real=fed["real"] + sum(sum(f["attention_mask"]) for f in features),
                                         positions=fed["positions"] + seq * len(features)), collator(features))[1]
    training_args = TrainingArguments(
        output_dir=str(work / "out"), use_cpu=True, bf16=bf16, seed=COMMON["seed"], max_steps=args.steps,
        per_device_train_batch_size=COMMON["batch"], learning_rate=COMMON["lr"], warmup_steps=COMMON["warmup_ratio"],
        weight_decay=COMMON["weight_decay"], adam_beta2=COMMON["beta2"], adam_epsilon=COMMON["eps"],
        lr_scheduler_type="linear", eval_strategy="no", save_strategy="no", report_to="none", logging_steps=10,
        disable_tqdm=True, dataloader_num_workers=0)
    trainer = Trainer(model=model, args=training_args, train_dataset=train, data_collator=count, callbacks=[Clock()])
    out = trainer.train()
    trainer.save_model(str(work / "out/final"))
    steps = len(ends) - 1
    real = fed["real"] / len(ends) * steps  # blocks are all seq long: every step has the same real tokens
    return {"tokens_per_second": real / (ends[-1] - ends[0]), "padding_share": 1 - fed["real"] / fed["positions"],
            "timed_steps": steps, "trainer_train_runtime": out.metrics["train_runtime"], "optim": training_args.optim,
            "model": str(work / "out/final")}


def child(args):
    sys.path.insert(0, str(ROOT))
    import files
    work = Path(args.work)
    kind, precision = args.child.split("_")
    result = (child_ours if kind == "ours" else child_trainer)(args, work, bf16=precision == "bf16")
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    from transformers import AutoTokenizer
    result["perplexity"] = perplexity(result["model"], AutoTokenizer.from_pretrained(work / "tokenizer"),
                                      Path(args.data_dir) / "wiki.valid.tokens", args.eval_blocks)
    import torch
    result["threads"] = torch.get_num_threads()
    files.write_json(work / "result.json", result)


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return child(args)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    import transformers
    settings = args.settings.split(",")
    work = Path(tempfile.mkdtemp(prefix="pretrain_mlm_bench_"))
    subprocess.run([sys.executable, str(ROOT / "pretrain_mlm.py"), "--train_file",
                    str(Path(args.data_dir) / "wiki.test.tokens"), "--train_tokenizer", "bpe", "--vocab_size",
                    str(COMMON["vocab_size"]), "--tokenizer_only", "--output_dir", str(work / "tok")],
                   check=True, stdout=subprocess.DEVNULL)
    if args.steps < 3:
        raise SystemExit("error: --steps must be at least 3 (steps 2..N are timed)")

    runs = []
    for round_ in range(args.rounds):
        for setting in settings:
            run_dir = work / f"{setting}-{round_}"
            run_dir.mkdir()
            (run_dir / "tokenizer").symlink_to(work / "tok/tokenizer")
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, __file__, "--child", setting, "--work", str(run_dir),
                                   "--data_dir", args.data_dir, "--steps", str(args.steps),
                                   "--eval_blocks", str(args.eval_blocks)], cwd=run_dir,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            wall = time.perf_counter() - start
            if proc.returncode:
                print(proc.stdout[-4000:], file=sys.stderr)
                raise SystemExit(f"error: {setting} failed (exit {proc.returncode})")
            result = json.loads((run_dir / "result.json").read_text())
            result.update(setting=setting, round=round_, wall_seconds=wall)
            runs.append(result)
            print(f"round {round_} {setting:13s} {result['tokens_per_second']:8.0f} tokens/s, padding "
                  f"{result['padding_share']:.3f}, perplexity {result['perplexity']:.1f}, wall {wall:6.1f} s, "
                  f"rss {result['peak_rss_mb']:.0f} MB", flush=True)
            shutil.rmtree(run_dir / "out", ignore_errors=True)
            shutil.rmtree(run_dir / "cache", ignore_errors=True)

    table = {}
    for s in settings:
        mine = [r for r in runs if r["setting"] == s]
        if mine:
            table[s] = {"runs": len(mine), **{k: statistics.median(r[k] for r in mine) for k in (
                "tokens_per_second", "padding_share", "perplexity", "wall_seconds", "peak_rss_mb")}}
    lines = ["| setting | runs | tokens/s | vs Trainer (same precision) | padding share | perplexity | wall s | "
             "peak RSS MB |", "|---|---|---|---|---|---|---|---|"]
    ratios = {}
    for s, t in table.items():
        base = table.get("trainer_" + s.split("_")[1])
        ratio = t["tokens_per_second"] / base["tokens_per_second"] if base else None
        if s.startswith("ours") and ratio:
            ratios[s] = ratio
        lines.append(f"| {s} | {t['runs']} | {t['tokens_per_second']:.0f} | {f'{ratio:.2f}x' if ratio else '-'} | "
                     f"{t['padding_share']:.3f} | {t['perplexity']:.1f} | {t['wall_seconds']:.1f} | "
                     f"{t['peak_rss_mb']:.0f} |")
    print("\n".join(lines))
    target = {"speed_ratios": ratios, "met": bool(ratios) and min(ratios.values()) >= 1.2
              and all(table[s]["padding_share"] == 0 for s in ratios)}
    print(f"target (ours >= 1.2x tokens/s, padding share 0): {target}")
    record = {"command": "HF_HUB_OFFLINE=1 python bench/pretrain_mlm_bench.py " + " ".join(argv or sys.argv[1:]),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(torch=torch.__version__, transformers=transformers.__version__,
                                 affinity=sorted(os.sched_getaffinity(0)), threads=runs[0]["threads"] if runs else None),
              "setup": {**COMMON, "steps": args.steps, "eval_blocks": args.eval_blocks},
              "medians": table, "target": target, "runs": runs, "table": "\n".join(lines)}
    save(record, args.output)
    shutil.rmtree(work, ignore_errors=True)
    return record


if __name__ == "__main__":
    main()
