#!/usr/bin/env bash
# The GPU benchmark: glue.py and pretrain_mlm.py against transformers.Trainer on bert-base (random init), bf16,
# one GPU, offline; writes one JSON file. Under 8 minutes on one H100/H200.
#
#   bench/gpu.sh [--output FILE]            # default: bench/results/gpu.json
#   bench/gpu.sh --smoke [--output FILE]    # the same pipeline on CPU, tiny model (default: bench/results/gpu_smoke.json)
#
# Other flags (step counts, batch sizes, --data_dir): python bench/gpu.py --help. What it measures: bench/gpu.py's
# docstring and docs/performance.md ("GPU benchmark").
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONUNBUFFERED=1
if [[ " $* " == *" --smoke "* ]]; then
    export CUDA_VISIBLE_DEVICES=""  # the smoke run is the CPU pipeline, even on a GPU machine
fi
exec "${PYTHON:-python}" bench/gpu.py "$@"
