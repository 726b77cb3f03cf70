"""The model card (README.md) written into every saved folder: hub-ready metadata and what the model was trained
from, on and with. Knows the args of a run and the model's class name; no task, no training loop."""
import shlex
import sys
from pathlib import Path

TASKS = {"ForTokenClassification": "token-classification", "ForSequenceClassification": "text-classification",
         "ForQuestionAnswering": "question-answering", "ForMaskedLM": "fill-mask"}


def model_card(args, metrics, model):
    """README.md for a saved folder, hub-ready: metadata (base_model only when it is a hub id, model-index with the
    metrics), what it was trained from and on, the hyper-parameters and the command."""
    arch = (model.config.architectures or [type(model).__name__])[0]
    text = lambda v: ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
    base = args.model_name_or_path
    local = base is not None and Path(base).expanduser().exists()
    data = [f"{k}: `{text(getattr(args, k))}`" for k in ("dataset_name", "task_name", "train_file", "validation_file")
            if getattr(args, k, None)]
    data += [f"{k}: {getattr(args, k)}" for k in ("max_train_samples", "max_eval_samples")
             if getattr(args, k, -1) and getattr(args, k, -1) > 0]
    hyper = ["learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "num_train_epochs",
             "max_train_steps", "weight_decay", "lr_scheduler_type", "num_warmup_steps", "warmup_ratio",
             "mixed_precision", "seed"]
    task = next((t for suffix, t in TASKS.items() if arch.endswith(suffix)), "other")
    dataset = getattr(args, "dataset_name", None) or getattr(args, "task_name", None) or "custom"
    scores = [(k, v) for k, v in metrics.items() if isinstance(v, (int, float))]
    lines = ["---", "library_name: transformers", *([f"base_model: {base}"] if base and not local else [])]
    if scores:
        lines += ["model-index:", f"- name: {Path(args.output_dir).name}", "  results:",
                  f"  - task: {{type: {task}}}", f"    dataset: {{name: {dataset}, type: {dataset}}}", "    metrics:"]
        lines += [f"    - {{name: {k}, type: {k}, value: {v}}}" for k, v in scores]
    origin = ("trained from scratch (random initialisation)" if not base else
              f"fine-tuned from a local model (`{Path(base).name}`)" if local else f"fine-tuned from `{base}`")
    lines += ["---", "", f"# {Path(args.output_dir).name}", "", f"`{arch}`, {origin}.", "", "## Data", ""]
    lines += [f"- {d}" for d in data] or ["- (see command line)"]
    lines += ["", "## Hyper-parameters", "", "| name | value |", "|---|---|"]
    lines += [f"| {k} | {text(getattr(args, k))} |" for k in hyper]
    if Path(sys.argv[0]).resolve().parent == Path(__file__).resolve().parent:  # run as one of this project's scripts
        lines += ["", "## Command", "", "```", "accelerate launch " + shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
                  "```"]
    lines += ["", "## Evaluation (validation set)", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items()]
    return "\n".join(lines) + "\n"
