"""Where a fine-tuning step's time goes, for glue.py and for the Trainer: torch.profiler over training steps
20-49 of bench/finetune_sst2.py's runs (MiniLM-L6, 4,000 SST-2 sentences, batch 32, fp32), each side in its own
process, and the ceiling that the shares put on any loop running the same matrix products.

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 taskset -c 0 python bench/profile_step.py --output bench/results/profile_step.json

Self CPU time per operator, grouped: matrix products (mm, addmm, bmm), the elementwise work the model's math
requires (GELU, softmax, LayerNorm, dropout masks and their backward), the optimizer, and the rest. Both sides run
the same matrix products on the same shapes (same data, batch and length grouping), so the Trainer's step time x
its matrix-product share is a floor under any loop's step: 1 / share bounds the speed-up of a loop that keeps the
math, and 1 / (share + required elementwise share) is the tighter bound.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, save  # noqa: E402
from finetune_sst2 import ROOT, sample_data  # noqa: E402

GROUPS = {
    "matrix products": ("aten::mm", "aten::addmm", "aten::bmm"),
    "required elementwise": ("aten::gelu", "aten::gelu_backward", "aten::_softmax", "aten::_softmax_backward_data",
                             "aten::native_layer_norm", "aten::native_layer_norm_backward", "aten::bernoulli_"),
    "optimizer": ("aten::_fused_adamw_",),
}
SIDES = {"trainer": "trainer_best_fp32", "ours": "ours_fp32"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", default=str(ROOT.parent / "shared/data/glue/SST-2"),
                        help="SST-2 folder with train.tsv and dev.tsv (default: ../shared/data/glue/SST-2)")
    parser.add_argument("--train_samples", type=int, default=4000, help="seeded sample of train.tsv (default: 4000)")
    parser.add_argument("--skip", type=int, default=20, help="optimizer steps before the profile (default: 20)")
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps profiled (default: 30)")
    parser.add_argument("--output", default=None, help="JSON file with both profiles (default: none)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # internal: profile one side
    parser.add_argument("--work", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def child(args):
    """One side of finetune_sst2.py under the profiler; a step is an optimizer step (a global step hook)."""
    from torch.optim.optimizer import register_optimizer_step_post_hook
    from torch.profiler import ProfilerActivity, profile, schedule

    import finetune_sst2
    prof = profile(activities=[ProfilerActivity.CPU],
                   schedule=schedule(wait=args.skip - 2, warmup=2, active=args.steps, repeat=1))
    prof.start()
    register_optimizer_step_post_hook(lambda *_: prof.step())
    finetune_sst2.child(finetune_sst2.parse_args(["--child", SIDES[args.child], "--work", args.work]))
    prof.stop()
    ops = {e.key: e.self_cpu_time_total for e in prof.key_averages()}
    total = sum(ops.values())
    shares = {g: sum(ops.get(k, 0) for k in keys) / total for g, keys in GROUPS.items()}
    shares["rest"] = 1 - sum(shares.values())
    top = sorted(ops.items(), key=lambda kv: -kv[1])[:25]
    result = {"step_ms": total / args.steps / 1000, "shares": shares,
              "top_ops": {k: {"ms_per_step": v / args.steps / 1000, "share": v / total} for k, v in top}}
    (Path(args.work) / "profile.json").write_text(json.dumps(result, indent=2))


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return child(args)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(tempfile.mkdtemp(prefix="profile_step_"))
    data = sample_data(args.data_dir, args.train_samples, 0, work)  # finetune_sst2.py's default sample
    sides = {}
    for side in SIDES:
        run_dir = work / side
        run_dir.mkdir()
        (run_dir / "data").symlink_to(data)
        proc = subprocess.run([sys.executable, __file__, "--child", side, "--work", str(run_dir), "--skip",
                               str(args.skip), "--steps", str(args.steps)], cwd=run_dir,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode:
            print(proc.stdout[-4000:], file=sys.stderr)
            raise SystemExit(f"error: {side} failed (exit {proc.returncode})")
        sides[side] = json.loads((run_dir / "profile.json").read_text())
        s = sides[side]["shares"]
        print(f"{side:8s} {sides[side]['step_ms']:7.1f} ms a step: " +
              ", ".join(f"{g} {100 * v:.1f}%" for g, v in s.items()), flush=True)
    t = sides["trainer"]["shares"]
    bounds = {"matrix products only": 1 / t["matrix products"],
              "with the required elementwise work": 1 / (t["matrix products"] + t["required elementwise"]),
              "with the optimizer too": 1 / (t["matrix products"] + t["required elementwise"] + t["optimizer"])}
    print("ceiling on a loop with the same math, x the Trainer's speed: " +
          ", ".join(f"{k} {v:.2f}x" for k, v in bounds.items()))
    import torch
    import transformers
    record = {"command": "HF_HUB_OFFLINE=1 python bench/profile_step.py " + " ".join(argv or sys.argv[1:]),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(torch=torch.__version__, transformers=transformers.__version__,
                                 threads=torch.get_num_threads()),
              "setup": {"train_samples": args.train_samples, "profiled_steps": [args.skip, args.skip + args.steps - 1],
                        "groups": GROUPS}, "sides": sides, "ceiling_vs_trainer": bounds}
    save(record, args.output)
    shutil.rmtree(work, ignore_errors=True)
    return record


if __name__ == "__main__":
    main()
