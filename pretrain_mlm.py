"""Masked-language-model pretraining: train a tokenizer, pretrain BERT/RoBERTa from scratch, or continue
pretraining a checkpoint, on plain text files (one text per line; .jsonl: the "text" field).

    accelerate launch pretrain_mlm.py --train_file data.train.txt --validation_file data.valid.txt \
        --train_tokenizer bpe --vocab_size 52000 --model_type roberta --config_name configs/roberta-base.json \
        --output_dir out/roberta-scratch
    accelerate launch pretrain_mlm.py --model_name_or_path roberta-base --train_file wiki.train.raw \
        --validation_file wiki.valid.raw --output_dir out/roberta-wiki          # continue pretraining

Lines are packed into --max_seq_length blocks (no padding) unless --line_by_line. Masking is BERT's: 15% of
the tokens, never special ones, 80% [MASK] / 10% random / 10% kept; --whole_word_mask takes whole words from
the tokenizer's word ids (WordPiece, BPE and SentencePiece alike). Training masks are drawn at step time from
the global RNG, which last/ saves, so a resumed run masks exactly as an uninterrupted one; evaluation masks
are fixed once from --seed, so perplexity is reproducible. --train_tokenizer writes output_dir/tokenizer/
(--tokenizer_only stops there).
"""
import argparse
import hashlib
import io
import json
import os
import random
import shutil
import time
from itertools import islice
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (CONFIG_MAPPING, AutoModelForMaskedLM, BertTokenizer, PreTrainedTokenizerFast,
                          RobertaTokenizer)
from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

import core
import loading

# position ids start after padding_idx in these models: max_position_embeddings = max_seq_length + pad id + 1
OFFSET_POSITIONS = {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "roberta-prelayernorm", "data2vec-text",
                    "longformer", "ibert", "mpnet", "luke", "xmod", "esm"}
SPECIALS = {"bpe": ["<s>", "<pad>", "</s>", "<unk>", "<mask>"],  # RoBERTa's ids
            "wordpiece": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],  # BERT's
            "unigram": ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]}  # ALBERT's names
SPECIALS["sentencepiece"] = SPECIALS["unigram"]


