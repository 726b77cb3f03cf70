import json
from pathlib import Path

import torch


def _records(path, text_field, label_field):
    """Yields (line number, text, labels) from a JSONL file; a bad line (or file) raises ValueError naming it."""
    expected = f'expected one JSON object per line like {{"{text_field}": "...", "{label_field}": ["a", "b"]}}'
    if Path(path).is_dir():
        raise ValueError(f"{path}: a folder; {expected}")
    if not Path(path).is_file():
        raise ValueError(f"{path}: no such file")
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}:{number}: not UTF-8 text (byte 0x{raw[e.start]:02x}: binary data or another "
                                 f"encoding); {expected}") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{number}: not valid JSON ({e.msg}); {expected}") from None
            if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
                raise ValueError(f"{path}:{number}: no string field '{text_field}'; {expected}")
            labels = record.get(label_field, [])
            if not isinstance(labels, list) or not all(isinstance(l, str) for l in labels):
                raise ValueError(f"{path}:{number}: '{label_field}' is not a list of strings; {expected}")
            yield number, record[text_field], labels


def read_labels(path, text_field="text", label_field="labels", known=None):
    """The label set of a file, sorted, so ids are stable across runs; every line is checked. known: the labels a
    label must be one of (the training data's), else ValueError naming its line."""
    records = list(_records(path, text_field, label_field))
    if not records:  # before any model is built on an empty label set
        raise ValueError(f"{path}:1: no records (empty, or blank lines only); expected JSON lines of records")
    for number, _, labels in records if known is not None else []:
        unknown = [l for l in labels if l not in known]
        if unknown:
            raise ValueError(f"{path}:{number}: label {unknown[0]!r} is not in the training data's labels")
    return sorted({l for _, _, labels in records for l in labels})


def generate_dataset(path, tokenizer, label2id, max_seq_length=128, text_field="text", label_field="labels"):
    """A list of examples (a list is a fine torch Dataset): input_ids and a multi-hot label vector."""
    examples = []
    for number, text, labels in _records(path, text_field, label_field):
        unknown = [l for l in labels if l not in label2id]
        if unknown:
            raise ValueError(f"{path}:{number}: label {unknown[0]!r} is not in the training data's labels")
        target = torch.zeros(len(label2id))
        target[[label2id[l] for l in labels]] = 1.0
        ids = tokenizer(text, truncation=True, max_length=max_seq_length)["input_ids"]
        examples.append({"input_ids": ids, "labels": target})
    if not examples:
        raise ValueError(f"{path}:1: no records (empty, or blank lines only); expected JSON lines of records")
    return examples


class Collator:
    """Pads each batch to its own longest sequence (not to max_seq_length) and stacks the labels."""

    def __init__(self, tokenizer, pad_to_multiple_of=None):
        self.tokenizer, self.pad_to_multiple_of = tokenizer, pad_to_multiple_of

    def __call__(self, examples):
        batch = self.tokenizer.pad([{"input_ids": e["input_ids"]} for e in examples], return_tensors="pt",
                                   pad_to_multiple_of=self.pad_to_multiple_of)
        batch["labels"] = torch.stack([e["labels"] for e in examples])
        return batch
