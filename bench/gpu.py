"""The GPU benchmark: our scripts against transformers.Trainer on bert-base (random init), bf16, one device.

    bench/gpu.sh [--output bench/results/gpu.json]          # one H100/H200: under 8 minutes, offline
    bench/gpu.sh --smoke --output /tmp/gpu.json              # the same pipeline on CPU, tiny model, ~1 minute

Offline by design: no hub, no pip. The data is ../shared/data (GLUE SST-2, WikiText-2) where present, else
sentences generated here; the tokenizer is a WordPiece (lowercased) trained here on that text with the
`tokenizers` library, filled up with [unusedN] entries to bert-base's 30,522 (so the embeddings and the MLM
output layer have bert-base's size); the model is configs/bert-base.json, randomly initialised.

Six runs, each in its own subprocess (`python ...`), each command recorded in the JSON:
  finetune   glue.py --task_name sst2 vs Trainer + DataCollatorWithPadding: dynamic padding on both sides
             (random order, no group_by_length), batch 32, lr 2e-5, linear, no warmup, clipping 1.0, seed 42,
             max_seq_length 128, bf16; the training set is a seeded sample of exactly steps x batch sentences,
             so both sides train one epoch of --ft_steps steps on the same examples.
             Train samples/s: ours, steps x batch / log.json's seconds.train (core's training time, without
             evaluation and saving); the Trainer's, steps x batch / train_runtime. Wall: the whole subprocess.
  mlm_128,   pretrain_mlm.py --model_type bert --config_name configs/bert-base.json vs Trainer +
  mlm_512    DataCollatorForLanguageModeling (run_mlm.py's way: datasets.map, group_texts), packed blocks of
             128 / 512 tokens (no padding on either side), batch 32, lr 1e-4, weight decay 0.01, no warmup,
             15% masking, bf16, --mlm_steps_128 / --mlm_steps_512 steps. Tokens/s: ours, train_results.json's
             train_tokens / log.json's seconds.train; the Trainer's, steps x batch x seq / train_runtime.
MFU: 6 x non-embedding parameters x tokens (fine-tuning: the real, unpadded tokens) / train seconds / the bf16
matmul peak measured at the start (square bf16 matmuls for --peak_seconds).
"""
import argparse
import csv
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs/bert-base.json"
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# --smoke: the same pipeline on CPU with a tiny bert (the flags' values are --config_overrides')
SMOKE_OVERRIDES = "num_hidden_layers=2,hidden_size=32,num_attention_heads=2,intermediate_size=64"
# step counts sized for one H100: ~6 x 30 s of process overhead (imports, model, data, saves) + ~2-3 minutes of
# training in all, under the 8 minutes that --budget_seconds (a deadline for every run) also enforces
FULL = dict(ft_steps=600, ft_batch=32, mlm_steps_128=600, mlm_steps_512=300, mlm_batch=32, vocab_size=30522,
            peak_seconds=3.0, run_timeout=180, budget_seconds=460)
SMOKE = dict(ft_steps=4, ft_batch=8, mlm_steps_128=3, mlm_steps_512=3, mlm_batch=4, vocab_size=1000,
             peak_seconds=0.5, run_timeout=120, budget_seconds=300)
