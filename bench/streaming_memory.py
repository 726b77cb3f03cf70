"""Peak memory of pretrain_mlm.py --streaming against corpus size (1 GB and 4 GB): it must stay flat.

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 taskset -c 0 python bench/streaming_memory.py --sizes_gb 1,4 --rounds 2 \
        --output bench/results/streaming_memory.json

Corpora are generated in a temporary folder, deleted at the end: WikiText-2 paragraphs (valid + test, headings
left out) drawn with replacement by a seeded RNG, one per line, up to the size. A byte-level BPE tokenizer is
trained once on those paragraphs (pretrain_mlm.py --tokenizer_only) and given to every run (--tokenizer_name),
so each corpus's token count is known exactly. Each run is one subprocess; streamed sizes alternate (A B A B):
  streaming     pretrain_mlm.main(... --streaming): a small RoBERTa from scratch (configs/roberta-small.json
                shrunk by --config_overrides), --max_train_steps steps, final evaluation and saves included
  stream_read   the same training stream (load_corpus, core's loader and collate) read without a model, once, on
                --read_gb, for --read_tokens tokens: the data path alone, over far more of the corpus than
                training reaches here (a few hundred steps of even a tiny model read 0.2% of 1 GB)
  no_streaming  pretrain_mlm.main() without --streaming on a smaller corpus (--no_streaming_gb), for contrast:
                it first tokenizes the whole corpus into the datasets Arrow cache (time, RSS, cache size)
  tokenizer     pretrain_mlm.main(--tokenizer_only --train_tokenizer bpe --input_sentence_size N) on
                --tokenizer_gb: --train_tokenizer reads the whole corpus (a seeded reservoir sample, or every line)
Memory: a thread in the child reads /proc/self every --sample_seconds: RSS and its anonymous and file-backed
parts, the high-water mark VmHWM, the RSS of child processes, the training tokens the loader has delivered, and
the offset of the corpus file's descriptor (how far it has been read; sampled, so a lower bound). Peak = the
child's ru_maxrss from wait4(), over its whole life (VmHWM read at the end of main() agrees to a few MB).
The table gives VmHWM when 10%, 50% and 100% of the run's tokens had been loaded: memory that grows with what
was read shows there. The JSON also has, per tenth, the lowest and highest RSS sampled, and the thinned curve.
"""
import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from _common import machine, save