def add_data_args(parser, title, streaming=True):
    """The corpus flags load_corpus() reads; distill.py shares them."""
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
        core.fail(f"--max_seq_length {args.max_seq_length}: expected a block length >= 3 ([CLS], a token, [SEP])")
    if not 0 <= args.validation_split_percentage < 100:
        core.fail(f"--validation_split_percentage {args.validation_split_percentage}: expected a share of the "
                  "training lines in [0, 100)")
    if args.preprocessing_num_workers is not None and args.preprocessing_num_workers < 1:
        core.fail(f"--preprocessing_num_workers {args.preprocessing_num_workers}: expected a number of processes >= 1")
    streaming = getattr(args, "streaming", False)
    for path in args.train_file:
        check_text(path, head_only=streaming)
    if args.validation_file:
        check_text(args.validation_file)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.error = core.fail  # argparse's own errors too: one line, no usage block
    core.add_args(parser)
    parser.set_defaults(output_dir="out/mlm")
    add_data_args(parser, "data")
    m = parser.add_argument_group("masking and model")
    m.add_argument("--mlm_probability", type=float, default=0.15, help="share of tokens to predict (default: 0.15)")
    m.add_argument("--whole_word_mask", action="store_true", help="mask all tokens of a chosen word (default: off)")
    m.add_argument("--model_type", default=None, help="new model: roberta, bert, ... (default: from --config_name)")
    m.add_argument("--config_name", default=None, help="new model: config JSON or folder (default: type defaults)")
    m.add_argument("--config_overrides", default=None, help='"num_hidden_layers=6,hidden_size=512" (default: none)')
    m.add_argument("--tokenizer_name", default=None, help="tokenizer folder (default: --model_name_or_path's)")
    t = parser.add_argument_group("tokenizer training")
    t.add_argument("--train_tokenizer", choices=sorted(SPECIALS), default=None,
                   help="train one on --train_file: bpe (RoBERTa), wordpiece (BERT), unigram, sentencepiece "
                        "(default: off)")
    t.add_argument("--vocab_size", type=int, default=32000, help="(default: 32000)")
    t.add_argument("--min_frequency", type=int, default=2, help="bpe/wordpiece: rarest pair merged (default: 2)")
    t.add_argument("--input_sentence_size", type=int, default=0,
                   help="train on a seeded sample of N lines (default: 0 = all)")
    t.add_argument("--lowercase", action="store_true", help="wordpiece: uncased, accents stripped (default: cased)")
    t.add_argument("--tokenizer_only", action="store_true", help="stop after training the tokenizer (default: off)")
    args = parser.parse_args(argv)
    if not 0 < args.mlm_probability < 1:
        core.fail(f"--mlm_probability {args.mlm_probability}: expected a share of the tokens in (0, 1)")
    for flag, low in (("vocab_size", 1), ("min_frequency", 0), ("input_sentence_size", 0)):
        if getattr(args, flag) < low:
            core.fail(f"--{flag} {getattr(args, flag)}: expected a whole number >= {low}")
    least = len(SPECIALS.get(args.train_tokenizer, [])) + (256 if args.train_tokenizer == "bpe" else 0)
    if args.train_tokenizer and args.vocab_size <= least:  # the rest is known once the corpus is read
        core.fail(f"--vocab_size {args.vocab_size} leaves no room beside the {len(SPECIALS[args.train_tokenizer])} "
                  f"special tokens{' and the 256 bytes of byte-level BPE' if args.train_tokenizer == 'bpe' else ''}; "
                  f"expected more than {least}")
    if args.model_name_or_path and (args.train_tokenizer or args.config_name or args.model_type):
        core.fail("--model_name_or_path continues pretraining with its own config and tokenizer: "
                  "leave out --train_tokenizer, --config_name and --model_type")
    if not args.model_name_or_path and not args.tokenizer_only:
        if not (args.model_type or args.config_name):
            core.fail("a new model needs --model_type or --config_name (or give --model_name_or_path)")
        if not (args.train_tokenizer or args.tokenizer_name):
            core.fail("a new model needs --train_tokenizer or --tokenizer_name")
    if args.tokenizer_only and not args.train_tokenizer:
        core.fail("--tokenizer_only needs --train_tokenizer")
    return args


# --- tokenizer training
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


