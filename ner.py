"""Named-entity recognition (token classification) on CoNLL-2003-style data, scored with seqeval.

    accelerate launch ner.py --model_name_or_path roberta-large --train_file conll2003/train.txt \
        --validation_file conll2003/dev.txt --test_file conll2003/test.txt --output_dir out/ner

Evaluate a trained checkpoint on its own (no training):
    python ner.py --do_eval --model out/ner/best --validation_file dev.txt --test_file test.txt --output_dir out/eval

Input: CoNLL columns (word first, tag in the last column unless --label_column, a blank line between
sentences, -DOCSTART- lines skipped, IOB1 or IOB2: detected and reported), JSON/JSONL records
{"tokens": [...], "ner_tags": [...]}, or --dataset_name (a `datasets` name or a folder of such files).
Output: best/ (a pipeline("token-classification") folder), eval_results.json and test_results.json
(seqeval entity-level precision/recall/F1, per entity type, token accuracy) and predictions_{dev,test}.txt
(word, gold, predicted: one line per input word, a blank line between sentences). The tokenized features are
cached under --cache_dir: a second run on the same data memory-maps them instead of tokenizing.
"""
import argparse
import hashlib
import json
import pickle
import re
import sys
from pathlib import Path

import numpy as np
from seqeval.metrics import accuracy_score, classification_report
from transformers import AutoModelForTokenClassification, DataCollatorForTokenClassification

import core
import loading

TAG = re.compile(r"O|[BIES]-.+")
SPLITS = {"train": ("train",), "dev": ("dev", "validation", "valid", "testa"), "test": ("test", "testb")}
TAG_FIELDS = ("ner_tags", "tags", "labels")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    core.add_args(parser)
    parser.set_defaults(metric_for_best_model="f1", output_dir="out/ner")
    g = parser.add_argument_group("ner.py")
    g.add_argument("--train_file", help="CoNLL column file, or .json/.jsonl records (default: none)")
    g.add_argument("--validation_file", help="dev set: evaluated during training, picks best/ (default: none)")
    g.add_argument("--test_file", help="scored with best/ at the end (default: none)")
    g.add_argument("--dataset_name", help="a `datasets` name, or a folder holding train/dev/test files, "
                   "instead of the *_file flags (default: none)")
    g.add_argument("--dataset_config_name", help="configuration of --dataset_name (default: none)")
    g.add_argument("--text_column", default="tokens", help="JSON/datasets field with the words (default: tokens)")
    g.add_argument("--label_column", default=None,
                   help="CoNLL: column number of the tag, 0-based, negative from the end; JSON/datasets: field "
                        "name (default: the last column; ner_tags, tags or labels)")
    g.add_argument("--max_seq_length", type=int, default=128,
                   help="sub-tokens per sentence; words cut off are predicted O, with a warning (default: 128)")
    g.add_argument("--label_all_tokens", action="store_true",
                   help="train on every sub-token of a word, not just the first; evaluation always scores the "
                        "first (default: off)")
    g.add_argument("--cache_dir", default=None, help="tokenized features, keyed on data + labels + tokenizer + "
                   "settings (default: $HF_DATASETS_CACHE/ner_features or ~/.cache/huggingface/datasets/ner_features)")
    g.add_argument("--overwrite_cache", action="store_true", help="tokenize again even if cached (default: off)")
    g.add_argument("--do_eval", action="store_true",
                   help="only evaluate --model_name_or_path on the dev/test data (default: off = train)")
    parser.error = core.fail  # one line, exit code 2: argparse's own error prints the usage too
    args = parser.parse_args(argv)
    if args.max_seq_length < 1:
        core.fail(f"--max_seq_length {args.max_seq_length}: expected a positive number of sub-tokens")
    if not args.model_name_or_path:
        parser.error("--model_name_or_path is required")
    files = [args.train_file, args.validation_file, args.test_file]
    if args.dataset_name and any(files):
        parser.error("give --dataset_name or the *_file flags, not both")
    if args.do_eval and args.train_file:
        parser.error("--do_eval evaluates --model_name_or_path as it is; drop --train_file")
    if args.do_eval and not (args.validation_file or args.test_file or args.dataset_name):
        parser.error("--do_eval needs --validation_file, --test_file or --dataset_name")
    if not args.do_eval and not (args.train_file or args.dataset_name):
        parser.error("--train_file or --dataset_name is required (or --do_eval to evaluate only)")
    return args


