"""The command line every script shares: one spelling and one meaning per concept, one line for bad input.

Owns: fail() (the one-line error), the training flags of core.train (add_args, check_args, --report_to), the
--do_train/--do_eval/--do_predict convention (add_jobs, choose_jobs), old spellings kept as aliases with a notice
(renamed), and the checks that refuse to overwrite (check_output_dir, refuse_existing, check_max_seq_length).
Knows no task and no model: a task script adds its own flags next to these. tests/test_flags.py builds every
script's parser and checks the convention holds across them.
"""
import argparse
import math
import os
import sys
from pathlib import Path

from transformers import SchedulerType

TRACKERS = {"tensorboard": ("tensorboardX", "tensorboard"), "wandb": ("wandb",), "mlflow": ("mlflow",),
            "comet_ml": ("comet_ml",), "aim": ("aim",), "clearml": ("clearml",), "dvclive": ("dvclive",)}
SCHEDULERS = [s.value for s in SchedulerType if s.value not in ("reduce_lr_on_plateau", "greedy")]


def fail(message):
    """Bad input: one line on stderr, exit code 2, no traceback."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def add_args(parser, **helps):
    """The flags of core.train on parser, in their own group. helps: dest="help text" for a flag whose default or
    meaning is the script's own (its value: parser.set_defaults)."""
    group = parser.add_argument_group("training (core.py)")

    def add(*names, **kwargs):
        dest = kwargs.get("dest") or names[0].lstrip("-")
        group.add_argument(*names, **{**kwargs, "help": helps.get(dest, kwargs.get("help"))})
    add("--model_name_or_path", "--model", default=None, help="model folder or hub name (default: %(default)s)")
    add("--output_dir", default="out", help="where best/, last/, log.json and runs/ go (default: %(default)s)")
    add("--overwrite_output_dir", action="store_true", help="replace a run already in output_dir (default: refuse)")
    add("--num_train_epochs", type=int, default=3, help="epochs (default: %(default)s)")
    add("--max_train_steps", "--max_steps", type=int, default=-1,
        help="optimizer steps; overrides epochs (default: %(default)s = off)")
    add("--per_device_train_batch_size", type=int, default=8, help="(default: %(default)s)")
    add("--per_device_eval_batch_size", type=int, default=32, help="(default: %(default)s)")
    add("--gradient_accumulation_steps", type=int, default=1, help="micro-batches per optimizer step (default: %(default)s)")
    add("--learning_rate", type=float, default=5e-5, help="peak learning rate (default: %(default)s)")
    add("--weight_decay", type=float, default=0.0, help="AdamW weight decay, not on biases/norms (default: %(default)s)")
    add("--adam_beta1", type=float, default=0.9, help="(default: %(default)s)")
    add("--adam_beta2", type=float, default=0.999, help="(default: %(default)s)")
    add("--adam_epsilon", type=float, default=1e-8, help="(default: %(default)s)")
    add("--max_grad_norm", type=float, default=1.0, help="gradient clipping (default: %(default)s; 0 = off)")
    add("--lr_scheduler_type", default="linear", choices=SCHEDULERS, help="(default: %(default)s)")
    add("--num_warmup_steps", "--warmup_steps", type=int, default=0,
        help="warmup steps (default: %(default)s = use --warmup_ratio)")
    add("--warmup_ratio", type=float, default=0.0, help="warmup as a share of all steps (default: %(default)s)")
    add("--seed", type=int, default=42, help="seed for init, data order and dropout (default: %(default)s)")
    add("--mixed_precision", default="no", choices=["no", "fp16", "bf16"], help="(default: %(default)s)")
    add("--bf16", dest="mixed_precision", action="store_const", const="bf16", help="= --mixed_precision bf16")
    add("--fp16", dest="mixed_precision", action="store_const", const="fp16", help="= --mixed_precision fp16")
    add("--eval_steps", type=int, default=0, help="evaluate and save every N steps (default: %(default)s = every epoch)")
    add("--logging_steps", type=int, default=10, help="log loss and lr every N steps (default: %(default)s)")
    add("--metric_for_best_model", default="loss", help="eval metric that picks best/ (default: %(default)s)")
    add("--greater_is_better", default=None, choices=["true", "false"],
        help="(default: false for names with 'loss' or 'perplexity', else true)")
    add("--early_stopping_patience", type=int, default=0, help="stop after N evals without gain (default: %(default)s = off)")
    add("--resume_from_checkpoint", nargs="?", const="auto", default=None,
        help="'auto' (output_dir/last if it exists) or a last/ folder (default: fresh start)")
    add("--resume_inexact", action="store_true",
        help="resume even when part of last/state is missing or damaged: restore what verifies, start the "
             "rest afresh, with a warning (default: off = refuse, naming the file)")
    add("--save_steps", type=int, default=0, help="also keep output_dir/checkpoint-STEP/ every N steps, "
        "loadable, evaluable and resumable like last/ (default: %(default)s = off)")
    add("--save_total_limit", type=int, default=0,
        help="keep only the newest N checkpoint-STEP/ folders (default: %(default)s = all)")
    add("--report_to", default="tensorboard",
        help=f"trackers, comma-separated, through Accelerate: {', '.join(TRACKERS)}, all (the installed "
             "ones) or none (default: %(default)s, events in output_dir/runs)")
    add("--max_train_samples", type=int, default=-1, help="use the first N training examples (default: %(default)s = all)")
    add("--max_eval_samples", type=int, default=-1, help="use the first N eval examples (default: %(default)s = all)")
    add("--group_by_length", action="store_true", help="batch examples of similar length (default: off)")
    add("--gradient_checkpointing", action="store_true", help="trade compute for memory (default: off)")
    add("--torch_compile", action="store_true", help="torch.compile the model (default: off)")
    add("--embedding_updates", default="rows", choices=["rows", "dense"],
        help="rows: AdamW updates only the word-embedding rows that ever had a gradient, exactly dense AdamW "
             "where that holds (no weight decay, an embedding not tied to an output layer), dense otherwise; "
             "dense: always the whole matrix (default: %(default)s)")
    add("--dataloader_num_workers", type=int, default=0, help="(default: %(default)s = load in the main process)")
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