def train_tokenizer(args, lines):
    kind, size, specials = args.train_tokenizer, args.vocab_size, SPECIALS[args.train_tokenizer]
    if kind == "bpe":  # byte-level, as RoBERTa: no unknown token
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.train_from_iterator(lines, trainers.BpeTrainer(
            vocab_size=size, min_frequency=args.min_frequency, special_tokens=specials, show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
        bpe = json.loads(tok.to_str())["model"]
        # lstrip: "a <mask>" hides the word with its space, as in pretraining (roberta-base's setting)
        return RobertaTokenizer(vocab=bpe["vocab"], merges=[tuple(m) for m in bpe["merges"]],
                                mask_token=AddedToken("<mask>", lstrip=True, special=True, normalized=False))
    if kind == "wordpiece":
        # tokenizers' WordPieceTrainer breaks frequency ties differently in every process, its BPE trainer without
        # a subword prefix does not: learn BPE on words that carry a start mark, then marked pieces start a word
        # and the others continue one (##). The mark is a control character, which BertNormalizer deletes.
        mark = "\x01"
        tok = Tokenizer(models.BPE())
        tok.normalizer = normalizers.BertNormalizer(lowercase=args.lowercase)  # what BertTokenizer does
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.BertPreTokenizer(), pre_tokenizers.Metaspace(mark, prepend_scheme="always", split=False)])
        tok.train_from_iterator(lines, trainers.BpeTrainer(vocab_size=size, min_frequency=args.min_frequency,
                                                           show_progress=False))
        vocab = json.loads(tok.to_str())["model"]["vocab"]
        pieces = sorted(vocab, key=vocab.get)  # the alphabet, then pieces in the order they were learned
        chars = sorted({c for p in pieces for c in p} - {mark})
        words = specials + chars + ["##" + c for c in chars]
        if len(words) > size:  # every character alone and as ##: a smaller vocabulary cannot spell the corpus
            core.fail(f"--vocab_size {size} is below the {len(words)} tokens a wordpiece tokenizer of this corpus needs "
                      f"({len(specials)} special tokens and {len(chars)} characters, each alone and as ##); expected "
                      f"at least {len(words)}")
        words += [p[1:] if p[0] == mark else "##" + p for p in pieces if len(p.lstrip(mark)) > 1]
        words = list(dict.fromkeys(words))[:max(size, len(specials) + 2 * len(chars))]
        return BertTokenizer(vocab={w: i for i, w in enumerate(words)}, do_lower_case=args.lowercase)
    if kind == "unigram":
        tok = Tokenizer(models.Unigram())
        tok.normalizer, tok.pre_tokenizer = normalizers.NFKC(), pre_tokenizers.Metaspace()
        try:
            tok.train_from_iterator(lines, trainers.UnigramTrainer(vocab_size=size, special_tokens=specials,
                                                                   unk_token="<unk>", show_progress=False))
        except Exception as e:  # noqa: BLE001 (tokenizers raises a plain Exception: "not large enough to contain ...")
            core.fail(f"--vocab_size {size}: the unigram trainer refuses it ({e}); expected room for every character "
                      f"of the corpus and the {len(specials)} special tokens")
    else:  # the sentencepiece library, as colorfulscoop's bert-base-ja did; rebuilt with its own normalisation table so that
        # the saved tokenizer gives the library's ids (AlbertTokenizer/DebertaV2Tokenizer normalise differently)
        import sentencepiece as spm
        from sentencepiece import sentencepiece_model_pb2

        proto = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(lines), model_writer=proto, vocab_size=size, model_type="unigram",
                character_coverage=1.0, pad_id=0, unk_id=1, bos_id=-1, eos_id=-1, control_symbols=specials[2:],
                max_sentence_length=1 << 16, hard_vocab_limit=False, minloglevel=2)
        except RuntimeError as e:
            core.fail(f"--vocab_size {size}: sentencepiece refuses it ({str(e).splitlines()[0]})")
        sp = spm.SentencePieceProcessor(model_proto=proto.getvalue())
        charsmap = sentencepiece_model_pb2.ModelProto.FromString(proto.getvalue()).normalizer_spec.precompiled_charsmap
        tok = Tokenizer(models.Unigram([(sp.id_to_piece(i), sp.get_score(i)) for i in range(len(sp))], unk_id=1))
        tok.normalizer = normalizers.Sequence([normalizers.Precompiled(charsmap),
                                               normalizers.Replace(Regex(" {2,}"), " ")])
        args.spm_model = proto.getvalue()
    tok.pre_tokenizer, tok.decoder = pre_tokenizers.Metaspace(), decoders.Metaspace()
    pair = 0 if args.model_type in OFFSET_POSITIONS else 1  # RoBERTa-like models have one token type
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair=f"[CLS] $A [SEP] $B:{pair} [SEP]:{pair}",
        special_tokens=[(t, tok.token_to_id(t)) for t in ("[CLS]", "[SEP]")])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")