# --- reading: every split becomes a list of {"words", "tags", "src", "lines"} (lines: one per word)

def reason(e):
    """An exception in a few words, for a one-line error: its first line, or its first sentence if that is long."""
    text = (str(e).strip().splitlines() or [type(e).__name__])[0]
    if len(text) > 160:
        text = text[:text.find(". ") + 1] if 0 < text.find(". ") < 160 else text[:157] + "..."
    return text


def fail_not_text(path):
    """One line naming the first line of path that is not UTF-8 text (binary data, or another encoding). Read line
    by line as bytes: a newline byte never occurs inside a UTF-8 character."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                core.fail(f"{path}:{n}: not UTF-8 text (byte 0x{raw[e.start]:02x}: binary data or another encoding); "
                          "expected a UTF-8 text file")
    core.fail(f"{path}: not UTF-8 text; expected a UTF-8 text file")


def fail_columns(path):
    """One line for a CoNLL file whose lines differ in their number of columns, blaming the first line that differs
    from most lines (a first line missing its tag is the culprit, not every line after it). Only on the error path:
    it reads the file again."""
    widths, where = {}, []
    with open(path, encoding="utf-8-sig") as f:
        for n, line in enumerate(f, 1):
            cols = line.split()
            if cols and cols[0] != "-DOCSTART-":
                widths[len(cols)] = widths.get(len(cols), 0) + 1
                where.append((n, len(cols)))
    usual = max(widths, key=lambda w: (widths[w], w))  # a tie: the wider (a tag missing, not one too many)
    if usual < 2:
        core.fail(f"{path}:{next(n for n, w in where if w < 2)}: 1 column; expected a word and a tag")
    example = next(n for n, w in where if w == usual)
    for n, w in where:
        if w != usual:
            hint = "a tag missing?" if w < usual else "a space inside a word, or a column too many?"
            core.fail(f"{path}:{n}: found {w} column(s), expected {usual} as on line {example} ({hint})")


def read_conll(path, label_column):
    try:
        column = -1 if label_column is None else int(label_column)
    except ValueError:
        core.fail(f"{path}:1: --label_column {label_column!r} must be a column number for a CoNLL file "
                  "(0 = first, -1 = last)")
    sentences, words, width = [], [], None
    # utf-8-sig: a byte-order mark is not part of the first word (it would hide a -DOCSTART- line)
    with open(path, encoding="utf-8-sig") as f:
        try:
            for n, line in enumerate(f, 1):
                cols = line.split()
                if cols and cols[0] != "-DOCSTART-":
                    if "\0" in line:
                        core.fail(f"{path}:{n}: a NUL byte (binary data); expected a UTF-8 text file")
                    if width is None:
                        width = len(cols)
                        if width < 2 or not -width <= column < width:
                            fail_columns(path)  # if the first line is the odd one out, blame it
                        if width < 2:
                            core.fail(f"{path}:{n}: 1 column; expected a word and a tag")
                        if not -width <= column < width:
                            core.fail(f"{path}:{n}: --label_column {column} is out of range: lines have {width} "
                                      "columns")
                    if len(cols) != width:
                        fail_columns(path)
                    words.append((cols[0], cols[column], n))
                elif words:  # a blank line or -DOCSTART- ends the sentence
                    sentences.append(words)
                    words = []
        except UnicodeDecodeError:
            fail_not_text(path)
    if words:
        sentences.append(words)
    return [{"words": [w for w, _, _ in s], "tags": [t for _, t, _ in s], "src": path, "lines": [n for _, _, n in s]}
            for s in sentences]


def records(path):
    """[(line number, record)] from JSON lines, or [(record number, record)] from one JSON list."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        fail_not_text(path)
    if "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        core.fail(f"{path}:{line}: a NUL byte (binary data); expected UTF-8 JSON text")
    if text.lstrip().startswith("["):
        try:
            return list(enumerate(json.loads(text), 1))
        except json.JSONDecodeError as e:
            core.fail(f"{path}:{e.lineno}: not valid JSON ({e.msg})")
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append((n, json.loads(line)))
            except json.JSONDecodeError as e:
                core.fail(f"{path}:{n}: not valid JSON ({e.msg})")
    return rows


