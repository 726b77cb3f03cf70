"""Synthetic SQuAD files in the official JSON layout, for the tests and the offline demo.

    python tests/fixtures_squad.py demo/squad --v2          # train-v2.0.json, dev-v2.0.json, corpus.txt
    python tests/fixtures_squad.py demo/squad --sizes 300,60   # train-v1.1.json, dev-v1.1.json (paragraphs)

Each paragraph is about one made-up country: a fact ("The capital of Dorvia is Port Alder."; up to four with
--max_facts) among one to three filler sentences. Every fact is asked about ("What is the capital of Dorvia?"); with
--v2 each paragraph also asks about a relation it does not mention, an impossible question. A tiny BERT learns the
one-fact v1.1 data in about 50 steps (answer what follows "<relation> of <country> is"); telling the impossible
questions apart (or the facts of several relations) takes it hundreds. corpus.txt (contexts and questions) is what
a tiny tokenizer is trained on, so every word is in its vocabulary.
"""
import argparse
import json
import random
from pathlib import Path

from tiny import FILLER

COUNTRIES = ("Dorvia Kelmor Ostara Brenn Valdia Tirsk Umbra Lisgar Fennick Arvel Quorra Zemlin Hadra Pellin Corva "
             "Ismir Jornet Maldor Nessa Rovan Sarnia Tolbec Vessa Wyrm Yalda").split()
RELATIONS = {  # relation: its answers; several have two words, and none is shared between relations
    "capital": ["Port Alder", "Brimton", "Castlereach", "Dunmere", "Eskholm", "New Falk", "Greywater", "Holloway"],
    "river": ["Ostwater", "Silverrun", "the Tamber", "Lune", "Redbrook", "Whitewash", "Gorrin", "Sable"],
    "king": ["Aldric", "Bertram", "Cedric the Bold", "Duncan", "Edmund", "Fergus", "Godric", "Harold"],
    "mountain": ["Mount Kell", "Ironpeak", "Stormcrest", "Frostfang", "Highmoor", "Eagle Rock", "Thornback", "Vardun"],
}


def filler(rng):
    return " ".join(rng.sample(FILLER, rng.randint(4, 8))).capitalize() + "."


def paragraph(rng, v2, number, max_facts=1):
    """One {"context", "qas"} in the official key order, answer offsets computed while the context is built."""
    country = rng.choice(COUNTRIES)
    present = rng.sample(sorted(RELATIONS), rng.randint(1, max_facts))
    facts = {r: rng.choice(RELATIONS[r]) for r in present}
    sentences = [("fact", r) for r in present] + [("filler", None)] * rng.randint(1, 3)
    rng.shuffle(sentences)
    context, starts = "", {}
    for kind, relation in sentences:
        context += " " if context else ""
        if kind == "fact":
            prefix = f"The {relation} of {country} is "
            starts[relation] = len(context) + len(prefix)
            context += f"{prefix}{facts[relation]}."
        else:
            context += filler(rng)
    qas = []
    for relation in present:
        qa = {"question": f"What is the {relation} of {country}?", "id": f"{number:012x}{len(qas):012x}",
              "answers": [{"text": facts[relation], "answer_start": starts[relation]}]}
        qas.append({**qa, "is_impossible": False} if v2 else {"answers": qa["answers"], "question": qa["question"],
                                                              "id": qa["id"]})
    absent = [r for r in RELATIONS if r not in present]
    if v2 and absent:
        relation = rng.choice(absent)
        qas.append({"plausible_answers": [], "question": f"What is the {relation} of {country}?",
                    "id": f"{number:012x}{len(qas):012x}", "answers": [], "is_impossible": True})
    return {"qas": qas, "context": context}


def squad_file(n_paragraphs, seed, v2, max_facts=1, per_article=5):
    rng = random.Random(seed)
    paragraphs = [paragraph(rng, v2, seed * 100000 + i, max_facts) for i in range(n_paragraphs)]
    data = [{"title": f"Article_{k // per_article}", "paragraphs": paragraphs[k:k + per_article]}
            for k in range(0, n_paragraphs, per_article)]
    return {"version": "v2.0", "data": data} if v2 else {"data": data, "version": "1.1"}


def write_squad(folder, sizes=(200, 40), v2=False, seed=0, max_facts=1):
    """train-*.json and dev-*.json (paragraph counts `sizes`) and corpus.txt into folder; returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tag = "v2.0" if v2 else "v1.1"
    paths = {}
    for i, (split, n) in enumerate(zip(("train", "dev"), sizes)):
        paths[split] = folder / f"{split}-{tag}.json"
        paths[split].write_text(json.dumps(squad_file(n, seed + i + 1, v2, max_facts)))
    lines = [t for path in paths.values() for a in json.loads(path.read_text())["data"] for p in a["paragraphs"]
             for t in [p["context"]] + [q["question"] for q in p["qas"]]]
    paths["corpus"] = folder / "corpus.txt"
    paths["corpus"].write_text("\n".join(lines) + "\n")
    return paths


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder")
    parser.add_argument("--v2", action="store_true", help="SQuAD v2.0 with impossible questions (default: v1.1)")
    parser.add_argument("--sizes", default="200,40", help="train,dev paragraphs (default: 200,40)")
    parser.add_argument("--max_facts", type=int, default=1, help="facts per paragraph, 1 to 4; more than one makes "
                        "the model match the asked relation, which a tiny model learns far more slowly (default: 1)")
    parser.add_argument("--seed", type=int, default=0, help="(default: 0)")
    a = parser.parse_args()
    for name, path in write_squad(a.folder, tuple(map(int, a.sizes.split(","))), a.v2, a.seed, a.max_facts).items():
        print(f"{name}: {path}")
