"""Layer-wise linear probes: where a frozen encoder holds what a task needs, and how fine-tuning moves it.

    python probe.py --task sst2 --data_dir glue_data/SST-2 --model bert-base-uncased \
        --model textattack/bert-base-uncased-SST-2 --output_dir out/probe/sst2

One softmax-regression probe per hidden state (0 = the embeddings) and per epoch, all trained together on
features that one encoder pass per example extracts and a float16 .npy cache keeps (keyed on model, inputs and
layers); the epoch is picked by dev. Writes results.md and results.json (the metric per layer and epoch, a
majority baseline, and the control task of Hewitt and Liang: the same probes trained on a random label per word
type; selectivity = accuracy - control accuracy) and probe.png (metric against layer, one line per --model).
The CS224N project's three steps (train, predict, evaluate) are subcommands taking the same flags (no subcommand = run = all three):
    python probe.py train --task squad --model twmkn9/bert-base-uncased-squad2 --train_file train-v2.0.json \
        --validation_file dev-v2.0.json --version_2_with_negative --epochs 3 --device cuda
    python probe.py predict ...     # each epoch's probes on the dev (and test) data: predictions/epoch_N.json
    python probe.py evaluate ...    # scores them: results.md, results.json, probe.png
Tasks: squad (start and end probes over a window's tokens, the official EM/F1; v2 with
--version_2_with_negative), ner (a tag per word, seqeval F1), a GLUE classification task or `sentence` (any
labelled sentence(-pair) files; first token or mean pooled). Data flags as in squad.py, ner.py and glue.py.

Owns: the probes, the hidden-state cache, the control task and the results table and plot. Reads and scores each
task through the task scripts' declared interfaces only (the section "the interface for other scripts" of each),
never their other names: squad.examples/encode/best_answers/score, ner.examples/label_list/check_tags/encode/score,
glue.TASKS (a glue.Task by name: .labels, .metrics)/examples/label_codes/positive_id/compute_metrics.
"""
import argparse
import hashlib
import inspect
import json
import math
import os
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

import core
import files
import flags
import glue
import loading
import ner
import squad

COMMANDS = ("run", "train", "predict", "evaluate")
SENTENCE_TASKS = [t for t, task in glue.TASKS.items() if task.labels is not None] + ["sentence"]  # not STS-B: a regression
TASKS = ["squad", "ner", *SENTENCE_TASKS]
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
CACHE_VERSION = 1
ONE_PROCESS = SimpleNamespace(is_main_process=True, wait_for_everyone=lambda: None)  # what files.cached asks of Accelerate


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("command", nargs="?", default="run", choices=COMMANDS,
        help="train, predict or evaluate (the CS224N project's three steps), or run: all three (default: run)")
    add("--model_name_or_path", "--model", action="append", default=[],
        help="an encoder to probe; repeat it to compare models in one table and plot (required)")
    add("--task", type=str.lower, default=None, help=f"one of {', '.join(TASKS)} (required)")
    add("--output_dir", default=None, help="(default: out/probe/TASK)")
    add("--overwrite_output_dir", action="store_true", help="train: replace a model's probes (default: refuse)")
    add("--layers", default=None, help="comma-separated hidden states to probe, 0 = the embeddings (default: all)")
    add("--pooling", default="cls", choices=["cls", "mean"],
        help="sentence tasks: the first token's state or the mean over the tokens (default: cls)")
    add("--num_train_epochs", "--epochs", type=int, default=3, help="(default: 3, as in the CS224N project)")
    add("--per_device_train_batch_size", type=int, default=32, help="sentences or windows per probe step (default: 32)")
    add("--per_device_eval_batch_size", type=int, default=32, help="examples per encoder pass (default: 32)")
    add("--learning_rate", type=float, default=3e-3, help="AdamW, on standardized features (default: 3e-3)")
    add("--weight_decay", type=float, default=0.0, help="(default: 0.0)")
    add("--seed", type=int, default=42, help="data order and control labels (default: 42)")
    add("--device", default=None, help="cpu, cuda (or gpu), cuda:1 ... (default: cuda if there is one)")
    add("--max_seq_length", type=int, default=None, help="(default: 384 for squad, else 128)")
    add("--max_train_samples", type=int, default=-1, help="first N training examples (default: -1 = all)")
    add("--max_eval_samples", type=int, default=-1, help="first N dev/test examples (default: -1 = all)")
    add("--cache_dir", default=None, help="hidden-state cache (default: $HF_DATASETS_CACHE/probe_features or "
        "~/.cache/huggingface/datasets/probe_features)")
    add("--overwrite_cache", action="store_true", help="extract again even if cached (default: off)")
    add("--cache_limit_gb", type=float, default=20.0, help="features bigger than this are not cached: the encoder runs "
        "on every batch (all of SQuAD v2 train: ~400 GB for a base model) (default: 20)")
    data = parser.add_argument_group("data (as in squad.py, ner.py and glue.py)")
    g = data.add_argument
    g("--train_file", default=None, help="(default: none)")
    g("--validation_file", default=None, help="dev set: picks the epoch (default: none)")
    g("--test_file", default=None, help="ner: scored at the epoch dev picked (default: none)")
    g("--dataset_name", default=None, help="a `datasets` name or folder (default: none)")
    g("--dataset_config_name", default=None, help="(default: none)")
    g("--data_dir", default=None, help="a GLUE task's folder in the classic layout (default: none)")
    flags.renamed(data, "--text_column_name", "--text_column", default=None,
                  help="ner: JSON field with the words (default: inferred as ner.py does: tokens, words, ...)")
    flags.renamed(data, "--text_column_names", "--text_columns", type=lambda s: tuple(s.split(",")), default=None,
                  help="sentence tasks: one or two comma-separated columns (default: the task's; 'sentence')")
    flags.renamed(data, "--label_column_name", "--label_column", default=None,
                  help="(default: the task's, as in ner.py and glue.py)")
    g("--version_2_with_negative", action="store_true", help="squad: v2.0 (default: off, v1.1)")
    g("--doc_stride", type=int, default=128, help="squad: tokens shared by windows (default: 128)")
    g("--max_query_length", type=int, default=64, help="squad: question tokens kept (default: 64)")
    g("--n_best_size", type=int, default=20, help="squad: starts and ends tried (default: 20)")
    g("--max_answer_length", type=int, default=30, help="squad: in tokens (default: 30)")
    g("--null_score_diff_threshold", type=float, default=0.0, help="squad v2 (default: 0.0)")
    parser.error = flags.fail  # one line, exit code 2: argparse's own error prints the usage too
    return check_args(parser.parse_args(argv))


