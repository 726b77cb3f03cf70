"""Checkpoints that survive a kill at any moment, and a resume state that cannot run code.

Owns: save_folder() (a folder written as name.tmp, then swapped in), recover() (at start, finish or undo whatever a
kill interrupted), the resume state in last/state/ (optimizer tensors in safetensors; optimizer settings, schedule,
loss scaler and every process's RNG in JSON; a checksummed manifest of the whole folder, written last), and the
replacement of an earlier run (set aside when the new run starts, put back if it ends before its first checkpoint).
save() writes a model folder (weights, tokenizer, training_state.json, model card; last/ adds the resume state).
Knows nothing of the loop's schedule or of any task.

Under FSDP and DeepSpeed the optimizer is sharded and Accelerate writes it in the backend's own format, which is
loaded with pickle: there, resume only from checkpoints you made yourself.
"""
import json
import os
import random
import shutil
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import torch
from accelerate.utils import DistributedType
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from card import model_card
from files import manifest_problems, write_json, write_manifest, write_text
from flags import fail

# what a run writes in its output_dir: replaced together (a user's own files there are left alone)
RUN_PATTERNS = ("best", "last", "checkpoint-*", "log.json", "training_state.json", "runs", "*_results.json",
                "predictions*", "nbest_predictions*", "null_odds*", "*.tsv")
PREVIOUS = ".previous_run"  # an earlier run set aside until the new one's first checkpoint
MOVED = ".moved"  # inside PREVIOUS: every file of the earlier run is in it
MANIFEST = "state/manifest.json"
FORMAT = 1


class SaveError(Exception):
    """A checkpoint could not be written (disk full, read-only); the previous one is kept."""


def sharded(accelerator):
    return accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)


def run_files(out):
    if not out.is_dir():
        return []
    return sorted(p.name for p in out.iterdir() if any(fnmatch(p.name, pattern) for pattern in RUN_PATTERNS))


def _remove(path):
    shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink(missing_ok=True)


# --- an earlier run replaced by a new one (--overwrite_output_dir)

def set_aside(out):
    """Move the earlier run's files into out/.previous_run, then mark the move complete. Returns whether any."""
    names = run_files(out)
    if not names:
        return False
    previous = out / PREVIOUS
    previous.mkdir()
    for name in names:
        os.replace(out / name, previous / name)
    (previous / MOVED).touch()
    return True


def put_back(out):
    """Remove what the new run wrote and return the earlier run to its place."""
    previous = out / PREVIOUS
    if (previous / MOVED).exists():  # the move was complete: what run_files() finds now is the new run's
        for name in run_files(out):
            _remove(out / name)
    for p in previous.iterdir():  # a move cut short: the rest of the earlier run is still in place
        if p.name != MOVED:
            os.replace(p, out / p.name)
    shutil.rmtree(previous)


def recover(out):
    """At start, before anything reads output_dir: finish or undo a save or a replacement that a kill interrupted."""
    if not out.is_dir():
        return
    for p in out.iterdir():
        if p.name.endswith(".tmp"):  # a save or a write cut short: the previous version is still whole
            _remove(p)
    for p in out.iterdir():
        if p.name.endswith(".old"):
            target = out / p.name[:-4]
            if target.exists():  # killed while deleting the replaced folder
                _remove(p)
            else:  # killed between the two renames
                os.replace(p, target)
    previous = out / PREVIOUS
    if previous.is_dir():
        # the new run's first checkpoint is complete: last/, best/, then training_state.json, written last
        if (previous / MOVED).exists() and (out / "last").is_dir() and (out / "training_state.json").is_file():
            shutil.rmtree(previous)
        else:
            put_back(out)


# --- saving a folder

def _all_ok(accelerator, ok):
    """Whether every process succeeded (a collective, so no process waits forever for one that failed)."""
    if accelerator.num_processes == 1:
        return ok
    flags = accelerator.gather(torch.tensor([0 if ok else 1], device=accelerator.device))
    return not bool(flags.any())