# --- --do_train / --do_eval / --do_predict, as the Hugging Face scripts and the Trainer mean them
JOBS = (("do_train", "train_file"), ("do_eval", "validation_file"), ("do_predict", "test_file"))


def add_jobs(group, train, evaluate, predict):
    """The three job flags, with the script's words for what each does (the rule for none given is added here)."""
    for (flag, file), what in zip(JOBS, (train, evaluate, predict)):
        group.add_argument(f"--{flag}", action="store_true",
                           help=f"{what} (default: off; with no --do_* flag, on when --{file} is given)")


def choose_jobs(args, source=None, source_has=("do_train", "do_eval", "do_predict")):
    """Sets args.do_train/do_eval/do_predict and args.inferred. None given: each job whose file (or whose split in
    `source`, the flag name of a dataset or folder that was given, e.g. "--dataset_name") is there. Given: each
    needs its file or the source's split; a --train_file without --do_train is refused (it would be ignored: the
    model is evaluated as it is). Whether a source really has a split is for the script to check once it is read."""
    args.inferred = not any(getattr(args, flag) for flag, _ in JOBS)
    for flag, file in JOBS:
        there = bool(getattr(args, file, None)) or (source is not None and flag in source_has)
        if args.inferred:
            setattr(args, flag, there)
        elif getattr(args, flag) and not there:
            fail(f"--{flag} needs --{file}" + (f" or {source}" if source and flag in source_has else ""))
    if not args.inferred and getattr(args, "train_file", None) and not args.do_train:
        fail("--do_eval/--do_predict without --do_train evaluate --model_name_or_path as it is; drop --train_file "
             "(or add --do_train)")
    if not (args.do_train or args.do_eval or args.do_predict):
        fail("nothing to do: give --train_file, --validation_file and/or --test_file" +
             (f", or {source}" if source else ""))


# --- old spellings
class _Renamed(argparse.Action):
    """Stores like the flag it aliases; an old spelling prints a one-line notice, once per process."""
    told = set()

    def __init__(self, option_strings, dest, old=(), store=None, **kwargs):
        self.old, self.store = set(old), store
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        if option_string in self.old and option_string not in _Renamed.told:
            _Renamed.told.add(option_string)
            print(f"notice: {option_string} is now {self.option_strings[0]}", flush=True)
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)


def renamed(group, name, *old, **kwargs):
    """group.add_argument(name, *old, ...) where each old spelling still works and says once what it is now called.
    Takes add_argument's keywords; action="store_true" becomes a flag without a value."""
    if kwargs.pop("action", None) == "store_true":
        kwargs.update(nargs=0, const=True, default=kwargs.get("default", False))
    return group.add_argument(name, *old, action=_Renamed, old=old, **kwargs)
