"""The shared training loop: plain functions on Accelerate, no Trainer.

    accelerate launch train.py --model_name_or_path bert-base-cased --train_file train.jsonl --validation_file dev.jsonl

A task script does, in order:
    core.add_args(parser); args = parser.parse_args(argv)
    accelerator = core.setup(args)        # refuses an output_dir holding another run, seeds, mixed precision
    ... tokenizer, model, datasets, collator ...
    best = core.train(args, accelerator, model, tokenizer, train_dataset, eval_dataset, collate_fn, evaluate=...)
and core.predict(...) for its own evaluation of best/.
"""
import ctypes
import hashlib
import json
import math
import os
import shlex
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from accelerate.utils import DistributedType, set_seed
from tqdm.auto import tqdm
from transformers import SchedulerType, get_scheduler
from transformers.utils import logging as hf_logging

import checkpoint
from files import cache_root, cached, cached_dataset, write_json, write_text  # noqa: F401 (the one cache and write)

hf_logging.set_verbosity_error()  # quiet by default: no load-report tables or per-save notices on stderr
TRACKERS = {"tensorboard": ("tensorboardX", "tensorboard"), "wandb": ("wandb",), "mlflow": ("mlflow",),
            "comet_ml": ("comet_ml",), "aim": ("aim",), "clearml": ("clearml",), "dvclive": ("dvclive",)}
SCHEDULERS = [s.value for s in SchedulerType if s.value not in ("reduce_lr_on_plateau", "greedy")]