def read_records(rows, src, text_column, label_column):
    sentences = []
    for n, r in rows:
        if not isinstance(r, dict):
            core.fail(f"{src}:{n}: expected a record with {text_column!r} and tags, found {type(r).__name__}")
        field = label_column or next((k for k in TAG_FIELDS if k in r), "/".join(TAG_FIELDS))
        for name in (text_column, field):
            if name not in r:
                core.fail(f"{src}:{n}: no {name!r} field (found: {', '.join(r)}); see --text_column/--label_column")
        words, tags = r[text_column], r[field]
        if not isinstance(words, list) or not isinstance(tags, list):
            core.fail(f"{src}:{n}: {text_column!r} and {field!r} must be lists")
        if len(words) != len(tags):
            core.fail(f"{src}:{n}: {len(words)} words but {len(tags)} tags")
        for i, w in enumerate(words):
            if isinstance(w, bool) or not isinstance(w, (str, int, float)) or not str(w).strip():
                core.fail(f"{src}:{n}: word {i} of {text_column!r} is {json.dumps(w)[:40]}; expected a non-empty "
                          "string")
        if words:
            sentences.append({"words": [str(w) for w in words], "tags": tags, "src": src, "lines": [n] * len(words)})
    return sentences


def read_file(path, args):
    if Path(path).is_dir():
        core.fail(f"{path}: a directory; expected a CoNLL column file or .json/.jsonl records")
    if not Path(path).is_file():
        core.fail(f"{path}: no such file")
    try:
        if str(path).endswith((".json", ".jsonl")):
            sentences = read_records(records(path), path, args.text_column, args.label_column)
        else:
            sentences = read_conll(path, args.label_column)
    except OSError as e:
        core.fail(f"{path}: cannot read it ({e.strerror or e}); expected a readable text file")
    if not sentences:
        core.fail(f"{path}:1: no sentences (empty file?)")
    return sentences


def read_dataset(args):
    """--dataset_name: a folder of train/dev/test files, else datasets.load_dataset (tag ids -> names)."""
    folder = Path(args.dataset_name)
    if folder.is_dir():
        files = {p.stem: p for p in sorted(folder.iterdir()) if p.suffix in (".txt", ".conll", ".json", ".jsonl")}
        found = {split: next((files[s] for s in stems if s in files), None) for split, stems in SPLITS.items()}
        if any(found.values()):
            return {split: read_file(str(path), args) for split, path in found.items() if path}
    import datasets

    try:
        loaded = datasets.load_dataset(args.dataset_name, args.dataset_config_name)
    except Exception as e:  # not found, offline, bad folder: one line, no traceback
        core.fail(f"--dataset_name {args.dataset_name}: {reason(e)}")
    data = {}
    for split, stems in SPLITS.items():
        name = next((s for s in stems if s in loaded), None)
        if name is None:
            continue
        d, src = loaded[name], f"{args.dataset_name}[{name}]"
        field = args.label_column or next((k for k in TAG_FIELDS if k in d.column_names), TAG_FIELDS[0])
        for column in (args.text_column, field):
            if column not in d.column_names:
                core.fail(f"{src}:1: no {column!r} column (found: {', '.join(d.column_names)}); "
                          "see --text_column/--label_column")
        names = getattr(getattr(d.features[field], "feature", None), "names", None)  # ClassLabel ids
        rows = ((i, {args.text_column: list(words), field: [names[t] for t in tags] if names else list(tags)})
                for i, (words, tags) in enumerate(zip(d[args.text_column], d[field]), 1))
        data[split] = read_records(rows, src, args.text_column, field)
    return data


def check_tags(sentences, label2id=None, known_as=""):
    for s in sentences:
        for tag, n in zip(s["tags"], s["lines"]):
            if not isinstance(tag, str) or not TAG.fullmatch(tag):
                core.fail(f"{s['src']}:{n}: tag {tag!r} is not O, B-TYPE or I-TYPE (wrong --label_column?)")
            if label2id is not None and tag not in label2id:
                core.fail(f"{s['src']}:{n}: tag {tag!r} is not among {known_as} ({', '.join(label2id)})")


