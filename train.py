"""Multi-label classification of JSONL records: the model/ template at work. Copy model/ and this file
to start a custom task of your own.

    accelerate launch train.py --model_name_or_path bert-base-uncased \
        --train_file train.jsonl --validation_file dev.jsonl --test_file test.jsonl --output_dir out/topics

Each line is {"text": "...", "labels": ["sports", "politics"]}: any number of labels per record
(--text_column_name/--label_column_name for other fields).
--do_train, --do_eval (the validation file: best/ after training, or a saved model as it is without --do_train) and
--do_predict (the test file) as in Hugging Face's example scripts; with none of them, the files given decide.
Writes eval_results.json and predictions_dev.jsonl (gold and predicted labels per record), test_results.json and
predictions_test.jsonl.
Continue a finished run for more epochs, keeping its epoch count and best loss:
    accelerate launch train.py ... --num_train_epochs 6 --resume_from_checkpoint auto
"""
import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score
from transformers import AutoConfig

import core
import files
import flags
import loading
from model import Collator, Model, ModelConfig, generate_dataset, read_labels


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.error = flags.fail  # argparse's own errors too: one line, no usage block
    flags.add_args(parser)
    flags.add_jobs(parser, "train on --train_file", "evaluate on --validation_file: best/ after training, or a "
                   "saved model as it is without --do_train", "predict and score --test_file")
    parser.add_argument("--train_file", default=None, help="JSONL, one record per line (default: none)")
    parser.add_argument("--validation_file", default=None, help="JSONL for evaluation and best/ (default: none)")
    parser.add_argument("--test_file", default=None, help="JSONL scored with best/ at the end (default: none)")
    parser.add_argument("--config_name", default=None, help="an encoder config other than the model's (default: the "
                        "model's)")
    parser.add_argument("--tokenizer_name", default=None,
                        help="a tokenizer other than the model's (default: the model's)")
    parser.add_argument("--max_predict_samples", type=int, default=-1,
                        help="predict the first N test records (default: %(default)s = all)")
    flags.renamed(parser, "--text_column_name", "--text_field", default="text", help="(default: text)")
    flags.renamed(parser, "--label_column_name", "--label_field", default="labels", help="(default: labels)")
    parser.add_argument("--max_seq_length", type=int, default=None,
                        help="tokens per record, longer ones cut (default: 128, or the model's maximum if less)")
    parser.add_argument("--threshold", type=float, default=0.5, help="probability above which a label is on (default: 0.5)")
    parser.add_argument("--classifier_dropout", type=float, default=0.1, help="(default: 0.1)")
    args = parser.parse_args(argv)
    if not args.model_name_or_path:
        flags.fail("--model_name_or_path is required")
    flags.choose_jobs(args)
    if args.max_seq_length is not None and args.max_seq_length < 2:
        flags.fail(f"--max_seq_length {args.max_seq_length}: expected a number of tokens >= 2")
    if not 0 < args.threshold < 1:
        flags.fail(f"--threshold {args.threshold}: expected a probability in (0, 1)")
    if not 0 <= args.classifier_dropout < 1:
        flags.fail(f"--classifier_dropout {args.classifier_dropout}: expected a probability in [0, 1)")
    return args


def metrics(arrays, threshold):
    predicted = 1 / (1 + np.exp(-arrays["logits"])) > threshold
    gold = arrays["labels"] > 0.5
    return {"f1_micro": f1_score(gold, predicted, average="micro", zero_division=0),
            "f1_macro": f1_score(gold, predicted, average="macro", zero_division=0),
            "exact_match": float((predicted == gold).all(axis=1).mean())}


def check_inputs(args):
    """Everything checked before anything is written: the files' records and labels, the model's config and
    tokenizer. Returns (config, whether it is a saved Model, labels, an encoder config or None, tokenizer)."""
    text, label = args.text_column_name, args.label_column_name
    # a saved Model's ModelConfig (AutoConfig does not know the template's model_type), or an encoder's config
    config = loading.load_config(args.model_name_or_path, config_class=ModelConfig)
    saved = config.model_type == ModelConfig.model_type  # a saved Model to train further, or a new head on an encoder
    if not args.do_train and not saved:
        flags.fail(f"--model_name_or_path {args.model_name_or_path}: an encoder with no trained head; without "
                   "--do_train, expected a model this script saved (best/)")
    evaluated = [path for path, on in ((args.validation_file, args.do_eval), (args.test_file, args.do_predict)) if on]
    try:
        labels = read_labels(args.train_file, text, label) if args.do_train else sorted(config.label2id)
        for path in evaluated:
            read_labels(path, text, label, known=labels)
    except (OSError, ValueError) as e:
        flags.fail(str(e))
    if saved and sorted(config.label2id) != labels:
        flags.fail(f"{args.train_file}: labels {labels} differ from {args.model_name_or_path}'s "
                   f"{sorted(config.label2id)}; expected the labels it was trained on")
    encoder_config = None
    if args.config_name:
        if saved:
            flags.fail(f"--config_name {args.config_name}: {args.model_name_or_path} is a saved model with its own "
                       "config; expected --config_name only with an encoder")
        loading.check_exists(args.config_name, "--config_name", "a config folder")
        try:
            encoder_config = AutoConfig.from_pretrained(args.config_name)
        except Exception as e:  # noqa: BLE001 (not found, offline, bad JSON: one line)
            flags.fail(f"--config_name {args.config_name}: cannot load its config "
                       f"({(str(e).splitlines() or [type(e).__name__])[0]})")
    tokenizer = loading.load_tokenizer(args.tokenizer_name or args.model_name_or_path,
                                       "--tokenizer_name" if args.tokenizer_name else "--model_name_or_path")
    if args.max_seq_length is None:  # the default: 128, or what the model takes if less
        args.max_seq_length = min(128, tokenizer.model_max_length)
    flags.check_max_seq_length(args.max_seq_length, config.encoder if saved else (encoder_config or config))
    return config, saved, labels, encoder_config, tokenizer


