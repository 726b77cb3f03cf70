"""Teacher vs distilled student on the same batches: parameters, inference speed, masked-LM perplexity.

    python bench/distill_bench.py --teacher out/wiki-teacher/best --student out/wiki-distil/best \
        --text_file ../shared/data/wikitext-2/wiki.valid.tokens --max_seq_length 128 --batch_size 32

Both models read the same padded batches of the file's first lines (the teacher's tokenizer; the student's must
have the same vocabulary, as distill.py makes it). Speed: forward passes without gradients, after a warm-up,
each model timed --repeats times over all batches in turn (teacher, student, teacher, ...), the fastest pass
kept. Perplexity: one seeded BERT mask (15%, 80/10/10) per batch, the same for both. Prints a table; --output
writes it as JSON.
"""
import argparse
import math
import sys
import time
from itertools import islice
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AutoModelForMaskedLM, AutoTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import files  # noqa: E402
from mlm import mask_tokens, read_lines  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teacher", required=True, help="masked-LM folder (required)")
    parser.add_argument("--student", required=True, help="masked-LM folder with the same vocabulary (required)")
    parser.add_argument("--text_file", required=True, help="text or .jsonl (text field), one text per line (required)")
    parser.add_argument("--max_lines", type=int, default=1024, help="first N non-blank lines (default: 1024)")
    parser.add_argument("--max_seq_length", type=int, default=128, help="longer lines cut (default: 128)")
    parser.add_argument("--batch_size", type=int, default=32, help="(default: 32)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per model (default: 3)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: 0 = torch's choice)")
    parser.add_argument("--seed", type=int, default=0, help="masks for the perplexity (default: 0)")
    parser.add_argument("--output", default=None, help="JSON file for the results (default: none)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(args.teacher)
    if AutoTokenizer.from_pretrained(args.student).get_vocab() != tokenizer.get_vocab():
        sys.exit("error: the student's vocabulary differs from the teacher's: not the same batches")
    models = {name: AutoModelForMaskedLM.from_pretrained(path).eval()
              for name, path in (("teacher", args.teacher), ("student", args.student))}
    lines = list(islice(read_lines([args.text_file]), args.max_lines))  # a stream of lines: core.limit needs a length
    batches = [tokenizer(lines[i:i + args.batch_size], padding=True, truncation=True, max_length=args.max_seq_length,
                         return_token_type_ids=False, return_tensors="pt")
               for i in range(0, len(lines), args.batch_size)]
    tokens = sum(int(b["attention_mask"].sum()) for b in batches)

    # --- speed: the fastest of --repeats passes over all batches, models in turn
    seconds = {name: math.inf for name in models}
    with torch.inference_mode():
        for model in models.values():  # warm-up (allocator, kernels)
            for b in batches[:2]:
                model(**b)
        for _ in range(args.repeats):
            for name, model in models.items():
                start = time.perf_counter()
                for b in batches:
                    model(**b)
                seconds[name] = min(seconds[name], time.perf_counter() - start)

    # --- perplexity on the same masks
    specials = torch.tensor(tokenizer.all_special_ids)
    generator = torch.Generator().manual_seed(args.seed)
    masked = [mask_tokens(b["input_ids"], torch.isin(b["input_ids"], specials) | (b["attention_mask"] == 0), None,
                          tokenizer.mask_token_id, len(tokenizer), 0.15, generator) for b in batches]
    results = {}
    with torch.inference_mode():
        for name, model in models.items():
            nll, count = 0.0, 0
            for b, (ids, labels) in zip(batches, masked):
                logits = model(input_ids=ids, attention_mask=b["attention_mask"]).logits
                nll += F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), reduction="sum").item()
                count += int((labels != -100).sum())
            params = sum(p.numel() for p in model.parameters())
            results[name] = {"parameters": params, "layers": model.config.num_hidden_layers,
                             "seconds": seconds[name], "tokens_per_second": tokens / seconds[name],
                             "perplexity": math.exp(nll / count)}
    t, s = results["teacher"], results["student"]
    results["student_vs_teacher"] = {"parameters": s["parameters"] / t["parameters"],
                                     "speedup": t["seconds"] / s["seconds"],
                                     "perplexity": s["perplexity"] / t["perplexity"]}
    results["setup"] = {"lines": len(lines), "batches": len(batches), "tokens": tokens,
                        "threads": torch.get_num_threads(), "batch_size": args.batch_size,
                        "max_seq_length": args.max_seq_length}
    print(f"{len(lines)} lines, {len(batches)} batches of {args.batch_size}, {tokens} tokens, "
          f"{torch.get_num_threads()} threads")
    print(f"{'':8} {'params':>10} {'layers':>6} {'seconds':>8} {'tokens/s':>9} {'perplexity':>10}")
    for name in models:
        r = results[name]
        print(f"{name:8} {r['parameters'] / 1e6:9.2f}M {r['layers']:6d} {r['seconds']:8.2f} "
              f"{r['tokens_per_second']:9.0f} {r['perplexity']:10.2f}")
    ratio = results["student_vs_teacher"]
    print(f"student/teacher: {ratio['parameters']:.0%} of the parameters, {ratio['speedup']:.2f}x the speed, "
          f"{ratio['perplexity']:.2f}x the perplexity")
    if args.output:
        files.write_json(args.output, results)
    return results


if __name__ == "__main__":
    main()