def scheme(sentences):
    """IOBES if E-/S- tags occur; IOB1 if an entity starts with I- (after O or another type); else IOB2."""
    if any(t[:2] in ("E-", "S-") for s in sentences for t in s["tags"]):
        return "IOBES"
    for s in sentences:
        for prev, tag in zip(["O"] + s["tags"], s["tags"]):
            if tag.startswith("I-") and prev[2:] != tag[2:]:
                return "IOB1"
    return "IOB2"


def label_list(sentences):
    """The training tags in a stable order: O, then by entity type, B- before I-."""
    tags = {t for s in sentences for t in s["tags"]}
    return sorted(tags, key=lambda t: (t != "O", t[2:], "BIES".find(t[0])))


# --- features: labels on first sub-tokens, and which words kept one

def load_tokenizer(name, flag="--model_name_or_path"):
    """The tokenizer words are encoded with, or one line: byte-level BPE (RoBERTa, GPT-2) sees each word with a
    leading space."""
    return loading.load_tokenizer(name, flag, add_prefix_space=True)


def encode(sentences, tokenizer, label2id, max_seq_length, label_all_tokens=False):
    """Model features and, per sentence, the words that kept a first sub-token. The first sub-token of a word
    carries its tag; the others and the special tokens -100, or with label_all_tokens (training only) the
    word's tag, B- turned into I-."""
    enc = tokenizer([s["words"] for s in sentences], is_split_into_words=True, truncation=True,
                    max_length=max_seq_length)
    features, kept = [], []
    for i, s in enumerate(sentences):
        labels, words, previous = [], [], None
        for w in enc.word_ids(i):
            if w is None:
                labels.append(-100)
            elif w != previous:
                labels.append(label2id[s["tags"][w]])
                words.append(w)
            elif label_all_tokens:
                tag = s["tags"][w]
                labels.append(label2id.get("I-" + tag[2:], label2id[tag]) if tag.startswith("B-") else label2id[tag])
            else:
                labels.append(-100)
            previous = w
        features.append({**{k: enc[k][i] for k in enc.keys()}, "labels": labels})
        kept.append(words)
    return features, kept


def encode_batch(batch, tokenizer, label2id, max_seq_length, label_all_tokens):
    """encode() for datasets.map: columns in, columns out; "kept" holds each sentence's words that kept a sub-token."""
    sentences = [{"words": w, "tags": t} for w, t in zip(batch["words"], batch["tags"])]
    features, kept = encode(sentences, tokenizer, label2id, max_seq_length, label_all_tokens)
    return {**{k: [f[k] for f in features] for k in (features[0] if features else ())}, "kept": kept}


def source_key(sentences, args):
    """What the sentences are, cheaply. Read from a file (they are its first len(sentences), and reading is
    deterministic): the file's bytes, its format and the reading flags; hashing 3 MB costs ~10 ms where hashing
    CoNLL-2003 train's 200k words costs ~150 ms. From `datasets`: the words and tags themselves."""
    path = Path(sentences[0]["src"])
    if path.is_file():
        digest = hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
        return [digest, path.suffix, args.text_column, args.label_column, len(sentences)]
    return hashlib.blake2b(pickle.dumps([(s["words"], s["tags"]) for s in sentences], protocol=5),
                           digest_size=16).hexdigest()


