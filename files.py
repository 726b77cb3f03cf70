"""Files the scripts write and read back: the one atomic write, checksummed folders, the one cache.

Owns: write_text/write_json (temporary name, then rename), the manifest that makes a folder verifiable (every
file's size and checksum, written last), and cached() (a folder of derived data that is rebuilt when it does not
verify). Knows nothing of training or of any task.
"""
import hashlib
import json
import os
import shutil
from pathlib import Path


def write_text(path, text):
    """The one atomic write: a temporary file beside path, renamed over it (a kill leaves the old file or the new)."""
    tmp = Path(f"{path}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, default=str, ensure_ascii=False) + "\n")


def digest(path):
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "blake2b").hexdigest()


def write_manifest(root, manifest, **fields):
    """manifest (a path under root) lists every other file under root with its size and checksum; written last,
    it says the folder is complete."""
    root, manifest = Path(root), Path(manifest)
    files = {str(p.relative_to(root)): [p.stat().st_size, digest(p)] for p in sorted(root.rglob("*"))
             if p.is_file() and p != manifest}
    write_json(manifest, {**fields, "files": files})


def manifest_problems(root, manifest, **fields):
    """[(name, what is wrong)] for a folder written with write_manifest(root, manifest, **fields); [] = it verifies.
    A missing or unreadable manifest, another key in fields, a missing, extra, truncated or changed file."""
    root, manifest = Path(root), Path(manifest)
    try:
        found = json.loads(manifest.read_text(encoding="utf-8"))
        files = dict(found["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return [(str(manifest.relative_to(root)), "missing or unreadable")]
    problems = [(str(manifest.relative_to(root)), f"{k} is {found.get(k)!r}, expected {v!r}")
                for k, v in fields.items() if found.get(k) != v]
    present = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p != manifest}
    problems += [(name, "missing") for name in sorted(set(files) - present)]
    problems += [(name, "not written by this save") for name in sorted(present - set(files))]
    for name in sorted(set(files) & present):
        size, checksum = files[name]
        if (root / name).stat().st_size != size:
            problems.append((name, f"{(root / name).stat().st_size} bytes, expected {size} (truncated?)"))
        elif digest(root / name) != checksum:
            problems.append((name, "checksum differs (damaged)"))
    return problems


# --- the cache

CACHE_MANIFEST = "cache.json"


def cache_root(cache_dir, name):
    """--cache_dir, or the datasets cache's folder `name` ($HF_DATASETS_CACHE or ~/.cache/huggingface/datasets)."""
    default = Path(os.environ.get("HF_DATASETS_CACHE", Path.home() / ".cache/huggingface/datasets")) / name
    return Path(cache_dir or default)


def cached(folder, build, write, read, accelerator, overwrite=False, what="features"):
    """The one cache of the project: build() -> obj, write(obj, folder) saves it, read(folder) -> obj loads it.
    folder's name is the key, naming everything the data depends on; a later run, and the other processes of this
    one, read it instead of building again. Written to folder.tmp with its manifest last, then renamed: a cache
    that is missing a file, truncated, garbage or another key's is rebuilt, with a one-line notice."""
    folder = Path(folder)
    if not accelerator.is_main_process:  # the others wait for the main process, then read what it verified or wrote
        accelerator.wait_for_everyone()
        return read(folder)
    obj, problem = None, None
    if folder.is_dir() and not overwrite:
        problems = manifest_problems(folder, folder / CACHE_MANIFEST, key=folder.name)
        problem = "; ".join(f"{name}: {why}" for name, why in problems[:3]) or None
        if problem is None:
            try:
                obj = read(folder)
                print(f"{what} loaded from {folder}")
            except Exception as e:  # verified yet unreadable (e.g. another library version's format): rebuild
                problem = f"unreadable: {type(e).__name__}"
        if problem:
            print(f"notice: the cache {folder} does not verify ({problem}); building it again")
    if obj is None:
        obj = build()
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)  # a killed run's
        tmp.mkdir(parents=True)
        write(obj, tmp)
        write_manifest(tmp, tmp / CACHE_MANIFEST, key=folder.name)
        shutil.rmtree(folder, ignore_errors=True)  # a stale or damaged one
        os.replace(tmp, folder)
        obj = read(folder)  # what every later run reads, not what build() left in memory or in scratch files
    accelerator.wait_for_everyone()
    return obj


def cached_dataset(cache_dir, name, key, build, accelerator, overwrite=False, what="features"):
    """build() -> datasets.Dataset, cached by cached() in cache_root(cache_dir, name)/key, saved as Arrow and
    memory-mapped when read."""
    import datasets
    return cached(cache_root(cache_dir, name) / key, build, lambda d, f: d.save_to_disk(str(f)),
                  lambda f: datasets.load_from_disk(str(f)), accelerator, overwrite, what)


def tokenizer_key(tokenizer):
    """A hash of the tokenizer's class and tokenizer.json, less the truncation and padding that its last call left
    there (a cache key for tokenized data). Those come first in the JSON, so the rest is hashed as it is: parsing and dumping a 30k vocabulary
    again would cost ~50 ms. Any other layout is parsed."""
    text = tokenizer.backend_tokenizer.to_str()
    head, found, rest = text.partition(',"added_tokens":')
    try:
        fields = json.loads(head + "}") if found else None
    except json.JSONDecodeError:
        fields = None
    if fields is None or not set(fields) <= {"version", "truncation", "padding"}:
        fields = json.loads(text)
        fields.pop("truncation", None), fields.pop("padding", None)
        rest = json.dumps(fields)
    return hashlib.blake2b(f"{type(tokenizer).__name__}\0{fields.get('version')}\0{rest}".encode(),
                           digest_size=16).hexdigest()