def load_model(args, config, saved, labels, encoder_config):
    """A saved Model to train further or evaluate, or a new head on an encoder."""
    try:
        if saved:
            return Model.from_pretrained(args.model_name_or_path)
        config = ModelConfig.from_encoder(args.model_name_or_path, labels, threshold=args.threshold,
                                          classifier_dropout=args.classifier_dropout, encoder=encoder_config)
        return Model.from_encoder(config)
    except (OSError, ValueError) as e:
        flags.fail(f"{args.model_name_or_path}: cannot load ({(str(e).splitlines() or [type(e).__name__])[0]})")


def write_results(args, accelerator, model, collator, evaluate, threshold, splits, best_dev):
    """best/ (or the saved model without --do_train) on dev and test: results and predictions written; dev's
    from the evaluation that picked best/ when core.train handed it over (best_dev), not predicted twice."""
    out = Path(args.output_dir)
    model = accelerator.prepare(model)
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
    results_of = {}
    for name, dataset, on, split in splits:
        if dataset is None or not on:
            continue
        if split == "dev" and best_dev:  # not predicted twice
            loss, arrays = best_dev["loss"], best_dev["arrays"]
        else:
            loss, arrays = core.predict(accelerator, model, core.eval_loader(accelerator, dataset, collator, args),
                                        desc=f"[best] [{name.upper()}]")
        results = results_of[split] = {"loss": loss, **evaluate(arrays)}
        accelerator.print(f"{name}: {json.dumps(results)}")
        if accelerator.is_main_process:
            files.write_json(out / f"{name}_results.json", results)
            id2label = accelerator.unwrap_model(model).config.id2label
            probs = 1 / (1 + np.exp(-arrays["logits"]))
            names = lambda row: [id2label[i] for i in np.flatnonzero(row)]
            if name == "test":
                rows = ({"labels": names(p > threshold)} for p in probs)
            else:  # the dev set's gold labels beside the predicted ones
                rows = ({"gold": names(g > 0.5), "predicted": names(p > threshold)}
                        for g, p in zip(arrays["labels"], probs))
            files.write_text(out / f"predictions_{split}.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    return results_of


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.output_dir)
    config, saved, labels, encoder_config, tokenizer = check_inputs(args)
    text, label = args.text_column_name, args.label_column_name
    accelerator = core.setup(args, training=args.do_train)
    if not args.do_train:  # an evaluation never replaces earlier results silently (core.setup guards a training run's)
        written = ((args.do_eval, ("eval_results.json", "predictions_dev.jsonl")),
                   (args.do_predict, ("test_results.json", "predictions_test.jsonl")))
        flags.refuse_existing([out / name for on, names in written if on for name in names], args.overwrite_output_dir)

    model = load_model(args, config, saved, labels, encoder_config)

    # --- data
    label2id = model.config.label2id
    load = lambda path: generate_dataset(path, tokenizer, label2id, args.max_seq_length, text, label)
    try:
        train_dataset = core.limit(load(args.train_file), args.max_train_samples) if args.do_train else None
        eval_dataset = core.limit(load(args.validation_file), args.max_eval_samples) if args.validation_file and \
            (args.do_eval or args.do_train) else None  # during training, the validation file picks best/
        test_dataset = core.limit(load(args.test_file), args.max_predict_samples) if args.do_predict else None
    except (OSError, ValueError) as e:
        flags.fail(str(e))
    collator = Collator(tokenizer)
    threshold = model.config.threshold
    evaluate = lambda arrays: metrics(arrays, threshold)

    # --- train
    best, best_dev = None, {}  # best_dev: best/'s dev loss and arrays from the evaluation that picked it
    if args.do_train:
        best = core.train(args, accelerator, model, tokenizer, train_dataset, eval_dataset, collator,
                          evaluate=evaluate, on_best=lambda m, arrays: best_dev.update(loss=m["loss"], arrays=arrays))
        model = Model.from_pretrained(out / "best")

    splits = (("eval", eval_dataset, args.do_eval, "dev"), ("test", test_dataset, args.do_predict, "test"))
    results_of = write_results(args, accelerator, model, collator, evaluate, threshold, splits, best_dev)
    return best if args.do_train else results_of


if __name__ == "__main__":
    main()