def check_args(args):
    """The flags' combinations and values, checked before any work (one line for each refusal); the defaults that
    depend on the task."""
    if not args.task:
        flags.fail("--task is required")
    if args.task not in TASKS:
        flags.fail(f"unknown task {args.task!r}; expected one of {', '.join(TASKS)}")
    if not args.model_name_or_path:
        flags.fail("--model_name_or_path is required (repeat it to compare models)")
    if args.test_file and args.task != "ner":
        flags.fail("--test_file: only ner's test set has labels here")
    sources = [args.dataset_name, args.data_dir, args.train_file or args.validation_file]
    if sum(map(bool, sources)) != 1 or (args.data_dir and args.task in ("squad", "ner", "sentence")):
        flags.fail("give --train_file and --validation_file, or --dataset_name (or --data_dir for a GLUE task)")
    if sources[2] and not (args.train_file and args.validation_file):
        flags.fail("probes need --train_file (to train) and --validation_file (to pick the epoch)")
    try:
        args.layers = sorted({int(x) for x in args.layers.split(",")}) if args.layers else None
    except ValueError:
        flags.fail(f"--layers {args.layers!r}: expected comma-separated layer numbers, e.g. 0,3,6")
    whole, finite = lambda least: lambda v: v >= least, lambda least: lambda v: math.isfinite(v) and v >= least
    for flag, ok, expected in (("num_train_epochs", whole(1), "1 or more"),
                               ("per_device_train_batch_size", whole(1), "1 or more"),
                               ("per_device_eval_batch_size", whole(1), "1 or more"),
                               ("learning_rate", lambda v: math.isfinite(v) and v > 0, "a positive number"),
                               ("weight_decay", finite(0), "0 or more"),
                               ("max_seq_length", lambda v: v is None or v >= 1, "1 or more"),
                               ("cache_limit_gb", lambda v: v >= 0, "0 or more (0: never cache)"),
                               ("doc_stride", whole(0), "0 or more"), ("max_query_length", whole(1), "1 or more"),
                               ("n_best_size", whole(1), "1 or more"), ("max_answer_length", whole(1), "1 or more"),
                               ("null_score_diff_threshold", math.isfinite, "a finite number")):
        if not ok(getattr(args, flag)):
            flags.fail(f"--{flag} {getattr(args, flag)}: expected {expected}")
    args.task_name = None if args.task == "sentence" else args.task  # what glue.py's readers look at
    args.output_dir = args.output_dir or f"out/probe/{args.task}"
    args.max_seq_length_given = args.max_seq_length is not None
    args.max_seq_length = args.max_seq_length or (384 if args.task == "squad" else 128)
    return args


# --- data: every split read and checked once, labels as ids; words give the control task its labels
def read_data(args):
    """{split: {"examples", "words", "gold", "control"}} and the label names in id order (squad: no labels, no
    words), every split read and checked by the task script's interface; the first N examples of each."""
    if args.task == "squad":
        splits = squad.examples(args)
        if set(splits) != {"train", "validation"}:
            flags.fail(f"{args.dataset_name}: probes need a train and a validation split (found: {', '.join(splits)})")
        return {"train": {"examples": first(splits["train"], args.max_train_samples)},
                "dev": {"examples": first(splits["validation"], args.max_eval_samples)}}, None
    data, labels = read_ner(args) if args.task == "ner" else read_sentences(args)
    counts = np.bincount(data["train"]["gold"], minlength=len(labels))
    for split in data.values():
        split["control"] = control_labels(split["words"], counts, args.seed)
    return data, labels


def first(examples, n):
    """The first n examples (n <= 0: all), as a list."""
    return list(core.limit(examples, n))


