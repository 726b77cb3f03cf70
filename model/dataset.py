import json

import torch


def _records(path, text_field, label_field):
    """Yields (line number, text, labels) from a JSONL file; a bad line raises ValueError naming it."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            expected = f'expected one JSON object per line like {{"{text_field}": "...", "{label_field}": ["a", "b"]}}'
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


def read_labels(path, text_field="text", label_field="labels"):
    """The label set of a file, sorted, so ids are stable across runs."""
    records = list(_records(path, text_field, label_field))
    if not records:  # before any model is built on an empty label set
        raise ValueError(f"{path}:1: no records; {path} is empty")
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
        raise ValueError(f"{path}:1: no records; {path} is empty")
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
