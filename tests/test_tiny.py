"""The test harness itself: every tiny architecture and tokenizer kind builds, loads through the Auto
classes as a --model_name_or_path would, and is the same every time it is built."""
import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoModelForTokenClassification, AutoTokenizer

import tiny


@pytest.mark.parametrize("arch, kind", [("bert", "wordpiece"), ("roberta", "bpe"), ("distilbert", "wordpiece"),
                                        ("bert", "unigram")])
def test_tiny_model_loads_and_runs(tmp_path, arch, kind):
    folder = tiny.build_model(arch, tmp_path / arch, tokenizer=kind)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForMaskedLM.from_pretrained(folder)
    assert model.config.model_type == arch and model.config.vocab_size == len(tokenizer)
    assert model.config.pad_token_id == tokenizer.pad_token_id
    batch = tokenizer(["Café déjà vu, 東京 🎉", "the match"], padding=True, return_tensors="pt")
    assert tokenizer.unk_token_id not in batch["input_ids"][1].tolist()  # corpus words are in the vocab
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (*batch["input_ids"].shape, len(tokenizer))
    head = AutoModelForTokenClassification.from_pretrained(folder, num_labels=3)
    assert head.config.num_labels == 3


def test_wordpiece_and_bpe_builds_are_reproducible(tmp_path):
    for kind in ("wordpiece", "bpe"):
        a, b = tiny.train_tokenizer(kind, tiny.corpus()), tiny.train_tokenizer(kind, tiny.corpus())
        assert a.get_vocab() == b.get_vocab()
    one = AutoModelForMaskedLM.from_pretrained(tiny.build_model("bert", tmp_path / "one"))
    two = AutoModelForMaskedLM.from_pretrained(tiny.build_model("bert", tmp_path / "two"))
    assert all(torch.equal(x, y) for x, y in zip(one.state_dict().values(), two.state_dict().values()))


def test_topic_records_put_labels_in_the_text():
    for record in tiny.topic_records(50, seed=3):
        words = set(record["text"].lower().rstrip(".").split())
        for topic, keywords in tiny.TOPICS.items():
            assert (len(words & set(keywords)) >= 2) == (topic in record["labels"])