def featurize(sentences, split, tokenizer, label2id, max_seq_length, label_all_tokens, args, accelerator):
    """encode() over the sentences with datasets.map (batched), cached under --cache_dir by a key of the data, the
    labels, the tokenizer and the settings: a second run memory-maps the Arrow file instead of tokenizing.
    Returns (features, kept: per sentence, an array of the words that kept a first sub-token)."""
    import datasets
    import pyarrow.compute as pc

    settings = [source_key(sentences, args), list(label2id.items()), max_seq_length, label_all_tokens,
                core.tokenizer_key(tokenizer), 1]  # 1: the version of read_file() and encode()
    key = hashlib.blake2b(json.dumps(settings).encode(), digest_size=12).hexdigest()

    def build():
        columns = {"words": [s["words"] for s in sentences], "tags": [s["tags"] for s in sentences]}
        return datasets.Dataset.from_dict(columns).map(
            encode_batch, batched=True, remove_columns=list(columns), desc=f"tokenizing {split}",
            fn_kwargs=dict(tokenizer=tokenizer, label2id=label2id, max_seq_length=max_seq_length,
                           label_all_tokens=label_all_tokens))
    features = core.cached_dataset(args.cache_dir, "ner_features", f"{split}-{key}", build, accelerator,
                                   args.overwrite_cache, what=f"{split}: features")
    # kept as arrays: 14k Python lists made next to the sentences' 400k objects set off a full GC pass (~0.4 s)
    kept = features.data.column("kept")
    kept = np.split(pc.list_flatten(kept).to_numpy(), np.cumsum(pc.list_value_length(kept).to_numpy())[:-1])
    return features.remove_columns(["kept"]), kept


# --- metrics

def decode(arrays, kept, sentences, id2label):
    """Word tags from the first sub-token's argmax; O for a word with no sub-token left (truncation)."""
    ids = arrays["logits"].argmax(-1)
    predicted = []
    for i, (s, words) in enumerate(zip(sentences, kept)):
        tags = ["O"] * len(s["words"])
        for w, position in zip(words, np.flatnonzero(arrays["labels"][i] != -100)):
            tags[w] = id2label[int(ids[i, position])]
        predicted.append(tags)
    return predicted