FT = dict(lr=2e-5, seed=42, max_seq_length=128)
MLM = dict(lr=1e-4, weight_decay=0.01, seed=42, mlm_probability=0.15)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true", help="CPU, tiny model, a few steps (default: off)")
    p.add_argument("--output", default=None,
                   help="the JSON file (default: bench/results/gpu.json, or bench/results/gpu_smoke.json with --smoke)")
    p.add_argument("--data_dir", default=str(ROOT.parent / "shared/data"),
                   help="folder with glue/SST-2 and wikitext-2 (default: ../shared/data; generated text where absent)")
    p.add_argument("--work_dir", default=None, help="scratch folder (default: a new temporary one, removed at the end)")
    for name in ("ft_steps", "ft_batch", "mlm_steps_128", "mlm_steps_512", "mlm_batch", "vocab_size", "run_timeout",
                 "budget_seconds"):
        p.add_argument(f"--{name}", type=int, default=None, help=f"(default: {FULL[name]}, --smoke {SMOKE[name]})")
    p.add_argument("--peak_seconds", type=float, default=None,
                   help=f"(default: {FULL['peak_seconds']}, --smoke {SMOKE['peak_seconds']})")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)  # internal: one Trainer run
    p.add_argument("--spec", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name, value in (SMOKE if args.smoke else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if not args.output:
        args.output = str(ROOT / "bench/results" / ("gpu_smoke.json" if args.smoke else "gpu.json"))
    return args


# ---------------------------------------------------------------- data and tokenizer
def read_tsv(path):
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return rows[0], [r for r in rows[1:] if r]


def write_tsv(path, header, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, lineterminator="\n").writerows([header, *rows])


def generated_words(rng, n=3000):
    letters = "etaoinshrdlucmfwypvbgk"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(n)]


def generated_sentence(rng, words, low, high):
    # Zipf-like word frequencies, lengths uniform in [low, high]
    return " ".join(words[min(int(rng.paretovariate(1.1)) - 1, len(words) - 1)] for _ in range(rng.randint(low, high)))


def make_data(args, work):
    """SST-2 train/dev TSVs (exactly ft_steps x ft_batch training rows) and the MLM train/valid text files."""
    rng = random.Random(0)
    words = generated_words(rng)
    sst2, wiki = Path(args.data_dir) / "glue/SST-2", Path(args.data_dir) / "wikitext-2"
    need = args.ft_steps * args.ft_batch
    source = {}
    if (sst2 / "train.tsv").is_file() and (sst2 / "dev.tsv").is_file():
        header, rows = read_tsv(sst2 / "train.tsv")
        _, dev = read_tsv(sst2 / "dev.tsv")
        rows = random.Random(0).sample(rows, need) if need <= len(rows) else [rng.choice(rows) for _ in range(need)]
        source["sst2"] = str(sst2)
    else:
        header = ["sentence", "label"]
        rows = [[generated_sentence(rng, words, 3, 40), str(rng.randint(0, 1))] for _ in range(need)]
        dev = [[generated_sentence(rng, words, 3, 40), str(rng.randint(0, 1))] for _ in range(200)]
        source["sst2"] = "generated"
    dev = dev[:64]  # glue.py evaluates once at the end of training: kept short, not what is measured
    (work / "sst2").mkdir()
    write_tsv(work / "sst2/train.tsv", header, rows)
    write_tsv(work / "sst2/dev.tsv", header, dev)

    if (wiki / "wiki.test.tokens").is_file() and (wiki / "wiki.valid.tokens").is_file():
        text = (wiki / "wiki.test.tokens").read_text(encoding="utf-8").splitlines()
        valid = [l for l in (wiki / "wiki.valid.tokens").read_text(encoding="utf-8").splitlines() if l.strip()][:200]
        source["mlm"] = str(wiki)
    else:
        text = [generated_sentence(rng, words, 20, 120) for _ in range(4000)]
        valid = [generated_sentence(rng, words, 20, 120) for _ in range(200)]
        source["mlm"] = "generated"
    if args.smoke:
        text = [l for l in text if l.strip()][:400]
        valid = valid[:40]
    return rows, text, valid, source


def make_tokenizer(args, work, sentences, text):
    """A lowercased BERT WordPiece trained on the data, padded with [unusedN] to --vocab_size entries."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertTokenizer
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(sentences + text, trainers.WordPieceTrainer(
        vocab_size=args.vocab_size, special_tokens=SPECIALS, show_progress=False))
    vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    tokens = [t for t, _ in vocab]
    tokens += [f"[unused{i}]" for i in range(args.vocab_size - len(tokens))]
    tokenizer = BertTokenizer(vocab={t: i for i, t in enumerate(tokens)}, do_lower_case=True, model_max_length=512)
    tokenizer.save_pretrained(work / "tokenizer")
    return tokenizer, len(vocab)


def config(args, tokenizer, num_labels=None):
    from transformers import AutoConfig
    cfg = AutoConfig.from_pretrained(CONFIG)
    if args.smoke:
        cfg.update_from_string(SMOKE_OVERRIDES)
    cfg.vocab_size = len(tokenizer)
    cfg.pad_token_id = tokenizer.pad_token_id
    if num_labels:
        cfg.num_labels = num_labels
    return cfg


def non_embedding_parameters(model):
    return sum(p.numel() for n, p in model.named_parameters() if ".embeddings." not in f".{n}")


def make_models(args, work, tokenizer):
    """The random bert-base classifier saved for glue.py (and the Trainer), and both models' parameter counts."""
    import torch
    from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, set_seed
    set_seed(FT["seed"])
    model = AutoModelForSequenceClassification.from_config(config(args, tokenizer, 2))
    model.save_pretrained(work / "bert")
    tokenizer.save_pretrained(work / "bert")
    counts = {"finetune": {"parameters": sum(p.numel() for p in model.parameters()),
                           "non_embedding_parameters": non_embedding_parameters(model)}}
    del model
    with torch.device("meta"):
        mlm = AutoModelForMaskedLM.from_config(config(args, tokenizer))
    counts["mlm"] = {"parameters": sum(p.numel() for p in mlm.parameters()),  # the tied decoder counted once
                     "non_embedding_parameters": non_embedding_parameters(mlm)}
    return counts


# ---------------------------------------------------------------- the machine
def matmul_peak(seconds, cuda):
    """bf16 FLOP/s of square matmuls, the best of a few timed windows."""
    import torch
    n = 8192 if cuda else 512
    device = "cuda" if cuda else "cpu"
    a = torch.randn(n, n, dtype=torch.bfloat16, device=device)
    b = torch.randn(n, n, dtype=torch.bfloat16, device=device)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    for _ in range(3):
        a @ b
    sync()
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 5:
            for _ in range(10 if cuda else 1):
                a @ b
                count += 1
            sync()
        best = max(best, 2 * n ** 3 * count / (time.perf_counter() - start))
    return {"bf16_flops": best, "n": n, "seconds": seconds}


def commit():
    def git(*a):
        r = subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else None
    sha = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": sha or "unknown", "dirty": bool(status) if status is not None else None}


def device_record(cuda):
    import accelerate
    import datasets
    import tokenizers
    import torch
    import transformers
    if cuda:
        name = torch.cuda.get_device_name(0)
    else:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
        name = next((l.split(":", 1)[1].strip() for l in lines if l.startswith("Model name")), platform.processor())
        name = f"cpu: {name}"
    return {"device": name, "cuda": cuda, "device_count": torch.cuda.device_count() if cuda else 0,
            "cuda_version": torch.version.cuda, "cores": os.cpu_count(), "python": platform.python_version(),
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                         "accelerate": accelerate.__version__, "datasets": datasets.__version__,
                         "tokenizers": tokenizers.__version__}}


