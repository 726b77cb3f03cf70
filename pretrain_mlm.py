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

Owns: this script's flags, tokenizer training, a new model's config, and the run (train, then best/ evaluated
again). The corpus, masking and perplexity are mlm.py's (shared with distill.py). Must not know any other task
script.
"""
import argparse
import io
import json
import os
import shutil
import time
from itertools import islice
from pathlib import Path

import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (CONFIG_MAPPING, AutoModelForMaskedLM, BertTokenizer, PreTrainedTokenizerFast,
                          RobertaTokenizer)
from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

import core
import files
import flags
import loading
from mlm import (OFFSET_POSITIONS, SUMS, add_data_args, check_data, collate, load_corpus, mask_tokens, masked_only,
                 perplexity, read_lines, write_eval)

SPECIALS = {"bpe": ["<s>", "<pad>", "</s>", "<unk>", "<mask>"],  # RoBERTa's ids
            "wordpiece": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],  # BERT's
            "unigram": ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]}  # ALBERT's names
SPECIALS["sentencepiece"] = SPECIALS["unigram"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.error = flags.fail  # argparse's own errors too: one line, no usage block
    flags.add_args(parser)
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
        flags.fail(f"--mlm_probability {args.mlm_probability}: expected a share of the tokens in (0, 1)")
    for flag, low in (("vocab_size", 1), ("min_frequency", 0), ("input_sentence_size", 0)):
        if getattr(args, flag) < low:
            flags.fail(f"--{flag} {getattr(args, flag)}: expected a whole number >= {low}")
    least = len(SPECIALS.get(args.train_tokenizer, [])) + (256 if args.train_tokenizer == "bpe" else 0)
    if args.train_tokenizer and args.vocab_size <= least:  # the rest is known once the corpus is read
        flags.fail(f"--vocab_size {args.vocab_size} leaves no room beside the {len(SPECIALS[args.train_tokenizer])} "
                   f"special tokens{' and the 256 bytes of byte-level BPE' if args.train_tokenizer == 'bpe' else ''}; "
                   f"expected more than {least}")
    if args.model_name_or_path and (args.train_tokenizer or args.config_name or args.model_type):
        flags.fail("--model_name_or_path continues pretraining with its own config and tokenizer: "
                   "leave out --train_tokenizer, --config_name and --model_type")
    if not args.model_name_or_path and not args.tokenizer_only:
        if not (args.model_type or args.config_name):
            flags.fail("a new model needs --model_type or --config_name (or give --model_name_or_path)")
        if not (args.train_tokenizer or args.tokenizer_name):
            flags.fail("a new model needs --train_tokenizer or --tokenizer_name")
    if args.tokenizer_only and not args.train_tokenizer:
        flags.fail("--tokenizer_only needs --train_tokenizer")
    return args


# --- tokenizer training
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
            flags.fail(f"--vocab_size {size} is below the {len(words)} tokens a wordpiece tokenizer of this corpus needs "
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
            flags.fail(f"--vocab_size {size}: the unigram trainer refuses it ({e}); expected room for every character "
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
            flags.fail(f"--vocab_size {size}: sentencepiece refuses it ({str(e).splitlines()[0]})")
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
        flags.fail(f"--vocab_size {args.vocab_size} is below the {len(tokenizer)} tokens a {args.train_tokenizer} "
                   "tokenizer of this corpus needs (its alphabet and special tokens)")
    tokenizer.model_max_length = args.max_seq_length or 512
    shutil.rmtree(folder, ignore_errors=True)  # a killed run's
    tokenizer.save_pretrained(folder)
    if args.train_tokenizer == "wordpiece":
        files.write_text(folder / "vocab.txt",
                         "\n".join(tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))) + "\n")
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
            flags.fail(f"{path}: cannot read a config JSON ({e})")
        if not isinstance(values, dict):
            flags.fail(f"{path}: expected a config JSON object, found {type(values).__name__}")
        found = values.pop("model_type", None)
        if model_type and found and found != model_type:
            flags.fail(f"{path}: model_type is {found!r} but --model_type is {model_type!r}")
        model_type = model_type or found
    if model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        flags.fail(f"model type {model_type!r} has no masked-LM class; try roberta, bert, distilbert, electra, ...")
    return values, model_type


def new_config(args, values, model_type, tokenizer, seq):
    """The config with vocab size, special token ids and positions set from the tokenizer and block length
    (tokenizer None: only --config_name's values and --config_overrides, checked before anything is written)."""
    try:
        config = CONFIG_MAPPING[model_type](**values)
    except (TypeError, ValueError) as e:
        flags.fail(f"{args.config_name}: not a {model_type} config ({e})")
    explicit = set(values)
    if args.config_overrides:
        try:
            config.update_from_string(args.config_overrides)
        except ValueError as e:
            flags.fail(f"--config_overrides {args.config_overrides!r}: {e}; expected key=value pairs of the config, "
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
        flags.fail(f"max_position_embeddings {config.max_position_embeddings} < {need} needed for "
                   f"--max_seq_length {seq}")
    if "max_position_embeddings" not in explicit:
        config.max_position_embeddings = need
    return config


def model_and_data(args, accelerator, tokenizer, values, model_type):
    """The model (a new one from its config, or a checkpoint to continue) and the tokenized (train, eval) data."""
    if args.model_name_or_path:
        try:
            model = AutoModelForMaskedLM.from_pretrained(args.model_name_or_path)
        except (OSError, ValueError) as e:
            flags.fail(f"--model_name_or_path {args.model_name_or_path}: cannot load "
                       f"({(str(e).splitlines() or [type(e).__name__])[0]})")
        offset = tokenizer.pad_token_id + 1 if model.config.model_type in OFFSET_POSITIONS else 0
        seq = args.max_seq_length or min(512, model.config.max_position_embeddings - offset)
        if seq + offset > model.config.max_position_embeddings or len(tokenizer) > model.config.vocab_size:
            flags.fail(f"{args.model_name_or_path} takes {model.config.max_position_embeddings - offset} tokens and "
                       f"{model.config.vocab_size} ids; asked for {seq} tokens with {len(tokenizer)} ids")
    else:
        seq = args.max_seq_length or 512
        config = new_config(args, values, model_type, tokenizer, seq)
        try:
            model = AutoModelForMaskedLM.from_config(config)
        except (TypeError, ValueError) as e:
            flags.fail(f"{args.config_name or '--model_type ' + model_type}"
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


def check_inputs(args):
    """Everything checked before anything is written or loaded at length. Returns (values, model_type) of a new
    model's config, the tokenizer folder a resumed run keeps (or None), and the tokenizer when it is not trained."""
    check_data(args)
    values, model_type = read_config(args) if not args.model_name_or_path and not args.tokenizer_only else ({}, None)
    args.model_type = args.model_type or model_type
    if model_type:
        new_config(args, values, model_type, None, None)  # the config's values and --config_overrides
    # a trained tokenizer is staged in tokenizer.new and moved to tokenizer/ only when training has saved best/ and
    # last/ (which hold it too): a run that fails early leaves an earlier run's tokenizer/ as it was. A resumed run
    # takes its checkpoint's own tokenizer (or, killed before its first checkpoint, the staged one)
    out = Path(args.output_dir)
    staged, final = out / "tokenizer.new", out / "tokenizer"
    kept = None
    if args.train_tokenizer and args.resume_from_checkpoint and not args.tokenizer_only:
        kept = next((f for f in (resume_folder(args), staged, final) if f and (f / "tokenizer_config.json").is_file()),
                    None)
    if args.train_tokenizer and not kept:  # never over an earlier tokenizer unless asked
        flags.refuse_existing([final], args.overwrite_output_dir)
    tokenizer = None
    if args.model_name_or_path:
        checkpoint = loading.load_config(args.model_name_or_path)
        if args.max_seq_length:
            flags.check_max_seq_length(args.max_seq_length, checkpoint)
    if not args.train_tokenizer:
        flag = "--tokenizer_name" if args.tokenizer_name else "--model_name_or_path"
        tokenizer = loading.load_tokenizer(args.tokenizer_name or args.model_name_or_path, flag, masked_lm=True)
    return values, model_type, kept, tokenizer


def tokenizer_step(args, accelerator, kept, tokenizer):
    """The tokenizer: trained here into tokenizer.new/ (kept when resuming), or the model's / --tokenizer_name's.
    None after --tokenizer_only (moved to tokenizer/ at once)."""
    out = Path(args.output_dir)
    staged, final = out / "tokenizer.new", out / "tokenizer"
    if args.train_tokenizer and not kept:
        if accelerator.is_main_process:
            save_tokenizer(args, staged)
            if args.tokenizer_only:
                swap_in(staged, final)
        accelerator.wait_for_everyone()
    if args.tokenizer_only:
        return None
    if args.train_tokenizer:
        tokenizer = loading.load_tokenizer(kept or staged, "--train_tokenizer", masked_lm=True)
    return tokenizer


def keep_tokenizer(args, accelerator, kept, tokenizer):
    """best/ and last/ are saved: this run's tokenizer takes the old one's place (a staged one that is not this run's
    was left by a run that failed before its first checkpoint)."""
    out = Path(args.output_dir)
    staged, final = out / "tokenizer.new", out / "tokenizer"
    if args.train_tokenizer and accelerator.is_main_process and staged.is_dir():
        if kept in (None, staged) or \
                loading.load_tokenizer(staged, "--train_tokenizer", masked_lm=True).get_vocab() == tokenizer.get_vocab():
            swap_in(staged, final)
        else:
            shutil.rmtree(staged)


def logged_seconds(args):
    """The "train" seconds log.json holds (core counts them on across a resume; None where it records none)."""
    path = Path(args.output_dir) / "log.json"
    return json.loads(path.read_text(encoding="utf-8")).get("seconds", {}).get("train") if path.is_file() else None


def train_step(args, accelerator, model, tokenizer, train_dataset, eval_dataset, collate_fn):
    """core.train with masks drawn at step time; returns (best/'s metrics, this run's train_results)."""
    vocab_size = model.config.vocab_size
    specials = torch.tensor(tokenizer.all_special_ids, device=accelerator.device)
    fed = {"real": 0, "positions": 0}  # tokens fed in this run (a count, not a clock: timings come from log.json)

    def compute_loss(model, batch):  # masks drawn here, at step time: the loader's prefetch cannot shift them
        batch = dict(batch)
        starts = batch.pop("word_start", None)
        special = torch.isin(batch["input_ids"], specials) | (batch["attention_mask"] == 0)
        batch["input_ids"], batch["labels"] = mask_tokens(batch["input_ids"], special, starts, tokenizer.mask_token_id,
                                                          vocab_size, args.mlm_probability)
        loss = model(**batch).loss
        real = batch["attention_mask"].sum()
        fed.update(real=fed["real"] + real, positions=fed["positions"] + batch["attention_mask"].numel())
        return loss, {"padding_share": 1 - real / batch["attention_mask"].numel()}

    masked_only(model)
    before = (logged_seconds(args) or 0.0) if resume_folder(args) else 0.0  # a resumed log counts on from there
    start = time.perf_counter()
    best = core.train(args, accelerator, model, tokenizer, train_dataset, eval_dataset, collate_fn,
                      evaluate=lambda arrays: {"perplexity": perplexity(arrays)}, compute_loss=compute_loss,
                      eval_keys=SUMS)
    wall = time.perf_counter() - start
    after = logged_seconds(args)  # training time without evaluation and saving, as log.json records it
    seconds = wall if after is None else after - before
    total = lambda x: accelerator.reduce(torch.as_tensor(x, device=accelerator.device).float(), "sum").item()
    real, positions = total(fed["real"]), total(fed["positions"])
    results = {"train_tokens": int(real), "train_seconds": wall,  # this run's part
               "tokens_per_second": real / max(seconds, 1e-9),
               "padding_share": 1 - real / max(positions, 1)}
    accelerator.print(f"trained on {results['train_tokens']} tokens: {results['tokens_per_second']:.0f} tokens/s "
                      f"(evaluation and saving not counted), padding {results['padding_share']:.1%}")
    return best, results


def evaluate_best(args, accelerator, eval_dataset, collate_fn):
    """best/ reloaded as a plain *ForMaskedLM, evaluated on the fixed masks: the numbers it was chosen for."""
    model = masked_only(AutoModelForMaskedLM.from_pretrained(Path(args.output_dir) / "best"))
    loader = core.eval_loader(accelerator, eval_dataset, collate_fn, args)
    loss, arrays = core.predict(accelerator, accelerator.prepare(model), loader, keys=SUMS, desc="[best] [VALID]")
    evaluation = {"loss": loss, "perplexity": perplexity(arrays), "masked_tokens": int(arrays["masked_tokens"].sum())}
    return write_eval(accelerator, args, evaluation)


def main(argv=None):
    args = parse_args(argv)
    values, model_type, kept, tokenizer = check_inputs(args)
    accelerator = core.setup(args, training=not args.tokenizer_only)
    tokenizer = tokenizer_step(args, accelerator, kept, tokenizer)
    if tokenizer is None:  # --tokenizer_only
        return {}
    try:
        model, train_dataset, eval_dataset = model_and_data(args, accelerator, tokenizer, values, model_type)
    except SystemExit:  # nothing was trained with a tokenizer trained just now: no resume needs it
        if args.train_tokenizer and not kept and accelerator.is_main_process:
            shutil.rmtree(Path(args.output_dir) / "tokenizer.new", ignore_errors=True)
        raise
    collate_fn = lambda features: collate(features, tokenizer.pad_token_id)
    best, results = train_step(args, accelerator, model, tokenizer, train_dataset, eval_dataset, collate_fn)
    keep_tokenizer(args, accelerator, kept, tokenizer)
    if eval_dataset is not None:
        evaluate_best(args, accelerator, eval_dataset, collate_fn)
    if accelerator.is_main_process:
        files.write_json(Path(args.output_dir) / "train_results.json", results)
    return {**best, **results}


if __name__ == "__main__":
    main()