def fail(message):
    """Bad input: one line on stderr, exit code 2, no traceback."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def add_args(parser):
    g = parser.add_argument_group("training (core.py)")
    g.add_argument("--model_name_or_path", "--model", default=None, help="model folder or hub name (default: %(default)s)")
    g.add_argument("--output_dir", default="out", help="where best/, last/, log.json and runs/ go (default: %(default)s)")
    g.add_argument("--overwrite_output_dir", action="store_true", help="replace a run already in output_dir (default: refuse)")
    g.add_argument("--num_train_epochs", type=int, default=3, help="epochs (default: %(default)s)")
    g.add_argument("--max_train_steps", "--max_steps", type=int, default=-1,
                   help="optimizer steps; overrides epochs (default: %(default)s = off)")
    g.add_argument("--per_device_train_batch_size", type=int, default=8, help="(default: %(default)s)")
    g.add_argument("--per_device_eval_batch_size", type=int, default=32, help="(default: %(default)s)")
    g.add_argument("--gradient_accumulation_steps", type=int, default=1, help="micro-batches per optimizer step (default: %(default)s)")
    g.add_argument("--learning_rate", type=float, default=5e-5, help="peak learning rate (default: %(default)s)")
    g.add_argument("--weight_decay", type=float, default=0.0, help="AdamW weight decay, not on biases/norms (default: %(default)s)")
    g.add_argument("--adam_beta1", type=float, default=0.9, help="(default: %(default)s)")
    g.add_argument("--adam_beta2", type=float, default=0.999, help="(default: %(default)s)")
    g.add_argument("--adam_epsilon", type=float, default=1e-8, help="(default: %(default)s)")
    g.add_argument("--max_grad_norm", type=float, default=1.0, help="gradient clipping (default: %(default)s; 0 = off)")
    g.add_argument("--lr_scheduler_type", default="linear", choices=SCHEDULERS, help="(default: %(default)s)")
    g.add_argument("--num_warmup_steps", "--warmup_steps", type=int, default=0,
                   help="warmup steps (default: %(default)s = use --warmup_ratio)")
    g.add_argument("--warmup_ratio", type=float, default=0.0, help="warmup as a share of all steps (default: %(default)s)")
    g.add_argument("--seed", type=int, default=42, help="seed for init, data order and dropout (default: %(default)s)")
    g.add_argument("--mixed_precision", default="no", choices=["no", "fp16", "bf16"], help="(default: %(default)s)")
    g.add_argument("--bf16", dest="mixed_precision", action="store_const", const="bf16", help="= --mixed_precision bf16")
    g.add_argument("--fp16", dest="mixed_precision", action="store_const", const="fp16", help="= --mixed_precision fp16")
    g.add_argument("--eval_steps", type=int, default=0, help="evaluate and save every N steps (default: %(default)s = every epoch)")
    g.add_argument("--logging_steps", type=int, default=10, help="log loss and lr every N steps (default: %(default)s)")
    g.add_argument("--metric_for_best_model", default="loss", help="eval metric that picks best/ (default: %(default)s)")
    g.add_argument("--greater_is_better", default=None, choices=["true", "false"],
                   help="(default: false for names with 'loss' or 'perplexity', else true)")
    g.add_argument("--early_stopping_patience", type=int, default=0, help="stop after N evals without gain (default: %(default)s = off)")
    g.add_argument("--resume_from_checkpoint", nargs="?", const="auto", default=None,
                   help="'auto' (output_dir/last if it exists) or a last/ folder (default: fresh start)")
    g.add_argument("--resume_inexact", action="store_true",
                   help="resume even when part of last/state is missing or damaged: restore what verifies, start the "
                        "rest afresh, with a warning (default: off = refuse, naming the file)")
    g.add_argument("--save_steps", type=int, default=0, help="also keep output_dir/checkpoint-STEP/ every N steps, "
                   "loadable, evaluable and resumable like last/ (default: %(default)s = off)")
    g.add_argument("--save_total_limit", type=int, default=0,
                   help="keep only the newest N checkpoint-STEP/ folders (default: %(default)s = all)")
    g.add_argument("--report_to", default="tensorboard",
                   help=f"trackers, comma-separated, through Accelerate: {', '.join(TRACKERS)}, all (the installed "
                        "ones) or none (default: %(default)s, events in output_dir/runs)")
    g.add_argument("--max_train_samples", type=int, default=-1, help="use the first N training examples (default: %(default)s = all)")
    g.add_argument("--max_eval_samples", type=int, default=-1, help="use the first N eval examples (default: %(default)s = all)")
    g.add_argument("--group_by_length", action="store_true", help="batch examples of similar length (default: off)")
    g.add_argument("--gradient_checkpointing", action="store_true", help="trade compute for memory (default: off)")
    g.add_argument("--torch_compile", action="store_true", help="torch.compile the model (default: off)")
    g.add_argument("--dataloader_num_workers", type=int, default=0, help="(default: %(default)s = load in the main process)")
    return parser


def check_args(args):
    """The shared flags, checked before any work: one line for a value that cannot mean anything."""
    positive = ["per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
                "logging_steps"]
    at_least_zero = ["learning_rate", "weight_decay", "max_grad_norm", "num_warmup_steps", "eval_steps",
                     "early_stopping_patience", "dataloader_num_workers", "save_steps", "save_total_limit"]
    for name in positive:
        if getattr(args, name) < 1:
            fail(f"--{name} {getattr(args, name)}: expected a whole number of at least 1")
    for name in at_least_zero:
        value = getattr(args, name)
        if not value >= 0 or value == math.inf:  # also catches nan
            fail(f"--{name} {value}: expected a finite number of at least 0")
    if args.max_train_steps <= 0 and args.num_train_epochs < 1:
        fail(f"--num_train_epochs {args.num_train_epochs}: expected at least 1 (or --max_train_steps N)")
    if not 0 <= args.warmup_ratio < 1:
        fail(f"--warmup_ratio {args.warmup_ratio}: expected a share in [0, 1)")
    for name in ("adam_beta1", "adam_beta2"):
        if not 0 <= getattr(args, name) < 1:
            fail(f"--{name} {getattr(args, name)}: expected a number in [0, 1)")
    if not 0 < args.adam_epsilon < math.inf:
        fail(f"--adam_epsilon {args.adam_epsilon}: expected a positive number")
    trackers(args.report_to)


def trackers(report_to):
    """--report_to as Accelerate tracker names; one line for an unknown one or one whose package is missing."""
    import importlib.util
    installed = lambda name: any(importlib.util.find_spec(p) for p in TRACKERS[name])
    names = [n.strip() for n in report_to.split(",") if n.strip()]
    if names in ([], ["none"]):
        return []
    if names == ["all"]:
        return [n for n in TRACKERS if installed(n)]
    for name in names:
        if name not in TRACKERS:
            fail(f"--report_to {name}: expected {', '.join(TRACKERS)}, all or none")
        if not installed(name):
            fail(f"--report_to {name}: the {TRACKERS[name][0]} package is not installed (pip install "
                 f"{TRACKERS[name][0]}), or choose --report_to none")
    return names


def check_output_dir(out):
    """One line for an output_dir that cannot be written: a file, or a folder on a read-only disk."""
    if out.exists() and not out.is_dir():
        fail(f"--output_dir {out}: a file is there, expected a folder")
    existing = next(p for p in [out, *out.absolute().parents] if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        fail(f"--output_dir {out}: {existing} cannot be written (read-only?)")


def setup(args, training=True):
    """Accelerator + seed, after checking the flags and output_dir (training=False: evaluation only, the run there
    is not checked). Finishes or undoes a save that a kill interrupted. Nothing is removed here: an earlier run
    that --overwrite_output_dir replaces is set aside only when training starts. Call before any expensive work."""
    check_args(args)
    if args.mixed_precision == "fp16" and not torch.cuda.is_available():
        fail("--mixed_precision fp16 needs a GPU; use bf16 on CPU")
    AcceleratorState._reset_state()  # a second main() in one process (tests, notebooks) gets fresh settings
    GradientState._reset_state()
    # cpu=True where there is no accelerator: then `accelerate launch --num_processes 2` runs on gloo
    accelerator = Accelerator(gradient_accumulation_steps=args.gradient_accumulation_steps,
                              mixed_precision=args.mixed_precision, cpu=not torch.accelerator.is_available(),
                              log_with=trackers(args.report_to) or None, project_dir=args.output_dir)
    out = Path(args.output_dir)
    check_output_dir(out)
    if accelerator.is_main_process:
        checkpoint.recover(out)
    accelerator.wait_for_everyone()
    held = checkpoint.run_files(out)
    if training and held and not args.overwrite_output_dir and not args.resume_from_checkpoint:
        fail(f"{out} already holds a run ({', '.join(held)}); pass --overwrite_output_dir to replace it "
             "or --resume_from_checkpoint to continue it")
    if args.resume_from_checkpoint not in (None, "auto") and not Path(args.resume_from_checkpoint).is_dir():
        fail(f"--resume_from_checkpoint {args.resume_from_checkpoint}: no such folder")
    hf_logging.disable_progress_bar()  # no "Writing model shards" bar at every save
    if training and accelerator.device.type == "cpu":
        _keep_freed_memory()
    set_seed(args.seed)
    return accelerator


def _keep_freed_memory():
    """glibc returns every freed block over 32 MB to the kernel at once, and a CPU training step frees and
    allocates the same large tensors each time (the dense word-embedding gradient alone is vocab x hidden):
    each step then pays a page fault per 4 KiB to get them back, ~8% of a MiniLM step (bench/). Serve large
    blocks from the heap and keep freed memory for reuse (glibc only; elsewhere nothing changes)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(-4, 0)  # M_MMAP_MAX = 0: no mmap'ed blocks (glibc still falls back to mmap if the heap cannot grow)
    libc.mallopt(-1, 2 ** 31 - 1)  # M_TRIM_THRESHOLD: do not give the top of the heap back