# ---------------------------------------------------------------- the Trainer side (children)
def child_trainer_finetune(spec):
    import datasets
    import torch
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments, set_seed)
    set_seed(spec["seed"])
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    model = AutoModelForSequenceClassification.from_pretrained(spec["model"], num_labels=2)
    _, rows = read_tsv(Path(spec["data_dir"]) / "train.tsv")
    enc = tokenizer([r[0] for r in rows], truncation=True, max_length=spec["max_seq_length"])
    train = datasets.Dataset.from_dict({**enc, "label": [int(r[1]) for r in rows]})
    training_args = TrainingArguments(
        output_dir=spec["output_dir"], use_cpu=not torch.cuda.is_available(), bf16=True, seed=spec["seed"],
        max_steps=spec["steps"], per_device_train_batch_size=spec["batch"], learning_rate=spec["lr"],
        lr_scheduler_type="linear", eval_strategy="no", save_strategy="no", report_to="none", logging_steps=50,
        disable_tqdm=True)
    trainer = Trainer(model=model, args=training_args, train_dataset=train,
                      data_collator=DataCollatorWithPadding(tokenizer))
    out = trainer.train()
    return {"train_runtime": out.metrics["train_runtime"], "optim": str(training_args.optim),
            "train_samples_per_second_trainer": out.metrics["train_samples_per_second"], "steps": trainer.state.global_step}


