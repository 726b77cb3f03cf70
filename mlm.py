"""A masked-LM corpus and its evaluation: what the masked-LM scripts (pretraining, distillation) share.

Owns: the corpus flags (add_data_args) and their checks (check_data, check_text), reading text lines (read_lines),
tokenizing, packing into blocks and caching them (encode, pack, load_corpus), BERT masking (mask_tokens, and the
fixed evaluation masks of fixed_masks), the batch collate, the vocabulary projection limited to the masked positions
(masked_only) with its per-example sums, perplexity over masked tokens, and OFFSET_POSITIONS (model types whose
position ids start after the padding index).
Must not know: any task script (pretrain_mlm.py, distill.py or another), tokenizer training, model configs, the
teacher or the student; it parses no flags of its own beyond the corpus flags both scripts take.
"""
import hashlib
import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import core
import files
import flags

# position ids start after padding_idx in these models: max_position_embeddings = max_seq_length + pad id + 1
OFFSET_POSITIONS = {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "roberta-prelayernorm", "data2vec-text",
                    "longformer", "ibert", "mpnet", "luke", "xmod", "esm"}


# --- corpus flags and files
def add_data_args(parser, title, streaming=True):
    """The corpus flags load_corpus() reads (streaming: offer --streaming)."""
    d = parser.add_argument_group(title)
    d.add_argument("--train_file", nargs="+", required=True, help="text or .jsonl file(s) (required)")
    d.add_argument("--validation_file", default=None, help="(default: a --validation_split_percentage sample)")
    d.add_argument("--validation_split_percentage", type=float, default=5,
                   help="share of the training lines held out, a seeded random sample (default: 5; 0 = none)")
    d.add_argument("--max_seq_length", type=int, default=None, help="block length (default: 512, or the model's max)")
    d.add_argument("--line_by_line", action="store_true", help="one sequence per line, padded (default: pack lines)")
    if streaming:
        d.add_argument("--streaming", action="store_true", help="read the training files as a stream (default: off)")
    d.add_argument("--preprocessing_num_workers", type=int, default=None, help="tokenizing processes (default: 1)")
    d.add_argument("--cache_dir", default=None, help="tokenized data cache (default: the datasets cache)")


def check_data(args):
    """The corpus flags and files, before anything loads or is written: one line for each problem."""
    if args.max_seq_length is not None and args.max_seq_length < 3:
        flags.fail(f"--max_seq_length {args.max_seq_length}: expected a block length >= 3 ([CLS], a token, [SEP])")
    if not 0 <= args.validation_split_percentage < 100:
        flags.fail(f"--validation_split_percentage {args.validation_split_percentage}: expected a share of the "
                   "training lines in [0, 100)")
    if args.preprocessing_num_workers is not None and args.preprocessing_num_workers < 1:
        flags.fail(f"--preprocessing_num_workers {args.preprocessing_num_workers}: expected a number of processes >= 1")
    streaming = getattr(args, "streaming", False)
    for path in args.train_file:
        check_text(path, head_only=streaming)
    if args.validation_file:
        check_text(args.validation_file)



def check_text(path, head_only=False):
    """A UTF-8 text file with at least one non-blank line; .jsonl: every line an object with a "text" string. Reads
    the whole file (head_only, for a stream: its first 64 MB), so a bad line stops here with its number."""
    jsonl = str(path).endswith(".jsonl")
    what = 'one JSON object per line with a "text" string' if jsonl else "UTF-8 text, one text per line"
    if Path(path).is_dir():
        flags.fail(f"{path}: a folder; expected a file of {what}")
    found = False
    try:
        with open(path, "rb") as f:
            for number, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    flags.fail(f"{path}:{number}: not UTF-8 text (byte 0x{raw[e.start]:02x}: binary data or another "
                               f"encoding); expected {what}")
                if "\0" in line:
                    flags.fail(f"{path}:{number}: a NUL byte (binary data); expected {what}")
                if jsonl and line.strip():
                    try:
                        record = json.loads(line)
                    except ValueError as e:
                        flags.fail(f"{path}:{number}: not valid JSON ({getattr(e, 'msg', e)}); expected {what}")
                    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                        flags.fail(f"{path}:{number}: no \"text\" string; expected {what}")
                found = found or bool(line.strip())
                if head_only and found and f.tell() > 64 << 20:
                    break
    except FileNotFoundError:
        flags.fail(f"{path}: no such file")
    except OSError as e:
        flags.fail(f"{path}: cannot read ({e.strerror or e}); expected {what}")
    if not found:
        flags.fail(f"{path}: no text (empty, or blank lines only); expected {what}")



