"""The shared training loop on Accelerate, no Trainer: setup, the loop (schedule, resume, the log / evaluate / save /
stop decisions); the evaluation pass is inference.py's, named here too. Knows no task: a task script hands it a
model, datasets, a collator and, optionally, evaluate() and compute_loss():
    accelerator = core.setup(args)  # after flags.add_args(parser): checks flags and output_dir, seeds
    best = core.train(args, accelerator, model, tokenizer, train_dataset, eval_dataset, collate_fn, evaluate=...)
then core.predict(...) for its own evaluation of best/. Saved folders: checkpoint.py; log.json: runlog.py.
"""
import json
import math
import shutil
import sys
import warnings
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from accelerate.utils import set_seed
from tqdm.auto import tqdm
from transformers import get_scheduler
from transformers.utils import logging as hf_logging

import batches
import checkpoint
import flags
import heap
import optim
from files import write_json
from flags import fail
from inference import eval_loader, predict  # also the scripts' core.eval_loader, core.predict
from runlog import Log

hf_logging.set_verbosity_error()  # quiet by default: no load-report tables or per-save notices on stderr


def setup(args, training=True, varied_batches=False):
    """Accelerator + seed, after checking the flags and output_dir (training=False: evaluation only, the run there
    is not checked). Finishes or undoes a save that a kill interrupted. Nothing is removed here: an earlier run
    that --overwrite_output_dir replaces is set aside only when training starts. Call before any expensive work.
    varied_batches=True: the batches are padded each to its own length; on a CPU, heap.py's allocator settings."""
    flags.check_args(args)
    if args.mixed_precision == "fp16" and not torch.cuda.is_available():
        fail("--mixed_precision fp16 needs a GPU; use bf16 on CPU")
    # a second main() in one process (tests, notebooks) needs fresh settings: Accelerate keeps them in singletons
    # and has no public way to reset them, so its private one (what its own tests use)
    AcceleratorState._reset_state()
    GradientState._reset_state()
    # cpu=True where there is no accelerator: then `accelerate launch --num_processes 2` runs on gloo
    accelerator = Accelerator(gradient_accumulation_steps=args.gradient_accumulation_steps,
                              mixed_precision=args.mixed_precision, cpu=not torch.accelerator.is_available(),
                              log_with=flags.trackers(args.report_to) or None, project_dir=args.output_dir)
    out = Path(args.output_dir)
    flags.check_output_dir(out)
    if accelerator.is_main_process:
        checkpoint.recover(out)
    accelerator.wait_for_everyone()
    held = checkpoint.run_files(out)
    if training and held and not args.overwrite_output_dir and not args.resume_from_checkpoint:
        fail(f"{out} already holds a run ({', '.join(held)}); pass --overwrite_output_dir to replace it "
             "or --resume_from_checkpoint to continue it")
    if args.resume_from_checkpoint not in (None, "auto") and not Path(args.resume_from_checkpoint).is_dir():
        fail(f"--resume_from_checkpoint {args.resume_from_checkpoint}: no such folder")
    hf_logging.disable_progress_bar()  # no "Writing model shards" bar at every save
    if varied_batches and accelerator.device.type == "cpu":  # batches padded each to its own length: heap.py
        heap.give_back_large_blocks()
    set_seed(args.seed)
    return accelerator


def limit(dataset, n):
    """The first n examples (n <= 0: all)."""
    if n <= 0 or n >= len(dataset):
        return dataset
    return dataset.select(range(n)) if hasattr(dataset, "select") else torch.utils.data.Subset(dataset, range(n))


class Plan:
    """How many batches, steps and epochs a run has; a stream (no length) restarts until max_steps."""

    def __init__(self, args, batches):
        self.batches = batches  # per process and epoch; None for a stream
        self.steps_per_epoch = math.ceil(batches / args.gradient_accumulation_steps) if batches else args.max_train_steps
        self.max_steps = (args.max_train_steps if args.max_train_steps > 0 else
                          args.num_train_epochs * self.steps_per_epoch)
        self.epochs = math.ceil(self.max_steps / self.steps_per_epoch) if batches else sys.maxsize
        self.warmup = args.num_warmup_steps or math.ceil(args.warmup_ratio * self.max_steps)