def save_folder(accelerator, path, write, manifest=False):
    """write(tmp) on every process fills path.tmp (the main process writes the shared files); then the main process
    writes the manifest (when asked) and swaps the folder in: path -> path.old, path.tmp -> path, path.old removed.
    A kill at any moment leaves path or path.old whole, which recover() puts back. Raises SaveError on every
    process when a process cannot write, after removing path.tmp."""
    path = Path(path)
    tmp, old = Path(f"{path}.tmp"), Path(f"{path}.old")
    main, error = accelerator.is_main_process, None
    if main:
        for leftover in (tmp, old if path.exists() else None):
            if leftover is not None and leftover.exists():
                _remove(leftover)
        (tmp / "state").mkdir(parents=True) if manifest else tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    try:
        write(tmp)
        if main and manifest:
            write_manifest(tmp, tmp / MANIFEST, format=FORMAT)
    except (OSError, SafetensorError) as e:
        error = e
    if not _all_ok(accelerator, error is None):
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
        reason = (getattr(error, "strerror", None) or str(error).splitlines()[-1]) if error else "another process failed"
        reason = "No space left on device" if "os error 28" in reason else reason  # safetensors' wording
        raise SaveError(f"cannot save {path}: {reason}")
    if main:
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


# --- the resume state, without pickle

def _rng_state():
    python = random.getstate()
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": [python[0], list(python[1]), python[2]],
             "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
             "torch": torch.get_rng_state().tolist()}
    if torch.cuda.is_available():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def _set_rng_state(state):
    random.setstate((state["python"][0], tuple(state["python"][1]), state["python"][2]))
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


def write_state(accelerator, folder, optimizer, lr_scheduler):
    """folder/state/: optimizer.safetensors (the moments), resume.json (optimizer settings and scalars, the schedule,
    the loss scaler), rng_<process>.json. The model's weights are folder's own model.safetensors."""
    state = Path(folder) / "state"
    if sharded(accelerator):
        accelerator.save_state(state)
        return
    if accelerator.is_main_process:
        tensors, scalars = {}, {}
        optimizer_state = optimizer.state_dict()
        for index, entry in optimizer_state["state"].items():
            for key, value in entry.items():
                if torch.is_tensor(value):
                    tensors[f"{index}.{key}"] = value.detach().cpu().contiguous()
                else:
                    scalars.setdefault(str(index), {})[key] = value
        save_file(tensors, str(state / "optimizer.safetensors"))
        scaler = accelerator.scaler.state_dict() if accelerator.scaler is not None else None
        write_text(state / "resume.json", json.dumps({
            "num_processes": accelerator.num_processes, "scaler": scaler, "scheduler": lr_scheduler.state_dict(),
            "optimizer": {"param_groups": optimizer_state["param_groups"], "scalars": scalars}}))
    write_text(state / f"rng_{accelerator.process_index}.json", json.dumps(_rng_state()))


def _load_weights(accelerator, model, folder):
    weights = {}
    for file in sorted(Path(folder).glob("*.safetensors")):
        weights.update(load_file(str(file)))
    target = accelerator.unwrap_model(model)
    missing, unexpected = target.load_state_dict(weights, strict=False)
    tensors = target.state_dict()
    loaded = {tensors[k].data_ptr() for k in weights if k in tensors}
    untied = [k for k in missing if tensors[k].data_ptr() not in loaded]  # a tied weight is saved once
    if untied or unexpected:
        raise ValueError(f"weights do not match the model: missing {untied[:3]}, unexpected {unexpected[:3]}")


def _load_optimizer(optimizer, state):
    resume = json.loads((state / "resume.json").read_text(encoding="utf-8"))
    entries = {}
    for name, tensor in load_file(str(state / "optimizer.safetensors")).items():
        index, key = name.split(".", 1)
        entries.setdefault(int(index), {})[key] = tensor
    for index, values in resume["optimizer"]["scalars"].items():
        entries.setdefault(int(index), {}).update(values)
    groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in resume["optimizer"]["param_groups"]]
    optimizer.load_state_dict({"state": entries, "param_groups": groups})