def child_trainer_mlm(spec):
    import datasets
    import torch
    from transformers import (AutoConfig, AutoModelForMaskedLM, AutoTokenizer, DataCollatorForLanguageModeling,
                              Trainer, TrainingArguments, set_seed)
    set_seed(spec["seed"])  # as run_mlm.py: before the model is initialised
    tokenizer = AutoTokenizer.from_pretrained(spec["tokenizer"])
    seq = spec["seq"]
    raw = datasets.load_dataset("text", data_files=spec["train_file"], split="train", cache_dir=spec["cache_dir"])
    tokenized = raw.map(lambda b: tokenizer(b["text"], return_special_tokens_mask=True), batched=True,
                        remove_columns=["text"])

    def group_texts(batch):  # run_mlm.py: concatenate, cut into seq-token blocks, drop the remainder
        joined = {k: sum(batch[k], []) for k in batch}
        total = len(joined["input_ids"]) // seq * seq
        return {k: [v[i:i + seq] for i in range(0, total, seq)] for k, v in joined.items()}
    train = tokenized.map(group_texts, batched=True)
    cfg = AutoConfig.from_pretrained(spec["config"])
    if spec.get("config_overrides"):
        cfg.update_from_string(spec["config_overrides"])
    cfg.vocab_size, cfg.pad_token_id = len(tokenizer), tokenizer.pad_token_id
    model = AutoModelForMaskedLM.from_config(cfg)
    training_args = TrainingArguments(
        output_dir=spec["output_dir"], use_cpu=not torch.cuda.is_available(), bf16=True, seed=spec["seed"],
        max_steps=spec["steps"], per_device_train_batch_size=spec["batch"], learning_rate=spec["lr"],
        weight_decay=spec["weight_decay"], lr_scheduler_type="linear", eval_strategy="no", save_strategy="no",
        report_to="none", logging_steps=50, disable_tqdm=True)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=spec["mlm_probability"])
    trainer = Trainer(model=model, args=training_args, train_dataset=train, data_collator=collator)
    out = trainer.train()
    steps = trainer.state.global_step
    return {"train_runtime": out.metrics["train_runtime"], "optim": str(training_args.optim), "steps": steps,
            "train_tokens": steps * spec["batch"] * seq, "blocks": len(train)}


def child(args):
    spec = json.loads(Path(args.spec).read_text())
    result = {"trainer_finetune": child_trainer_finetune, "trainer_mlm": child_trainer_mlm}[args.child](spec)
    Path(spec["result"]).write_text(json.dumps(result, indent=2))


# ---------------------------------------------------------------- the parent
def run(cmd, log, timeout, env):
    """One subprocess; its command, exit code and wall seconds go into the record."""
    start = time.perf_counter()
    entry = {"cmd": " ".join(str(c) for c in cmd), "argv": [str(c) for c in cmd]}
    print(f"$ {entry['cmd']}", flush=True)
    try:
        proc = subprocess.run([str(c) for c in cmd], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=timeout, env=env)
        entry["returncode"], output = proc.returncode, proc.stdout
    except subprocess.TimeoutExpired as e:
        entry["returncode"], output = "timeout", (e.stdout or b"").decode(errors="replace") if isinstance(
            e.stdout, bytes) else (e.stdout or "")
    entry["wall_seconds"] = time.perf_counter() - start
    log.append(entry)
    if entry["returncode"] != 0:
        entry["output_tail"] = output[-3000:]
        print(output[-3000:], file=sys.stderr, flush=True)
    print(f"  exit {entry['returncode']}, {entry['wall_seconds']:.1f} s", flush=True)
    return entry