# --- reading, tokenizing, packing
def read_lines(paths, sample=0, seed=0):
    """Stripped non-empty lines (JSONL: the "text" field); sample > 0: a seeded reservoir sample of that many
    lines (memory: the sample, not the corpus)."""
    def lines():
        for path in paths:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    text = (json.loads(line)["text"] if path.endswith(".jsonl") and line.strip() else line).strip()
                    if text:
                        yield text
    if sample <= 0:
        return lines()
    rng, kept = random.Random(seed), []
    for i, line in enumerate(lines()):
        if i < sample:
            kept.append(line)
        elif (j := rng.randrange(i + 1)) < sample:
            kept[j] = line
    return kept



def encode(batch, tokenizer, seq, line_by_line, whole_word):
    """Tokenized lines (blank ones dropped); with whole_word, word_start is 1 where a word starts, from the
    tokenizer's word ids (special tokens are words of their own)."""
    lines = [t.strip() for t in batch["text"] if t and t.strip()]
    enc = tokenizer(lines, add_special_tokens=line_by_line, truncation=line_by_line, max_length=seq,
                    return_attention_mask=False, verbose=False)
    out = {"input_ids": enc["input_ids"]}
    if whole_word:
        out["word_start"] = [[int(w is None or j == 0 or w != ws[j - 1]) for j, w in enumerate(ws)]
                             for ws in map(enc.word_ids, range(len(lines)))]
    return out


def pack(batch, seq, cls, sep):
    """Lines end with [SEP]; cut into blocks of seq - 2 tokens wrapped in [CLS] ... [SEP]; the partial rest
    of the batch is dropped (batches are 10,000 lines)."""
    out, block = {}, seq - 2
    for key, (first, end) in (("input_ids", (cls, sep)), ("word_start", (1, 1))):
        if key in batch:
            flat = [t for row in batch[key] for t in row + [end]]
            out[key] = [[first] + flat[i:i + block] + [end] for i in range(0, len(flat) - block + 1, block)]
    return out


def fixed_masks(batch, indices, seed, specials, mask_id, vocab_size, probability):
    """Evaluation masks, one generator per example: the same whatever the batching or number of processes."""
    out = {"input_ids": [], "labels": []}
    for n, i in enumerate(indices):
        ids = torch.tensor([batch["input_ids"][n]])
        starts = torch.tensor([batch["word_start"][n]]) if "word_start" in batch else None
        ids, labels = mask_tokens(ids, torch.isin(ids, specials), starts, mask_id, vocab_size, probability,
                                  torch.Generator().manual_seed(seed * 1_000_003 + i))
        out["input_ids"].append(ids[0].tolist())
        out["labels"].append(labels[0].tolist())
    return out


def load_text(args, paths, streaming):
    """The datasets library's reading of text or .jsonl files. A build reads the text afresh: the library's own
    cache of it is never trusted (a --streaming read uses it for the raw text only)."""
    import datasets

    return datasets.load_dataset(
        "json" if paths[0].endswith(".jsonl") else "text", data_files=paths, split="train", streaming=streaming,
        cache_dir=args.cache_dir, **({} if streaming else {"download_mode": "force_redownload"}))


def cache_key(args, tokenizer, seq, vocab_size):
    """The tokenized data's cache key: the files (path, size, time), tokenizer and settings."""
    paths = [*args.train_file, *([args.validation_file] if args.validation_file else [])]
    return hashlib.sha256(json.dumps([
        [(str(Path(f).resolve()), os.path.getsize(f), os.path.getmtime(f)) for f in paths],
        tokenizer.backend_tokenizer.to_str(), seq, vocab_size, args.line_by_line, args.whole_word_mask,
        args.mlm_probability, args.validation_split_percentage, args.seed, 2]).encode()).hexdigest()[:16]


def prepare(ds, name, args, tokenizer, seq, vocab_size, scratch, streaming=False):
    """Text rows -> token rows: tokenized, packed into blocks (unless --line_by_line), and for name "eval" masked
    once with fixed_masks. Not streamed: map's files in scratch/, on disk (a corpus may be larger than RAM)."""
    opts = lambda step: {} if streaming else dict(
        num_proc=args.preprocessing_num_workers, cache_file_name=str(scratch / f"{name}-{step}.arrow"),
        load_from_cache_file=False, desc=f"{step} {name}")
    ds = ds.map(encode, batched=True, remove_columns=ds.column_names or ["text"], **opts("tokenize"),
                fn_kwargs=dict(tokenizer=tokenizer, seq=seq, line_by_line=args.line_by_line,
                               whole_word=args.whole_word_mask))
    if not args.line_by_line:
        cls = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
        sep = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
        lines = ds
        ds = ds.map(pack, batched=True, batch_size=10_000, fn_kwargs=dict(seq=seq, cls=cls, sep=sep), **opts("pack"))
        if not streaming and len(ds) == 0:
            source = args.validation_file if name == "eval" else None
            source = source or " ".join(args.train_file) + (" (validation split)" if name == "eval" else "")
            flags.fail(f"{source}: {sum(map(len, lines['input_ids']))} tokens, fewer than one block of "
                       f"--max_seq_length {seq}; lower it or use --line_by_line")
    if name == "eval":
        masks = dict(seed=args.seed, specials=torch.tensor(tokenizer.all_special_ids), mask_id=tokenizer.mask_token_id,
                     vocab_size=vocab_size, probability=args.mlm_probability)
        ds = ds.map(fixed_masks, batched=True, with_indices=True, remove_columns=ds.column_names, fn_kwargs=masks,
                    **opts("mask"))
    return ds


