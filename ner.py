"""Named-entity recognition (token classification) on CoNLL-2003-style data, scored with seqeval.

    accelerate launch ner.py --model_name_or_path roberta-large --train_file conll2003/train.txt \
        --validation_file conll2003/dev.txt --test_file conll2003/test.txt --output_dir out/ner

Evaluate a trained checkpoint on its own (no training), and predict the test file:
    python ner.py --do_eval --do_predict --model out/ner/best --validation_file dev.txt --test_file test.txt \
        --output_dir out/eval

--do_train, --do_eval (the validation file: after training, or the model as it is) and --do_predict (the test
file) as in Hugging Face's example scripts; with none of them, the files given decide.
Input: CoNLL columns (word first, tag in the last column unless --label_column_name, a blank line between
sentences, -DOCSTART- lines skipped, IOB1, IOB2 or IOBES: detected and reported), JSON/JSONL records
{"tokens": [...], "ner_tags": [...]} (or {"words": [...], "ner": [...]}: the columns are inferred), or
--dataset_name (a `datasets` name or a folder of such files).
Output: best/ (a pipeline("token-classification") folder), eval_results.json and test_results.json
(seqeval entity-level precision/recall/F1, per entity type, token accuracy; IOB1/IOB2 scored as conlleval does,
IOBES in seqeval's strict mode: "scoring" says which) and predictions_{dev,test}.txt
(word, gold, predicted: one line per input word, a blank line between sentences). The tokenized features are
cached under --cache_dir: a second run on the same data memory-maps them instead of tokenizing.

Owns: token classification: the CoNLL/JSON/`datasets` readers, tag checks and schemes, word-level features,
seqeval scoring and the predictions files. Knows no other task script (glue.py, squad.py, probe.py ...): it builds
on core.py, flags.py, files.py and loading.py only. Other scripts use it only through the section "the interface for
other scripts": examples(), label_list(), check_tags(), encode(), score().
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
from seqeval.scheme import IOBES
from transformers import AutoConfig, AutoModelForTokenClassification, DataCollatorForTokenClassification

import core
import files
import flags
import loading

TAG = re.compile(r"O|[BIES]-.+")
SPLITS = {"train": ("train",), "dev": ("dev", "validation", "valid", "testa"), "test": ("test", "testb")}
TEXT_FIELDS = ("tokens", "words")
TAG_FIELDS = ("ner_tags", "tags", "ner", "labels")


NOTICED = set()  # the inferred (text, label) columns already printed in this run: main() empties it


# --- the interface for other scripts (probe.py): examples(), label_list(), check_tags(), encode() and score().
# Other scripts use only these names; everything else here may change.
INTERFACE = ("examples", "label_list", "check_tags", "encode", "score")


def examples(args):
    """Every split given, read and checked as ner.py reads it: {"train", "dev", "test": sentences}, from
    args.dataset_name (with dataset_config_name) or args.train_file/validation_file/test_file; the columns from
    args.text_column_name/label_column_name (None: inferred, printed once). A sentence is {"words": [str], "tags":
    [str, one per word], "src": its file or dataset, "lines": [the line or record of each word]}; the tags are
    checked only by label_list() and check_tags()."""
    if args.dataset_name:
        return read_dataset(args)
    return {split: read_file(path, args) for split, path in
            (("train", args.train_file), ("dev", args.validation_file), ("test", args.test_file)) if path}


def notice(message):
    """A one-line notice on stdout (an old spelling's meaning, an inferred setting)."""
    print(f"notice: {message}", flush=True)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    flags.add_args(parser)
    parser.set_defaults(metric_for_best_model="f1", output_dir="out/ner")
    g = parser.add_argument_group("ner.py")
    flags.add_jobs(g, "train on --train_file", "evaluate on --validation_file: best/ after training, or "
                   "--model_name_or_path as it is without --do_train", "predict and score --test_file with best/ or the model")
    g.add_argument("--train_file", help="CoNLL column file, or .json/.jsonl records (default: none)")
    g.add_argument("--validation_file", help="dev set: evaluated during training, picks best/ (default: none)")
    g.add_argument("--test_file", help="scored with best/ at the end (default: none)")
    g.add_argument("--config_name", help="a config other than the model's (default: the model's)")
    g.add_argument("--tokenizer_name", help="a tokenizer other than the model's (default: the model's)")
    g.add_argument("--max_predict_samples", type=int, default=-1,
                   help="predict the first N test sentences (default: %(default)s = all)")
    g.add_argument("--dataset_name", help="a `datasets` name, or a folder holding train/dev/test files, "
                   "instead of the *_file flags (default: none)")
    g.add_argument("--dataset_config_name", help="configuration of --dataset_name (default: none)")
    flags.renamed(g, "--text_column_name", "--text_column", default=None,
                  help="JSON/datasets field with the words (default: tokens, words, else the first list of strings)")
    flags.renamed(g, "--label_column_name", "--label_column", default=None,
                  help="CoNLL: column number of the tag, 0-based, negative from the end; JSON/datasets: field "
                       "name (default: the last column; ner_tags, tags, ner, labels, else the second list)")
    g.add_argument("--max_seq_length", type=int, default=128,
                   help="sub-tokens per sentence; words cut off are predicted O, with a warning (default: 128)")
    g.add_argument("--label_all_tokens", action="store_true",
                   help="train on every sub-token of a word, not just the first; evaluation always scores the "
                        "first (default: off)")
    g.add_argument("--cache_dir", default=None, help="tokenized features, keyed on data + labels + tokenizer + "
                   "settings (default: $HF_DATASETS_CACHE/ner_features or ~/.cache/huggingface/datasets/ner_features)")
    g.add_argument("--overwrite_cache", action="store_true", help="tokenize again even if cached (default: off)")
    parser.error = flags.fail  # one line, exit code 2: argparse's own error prints the usage too
    args = parser.parse_args(argv)
    if args.max_seq_length < 1:
        flags.fail(f"--max_seq_length {args.max_seq_length}: expected a positive number of sub-tokens")
    if not args.model_name_or_path:
        parser.error("--model_name_or_path is required")
    if args.dataset_name and (args.train_file or args.validation_file or args.test_file):
        parser.error("give --dataset_name or the *_file flags, not both")
    old_eval = args.do_eval and not (args.do_train or args.do_predict) and (args.test_file or args.dataset_name)
    if old_eval:  # ner.py's old --do_eval evaluated only, the test set too
        notice(f"--do_eval with {'--test_file' if args.test_file else '--dataset_name'} also predicts the test set, "
               "as ner.py's old --do_eval did (Hugging Face's spelling: --do_eval --do_predict)")
        args.do_predict, args.do_eval = True, bool(args.validation_file or args.dataset_name)
    flags.choose_jobs(args, "--dataset_name" if args.dataset_name else None)
    args.implied = args.inferred or bool(old_eval and args.dataset_name)  # the splits the dataset has decide
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
                flags.fail(f"{path}:{n}: not UTF-8 text (byte 0x{raw[e.start]:02x}: binary data or another encoding); "
                           "expected a UTF-8 text file")
    flags.fail(f"{path}: not UTF-8 text; expected a UTF-8 text file")


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
        flags.fail(f"{path}:{next(n for n, w in where if w < 2)}: 1 column; expected a word and a tag")
    example = next(n for n, w in where if w == usual)
    for n, w in where:
        if w != usual:
            hint = "a tag missing?" if w < usual else "a space inside a word, or a column too many?"
            flags.fail(f"{path}:{n}: found {w} column(s), expected {usual} as on line {example} ({hint})")


def read_conll(path, label_column):
    try:
        column = -1 if label_column is None else int(label_column)
    except ValueError:
        flags.fail(f"{path}:1: --label_column_name {label_column!r} must be a column number for a CoNLL file "
                   "(0 = first, -1 = last)")
    sentences, words, width = [], [], None
    # utf-8-sig: a byte-order mark is not part of the first word (it would hide a -DOCSTART- line)
    with open(path, encoding="utf-8-sig") as f:
        try:
            for n, line in enumerate(f, 1):
                cols = line.split()
                if cols and cols[0] != "-DOCSTART-":
                    if "\0" in line:
                        flags.fail(f"{path}:{n}: a NUL byte (binary data); expected a UTF-8 text file")
                    if width is None:
                        width = len(cols)
                        if width < 2 or not -width <= column < width:
                            fail_columns(path)  # if the first line is the odd one out, blame it
                        if width < 2:
                            flags.fail(f"{path}:{n}: 1 column; expected a word and a tag")
                        if not -width <= column < width:
                            flags.fail(f"{path}:{n}: --label_column_name {column} is out of range: lines have "
                                       f"{width} columns")
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
        flags.fail(f"{path}:{line}: a NUL byte (binary data); expected UTF-8 JSON text")
    if text.lstrip().startswith("["):
        try:
            return list(enumerate(json.loads(text), 1))
        except json.JSONDecodeError as e:
            flags.fail(f"{path}:{e.lineno}: not valid JSON ({e.msg})")
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append((n, json.loads(line)))
            except json.JSONDecodeError as e:
                flags.fail(f"{path}:{n}: not valid JSON ({e.msg})")
    return rows


def infer_columns(record, args):
    """The text and label columns of a record (a dict of a row's values), as Hugging Face's scripts pick them: the
    flags if given, else tokens/words and ner_tags/tags/ner/labels, else the first list of strings and the second
    list. An inferred choice is printed once per run (one line on stdout)."""
    lists = [k for k, v in record.items() if isinstance(v, list)]
    text = args.text_column_name or next((k for k in TEXT_FIELDS if k in record), None) or next(
        (k for k in lists if all(isinstance(w, str) for w in record[k])), TEXT_FIELDS[0])
    label = args.label_column_name or next((k for k in TAG_FIELDS if k in record), None) or next(
        (k for k in lists if k != text), "/".join(TAG_FIELDS))
    if not (args.text_column_name and args.label_column_name) and (text, label) not in NOTICED \
            and text in record and label in record:
        NOTICED.add((text, label))
        notice(f"words from column {text!r}, tags from column {label!r} (--text_column_name/--label_column_name "
               "to choose others)")
    return text, label


def read_records(rows, src, args):
    sentences, text_column, field = [], None, None
    for n, r in rows:
        if not isinstance(r, dict):
            flags.fail(f"{src}:{n}: expected a record with {args.text_column_name or 'tokens'!r} and tags, found "
                       f"{type(r).__name__}")
        if text_column is None:
            text_column, field = infer_columns(r, args)
        for name in (text_column, field):
            if name not in r:
                flags.fail(f"{src}:{n}: no {name!r} field (found: {', '.join(r)}); see "
                           "--text_column_name/--label_column_name")
        words, tags = r[text_column], r[field]
        if not isinstance(words, list) or not isinstance(tags, list):
            flags.fail(f"{src}:{n}: {text_column!r} and {field!r} must be lists")
        if len(words) != len(tags):
            flags.fail(f"{src}:{n}: {len(words)} words but {len(tags)} tags")
        for i, w in enumerate(words):
            if isinstance(w, bool) or not isinstance(w, (str, int, float)) or not str(w).strip():
                flags.fail(f"{src}:{n}: word {i} of {text_column!r} is {json.dumps(w)[:40]}; expected a non-empty "
                           "string")
        if words:
            sentences.append({"words": [str(w) for w in words], "tags": tags, "src": src, "lines": [n] * len(words)})
    return sentences


def read_file(path, args):
    if Path(path).is_dir():
        flags.fail(f"{path}: a directory; expected a CoNLL column file or .json/.jsonl records")
    if not Path(path).is_file():
        flags.fail(f"{path}: no such file")
    try:
        if str(path).endswith((".json", ".jsonl")):
            sentences = read_records(records(path), path, args)
        else:
            sentences = read_conll(path, args.label_column_name)
    except OSError as e:
        flags.fail(f"{path}: cannot read it ({e.strerror or e}); expected a readable text file")
    if not sentences:
        flags.fail(f"{path}:1: no sentences (empty file?)")
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
        flags.fail(f"--dataset_name {args.dataset_name}: {reason(e)}")
    data = {}
    for split, stems in SPLITS.items():
        name = next((s for s in stems if s in loaded), None)
        if name is None:
            continue
        d, src = loaded[name], f"{args.dataset_name}[{name}]"
        text, field = infer_columns(d[0] if len(d) else {}, args)
        for column in (text, field):
            if column not in d.column_names:
                flags.fail(f"{src}:1: no {column!r} column (found: {', '.join(d.column_names)}); "
                           "see --text_column_name/--label_column_name")
        names = getattr(getattr(d.features[field], "feature", None), "names", None)  # ClassLabel ids
        rows = ((i, {text: list(words), field: [names[t] for t in tags] if names else list(tags)})
                for i, (words, tags) in enumerate(zip(d[text], d[field]), 1))
        data[split] = read_records(rows, src, argparse.Namespace(**{**vars(args), "text_column_name": text,
                                                                    "label_column_name": field}))
    return data


def check_tags(sentences, label2id=None, known_as=""):
    """One line naming the first tag that is not O, B-TYPE or I-TYPE (E-/S- too), or, with label2id, not among its
    labels (known_as: whose labels they are, for the message)."""
    for s in sentences:
        for tag, n in zip(s["tags"], s["lines"]):
            if not isinstance(tag, str) or not TAG.fullmatch(tag):
                flags.fail(f"{s['src']}:{n}: tag {tag!r} is not O, B-TYPE or I-TYPE (wrong --label_column_name?)")
            if label2id is not None and tag not in label2id:
                flags.fail(f"{s['src']}:{n}: tag {tag!r} is not among {known_as} ({', '.join(label2id)})")


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
    """The training tags, checked (check_tags), in a stable order: O, then by entity type, B- before I-."""
    check_tags(sentences)
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
        return [digest, path.suffix, args.text_column_name, args.label_column_name, len(sentences)]
    return hashlib.blake2b(pickle.dumps([(s["words"], s["tags"]) for s in sentences], protocol=5),
                           digest_size=16).hexdigest()


def featurize(sentences, split, tokenizer, label2id, max_seq_length, label_all_tokens, args, accelerator):
    """encode() over the sentences with datasets.map (batched), cached under --cache_dir by a key of the data, the
    labels, the tokenizer and the settings: a second run memory-maps the Arrow file instead of tokenizing.
    Returns (features, kept: per sentence, an array of the words that kept a first sub-token)."""
    import datasets
    import pyarrow.compute as pc

    settings = [source_key(sentences, args), list(label2id.items()), max_seq_length, label_all_tokens,
                files.tokenizer_key(tokenizer), 1]  # 1: the version of read_file() and encode()
    key = hashlib.blake2b(json.dumps(settings).encode(), digest_size=12).hexdigest()

    def build():
        columns = {"words": [s["words"] for s in sentences], "tags": [s["tags"] for s in sentences]}
        return datasets.Dataset.from_dict(columns).map(
            encode_batch, batched=True, remove_columns=list(columns), desc=f"tokenizing {split}",
            fn_kwargs=dict(tokenizer=tokenizer, label2id=label2id, max_seq_length=max_seq_length,
                           label_all_tokens=label_all_tokens))
    features = files.cached_dataset(args.cache_dir, "ner_features", f"{split}-{key}", build, accelerator,
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


def scoring(tagging):
    """How a split tagged in this scheme is scored: conlleval does not know IOBES (E-/S- tags)."""
    return "seqeval strict (IOBES)" if tagging == "IOBES" else f"conlleval ({tagging})"


def score(gold, predicted, tagging="IOB2"):
    """seqeval entity-level micro P/R/F1, per type, and token accuracy (which counts O tokens: reported, never the
    headline). IOB1/IOB2: seqeval's default mode, conlleval-compatible; IOBES: seqeval's strict mode with the
    IOBES scheme (an entity counts only with its exact B-/I-/E- or S- tags)."""
    strict = {"mode": "strict", "scheme": IOBES} if tagging == "IOBES" else {}
    report = classification_report(gold, predicted, output_dict=True, zero_division=0, **strict)
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
    NOTICED.clear()
    args = parse_args(argv)
    out = Path(args.output_dir)
    for flag, folder in (("--output_dir", out), ("--cache_dir", args.cache_dir)):
        if folder and Path(folder).exists() and not Path(folder).is_dir():
            flags.fail(f"{flag} {folder}: a file; expected a folder (or a path to create one)")
    data = read_jobs(args)  # read and checked before setup(), so bad input never touches output_dir
    config, tokenizer = load_config_and_tokenizer(args)
    if not args.do_train:
        label2id, known_as = config.label2id, f"{args.model_name_or_path}'s labels"
    else:
        labels = label_list(data["train"])
        if set(config.label2id) == set(labels):  # a checkpoint already trained on these tags: keep its order
            labels = sorted(labels, key=config.label2id.get)
        label2id, known_as = {t: i for i, t in enumerate(labels)}, "the training tags"
    for split in ("dev", "test"):
        check_tags(data.get(split, []), label2id, known_as)
    for split, n in (("train", args.max_train_samples), ("dev", args.max_eval_samples),
                     ("test", args.max_predict_samples)):
        if split in data:
            data[split] = list(core.limit(data[split], n))

    accelerator = core.setup(args, training=args.do_train, varied_batches=True)
    if not args.do_train:  # an evaluation never replaces earlier results silently (core.setup guards a training run's)
        results_files = [out / name for split, name in (("dev", "eval_results.json"), ("dev", "predictions_dev.txt"),
                         ("test", "test_results.json"), ("test", "predictions_test.txt")) if split in data]
        flags.refuse_existing(results_files, args.overwrite_output_dir)
    schemes = {split: scheme(sentences) for split, sentences in data.items()}
    for split, sentences in data.items():
        accelerator.print(f"{split}: {sentences[0]['src']}: {len(sentences)} sentences, "
                          f"{sum(len(s['words']) for s in sentences)} words, tagging scheme {schemes[split]}")
    model = load_model(args, config, label2id)
    features, kept, cut = featurize_splits(args, data, tokenizer, label2id, accelerator)
    collator = DataCollatorForTokenClassification(tokenizer)
    id2label = {i: t for t, i in label2id.items()}

    def evaluate_split(split, arrays):
        predicted = decode(arrays, kept[split], data[split], id2label)
        return score([s["tags"] for s in data[split]], predicted, schemes[split]), predicted

    # --- train, keeping best/ by dev F1
    best_dev = {}  # best/'s dev loss and arrays, from the evaluation that picked it: not predicted twice
    if args.do_train:
        evaluate = (lambda arrays: evaluate_split("dev", arrays)[0]) if "dev" in data else None
        core.train(args, accelerator, model, tokenizer, features["train"], features.get("dev"), collator,
                   evaluate=evaluate, on_best=lambda metrics, arrays: best_dev.update(loss=metrics["loss"],
                                                                                     arrays=arrays))
        model = AutoModelForTokenClassification.from_pretrained(out / "best")

    # --- evaluate best/ (or --model without --do_train): dev with --do_eval, test with --do_predict
    model = accelerator.prepare(model)
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
    results = {}
    for split, name, wanted in (("dev", "eval", args.do_eval), ("test", "test", args.do_predict)):
        if split not in data or not wanted:
            continue
        if split == "dev" and best_dev:
            loss, arrays = best_dev["loss"], best_dev["arrays"]
        else:
            loss, arrays = core.predict(accelerator, model, core.eval_loader(accelerator, features[split], collator,
                                                                             args), desc=f"[best] [{split.upper()}]")
        metrics, predicted = evaluate_split(split, arrays)
        results[split] = {"loss": loss, **metrics, "scheme": schemes[split], "scoring": scoring(schemes[split]),
                          "sentences": len(data[split]), "words_cut": cut[split]}
        accelerator.print(f"{split}: f1 {metrics['f1']:.4f} precision {metrics['precision']:.4f} "
                          f"recall {metrics['recall']:.4f} accuracy {metrics['accuracy']:.4f}")
        if accelerator.is_main_process:
            files.write_json(out / f"{name}_results.json", results[split])
            files.write_text(out / f"predictions_{split}.txt", "".join(
                "".join(f"{w} {g} {p}\n" for w, g, p in zip(s["words"], s["tags"], tags)) + "\n"
                for s, tags in zip(data[split], predicted)))
    return results


def read_jobs(args):
    """The splits the jobs need: train (--do_train), dev (--do_eval, and during training whenever given: it picks
    best/), test (--do_predict)."""
    wanted = {"train": args.do_train, "dev": args.do_eval or args.do_train, "test": args.do_predict}
    if args.dataset_name:
        found = read_dataset(args)
        data = {split: sentences for split, sentences in found.items() if wanted[split]}
        for split, flag, name in (("train", args.do_train, "train"), ("dev", args.do_eval, "validation"),
                                  ("test", args.do_predict, "test")):
            if flag and split not in data and (split == "train" or not args.implied):
                flags.fail(f"--dataset_name {args.dataset_name}: no {name} split (found: {', '.join(found)})")
        return data
    if args.test_file and not args.do_predict:
        notice(f"--test_file {args.test_file} is not predicted: add --do_predict")
    return {split: read_file(path, args) for split, path in
            (("train", args.train_file), ("dev", args.validation_file), ("test", args.test_file))
            if path and wanted[split]}


def load_config_and_tokenizer(args):
    if args.config_name:  # a config folder needs no weights
        loading.check_exists(args.config_name, "--config_name", "a config folder")
        loading.check_model_files(args.model_name_or_path)
        try:
            config = AutoConfig.from_pretrained(args.config_name)
        except Exception as e:  # noqa: BLE001 (not found, offline, bad JSON: one line)
            flags.fail(f"--config_name {args.config_name}: cannot load its config ({reason(e)})")
    else:
        config = loading.load_config(args.model_name_or_path)
    flags.check_max_seq_length(args.max_seq_length, config)
    tokenizer = load_tokenizer(args.tokenizer_name or args.model_name_or_path,
                               "--tokenizer_name" if args.tokenizer_name else "--model_name_or_path")
    if args.max_seq_length <= tokenizer.num_special_tokens_to_add():
        flags.fail(f"--max_seq_length {args.max_seq_length}: leaves no room for a word beside the "
                   f"{tokenizer.num_special_tokens_to_add()} special tokens")
    return config, tokenizer


def load_model(args, config, label2id):
    try:
        given = {"config": config} if args.config_name else {}
        if not args.do_train:
            return AutoModelForTokenClassification.from_pretrained(args.model_name_or_path, **given)
        if args.config_name:
            config.id2label, config.label2id = dict(enumerate(label2id)), label2id
            return AutoModelForTokenClassification.from_pretrained(args.model_name_or_path, config=config,
                                                                   ignore_mismatched_sizes=True)
        return AutoModelForTokenClassification.from_pretrained(
            args.model_name_or_path, num_labels=len(label2id), id2label=dict(enumerate(label2id)),
            label2id=label2id, ignore_mismatched_sizes=True)  # a new head when the label count differs
    except Exception as e:  # noqa: BLE001 (weights that do not load, a type with no token-classification head)
        flags.fail(f"--model_name_or_path {args.model_name_or_path}: cannot load it for token classification "
                   f"({reason(e)})")


def featurize_splits(args, data, tokenizer, label2id, accelerator):
    """featurize() of every split: {split: features}, {split: kept}, {split: words with no sub-token left}."""
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
    return features, kept, cut

if __name__ == "__main__":
    main()
