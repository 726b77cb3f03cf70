"""What a training run records as it goes: log.json and the --report_to trackers. Knows the records core.train
hands it; no model, no task.

log.json, rewritten at every record so that a crash keeps the history:
    {"Epoch N": {"train_log": {"loss"}, "valid_log": {metrics}}, ...,
     "seconds": {"train", "evaluate", "save"},        # where the run's wall time went (benchmarks read these)
     "train": [{step, epoch, loss, lr, terms...}], "eval": [{step, loss, metrics...}]}
"""
import json
import time
from contextlib import contextmanager
from pathlib import Path

from files import write_json


class Log:
    """log.json and the trackers (through Accelerate; tensorboard events in output_dir/runs); the main process
    writes. Resuming drops what a killed run logged after its checkpoint, in log.json and in the tensorboard
    events, and keeps counting the seconds it had spent."""

    def __init__(self, args, accelerator, resumed_step):
        self.accelerator, self.main = accelerator, accelerator.is_main_process
        self.path, self.data = Path(args.output_dir) / "log.json", {"train": [], "eval": []}
        if resumed_step is not None and self.path.exists():
            data = json.loads(self.path.read_text(encoding="utf-8"))
            for part in ("train", "eval"):
                data[part] = [r for r in data.get(part, []) if r["step"] <= resumed_step]
            self.data = data
        self.seconds = {"train": 0.0, "evaluate": 0.0, "save": 0.0, **self.data.get("seconds", {})}
        purge = {} if resumed_step is None else {"purge_step": resumed_step + 1}
        accelerator.init_trackers("runs", init_kwargs={"tensorboard": purge})
        self._since = time.perf_counter()

    def forget_epochs_after(self, epoch):
        self.data = {k: v for k, v in self.data.items() if not k.startswith("Epoch ") or int(k.split()[1]) <= epoch}

    @contextmanager
    def timed(self, what):
        """Counts the time inside as `what` ("evaluate", "save"); the rest since the run started is "train"."""
        self._tick()
        try:
            yield
        finally:
            now = time.perf_counter()
            self.seconds[what] += now - self._since
            self._since = now

    def _tick(self):
        now = time.perf_counter()
        self.seconds["train"] += now - self._since
        self._since = now

    def record(self, step, entry, epoch=None, part=None):
        if not self.main:
            return
        kind = "eval" if part == "valid_log" else "train"
        self.data[kind].append({"step": step, **entry})
        if epoch is not None:
            self.data.setdefault(f"Epoch {epoch}", {})[part] = entry
        self.accelerator.log({f"{kind}/{k}": v for k, v in entry.items() if isinstance(v, (int, float))}, step=step)
        self.save()

    def summarise_epoch(self, epoch, loss):
        self.data.setdefault(f"Epoch {epoch}", {})["train_log"] = {"loss": loss}

    def save(self):
        if self.main:
            self._tick()
            lists = ("train", "eval")  # the long lists last, so the per-epoch summary reads first
            write_json(self.path, {**{k: v for k, v in self.data.items() if k not in lists + ("seconds",)},
                                   "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
                                   **{k: self.data[k] for k in lists}})

    def close(self, save=True):
        if save:
            self.save()
        for tracker in self.accelerator.trackers:  # not end_training(): the script still evaluates on every process
            tracker.finish()