def save_tokenizer(args, folder):
    """Trains the tokenizer and saves it, with vocab.txt (wordpiece) or spiece.model (sentencepiece) beside it
    for tools that read those; prints its tokens per word on the first 10,000 lines."""
    start = time.perf_counter()
    tokenizer = train_tokenizer(args, read_lines(args.train_file, args.input_sentence_size, args.seed))
    if len(tokenizer) > args.vocab_size:  # a trainer that went over rather than fail
        core.fail(f"--vocab_size {args.vocab_size} is below the {len(tokenizer)} tokens a {args.train_tokenizer} "
                  "tokenizer of this corpus needs (its alphabet and special tokens)")
    tokenizer.model_max_length = args.max_seq_length or 512
    shutil.rmtree(folder, ignore_errors=True)  # a killed run's
    tokenizer.save_pretrained(folder)
    if args.train_tokenizer == "wordpiece":
        (folder / "vocab.txt").write_text("\n".join(tokenizer.convert_ids_to_tokens(list(range(len(tokenizer)))))
                                          + "\n", encoding="utf-8")
    if args.train_tokenizer == "sentencepiece":
        (folder / "spiece.model").write_bytes(args.spm_model)
    sample = list(islice(read_lines(args.train_file), 10_000))
    tokens = sum(map(len, tokenizer(sample, add_special_tokens=False)["input_ids"]))
    words = max(1, sum(len(s.split()) for s in sample))
    print(f"tokenizer: {args.train_tokenizer}, {len(tokenizer)} tokens in {time.perf_counter() - start:.0f} s, "
          f"{tokens / words:.3f} tokens per word on {len(sample)} lines -> {folder}")


def resume_folder(args):
    """The last/ a resume continues from (as core.train finds it), or None."""
    if not args.resume_from_checkpoint:
        return None
    auto = args.resume_from_checkpoint == "auto"
    folder = Path(args.output_dir) / "last" if auto else Path(args.resume_from_checkpoint)
    folder = folder / "last" if (folder / "last" / "state").is_dir() else folder
    return folder if (folder / "state").is_dir() else None


def swap_in(staged, final):
    """staged/ becomes final/, replacing it (a kill between the two steps leaves staged/, which a resume reads)."""
    shutil.rmtree(final, ignore_errors=True)
    os.replace(staged, final)


# --- model config
def read_config(args):
    """(values, model_type) of a new model's config: --config_name's JSON checked against --model_type."""
    values, model_type = {}, args.model_type
    if args.config_name:
        path = Path(args.config_name)
        path = path / "config.json" if path.is_dir() else path
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            core.fail(f"{path}: cannot read a config JSON ({e})")
        if not isinstance(values, dict):
            core.fail(f"{path}: expected a config JSON object, found {type(values).__name__}")
        found = values.pop("model_type", None)
        if model_type and found and found != model_type:
            core.fail(f"{path}: model_type is {found!r} but --model_type is {model_type!r}")
        model_type = model_type or found
    if model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        core.fail(f"model type {model_type!r} has no masked-LM class; try roberta, bert, distilbert, electra, ...")
    return values, model_type


def new_config(args, values, model_type, tokenizer, seq):
    """The config with vocab size, special token ids and positions set from the tokenizer and block length
    (tokenizer None: only --config_name's values and --config_overrides, checked before anything is written)."""
    try:
        config = CONFIG_MAPPING[model_type](**values)
    except (TypeError, ValueError) as e:
        core.fail(f"{args.config_name}: not a {model_type} config ({e})")
    explicit = set(values)
    if args.config_overrides:
        try:
            config.update_from_string(args.config_overrides)
        except ValueError as e:
            core.fail(f"--config_overrides {args.config_overrides!r}: {e}; expected key=value pairs of the config, "
                      "comma-separated")
        explicit |= {kv.split("=")[0] for kv in args.config_overrides.split(",")}
    if tokenizer is None:
        return config
    config.vocab_size = len(tokenizer)
    for name in ("pad", "bos", "eos", "sep", "cls"):
        if hasattr(config, f"{name}_token_id") and getattr(tokenizer, f"{name}_token_id", None) is not None:
            setattr(config, f"{name}_token_id", getattr(tokenizer, f"{name}_token_id"))
    need = seq + (tokenizer.pad_token_id + 1 if model_type in OFFSET_POSITIONS else 0)
    if "max_position_embeddings" in explicit and config.max_position_embeddings < need:
        core.fail(f"max_position_embeddings {config.max_position_embeddings} < {need} needed for "
                  f"--max_seq_length {seq}")
    if "max_position_embeddings" not in explicit:
        config.max_position_embeddings = need
    return config


