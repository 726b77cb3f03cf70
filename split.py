"""Split a text corpus into train/valid/test by lines, seeded, in constant memory.

    python split.py --data_path all.txt --base_path data.txt --ratio 1000

writes data.train.txt, data.valid.txt and data.test.txt (valid and test get 1/ratio of the lines each), or
with --num_shards N the train part as data.train.00000.txt ... Lines are bytes: never broken or re-encoded
(UTF-8 stays intact, CRLF stays CRLF); a last line without its newline gets the file's newline.
Pass 1 counts the lines. Pass 2 picks exactly k valid and k test lines by selection sampling (Knuth's
algorithm S: the next line is picked with probability still-needed / still-unread) and, unless --keep_order,
deals every line to a random bucket file of about --buffer_mb. Pass 3 shuffles each bucket in memory and
writes it out. Memory: one bucket, not the corpus.
"""
import argparse
import math
import os
import random
import shutil
import tempfile
from pathlib import Path

import core


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_path", required=True, help="the corpus, one text per line (required)")
    parser.add_argument("--base_path", required=True,
                        help="data.txt -> data.train.txt, data.valid.txt, data.test.txt (required)")
    parser.add_argument("--ratio", type=int, default=1000,
                        help="valid and test each get 1/ratio of the lines (default: 1000)")
    parser.add_argument("--seed", type=int, default=42, help="(default: 42)")
    parser.add_argument("--num_shards", type=int, default=1, help="train files; 1 = data.train.txt (default: 1)")
    parser.add_argument("--keep_order", action="store_true",
                        help="keep the corpus order in each part (default: shuffle)")
    parser.add_argument("--buffer_mb", type=float, default=256, help="memory for the shuffle, in MB (default: 256)")
    args = parser.parse_args(argv)
    if args.ratio < 2 or args.num_shards < 1 or args.buffer_mb <= 0:
        parser.error("--ratio must be >= 2, --num_shards >= 1 and --buffer_mb > 0")
    return args


def output_paths(base, num_shards):
    base = Path(base)
    name = lambda part: base.with_name(f"{base.stem}.{part}{base.suffix}")
    train = [name("train")] if num_shards == 1 else [name(f"train.{i:05d}") for i in range(num_shards)]
    return train, name("valid"), name("test")


def main(argv=None):
    args = parse_args(argv)
    # --- pass 1: count lines and learn the file's newline
    try:
        with open(args.data_path, "rb") as f:
            first = f.readline()
            newline = b"\r\n" if first.endswith(b"\r\n") else b"\n"
            total = (1 if first else 0) + sum(1 for _ in f)
    except OSError as e:
        core.fail(f"{args.data_path}: {e}")
    k = total // args.ratio
    if k == 0:
        core.fail(f"{args.data_path}: {total} lines, fewer than --ratio {args.ratio}: valid and test would be empty")
    counts = {"train": total - 2 * k, "valid": k, "test": k}
    size = os.path.getsize(args.data_path)
    buckets = {name: 1 if args.keep_order else max(1, math.ceil(size * n / total / (args.buffer_mb * 2 ** 20)))
               for name, n in counts.items()}
    rng = random.Random(args.seed)
    train_paths, valid_path, test_path = output_paths(args.base_path, args.num_shards)
    Path(valid_path).parent.mkdir(parents=True, exist_ok=True)

    # --- pass 2: each line to its part (exact counts), and to a random bucket of that part
    tmp = Path(tempfile.mkdtemp(prefix=".split-", dir=Path(valid_path).parent))
    try:
        parts = {name: [open(tmp / f"{name}.{b}", "wb") for b in range(buckets[name])] for name in counts}
        need = {"valid": k, "test": k}
        with open(args.data_path, "rb") as f:
            for unread, line in zip(range(total, 0, -1), f):
                if not line.endswith(b"\n"):
                    line += newline
                r = rng.random() * unread
                name = "valid" if r < need["valid"] else "test" if r < need["valid"] + need["test"] else "train"
                need[name] = need.get(name, 0) - 1
                parts[name][rng.randrange(buckets[name])].write(line)
        for files in parts.values():
            for file in files:
                file.close()

        # --- pass 3: shuffle each bucket in memory, write the parts (train cut into equal shards)
        def lines_of(name):
            for b in range(buckets[name]):
                lines = [line + b"\n" for line in (tmp / f"{name}.{b}").read_bytes().split(b"\n")[:-1]]
                if not args.keep_order:
                    rng.shuffle(lines)
                yield from lines

        for name, paths in (("train", train_paths), ("valid", [valid_path]), ("test", [test_path])):
            lines = lines_of(name)
            for i, path in enumerate(paths):  # shard i takes lines [i n / S, (i + 1) n / S)
                n = (i + 1) * counts[name] // len(paths) - i * counts[name] // len(paths)
                with open(path, "wb") as out:
                    for _ in range(n):
                        out.write(next(lines))
                print(f"{path}: {n} lines")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{args.data_path}: {total} lines -> train {counts['train']}, valid {k}, test {k}")
    return counts


if __name__ == "__main__":
    main()