class Run:
    """One training run's moving parts besides the model: its state (what training_state.json holds), the running
    loss, log.json, and the decisions to log, evaluate, save and stop."""

    def __init__(self, args, accelerator, model, tokenizer, optimizer, lr_scheduler, plan):
        self.args, self.accelerator, self.model, self.tokenizer = args, accelerator, model, tokenizer
        self.optimizer, self.lr_scheduler, self.plan = optimizer, lr_scheduler, plan
        self.out, self.main = Path(args.output_dir), accelerator.is_main_process
        self.greater = (args.greater_is_better == "true" if args.greater_is_better else
                        not any(s in args.metric_for_best_model for s in ("loss", "perplexity")))
        self.state = {"epoch": 0, "completed_steps": 0, "batches_in_epoch": 0, "epoch_loss": [0.0, 0],
                      "best_metric": None, "best_step": None, "evals_without_gain": 0, "metrics": {}}
        # the first step with a non-finite loss, found without a sync; the loss summed since the last log
        self.first_bad = torch.tensor(-1, device=accelerator.device)
        self.running, self.count, self.terms = torch.zeros((), device=accelerator.device), 0, {}
        self.replacing, self.last_saved = False, None
        self.trim = heap.Trim(accelerator.device)

    @property
    def step(self):
        return self.state["completed_steps"]

    def start(self):
        """Resume from last/, or set an earlier run aside (removed at this run's first checkpoint); open the log."""
        folder = checkpoint.resume_folder(self.args)
        if folder:
            self._resume(folder)
            if self.plan.batches and self.state["batches_in_epoch"] >= self.plan.batches:  # saved at an epoch's end
                self.state.update(epoch=self.state["epoch"] + 1, batches_in_epoch=0, epoch_loss=[0.0, 0])
        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
        self.replacing = bool(self.main and self.args.overwrite_output_dir and not folder and
                              checkpoint.set_aside(self.out))
        self.log = Log(self.args, self.accelerator, self.step if folder else None)
        self.log.forget_epochs_after(self.state["epoch"])
        self.done = self.step >= self.plan.max_steps

    def _resume(self, folder):
        """Load folder into the model, optimizer, schedule and RNG; update the state from its training_state.json."""
        try:
            skipped = checkpoint.load_state(self.accelerator, self.model, self.optimizer, self.lr_scheduler, folder,
                                            self.args.resume_inexact)
            saved = json.loads((folder / "training_state.json").read_text(encoding="utf-8"))
            self.state.update({k: v for k, v in saved.items() if k in self.state})
        except (ValueError, KeyError, OSError) as e:
            fail(str(e).splitlines()[0] if isinstance(e, ValueError) else f"{folder}: unreadable ({e})")
        schedule = self.lr_scheduler
        if "schedule" in skipped:  # start the schedule where the run was
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "lr_scheduler.step() before optimizer.step()": on purpose here
                for _ in range(self.step):
                    schedule.step()
        # the learning rate at the resumed step, from this run's plan: the same value when the plan is unchanged; a
        # run extended with more epochs or steps continues on the longer schedule (no new warm-up)
        for group, base, rate in zip(self.optimizer.param_groups, schedule.base_lrs, schedule.lr_lambdas):
            group["lr"] = base * rate(schedule.last_epoch)
        if skipped:
            self.accelerator.print(f"warning: resumed without the {', '.join(skipped)} state of {folder} (damaged): "
                                   "this run is no longer exactly the uninterrupted one")
        self.accelerator.print(f"resumed from {folder} at step {self.step}, epoch {self.state['epoch']}")

    def epoch(self, epoch, train_dataloader, sampler):
        """The batches of an epoch (a resumed one skips what it had done) and its progress bar."""
        skip = self.state["batches_in_epoch"] if epoch == self.state["epoch"] else 0
        if epoch != self.state["epoch"]:
            self.state.update(epoch=epoch, batches_in_epoch=0, epoch_loss=[0.0, 0])
        train_dataloader.set_epoch(epoch)  # reaches the sampler, or a datasets stream's shuffle
        if sampler:
            sampler.set_epoch(epoch)
        # a stream skips by reading: slow, but it lands on the same example
        loader = self.accelerator.skip_first_batches(train_dataloader, skip) if skip else train_dataloader
        bar = tqdm(total=self.plan.batches, initial=skip, desc=f"[Epoch {epoch}] [TRAIN]",
                   disable=not self.accelerator.is_local_main_process, dynamic_ncols=True)
        return loader, bar

    def add(self, loss, terms):
        """A micro-batch's loss and terms, kept on the device until the next log point."""
        loss = loss.detach().float()
        self.first_bad = torch.where((self.first_bad < 0) & ~torch.isfinite(loss), self.step + 1, self.first_bad)
        self.running += loss
        self.count += 1
        for k, v in terms.items():
            self.terms[k] = self.terms.get(k, 0.0) + v.detach().float()
        self.state["batches_in_epoch"] += 1

    def finish_step(self):
        if not self.accelerator.optimizer_step_was_skipped:
            self.lr_scheduler.step()
        self.state["completed_steps"] += 1
        self.done = self.step >= self.plan.max_steps
        self.trim()

    def record(self, epoch, bar):
        """The mean loss since the last record into log.json and the bar; a non-finite loss stops every process."""
        bad = self.accelerator.gather(self.first_bad.view(1))  # note: syncs, once per log
        if (bad >= 0).any():
            bar.close()
            kept = checkpoint.kept(self.out, self.replacing)
            raise SystemExit(f"error: loss is not finite at step {bad[bad >= 0].min().item()}; stopping: {kept}")
        mean = lambda total: self.accelerator.reduce(total, "mean").item() / self.count
        entry = {"loss": mean(self.running), "lr": self.lr_scheduler.get_last_lr()[0], "epoch": epoch,
                 **{k: mean(v) for k, v in self.terms.items()}}
        self.log.record(self.step, entry)
        bar.set_postfix(loss=entry["loss"], lr=entry["lr"])
        total, count = self.state["epoch_loss"]
        self.state["epoch_loss"] = [total + entry["loss"] * self.count, count + self.count]
        self.running.zero_()
        self.count, self.terms = 0, {}

    def end_epoch(self, epoch):
        self.log.summarise_epoch(epoch, self.state["epoch_loss"][0] / self.state["epoch_loss"][1])

    def evaluate(self, epoch, eval_dataloader, evaluate, eval_keys, on_best):
        """Metrics on the eval set; updates best and patience; hands a new best's metrics and arrays to on_best.
        Returns (metrics, whether best/ is to be saved)."""
        if eval_dataloader is None:
            return {}, True
        with self.log.timed("evaluate"):
            loss, arrays = predict(self.accelerator, self.model, eval_dataloader, eval_keys, f"[Epoch {epoch}] [VALID]")
            metrics = {**({"loss": loss} if loss is not None else {}), **(evaluate(arrays) if evaluate else {})}
        self.log.record(self.step, dict(metrics), epoch, "valid_log")
        if self.args.metric_for_best_model not in metrics:
            fail(f"--metric_for_best_model {self.args.metric_for_best_model} is not among {sorted(metrics)}")
        value, best = metrics[self.args.metric_for_best_model], self.state["best_metric"]
        gain = best is None or (value > best if self.greater else value < best)
        self.state["evals_without_gain"] = 0 if gain else self.state["evals_without_gain"] + 1
        if gain:
            self.state.update(best_metric=value, best_step=self.step)
            if on_best is not None:
                on_best(metrics, arrays)
        return metrics, gain

    def save(self, metrics, best):
        """best/ (when it gained), last/ with the resume state (best/'s files linked), training_state.json."""
        self.state["metrics"] = metrics
        snapshot = {"args": vars(self.args), **self.state}
        if best:  # best/ first: a kill between the two leaves last/ naming a best/ that holds its step
            self._save(self.out / "best", snapshot)
        self._save(self.out / "last", snapshot, with_state=True, like=self.out / "best" if best else None)
        self.last_saved = self.step
        if self.main:
            write_json(self.out / "training_state.json", snapshot)
            if self.replacing:  # this run has its first checkpoint: the earlier one goes
                shutil.rmtree(self.out / checkpoint.PREVIOUS)
                self.replacing = False

    def save_checkpoint(self):
        """output_dir/checkpoint-STEP/, a folder like last/; the oldest beyond --save_total_limit removed."""
        last = self.out / "last" if self.last_saved == self.step else None  # the same folder: its files linked
        self._save(self.out / f"checkpoint-{self.step}", {"args": vars(self.args), **self.state}, not last, last)
        kept = sorted(self.out.glob("checkpoint-*[0-9]"), key=lambda p: int(p.name.split("-")[1]))
        for old in kept[:-self.args.save_total_limit] if self.main and self.args.save_total_limit else []:
            shutil.rmtree(old)

    def _save(self, path, snapshot, with_state=False, like=None):
        with self.log.timed("save"):
            try:
                checkpoint.save(self.accelerator, self.model, self.tokenizer, path, snapshot, self.args,
                                *((self.optimizer, self.lr_scheduler) if with_state else ()), like=like)
            except checkpoint.SaveError as e:
                fail(f"{e}; {checkpoint.kept(self.out, self.replacing)}")

    def out_of_patience(self):
        return bool(self.args.early_stopping_patience) and \
            self.state["evals_without_gain"] >= self.args.early_stopping_patience

    def abandon(self):
        """The run ends with an error: trackers closed; an earlier run set aside comes back as it was."""
        if hasattr(self, "log"):
            self.log.close(save=False)
        if self.replacing:
            checkpoint.put_back(self.out)