def read_ner(args):
    """ner: a word is a row; its control label is its own type's."""
    found = ner.examples(args)
    if "train" not in found or "dev" not in found:
        flags.fail(f"{args.dataset_name}: probes need a train and a dev split (found: {', '.join(found)})")
    labels = ner.label_list(found["train"])
    label2id = {t: i for i, t in enumerate(labels)}
    data = {}
    for split, sentences in found.items():
        ner.check_tags(sentences, label2id, "the training tags")
        sentences = first(sentences, args.max_train_samples if split == "train" else args.max_eval_samples)
        data[split] = {"examples": sentences, "words": [w for s in sentences for w in s["words"]],
                       "gold": np.array([label2id[t] for s in sentences for t in s["tags"]])}
    return data, labels


def read_sentences(args):
    """A sentence task: a sentence (or pair) is a row; its control label is its first word's, learnable only from
    that word's identity."""
    found = glue.examples(args)
    codes = glue.label_codes(args.task_name, found["train"])
    if codes is None:
        flags.fail(f"{args.train_file}: the labels are numbers (a regression); probes here are classifiers")
    labels = [name for _, name in codes]
    to_id = {key: i for i, (code, name) in enumerate(codes) for key in (code, name)}
    data = {}
    for split, examples in found.items():
        examples = first(examples, args.max_train_samples if split == "train" else args.max_eval_samples)
        for e in examples:
            if e["label"] not in to_id:
                flags.fail(f"{e['where']}: label {e['label']!r} is not among {', '.join(c for c, _ in codes)}")
        data[split] = {"examples": examples, "gold": np.array([to_id[e["label"]] for e in examples]),
                       "words": [(e["texts"][0].split() or [""])[0].lower() for e in examples]}
    return data, labels


def reason(e):
    """An exception in a few words, for a one-line error: its first line, or its first sentence if that is long."""
    text = (str(e).strip().splitlines() or [type(e).__name__])[0]
    if len(text) > 160:
        text = text[:text.find(". ") + 1] if 0 < text.find(". ") < 160 else text[:157] + "..."
    return text


def control_labels(words, counts, seed):
    """Hewitt and Liang's control task: each word type gets a label drawn from the training label distribution, by
    a hash of the type, so a type has the same label in every split and run."""
    cumulative = np.cumsum(counts) / counts.sum()
    draw = lambda w: int(hashlib.sha256(f"{seed}\t{w}".encode()).hexdigest()[:13], 16) / 16 ** 13
    return np.minimum(np.searchsorted(cumulative, [draw(w) for w in words], side="right"), len(counts) - 1)


def encode(args, split, data, tokenizer, label2id):
    """Per unit (sentence, example or window): model inputs and the positions whose hidden states become rows (None:
    mean pooled); `rows`: the word or example each row stands for; squad: targets (train) or window meta (dev)."""
    keep = lambda enc, i: {k: list(enc[k][i]) for k in INPUTS if k in enc}
    examples = data[split]["examples"]
    if args.task == "ner":
        features, kept = ner.encode(examples, tokenizer, label2id, args.max_seq_length)
        starts = np.cumsum([0] + [len(s["words"]) for s in examples])
        units = [{**{k: f[k] for k in INPUTS if k in f}, "positions": [j for j, y in enumerate(f["labels"]) if y >= 0]}
                 for f in features]
        return units, {"rows": np.concatenate([starts[i] + np.array(k, dtype=int) for i, k in enumerate(kept)])}
    if args.task == "squad":
        training = split == "train"
        w, meta = squad.encode(examples, tokenizer, args, training)
        units = [{**keep(w, i), "positions": list(range(len(w["input_ids"][i])))} for i in range(len(w["input_ids"]))]
        return units, ({"targets": np.array([w["start_positions"], w["end_positions"]]).T} if training
                       else {"meta": meta})
    enc = tokenizer(*zip(*[e["texts"] for e in examples]), truncation=True, max_length=args.max_seq_length)
    positions = None if args.pooling == "mean" else [0]
    return [{**keep(enc, i), "positions": positions} for i in range(len(examples))], {"rows": np.arange(len(examples))}


# --- features: one encoder pass gives every layer's rows; cached as float16 [rows, layers, hidden]
def load_model(name, device, sample, n):
    """AutoModel on device, checked on a sample input: it must return its n layers' hidden states and the embeddings."""
    from transformers import AutoModel

    try:
        model = AutoModel.from_pretrained(name).to(device).eval()
    except Exception as e:  # noqa: BLE001 (an unknown type, weights that do not load: one line)
        flags.fail(f"{name}: AutoModel cannot load it ({reason(e)}); probe.py needs a Hugging Face encoder that "
                   "returns hidden states")
    accepted = inspect.signature(model.forward).parameters
    with torch.no_grad():
        states = forward(model, {k: v.to(device) for k, v in sample.items() if k in accepted})
    if not states or len(states) < n + 1:
        flags.fail(f"{name}: the model returned {len(states or [])} hidden states with output_hidden_states=True; "
                   f"expected {n + 1} (the embeddings and {n} layers)")
    return model


def forward(model, batch):
    return getattr(model(**batch, output_hidden_states=True), "hidden_states", None)


