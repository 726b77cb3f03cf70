"""Tiny models, tokenizers and data built on the spot, for the tests and the offline demo: nothing is
downloaded, everything fits in seconds on a CPU.

    python tests/tiny.py data demo/data                                   # topic JSONL: train/valid/test
    python tests/tiny.py model bert demo/tiny-bert --corpus demo/data/train.jsonl

A model folder holds a *ForMaskedLM checkpoint and its tokenizer: usable as --model_name_or_path by
every script (a task head is added on load).
"""
import argparse
import json
import random
from collections import Counter
from pathlib import Path

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

TOPICS = {
    "sports": "match goal team coach league season striker referee stadium tournament".split(),
    "politics": "election minister parliament vote senator campaign policy party governor treaty".split(),
    "science": "experiment physics molecule telescope research theory laboratory genome particle climate".split(),
    "food": "recipe chef restaurant flavour dessert bread spices dinner kitchen cheese".split(),
    "music": "concert album guitar singer orchestra melody band festival piano chorus".split(),
}
FILLER = ("the a an of in on at with after before today yesterday people said new old big small very "
          "report week city country many some there their this that was were is are").split()
# words the tokenizer tests need to see: accents, CJK, emoji
EXTRA = ["café déjà vu naïve Zürich São Paulo", "東京 は 日本 の 首都 です", "北京 欢迎 你", "good game 🎉 🙂 ok"]


def topic_records(n, seed):
    """Multi-label records: a topic is on when two of its keywords occur; half the records also carry one
    keyword of a topic that is off, so a bag of keywords is not enough."""
    rng = random.Random(seed)
    records = []
    for _ in range(n):
        labels = sorted(rng.sample(sorted(TOPICS), rng.choice([1, 1, 2, 2, 3])))
        words = [w for t in labels for w in rng.sample(TOPICS[t], 2)] + rng.sample(FILLER, rng.randint(3, 9))
        off = [t for t in TOPICS if t not in labels]
        if off and rng.random() < 0.5:
            words.append(rng.choice(TOPICS[rng.choice(off)]))
        rng.shuffle(words)
        records.append({"text": " ".join(words).capitalize() + ".", "labels": labels})
    return records


def write_topic_data(folder, sizes=(2000, 200, 200), seed=0):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, (name, n) in enumerate(zip(("train", "valid", "test"), sizes)):
        with open(folder / f"{name}.jsonl", "w", encoding="utf-8") as f:
            for r in topic_records(n, seed + i):
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return folder


def corpus(n=300, seed=0):
    """Plain sentences (topic text plus a few non-ASCII lines) to train tokenizers on."""
    return [r["text"] for r in topic_records(n, seed)] + EXTRA


def train_tokenizer(kind, texts, vocab_size=300):
    """A transformers tokenizer trained on texts: 'wordpiece' (BERT), 'bpe' (byte-level, RoBERTa) or
    'unigram' (SentencePiece-style, loaded as ALBERT's tokenizer)."""
    from transformers import AlbertTokenizer, BertTokenizer, RobertaTokenizer

    if kind == "wordpiece":
        # built by hand, not with tokenizers' WordPieceTrainer: that one breaks frequency ties differently
        # from run to run, and tests and the demo need the same ids every time
        normalizer, pre = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
        counts = Counter(w for t in texts for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(t)))
        chars = sorted({c for w in counts for c in w})
        vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + ["##" + c for c in chars]
        vocab += sorted((w for w in counts if len(w) > 1), key=lambda w: (-counts[w], w))[:vocab_size - len(vocab)]
        return BertTokenizer(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=True)
    if kind == "bpe":
        special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special,
                                                           initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
        model = json.loads(tok.to_str())["model"]
        merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
        return RobertaTokenizer(vocab=model["vocab"], merges=merges)
    if kind == "unigram":
        special = ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.train_from_iterator(texts, trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=special,
                                                               unk_token="<unk>"))
        vocab = [tuple(v) for v in json.loads(tok.to_str())["model"]["vocab"]]
        return AlbertTokenizer(vocab=vocab, do_lower_case=False, keep_accents=True)
    raise ValueError(f"unknown tokenizer kind {kind!r}")


ARCHS = {"bert": "wordpiece", "roberta": "bpe", "distilbert": "wordpiece"}


def build_model(arch, folder, texts=None, tokenizer=None, layers=2, hidden=32, max_len=128, dropout=0.1, seed=0):
    """Saves a tiny randomly initialised *ForMaskedLM and its tokenizer into folder; returns the folder."""
    import torch
    from transformers import (AutoModelForMaskedLM, BertConfig, DistilBertConfig, RobertaConfig)

    tok = train_tokenizer(tokenizer or ARCHS[arch], texts or corpus())
    common = dict(vocab_size=len(tok), pad_token_id=tok.pad_token_id)
    if arch == "bert":
        config = BertConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                            intermediate_size=2 * hidden, max_position_embeddings=max_len, hidden_dropout_prob=dropout,
                            attention_probs_dropout_prob=dropout, **common)
    elif arch == "roberta":
        config = RobertaConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                               intermediate_size=2 * hidden, max_position_embeddings=max_len + 2, type_vocab_size=1,
                               hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
                               bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, **common)
    elif arch == "distilbert":
        config = DistilBertConfig(dim=hidden, n_layers=layers, n_heads=2, hidden_dim=2 * hidden,
                                  max_position_embeddings=max_len, dropout=dropout, attention_dropout=dropout, **common)
    else:
        raise ValueError(f"unknown architecture {arch!r}")
    torch.manual_seed(seed)
    model = AutoModelForMaskedLM.from_config(config)
    folder = Path(folder)
    model.save_pretrained(folder)
    tok.model_max_length = max_len
    tok.save_pretrained(folder)
    return folder


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("data", help="write train/valid/test.jsonl topic data")
    d.add_argument("folder")
    m = sub.add_parser("model", help="build a tiny model + tokenizer")
    m.add_argument("arch", choices=sorted(ARCHS))
    m.add_argument("folder")
    m.add_argument("--corpus", help="JSONL (text field) or text file to train the tokenizer on (default: built-in)")
    m.add_argument("--tokenizer", choices=["wordpiece", "bpe", "unigram"], help="(default: the architecture's own)")
    a = parser.parse_args()
    if a.command == "data":
        print(write_topic_data(a.folder))
    else:
        texts = None
        if a.corpus:
            lines = Path(a.corpus).read_text(encoding="utf-8").splitlines()
            texts = [json.loads(l)["text"] if a.corpus.endswith(".jsonl") else l for l in lines if l.strip()]
        print(build_model(a.arch, a.folder, texts, a.tokenizer))