def load_state(accelerator, model, optimizer, lr_scheduler, folder, inexact=False):
    """Restore weights, optimizer, schedule, loss scaler and this process's RNG from folder (a last/), each file
    checked against the manifest first. Damage stops the resume with a message naming the file (ValueError), or with
    inexact=True restores what verifies and returns the parts it could not ("optimizer", "schedule", "rng").
    Nothing here unpickles."""
    folder, state = Path(folder), Path(folder) / "state"
    if sharded(accelerator):
        accelerator.load_state(state)
        return []
    read = lambda name: (folder / name).read_text(encoding="utf-8")
    rng = f"state/rng_{accelerator.process_index}.json"
    damaged = {name: why for name, why in manifest_problems(folder, folder / MANIFEST, format=FORMAT)
               if name == MANIFEST or why != "not written by this save" and (
                   name.startswith("state/") or name == "training_state.json" or name.endswith(".safetensors"))}
    essential = [n for n in damaged if n == "training_state.json" or "/" not in n and n.endswith(".safetensors")]
    if essential or (damaged and not inexact):
        name = (essential or list(damaged))[0]
        hint = "" if essential else "; pass --resume_inexact to continue from it without an exact resume"
        raise ValueError(f"{folder / name}: {damaged[name]}: the checkpoint is damaged{hint}")
    _load_weights(accelerator, model, folder)
    parts = {"optimizer": (["state/optimizer.safetensors", "state/resume.json"], lambda: _load_optimizer(optimizer, state)),
             "schedule": (["state/resume.json"], lambda: _load_schedule(accelerator, lr_scheduler, state)),
             "rng": ([rng], lambda: _set_rng_state(json.loads(read(rng))))}
    skipped = []
    for part, (names, load) in parts.items():
        if any(n in damaged for n in names):
            skipped.append(part)
            continue
        try:
            load()
        except (OSError, ValueError, KeyError, TypeError, IndexError, SafetensorError, RuntimeError) as e:
            if not inexact:  # verified by the manifest, yet unreadable: not a checkpoint this version wrote
                raise ValueError(f"{folder / names[0]}: unreadable ({type(e).__name__}): the checkpoint is damaged; "
                                 "pass --resume_inexact to continue from it without an exact resume") from None
            skipped.append(part)
    return skipped


def _load_schedule(accelerator, lr_scheduler, state):
    resume = json.loads((state / "resume.json").read_text(encoding="utf-8"))
    lr_scheduler.load_state_dict(resume["scheduler"])
    if accelerator.scaler is not None and resume["scaler"] is not None:
        accelerator.scaler.load_state_dict(resume["scaler"])


def save(accelerator, model, tokenizer, path, state, args, optimizer=None, lr_scheduler=None, like=None):
    """A save_pretrained folder (+ with an optimizer, the resume state and a manifest) written whole or not at all:
    save_folder. like: a folder just saved from the same model and state (best/ for last/; last/, resume state
    included, for a checkpoint-STEP/ of its step), whose files are hard-linked instead of written again (every file
    is replaced whole, never changed in place, so a link never sees a later save; copies where a disk has no links).
    A disk that is full or read-only raises SaveError; path keeps what it had."""
    # sharded (FSDP, DeepSpeed): every process gathers the weights; only the main process writes them, so no
    # process lists a folder that another is about to rename
    state_dict = accelerator.get_state_dict(model) if sharded(accelerator) and like is None else None
    unwrapped = accelerator.unwrap_model(model)

    def write(tmp):
        if accelerator.is_main_process and like is not None:
            for file in sorted(p for p in Path(like).rglob("*") if p.is_file()):
                (tmp / file.relative_to(like)).parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(file, tmp / file.relative_to(like))
                except OSError:  # another disk, or no links there
                    shutil.copy2(file, tmp / file.relative_to(like))
        elif accelerator.is_main_process:
            unwrapped.save_pretrained(tmp, state_dict=state_dict)
            if tokenizer is not None:
                tokenizer.save_pretrained(tmp)
            write_json(tmp / "training_state.json", state)
            write_text(tmp / "README.md", model_card(args, state["metrics"], unwrapped))
        if optimizer is not None:
            write_state(accelerator, tmp, optimizer, lr_scheduler)

    save_folder(accelerator, path, write, manifest=optimizer is not None)


def kept(out, replacing):
    """What a failed run leaves behind, in words."""
    if replacing:
        return f"the earlier run in {out} is put back"
    steps = {name: json.loads((out / name / "training_state.json").read_text())["completed_steps"]
             for name in ("best", "last") if (out / name / "training_state.json").exists()}
    if not steps:
        return "no checkpoint was saved"
    return " and ".join(f"{name}/ keeps step {step}" for name, step in steps.items())


def resume_folder(args):
    """The last/ to resume from, or None for a fresh start."""
    if not args.resume_from_checkpoint:
        return None
    folder = Path(args.output_dir) / "last" if args.resume_from_checkpoint == "auto" else Path(args.resume_from_checkpoint)
    if (folder / "last" / "state").is_dir():  # the run's folder instead of its last/
        folder = folder / "last"
    if not (folder / "state").is_dir():
        if args.resume_from_checkpoint != "auto":
            fail(f"{folder} is not a last/ folder with a state/ to resume from")
        return None
    return folder