def limit(dataset, n):
    """The first n examples (n <= 0: all)."""
    if n <= 0 or n >= len(dataset):
        return dataset
    return dataset.select(range(n)) if hasattr(dataset, "select") else torch.utils.data.Subset(dataset, range(n))


class EpochSampler(torch.utils.data.Sampler):
    """Shuffles with seed + epoch, so a resumed run sees the same order; with lengths, sorts shuffled
    mega-batches by length so each batch holds similar lengths (little padding)."""

    def __init__(self, n, seed, lengths=None, group_size=1):
        self.n, self.seed, self.lengths, self.group_size, self.epoch = n, seed, lengths, group_size, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return self.n

    def __iter__(self):
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch)).tolist()
        if self.lengths is not None:
            mega = 50 * self.group_size
            order = [i for k in range(0, self.n, mega)
                     for i in sorted(order[k:k + mega], key=self.lengths.__getitem__, reverse=True)]
        return iter(order)


def _lengths(dataset):
    if hasattr(dataset, "column_names"):
        return dataset["length"] if "length" in dataset.column_names else [len(x) for x in dataset["input_ids"]]
    return [len(dataset[i]["input_ids"]) for i in range(len(dataset))]


def _loader(dataset, batch_size, collate_fn, args, sampler=None):
    # own generator: building an iterator must not draw from the global RNG (exact resume)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate_fn,
                                       num_workers=args.dataloader_num_workers,
                                       generator=torch.Generator().manual_seed(args.seed))


def eval_loader(accelerator, dataset, collate_fn, args):
    """An unshuffled, prepared loader for predict(): every process takes its share, in dataset order."""
    return accelerator.prepare(_loader(dataset, args.per_device_eval_batch_size, collate_fn, args))