def extract(model, units, layers, pad_id):
    """One encoder pass over a batch of units: their rows [R, layers, hidden], in order."""
    device, accepted = next(model.parameters()).device, inspect.signature(model.forward).parameters
    width = max(len(u["input_ids"]) for u in units)
    pad = {"input_ids": pad_id or 0, "attention_mask": 0, "token_type_ids": 0}
    batch = {k: torch.tensor([u[k] + [pad[k]] * (width - len(u[k])) for u in units], device=device)
             for k in INPUTS if k in units[0] and k in accepted}
    with torch.no_grad():
        states = forward(model, batch)
    h = torch.stack([states[l] for l in layers], dim=2)  # [batch, tokens, layers, hidden]
    if units[0]["positions"] is None:
        mask = batch["attention_mask"][:, :, None, None].to(h.dtype)
        return (h * mask).sum(1) / mask.sum(1)
    b = torch.tensor([i for i, u in enumerate(units) for _ in u["positions"]], device=device)
    return h[b, torch.tensor([p for u in units for p in u["positions"]], device=device)]


def model_identity(name, config):
    """A local folder by its files' names, sizes and times (a retrained model gets new features); a hub model by its
    name and commit."""
    if Path(name).is_dir():
        return [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(Path(name).iterdir()) if p.is_file()]
    return [name, getattr(config, "_commit_hash", None)]


def features(args, name, identity, split, units, layers, hidden, get_model, pad_id):
    """A function giving the rows of some units (float16 from the .npy cache, written here on first use; or, past
    --cache_limit_gb, an encoder pass each time) and the number of rows per unit."""
    counts = np.array([1 if u["positions"] is None else len(u["positions"]) for u in units])
    offsets = np.concatenate([[0], np.cumsum(counts)])
    size = offsets[-1] * len(layers) * hidden * 2
    if size > args.cache_limit_gb * 2 ** 30:
        print(f"{split}: {size / 2 ** 30:.1f} GB of features, over --cache_limit_gb: the encoder runs on every batch")
        return (lambda ids: extract(get_model(), [units[i] for i in ids], layers, pad_id)), counts
    key = hashlib.sha256(json.dumps([CACHE_VERSION, identity, layers, hidden]).encode())
    for u in units:
        key.update(np.array([len(u["input_ids"]), *u["input_ids"], -1, *(u["positions"] or [-2])], np.int64).tobytes())
    folder = files.cache_root(args.cache_dir, "probe_features") / f"{split}-{key.hexdigest()[:24]}"
    shape = (int(offsets[-1]), len(layers), hidden)

    def write(_, tmp):
        """The encoder pass itself, straight into a memory-mapped .npy in files.cached's temporary folder: the rows
        never sit in memory all at once (all of a big split can be many GB)."""
        array = np.lib.format.open_memmap(tmp / "features.npy", mode="w+", dtype=np.float16, shape=shape)
        order = sorted(range(len(units)), key=lambda i: -len(units[i]["input_ids"]))  # little padding per batch
        bs, model = args.per_device_eval_batch_size, get_model()
        for k in tqdm(range(0, len(order), bs), desc=f"{name} [{split}] hidden states"):
            ids = order[k:k + bs]
            rows = extract(model, [units[i] for i in ids], layers, pad_id).half().cpu().numpy()
            for i, part in zip(ids, np.split(rows, np.cumsum(counts[ids])[:-1])):
                array[offsets[i]:offsets[i + 1]] = part
        array.flush()
        del array

    def read(folder):
        array = np.load(folder / "features.npy", mmap_mode="r")
        if array.shape != shape or array.dtype != np.float16:
            raise ValueError(f"features of shape {array.shape}, {array.dtype}; expected {shape}, float16")
        return array

    # the one cache of the project: checksummed, keyed by the folder's name; a damaged or swapped one is rebuilt
    array = files.cached(folder, lambda: None, write, read, ONE_PROCESS, args.overwrite_cache, what=f"{split}: features")
    if array is None:  # built: write() filled the file, which is now in place
        array = read(folder)
        print(f"{split}: {shape} features ({size / 2 ** 20:.0f} MB) cached in {folder}")
    return (lambda ids: torch.from_numpy(np.concatenate([array[offsets[i]:offsets[i + 1]] for i in ids]))), counts


# --- probes: weight [K, layers, hidden, classes] (K: the task and its control task), one einsum for all
def logits_of(x, weight, bias):
    return torch.einsum("rlh,klhc->rklc", x, weight) + bias  # [rows, K, layers, classes]


def span_loss(logits, counts, targets):
    """squad: start and end as a softmax over each window's tokens; logits [rows, layers, 2], targets [windows, 2]."""
    padded = torch.nn.utils.rnn.pad_sequence(logits.split(counts.tolist()), batch_first=True, padding_value=-1e4)
    logp, b = padded.log_softmax(1), torch.arange(len(counts), device=logits.device)
    return -(logp[b, targets[:, 0], :, 0] + logp[b, targets[:, 1], :, 1]).mean(0).sum() / 2


def standardizer(rows, n_units, device, bs, sample=4096):
    """Mean and std of each layer's features over a seeded sample of training units. Probes train on standardized
    features (in some layers a sentence's first-token state varies by 1e-3: too little for a few epochs of AdamW) and
    are saved in the raw space, so they apply to raw hidden states."""
    ids = torch.randperm(n_units, generator=torch.Generator().manual_seed(0))[:sample].tolist()
    total = 0
    for k in range(0, len(ids), bs):
        x = rows(ids[k:k + bs]).to(device, torch.float64)
        total = total + torch.stack([x.sum(0), (x * x).sum(0), torch.full_like(x[0], len(x))])
    mean = total[0] / total[2]
    return mean.float(), (total[1] / total[2] - mean * mean).clamp_min(0).sqrt().float().clamp_min(1e-5)


