"""DistilBERT-style distillation: a smaller DistilBERT student learns from a BERT- or RoBERTa-style masked LM
(the teacher) on plain text, with the loss and masking of the DistilBERT recipe (Sanh et al., arXiv 1910.01108).

    accelerate launch distill.py --teacher bert-base-uncased --student_config configs/distilbert-base.json \
        --train_file corpus.txt --validation_file valid.txt --output_dir out/distilbert

Loss = alpha_ce x KL(teacher/T || student/T) x T^2 over the non-pad tokens (--restrict_ce_to_mask: the masked
ones) + alpha_mlm x MLM cross-entropy + alpha_cos x (1 - cosine) of the last hidden states + alpha_mse x squared
error of the logits; each term is logged. Masks: exactly ceil(--mlm_probability) of a batch's maskable tokens,
drawn with weights count^-0.7 (rare tokens more often), 80% [MASK] / 10% random / 10% kept, at step time from
the global RNG, which last/ saves (exact resume). The student takes the teacher's vocabulary, special ids and
tokenizer; --student_init teacher (default) copies the embeddings, a spread of the layers (0,2,4,7,9,11 of 12)
and the MLM head. A teacher of another width needs --student_init random: the cosine term then goes through a
learned projection, trained and resumed with the student, saved beside it (distill_projection.safetensors) but
not in it. best/ and last/ are DistilBertForMaskedLM folders. Data as pretrain_mlm.py (packed blocks, or
--line_by_line); the eval metric is the student's perplexity, and eval_results.json also holds the teacher's on the
same masks.

Owns: this script's flags, the student (config, initialisation from the teacher, the projection), the recipe's
masking and loss, and the run (train, then best/ and the teacher evaluated on the same masks). The corpus, its
flags, evaluation masks and perplexity are mlm.py's (shared with pretrain_mlm.py). Must not know any other task
script (pretrain_mlm.py included).
"""
import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import AutoModelForMaskedLM, DistilBertConfig, DistilBertForMaskedLM

import core
import flags
import loading
import mlm

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "distilbert-base.json"
# DistilBERT block part -> BERT/RoBERTa layer part (both keep Q, K and V apart)
LAYER_PARTS = {"attention.q_lin": "attention.self.query", "attention.k_lin": "attention.self.key",
               "attention.v_lin": "attention.self.value", "attention.out_lin": "attention.output.dense",
               "sa_layer_norm": "attention.output.LayerNorm", "ffn.lin1": "intermediate.dense",
               "ffn.lin2": "output.dense", "output_layer_norm": "output.LayerNorm"}
