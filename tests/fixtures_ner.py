"""Synthetic CoNLL-2003-style NER data, written on the spot for the tests and the offline demo.

    python tests/fixtures_ner.py demo/ner-data                  # train.txt dev.txt test.txt + sentences.txt
    python tests/fixtures_ner.py demo/ner-iob1 --scheme iob1    # the original CoNLL-2003 tagging

Like the real files: four space-separated columns (word POS chunk NER), a -DOCSTART- line opening each
document, a blank line between sentences. sentences.txt holds the training sentences as plain text, one a
line, for training a tokenizer (tests/tiny.py model ... --corpus). Entity words come from short lists, so a
tiny model learns them in seconds; some templates put two entities of one type side by side, the case
where IOB1 needs a B- tag.
"""
import argparse
import json
import random
from pathlib import Path

NAMES = {
    "PER": ["John Smith", "Maria Lopez", "Ahmed", "Chen Wei", "Anna Berg", "Peter Blackburn", "Yuki Sato", "Jordan"],
    "LOC": ["Paris", "Berlin", "New York", "Tokyo", "Cairo", "Lima", "Oslo", "Sao Paulo", "Jordan", "Washington"],
    "ORG": ["Reuters", "United Nations", "Bayern Munich", "Nasdaq", "Red Cross", "Washington", "Sony", "World Bank"],
    "MISC": ["German", "British", "French", "Japanese", "Olympic", "South African", "European"],
}
TEMPLATES = [
    "{PER} visited {LOC} on Monday .",
    "{ORG} said profits rose in {LOC} .",
    "The {MISC} team beat {ORG} 2-1 .",
    "{PER} , a spokesman for {ORG} , declined to comment .",
    "Shares of {ORG} fell in {LOC} trading .",
    "{MISC} officials met {PER} in {LOC} .",
    "{LOC} {LOC} talks ended without agreement .",
    "{MISC} {MISC} trade rose by 4 percent .",
    "{PER} scored twice for {ORG} .",
    "No change was reported on the market today .",
    "Police said the fire started late at night .",
]


def sentences(n, seed=0):
    """n sentences as lists of (word, IOB2 tag)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        sentence = []
        for part in rng.choice(TEMPLATES).split():
            if part.startswith("{"):
                kind = part[1:-1]
                words = rng.choice(NAMES[kind]).split()
                sentence += [(w, ("B-" if i == 0 else "I-") + kind) for i, w in enumerate(words)]
            else:
                sentence.append((part, "O"))
        out.append(sentence)
    return out


def to_iob1(tags):
    """IOB2 -> IOB1: an entity starts with I- unless it directly follows one of the same type."""
    out = []
    for i, tag in enumerate(tags):
        if tag.startswith("B-") and not (i > 0 and tags[i - 1] != "O" and tags[i - 1][2:] == tag[2:]):
            tag = "I-" + tag[2:]
        out.append(tag)
    return out


def write_conll(path, data, scheme="iob2", doc_size=8):
    lines = []
    for i, sentence in enumerate(data):
        if i % doc_size == 0:
            lines += ["-DOCSTART- -X- -X- O", ""]
        tags = [t for _, t in sentence]
        tags = to_iob1(tags) if scheme == "iob1" else tags
        for (word, _), tag in zip(sentence, tags):
            pos = "NNP" if tag != "O" else ("." if word in ".,:" else "NN")
            lines.append(f"{word} {pos} {'I-NP' if tag != 'O' else 'O'} {tag}")
        lines.append("")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_jsonl(path, data):
    with open(path, "w", encoding="utf-8") as f:
        for sentence in data:
            f.write(json.dumps({"tokens": [w for w, _ in sentence], "ner_tags": [t for _, t in sentence]}) + "\n")


def write_data(folder, sizes=(300, 80, 80), scheme="iob2", seed=0):
    """train.txt, dev.txt, test.txt (and sentences.txt) in folder; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for k, (name, n) in enumerate(zip(("train", "dev", "test"), sizes)):
        data = sentences(n, seed + k)
        write_conll(folder / f"{name}.txt", data, scheme)
        if name == "train":
            (folder / "sentences.txt").write_text("\n".join(" ".join(w for w, _ in s) for s in data) + "\n")
    return folder


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder")
    parser.add_argument("--scheme", choices=["iob1", "iob2"], default="iob2", help="(default: iob2)")
    parser.add_argument("--sizes", type=int, nargs=3, default=[1000, 200, 200], help="train dev test sentences "
                        "(default: 1000 200 200)")
    parser.add_argument("--seed", type=int, default=0, help="(default: 0)")
    a = parser.parse_args()
    print(write_data(a.folder, a.sizes, a.scheme, a.seed))
