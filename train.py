"""Multi-label classification of JSONL records: the model/ template at work. Copy model/ and this file
to start a custom task of your own.

    accelerate launch train.py --model_name_or_path bert-base-uncased \
        --train_file train.jsonl --validation_file dev.jsonl --test_file test.jsonl --output_dir out/topics

Each line is {"text": "...", "labels": ["sports", "politics"]}: any number of labels per record.
Continue a finished run for more epochs, keeping its epoch count and best loss:
    accelerate launch train.py ... --num_train_epochs 6 --resume_from_checkpoint auto
"""
import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score

import core
import loading
from model import Collator, Model, ModelConfig, generate_dataset, read_labels


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.error = core.fail  # argparse's own errors too: one line, no usage block
    core.add_args(parser)
    parser.add_argument("--train_file", required=True, help="JSONL, one record per line (required)")
    parser.add_argument("--validation_file", default=None, help="JSONL for evaluation and best/ (default: none)")
    parser.add_argument("--test_file", default=None, help="JSONL scored with best/ at the end (default: none)")
    parser.add_argument("--text_field", default="text", help="(default: text)")
    parser.add_argument("--label_field", default="labels", help="(default: labels)")
    parser.add_argument("--max_seq_length", type=int, default=None,
                        help="tokens per record, longer ones cut (default: 128, or the model's maximum if less)")
    parser.add_argument("--threshold", type=float, default=0.5, help="probability above which a label is on (default: 0.5)")
    parser.add_argument("--classifier_dropout", type=float, default=0.1, help="(default: 0.1)")
    args = parser.parse_args(argv)
    if not args.model_name_or_path:
        core.fail("--model_name_or_path is required")
    if args.max_seq_length is not None and args.max_seq_length < 2:
        core.fail(f"--max_seq_length {args.max_seq_length}: expected a number of tokens >= 2")
    if not 0 < args.threshold < 1:
        core.fail(f"--threshold {args.threshold}: expected a probability in (0, 1)")
    if not 0 <= args.classifier_dropout < 1:
        core.fail(f"--classifier_dropout {args.classifier_dropout}: expected a probability in [0, 1)")
    return args


def metrics(arrays, threshold):
    predicted = 1 / (1 + np.exp(-arrays["logits"])) > threshold
    gold = arrays["labels"] > 0.5
    return {"f1_micro": f1_score(gold, predicted, average="micro", zero_division=0),
            "f1_macro": f1_score(gold, predicted, average="macro", zero_division=0),
            "exact_match": float((predicted == gold).all(axis=1).mean())}


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.output_dir)

    # --- checked before anything is written: the files' records and labels, the model's config and tokenizer
    try:
        labels = read_labels(args.train_file, args.text_field, args.label_field)
        for path in (args.validation_file, args.test_file):
            if path:
                read_labels(path, args.text_field, args.label_field, known=labels)
    except (OSError, ValueError) as e:
        core.fail(str(e))
    # a saved Model's ModelConfig (AutoConfig does not know the template's model_type), or an encoder's config
    config = loading.load_config(args.model_name_or_path, config_class=ModelConfig)
    saved = config.model_type == ModelConfig.model_type  # a saved Model to train further, or a new head on an encoder
    if saved and sorted(config.label2id) != labels:
        core.fail(f"{args.train_file}: labels {labels} differ from {args.model_name_or_path}'s "
                  f"{sorted(config.label2id)}; expected the labels it was trained on")
    tokenizer = loading.load_tokenizer(args.model_name_or_path)
    if args.max_seq_length is None:  # the default: 128, or what the model takes if less
        args.max_seq_length = min(128, tokenizer.model_max_length)
    core.check_max_seq_length(args.max_seq_length, config.encoder if saved else config)
    accelerator = core.setup(args)

    # --- model
    try:
        if saved:
            model = Model.from_pretrained(args.model_name_or_path)
        else:
            config = ModelConfig.from_encoder(args.model_name_or_path, labels, threshold=args.threshold,
                                              classifier_dropout=args.classifier_dropout)
            model = Model.from_encoder(config)
    except (OSError, ValueError) as e:
        core.fail(f"{args.model_name_or_path}: cannot load ({(str(e).splitlines() or [type(e).__name__])[0]})")

    # --- data
    label2id = model.config.label2id
    load = lambda path: generate_dataset(path, tokenizer, label2id, args.max_seq_length, args.text_field,
                                         args.label_field)
    try:
        train_dataset = core.limit(load(args.train_file), args.max_train_samples)
        eval_dataset = core.limit(load(args.validation_file), args.max_eval_samples) if args.validation_file else None
        test_dataset = load(args.test_file) if args.test_file else None
    except (OSError, ValueError) as e:
        core.fail(str(e))
    collator = Collator(tokenizer)
    threshold = model.config.threshold
    evaluate = lambda arrays: metrics(arrays, threshold)

    # --- train
    best = core.train(args, accelerator, model, tokenizer, train_dataset, eval_dataset, collator, evaluate=evaluate)
    accelerator.print(f"best: {json.dumps(best)}")

    # --- evaluate best/ on dev and test, write the test predictions
    model = accelerator.prepare(Model.from_pretrained(out / "best"))
    for name, dataset in (("eval", eval_dataset), ("test", test_dataset)):
        if dataset is None:
            continue
        loss, arrays = core.predict(accelerator, model, core.eval_loader(accelerator, dataset, collator, args),
                                    desc=f"[best] [{name.upper()}]")
        results = {"loss": loss, **evaluate(arrays)}
        accelerator.print(f"{name}: {json.dumps(results)}")
        if accelerator.is_main_process:
            core.write_json(out / f"{name}_results.json", results)
            if name == "test":
                id2label = model.config.id2label
                probs = 1 / (1 + np.exp(-arrays["logits"]))
                core.write_text(out / "predictions_test.jsonl", "".join(
                    json.dumps({"labels": [id2label[i] for i in np.flatnonzero(p > threshold)]}) + "\n" for p in probs))
    return best


if __name__ == "__main__":
    main()