# --- data
def check_text(path, head_only=False):
    """A UTF-8 text file with at least one non-blank line; .jsonl: every line an object with a "text" string. Reads
    the whole file (head_only, for a stream: its first 64 MB), so a bad line stops here with its number."""
    jsonl = str(path).endswith(".jsonl")
    what = 'one JSON object per line with a "text" string' if jsonl else "UTF-8 text, one text per line"
    if Path(path).is_dir():
        core.fail(f"{path}: a folder; expected a file of {what}")
    found = False
    try:
        with open(path, "rb") as f:
            for number, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    core.fail(f"{path}:{number}: not UTF-8 text (byte 0x{raw[e.start]:02x}: binary data or another "
                              f"encoding); expected {what}")
                if "\0" in line:
                    core.fail(f"{path}:{number}: a NUL byte (binary data); expected {what}")
                if jsonl and line.strip():
                    try:
                        record = json.loads(line)
                    except ValueError as e:
                        core.fail(f"{path}:{number}: not valid JSON ({getattr(e, 'msg', e)}); expected {what}")
                    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                        core.fail(f"{path}:{number}: no \"text\" string; expected {what}")
                found = found or bool(line.strip())
                if head_only and found and f.tell() > 64 << 20:
                    break
    except FileNotFoundError:
        core.fail(f"{path}: no such file")
    except OSError as e:
        core.fail(f"{path}: cannot read ({e.strerror or e}); expected {what}")
    if not found:
        core.fail(f"{path}: no text (empty, or blank lines only); expected {what}")


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


