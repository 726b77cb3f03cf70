"""The optimizer core.train steps, and the allocator setting that keeps a CPU step's large tensors cheap. Knows the
shared flags and the model's parameters; no task, no loop."""
import ctypes

import torch
from accelerate.utils import DistributedType


def adamw(args, accelerator, model):
    no_decay = lambda n, p: p.ndim < 2 or "norm" in n.lower()  # biases and LayerNorm weights
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [{"params": [p for n, p in params if not no_decay(n, p)], "weight_decay": args.weight_decay},
              {"params": [p for n, p in params if no_decay(n, p)], "weight_decay": 0.0}]
    # fused AdamW: one kernel for all parameters (5x faster than foreach on a CPU)
    fused = accelerator.device.type in ("cpu", "cuda") and accelerator.distributed_type != DistributedType.DEEPSPEED
    return torch.optim.AdamW(groups, lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2),
                             eps=args.adam_epsilon, fused=fused)


def keep_freed_memory():
    """glibc returns every freed block over 32 MB to the kernel at once, and a CPU training step frees and
    allocates the same large tensors each time (the dense word-embedding gradient alone is vocab x hidden):
    each step then pays a page fault per 4 KiB to get them back, ~8% of a MiniLM step (bench/). Serve large
    blocks from the heap and keep freed memory for reuse (glibc only; elsewhere nothing changes)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(-4, 0)  # M_MMAP_MAX = 0: no mmap'ed blocks (glibc still falls back to mmap if the heap cannot grow)
    libc.mallopt(-1, 2 ** 31 - 1)  # M_TRIM_THRESHOLD: do not give the top of the heap back