def build_corpus(args, tokenizer, seq, vocab_size, scratch):
    """{"train": token rows, "eval": token rows with fixed masks (if there is a validation set)}, read afresh."""
    train = load_text(args, args.train_file, False)
    evaluation = load_text(args, [args.validation_file], False) if args.validation_file else None
    if evaluation is None and args.validation_split_percentage > 0:
        try:  # a seeded random sample of lines, not the first ones
            split = train.train_test_split(test_size=args.validation_split_percentage / 100, seed=args.seed)
        except ValueError as e:
            flags.fail(f"--validation_split_percentage {args.validation_split_percentage}: {e}")
        train, evaluation = split["train"], split["test"]
    made = lambda ds, name: prepare(ds, name, args, tokenizer, seq, vocab_size, scratch)
    return {"train": made(train, "train"), **({"eval": made(evaluation, "eval")} if evaluation else {})}


def load_corpus(args, tokenizer, seq, vocab_size, accelerator):
    """(train, eval) datasets of token blocks (or lines); eval rows hold fixed masked input_ids and labels.
    Tokenized data is cached (files.cached: verified on every load, rebuilt when damaged) under --cache_dir, keyed by
    the files, tokenizer and settings; a hit never reads the text again. A --streaming corpus is read as it goes."""
    import datasets

    if args.streaming and not args.validation_file and args.validation_split_percentage > 0:
        flags.fail("--streaming cannot sample a validation split: give --validation_file or "
                   "--validation_split_percentage 0")
    key = cache_key(args, tokenizer, seq, vocab_size)
    # --cache_dir is the datasets library's cache here too (the raw text of a --streaming read): a folder of it,
    # named as it always was, so that earlier runs' caches still hit
    root = Path(args.cache_dir) / "pretrain_mlm" if args.cache_dir else files.cache_root(None, "pretrain_mlm")
    scratch = root / f"building-{key}"  # map's files while building

    def write(parts, folder):
        for name, ds in parts.items():
            ds.save_to_disk(str(folder / name))

    read = lambda folder: {p.name: datasets.load_from_disk(str(p)) for p in folder.iterdir() if p.is_dir()}
    build = lambda: build_corpus(args, tokenizer, seq, vocab_size, scratch)
    try:
        if args.streaming:
            train = prepare(load_text(args, args.train_file, True), "train", args, tokenizer, seq, vocab_size, scratch,
                            streaming=True)
            evaluation = prepare(load_text(args, [args.validation_file], False), "eval", args, tokenizer, seq,
                                 vocab_size, scratch) if args.validation_file else None
            train = train.shuffle(seed=args.seed, buffer_size=10_000)  # core's set_epoch reshuffles it each pass
            # a stream has no length for core.limit: its first --max_train_samples, read as it goes
            train = train.take(args.max_train_samples) if args.max_train_samples > 0 else train
        else:
            parts = files.cached(root / key, build, write, read, accelerator, what="token blocks")
            train, evaluation = core.limit(parts["train"], args.max_train_samples), parts.get("eval")
    finally:  # what is kept is in the cache (or, streamed, in memory)
        if accelerator.is_main_process and not args.streaming:
            shutil.rmtree(scratch, ignore_errors=True)
    return train, evaluation if evaluation is None else core.limit(evaluation, args.max_eval_samples)