def load_corpus(args, tokenizer, seq, vocab_size, accelerator):
    """(train, eval) datasets of token blocks (or lines); eval rows hold fixed masked input_ids and labels.
    Tokenized data is cached (core.cached: verified on every load, rebuilt when damaged) under --cache_dir, keyed by
    the files, tokenizer and settings; a hit never reads the text again. A --streaming corpus is read as it goes."""
    import datasets

    # a build reads the text afresh: the datasets library's own cache of it is never trusted
    load = lambda files, streaming: datasets.load_dataset(
        "json" if files[0].endswith(".jsonl") else "text", data_files=files, split="train", streaming=streaming,
        cache_dir=args.cache_dir, **({} if streaming else {"download_mode": "force_redownload"}))
    if args.streaming and not args.validation_file and args.validation_split_percentage > 0:
        core.fail("--streaming cannot sample a validation split: give --validation_file or "
                  "--validation_split_percentage 0")
    files = [*args.train_file, *([args.validation_file] if args.validation_file else [])]
    key = hashlib.sha256(json.dumps([
        [(str(Path(f).resolve()), os.path.getsize(f), os.path.getmtime(f)) for f in files],
        tokenizer.backend_tokenizer.to_str(), seq, vocab_size, args.line_by_line, args.whole_word_mask,
        args.mlm_probability, args.validation_split_percentage, args.seed, 2]).encode()).hexdigest()[:16]
    cls = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    sep = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    masks = dict(seed=args.seed, specials=torch.tensor(tokenizer.all_special_ids), mask_id=tokenizer.mask_token_id,
                 vocab_size=vocab_size, probability=args.mlm_probability)
    # --cache_dir is the datasets library's cache here too (the raw text of a --streaming read): a folder of it
    root = Path(args.cache_dir) / "pretrain_mlm" if args.cache_dir else core.cache_root(None, "pretrain_mlm")
    scratch = root / f"building-{key}"  # map's files while building

    def prepare(ds, name, streaming=False):
        opts = lambda step: {} if streaming else dict(  # on disk, not in memory: a corpus may be larger than RAM
            num_proc=args.preprocessing_num_workers, cache_file_name=str(scratch / f"{name}-{step}.arrow"),
            load_from_cache_file=False, desc=f"{step} {name}")
        ds = ds.map(encode, batched=True, remove_columns=ds.column_names or ["text"], **opts("tokenize"),
                    fn_kwargs=dict(tokenizer=tokenizer, seq=seq, line_by_line=args.line_by_line,
                                   whole_word=args.whole_word_mask))
        if not args.line_by_line:
            lines = ds
            ds = ds.map(pack, batched=True, batch_size=10_000, fn_kwargs=dict(seq=seq, cls=cls, sep=sep),
                        **opts("pack"))
            if not streaming and len(ds) == 0:
                source = args.validation_file if name == "eval" else None
                source = source or " ".join(args.train_file) + (" (validation split)" if name == "eval" else "")
                core.fail(f"{source}: {sum(map(len, lines['input_ids']))} tokens, fewer than one block of "
                          f"--max_seq_length {seq}; lower it or use --line_by_line")
        if name == "eval":
            ds = ds.map(fixed_masks, batched=True, with_indices=True, remove_columns=ds.column_names, fn_kwargs=masks,
                        **opts("mask"))
        return ds

    def build():
        train = load(args.train_file, False)
        evaluation = load([args.validation_file], False) if args.validation_file else None
        if evaluation is None and args.validation_split_percentage > 0:
            try:  # a seeded random sample of lines, not the first ones
                split = train.train_test_split(test_size=args.validation_split_percentage / 100, seed=args.seed)
            except ValueError as e:
                core.fail(f"--validation_split_percentage {args.validation_split_percentage}: {e}")
            train, evaluation = split["train"], split["test"]
        return {"train": prepare(train, "train"), **({"eval": prepare(evaluation, "eval")} if evaluation else {})}

    def write(parts, folder):
        for name, ds in parts.items():
            ds.save_to_disk(str(folder / name))

    read = lambda folder: {p.name: datasets.load_from_disk(str(p)) for p in folder.iterdir() if p.is_dir()}
    try:
        if args.streaming:
            train = prepare(load(args.train_file, True), "train", streaming=True)
            evaluation = prepare(load([args.validation_file], False), "eval") if args.validation_file else None
            train = train.shuffle(seed=args.seed, buffer_size=10_000)  # core's set_epoch reshuffles it each pass
            train = train.take(args.max_train_samples) if args.max_train_samples > 0 else train
        else:
            parts = core.cached(root / key, build, write, read, accelerator, what="token blocks")
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
    vocabulary per token) is the largest matrix product of a small model. output.loss stays the mean
    cross-entropy over the masked tokens. In eval mode output.logits becomes (summed loss, predicted tokens)
    per example: predict() gathers two numbers per example instead of seq x vocab, and perplexity is over
    tokens, not batches. Hooks, not a wrapper: the call still goes through model(...), so DDP/FSDP hold."""
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
        output["loss"] = nll.mean()
        if not module.training:
            rows = keep.nonzero()[:, 0]
            summed = torch.zeros(labels.shape[0], device=nll.device).index_add_(0, rows, nll)
            output["logits"] = torch.stack([summed, keep.sum(1).float()], 1)
        return output

    model.register_forward_pre_hook(take_labels, with_kwargs=True)
    model.get_output_embeddings().register_forward_pre_hook(select)
    model.register_forward_hook(loss, with_kwargs=True)
    return model


def perplexity(arrays):
    nll, count = arrays["logits"][:, 0].astype(np.float64).sum(), arrays["logits"][:, 1].sum()
    return float(np.exp(min(nll / count, 700)))


def model_and_data(args, accelerator, tokenizer, values, model_type):
    """The model (a new one from its config, or a checkpoint to continue) and the tokenized (train, eval) data."""
    if args.model_name_or_path:
        try:
            model = AutoModelForMaskedLM.from_pretrained(args.model_name_or_path)
        except (OSError, ValueError) as e:
            core.fail(f"--model_name_or_path {args.model_name_or_path}: cannot load "
                      f"({(str(e).splitlines() or [type(e).__name__])[0]})")
        offset = tokenizer.pad_token_id + 1 if model.config.model_type in OFFSET_POSITIONS else 0
        seq = args.max_seq_length or min(512, model.config.max_position_embeddings - offset)
        if seq + offset > model.config.max_position_embeddings or len(tokenizer) > model.config.vocab_size:
            core.fail(f"{args.model_name_or_path} takes {model.config.max_position_embeddings - offset} tokens and "
                      f"{model.config.vocab_size} ids; asked for {seq} tokens with {len(tokenizer)} ids")
    else:
        seq = args.max_seq_length or 512
        config = new_config(args, values, model_type, tokenizer, seq)
        try:
            model = AutoModelForMaskedLM.from_config(config)
        except (TypeError, ValueError) as e:
            core.fail(f"{args.config_name or '--model_type ' + model_type}"
                      f"{' with --config_overrides ' + args.config_overrides if args.config_overrides else ''}: "
                      f"cannot build the model ({(str(e).splitlines() or [type(e).__name__])[0]})")
        offset = tokenizer.pad_token_id + 1 if model_type in OFFSET_POSITIONS else 0
        tokenizer.model_max_length = config.max_position_embeddings - offset
    vocab_size = model.config.vocab_size
    accelerator.print(f"model: {type(model).__name__}, {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M "
                      f"parameters, vocab {vocab_size}, blocks of {seq}")

    # --- data
    train_dataset, eval_dataset = load_corpus(args, tokenizer, seq, vocab_size, accelerator)
    return model, train_dataset, eval_dataset


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.output_dir)
    # --- inputs checked before anything is written or loaded at length
    check_data(args)
    values, model_type = read_config(args) if not args.model_name_or_path and not args.tokenizer_only else ({}, None)
    args.model_type = args.model_type or model_type
    if model_type:
        new_config(args, values, model_type, None, None)  # the config's values and --config_overrides
    # a trained tokenizer is staged in tokenizer.new and moved to tokenizer/ only when training has saved best/ and
    # last/ (which hold it too): a run that fails early leaves an earlier run's tokenizer/ as it was. A resumed run
    # takes its checkpoint's own tokenizer (or, killed before its first checkpoint, the staged one)
    staged, final = out / "tokenizer.new", out / "tokenizer"
    kept = None
    if args.train_tokenizer and args.resume_from_checkpoint and not args.tokenizer_only:
        kept = next((f for f in (resume_folder(args), staged, final) if f and (f / "tokenizer_config.json").is_file()),
                    None)
    if args.train_tokenizer and not kept:  # never over an earlier tokenizer unless asked
        core.refuse_existing([final], args.overwrite_output_dir)
    tokenizer = None
    if args.model_name_or_path:
        checkpoint = loading.load_config(args.model_name_or_path)
        if args.max_seq_length:
            core.check_max_seq_length(args.max_seq_length, checkpoint)
    if not args.train_tokenizer:
        flag = "--tokenizer_name" if args.tokenizer_name else "--model_name_or_path"
        tokenizer = loading.load_tokenizer(args.tokenizer_name or args.model_name_or_path, flag, masked_lm=True)
    accelerator = core.setup(args, training=not args.tokenizer_only)

    # --- tokenizer: trained here (kept when resuming), or the model's / --tokenizer_name's
    if args.train_tokenizer and not kept:
        if accelerator.is_main_process:
            save_tokenizer(args, staged)
            if args.tokenizer_only:
                swap_in(staged, final)
        accelerator.wait_for_everyone()
    if args.tokenizer_only:
        return {}
    if args.train_tokenizer:
        tokenizer = loading.load_tokenizer(kept or staged, "--train_tokenizer", masked_lm=True)

    try:
        model, train_dataset, eval_dataset = model_and_data(args, accelerator, tokenizer, values, model_type)
    except SystemExit:  # nothing was trained with a tokenizer trained just now: no resume needs it
        if args.train_tokenizer and not kept and accelerator.is_main_process:
            shutil.rmtree(staged, ignore_errors=True)
        raise
    vocab_size = model.config.vocab_size
    collate_fn = lambda features: collate(features, tokenizer.pad_token_id)
    specials = torch.tensor(tokenizer.all_special_ids, device=accelerator.device)
    clock = {"seconds": 0.0, "tokens": 0, "real": 0, "positions": 0, "last": None}

    def compute_loss(model, batch):  # masks drawn here, at step time: the loader's prefetch cannot shift them
        batch = dict(batch)
        starts = batch.pop("word_start", None)
        special = torch.isin(batch["input_ids"], specials) | (batch["attention_mask"] == 0)
        batch["input_ids"], batch["labels"] = mask_tokens(batch["input_ids"], special, starts, tokenizer.mask_token_id,
                                                          vocab_size, args.mlm_probability)
        loss = model(**batch).loss
        real, now = batch["attention_mask"].sum(), time.perf_counter()
        if clock["last"] is not None:  # throughput: step to step, leaving out evaluation and saving (see evaluate)
            clock["seconds"] += now - clock["last"]
            clock["tokens"] += clock["pending"]
        clock.update(last=now, pending=real, real=clock["real"] + real,
                     positions=clock["positions"] + batch["attention_mask"].numel())
        return loss, {"padding_share": 1 - real / batch["attention_mask"].numel()}

    def evaluate(arrays):  # timings stay out of the metrics: a resumed run must log what an uninterrupted one does
        clock["last"] = None
        return {"perplexity": perplexity(arrays)}

    masked_only(model)

    # --- train
    start = time.perf_counter()
    best = core.train(args, accelerator, model, tokenizer, train_dataset, eval_dataset, collate_fn, evaluate=evaluate,
                      compute_loss=compute_loss)
    if args.train_tokenizer and accelerator.is_main_process and staged.is_dir():
        # best/ and last/ are saved: this run's tokenizer takes the old one's place (a staged one that is not this
        # run's was left by a run that failed before its first checkpoint)
        if kept in (None, staged) or \
                loading.load_tokenizer(staged, "--train_tokenizer", masked_lm=True).get_vocab() == tokenizer.get_vocab():
            swap_in(staged, final)
        else:
            shutil.rmtree(staged)
    total = lambda x: accelerator.reduce(torch.as_tensor(x, device=accelerator.device).float(), "sum").item()
    real, positions = total(clock["real"]), total(clock["positions"])
    results = {"train_tokens": int(real), "train_seconds": time.perf_counter() - start,  # this run's part
               "tokens_per_second": total(clock["tokens"]) / max(clock["seconds"], 1e-9),
               "padding_share": 1 - real / max(positions, 1)}
    accelerator.print(f"trained on {results['train_tokens']} tokens: {results['tokens_per_second']:.0f} tokens/s "
                      f"(evaluation and saving not counted), padding {results['padding_share']:.1%}")
    accelerator.print(f"best: {json.dumps(best)}")

    # --- evaluate best/ again: it must load as a plain *ForMaskedLM and give the numbers it was chosen for
    if eval_dataset is not None:
        model = masked_only(AutoModelForMaskedLM.from_pretrained(out / "best"))
        loader = core.eval_loader(accelerator, eval_dataset, collate_fn, args)
        loss, arrays = core.predict(accelerator, accelerator.prepare(model), loader, desc="[best] [VALID]")
        evaluation = {"loss": loss, "perplexity": perplexity(arrays),
                      "masked_tokens": int(arrays["logits"][:, 1].sum())}
        accelerator.print(f"eval: {json.dumps(evaluation)}")
        if accelerator.is_main_process:
            core.write_json(out / "eval_results.json", evaluation)
    if accelerator.is_main_process:
        core.write_json(out / "train_results.json", results)
    return {**best, **results}


if __name__ == "__main__":
    main()