def seconds_train(output_dir):
    return json.loads((Path(output_dir) / "log.json").read_text())["seconds"]


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return child(args)
    t0 = time.perf_counter()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    cuda = torch.cuda.is_available()
    if not cuda and not args.smoke:
        raise SystemExit("error: no CUDA device; bench/gpu.sh is for one GPU (--smoke runs the pipeline on CPU)")
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="bench_gpu_"))
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if cuda and not env.get("CUDA_VISIBLE_DEVICES"):
        env["CUDA_VISIBLE_DEVICES"] = "0"  # one device: every run sees the same single GPU
    record = {"benchmark": "bench/gpu.py", "smoke": args.smoke,
              "command": " ".join(["bench/gpu.sh", *(argv if argv is not None else sys.argv[1:])]),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              **commit(), **device_record(cuda), "commands": []}
    commands = record["commands"]
    peak = matmul_peak(args.peak_seconds, cuda)
    record["peak"] = peak
    print(f"{record['device']}: bf16 matmul peak {peak['bf16_flops'] / 1e9:.1f} GFLOP/s", flush=True)

    sentences, text, valid, source = make_data(args, work)
    tokenizer, learned = make_tokenizer(args, work, [r[0] for r in sentences], text)
    params = make_models(args, work, tokenizer)
    # the MLM text file: both sides run several epochs of it (eval and save only at the end: --eval_steps)
    base_tokens = sum(len(x) for x in tokenizer(text, add_special_tokens=False)["input_ids"])
    (work / "mlm_train.txt").write_text("\n".join(text) + "\n", encoding="utf-8")
    (work / "mlm_valid.txt").write_text("\n".join(valid) + "\n", encoding="utf-8")
    lengths = [len(x) for x in tokenizer([r[0] for r in sentences], truncation=True,
                                         max_length=FT["max_seq_length"])["input_ids"]]
    record["setup"] = {
        "config": str(CONFIG.relative_to(ROOT)), "config_overrides": SMOKE_OVERRIDES if args.smoke else None,
        "data": source, "tokenizer": {"kind": "wordpiece, lowercased, trained here", "learned": learned,
                                      "vocab_size": len(tokenizer)},
        "parameters": params, "mixed_precision": "bf16",
        "finetune": {**FT, "steps": args.ft_steps, "batch": args.ft_batch, "examples": len(sentences),
                     "real_tokens": sum(lengths), "mean_tokens": sum(lengths) / len(lengths),
                     "padding": "dynamic (per batch) on both sides"},
        "mlm": {**MLM, "batch": args.mlm_batch, "steps": {"128": args.mlm_steps_128, "512": args.mlm_steps_512},
                "corpus_tokens": base_tokens, "corpus_lines": len(text)},
        "mfu": "6 x non-embedding parameters x tokens / train seconds / measured bf16 matmul peak",
    }
    py = sys.executable
    deadline = t0 + args.budget_seconds

    def limit():  # every run stops at the deadline, so that the JSON is written in time whatever happens
        return max(10.0, min(args.run_timeout, deadline - time.perf_counter()))
    runs = work / "runs"
    runs.mkdir()

    def mfu(kind, tokens, seconds):
        return 6 * params[kind]["non_embedding_parameters"] * tokens / seconds / peak["bf16_flops"]

    def trainer_cmd(kind, name, spec):
        spec = {**spec, "output_dir": str(runs / name), "result": str(runs / f"{name}.json")}
        (runs / f"{name}.spec.json").write_text(json.dumps(spec, indent=2))
        return [py, "bench/gpu.py", "--child", kind, "--spec", runs / f"{name}.spec.json"]

    # --- 1. fine-tuning: glue.py vs Trainer
    steps, batch = args.ft_steps, args.ft_batch
    samples, real = steps * batch, record["setup"]["finetune"]["real_tokens"]
    ours_cmd = [py, "glue.py", "--task_name", "sst2", "--data_dir", work / "sst2", "--model_name_or_path",
                work / "bert", "--output_dir", runs / "ours_finetune", "--do_train", "--report_to", "none",
                "--per_device_train_batch_size", batch, "--per_device_eval_batch_size", 64,
                "--learning_rate", FT["lr"], "--max_train_steps", steps, "--seed", FT["seed"],
                "--max_seq_length", FT["max_seq_length"], "--mixed_precision", "bf16", "--logging_steps", 50]
    ft = {}
    e = run(ours_cmd, commands, limit(), env)
    sec = seconds_train(runs / "ours_finetune") if e["returncode"] == 0 else None
    ft["ours"] = {"script": "glue.py", "wall_seconds": e["wall_seconds"], "returncode": e["returncode"],
                  **({"train_seconds": sec["train"], "evaluate_seconds": sec["evaluate"], "save_seconds": sec["save"],
                      "train_samples_per_second": samples / sec["train"], "mfu": mfu("finetune", real, sec["train"])}
                     if sec else {})}
    e = run(trainer_cmd("trainer_finetune", "trainer_finetune", {
        "model": str(work / "bert"), "data_dir": str(work / "sst2"), "steps": steps, "batch": batch, **FT}),
        commands, limit(), env)
    res = json.loads((runs / "trainer_finetune.json").read_text()) if e["returncode"] == 0 else None
    ft["trainer"] = {"script": "transformers.Trainer", "wall_seconds": e["wall_seconds"],
                     "returncode": e["returncode"],
                     **({"train_seconds": res["train_runtime"], "train_samples_per_second": samples / res["train_runtime"],
                         "mfu": mfu("finetune", real, res["train_runtime"]), "optim": res["optim"]} if res else {})}
    if "train_samples_per_second" in ft["ours"] and "train_samples_per_second" in ft["trainer"]:
        ft["ratio"] = ft["ours"]["train_samples_per_second"] / ft["trainer"]["train_samples_per_second"]
        ft["wall_ratio"] = ft["trainer"]["wall_seconds"] / ft["ours"]["wall_seconds"]
    record["finetune"] = ft
    shutil.rmtree(runs / "ours_finetune", ignore_errors=True)

    # --- 2. MLM pretraining at 128 and 512: pretrain_mlm.py vs Trainer + DataCollatorForLanguageModeling
    record["mlm"] = {}
    for seq, steps in ((128, args.mlm_steps_128), (512, args.mlm_steps_512)):
        out = runs / f"ours_mlm_{seq}"
        ours_cmd = [py, "pretrain_mlm.py", "--train_file", work / "mlm_train.txt", "--validation_file",
                    work / "mlm_valid.txt", "--max_eval_samples", 16, "--tokenizer_name", work / "tokenizer",
                    "--model_type", "bert", "--config_name", CONFIG.relative_to(ROOT),
                    *(["--config_overrides", SMOKE_OVERRIDES] if args.smoke else []),
                    "--max_seq_length", seq, "--per_device_train_batch_size", args.mlm_batch,
                    "--per_device_eval_batch_size", args.mlm_batch, "--learning_rate", MLM["lr"],
                    "--weight_decay", MLM["weight_decay"], "--mlm_probability", MLM["mlm_probability"],
                    "--seed", MLM["seed"], "--max_train_steps", steps, "--eval_steps", steps, "--logging_steps", 50,
                    "--mixed_precision", "bf16", "--report_to", "none", "--cache_dir", work / f"cache_ours_{seq}",
                    "--output_dir", out]
        m = {}
        e = run(ours_cmd, commands, limit(), env)
        if e["returncode"] == 0:
            sec = seconds_train(out)
            tokens = json.loads((out / "train_results.json").read_text())["train_tokens"]
            m["ours"] = {"script": "pretrain_mlm.py", "wall_seconds": e["wall_seconds"], "returncode": 0,
                         "train_seconds": sec["train"], "evaluate_seconds": sec["evaluate"],
                         "save_seconds": sec["save"], "train_tokens": tokens,
                         "tokens_per_second": tokens / sec["train"], "mfu": mfu("mlm", tokens, sec["train"])}
        else:
            m["ours"] = {"script": "pretrain_mlm.py", "wall_seconds": e["wall_seconds"], "returncode": e["returncode"]}
        e = run(trainer_cmd("trainer_mlm", f"trainer_mlm_{seq}", {
            "tokenizer": str(work / "tokenizer"), "train_file": str(work / "mlm_train.txt"), "seq": seq,
            "config": str(CONFIG), "config_overrides": SMOKE_OVERRIDES if args.smoke else None, "steps": steps,
            "batch": args.mlm_batch, "cache_dir": str(work / f"cache_trainer_{seq}"), **MLM}),
            commands, limit(), env)
        if e["returncode"] == 0:
            res = json.loads((runs / f"trainer_mlm_{seq}.json").read_text())
            m["trainer"] = {"script": "transformers.Trainer + DataCollatorForLanguageModeling",
                            "wall_seconds": e["wall_seconds"], "returncode": 0, "train_seconds": res["train_runtime"],
                            "train_tokens": res["train_tokens"], "optim": res["optim"],
                            "tokens_per_second": res["train_tokens"] / res["train_runtime"],
                            "mfu": mfu("mlm", res["train_tokens"], res["train_runtime"])}
        else:
            m["trainer"] = {"script": "transformers.Trainer + DataCollatorForLanguageModeling",
                            "wall_seconds": e["wall_seconds"], "returncode": e["returncode"]}
        if "tokens_per_second" in m["ours"] and "tokens_per_second" in m["trainer"]:
            m["ratio"] = m["ours"]["tokens_per_second"] / m["trainer"]["tokens_per_second"]
        m["steps"], m["seq"] = steps, seq
        record["mlm"][str(seq)] = m
        shutil.rmtree(out, ignore_errors=True)
        for d in (f"cache_ours_{seq}", f"cache_trainer_{seq}"):
            shutil.rmtree(work / d, ignore_errors=True)

    ok = all(c["returncode"] == 0 for c in commands)
    mlm512 = record["mlm"]["512"]
    record["goals"] = {
        "finetune_ratio_at_least_1.3": ft.get("ratio", 0) >= 1.3,
        "mlm_128_ratio_at_least_1.3": record["mlm"]["128"].get("ratio", 0) >= 1.3,
        "mlm_512_ratio_at_least_1.3": mlm512.get("ratio", 0) >= 1.3,
        "mlm_512_mfu_at_least_0.45": mlm512.get("ours", {}).get("mfu", 0) >= 0.45,
    }
    record["ok"] = ok
    record["total_seconds"] = time.perf_counter() - t0
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(record, indent=2) + "\n")
    print(summary(record), flush=True)
    print(f"wrote {args.output} ({record['total_seconds']:.0f} s)", flush=True)
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)
    if not ok:
        raise SystemExit("error: a run failed (see 'commands' in the JSON)")
    return record


def summary(r):
    def f(x, fmt):
        return format(x, fmt) if isinstance(x, (int, float)) else "-"
    ft = r["finetune"]
    lines = ["| run | ours | Trainer | ratio | MFU ours | MFU Trainer |", "|---|---|---|---|---|---|",
             f"| fine-tuning, samples/s | {f(ft['ours'].get('train_samples_per_second'), '.1f')} | "
             f"{f(ft['trainer'].get('train_samples_per_second'), '.1f')} | {f(ft.get('ratio'), '.2f')}x | "
             f"{f(ft['ours'].get('mfu', 0) * 100, '.1f')}% | {f(ft['trainer'].get('mfu', 0) * 100, '.1f')}% |"]
    for seq, m in r["mlm"].items():
        lines.append(f"| MLM seq {seq}, tokens/s | {f(m['ours'].get('tokens_per_second'), '.0f')} | "
                     f"{f(m['trainer'].get('tokens_per_second'), '.0f')} | {f(m.get('ratio'), '.2f')}x | "
                     f"{f(m['ours'].get('mfu', 0) * 100, '.1f')}% | {f(m['trainer'].get('mfu', 0) * 100, '.1f')}% |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