def score(gold, predicted):
    """seqeval entity-level micro P/R/F1 in its default (conlleval-compatible) mode, per type, and token
    accuracy (which counts O tokens: reported, never the headline)."""
    report = classification_report(gold, predicted, output_dict=True, zero_division=0)
    micro = report.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0})
    metrics = {"precision": float(micro["precision"]), "recall": float(micro["recall"]),
               "f1": float(micro["f1-score"]), "accuracy": float(accuracy_score(gold, predicted)),
               "entities": int(micro["support"])}
    for kind in sorted(k for k in report if not k.endswith(" avg")):
        r = report[kind]
        metrics.update({f"{kind}_precision": float(r["precision"]), f"{kind}_recall": float(r["recall"]),
                        f"{kind}_f1": float(r["f1-score"]), f"{kind}_number": int(r["support"])})
    return metrics


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.output_dir)
    for flag, folder in (("--output_dir", out), ("--cache_dir", args.cache_dir)):
        if folder and Path(folder).exists() and not Path(folder).is_dir():
            core.fail(f"{flag} {folder}: a file; expected a folder (or a path to create one)")

    # --- data: read and check everything before setup(), so bad input never touches output_dir
    if args.dataset_name:
        data = read_dataset(args)
        if args.do_eval:
            data.pop("train", None)
    else:
        data = {split: read_file(path, args) for split, path in
                (("train", args.train_file), ("dev", args.validation_file), ("test", args.test_file)) if path}
    if not args.do_eval and "train" not in data:
        core.fail(f"--dataset_name {args.dataset_name}: no train split (found: {', '.join(data)})")
    config = loading.load_config(args.model_name_or_path)
    core.check_max_seq_length(args.max_seq_length, config)
    tokenizer = load_tokenizer(args.model_name_or_path)
    if args.max_seq_length <= tokenizer.num_special_tokens_to_add():
        core.fail(f"--max_seq_length {args.max_seq_length}: leaves no room for a word beside the "
                  f"{tokenizer.num_special_tokens_to_add()} special tokens")
    if args.do_eval:
        label2id, known_as = config.label2id, f"{args.model_name_or_path}'s labels"
    else:
        check_tags(data["train"])
        labels = label_list(data["train"])
        if set(config.label2id) == set(labels):  # a checkpoint already trained on these tags: keep its order
            labels = sorted(labels, key=config.label2id.get)
        label2id, known_as = {t: i for i, t in enumerate(labels)}, "the training tags"
    for split in ("dev", "test"):
        check_tags(data.get(split, []), label2id, known_as)
    if args.max_train_samples > 0 and "train" in data:
        data["train"] = data["train"][:args.max_train_samples]
    if args.max_eval_samples > 0 and "dev" in data:
        data["dev"] = data["dev"][:args.max_eval_samples]

    accelerator = core.setup(args, training=not args.do_eval)
    if args.do_eval:  # an evaluation never replaces earlier results silently (core.setup guards a training run's)
        results_files = [out / name for split, name in (("dev", "eval_results.json"), ("dev", "predictions_dev.txt"),
                         ("test", "test_results.json"), ("test", "predictions_test.txt")) if split in data]
        core.refuse_existing(results_files, args.overwrite_output_dir)
    schemes = {split: scheme(sentences) for split, sentences in data.items()}
    for split, sentences in data.items():
        accelerator.print(f"{split}: {sentences[0]['src']}: {len(sentences)} sentences, "
                          f"{sum(len(s['words']) for s in sentences)} words, tagging scheme {schemes[split]}")

    # --- model
    try:
        if args.do_eval:
            model = AutoModelForTokenClassification.from_pretrained(args.model_name_or_path)
        else:
            model = AutoModelForTokenClassification.from_pretrained(
                args.model_name_or_path, num_labels=len(label2id), id2label=dict(enumerate(label2id)),
                label2id=label2id, ignore_mismatched_sizes=True)  # a new head when the label count differs
    except Exception as e:  # noqa: BLE001 (weights that do not load, a type with no token-classification head)
        core.fail(f"--model_name_or_path {args.model_name_or_path}: cannot load it for token classification "
                  f"({reason(e)})")
    max_seq_length = min(args.max_seq_length, tokenizer.model_max_length)
    features, kept, cut = {}, {}, {}
    for split, sentences in data.items():
        all_tokens = args.label_all_tokens and split == "train"  # evaluation: first sub-tokens only
        features[split], kept[split] = featurize(sentences, split, tokenizer, label2id, max_seq_length, all_tokens,
                                                 args, accelerator)
        cut[split] = sum(len(s["words"]) - len(k) for s, k in zip(sentences, kept[split]))
        if cut[split] and accelerator.is_main_process:
            hit = sum(len(s["words"]) > len(k) for s, k in zip(sentences, kept[split]))
            fate = "not trained on" if split == "train" else "predicted O"
            print(f"warning: {split}: {cut[split]} words in {hit} sentences have no sub-token within "
                  f"--max_seq_length {max_seq_length}; they are {fate}", file=sys.stderr)
    collator = DataCollatorForTokenClassification(tokenizer)
    id2label = {i: t for t, i in label2id.items()}

    def evaluate_split(split, arrays):
        predicted = decode(arrays, kept[split], data[split], id2label)
        return score([s["tags"] for s in data[split]], predicted), predicted

    # --- train, keeping best/ by dev F1
    if not args.do_eval:
        evaluate = (lambda arrays: evaluate_split("dev", arrays)[0]) if "dev" in data else None
        best = core.train(args, accelerator, model, tokenizer, features["train"], features.get("dev"), collator,
                          evaluate=evaluate)
        accelerator.print(f"best: {json.dumps(best)}")
        model = AutoModelForTokenClassification.from_pretrained(out / "best")

    # --- evaluate best/ (or --model with --do_eval) on dev and test: results and aligned predictions
    model = accelerator.prepare(model)
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
    results = {}
    for split, name in (("dev", "eval"), ("test", "test")):
        if split not in data:
            continue
        loss, arrays = core.predict(accelerator, model, core.eval_loader(accelerator, features[split], collator, args),
                                    desc=f"[best] [{split.upper()}]")
        metrics, predicted = evaluate_split(split, arrays)
        results[split] = {"loss": loss, **metrics, "scheme": schemes[split], "sentences": len(data[split]),
                          "words_cut": cut[split]}
        accelerator.print(f"{split}: f1 {metrics['f1']:.4f} precision {metrics['precision']:.4f} "
                          f"recall {metrics['recall']:.4f} accuracy {metrics['accuracy']:.4f}")
        if accelerator.is_main_process:
            core.write_json(out / f"{name}_results.json", results[split])
            core.write_text(out / f"predictions_{split}.txt", "".join(
                "".join(f"{w} {g} {p}\n" for w, g, p in zip(s["words"], s["tags"], tags)) + "\n"
                for s, tags in zip(data[split], predicted)))
    return results


if __name__ == "__main__":
    main()
