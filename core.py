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
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from accelerate.utils import DistributedType, set_seed
from tqdm.auto import tqdm
from transformers import SchedulerType, get_scheduler
from transformers.utils import logging as hf_logging

hf_logging.set_verbosity_error()  # quiet by default: no load-report tables or per-save notices on stderr
RUN_FILES = ("best", "last", "log.json", "training_state.json", "runs")
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
    g.add_argument("--max_train_steps", type=int, default=-1, help="optimizer steps; overrides epochs (default: %(default)s = off)")
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
    g.add_argument("--num_warmup_steps", type=int, default=0, help="warmup steps (default: %(default)s = use --warmup_ratio)")
    g.add_argument("--warmup_ratio", type=float, default=0.0, help="warmup as a share of all steps (default: %(default)s)")
    g.add_argument("--seed", type=int, default=42, help="seed for init, data order and dropout (default: %(default)s)")
    g.add_argument("--mixed_precision", default="no", choices=["no", "fp16", "bf16"], help="(default: %(default)s)")
    g.add_argument("--eval_steps", type=int, default=0, help="evaluate and save every N steps (default: %(default)s = every epoch)")
    g.add_argument("--logging_steps", type=int, default=10, help="log loss and lr every N steps (default: %(default)s)")
    g.add_argument("--metric_for_best_model", default="loss", help="eval metric that picks best/ (default: %(default)s)")
    g.add_argument("--greater_is_better", default=None, choices=["true", "false"],
                   help="(default: false for names with 'loss' or 'perplexity', else true)")
    g.add_argument("--early_stopping_patience", type=int, default=0, help="stop after N evals without gain (default: %(default)s = off)")
    g.add_argument("--resume_from_checkpoint", nargs="?", const="auto", default=None,
                   help="'auto' (output_dir/last if it exists) or a last/ folder (default: fresh start)")
    g.add_argument("--report_to", default="tensorboard", choices=["tensorboard", "none"], help="(default: %(default)s)")
    g.add_argument("--max_train_samples", type=int, default=-1, help="use the first N training examples (default: %(default)s = all)")
    g.add_argument("--max_eval_samples", type=int, default=-1, help="use the first N eval examples (default: %(default)s = all)")
    g.add_argument("--group_by_length", action="store_true", help="batch examples of similar length (default: off)")
    g.add_argument("--gradient_checkpointing", action="store_true", help="trade compute for memory (default: off)")
    g.add_argument("--torch_compile", action="store_true", help="torch.compile the model (default: off)")
    g.add_argument("--dataloader_num_workers", type=int, default=0, help="(default: %(default)s = load in the main process)")
    return parser


def setup(args, training=True):
    """Accelerator + seed, after checking output_dir (training=False: evaluation only, no check).
    Call before any expensive work."""
    if args.mixed_precision == "fp16" and not torch.cuda.is_available():
        fail("--mixed_precision fp16 needs a GPU; use bf16 on CPU")
    AcceleratorState._reset_state()  # a second main() in one process (tests, notebooks) gets fresh settings
    GradientState._reset_state()
    # cpu=True where there is no accelerator: then `accelerate launch --num_processes 2` runs on gloo
    accelerator = Accelerator(gradient_accumulation_steps=args.gradient_accumulation_steps,
                              mixed_precision=args.mixed_precision, cpu=not torch.accelerator.is_available())
    out = Path(args.output_dir)
    _recover(out)
    held = [name for name in RUN_FILES if (out / name).exists()]
    if training and held and not args.overwrite_output_dir and not args.resume_from_checkpoint:
        fail(f"{out} already holds a run ({', '.join(held)}); pass --overwrite_output_dir to replace it "
             "or --resume_from_checkpoint to continue it")
    if training and held and args.overwrite_output_dir and not args.resume_from_checkpoint and accelerator.is_main_process:
        for name in held:
            shutil.rmtree(out / name) if (out / name).is_dir() else (out / name).unlink()
    accelerator.wait_for_everyone()
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


def cache_root(cache_dir, name):
    """--cache_dir, or the datasets cache's folder `name` ($HF_DATASETS_CACHE or ~/.cache/huggingface/datasets)."""
    default = Path(os.environ.get("HF_DATASETS_CACHE", Path.home() / ".cache/huggingface/datasets")) / name
    return Path(cache_dir or default)