def predict(accelerator, model, dataloader, keys=("logits",), desc="[VALID]"):
    """One pass without gradients. Returns (mean loss or None, {key: array, "labels": array}) gathered
    over processes in dataset order; variable lengths (dim 1) are padded with -100."""
    model.eval()
    loss_sum = torch.zeros(2, device=accelerator.device)  # sum of batch loss x real examples, real examples
    chunks, has_loss = {}, False
    bar = tqdm(dataloader, desc=desc, disable=not accelerator.is_local_main_process, dynamic_ncols=True)
    for batch in bar:
        with torch.no_grad():
            outputs = model(**batch)
        if outputs.get("loss") is not None:
            loss, size = outputs["loss"], next(v for v in batch.values() if torch.is_tensor(v)).shape[0]
            state = accelerator.gradient_state
            # the last batch of a process may be padded with repeats of the first examples; its loss must
            # cover only the real ones, or the eval loss changes with the number of processes
            real = size
            if state.end_of_dataloader and state.remainder > 0:
                real = min(max(state.remainder - accelerator.process_index * size, 0), size)
                if 0 < real < size:
                    with torch.no_grad():
                        loss = model(**{k: v[:real] if torch.is_tensor(v) else v for k, v in batch.items()})["loss"]
            loss_sum += torch.stack([loss.float() * real, torch.tensor(float(real), device=loss.device)])
            has_loss = True
            bar.set_postfix(loss=loss.item())
        found = {k: outputs[k] for k in keys}
        if keys and "labels" in batch:
            found["labels"] = batch["labels"]
        for k, t in found.items():
            if t.dim() > 1:  # note: pads to the longest sequence on any process before gathering
                t = accelerator.pad_across_processes(t, dim=1, pad_index=-100)
            chunks.setdefault(k, []).append(accelerator.gather_for_metrics(t.detach()).float().cpu().numpy())
    model.train()
    arrays = {}
    for k, parts in chunks.items():
        if parts[0].ndim > 1:
            width = max(p.shape[1] for p in parts)
            parts = [np.pad(p, [(0, 0), (0, width - p.shape[1])] + [(0, 0)] * (p.ndim - 2), constant_values=-100)
                     for p in parts]
        arrays[k] = np.concatenate(parts)
    total, count = accelerator.reduce(loss_sum, "sum").tolist()
    return (total / count if has_loss else None), arrays


def tokenizer_key(tokenizer):
    """A hash of the tokenizer's class and tokenizer.json, less the truncation and padding that its last call left
    there (a cache key for tokenized data). Those come first in the JSON, so the rest is hashed as it is: parsing and dumping a 30k vocabulary
    again would cost ~50 ms. Any other layout is parsed."""
    text = tokenizer.backend_tokenizer.to_str()
    head, found, rest = text.partition(',"added_tokens":')
    try:
        fields = json.loads(head + "}") if found else None
    except json.JSONDecodeError:
        fields = None
    if fields is None or not set(fields) <= {"version", "truncation", "padding"}:
        fields = json.loads(text)
        fields.pop("truncation", None), fields.pop("padding", None)
        rest = json.dumps(fields)
    return hashlib.blake2b(f"{type(tokenizer).__name__}\0{fields.get('version')}\0{rest}".encode(),
                           digest_size=16).hexdigest()


def refuse_existing(paths, overwrite, flag="--overwrite_output_dir"):
    """Outputs written outside a training run (evaluation results, predictions, a tokenizer) never replace an earlier
    run's silently: one line unless the user asked for it."""
    held = [str(p) for p in paths if Path(p).exists()]
    if held and not overwrite:
        fail(f"{held[0]} already exists{f' (and {len(held) - 1} more)' if len(held) > 1 else ''}; pass {flag} "
             "to replace it, or choose another output folder")


def check_max_seq_length(value, config, flag="--max_seq_length"):
    """One line when a sequence length exceeds what the model's position embeddings hold (RoBERTa-style models
    offset positions by padding_idx + 1, so 514 positions hold 512 tokens)."""
    positions = getattr(config, "max_position_embeddings", None)
    if positions is None:
        return
    if config.model_type in ("roberta", "xlm-roberta", "camembert", "longformer", "mpnet", "ibert", "data2vec-text"):
        positions -= (config.pad_token_id or 0) + 1
    if value > positions:
        fail(f"{flag} {value}: the model holds at most {positions} positions")


TASKS = {"ForTokenClassification": "token-classification", "ForSequenceClassification": "text-classification",
         "ForQuestionAnswering": "question-answering", "ForMaskedLM": "fill-mask"}


