"""Models, configs and tokenizers named on the command line: loaded, or refused with one line naming the path and
what was expected, before anything is written.

    config = loading.load_config(args.model_name_or_path)                # the folder checked, then its config
    tokenizer = loading.load_tokenizer(args.model_name_or_path)          # refused if it has only special tokens

A local folder is checked cheaply first (a path that does not exist or is a file, no config.json, no weights, a
safetensors file whose header does not open: a truncated or garbage download); a name that is no local path is
left to the hub. Every refusal goes through flags.fail. This module knows no task and no training loop: what a
script needs beyond a loadable model (labels, positions, a fast tokenizer, ...) stays in the script.
"""
from pathlib import Path

import flags

WEIGHTS = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")
MODEL_FOLDER = "a model folder (config.json, weights, tokenizer)"


def first_line(e):
    """An exception as one line: its message's first line, or its type's name."""
    return (str(e).splitlines() or [type(e).__name__])[0]


def check_exists(name, flag, expected=MODEL_FOLDER):
    """One line for a local path (absolute, ./ or ~, or with more than one /) that does not exist; True when name is
    a local path that exists, False for a name left to the hub."""
    path = Path(name).expanduser()
    if path.exists():
        return True
    if path.is_absolute() or str(name).startswith((".", "~")) or str(name).count("/") > 1:
        flags.fail(f"{flag} {name}: no such folder; expected {expected} or a hub name")
    return False


def check_model_files(name, flag="--model_name_or_path", weights=True):
    """One line for a model that cannot load, found cheaply: a local path that does not exist or is a file, a folder
    without config.json or (weights=True) without readable weights. A name that is no local path is left to the hub."""
    if not check_exists(name, flag):
        return
    if not Path(name).expanduser().is_dir():
        flags.fail(f"{flag} {name}: a file; expected {MODEL_FOLDER} or a hub name")
    if not (Path(name).expanduser() / "config.json").is_file():
        flags.fail(f"{flag} {name}: no config.json in the folder; expected a saved model (save_pretrained)")
    if weights:
        check_weights(name, flag)


def check_weights(name, flag="--model_name_or_path"):
    """A local model folder holds weights, and its safetensors files open (their header checks the size too)."""
    from safetensors import safe_open  # here, as transformers below: squad.py's --predictions scoring needs neither

    path = Path(name).expanduser()
    if not path.is_dir():
        return
    if not any(any(path.glob(pattern)) for pattern in WEIGHTS):
        flags.fail(f"{flag} {name}: no weights (model.safetensors) in the folder; expected a saved model")
    for file in sorted(path.glob("*.safetensors")):
        try:
            with safe_open(str(file), framework="pt") as f:
                f.keys()
        except Exception as e:  # noqa: BLE001 (SafetensorError and OSError alike: one line)
            flags.fail(f"{file}: damaged weights ({first_line(e)}); expected a complete safetensors file "
                       "(save_pretrained's)")


def load_config(name, flag="--model_name_or_path", config_class=None):
    """The model's config, the folder checked first (check_model_files), or one line. config_class: a config class
    that AutoConfig does not know by name (the template's ModelConfig), used for a folder whose config.json has its
    model_type; AutoConfig for any other."""
    from transformers import AutoConfig, PreTrainedConfig

    check_model_files(name, flag)
    try:
        if config_class is not None and \
                PreTrainedConfig.get_config_dict(name)[0].get("model_type") == config_class.model_type:
            return config_class.from_pretrained(name)
        return AutoConfig.from_pretrained(name)
    except Exception as e:  # noqa: BLE001 (not found, offline, no known model_type, bad JSON, a field of a wrong type)
        flags.fail(f"{flag} {name}: cannot load its config ({first_line(e)})")


def config_for(args, config_class=None):
    """The config of args.model_name_or_path, or of --config_name when given (a config folder needs no weights; the
    model's weights are still checked)."""
    if not getattr(args, "config_name", None):
        return load_config(args.model_name_or_path, config_class=config_class)
    from transformers import AutoConfig

    check_model_files(args.model_name_or_path)
    if check_exists(args.config_name, "--config_name", "a config folder") and \
            not Path(args.config_name).expanduser().is_dir():
        flags.fail(f"--config_name {args.config_name}: a file; expected a config folder or a hub name")
    try:
        return (config_class or AutoConfig).from_pretrained(args.config_name)
    except Exception as e:  # noqa: BLE001 (as load_config)
        flags.fail(f"--config_name {args.config_name}: cannot load its config ({first_line(e)})")


def tokenizer_for(args, **kwargs):
    """load_tokenizer of --tokenizer_name when given, else of args.model_name_or_path."""
    if getattr(args, "tokenizer_name", None):
        return load_tokenizer(args.tokenizer_name, "--tokenizer_name", **kwargs)
    return load_tokenizer(args.model_name_or_path, **kwargs)


def load_tokenizer(name, flag="--model_name_or_path", *, add_prefix_space=False, masked_lm=False, **kwargs):
    """AutoTokenizer.from_pretrained(name, **kwargs), or one line. A folder without tokenizer files gives transformers
    an empty tokenizer of special tokens only (every word unknown): refused too.
    add_prefix_space: input comes as words (NER); byte-level BPE (RoBERTa, GPT-2) must see each with a leading
    space, and that setting has to go to from_pretrained (setting the attribute afterwards is silently ignored).
    masked_lm: a mask and a pad token are required."""
    from transformers import AutoTokenizer

    check_exists(name, flag, "a tokenizer folder")
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
        if add_prefix_space and "ByteLevel" in repr(tokenizer.backend_tokenizer.pre_tokenizer) \
                and not tokenizer.add_prefix_space:
            tokenizer = AutoTokenizer.from_pretrained(name, **kwargs, add_prefix_space=True)
    except Exception as e:  # noqa: BLE001 (no tokenizer files, a broken tokenizer.json: one line)
        flags.fail(f"{flag} {name}: cannot load its tokenizer ({first_line(e)})")
    if len(tokenizer) <= len(set(tokenizer.all_special_ids)):
        flags.fail(f"{flag} {name}: its tokenizer has no vocabulary, only {len(tokenizer)} special tokens; expected its "
                   "tokenizer files (tokenizer.json, or vocab.txt, ...) in the folder")
    if masked_lm and (tokenizer.mask_token_id is None or tokenizer.pad_token_id is None):
        flags.fail(f"{flag} {name}: the tokenizer has no {'mask' if tokenizer.mask_token_id is None else 'pad'} token; "
                   "expected one for masked-LM training")
    return tokenizer