CACHE_MANIFEST = "cache.json"


def _digest(path):
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "blake2b").hexdigest()


def _cache_problem(folder):
    """Why folder is not a complete cache of its key (None: it verifies). Its manifest, written last, names the key
    (a folder renamed or swapped from another key fails) and every file with its size and checksum."""
    try:
        manifest = json.loads((folder / CACHE_MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"no readable {CACHE_MANIFEST}"
    if manifest.get("key") != folder.name:
        return f"it holds the cache of {manifest.get('key')!r}"
    found = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != CACHE_MANIFEST)
    if found != sorted(files):
        return f"files {sorted(set(found) ^ set(files))} missing or unexpected"
    for name, (size, digest) in files.items():
        path = folder / name
        if path.stat().st_size != size or _digest(path) != digest:
            return f"{name} is damaged"
    return None


def cached(folder, build, write, read, accelerator, overwrite=False, what="features"):
    """The one cache of the project: build() -> obj, write(obj, folder) saves it, read(folder) -> obj loads it.
    folder's name is the key, naming everything the data depends on; a later run, and the other processes of this
    one, read it instead of building again. Written to folder.tmp with a checksummed manifest last, then renamed:
    a cache that is missing a file, truncated, garbage or another key's is rebuilt, with a one-line notice."""
    folder = Path(folder)
    if not accelerator.is_main_process:  # the others wait for the main process, then read what it verified or wrote
        accelerator.wait_for_everyone()
        return read(folder)
    obj, problem = None, "absent" if not folder.is_dir() else _cache_problem(folder) if not overwrite else "overwrite"
    if problem is None:
        try:
            obj = read(folder)
            print(f"{what} loaded from {folder}")
        except Exception as e:  # verified yet unreadable (e.g. another datasets version's format): rebuild
            problem = f"unreadable: {type(e).__name__}"
    if problem not in (None, "absent", "overwrite"):
        print(f"notice: the cache {folder} does not verify ({problem}); building it again")
    if obj is None:
        obj = build()
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)  # a killed run's
        tmp.mkdir(parents=True)
        write(obj, tmp)
        files = {str(p.relative_to(tmp)): [p.stat().st_size, _digest(p)] for p in sorted(tmp.rglob("*")) if p.is_file()}
        write_json(tmp / CACHE_MANIFEST, {"key": folder.name, "files": files})
        shutil.rmtree(folder, ignore_errors=True)  # a stale or damaged one
        os.replace(tmp, folder)
    accelerator.wait_for_everyone()
    return obj


def cached_dataset(cache_dir, name, key, build, accelerator, overwrite=False, what="features"):
    """build() -> datasets.Dataset, cached by cached() in cache_root(cache_dir, name)/key, saved as Arrow and
    memory-mapped when read."""
    import datasets
    return cached(cache_root(cache_dir, name) / key, build, lambda d, f: d.save_to_disk(str(f)),
                  lambda f: datasets.load_from_disk(str(f)), accelerator, overwrite, what)