def train_probes(rows, counts, targets, shape, args, device, save=None):
    """Every probe trained at once: the loss is summed over probes, so each one's gradient (and AdamW update) is the
    one it would get alone. targets: [rows, K] labels, or [windows, 2] start/end (squad). Returns weight, bias."""
    span, offsets = args.task == "squad", np.concatenate([[0], np.cumsum(counts)])
    # a probe starts as the majority baseline: no weights, the log prior as bias (a span's bias cancels in its softmax)
    prior = np.zeros((shape[0], shape[3])) if span else \
        np.log(np.stack([np.bincount(targets[:, k], minlength=shape[3]) for k in range(shape[0])]) + 1.0)
    weight = torch.zeros(shape, device=device, requires_grad=True)
    # a span's bias is not trained: it cancels in the softmax over a window's tokens, so its gradient is rounding noise,
    # which Adam's normalisation would turn into steps of the full learning rate
    bias = torch.tensor(prior, dtype=torch.float32)[:, None].repeat(1, shape[1], 1).to(device).requires_grad_(not span)
    optimizer = torch.optim.AdamW([weight] + ([] if span else [bias]), lr=args.learning_rate,
                                  weight_decay=args.weight_decay)
    mean, std = standardizer(rows, len(counts), device, args.per_device_train_batch_size)
    raw = lambda: (weight.detach() / std[None, :, :, None],
                   bias.detach() - torch.einsum("lh,klhc->klc", mean / std, weight.detach()))
    for epoch in range(1, args.num_train_epochs + 1):
        order = torch.randperm(len(counts), generator=torch.Generator().manual_seed(args.seed + epoch)).tolist()
        bar, total = tqdm(range(0, len(order), args.per_device_train_batch_size), desc=f"[Epoch {epoch}] probes"), 0.0
        for k in bar:
            ids = order[k:k + args.per_device_train_batch_size]
            logits = logits_of((rows(ids).to(device, torch.float32) - mean) / std, weight, bias)
            if span:
                loss = span_loss(logits[:, 0], counts[ids], torch.as_tensor(targets[ids], device=device))
            else:
                y = torch.as_tensor(np.concatenate([targets[offsets[i]:offsets[i + 1]] for i in ids]), device=device)
                loss = F.cross_entropy(logits.permute(0, 3, 1, 2), y[:, :, None].expand(-1, -1, shape[1]),
                                       reduction="none").mean(0).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item()  # note: syncs the device; nothing to overlap with here
        print(f"epoch {epoch}: training loss per probe {total / len(bar) / (shape[0] * shape[1]):.4f}")
        if save:
            save(epoch, *raw())
    return raw()


def save_probes(path, weight, bias, kinds, layers):
    """One file per epoch; one weight and bias per probe (task or control, layer)."""
    from safetensors.torch import save_file

    tensors = {f"{kind}.layer_{l}.{n}": t[k, i].contiguous().cpu() for k, kind in enumerate(kinds)
               for i, l in enumerate(layers) for n, t in (("weight", weight), ("bias", bias))}
    tmp = Path(f"{path}.tmp")
    save_file(tensors, str(tmp), metadata={"kinds": json.dumps(kinds), "layers": json.dumps(layers)})
    os.replace(tmp, path)


def load_probes(path):
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            kinds, layers = (json.loads(f.metadata()[k]) for k in ("kinds", "layers"))
            stack = lambda n: torch.stack([torch.stack([f.get_tensor(f"{k}.layer_{l}.{n}") for l in layers])
                                           for k in kinds])
            return stack("weight"), stack("bias"), kinds, layers
    except Exception as e:  # noqa: BLE001 (a truncated or foreign file: SafetensorError, KeyError, TypeError...)
        flags.fail(f"{path}: not a probes file of `probe.py train` ({reason(e)}); run `probe.py train` again")


def epoch_files(folder, pattern):
    return sorted(folder.glob(pattern), key=lambda p: int(re.findall(r"\d+", p.name)[-1]))