# --- masking
def mask_tokens(input_ids, special, word_start, mask_id, vocab_size, probability, generator=None):
    """BERT masking. Chooses each maskable position with `probability` (whole words when word_start is given:
    a word's draw is its first token's), at least one per row; labels are -100 elsewhere. Of the chosen, 80%
    become mask_id, 10% a random id below vocab_size, 10% stay (and are still predicted)."""
    draw = lambda: torch.rand(input_ids.shape, generator=generator, device=input_ids.device)
    u = draw()
    if word_start is not None:
        word = word_start.long().cumsum(1)  # word number of each token, from 1
        first = torch.zeros(u.shape[0], u.shape[1] + 1, device=u.device).scatter_add_(1, word, u * word_start)
        u = first.gather(1, word)
    maskable = ~special
    chosen = (u < probability) & maskable
    empty = ~chosen.any(1) & maskable.any(1)  # as BERT: a row predicts at least one token (no NaN loss)
    if empty.any():
        lowest = torch.where(maskable, u, 2.0).min(1, keepdim=True).values
        chosen |= empty[:, None] & maskable & (u == lowest)
    labels = torch.where(chosen, input_ids, -100)
    r = draw()
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator, device=input_ids.device)
    input_ids = torch.where(chosen & (r < 0.8), mask_id, input_ids)
    input_ids = torch.where(chosen & (r >= 0.8) & (r < 0.9), random_ids, input_ids)
    return input_ids, labels


def collate(features, pad_id):
    """Pads a batch (a packed one needs none): input_ids with pad_id, labels with -100."""
    width = max(len(f["input_ids"]) for f in features)
    batch = {key: torch.tensor([f[key] + [fill] * (width - len(f[key])) for f in features])
             for key, fill in (("input_ids", pad_id), ("labels", -100), ("word_start", 1)) if key in features[0]}
    batch["attention_mask"] = torch.tensor([[1] * len(f["input_ids"]) + [0] * (width - len(f["input_ids"]))
                                            for f in features])
    return batch


def masked_only(model):
    """Hooks on a *ForMaskedLM so that model(..., labels=labels) projects to the vocabulary only where labels
    are set (the ~15% masked positions): the other logits are never used, and that projection (hidden x
    vocabulary per token) is the largest matrix product of a small model. Hooks, not a wrapper: the call still goes
    through model(...), so DDP/FSDP hold; nothing is saved with the model, so a saved one loads as a plain
    *ForMaskedLM. With labels, the output's fields keep their meaning, computed on the labelled positions only:
    loss, the mean cross-entropy over the labelled tokens; logits, [labelled positions, vocabulary] in the order of
    (labels != -100).nonzero(); and two fields more, per example, which predict() gathers (keys=SUMS) instead of
    seq x vocabulary logits, so that perplexity is over tokens, not batches: masked_nll, the summed cross-entropy,
    and masked_tokens, the labelled tokens. Without labels the model is untouched."""
    state = {}

    def take_labels(module, args, kwargs):  # the model itself must not compute a loss on the full logits
        state["labels"] = kwargs.pop("labels", None)
        return args, kwargs

    def select(module, args):  # input of the output embeddings: hidden states [batch, seq, hidden]
        labels = state.get("labels")
        if labels is not None and args[0].shape[:-1] == labels.shape:
            rows = (labels != -100).flatten().nonzero().squeeze(1)
            state["selected"] = len(rows)
            # rounded up to a multiple of 64 rows (repeats of the first, dropped in loss()): a matrix product of a
            # new shape every step would fill oneDNN's primitive cache (+0.9 GB in 60 bf16 steps of RoBERTa-small)
            rows = torch.cat([rows, rows[:1].expand(min(-len(rows) % 64, labels.numel() - len(rows)))])
            return (args[0].flatten(0, -2)[rows], *args[1:])

    def loss(module, args, kwargs, output):
        labels = state.pop("labels", None)
        if labels is None:
            return output
        keep = labels != -100
        logits = output.logits[:state.pop("selected")] if "selected" in state else output.logits[keep]
        nll = F.cross_entropy(logits.float(), labels[keep], reduction="none")
        output["loss"], output["logits"] = nll.mean(), logits
        rows = keep.nonzero()[:, 0]
        output["masked_nll"] = torch.zeros(labels.shape[0], device=nll.device).index_add_(0, rows, nll.detach())
        output["masked_tokens"] = keep.sum(1).float()
        return output

    model.register_forward_pre_hook(take_labels, with_kwargs=True)
    model.get_output_embeddings().register_forward_pre_hook(select)
    model.register_forward_hook(loss, with_kwargs=True)
    return model


SUMS = ("masked_nll", "masked_tokens")  # the per-example fields of masked_only: predict(keys=SUMS)


def perplexity(arrays):
    """exp(mean cross-entropy over the masked tokens) from predict()'s arrays of SUMS."""
    nll, count = arrays["masked_nll"].astype(np.float64).sum(), arrays["masked_tokens"].sum()
    return float(np.exp(min(nll / count, 700)))


def write_eval(accelerator, args, results):
    """The evaluation of best/: printed, and written to output_dir/eval_results.json by the main process."""
    accelerator.print(f"eval: {json.dumps(results)}")
    if accelerator.is_main_process:
        files.write_json(Path(args.output_dir) / "eval_results.json", results)
    return results