def write_text(path, text):
    """The one atomic write: a temporary file beside path, renamed over it (a kill leaves the old file or the new)."""
    tmp = Path(f"{path}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, default=str, ensure_ascii=False) + "\n")


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


def _recover(out):
    """Undo a save killed between its two renames: put the previous folder back."""
    for name in ("best", "last"):
        if not (out / name).exists() and (out / f"{name}.old").exists():
            os.replace(out / f"{name}.old", out / name)


def model_card(args, metrics, model):
    arch = (model.config.architectures or [type(model).__name__])[0]
    data = [f"{k}: `{getattr(args, k)}`" for k in ("dataset_name", "task_name", "train_file", "validation_file")
            if getattr(args, k, None)]
    hyper = ["learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "num_train_epochs",
             "max_train_steps", "weight_decay", "lr_scheduler_type", "num_warmup_steps", "warmup_ratio",
             "mixed_precision", "seed"]
    lines = ["---", "library_name: transformers"]
    if args.model_name_or_path:
        lines.append(f"base_model: {args.model_name_or_path}")
    lines += ["---", "", f"# {Path(args.output_dir).name}", "",
              f"`{arch}` fine-tuned from `{args.model_name_or_path or 'scratch'}`.", "", "## Data", ""]
    lines += [f"- {d}" for d in data] or ["- (see command line)"]
    lines += ["", "## Hyper-parameters", "", "| name | value |", "|---|---|"]
    lines += [f"| {k} | {getattr(args, k)} |" for k in hyper]
    if sys.argv[0].endswith(".py") and "pytest" not in sys.argv[0]:
        lines += ["", "## Command", "", "```", "accelerate launch " + shlex.join(sys.argv), "```"]
    lines += ["",
              "## Evaluation (validation set)", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items()]
    return "\n".join(lines) + "\n"


def save(accelerator, model, tokenizer, path, state, args, with_state):
    """save_pretrained (+ the resume state) into path.tmp, then swap it in with renames: a kill at any
    moment leaves the previous folder loadable (setup() undoes a half-done swap)."""
    path, tmp, old = Path(path), Path(f"{path}.tmp"), Path(f"{path}.old")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    # sharded (FSDP, DeepSpeed): gather the weights first; otherwise save_pretrained handles tied weights itself
    sharded = accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)
    state_dict = accelerator.get_state_dict(model) if sharded else None
    accelerator.unwrap_model(model).save_pretrained(tmp, state_dict=state_dict, save_function=accelerator.save,
                                                    is_main_process=accelerator.is_main_process)
    if with_state:  # optimizer, scheduler, scaler, RNG of every process; costs a second copy of the weights
        accelerator.save_state(tmp / "state")
    if accelerator.is_main_process:
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        write_json(tmp / "training_state.json", state)
        (tmp / "README.md").write_text(model_card(args, state["metrics"], accelerator.unwrap_model(model)))
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def _loss(model, batch, compute_loss):
    if compute_loss is None:
        return model(**batch).loss, {}
    out = compute_loss(model, batch)
    return out if isinstance(out, tuple) else (out, {})


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
    no_decay = lambda n, p: p.ndim < 2 or "norm" in n.lower()  # biases and LayerNorm weights
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [{"params": [p for n, p in params if not no_decay(n, p)], "weight_decay": args.weight_decay},
              {"params": [p for n, p in params if no_decay(n, p)], "weight_decay": 0.0}]
    # fused AdamW: one kernel for all parameters (5x faster than foreach on this CPU, PITFALLS.md)
    fused = accelerator.device.type in ("cpu", "cuda") and accelerator.distributed_type != DistributedType.DEEPSPEED
    optimizer = torch.optim.AdamW(groups, lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2),
                                  eps=args.adam_epsilon, fused=fused)
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
    accelerator.register_for_checkpointing(lr_scheduler)

    # --- resume
    state = {"epoch": 0, "completed_steps": 0, "batches_in_epoch": 0, "epoch_loss": [0.0, 0],
             "best_metric": None, "best_step": None, "evals_without_gain": 0, "metrics": {}}
    resume = out / "last" if args.resume_from_checkpoint == "auto" else args.resume_from_checkpoint
    if resume and (Path(resume) / "last" / "state").is_dir():  # the run's folder instead of its last/
        resume = Path(resume) / "last"
    if resume and not (Path(resume) / "state").is_dir():
        if args.resume_from_checkpoint != "auto":
            fail(f"{resume} is not a last/ folder with a state/ to resume from")
        resume = None
    if resume:
        accelerator.load_state(Path(resume) / "state")
        state.update({k: v for k, v in json.loads((Path(resume) / "training_state.json").read_text()).items()
                      if k in state})
        accelerator.print(f"resumed from {resume} at step {state['completed_steps']}, epoch {state['epoch']}")
        if batches and state["batches_in_epoch"] >= batches:  # saved at the end of an epoch
            state.update(epoch=state["epoch"] + 1, batches_in_epoch=0, epoch_loss=[0.0, 0])
    log = json.loads((out / "log.json").read_text()) if resume and (out / "log.json").exists() else {}
    # forget what a killed run logged after the checkpoint we resume from
    log = {k: v for k, v in log.items() if not k.startswith("Epoch ") or int(k.split()[1]) <= state["epoch"]}
    log["steps"] = [r for r in log.get("steps", []) if r["step"] <= state["completed_steps"]]
    writer = None
    if main and args.report_to == "tensorboard":
        from tensorboardX import SummaryWriter
        writer = SummaryWriter(str(out / "runs"), purge_step=state["completed_steps"] + 1 if resume else None)
    if main:
        out.mkdir(parents=True, exist_ok=True)
    accelerator.print(f"training: {'streamed' if streaming else len(train_dataset)} examples, {max_steps} steps of "
                      f"{args.per_device_train_batch_size * world * args.gradient_accumulation_steps} examples")

    def record(entry, epoch_key=None, part=None):
        if main:
            entry = {"step": state["completed_steps"], **entry}
            log["steps"].append(entry)
            if epoch_key:
                log.setdefault(epoch_key, {})[part] = {k: v for k, v in entry.items() if k != "step"}
            for k, v in entry.items():
                if writer and k != "step" and isinstance(v, (int, float)):
                    writer.add_scalar(f"{'eval' if part == 'valid_log' else 'train'}/{k}", v, state["completed_steps"])
            write_json(out / "log.json", {**{k: v for k, v in log.items() if k != "steps"}, "steps": log["steps"]})

    def evaluate_and_save(epoch):
        metrics = {}
        if eval_dataloader is not None:
            loss, arrays = predict(accelerator, model, eval_dataloader, eval_keys, f"[Epoch {epoch}] [VALID]")
            metrics = {**({"loss": loss} if loss is not None else {}), **(evaluate(arrays) if evaluate else {})}
            record(dict(metrics), f"Epoch {epoch}", "valid_log")
            if args.metric_for_best_model not in metrics:
                fail(f"--metric_for_best_model {args.metric_for_best_model} is not among {sorted(metrics)}")
            value, best = metrics[args.metric_for_best_model], state["best_metric"]
            gain = best is None or (value > best if greater else value < best)
            state["evals_without_gain"] = 0 if gain else state["evals_without_gain"] + 1
            if gain:
                state.update(best_metric=value, best_step=state["completed_steps"])
        state["metrics"] = metrics
        snapshot = {"args": vars(args), **state}
        if eval_dataloader is None or gain:
            save(accelerator, model, tokenizer, out / "best", snapshot, args, with_state=False)
        save(accelerator, model, tokenizer, out / "last", snapshot, args, with_state=True)
        if main:
            write_json(out / "training_state.json", snapshot)
        return metrics

    # --- loop
    first_bad = torch.tensor(-1, device=accelerator.device)  # first step with a non-finite loss, found without a sync
    running, running_count, done = torch.zeros((), device=accelerator.device), 0, state["completed_steps"] >= max_steps
    terms_sum = {}
    model.train()
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
            # every eval/save point is also a log point, so no partial loss window is lost on resume
            if step % args.logging_steps == 0 or done or end or (args.eval_steps and step % args.eval_steps == 0):
                bad = accelerator.gather(first_bad.view(1))  # note: syncs, once per log; all processes stop together
                if (bad >= 0).any():
                    bar.close()
                    raise SystemExit(f"error: loss is not finite at step {bad[bad >= 0].min().item()}; stopping, "
                                     f"best/ and last/ keep the last good checkpoint")
                mean = accelerator.reduce(running, "mean").item() / running_count
                entry = {"loss": mean, "lr": lr_scheduler.get_last_lr()[0], "epoch": epoch}
                entry.update({k: accelerator.reduce(v, "mean").item() / running_count for k, v in terms_sum.items()})
                record(entry)
                bar.set_postfix(loss=mean, lr=entry["lr"])
                state["epoch_loss"] = [state["epoch_loss"][0] + mean * running_count, state["epoch_loss"][1] + running_count]
                running.zero_()
                running_count, terms_sum = 0, {}
            if end or done:
                total, count = state["epoch_loss"]
                log.setdefault(f"Epoch {epoch}", {})["train_log"] = {"loss": total / count}
            if args.eval_steps and (step % args.eval_steps == 0 or done) or not args.eval_steps and (end or done):
                evaluate_and_save(epoch)
            if done or (args.early_stopping_patience and state["evals_without_gain"] >= args.early_stopping_patience):
                done = True
                break
        bar.close()
        if state["batches_in_epoch"] == 0:
            fail("the training data gave no batch")
    if writer:
        writer.close()
    accelerator.wait_for_everyone()
    best = json.loads((out / "best" / "training_state.json").read_text()) if (out / "best").exists() else state
    return best["metrics"]
