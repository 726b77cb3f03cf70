"""A CPU run's peak memory under glibc's malloc, for a run whose batches are each padded to their own length
(glue.py, ner.py, squad.py): core.setup(..., varied_batches=True). Elsewhere (a GPU, another C library, a run of
one batch shape) nothing here does anything.

glibc serves a block under its mmap threshold from its heap, and raises that threshold to the size of each large
block freed (up to 32 MB): after the first steps most activations live in the heap. When every batch has its own
length, so its own block sizes, the heap keeps what they free: each longer batch raises the memory held for the
rest of the run, and the next long batch starts from there (squad.py peaked 400 MB over the Trainer, which pads
every batch to 384; ner.py level with it). Two settings:
- give_back_large_blocks(): a fixed 4 MB threshold. Every larger block is mapped anew and given back when freed,
  at the price of paging it in again each step. Where every batch has one shape (packed MLM pretraining) the heap
  reuses its blocks exactly, and the two settings together cost 32% of pretrain_mlm.py's speed for nothing;
  there neither is set.
- Trim: the heap's free pages go back to the system (malloc_trim) every 10 s and 10 steps of training at the
  most: each trim makes the next step page its memory in again.
Together, on ner.py's CoNLL run: 100-125 MB off the peak for 0-5% of the training time (bench/heap_ablation.py).
Measured in docs/performance.md.
"""
import ctypes
import os
import time

MMAP_THRESHOLD = 4 * 2 ** 20
TRIM_EVERY = 10.0  # seconds, and
TRIM_STEPS = 10  # optimizer steps since the last trim


def glibc():
    """glibc's functions, or None under another C library (macOS, Windows, musl)."""
    try:
        name = os.confstr("CS_GNU_LIBC_VERSION") or ""  # the C library this process runs on
    except (AttributeError, ValueError, OSError):  # not glibc's confstr name
        return None
    return ctypes.CDLL("libc.so.6") if name.startswith("glibc") else None


trim_with = None  # glibc, once give_back_large_blocks() has set its threshold for the process: Trim works only then


def give_back_large_blocks():
    """A fixed mmap threshold, and trimming from now on; neither where the user set a threshold of their own
    (MALLOC_MMAP_THRESHOLD_: 33554432, say, for about glibc's own policy, 4% faster and with more memory)."""
    global trim_with
    libc = glibc()
    if libc is not None and "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        libc.mallopt(-3, MMAP_THRESHOLD)  # M_MMAP_THRESHOLD (which also ends its raising)
        trim_with = libc


class Trim:
    """Call after each optimizer step: every TRIM_EVERY seconds and TRIM_STEPS steps at the most, the heap's free
    pages go back (after give_back_large_blocks(), on a CPU)."""

    def __init__(self, device):
        self.libc = trim_with if device.type == "cpu" else None
        self.last, self.steps = time.perf_counter(), 0

    def __call__(self):
        self.steps += 1
        if self.libc is not None and self.steps >= TRIM_STEPS and time.perf_counter() - self.last >= TRIM_EVERY:
            self.libc.malloc_trim(0)
            self.last, self.steps = time.perf_counter(), 0