def open_model(args, name):
    """Config and tokenizer, checked, and the device; the model itself loads only on a cache miss."""
    from transformers import AutoConfig

    loading.check_model_files(name, "--model", weights=False)  # a missing folder, a file, no config.json
    try:
        config = AutoConfig.from_pretrained(name)
    except Exception as e:  # noqa: BLE001 (not found, an unknown type: one line)
        flags.fail(f"{name}: cannot load ({reason(e)}); probe.py needs a Hugging Face encoder (AutoModel) that "
                   "returns hidden states")
    tokenizer = loading.load_tokenizer(name, "--model", add_prefix_space=args.task == "ner")
    n, hidden = getattr(config, "num_hidden_layers", None), getattr(config, "hidden_size", None)
    if n is None or hidden is None:
        flags.fail(f"{name}: its config ({config.model_type}) has no num_hidden_layers/hidden_size: not an encoder")
    loading.check_weights(name, "--model")  # before any work: no weights, a safetensors file that does not open
    if args.layers and (args.layers[-1] > n or args.layers[0] < 0):
        flags.fail(f"--layers: {name} has hidden states 0 to {n} (0 = the embeddings); "
                   f"{next(l for l in args.layers if not 0 <= l <= n)} is out of range")
    if args.task == "squad" and not tokenizer.is_fast:
        flags.fail(f"{name}: squad needs a fast tokenizer (tokenizer.json) for the answers' offsets")
    if args.max_seq_length_given:  # a length asked for is refused if too long; the default is cut to the tokenizer's
        flags.check_max_seq_length(args.max_seq_length, config)
    args = argparse.Namespace(**{**vars(args), "max_seq_length": min(args.max_seq_length, tokenizer.model_max_length)})
    flags.check_max_seq_length(args.max_seq_length, config)
    if args.max_seq_length <= tokenizer.num_special_tokens_to_add(pair=args.task == "squad"):
        flags.fail(f"--max_seq_length {args.max_seq_length}: leaves no room for a token beside the special tokens")
    room = args.max_seq_length - args.max_query_length - tokenizer.num_special_tokens_to_add(pair=True)
    if args.task == "squad" and args.doc_stride >= room:
        flags.fail(f"--doc_stride {args.doc_stride} must be less than a window's context tokens, --max_seq_length - "
                   f"--max_query_length - special tokens = {room}")
    default = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device({"gpu": "cuda"}.get(args.device, args.device or default))  # the CS224N project's scripts said "gpu"
    except (RuntimeError, ValueError):
        flags.fail(f"--device {args.device}: expected cpu, cuda (or gpu) or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        flags.fail(f"--device {args.device}: no GPU here; use --device cpu")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        flags.fail(f"--device {args.device}: there are {torch.cuda.device_count()} GPUs here (cuda:0 ...)")
    return args, config, tokenizer, n, hidden, device


def probe_model(args, name, folder, data, labels, opened):
    """train and/or predict for one model (opened: its open_model()): probes/epoch_N.safetensors,
    predictions/epoch_N.json."""
    args, config, tokenizer, n, hidden, device = opened
    loaded, identity, label2id = [], model_identity(name, config), {t: i for i, t in enumerate(labels or [])}

    def get_model():
        if not loaded:
            loaded.append(load_model(name, device, tokenizer("a probe", return_tensors="pt"), n))
        return loaded[0]

    def store(split, layers):
        units, extra = encode(args, split, data, tokenizer, label2id)
        rows, counts = features(args, name, identity, split, units, layers, hidden, get_model, tokenizer.pad_token_id)
        return rows, counts, extra

    if args.command in ("run", "train"):
        layers = args.layers or list(range(n + 1))
        rows, counts, extra = store("train", layers)  # the model loads here: nothing is replaced before it did
        kinds = ["task"] if args.task == "squad" else ["task", "control"]
        targets = extra["targets"] if args.task == "squad" else \
            np.stack([data["train"]["gold"][extra["rows"]], data["train"]["control"][extra["rows"]]], 1)
        shape = (len(kinds), len(layers), hidden, 2 if args.task == "squad" else len(labels))
        tmp = folder / "probes.tmp"
        shutil.rmtree(tmp, ignore_errors=True)  # a killed run's
        tmp.mkdir(parents=True)
        save = lambda epoch, w, b: save_probes(tmp / f"epoch_{epoch}.safetensors", w, b, kinds, layers)
        train_probes(rows, counts, targets, shape, args, device, save)
        # the new probes are complete: now the old ones, and the predictions made with them, go
        for part in ("probes", "predictions"):
            shutil.rmtree(folder / part, ignore_errors=True)
        os.replace(tmp, folder / "probes")

    if args.command in ("run", "predict"):
        saved = epoch_files(folder / "probes", "epoch_*.safetensors")
        if not saved:
            flags.fail(f"{folder / 'probes'}: no probes; run `probe.py train` with these flags first")
        probes = [load_probes(f) for f in saved]
        kinds, layers = probes[0][2], probes[0][3]
        classes = 2 if args.task == "squad" else len(labels)
        for f, (w, _, k, l) in zip(saved, probes):
            if (k, l) != (kinds, layers) or w.shape[2:] != (hidden, classes) or layers[-1] > n:
                flags.fail(f"{f}: probes of layers {l}, hidden size {w.shape[2]}, {w.shape[3]} classes; expected "
                           f"layers 0 to {n}, hidden size {hidden}, {classes} classes, as in {saved[0].name} "
                           "(trained with other flags or another model? run `probe.py train` again)")
        weight, bias = (torch.cat([p[i] for p in probes]).to(device) for i in (0, 1))  # epochs stacked along K
        predictions = [{} for _ in saved]
        for split in (s for s in data if s != "train"):
            rows, counts, extra = store(split, layers)
            bs = args.per_device_eval_batch_size
            logits = torch.cat([logits_of(rows(range(k, min(k + bs, len(counts)))).to(device, torch.float32),
                                          weight, bias).cpu() for k in range(0, len(counts), bs)])
            for e, found in enumerate(predictions):
                found[split] = {kind: {l: predicted(args, data[split], extra, logits[:, e * len(kinds) + k, i], counts,
                                                    label2id.get("O", 0) if kind == "task" else -1)
                                       for i, l in enumerate(layers)} for k, kind in enumerate(kinds)}
        shutil.rmtree(folder / "predictions", ignore_errors=True)
        (folder / "predictions").mkdir(parents=True)
        for found, path in zip(predictions, saved):
            files.write_json(folder / "predictions" / f"{path.stem}.json", found)


def predicted(args, split, extra, logits, counts, default):
    """One probe's predictions on a split: squad's answers and null odds (its postprocess), else a label id per word
    (ner) or example; words cut off at --max_seq_length get `default` (O, or -1 for the control task)."""
    if args.task == "squad":
        starts, ends = (np.split(logits[:, j].numpy(), np.cumsum(counts)[:-1]) for j in (0, 1))
        answers, odds = squad.best_answers(split["examples"], extra["meta"], starts, ends, args)
        return {"predictions": answers, "null_odds": odds}
    ids = np.full(len(split["gold"]), default)
    ids[extra["rows"]] = logits.argmax(-1).numpy()
    return ids.tolist()


# --- evaluation: each epoch and layer scored with the task script's own metric; the epoch picked by dev
def headline(args):
    return "f1" if args.task in ("squad", "ner") else glue.TASKS[args.task_name].metrics[0] if args.task_name \
        else "accuracy"


def score(args, data, labels, split, task, control=None):
    if args.task == "squad":
        v2 = args.version_2_with_negative
        return squad.score(data[split]["examples"], task["predictions"], v2, task.get("null_odds") if v2 else None,
                           args.null_score_diff_threshold)
    gold, predicted = data[split]["gold"], np.asarray(task)
    percent = lambda m: {k: 100 * v if isinstance(v, float) else v for k, v in m.items()}
    if args.task == "ner":
        cut = np.cumsum([len(s["words"]) for s in data[split]["examples"]])[:-1]
        tags = lambda ids: [[labels[i] for i in part] for part in np.split(ids, cut)]
        metrics = percent(ner.score(tags(gold), tags(predicted)))
    else:
        positive = glue.positive_id(args.task_name, {name: i for i, name in enumerate(labels)})
        metrics = percent(glue.compute_metrics(args.task_name, np.eye(len(labels))[predicted], gold, positive))
    if control is not None:  # both accuracies over the words the probes saw
        control, seen = np.asarray(control), np.asarray(control) >= 0
        metrics["accuracy"] = 100 * float((predicted[seen] == gold[seen]).mean())
        metrics["control_accuracy"] = 100 * float((control[seen] == data[split]["control"][seen]).mean())
        metrics["selectivity"] = metrics["accuracy"] - metrics["control_accuracy"]
    return metrics


def slug(name):
    parts = Path(name).parts[-3:] if Path(name).is_dir() else [name]
    return re.sub(r"[^A-Za-z0-9._-]+", "-", "--".join(parts)).strip("-.") or "model"


def report(args, data, labels):
    out, metric = Path(args.output_dir), headline(args)
    evals = [s for s in data if s != "train"]
    if args.task == "squad":
        baseline = {s: score(args, data, labels, s, {"predictions": {e["id"]: "" for e in data[s]["examples"]}})
                    for s in evals}
    else:
        majority = int(np.bincount(data["train"]["gold"]).argmax())
        baseline = {s: score(args, data, labels, s, np.full(len(data[s]["gold"]), majority)) for s in evals}
    models = {}
    for name in args.model_name_or_path:
        saved = epoch_files(out / slug(name) / "predictions", "epoch_*.json")
        if not saved:
            flags.fail(f"{out / slug(name) / 'predictions'}: no predictions; run `probe.py predict` with these flags")
        per = {}  # layer -> epoch -> split -> metrics
        for path in saved:
            epoch = int(path.stem.split("_")[1])
            for split, found in read_predictions(args, path, data).items():
                for layer, task in found["task"].items():
                    control = found.get("control", {}).get(layer)
                    per.setdefault(int(layer), {}).setdefault(epoch, {})[split] = \
                        score(args, data, labels, split, task, control)
        models[name] = []
        for layer, epochs in sorted(per.items()):
            best = max(epochs, key=lambda e: (epochs[e]["dev"][metric], -e))  # ties: the earlier epoch
            models[name].append({"layer": layer, "best_epoch": best, **epochs[best], "epochs": epochs})
    results = {"task": args.task, "metric": metric, "baseline": baseline, "models": models}
    files.write_json(out / "results.json", results)
    text = table(args, results, evals)
    files.write_text(out / "results.md", text)
    plot(results, out / "probe.png", f"{args.task}, a linear probe per layer")
    print(text, end="")
    return results


def read_predictions(args, path, data):
    """predictions/epoch_N.json, checked against the data it must score: one line for a damaged file or one that
    `predict` wrote for other data or flags."""
    again = "; run `probe.py predict` with the flags of this evaluation"
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        flags.fail(f"{path}: not readable JSON ({reason(e)}){again}")
    evals = [s for s in data if s != "train"]
    if not isinstance(found, dict) or sorted(found) != sorted(evals):
        flags.fail(f"{path}: predictions for {sorted(found) if isinstance(found, dict) else type(found).__name__}; "
                   f"expected the splits {', '.join(evals)}{again}")
    for split, kinds in found.items():
        for kind, layers in (kinds.items() if isinstance(kinds, dict) else [("task", None)]):
            for layer, task in (layers.items() if isinstance(layers, dict) else [("?", None)]):
                if args.task == "squad":
                    ok = isinstance(task, dict) and isinstance(task.get("predictions"), dict) and \
                        set(task["predictions"]) == {e["id"] for e in data[split]["examples"]}
                else:
                    ok = isinstance(task, list) and len(task) == len(data[split]["gold"])
                if not ok:
                    flags.fail(f"{path}: {split} {kind} layer {layer}: not predictions for the "
                               f"{len(data[split]['examples'])} examples of {split}{again}")
    return found


def table(args, results, evals):
    metric, models = results["metric"], results["models"]
    extra = ["exact", *(["HasAns_f1", "NoAns_f1"] if args.version_2_with_negative else [])] if args.task == "squad" \
        else ["accuracy", "control_accuracy", "selectivity"]
    shown = [k for k in dict.fromkeys([metric, *extra]) if k in results["baseline"]["dev"]]
    lines = [f"# Probes: {args.task}, dev {metric} per layer (epoch picked by dev)", "", "Majority baseline ("
             + ("'' for every question" if args.task == "squad" else "the most frequent training label") + "): "
             + "; ".join(f"{s} " + ", ".join(f"{k} {b[k]:.2f}" for k in shown) for s, b in results["baseline"].items()),
             ""]
    for name, rows in models.items():
        epochs = sorted(rows[0]["epochs"])
        head = ["layer", *[f"epoch {e}" for e in epochs], "best epoch", *extra, *[f"{s} {metric}" for s in evals[1:]]]
        lines += [f"## {name}", "", "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
        for r in rows:
            cells = [r["layer"], *[f"{r['epochs'][e]['dev'][metric]:.2f}" for e in epochs], r["best_epoch"],
                     *[f"{r['dev'][k]:.2f}" for k in extra], *[f"{r[s][metric]:.2f}" for s in evals[1:]]]
            lines.append("| " + " | ".join(map(str, cells)) + " |")
        lines.append("")
    if len(models) > 1:
        layers = sorted({r["layer"] for rows in models.values() for r in rows})
        by = {name: {r["layer"]: f"{r['dev'][metric]:.2f}" for r in rows} for name, rows in models.items()}
        lines += [f"## dev {metric} per layer, by model", "", "| layer | " + " | ".join(models) + " |",
                  "|---" * (len(models) + 1) + "|"]
        lines += [f"| {l} | " + " | ".join(by[n].get(l, "-") for n in models) + " |" for l in layers] + [""]
    return "\n".join(lines)


def plot(results, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = results["metric"]
    first = next(iter(results["models"].values()))[0]["dev"]
    # the control task is scored by accuracy: beside another headline metric (NER's F1) it gets its own panel,
    # so the dotted control line is never read against a different metric
    panels = [metric] + (["accuracy"] if "control_accuracy" in first and metric != "accuracy" else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 4.5), squeeze=False)
    for ax, shown in zip(axes[0], panels):
        for name, rows in results["models"].items():
            label = name if len(name) <= 40 else ".../" + "/".join(Path(name).parts[-2:])
            line, = ax.plot([r["layer"] for r in rows], [r["dev"][shown] for r in rows], marker="o", label=label)
            if "control_accuracy" in rows[0]["dev"] and shown == "accuracy":
                ax.plot([r["layer"] for r in rows], [r["dev"]["control_accuracy"] for r in rows], linestyle=":",
                        color=line.get_color(), label=f"{label}: control task")
        ax.axhline(results["baseline"]["dev"][shown], color="gray", linestyle="--", label="majority baseline")
        ax.set(xlabel="hidden state (0 = embeddings)", ylabel=f"dev {shown}", title=f"{title}: dev {shown}")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize="small")
    fig.tight_layout()
    tmp = Path(f"{path}.tmp")
    fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def main(argv=None):
    args = parse_args(argv)
    for flag, folder in (("--output_dir", args.output_dir), ("--cache_dir", args.cache_dir)):
        if folder and Path(folder).exists() and not Path(folder).is_dir():
            flags.fail(f"{flag} {folder}: a file; expected a folder (or a path to create one)")
    data, labels = read_data(args)  # everything checked before a model is loaded or a file written
    slugs = [slug(n) for n in args.model_name_or_path]
    if len(set(slugs)) < len(slugs):
        flags.fail(f"two --model values share the output folder name {next(s for s in slugs if slugs.count(s) > 1)}")
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()  # AutoModel on an MLM or task checkpoint: the head's weights are "unused"
    hf_logging.disable_progress_bar()
    torch.manual_seed(args.seed)
    if args.command != "evaluate":
        # every model checked, and every refusal made, before the first encoder pass
        opened = {name: open_model(args, name) for name in args.model_name_or_path}
        for name in args.model_name_or_path:
            folder = Path(args.output_dir) / slug(name)
            if args.command in ("run", "train") and (folder / "probes").exists() and not args.overwrite_output_dir:
                flags.fail(f"{folder} already holds probes; pass --overwrite_output_dir to replace them")
        for name in args.model_name_or_path:
            probe_model(args, name, Path(args.output_dir) / slug(name), data, labels, opened[name])
    return report(args, data, labels) if args.command in ("run", "evaluate") else None


if __name__ == "__main__":
    main()