def _loss(model, batch, compute_loss):
    if compute_loss is None:
        return model(**batch).loss, {}
    out = compute_loss(model, batch)
    return out if isinstance(out, tuple) else (out, {})


def _prepare(args, accelerator, model, train_dataset, eval_dataset, collate_fn, eval_collate_fn):
    """The model on its device, the optimizer, the loaders (prepared for the processes) and the sampler."""
    streaming = isinstance(train_dataset, torch.utils.data.IterableDataset)  # no length, no sampler
    if streaming and (args.max_train_steps <= 0 or args.group_by_length):
        fail("a streamed training set needs --max_train_steps and cannot --group_by_length")
    lengths = batches.lengths_of(train_dataset) if args.group_by_length else None
    sampler = None if streaming else batches.EpochSampler(len(train_dataset), args.seed, lengths,
                                                  args.per_device_train_batch_size * accelerator.num_processes)
    train_dataloader = batches.loader(train_dataset, args.per_device_train_batch_size, collate_fn, args, sampler)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.to(accelerator.device)
    if args.torch_compile:
        model.compile(dynamic=True)  # dynamic: no recompilation for every new batch length
    model, optimizer, train_dataloader = accelerator.prepare(model, optimizer := optim.adamw(args, accelerator, model),
                                                             train_dataloader)
    eval_dataloader = None if eval_dataset is None else eval_loader(accelerator, eval_dataset,
                                                                    eval_collate_fn or collate_fn, args)
    accelerator.print(f"training: {'streamed' if streaming else len(train_dataset)} examples, of "
                      f"{args.per_device_train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps}"
                      " per step")
    return model, optimizer, train_dataloader, eval_dataloader, sampler, None if streaming else len(train_dataloader)