def model_card(args, metrics, model):
    """README.md for a saved folder, hub-ready: metadata (base_model only when it is a hub id, model-index with the
    metrics), what it was trained from and on, the hyper-parameters and the command."""
    arch = (model.config.architectures or [type(model).__name__])[0]
    text = lambda v: ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
    base = args.model_name_or_path
    local = base is not None and Path(base).expanduser().exists()
    data = [f"{k}: `{text(getattr(args, k))}`" for k in ("dataset_name", "task_name", "train_file", "validation_file")
            if getattr(args, k, None)]
    data += [f"{k}: {getattr(args, k)}" for k in ("max_train_samples", "max_eval_samples")
             if getattr(args, k, -1) and getattr(args, k, -1) > 0]
    hyper = ["learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "num_train_epochs",
             "max_train_steps", "weight_decay", "lr_scheduler_type", "num_warmup_steps", "warmup_ratio",
             "mixed_precision", "seed"]
    task = next((t for suffix, t in TASKS.items() if arch.endswith(suffix)), "other")
    dataset = getattr(args, "dataset_name", None) or getattr(args, "task_name", None) or "custom"
    scores = [(k, v) for k, v in metrics.items() if isinstance(v, (int, float))]
    lines = ["---", "library_name: transformers", *([f"base_model: {base}"] if base and not local else [])]
    if scores:
        lines += ["model-index:", f"- name: {Path(args.output_dir).name}", "  results:",
                  f"  - task: {{type: {task}}}", f"    dataset: {{name: {dataset}, type: {dataset}}}", "    metrics:"]
        lines += [f"    - {{name: {k}, type: {k}, value: {v}}}" for k, v in scores]
    origin = ("trained from scratch (random initialisation)" if not base else
              f"fine-tuned from a local model (`{Path(base).name}`)" if local else f"fine-tuned from `{base}`")
    lines += ["---", "", f"# {Path(args.output_dir).name}", "", f"`{arch}`, {origin}.", "", "## Data", ""]
    lines += [f"- {d}" for d in data] or ["- (see command line)"]
    lines += ["", "## Hyper-parameters", "", "| name | value |", "|---|---|"]
    lines += [f"| {k} | {text(getattr(args, k))} |" for k in hyper]
    if Path(sys.argv[0]).resolve().parent == Path(__file__).resolve().parent:  # run as one of this project's scripts
        lines += ["", "## Command", "", "```", "accelerate launch " + shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
                  "```"]
    lines += ["", "## Evaluation (validation set)", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items()]
    return "\n".join(lines) + "\n"


def save(accelerator, model, tokenizer, path, state, args, optimizer=None, lr_scheduler=None):
    """A save_pretrained folder (+ with an optimizer, the resume state and a manifest) written whole or not at all:
    checkpoint.save_folder. A disk that is full or read-only raises checkpoint.SaveError; path keeps what it had."""
    # sharded (FSDP, DeepSpeed): every process gathers the weights; only the main process writes them, so no
    # process lists a folder that another is about to rename
    state_dict = accelerator.get_state_dict(model) if checkpoint.sharded(accelerator) else None
    unwrapped = accelerator.unwrap_model(model)

    def write(tmp):
        if accelerator.is_main_process:
            unwrapped.save_pretrained(tmp, state_dict=state_dict)
            if tokenizer is not None:
                tokenizer.save_pretrained(tmp)
            write_json(tmp / "training_state.json", state)
            write_text(tmp / "README.md", model_card(args, state["metrics"], unwrapped))
        if optimizer is not None:
            checkpoint.write_state(accelerator, tmp, optimizer, lr_scheduler)

    checkpoint.save_folder(accelerator, path, write, manifest=optimizer is not None)


def _loss(model, batch, compute_loss):
    if compute_loss is None:
        return model(**batch).loss, {}
    out = compute_loss(model, batch)
    return out if isinstance(out, tuple) else (out, {})


class Log:
    """log.json (rewritten at every record, so a crash keeps the history): {"Epoch N": {"train_log": {"loss"},
    "valid_log": {metrics}}, "train": [{step, epoch, loss, lr, terms}], "eval": [{step, loss, metrics}]}; and the
    --report_to trackers (through
    Accelerate; tensorboard events in output_dir/runs); the main process writes. Resuming drops what a killed run
    logged after its checkpoint, in log.json and in the tensorboard events."""

    def __init__(self, args, accelerator, resumed_step):
        self.accelerator, self.main = accelerator, accelerator.is_main_process
        self.path, self.data = Path(args.output_dir) / "log.json", {"train": [], "eval": []}
        if resumed_step is not None and self.path.exists():
            data = json.loads(self.path.read_text(encoding="utf-8"))
            for part in ("train", "eval"):
                data[part] = [r for r in data.get(part, []) if r["step"] <= resumed_step]
            self.data = data
        purge = {} if resumed_step is None else {"purge_step": resumed_step + 1}
        accelerator.init_trackers("runs", init_kwargs={"tensorboard": purge})

    def forget_epochs_after(self, epoch):
        self.data = {k: v for k, v in self.data.items() if not k.startswith("Epoch ") or int(k.split()[1]) <= epoch}

    def record(self, step, entry, epoch=None, part=None):
        if not self.main:
            return
        kind = "eval" if part == "valid_log" else "train"
        self.data[kind].append({"step": step, **entry})
        if epoch is not None:
            self.data.setdefault(f"Epoch {epoch}", {})[part] = entry
        self.accelerator.log({f"{kind}/{k}": v for k, v in entry.items() if isinstance(v, (int, float))}, step=step)
        self.save()

    def save(self):
        if self.main:
            lists = ("train", "eval")  # the long lists last, so the per-epoch summary reads first
            write_json(self.path, {**{k: v for k, v in self.data.items() if k not in lists},
                                   **{k: self.data[k] for k in lists}})

    def close(self):
        for tracker in self.accelerator.trackers:  # not end_training(): the script still evaluates on every process
            tracker.finish()


