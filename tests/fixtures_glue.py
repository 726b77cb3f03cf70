"""Synthetic GLUE task folders in the exact classic layouts, for the tests and the offline demo: CoLA without a
header, MRPC with a UTF-8 BOM, stray double quotes (only QUOTE_NONE reads them right), SST-2's space before the
tab, MNLI's dev_matched/dev_mismatched, unlabelled test files with an index column. The words come from
tests/tiny.py, so the tiny models' tokenizers know them.

    python tests/fixtures_glue.py demo/glue                                   # all nine tasks + diagnostic/
    python tests/fixtures_glue.py demo/glue --tasks sst2,stsb --sizes 400,100,100

The label follows cue words: a word of GROUP_A (sports, music) makes a sentence positive (SST-2, CoLA); for
pairs, the second sentence's cue decides (entailment / paraphrase / duplicate), and STS-B's score counts
GROUP_A cues among five.
"""
import argparse
import random
from pathlib import Path

from tiny import FILLER, TOPICS

GROUP_A, GROUP_B, NEUTRAL = TOPICS["sports"] + TOPICS["music"], TOPICS["politics"] + TOPICS["science"], TOPICS["food"]
FOLDERS = {"cola": "CoLA", "sst2": "SST-2", "mrpc": "MRPC", "stsb": "STS-B", "qqp": "QQP", "mnli": "MNLI",
           "qnli": "QNLI", "rte": "RTE", "wnli": "WNLI"}
# how each task writes a binary label (positive first) or MNLI's three
CODES = {"cola": ("1", "0"), "sst2": ("1", "0"), "mrpc": ("1", "0"), "qqp": ("1", "0"), "wnli": ("1", "0"),
         "qnli": ("entailment", "not_entailment"), "rte": ("entailment", "not_entailment"),
         "mnli": ("entailment", "contradiction", "neutral")}


def sentence(rng, cues):
    words = list(cues) + rng.sample(FILLER, rng.randint(3, 7))
    rng.shuffle(words)
    text = " ".join(words) + " ."
    return '" ' + text if rng.random() < 0.1 else text  # an unbalanced quote, as in MRPC's strings


def examples(task, n, seed):
    """[(sentence1, sentence2 or None, label)]: label is an index into CODES[task], or STS-B's score."""
    rng, out = random.Random(seed), []
    for _ in range(n):
        if task in ("sst2", "cola"):
            label = rng.randrange(2)
            out.append((sentence(rng, [rng.choice(GROUP_B if label else GROUP_A)]), None, label))
        elif task == "stsb":
            k = rng.randint(0, 5)
            cues = rng.sample(GROUP_A, k) + rng.sample(NEUTRAL, 5 - k)
            out.append((sentence(rng, rng.sample(NEUTRAL, 2)), sentence(rng, cues), k + round(rng.uniform(-0.4, 0.4), 1)))
        else:
            label = rng.randrange(len(CODES[task]))
            cue = rng.choice((GROUP_A, GROUP_B, NEUTRAL)[label])
            out.append((sentence(rng, rng.sample(NEUTRAL + GROUP_A, 2)), sentence(rng, [cue]), label))
    return out