def train(args, accelerator, model, tokenizer, train_dataset, eval_dataset, collate_fn, *, evaluate=None,
          compute_loss=None, eval_collate_fn=None, eval_keys=("logits",), on_best=None):
    """Train; evaluate every --eval_steps (or epoch); keep best/ and last/. Returns best/'s metrics.
    evaluate(arrays) -> dict turns predict()'s gathered arrays into task metrics; compute_loss(model, batch)
    -> loss or (loss, {name: term}) replaces model(**batch).loss; on_best(metrics, arrays) receives each new best
    evaluation (a script that needs best/'s predictions on the eval set then need not predict them again; after
    a resume, a best from before it is not handed over)."""
    model, optimizer, train_dataloader, eval_dataloader, sampler, batches = _prepare(
        args, accelerator, model, train_dataset, eval_dataset, collate_fn, eval_collate_fn)
    plan = Plan(args, batches)
    # kept out of prepare(): stepped once per real optimizer step, whatever the number of processes
    lr_scheduler = get_scheduler(args.lr_scheduler_type, optimizer.optimizer, plan.warmup, plan.max_steps)
    run = Run(args, accelerator, model, tokenizer, optimizer, lr_scheduler, plan)
    run.start()
    model.train()
    try:
        for epoch in range(run.state["epoch"], plan.epochs):
            if run.done:
                break
            batches, bar = run.epoch(epoch, train_dataloader, sampler)
            for batch in batches:
                with accelerator.accumulate(model):
                    loss, terms = _loss(model, batch, compute_loss)
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and args.max_grad_norm > 0:
                        accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                run.add(loss, terms)
                bar.update()
                if not accelerator.sync_gradients:
                    continue
                run.finish_step()
                end_of_epoch = accelerator.gradient_state.end_of_dataloader
                eval_now = (run.step % args.eval_steps == 0 or run.done) if args.eval_steps else (end_of_epoch or run.done)
                checkpoint_now = bool(args.save_steps) and run.step % args.save_steps == 0
                # every eval/save point is also a log point, so no partial loss window is lost on resume
                if run.step % args.logging_steps == 0 or run.done or end_of_epoch or eval_now or checkpoint_now:
                    run.record(epoch, bar)
                if end_of_epoch or run.done:
                    run.end_epoch(epoch)
                if eval_now:
                    run.save(*run.evaluate(epoch, eval_dataloader, evaluate, eval_keys, on_best))
                if checkpoint_now:
                    run.save_checkpoint()
                if run.done or run.out_of_patience():
                    run.done = True
                    break
            bar.close()
            if run.state["batches_in_epoch"] == 0:
                fail("the training data gave no batch")
    except BaseException:
        run.abandon()
        raise
    run.log.close()
    accelerator.wait_for_everyone()
    best = run.out / "best" / "training_state.json"
    metrics = json.loads(best.read_text())["metrics"] if best.exists() else run.state["metrics"]
    accelerator.print(f"best: {json.dumps(metrics)}" if metrics else
                      f"trained {run.step} steps; best/ is the last step (no validation data)")
    return metrics