def _optimizer(args, accelerator, model):
    no_decay = lambda n, p: p.ndim < 2 or "norm" in n.lower()  # biases and LayerNorm weights
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [{"params": [p for n, p in params if not no_decay(n, p)], "weight_decay": args.weight_decay},
              {"params": [p for n, p in params if no_decay(n, p)], "weight_decay": 0.0}]
    # fused AdamW: one kernel for all parameters (5x faster than foreach on a CPU)
    fused = accelerator.device.type in ("cpu", "cuda") and accelerator.distributed_type != DistributedType.DEEPSPEED
    return torch.optim.AdamW(groups, lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2),
                             eps=args.adam_epsilon, fused=fused)


def _resume_folder(args):
    """The last/ to resume from, or None for a fresh start."""
    if not args.resume_from_checkpoint:
        return None
    folder = Path(args.output_dir) / "last" if args.resume_from_checkpoint == "auto" else Path(args.resume_from_checkpoint)
    if (folder / "last" / "state").is_dir():  # the run's folder instead of its last/
        folder = folder / "last"
    if not (folder / "state").is_dir():
        if args.resume_from_checkpoint != "auto":
            fail(f"{folder} is not a last/ folder with a state/ to resume from")
        return None
    return folder


def _resume(args, accelerator, model, optimizer, lr_scheduler, folder, state):
    """Load folder into the model, optimizer, schedule and RNG; update state from its training_state.json."""
    try:
        skipped = checkpoint.load_state(accelerator, model, optimizer, lr_scheduler, folder, args.resume_inexact)
        saved = json.loads((folder / "training_state.json").read_text(encoding="utf-8"))
        state.update({k: v for k, v in saved.items() if k in state})
    except (ValueError, KeyError, OSError) as e:
        fail(str(e).splitlines()[0] if isinstance(e, ValueError) else f"{folder}: unreadable ({e})")
    if "schedule" in skipped:  # start the schedule where the run was
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "lr_scheduler.step() before optimizer.step()": on purpose here
            for _ in range(state["completed_steps"]):
                lr_scheduler.step()
    # the learning rate at the resumed step, from this run's plan: the same value when the plan is unchanged; a run
    # extended with more epochs or steps continues on the longer schedule (no new warm-up)
    rates = [base * rate(lr_scheduler.last_epoch) for base, rate in zip(lr_scheduler.base_lrs, lr_scheduler.lr_lambdas)]
    for group, lr in zip(optimizer.param_groups, rates):
        group["lr"] = lr
    if skipped:
        accelerator.print(f"warning: resumed without the {', '.join(skipped)} state of {folder} (damaged): "
                          "this run is no longer exactly the uninterrupted one")
    accelerator.print(f"resumed from {folder} at step {state['completed_steps']}, epoch {state['epoch']}")


def _kept(out, replacing):
    """What a failed run leaves behind, in words."""
    if replacing:
        return f"the earlier run in {out} is put back"
    steps = {name: json.loads((out / name / "training_state.json").read_text())["completed_steps"]
             for name in ("best", "last") if (out / name / "training_state.json").exists()}
    if not steps:
        return "no checkpoint was saved"
    return " and ".join(f"{name}/ keeps step {step}" for name, step in steps.items())