# MLM head: DistilBERT part -> (BERT's, RoBERTa's)
HEAD_PARTS = {"vocab_transform": ("cls.predictions.transform.dense", "lm_head.dense"),
              "vocab_layer_norm": ("cls.predictions.transform.LayerNorm", "lm_head.layer_norm")}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.error = flags.fail  # argparse's own errors too: one line, no usage block
    flags.add_args(parser, model_name_or_path="same as --teacher")
    # the recipe's optimisation (distillation/train.py); streaming and whole_word_mask: read by load_corpus, off
    parser.set_defaults(output_dir="out/distil", learning_rate=5e-4, adam_epsilon=1e-6, adam_beta2=0.98,
                        warmup_ratio=0.05, max_grad_norm=5.0, metric_for_best_model="perplexity",
                        streaming=False, whole_word_mask=False)
    m = parser.add_argument_group("teacher and student")
    m.add_argument("--teacher", default=None, help="BERT- or RoBERTa-style masked-LM folder or hub name (required)")
    m.add_argument("--student_config", default=str(DEFAULT_CONFIG),
                   help="DistilBERT config JSON; vocab_size, special ids and positions come from the teacher "
                        "(default: configs/distilbert-base.json)")
    m.add_argument("--config_overrides", default=None,
                   help='student config changes, "n_layers=3,dim=256" (default: none)')
    m.add_argument("--student_init", choices=["teacher", "random"], default="teacher",
                   help="teacher: copy embeddings, a spread of layers and the MLM head (needs the teacher's dim, "
                        "hidden_dim, n_heads); random: the config's init (default: teacher)")
    m.add_argument("--student_tokenizer", default=None,
                   help="a tokenizer the student must share with the teacher: checked, then unused (default: none)")
    loss = parser.add_argument_group("loss and masking (defaults: the DistilBERT recipe)")
    loss.add_argument("--alpha_ce", type=float, default=5.0, help="weight of the KL to the teacher (default: 5.0)")
    loss.add_argument("--alpha_mlm", type=float, default=2.0, help="weight of the MLM cross-entropy (default: 2.0)")
    loss.add_argument("--alpha_cos", type=float, default=1.0, help="weight of the hidden-state cosine (default: 1.0)")
    loss.add_argument("--alpha_mse", type=float, default=0.0, help="weight of the logits' squared error (default: 0.0)")
    loss.add_argument("--temperature", type=float, default=2.0, help="softmax temperature of the KL (default: 2.0)")
    loss.add_argument("--restrict_ce_to_mask", action="store_true", help="KL on masked tokens only (default: all real)")
    loss.add_argument("--mlm_probability", type=float, default=0.15, help="share of tokens to predict (default: 0.15)")
    loss.add_argument("--mlm_smoothing", type=float, default=0.7,
                      help="mask token t with weight count(t)^-s; 0 = uniform (default: 0.7)")
    mlm.add_data_args(parser, "data (as pretrain_mlm.py)", streaming=False)
    args = parser.parse_args(argv)
    if args.teacher and args.model_name_or_path and args.teacher != args.model_name_or_path:
        flags.fail("--teacher and --model_name_or_path name different models")
    args.teacher = args.model_name_or_path = args.teacher or args.model_name_or_path  # (the model card's base)
    if not args.teacher:
        flags.fail("--teacher is required")
    alphas = [args.alpha_ce, args.alpha_mlm, args.alpha_cos, args.alpha_mse]
    if min(alphas) < 0 or sum(alphas) == 0:
        flags.fail("the --alpha_* weights must be >= 0, one of them > 0")
    if args.temperature <= 0 or not 0 < args.mlm_probability < 1 or args.mlm_smoothing < 0:
        flags.fail("--temperature must be > 0, --mlm_probability in (0, 1), --mlm_smoothing >= 0")
    return args


