"""Split a text corpus into train/valid/test by lines, seeded, in constant memory.

    python split.py --data_path all.txt --base_path data.txt --ratio 1000

writes data.train.txt, data.valid.txt and data.test.txt (valid and test get 1/ratio of the lines each), or
with --num_shards N the train part as data.train.00000.txt ... Lines are bytes: never broken or re-encoded
(UTF-8 or any other ASCII-compatible encoding stays intact, CRLF stays CRLF; binary data or UTF-16, which hold NUL
bytes, is refused); a last line without its newline gets the file's newline.
Pass 1 counts the lines. Pass 2 picks exactly k valid and k test lines by selection sampling (Knuth's
algorithm S: the next line is picked with probability still-needed / still-unread) and, unless --keep_order,
deals every line to a random bucket file of about --buffer_mb. Pass 3 shuffles each bucket in memory and
writes it out. Memory: one bucket, not the corpus. The parts are written beside their final names and renamed
in at the end: the input is never an output, and existing parts are replaced only with --overwrite.
"""
import argparse
import math
import os
import random
import shutil
import tempfile
from pathlib import Path

import flags


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
    parser.add_argument("--overwrite", action="store_true",
                        help="replace parts that already exist (default: off, refuse)")
    parser.error = flags.fail  # one line, exit code 2: argparse's own error prints the usage too
    args = parser.parse_args(argv)
    if args.ratio < 2:
        flags.fail(f"--ratio {args.ratio}: expected 2 or more (valid and test each get 1/ratio of the lines)")
    if args.num_shards < 1:
        flags.fail(f"--num_shards {args.num_shards}: expected 1 or more training files")
    if not (args.buffer_mb > 0 and math.isfinite(args.buffer_mb)):
        flags.fail(f"--buffer_mb {args.buffer_mb}: expected a positive number of MB")
    return args


def output_paths(base, num_shards):
    base = Path(base)
    name = lambda part: base.with_name(f"{base.stem}.{part}{base.suffix}")
    train = [name("train")] if num_shards == 1 else [name(f"train.{i:05d}") for i in range(num_shards)]
    return train, name("valid"), name("test")


def check_paths(args, outputs):
    """One line when the input is not a readable file, when an output is the input (by path, symlink or hard link),
    when an output's folder cannot be one, or when an output exists and --overwrite was not given."""
    data = Path(args.data_path)
    if data.is_dir():
        flags.fail(f"{data}: a directory; expected a text file, one text per line")
    if not data.is_file():
        flags.fail(f"{data}: no such file; expected a text file, one text per line")
    for path in outputs:
        if path.resolve() == data.resolve() or path.exists() and os.path.samefile(path, data):
            flags.fail(f"{path}: this output is the input --data_path {data}; choose another --base_path")
        if path.is_dir():
            flags.fail(f"{path}: a directory where an output file goes; choose another --base_path")
    parent = outputs[0].parent
    for folder in (parent, *parent.parents):
        if folder.exists():
            if not folder.is_dir():
                flags.fail(f"{folder}: a file; expected a folder for the outputs of --base_path {args.base_path}")
            break
    held = [p for p in outputs if p.exists() or p.is_symlink()]
    if held and not args.overwrite:
        flags.fail(f"{held[0]} already exists{f' (and {len(held) - 1} more)' if len(held) > 1 else ''}; pass "
                   "--overwrite to replace it, or choose another --base_path")


def main(argv=None):
    args = parse_args(argv)
    train_paths, valid_path, test_path = output_paths(args.base_path, args.num_shards)
    check_paths(args, [*train_paths, valid_path, test_path])
    # --- pass 1: count lines, learn the file's newline, refuse binary data (a NUL byte; UTF-16 has them too, and
    # cutting it at newline bytes would break its characters). Any ASCII-compatible encoding is kept as it is.
    try:
        with open(args.data_path, "rb") as f:
            first = f.readline()
            newline = b"\r\n" if first.endswith(b"\r\n") else b"\n"
            total, last, chunk = 0, first, first
            while chunk:
                if b"\0" in chunk:
                    line = total + chunk.count(b"\n", 0, chunk.index(b"\0")) + 1
                    flags.fail(f"{args.data_path}:{line}: a NUL byte (binary data, or UTF-16 text); expected a text "
                               "file in UTF-8 or another ASCII-compatible encoding, one text per line")
                total, last = total + chunk.count(b"\n"), chunk
                chunk = f.read(2 ** 18)
            total += 1 if last and not last.endswith(b"\n") else 0  # a last line without its newline
    except OSError as e:
        flags.fail(f"{args.data_path}: cannot read it ({e.strerror or e})")
    k = total // args.ratio
    if k == 0:
        flags.fail(f"{args.data_path}: {total} lines, fewer than --ratio {args.ratio}: valid and test would be empty")
    counts = {"train": total - 2 * k, "valid": k, "test": k}
    size = os.path.getsize(args.data_path)
    buckets = {name: 1 if args.keep_order else max(1, math.ceil(size * n / total / (args.buffer_mb * 2 ** 20)))
               for name, n in counts.items()}
    rng = random.Random(args.seed)
    try:
        Path(valid_path).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".split-", dir=Path(valid_path).parent))
    except OSError as e:
        flags.fail(f"{Path(valid_path).parent}: cannot write there ({e.strerror or e}); expected a writable folder")

    # --- pass 2: each line to its part (exact counts), and to a random bucket of that part
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
                (tmp / f"{name}.{b}").unlink()  # disk: the buckets go as the parts grow
                if not args.keep_order:
                    rng.shuffle(lines)
                yield from lines

        written = []
        for name, paths in (("train", train_paths), ("valid", [valid_path]), ("test", [test_path])):
            lines = lines_of(name)
            for i, path in enumerate(paths):  # shard i takes lines [i n / S, (i + 1) n / S)
                n = (i + 1) * counts[name] // len(paths) - i * counts[name] // len(paths)
                with open(tmp / f"out.{len(written)}", "wb") as out:
                    for _ in range(n):
                        out.write(next(lines))
                written.append((tmp / f"out.{len(written)}", path, n))
        for part, path, n in written:  # every part complete before any existing one is replaced
            os.replace(part, path)
            print(f"{path}: {n} lines")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{args.data_path}: {total} lines -> train {counts['train']}, valid {k}, test {k}")
    return counts


if __name__ == "__main__":
    main()