def train(args, accelerator, model, tokenizer, train_dataset, eval_dataset, collate_fn, *, evaluate=None,
          compute_loss=None, eval_collate_fn=None, eval_keys=("logits",)):
    """Train; evaluate every --eval_steps (or epoch); keep best/ and last/. Returns best/'s metrics.
    evaluate(arrays) -> dict turns predict()'s gathered arrays into task metrics; compute_loss(model, batch)
    -> loss or (loss, {name: term}) replaces model(**batch).loss."""
    out = Path(args.output_dir)
    main = accelerator.is_main_process
    greater = (args.greater_is_better == "true" if args.greater_is_better else
               not any(s in args.metric_for_best_model for s in ("loss", "perplexity")))
    # --- data
    world = accelerator.num_processes
    streaming = isinstance(train_dataset, torch.utils.data.IterableDataset)  # no length, no sampler
    if streaming and (args.max_train_steps <= 0 or args.group_by_length):
        fail("a streamed training set needs --max_train_steps and cannot --group_by_length")
    lengths = _lengths(train_dataset) if args.group_by_length else None
    sampler = None if streaming else EpochSampler(len(train_dataset), args.seed, lengths,
                                                  args.per_device_train_batch_size * world)
    train_dataloader = _loader(train_dataset, args.per_device_train_batch_size, collate_fn, args, sampler)
    eval_dataloader = None if eval_dataset is None else _loader(
        eval_dataset, args.per_device_eval_batch_size, eval_collate_fn or collate_fn, args)
    # --- model, optimizer, schedule
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.to(accelerator.device)
    if args.torch_compile:
        model.compile(dynamic=True)  # dynamic: no recompilation for every new batch length
    optimizer = _optimizer(args, accelerator, model)
    model, optimizer, train_dataloader = accelerator.prepare(model, optimizer, train_dataloader)
    if eval_dataloader is not None:
        eval_dataloader = accelerator.prepare(eval_dataloader)
    batches = None if streaming else len(train_dataloader)  # per process and epoch
    steps_per_epoch = math.ceil(batches / args.gradient_accumulation_steps) if batches else args.max_train_steps
    max_steps = args.max_train_steps if args.max_train_steps > 0 else args.num_train_epochs * steps_per_epoch
    num_epochs = math.ceil(max_steps / steps_per_epoch) if batches else sys.maxsize  # a stream restarts until done
    warmup = args.num_warmup_steps or math.ceil(args.warmup_ratio * max_steps)
    # kept out of prepare(): stepped once per real optimizer step, whatever the number of processes
    lr_scheduler = get_scheduler(args.lr_scheduler_type, optimizer.optimizer, warmup, max_steps)

    # --- resume, or replace an earlier run (set aside now, removed at this run's first checkpoint)
    state = {"epoch": 0, "completed_steps": 0, "batches_in_epoch": 0, "epoch_loss": [0.0, 0],
             "best_metric": None, "best_step": None, "evals_without_gain": 0, "metrics": {}}
    resume = _resume_folder(args)
    if resume:
        _resume(args, accelerator, model, optimizer, lr_scheduler, resume, state)
        if batches and state["batches_in_epoch"] >= batches:  # saved at the end of an epoch
            state.update(epoch=state["epoch"] + 1, batches_in_epoch=0, epoch_loss=[0.0, 0])
    if main:
        out.mkdir(parents=True, exist_ok=True)
    replacing = bool(main and args.overwrite_output_dir and not resume and checkpoint.set_aside(out))
    log = Log(args, accelerator, state["completed_steps"] if resume else None)
    log.forget_epochs_after(state["epoch"])
    accelerator.print(f"training: {'streamed' if streaming else len(train_dataset)} examples, {max_steps} steps of "
                      f"{args.per_device_train_batch_size * world * args.gradient_accumulation_steps} examples")

    def evaluate_and_save(epoch):
        nonlocal replacing
        metrics, gain = {}, True
        if eval_dataloader is not None:
            loss, arrays = predict(accelerator, model, eval_dataloader, eval_keys, f"[Epoch {epoch}] [VALID]")
            metrics = {**({"loss": loss} if loss is not None else {}), **(evaluate(arrays) if evaluate else {})}
            log.record(state["completed_steps"], dict(metrics), epoch, "valid_log")
            if args.metric_for_best_model not in metrics:
                fail(f"--metric_for_best_model {args.metric_for_best_model} is not among {sorted(metrics)}")
            value, best = metrics[args.metric_for_best_model], state["best_metric"]
            gain = best is None or (value > best if greater else value < best)
            state["evals_without_gain"] = 0 if gain else state["evals_without_gain"] + 1
            if gain:
                state.update(best_metric=value, best_step=state["completed_steps"])
        state["metrics"] = metrics
        snapshot = {"args": vars(args), **state}
        try:
            if gain:
                save(accelerator, model, tokenizer, out / "best", snapshot, args)
            save(accelerator, model, tokenizer, out / "last", snapshot, args, optimizer, lr_scheduler)
        except checkpoint.SaveError as e:
            fail(f"{e}; {_kept(out, replacing)}")
        if main:
            write_json(out / "training_state.json", snapshot)
            if replacing:  # this run has its first checkpoint: the earlier one goes
                shutil.rmtree(out / checkpoint.PREVIOUS)
                replacing = False
        return metrics

    def save_checkpoint():
        """output_dir/checkpoint-STEP/, a folder like last/; the oldest beyond --save_total_limit removed."""
        snapshot = {"args": vars(args), **state}
        try:
            save(accelerator, model, tokenizer, out / f"checkpoint-{state['completed_steps']}", snapshot, args,
                 optimizer, lr_scheduler)
        except checkpoint.SaveError as e:
            fail(f"{e}; {_kept(out, replacing)}")
        kept = sorted(out.glob("checkpoint-*[0-9]"), key=lambda p: int(p.name.split("-")[1]))
        for old in kept[:-args.save_total_limit] if main and args.save_total_limit else []:
            shutil.rmtree(old)

    # --- loop
    first_bad = torch.tensor(-1, device=accelerator.device)  # first step with a non-finite loss, found without a sync
    running, running_count, done = torch.zeros((), device=accelerator.device), 0, state["completed_steps"] >= max_steps
    terms_sum = {}
    model.train()
    try:
        for epoch in range(state["epoch"], num_epochs):
            if done:
                break
            skip = state["batches_in_epoch"] if epoch == state["epoch"] else 0
            if epoch != state["epoch"]:
                state.update(epoch=epoch, batches_in_epoch=0, epoch_loss=[0.0, 0])
            train_dataloader.set_epoch(epoch)  # reaches the sampler, or a datasets stream's shuffle
            if sampler:
                sampler.set_epoch(epoch)
            # a stream skips by reading: slow, but it lands on the same example
            loader = accelerator.skip_first_batches(train_dataloader, skip) if skip else train_dataloader
            bar = tqdm(total=batches, initial=skip, desc=f"[Epoch {epoch}] [TRAIN]",
                       disable=not accelerator.is_local_main_process, dynamic_ncols=True)
            for batch in loader:
                with accelerator.accumulate(model):
                    loss, terms = _loss(model, batch, compute_loss)
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and args.max_grad_norm > 0:
                        accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                loss = loss.detach().float()
                first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), state["completed_steps"] + 1, first_bad)
                running += loss
                running_count += 1
                for k, v in terms.items():
                    terms_sum[k] = terms_sum.get(k, 0.0) + v.detach().float()
                state["batches_in_epoch"] += 1
                bar.update()
                if not accelerator.sync_gradients:
                    continue
                if not accelerator.optimizer_step_was_skipped:
                    lr_scheduler.step()
                state["completed_steps"] += 1
                done = state["completed_steps"] >= max_steps
                step = state["completed_steps"]
                end = accelerator.gradient_state.end_of_dataloader
                eval_now = (step % args.eval_steps == 0 or done) if args.eval_steps else (end or done)
                checkpoint_now = bool(args.save_steps) and step % args.save_steps == 0
                # every eval/save point is also a log point, so no partial loss window is lost on resume
                if step % args.logging_steps == 0 or done or end or eval_now or checkpoint_now:
                    bad = accelerator.gather(first_bad.view(1))  # note: syncs, once per log; all processes stop together
                    if (bad >= 0).any():
                        bar.close()
                        raise SystemExit(f"error: loss is not finite at step {bad[bad >= 0].min().item()}; stopping: "
                                         f"{_kept(out, replacing)}")
                    mean = accelerator.reduce(running, "mean").item() / running_count
                    entry = {"loss": mean, "lr": lr_scheduler.get_last_lr()[0], "epoch": epoch}
                    entry.update({k: accelerator.reduce(v, "mean").item() / running_count for k, v in terms_sum.items()})
                    log.record(step, entry)
                    bar.set_postfix(loss=mean, lr=entry["lr"])
                    state["epoch_loss"] = [state["epoch_loss"][0] + mean * running_count, state["epoch_loss"][1] + running_count]
                    running.zero_()
                    running_count, terms_sum = 0, {}
                if end or done:
                    total, count = state["epoch_loss"]
                    log.data.setdefault(f"Epoch {epoch}", {})["train_log"] = {"loss": total / count}
                if eval_now:
                    evaluate_and_save(epoch)
                if checkpoint_now:
                    save_checkpoint()
                if done or (args.early_stopping_patience and state["evals_without_gain"] >= args.early_stopping_patience):
                    done = True
                    break
            bar.close()
            if state["batches_in_epoch"] == 0:
                fail("the training data gave no batch")
    except BaseException:
        log.close()
        if replacing:  # ended before its first checkpoint: the earlier run comes back as it was
            checkpoint.put_back(out)
        raise
    log.close()
    accelerator.wait_for_everyone()
    best = json.loads((out / "best" / "training_state.json").read_text()) if (out / "best").exists() else state
    return best["metrics"]