# --- the student: config, initialisation from the teacher, the projection
def student_config(args, teacher, tokenizer, usable):
    """DistilBertConfig from --student_config and --config_overrides. Vocabulary size and special ids come from the
    teacher (its model or config), positions default to the teacher's: a value typed in that contradicts the teacher
    is an error."""
    teacher_config = getattr(teacher, "config", teacher)
    path = Path(args.student_config)
    if path.is_dir():
        flags.fail(f"--student_config {path}: a folder; expected a DistilBERT config JSON file")
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        flags.fail(f"--student_config {path}: cannot read a config JSON ({(str(e).splitlines() or [type(e).__name__])[0]})")
    if not isinstance(values, dict) or values.pop("model_type", "distilbert") != "distilbert":
        flags.fail(f"{path}: expected a DistilBERT config (a JSON object, model_type distilbert if given)")
    if "tie_weights_" in values:  # the original distillation configs' name for it
        values["tie_word_embeddings"] = values.pop("tie_weights_")
    unknown = sorted(set(values) - set(DistilBertConfig().to_dict()))
    if unknown:
        flags.fail(f"{path}: not DistilBERT config keys: {', '.join(unknown)}")
    explicit = set(values)
    try:
        config = DistilBertConfig(**values)
        if args.config_overrides:
            config.update_from_string(args.config_overrides)
            explicit |= {kv.split("=")[0] for kv in args.config_overrides.split(",")}
    except (ValueError, TypeError) as e:
        flags.fail(f"{path} / --config_overrides: {e}; expected DistilBERT config values (key=value, comma-separated)")
    wanted = {"vocab_size": teacher_config.vocab_size, "pad_token_id": tokenizer.pad_token_id,
              "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    for key, value in wanted.items():
        if key in explicit and getattr(config, key) != value:
            flags.fail(f"{path}: {key} {getattr(config, key)} contradicts the teacher's {value}: the student shares the "
                       f"teacher's vocabulary and special ids (leave {key} out, it is set from the teacher)")
        setattr(config, key, value)
    if "max_position_embeddings" not in explicit:
        config.max_position_embeddings = usable
    elif config.max_position_embeddings > usable:
        flags.fail(f"{path}: max_position_embeddings {config.max_position_embeddings} > the {usable} positions the "
                   f"teacher {args.teacher} takes")
    if args.student_init == "teacher":
        t = teacher_config
        sizes = [f"{s} {getattr(config, s)} vs {n} {getattr(t, n, None)}" for s, n in (
            ("dim", "hidden_size"), ("hidden_dim", "intermediate_size"), ("n_heads", "num_attention_heads"))
                 if getattr(config, s) != getattr(t, n, None)]
        if sizes:
            flags.fail(f"--student_init teacher copies the teacher's weights, but the sizes differ "
                       f"({', '.join(sizes)}); use --student_init random (the cosine term then learns a projection) "
                       "or the teacher's sizes")
        if config.n_layers > t.num_hidden_layers:
            flags.fail(f"the student has {config.n_layers} layers, the teacher {t.num_hidden_layers}: nothing to copy")
    return config


def layer_map(student_layers, teacher_layers):
    """Teacher layers spread evenly, first and last kept: 0,2,4,7,9,11 of 12 for 6 (DistilBERT's); 0 for 1."""
    if student_layers == 1:
        return [0]
    return [int(i * (teacher_layers - 1) / (student_layers - 1) + 0.5) for i in range(student_layers)]


def init_from_teacher(student, teacher, offset):
    """Copies the embeddings (+ LayerNorm), the layers of layer_map and the MLM head; returns {student parameter:
    teacher parameter}. DistilBERT has no token types: BERT and RoBERTa add type 0's vector to every token, so it
    goes into the position embeddings; RoBERTa's position ids start after its padding index (offset)."""
    t, b = teacher.state_dict(), teacher.base_model_prefix
    names = {f"distilbert.embeddings.{n}": f"{b}.embeddings.{n}"
             for n in ("word_embeddings.weight", "LayerNorm.weight", "LayerNorm.bias")}
    for s, k in enumerate(layer_map(student.config.n_layers, teacher.config.num_hidden_layers)):
        names.update({f"distilbert.transformer.layer.{s}.{part}.{w}": f"{b}.encoder.layer.{k}.{theirs}.{w}"
                      for part, theirs in LAYER_PARTS.items() for w in ("weight", "bias")})
    roberta = "lm_head.bias" in t
    names.update({f"{part}.{w}": f"{theirs[roberta]}.{w}"
                  for part, theirs in HEAD_PARTS.items() for w in ("weight", "bias")})
    names["vocab_projector.bias"] = "lm_head.bias" if roberta else "cls.predictions.bias"
    if not student.config.tie_word_embeddings:  # tied: it is the word embeddings, copied above
        names["vocab_projector.weight"] = "lm_head.decoder.weight" if roberta else "cls.predictions.decoder.weight"
    positions = f"{b}.embeddings.position_embeddings.weight"
    missing = [n for n in [*names.values(), positions] if n not in t]
    if missing:
        flags.fail(f"--student_init teacher: the teacher ({type(teacher).__name__}) has no {missing[0]}; it copies "
                   "BERT- and RoBERTa-style teachers only, use --student_init random")
    types = t.get(f"{b}.embeddings.token_type_embeddings.weight")
    with torch.no_grad():
        for mine, theirs in names.items():
            student.get_parameter(mine).copy_(t[theirs])
        own = student.distilbert.embeddings.position_embeddings.weight
        own.copy_(t[positions][offset:offset + own.shape[0]] + (types[0] if types is not None else 0))
    return names


PROJECTION = "distill_projection.safetensors"  # the projection's weights, beside the student's in best/ and last/


class Student(torch.nn.Module):
    """What core.train trains: the DistilBERT masked LM and, for a teacher of another width, a projection of its
    last hidden states to the teacher's width. Both are optimised and saved. state_dict() uses the DistilBERT's own
    names (and projection.*), and save_pretrained writes the DistilBERT alone as model.safetensors (best/ and last/
    load as a plain DistilBertForMaskedLM) and the projection beside it in distill_projection.safetensors: a
    checkpoint's weight files are then exactly this module's state, which is what core reads back to resume."""

    def __init__(self, model, teacher_dim, with_hidden):
        super().__init__()
        self.model, self.config, self.with_hidden = model, model.config, with_hidden
        dim = model.config.dim
        self.projection = torch.nn.Linear(dim, teacher_dim) if with_hidden and teacher_dim != dim else None

    def forward(self, **batch):
        if not self.training:  # evaluation: the masked LM as saved
            return self.model(**batch)
        out = self.model(**batch, output_hidden_states=self.with_hidden)
        hidden = out.hidden_states[-1] if self.with_hidden else None
        return {"logits": out.logits, "hidden": hidden if self.projection is None else self.projection(hidden)}

    def state_dict(self, *args, destination=None, prefix="", keep_vars=False):
        state = self.model.state_dict(prefix=prefix, keep_vars=keep_vars)
        if self.projection is not None:
            state.update(self.projection.state_dict(prefix=f"{prefix}projection.", keep_vars=keep_vars))
        return state

    def load_state_dict(self, state_dict, strict=True, assign=False):
        ours = {k[len("projection."):]: v for k, v in state_dict.items() if k.startswith("projection.")}
        found = self.model.load_state_dict({k: v for k, v in state_dict.items() if not k.startswith("projection.")},
                                           strict=False, assign=assign)
        missing, unexpected = list(found.missing_keys), list(found.unexpected_keys)
        if self.projection is None:
            unexpected += [f"projection.{k}" for k in ours]
        else:
            found = self.projection.load_state_dict(ours, strict=False, assign=assign)
            missing += [f"projection.{k}" for k in found.missing_keys]
            unexpected += [f"projection.{k}" for k in found.unexpected_keys]
        if strict and (missing or unexpected):
            raise RuntimeError(f"Student: missing {missing[:3]}, unexpected {unexpected[:3]}")
        return torch.nn.modules.module._IncompatibleKeys(missing, unexpected)

    def save_pretrained(self, path, state_dict=None, **kwargs):
        if state_dict is not None:  # gathered (FSDP, DeepSpeed): names may carry this module's "model."
            state_dict = {k[len("model."):] if k.startswith("model.") else k: v for k, v in state_dict.items()}
        projection = {k: v for k, v in (state_dict or self.state_dict()).items() if k.startswith("projection.")}
        self.model.save_pretrained(path, state_dict=state_dict and {k: v for k, v in state_dict.items()
                                                                    if not k.startswith("projection.")}, **kwargs)
        if projection and kwargs.get("is_main_process", True):
            save_file({k: v.detach().cpu().contiguous() for k, v in projection.items()}, str(Path(path) / PROJECTION))

    def gradient_checkpointing_enable(self, **kwargs):
        self.model.gradient_checkpointing_enable(**kwargs)


# --- masking and loss
def token_weights(dataset, vocab_size, specials, smoothing):
    """count^-smoothing per token id over the training set (unseen ids count 1), 0 for special tokens: the recipe's
    masking weights, under which a rare token is chosen more often than its share of the text."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    for batch in dataset.with_format("arrow").iter(batch_size=100_000):
        ids = batch.column("input_ids").combine_chunks().flatten().to_numpy()
        counts += np.bincount(ids, minlength=vocab_size)[:vocab_size]
    weights = torch.from_numpy(np.maximum(counts, 1).astype(np.float64) ** -smoothing).float()
    weights[specials] = 0.0
    return weights


def mask_batch(input_ids, maskable, weights, mask_id, replace_ids, probability):
    """The recipe's masking: exactly ceil(probability x maskable tokens) positions of the whole batch, drawn without
    replacement with weights[id]; of those, 80% become mask_id, 10% a random id of replace_ids, 10% stay. Returns
    (input_ids, labels: -100 where nothing is predicted). Draws from the global RNG."""
    n = math.ceil(probability * maskable.sum().item() - 1e-9)  # note: syncs; (0.15 * 100 is 15.000000000000002)
    flat = torch.where(maskable, weights[input_ids], 0.0).flatten()
    chosen = torch.zeros_like(flat, dtype=torch.bool)
    if n:
        chosen[torch.multinomial(flat, n, replacement=False)] = True
    chosen = chosen.view_as(input_ids)
    labels = torch.where(chosen, input_ids, -100)
    r = torch.rand(input_ids.shape, device=input_ids.device)
    # random ids are never special: a random <pad> would shift a RoBERTa teacher's position ids
    random_ids = replace_ids[torch.randint(len(replace_ids), input_ids.shape, device=input_ids.device)]
    input_ids = torch.where(chosen & (r < 0.8), mask_id, input_ids)
    input_ids = torch.where(chosen & (r >= 0.8) & (r < 0.9), random_ids, input_ids)
    return input_ids, labels


def distill_loss(s_logits, t_logits, s_hidden, t_hidden, real, labels, args):
    """(weighted sum, {"loss_ce": ..., ...}) of the recipe's terms for the weights > 0. real: non-pad positions."""
    selected = (labels != -100) if args.restrict_ce_to_mask else real
    s, t, temp = s_logits[selected].float(), t_logits[selected].float(), args.temperature
    rows = max(s.shape[0], 1)
    terms = {}
    if args.alpha_ce > 0:  # KL summed over the vocabulary, mean over tokens ("batchmean"); x T^2 keeps gradients' scale
        kl = F.kl_div(F.log_softmax(s / temp, -1), F.log_softmax(t / temp, -1), reduction="sum", log_target=True)
        terms["loss_ce"] = kl / rows * temp ** 2
    if args.alpha_mlm > 0:
        masked = labels != -100
        terms["loss_mlm"] = F.cross_entropy(s_logits[masked].float(), labels[masked], reduction="sum") / max(
            masked.sum().item(), 1)
    if args.alpha_mse > 0:  # the recipe's squared error is on the logits, summed over the vocabulary
        terms["loss_mse"] = F.mse_loss(s, t, reduction="sum") / rows
    if args.alpha_cos > 0:  # 1 - cosine of the last hidden states, mean over real tokens
        terms["loss_cos"] = (1 - F.cosine_similarity(s_hidden[real].float(), t_hidden[real].float(), dim=-1)).mean()
    loss = sum(getattr(args, "alpha_" + name[len("loss_"):]) * value for name, value in terms.items())
    return loss, terms


def check_inputs(args):
    """Data, the teacher's config and tokenizer, the student's config and tokenizer: checked before anything is
    written. Returns (tokenizer, student config, block length, teacher position offset)."""
    mlm.check_data(args)
    teacher_config = loading.load_config(args.teacher, "--teacher")
    if args.max_seq_length:
        flags.check_max_seq_length(args.max_seq_length, teacher_config)
    # DistilBERT takes no token_type_ids: the saved tokenizer gives none
    tokenizer = loading.load_tokenizer(args.teacher, "--teacher", masked_lm=True,
                                       model_input_names=["input_ids", "attention_mask"])
    if len(tokenizer) > teacher_config.vocab_size:
        flags.fail(f"--teacher {args.teacher}: its tokenizer has {len(tokenizer)} ids, its model "
                   f"{teacher_config.vocab_size}; expected a tokenizer that fits the model")
    if args.student_tokenizer:
        other = loading.load_tokenizer(args.student_tokenizer, "--student_tokenizer", masked_lm=True)
        mine, theirs = other.get_vocab(), tokenizer.get_vocab()
        if mine != theirs or other.all_special_ids != tokenizer.all_special_ids:
            diff = sorted(set(mine.items()) ^ set(theirs.items()))[:2]
            flags.fail(f"--student_tokenizer {args.student_tokenizer}: its vocabulary differs from the teacher's "
                       f"({len(mine)} vs {len(theirs)} tokens, e.g. {diff}); distillation compares logits id by id, "
                       "so the student must use the teacher's tokenizer")
    # RoBERTa-style position ids start after the padding index
    offset = teacher_config.pad_token_id + 1 if teacher_config.model_type in mlm.OFFSET_POSITIONS else 0
    config = student_config(args, teacher_config, tokenizer, teacher_config.max_position_embeddings - offset)
    seq = args.max_seq_length or min(512, config.max_position_embeddings)
    if seq > config.max_position_embeddings:
        flags.fail(f"--max_seq_length {seq} > the student's max_position_embeddings {config.max_position_embeddings}")
    return tokenizer, config, seq, offset


def build_student(args, accelerator, config, teacher, offset):
    """The DistilBERT student (from the teacher, or random) inside Student, which core.train trains."""
    student = DistilBertForMaskedLM(config)
    layers = layer_map(config.n_layers, teacher.config.num_hidden_layers)
    if args.student_init == "teacher":
        init_from_teacher(student, teacher, offset)
    if config.sinusoidal_pos_embds:  # fixed positions, as the recipe (sinusoidal, or the teacher's when copied)
        student.distilbert.embeddings.position_embeddings.weight.requires_grad_(False)
    model = Student(student, teacher.config.hidden_size, with_hidden=args.alpha_cos > 0)
    count = lambda m: sum(p.numel() for p in m.parameters())
    n_teacher, n_student = count(teacher), count(student)
    accelerator.print(
        f"teacher: {type(teacher).__name__}, {n_teacher / 1e6:.2f}M parameters, {teacher.config.num_hidden_layers} "
        f"layers of {teacher.config.hidden_size}; student: DistilBertForMaskedLM, {n_student / 1e6:.2f}M parameters "
        f"({n_student / n_teacher:.0%}), {config.n_layers} layers of {config.dim}, "
        + (f"from teacher layers {layers}" if args.student_init == "teacher" else "random init")
        + (f", projection {config.dim} -> {teacher.config.hidden_size} for the cosine" if model.projection else ""))
    return model


def loss_function(args, accelerator, teacher, tokenizer, train_dataset):
    """compute_loss(model, batch) for core.train: the recipe's masks drawn at step time (the loader's prefetch
    cannot shift them), with weights from the training set's token counts; the teacher's outputs; distill_loss."""
    device = accelerator.device
    specials = torch.tensor(tokenizer.all_special_ids, device=device)
    weights = token_weights(train_dataset, teacher.config.vocab_size, specials.cpu(), args.mlm_smoothing).to(device)
    replace_ids = torch.arange(len(tokenizer), device=device)
    replace_ids = replace_ids[~torch.isin(replace_ids, specials)]

    def compute_loss(model, batch):
        real = batch["attention_mask"].bool()
        maskable = real & ~torch.isin(batch["input_ids"], specials)
        input_ids, labels = mask_batch(batch["input_ids"], maskable, weights, tokenizer.mask_token_id, replace_ids,
                                       args.mlm_probability)
        with torch.no_grad(), accelerator.autocast():
            t = teacher(input_ids=input_ids, attention_mask=batch["attention_mask"],
                        output_hidden_states=args.alpha_cos > 0)
        s = model(input_ids=input_ids, attention_mask=batch["attention_mask"])
        t_hidden = t.hidden_states[-1] if args.alpha_cos > 0 else None
        return distill_loss(s["logits"], t.logits, s["hidden"], t_hidden, real, labels, args)
    return compute_loss


def evaluate_best(args, accelerator, teacher, eval_dataset, collate_fn, results):
    """best/ reloaded as a plain masked LM, and the teacher, on the same fixed masks; eval_results.json."""
    loader = core.eval_loader(accelerator, eval_dataset, collate_fn, args)
    reloaded = accelerator.prepare(AutoModelForMaskedLM.from_pretrained(Path(args.output_dir) / "best"))
    for prefix, m in (("", reloaded), ("teacher_", teacher)):
        mlm.masked_only(accelerator.unwrap_model(m))
        start = time.perf_counter()
        loss, arrays = core.predict(accelerator, m, loader, keys=mlm.SUMS, desc=f"[{prefix[:-1] or 'best'}] [VALID]")
        results.update({f"{prefix}loss": loss, f"{prefix}perplexity": mlm.perplexity(arrays),
                        f"{prefix}eval_seconds": time.perf_counter() - start})
    results["masked_tokens"] = int(arrays["masked_tokens"].sum())
    teacher.eval()  # (predict() leaves a model in train mode)
    return mlm.write_eval(accelerator, args, results)


def main(argv=None):
    args = parse_args(argv)
    tokenizer, config, seq, offset = check_inputs(args)
    accelerator = core.setup(args)
    try:
        teacher = AutoModelForMaskedLM.from_pretrained(args.teacher)
    except (OSError, ValueError) as e:
        flags.fail(f"--teacher {args.teacher}: not a masked-LM folder ({(str(e).splitlines() or [type(e).__name__])[0]})")
    model = build_student(args, accelerator, config, teacher, offset)
    tokenizer.model_max_length = config.max_position_embeddings
    train_dataset, eval_dataset = mlm.load_corpus(args, tokenizer, seq, len(tokenizer), accelerator)
    collate_fn = lambda features: mlm.collate(features, tokenizer.pad_token_id)
    compute_loss = loss_function(args, accelerator, teacher, tokenizer, train_dataset)
    # never prepared: not trained, not wrapped for multi-process, not in last/state
    teacher.eval().requires_grad_(False).to(accelerator.device)
    mlm.masked_only(model.model)  # evaluation: per-example sums (SUMS)
    best = core.train(args, accelerator, model, tokenizer, train_dataset, eval_dataset, collate_fn,
                      evaluate=lambda arrays: {"perplexity": mlm.perplexity(arrays)}, compute_loss=compute_loss,
                      eval_keys=mlm.SUMS)
    count = lambda m: sum(p.numel() for p in m.parameters())
    results = {"parameters": count(model.model), "teacher_parameters": count(teacher)}
    if eval_dataset is not None:
        evaluate_best(args, accelerator, teacher, eval_dataset, collate_fn, results)
    return {**best, **results}


if __name__ == "__main__":
    main()