ROOT = Path(__file__).resolve().parent.parent
WIKI = ROOT.parent / "shared/data/wikitext-2"
MODEL = "num_hidden_layers=2,hidden_size=64,num_attention_heads=2,intermediate_size=256"
GB = 1e9
MODES = ("streaming", "stream_read", "no_streaming", "tokenizer")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes_gb", default="1,4", help="streamed corpus sizes, GB (default: 1,4)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the streamed sizes (default: 2)")
    parser.add_argument("--no_streaming_gb", default="0.05",
                        help="sizes run once without --streaming, for contrast (default: 0.05; '' = none)")
    parser.add_argument("--tokenizer_gb", default="1",
                        help="sizes on which --train_tokenizer bpe --input_sentence_size runs once (default: 1)")
    parser.add_argument("--max_train_steps", type=int, default=300, help="streaming runs (default: 300)")
    parser.add_argument("--batch_size", type=int, default=16, help="(default: 16)")
    parser.add_argument("--read_gb", default="1", help="sizes read once without a model (default: 1; '' = none)")
    parser.add_argument("--read_tokens", type=int, default=80_000_000,
                        help="stream_read runs: tokens read from the stream (default: 80M)")
    parser.add_argument("--max_seq_length", type=int, default=128, help="(default: 128)")
    parser.add_argument("--vocab_size", type=int, default=2000, help="BPE vocabulary (default: 2000)")
    parser.add_argument("--config_overrides", default=MODEL, help=f"of configs/roberta-small.json (default: {MODEL})")
    parser.add_argument("--input_sentence_size", type=int, default=100_000,
                        help="--tokenizer_gb runs: reservoir sample (default: 100000)")
    parser.add_argument("--sample_seconds", type=float, default=0.2, help="RSS sampling period (default: 0.2)")
    parser.add_argument("--seed", type=int, default=0, help="corpus generator (default: 0)")
    parser.add_argument("--wiki_dir", default=str(WIKI), help="WikiText-2 folder (default: ../shared/data/wikitext-2)")
    parser.add_argument("--work_dir", default=None, help="temporary folder's parent (default: the system's)")
    parser.add_argument("--output", default=None, help="JSON file with every run (default: none)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # internal: one run, WORK/spec.json
    parser.add_argument("--work", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def sizes(text):
    return [float(s) for s in text.split(",") if s.strip()]


# --- the child: one pretrain_mlm.main() under a /proc sampler
def proc_status(pid):
    """{field: kB} of /proc/PID/status's memory lines; None once the process is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    return {k: int(v.split()[0]) for k, v in (l.split(":", 1) for l in lines)
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem")}


def descendants(pid):
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def file_position(path):
    """Offset of this process's open descriptors on path (the furthest), or None when it has none open."""
    found = None
    for fd in Path("/proc/self/fd").iterdir():
        try:
            if os.readlink(fd) == path:
                pos = int(Path(f"/proc/self/fdinfo/{fd.name}").read_text().split()[1])
                found = max(found or 0, pos)
        except OSError:
            continue
    return found


def read_stream(pretrain_mlm, spec):
    """The training stream main() builds (load_corpus, then core's loader and collate, prepared), read without
    a model until read_tokens tokens: the data path alone, over far more of the corpus than training reaches."""
    import batches
    import core
    from transformers import AutoTokenizer

    args = pretrain_mlm.parse_args(spec["argv"])
    accelerator = core.setup(args)
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer_name)
    train, _ = pretrain_mlm.load_corpus(args, tokenizer, args.max_seq_length, len(tokenizer), accelerator)
    loader = accelerator.prepare(batches.loader(train, args.per_device_train_batch_size,
                                              lambda f: pretrain_mlm.collate(f, tokenizer.pad_token_id), args))
    tokens, start = 0, time.perf_counter()
    for batch in loader:
        tokens += int(batch["attention_mask"].sum())
        if tokens >= spec["read_tokens"]:
            break
    return {"train_tokens": tokens, "tokens_per_second": tokens / (time.perf_counter() - start)}


def child(args):
    sys.path.insert(0, str(ROOT))
    import pretrain_mlm

    work, spec = Path(args.work), json.loads(Path(args.work, "spec.json").read_text())
    counter = {"tokens": 0, "batches": 0, "first": None, "last": None}
    collate = pretrain_mlm.collate

    def counting_collate(features, pad_id):  # main() looks collate up at call time; eval rows carry labels
        batch = collate(features, pad_id)
        if "labels" not in features[0]:
            counter["tokens"] += int(batch["attention_mask"].sum())
            counter["batches"] += 1
            counter["last"] = time.perf_counter()
            counter["first"] = counter["first"] or counter["last"]
        return batch
    pretrain_mlm.collate = counting_collate

    samples, stop, start, read = [], threading.Event(), time.perf_counter(), [0]
    corpus = str(Path(spec["corpus"]).resolve())

    def sample():
        pid = os.getpid()
        while True:
            me = proc_status(pid)
            kids = [s for s in map(proc_status, descendants(pid)) if s]
            read[0] = max(read[0], file_position(corpus) or 0)
            samples.append([round(time.perf_counter() - start, 3), me["VmRSS"] / 1024, me["RssAnon"] / 1024,
                            me["RssFile"] / 1024, me["VmHWM"] / 1024, sum(k["VmRSS"] for k in kids) / 1024,
                            counter["tokens"], read[0]])
            if stop.wait(spec["sample_seconds"]):
                return
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    results = read_stream(pretrain_mlm, spec) if spec.get("read_tokens") else pretrain_mlm.main(spec["argv"])
    stop.set()
    thread.join()
    me = proc_status(os.getpid())
    result = {"results": {k: v for k, v in results.items() if isinstance(v, (int, float))},
              "seconds": time.perf_counter() - start, "vm_hwm_mb": me["VmHWM"] / 1024,
              "ru_maxrss_self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              "ru_maxrss_children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
              "corpus_bytes_read": read[0], "train_tokens_loaded": counter["tokens"],
              "train_batches_loaded": counter["batches"],
              "train_loader_seconds": (counter["last"] - counter["first"]) if counter["first"] else None,
              "train_loader_start": (counter["first"] - start) if counter["first"] else None,
              "samples": samples,
              "sample_fields": ["seconds", "rss_mb", "rss_anon_mb", "rss_file_mb", "hwm_mb", "children_rss_mb",
                                "train_tokens_loaded", "corpus_offset"]}
    (work / "result.json").write_text(json.dumps(result))


# --- the parent: corpora, tokenizer, rotation, table
def paragraphs(wiki_dir):
    """Non-blank, non-heading lines of WikiText-2's valid and test files."""
    out = []
    for name in ("wiki.valid.tokens", "wiki.test.tokens"):
        for line in (Path(wiki_dir) / name).read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("="):
                out.append(line)
    return out


def write_corpus(path, pool, token_counts, size_bytes, seed):
    """Seeded draws from pool, one per line, until size_bytes: (lines, bytes, tokens) written."""
    import numpy as np

    rng = np.random.default_rng(seed)
    encoded = [(p + "\n").encode("utf-8") for p in pool]
    lengths, tokens = np.array([len(e) for e in encoded]), np.array(token_counts)
    lines = written = total = 0
    with open(path, "wb") as f:
        while written < size_bytes:
            idx = rng.integers(len(pool), size=50_000)
            keep = np.searchsorted(np.cumsum(lengths[idx]), size_bytes - written) + 1  # up to the first line past it
            idx = idx[:keep]
            f.write(b"".join(encoded[i] for i in idx))
            lines, written, total = lines + len(idx), written + int(lengths[idx].sum()), total + int(tokens[idx].sum())
    return {"lines": lines, "bytes": written, "tokens": total}


def run_child(args, run_dir, argv, corpus, read_tokens=0):
    """pretrain_mlm.main(argv) (read_tokens > 0: read_stream) in a subprocess: (result, wall seconds, wait4's
    ru_maxrss in MB)."""
    run_dir.mkdir(parents=True)
    (run_dir / "spec.json").write_text(json.dumps({"argv": argv, "sample_seconds": args.sample_seconds,
                                                   "corpus": corpus, "read_tokens": read_tokens}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": str(run_dir / "hf-cache"),
           "TOKENIZERS_PARALLELISM": "false"}
    start = time.perf_counter()
    with open(run_dir / "log.txt", "w") as log:
        proc = subprocess.Popen([sys.executable, __file__, "--child", "1", "--work", str(run_dir)], cwd=run_dir,
                                stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode:
        print((run_dir / "log.txt").read_text()[-4000:], file=sys.stderr)
        raise SystemExit(f"error: {' '.join(argv)} failed (exit {proc.returncode})")
    return json.loads((run_dir / "result.json").read_text()), wall, usage.ru_maxrss / 1024


def disk_bytes(folder):
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def curve(result):
    """RSS over the training loop, in tenths of the tokens it trained on: the high-water mark (VmHWM) when each
    tenth ends, and the lowest and highest RSS sampled in it (a step's activations come and go; a leak raises
    the lowest). Then the thinned curve itself."""
    import numpy as np

    s = np.array(result["samples"], dtype=float)  # seconds, rss, anon, file, hwm, children, tokens, offset
    out = {"samples": len(s), "rss_max_sampled_mb": float(s[:, 1].max()),
           "tree_rss_max_sampled_mb": float((s[:, 1] + s[:, 5]).max()),
           "rss_anon_max_mb": float(s[:, 2].max()), "rss_file_max_mb": float(s[:, 3].max())}
    started, ended = (s[:, 6] > 0).argmax(), (s[:, 6] == s[:, 6].max()).argmax()  # first and last token samples
    train = s[started:ended + 1] if s[:, 6].max() > 0 else s[:0]
    if len(train) >= 10:
        tenth = np.clip(np.ceil(10 * train[:, 6] / train[-1, 6]) - 1, 0, 9)  # (0, 10%] is the first
        out["tenths"] = [{"hwm_mb": float(train[tenth <= k, 4].max()), "rss_min_mb": float(train[tenth == k, 1].min()),
                          "rss_max_mb": float(train[tenth == k, 1].max()), "samples": int((tenth == k).sum())}
                         if (tenth == k).any() else None for k in range(10)]
        first, last = out["tenths"][0], out["tenths"][-1]
        out["hwm_first_tenth_mb"], out["hwm_end_of_training_mb"] = first and first["hwm_mb"], last and last["hwm_mb"]
        out["hwm_half_mb"] = out["tenths"][4] and out["tenths"][4]["hwm_mb"]
        low = [t["rss_min_mb"] for t in out["tenths"][1:] if t]  # the first tenth still fills the shuffle buffer
        out["floor_growth_mb"] = low[-1] - low[0] if len(low) >= 2 else None
    keep = np.unique(np.linspace(0, len(s) - 1, min(60, len(s))).astype(int))
    out["points"] = [[round(float(r[0]), 1), round(float(r[1]), 1), round(float(r[4]), 1), int(r[6]), int(r[7])]
                     for r in s[keep]]  # seconds, RSS MB, high-water mark MB, tokens trained, corpus offset
    return out


def summarize(runs):
    """(medians per mode and size, markdown table lines, streamed peak of the largest size vs the smallest's)."""
    table = []
    for mode in MODES:
        for gb in sorted({r["corpus_gb"] for r in runs if r["mode"] == mode}):
            mine = [r for r in runs if r["mode"] == mode and r["corpus_gb"] == gb]
            med = lambda k: statistics.median(r[k] for r in mine) if all(r.get(k) is not None for r in mine) else None
            table.append({"mode": mode, "corpus_gb": gb, "runs": len(mine), "corpus_lines": mine[0]["corpus_lines"],
                          "corpus_tokens": mine[0]["corpus_tokens"], "steps": mine[0]["steps"],
                          **{k: med(k) for k in ("train_tokens", "token_share", "corpus_bytes_read", "read_share",
                                                 "peak_rss_mb", "hwm_first_tenth_mb", "hwm_half_mb",
                                                 "hwm_end_of_training_mb",
                                                 "floor_growth_mb", "first_batch_seconds", "wall_seconds",
                                                 "cache_bytes")},
                          "peak_rss_mb_range": [min(r["peak_rss_mb"] for r in mine),
                                                max(r["peak_rss_mb"] for r in mine)]})
    fmt = lambda v, f: "-" if v is None else format(v, f)
    lines = ["| mode | corpus GB | lines | runs | steps | tokens loaded (% of corpus) | corpus read GB (%) | "
             "peak RSS MB (min-max) | high-water MB at 10% / 50% / 100% of the tokens | first batch s | wall s | "
             "cache GB |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for t in table:
        loaded = f"{t['train_tokens']:,.0f} ({100 * t['token_share']:.2f}%)" if t["train_tokens"] else "-"
        lines.append(
            f"| {t['mode'].replace('_', ' ')} | {t['corpus_gb']:g} | {t['corpus_lines']:,} | {t['runs']} | "
            f"{fmt(t['steps'], 'd')} | {loaded} | {t['corpus_bytes_read'] / GB:.3f} ({100 * t['read_share']:.1f}%) | "
            f"{t['peak_rss_mb']:.0f} ({t['peak_rss_mb_range'][0]:.0f}-{t['peak_rss_mb_range'][1]:.0f}) | "
            f"{fmt(t['hwm_first_tenth_mb'], '.0f')} / {fmt(t['hwm_half_mb'], '.0f')} / "
            f"{fmt(t['hwm_end_of_training_mb'], '.0f')} | {fmt(t['first_batch_seconds'], '.1f')} | "
            f"{t['wall_seconds']:.0f} | "
            f"{fmt(t['cache_bytes'] and t['cache_bytes'] / GB, '.2f')} |")
    flat = [t for t in table if t["mode"] == "streaming"]
    verdict = None
    if len(flat) >= 2:
        small, big = flat[0], flat[-1]
        verdict = {"smallest_gb": small["corpus_gb"], "largest_gb": big["corpus_gb"],
                   "peak_rss_ratio": big["peak_rss_mb"] / small["peak_rss_mb"],
                   "peak_rss_difference_mb": big["peak_rss_mb"] - small["peak_rss_mb"]}
    return table, lines, verdict


def mlm_argv(args, corpus, valid, tokenizer, out, cache, streaming):
    return ["--train_file", str(corpus), "--validation_file", str(valid), "--tokenizer_name", str(tokenizer),
            "--config_name", str(ROOT / "configs/roberta-small.json"), "--config_overrides", args.config_overrides,
            "--max_seq_length", str(args.max_seq_length), "--per_device_train_batch_size", str(args.batch_size),
            "--per_device_eval_batch_size", str(args.batch_size), "--max_train_steps", str(args.max_train_steps),
            "--learning_rate", "1e-3", "--logging_steps", "100", "--report_to", "none", "--output_dir", str(out),
            "--cache_dir", str(cache), *(["--streaming"] if streaming else [])]


def source():
    """The commit, the sha256 of pretrain_mlm.py and core.py as measured, and whether they differ from the commit;
    read at the start and again at the end (another person may edit or commit meanwhile)."""
    git = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout
    files = ("pretrain_mlm.py", "core.py", "bench/streaming_memory.py")
    return {"commit": git("rev-parse", "HEAD").strip(),
            "sha256": {f: hashlib.sha256((ROOT / f).read_bytes()).hexdigest() for f in files},
            "modified": git("diff", "--name-only", "HEAD", "--", *files).split()}


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return child(args)
    command = "HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 taskset -c 0 python bench/streaming_memory.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    import transformers
    from transformers import AutoTokenizer

    streamed, read, arrow, tok_sizes = map(sizes, (args.sizes_gb, args.read_gb, args.no_streaming_gb,
                                                   args.tokenizer_gb))
    code = source()
    work = Path(tempfile.mkdtemp(prefix="streaming_memory_", dir=args.work_dir))
    try:
        # --- tokenizer (once) and corpora
        pool = paragraphs(args.wiki_dir)
        (work / "pool.txt").write_text("\n".join(pool) + "\n", encoding="utf-8")
        (work / "valid.txt").write_text("\n".join(pool[:200]) + "\n", encoding="utf-8")
        tok_run = work / "tokenizer"
        subprocess.run([sys.executable, str(ROOT / "pretrain_mlm.py"), "--train_file", str(work / "pool.txt"),
                        "--train_tokenizer", "bpe", "--vocab_size", str(args.vocab_size), "--tokenizer_only",
                        "--max_seq_length", str(args.max_seq_length), "--output_dir", str(tok_run)],
                       check=True, capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        tokenizer = AutoTokenizer.from_pretrained(tok_run / "tokenizer")
        counts = [len(e.ids) for e in tokenizer.backend_tokenizer.encode_batch(pool, add_special_tokens=False)]
        corpora = {}
        for i, gb in enumerate(sorted(set(streamed + read + arrow + tok_sizes))):
            start = time.perf_counter()
            path = work / f"corpus-{gb:g}gb.txt"
            corpora[gb] = {"path": str(path), **write_corpus(path, pool, counts, int(gb * GB), args.seed + i),
                           "write_seconds": time.perf_counter() - start}
            c = corpora[gb]
            print(f"corpus {gb:g} GB: {c['lines']:,} lines, {c['tokens']:,} tokens, written in "
                  f"{c['write_seconds']:.0f} s", flush=True)

        # --- runs: streamed sizes in rotation; the contrast and the tokenizer timings in the first round
        plan = [(r, "streaming", gb) for r in range(args.rounds) for gb in streamed]
        plan[len(streamed):len(streamed)] = [(0, "stream_read", gb) for gb in read] + \
                                            [(0, "no_streaming", gb) for gb in arrow] + \
                                            [(0, "tokenizer", gb) for gb in tok_sizes]
        runs = []
        for n, (round_, mode, gb) in enumerate(plan):
            run_dir, corpus = work / f"run{n}-{mode}-{gb:g}", corpora[gb]
            if mode == "tokenizer":
                child_argv = ["--train_file", corpus["path"], "--train_tokenizer", "bpe", "--vocab_size",
                        str(args.vocab_size), "--input_sentence_size", str(args.input_sentence_size),
                        "--tokenizer_only", "--output_dir", str(run_dir / "out")]
            else:
                child_argv = mlm_argv(args, corpus["path"], work / "valid.txt", tok_run / "tokenizer", run_dir / "out",
                                run_dir / "cache", mode != "no_streaming")
            result, wall, wait4_mb = run_child(args, run_dir, child_argv, corpus["path"],
                                               args.read_tokens if mode == "stream_read" else 0)
            results = result["results"]
            run = {"mode": mode, "round": round_, "corpus_gb": gb, "corpus_bytes": corpus["bytes"],
                   "corpus_lines": corpus["lines"], "corpus_tokens": corpus["tokens"], "wall_seconds": wall,
                   "peak_rss_mb": wait4_mb, "vm_hwm_at_end_of_main_mb": result["vm_hwm_mb"],
                   "children_maxrss_mb": result["ru_maxrss_children_mb"],
                   "corpus_bytes_read": result["corpus_bytes_read"],
                   "read_share": result["corpus_bytes_read"] / corpus["bytes"],
                   "steps": args.max_train_steps if mode in ("streaming", "no_streaming") else None,
                   "train_tokens": results.get("train_tokens"), "tokens_per_second": results.get("tokens_per_second"),
                   "train_seconds": results.get("train_seconds"), "first_batch_seconds": result["train_loader_start"],
                   "perplexity": results.get("perplexity"), **curve(result), "argv": child_argv}
            run["token_share"] = run["train_tokens"] and run["train_tokens"] / corpus["tokens"]
            if mode == "no_streaming":  # the corpus as an Arrow table, then tokenized and packed (int64 lists)
                run["cache_bytes"] = disk_bytes(run_dir / "cache") + disk_bytes(run_dir / "hf-cache")
                run["cache_files"] = {str(p.relative_to(run_dir)): p.stat().st_size for p in run_dir.rglob("*.arrow")}
            runs.append(run)
            trained = (f"loaded {run['train_tokens']:,} tokens ({100 * run['token_share']:.2f}% of the corpus's), "
                       if run["train_tokens"] else "")
            print(f"round {round_} {mode:12s} {gb:5g} GB: peak RSS {run['peak_rss_mb']:.0f} MB, {trained}"
                  f"read {run['corpus_bytes_read'] / GB:.3f} GB, wall {wall:.0f} s",
                  flush=True)
            shutil.rmtree(run_dir, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    table, lines, verdict = summarize(runs)
    print("\n".join(lines))
    if verdict:
        print(f"streaming, {verdict['largest_gb']:g} GB vs {verdict['smallest_gb']:g} GB: peak RSS x"
              f"{verdict['peak_rss_ratio']:.3f} ({verdict['peak_rss_difference_mb']:+.0f} MB)")

    record = {"command": command,
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(cores_used=len(os.sched_getaffinity(0)), torch=torch.__version__,
                                 transformers=transformers.__version__, torch_threads=torch.get_num_threads()),
              "setup": {"model": f"configs/roberta-small.json with {args.config_overrides}",
                        "tokenizer": f"byte-level BPE, {len(tokenizer)} tokens, trained once on the pool",
                        "pool_paragraphs": len(pool), "pool_tokens": sum(counts), "max_seq_length": args.max_seq_length,
                        "batch_size": args.batch_size, "max_train_steps": args.max_train_steps,
                        "validation": "the first 200 paragraphs of the pool", "seed": args.seed,
                        "sample_seconds": args.sample_seconds,
                        "peak": "ru_maxrss of the child from wait4(): its whole life",
                        "children": "children_maxrss_mb: `ldconfig -p`, forked by ctypes.util.find_library at "
                                    "import; its maxrss is the RSS it inherited at the fork, not memory of its own. "
                                    "No other process is started (no dataloader workers, no datasets num_proc)"},
              "source": {**code, "changed_during_the_run": source()["sha256"] != code["sha256"]},
              "corpora": {f"{gb:g}": {k: v for k, v in c.items() if k != "path"} for gb, c in corpora.items()},
              "medians": table, "streaming_largest_vs_smallest": verdict, "runs": runs, "table": "\n".join(lines)}
    save(record, args.output)
    return record


if __name__ == "__main__":
    main()