def rows(task, split, data):
    """The lines of one file, header included, exactly as download_glue_data.py lays the task out."""
    test, code = split.startswith("test"), lambda y: CODES[task][y]
    if task == "cola":
        if test:
            return ["index\tsentence"] + [f"{i}\t{a}" for i, (a, _, _) in enumerate(data)]
        return [f"gj04\t{code(y)}\t{'' if code(y) == '1' else '*'}\t{a}" for a, _, y in data]  # no header
    if task == "sst2":
        if test:
            return ["index\tsentence"] + [f"{i}\t{a}" for i, (a, _, _) in enumerate(data)]
        return ["sentence\tlabel"] + [f"{a} \t{code(y)}" for a, _, y in data]  # SST-2 has a space before the tab
    if task == "mrpc":
        ids = lambda i: f"{1000 + 2 * i}\t{1001 + 2 * i}"
        if test:
            return ["index\t#1 ID\t#2 ID\t#1 String\t#2 String"] + [
                f"{i}\t{ids(i)}\t{a}\t{b}" for i, (a, b, _) in enumerate(data)]
        return ["\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String"] + [
            f"{code(y)}\t{ids(i)}\t{a}\t{b}" for i, (a, b, y) in enumerate(data)]
    if task == "stsb":
        head = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2"
        meta = lambda i: f"{i}\tmain-captions\tMSRvid\t2012test\t{i:04d}\tnone\tnone"
        if test:
            return [head] + [f"{meta(i)}\t{a}\t{b}" for i, (a, b, _) in enumerate(data)]
        return [head + "\tscore"] + [f"{meta(i)}\t{a}\t{b}\t{min(max(y, 0), 5):.3f}" for i, (a, b, y) in enumerate(data)]
    if task == "qqp":
        if test:
            return ["id\tquestion1\tquestion2"] + [f"{i}\t{a}\t{b}" for i, (a, b, _) in enumerate(data)]
        return ["id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate"] + [
            f"{i}\t{2 * i}\t{2 * i + 1}\t{a}\t{b}\t{code(y)}" for i, (a, b, y) in enumerate(data)]
    if task == "mnli":
        head = ("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
                "sentence2_parse\tsentence1\tsentence2")
        meta = lambda i, a, b: f"{i}\t{i}\t{i}e\tfiction\t( {a} )\t( {b} )\t(ROOT {a})\t(ROOT {b})\t{a}\t{b}"
        if test:
            return [head] + [meta(i, a, b) for i, (a, b, _) in enumerate(data)]
        if split == "train":
            return [head + "\tlabel1\tgold_label"] + [
                f"{meta(i, a, b)}\t{code(y)}\t{code(y)}" for i, (a, b, y) in enumerate(data)]
        return [head + "\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label"] + [
            f"{meta(i, a, b)}" + f"\t{code(y)}" * 6 for i, (a, b, y) in enumerate(data)]
    first, second = ("question", "sentence") if task == "qnli" else ("sentence1", "sentence2")  # QNLI, RTE, WNLI
    if test:
        return [f"index\t{first}\t{second}"] + [f"{i}\t{a}\t{b}" for i, (a, b, _) in enumerate(data)]
    return [f"index\t{first}\t{second}\tlabel"] + [f"{i}\t{a}\t{b}\t{code(y)}" for i, (a, b, y) in enumerate(data)]


def write_glue(root, tasks=tuple(FOLDERS), sizes=(200, 60, 40), seed=0):
    """Writes root/<GLUE folder>/{train,dev,test}.tsv (MNLI: dev_matched, dev_mismatched, test_matched,
    test_mismatched) and root/diagnostic/diagnostic.tsv; returns root."""
    root = Path(root)
    for t, task in enumerate(tasks):
        files = {"train": sizes[0], "dev": sizes[1], "test": sizes[2]}
        if task == "mnli":
            files = {"train": sizes[0], "dev_matched": sizes[1], "dev_mismatched": sizes[1],
                     "test_matched": sizes[2], "test_mismatched": sizes[2]}
        folder = root / FOLDERS[task]
        folder.mkdir(parents=True, exist_ok=True)
        for s, (split, n) in enumerate(files.items()):
            lines = rows(task, split, examples(task, n, seed + 100 * t + s))
            (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")
    (root / "diagnostic").mkdir(parents=True, exist_ok=True)
    diagnostic = examples("rte", sizes[2], seed + 999)
    (root / "diagnostic" / "diagnostic.tsv").write_text(
        "\n".join(["index\tsentence1\tsentence2"] + [f"{i}\t{a}\t{b}" for i, (a, b, _) in enumerate(diagnostic)]) + "\n")
    return root


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", help="where the task folders go")
    parser.add_argument("--tasks", default=",".join(FOLDERS), help="comma-separated (default: all nine)")
    parser.add_argument("--sizes", default="200,60,40", help="train,dev,test examples per task (default: 200,60,40)")
    parser.add_argument("--seed", type=int, default=0, help="(default: 0)")
    a = parser.parse_args()
    print(write_glue(a.folder, a.tasks.split(","), tuple(int(n) for n in a.sizes.split(",")), a.seed))
