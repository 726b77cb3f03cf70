"""Extractive question answering, SQuAD v1.1 and v2.0, scored with the official metric.

    accelerate launch squad.py --model bert-base-uncased --train_file train-v2.0.json \
        --validation_file dev-v2.0.json --version_2_with_negative --learning_rate 3e-5 --output_dir out/squad2

Files are in the official SQuAD JSON layout, or the `datasets` one (a row per question: id, title, context,
question, answers {text: [...], answer_start: [...]}) as JSON lines, JSON with a "data" list of rows, or a saved
`datasets` folder; --dataset_name takes squad / squad_v2 from `datasets`, a saved
`datasets` folder, or a folder holding one train*.json and one dev*.json. Contexts are cut into windows of
--max_seq_length tokens overlapping by --doc_stride; an answer is read back from the windows' start/end logits.
Writes predictions.json, nbest_predictions.json, null_odds.json (v2) and eval_results.json next to best/ (a
standard question-answering checkpoint). --do_train, --do_eval and --do_predict are the Hugging Face scripts':
train, evaluate best/ (or the model as it is, without --do_train) on the validation data, predict --test_file
(answers in it are scored, none needed) into predictions_test.json; with no --do_* flag the data decides (a train
file trains, a validation file evaluates, a test file predicts). --evaluate_only is --do_eval without --do_train.
Answer one question (what transformers' removed question-answering pipeline did), printed as JSON:
    python squad.py --model_name_or_path out/squad2/best --question "Who?" --context "..."
or from Python: squad.answer("out/squad2/best", "Who?", "...") -> {"answer", "score", "start", "end"}.
Score any predictions file, with the same numbers as the official evaluate-v1.1.py / evaluate-v2.0.py:
    python squad.py --evaluate_only --validation_file dev-v2.0.json --predictions out/squad2/predictions.json \
        --null_odds out/squad2/null_odds.json

Owns: extractive question answering: the SQuAD readers and checks, windows, post-processing, the official metric
and answer(). Knows no other task script (glue.py, ner.py, probe.py ...): it builds on core.py, flags.py, files.py
and loading.py only. Other scripts use it only through the section "the interface for other scripts": examples(),
encode(), best_answers(), score() (and answer(), for one question).
"""
import argparse
import hashlib
import json
import pickle
import re
import string
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

import core
import files
import flags
import loading


# --- the interface for other scripts (probe.py): examples(), encode(), best_answers() and score().
# Other scripts use only these names; everything else here may change.
INTERFACE = ("examples", "encode", "best_answers", "score", "answer")


def examples(args):
    """The questions of every split given, read and checked as squad.py reads them: {"train": [...], "validation":
    [...]} from args.dataset_name (with dataset_config_name) or args.train_file/validation_file. A question is
    {"id", "question", "context", "answers": [{"text", "answer_start"}], "impossible": no answer (v2.0), "where":
    its place, for messages, "label": the answer trained on (train only; None: no answer)}. One line for v2.0 data
    without args.version_2_with_negative; training questions none of whose answers lies at its offset are dropped
    (with a warning), as in training."""
    splits = read_hub(args) if args.dataset_name else {split: read_squad(path) for split, path in (
        ("train", args.train_file), ("validation", args.validation_file)) if path}
    for split, found in splits.items():
        check_version(found, "training" if split == "train" else "validation", args.version_2_with_negative)
    return {split: check_answers(found, source(args, split), split == "train") for split, found in splits.items()}


def encode(examples, tokenizer, args, training):
    """The windows of the questions (args.max_seq_length, doc_stride, max_query_length; a fast tokenizer): columns
    input_ids, attention_mask (token_type_ids if the tokenizer makes them), one row per window, a question's windows
    in a row; training: start_positions and end_positions (the answer's tokens, or CLS for none). Returns (windows,
    meta): meta, for best_answers(), only when not training (else None)."""
    found = windows(window_columns(examples, training), tokenizer, args.max_seq_length, args.doc_stride,
                    args.max_query_length, training)
    return found, None if training else window_meta(found)


def best_answers(examples, meta, start_logits, end_logits, args):
    """Each question's answer from its windows' start and end logits (one row per window, as encode() made them; a
    window's tokens along the second axis): ({id: answer text}, {id: null odds} (v2.0, else {})), with
    args.n_best_size, max_answer_length, version_2_with_negative and null_score_diff_threshold."""
    predictions, _, null_odds = postprocess(examples, meta, start_logits, end_logits, args.n_best_size,
                                            args.max_answer_length, args.version_2_with_negative,
                                            args.null_score_diff_threshold)
    return predictions, null_odds


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.error = flags.fail  # argparse's own errors too: one line, no usage block
    flags.add_args(parser)
    parser.set_defaults(output_dir="out/squad", metric_for_best_model="f1")  # core's help shows these
    g = parser.add_argument_group("question answering (squad.py)")
    g.add_argument("--train_file", default=None, help="SQuAD JSON to train on (default: none = evaluate only)")
    g.add_argument("--validation_file", default=None, help="SQuAD JSON to evaluate and pick best/ on (default: none)")
    g.add_argument("--dataset_name", default=None, help="squad, squad_v2, a saved `datasets` folder or a folder with "
                   "train*.json and dev*.json, instead of the files (default: none)")
    g.add_argument("--dataset_config_name", default=None, help="(default: none)")
    g.add_argument("--version_2_with_negative", action="store_true",
                   help="SQuAD v2.0: questions may have no answer, predicted as '' (default: off, v1.1)")
    g.add_argument("--max_seq_length", type=int, default=None, help="tokens per window, question included "
                   "(default: 384, or the model's positions if fewer)")
    g.add_argument("--doc_stride", type=int, default=128, help="tokens shared by consecutive windows (default: 128)")
    g.add_argument("--max_query_length", type=int, default=64, help="question tokens kept, the rest cut (default: 64)")
    g.add_argument("--n_best_size", type=int, default=20, help="starts and ends tried per window; answers kept "
                   "(default: 20)")
    g.add_argument("--max_answer_length", type=int, default=30, help="longest answer in tokens (default: 30)")
    g.add_argument("--null_score_diff_threshold", type=float, default=0.0,
                   help="v2: predict no answer when null score - best span score exceeds this (default: 0.0)")
    g.add_argument("--use_best_threshold", action="store_true", help="v2: after the dev evaluation, predict again with "
                   "dev's best_f1_thresh and report both; tuned on dev, so optimistic (default: off)")
    g.add_argument("--cache_dir", default=None, help="tokenized windows, keyed on data + tokenizer + settings "
                   "(default: $HF_DATASETS_CACHE/squad_windows or ~/.cache/huggingface/datasets/squad_windows)")
    g.add_argument("--overwrite_cache", action="store_true", help="tokenize again even if cached (default: off)")
    g.add_argument("--preprocessing_num_workers", type=int, default=None, help="processes for tokenizing (default: 1)")
    g.add_argument("--test_file", default=None, help="SQuAD JSON to predict with --do_predict; scored when it has "
                   "answers (default: none)")
    flags.add_jobs(g, "train on the training data", "evaluate best/ (or the model as it is) on the validation data",
                   "predict --test_file into predictions_test.json")
    g.add_argument("--config_name", help="a config other than the model's (default: the model's)")
    g.add_argument("--tokenizer_name", help="a tokenizer other than the model's (default: the model's)")
    g.add_argument("--max_predict_samples", type=int, default=-1, help="predict the first N test questions "
                   "(default: %(default)s = all)")
    g.add_argument("--question", default=None, help="with --context: answer this one question with the model and "
                   "print {answer, score, start, end} as JSON (default: none)")
    g.add_argument("--context", default=None, help="the text --question is answered from (default: none)")
    g.add_argument("--evaluate_only", action="store_true", help="--do_eval without --do_train: score --predictions, "
                   "or else evaluate the model on the validation data (default: off)")
    g.add_argument("--predictions", default=None, help="with --evaluate_only: the predictions.json to score "
                   "(default: none)")
    g.add_argument("--null_odds", default=None, help="with --predictions: null_odds.json, for the best_* thresholds "
                   "(default: none)")
    g.add_argument("--na_prob_thresh", type=float, default=1.0, help="with --null_odds: questions whose null odds "
                   "exceed this count as answered ''; the official script's -t: give the threshold the predictions "
                   "were made with (default: 1.0)")
    return check_args(parser.parse_args(argv))


def check_args(args):
    """The flags' combinations and values, checked before any work (one line for each refusal)."""
    if args.evaluate_only:
        if not args.predictions:  # scoring a predictions file prints its JSON alone
            print("note: --evaluate_only is --do_eval without --do_train")
        if args.do_train:
            flags.fail("--evaluate_only does not train: drop --do_train")
        args.do_eval = True
    if args.predictions or args.null_odds:
        if not args.do_eval or not args.predictions or not args.validation_file:
            flags.fail("--predictions/--null_odds go with --evaluate_only and --validation_file")
        return args
    if not args.model_name_or_path:
        flags.fail("--model_name_or_path is required")
    if (args.question is None) != (args.context is None):
        flags.fail("--question and --context go together: the question, and the text it is answered from")
    if args.question is not None:
        return args
    if args.dataset_name and (args.train_file or args.validation_file):
        flags.fail("give --dataset_name or --train_file/--validation_file, not both")
    if not (args.dataset_name or args.train_file or args.validation_file or args.test_file):
        flags.fail("no data: give --train_file, --validation_file and/or --test_file, or --dataset_name")
    if args.evaluate_only and args.train_file:
        flags.fail("--evaluate_only does not train: drop --train_file")
    flags.choose_jobs(args, "--dataset_name" if args.dataset_name else None, ("do_train", "do_eval"))
    if args.use_best_threshold and not args.version_2_with_negative:
        flags.fail("--use_best_threshold tunes the no-answer threshold: it needs --version_2_with_negative")
    for flag in ("max_seq_length", "max_query_length", "n_best_size", "max_answer_length", "preprocessing_num_workers"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            flags.fail(f"--{flag} {value}: expected a whole number >= 1")
    if args.doc_stride < 0:
        flags.fail(f"--doc_stride {args.doc_stride}: expected the tokens consecutive windows share, >= 0")
    seq = args.max_seq_length or 384
    if args.max_query_length >= seq:
        flags.fail(f"--max_query_length {args.max_query_length} leaves no room for the context in a window of "
                   f"--max_seq_length {seq}; expected fewer question tokens than that")
    if args.doc_stride >= seq - args.max_query_length:
        flags.fail(f"--doc_stride {args.doc_stride} must be less than the context tokens of a window, --max_seq_length "
                   f"- --max_query_length = {seq - args.max_query_length} at most (less the special tokens)")
    return args


# --- reading: the official layout, checked; every question keeps where it came from
def load_json(path, expected):
    """A JSON file, or one line naming the file (and the line and column) and what was expected."""
    if Path(path).is_dir():
        flags.fail(f"{path}: a folder; expected {expected}")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        flags.fail(f"{path}: no such file")
    except OSError as e:
        flags.fail(f"{path}: cannot read ({e.strerror or e}); expected {expected}")
    except json.JSONDecodeError as e:
        flags.fail(f"{path}:{e.lineno}:{e.colno}: not valid JSON ({e.msg}); expected {expected}")
    except UnicodeDecodeError as e:
        flags.fail(f"{path}: not UTF-8 text (byte {e.start}: {e.reason}); expected {expected}")


def read_rows(rows, name, where=lambda i: f"row {i}"):
    """Examples of rows in the `datasets` layout: {id, title, context, question, answers: {text: [...],
    answer_start: [...]}}, one per question, checked."""
    examples, seen = [], {}
    for i, r in enumerate(rows):
        at = f"{name}: {where(i)}"
        if not isinstance(r, dict):
            flags.fail(f"{at}: expected a question {{id, context, question, answers}}, found {type(r).__name__}")
        missing = [c for c in ("id", "question", "context", "answers") if c not in r]
        if missing:
            flags.fail(f"{at}: no field {missing[0]!r} (fields: {', '.join(r)}); expected id, context, question, "
                       "answers")
        qid, answers = str(r["id"]), r["answers"]
        if qid in seen:
            flags.fail(f"{at}: duplicate id {qid!r} (also at {seen[qid]}); expected unique ids")
        seen[qid] = where(i)
        if not (isinstance(r["question"], str) and isinstance(r["context"], str)):
            flags.fail(f"{at} (id {qid}): expected question and context strings")
        if not (isinstance(answers, dict) and isinstance(answers.get("text"), list)
                and isinstance(answers.get("answer_start"), list)
                and len(answers["text"]) == len(answers["answer_start"])
                and all(isinstance(t, str) for t in answers["text"])
                and all(isinstance(a, int) for a in answers["answer_start"])):
            flags.fail(f'{at} (id {qid}): expected answers like {{"text": ["..."], "answer_start": [0]}}, found '
                       f"{json.dumps(answers)[:80]}")
        examples.append({"id": qid, "question": r["question"], "context": r["context"],
                         "answers": [{"text": t, "answer_start": a} for t, a in
                                     zip(answers["text"], answers["answer_start"])],
                         "impossible": not answers["text"], "where": at})
    if not examples:
        flags.fail(f"{name}: no questions")
    return examples


def read_squad(path):
    """[{id, question, context, answers: [{text, answer_start}], impossible, where}] of an official-layout file,
    or of the `datasets` layout (one row per question, answers {text: [...], answer_start: [...]}): JSON lines,
    JSON with a "data" list of such rows, or a saved `datasets` folder."""
    path = Path(path)
    if path.is_dir() and any((path / f).exists() for f in ("state.json", "dataset_info.json", "dataset_dict.json")):
        import datasets
        try:
            loaded = datasets.load_from_disk(str(path))
        except Exception as e:  # noqa: BLE001 (datasets raises many kinds; one line is what the user needs)
            flags.fail(f"{path}: cannot load ({(str(e).splitlines() or [type(e).__name__])[0]})")
        if isinstance(loaded, datasets.DatasetDict):
            flags.fail(f"{path}: a saved DatasetDict (splits {', '.join(loaded)}); pass it as --dataset_name, or "
                       "one split's folder here")
        return read_rows(loaded, str(path))
    if path.suffix == ".jsonl":
        rows = []
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            flags.fail(f"{path}: no such file")
        except (OSError, UnicodeDecodeError) as e:
            flags.fail(f"{path}: cannot read ({e}); expected JSON lines")
        numbers = []
        for number, line in enumerate(lines, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    flags.fail(f"{path}:{number}: not valid JSON ({e.msg}); expected one question object per line")
                numbers.append(number)
        return read_rows(rows, str(path), lambda i: f"line {numbers[i]}")
    data = load_json(path, 'the SQuAD layout {"version": ..., "data": [{"title": ..., "paragraphs": [...]}]}')
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        flags.fail(f'{path}: expected a JSON object with a "data" list of articles (the SQuAD layout)')
    if data["data"] and isinstance(data["data"][0], dict) and "paragraphs" not in data["data"][0] \
            and "question" in data["data"][0]:  # the `datasets` layout: one row per question
        return read_rows(data["data"], str(path), lambda i: f"data[{i}]")
    examples, seen = [], {}

    def need(value, kind, where, what):
        if not isinstance(value, kind):
            flags.fail(f"{path}: {where}: expected {what}, found {type(value).__name__}")
        return value
    for a, article in enumerate(data["data"]):
        paragraphs = need(article.get("paragraphs") if isinstance(article, dict) else None, list, f"data[{a}]",
                          'an article {"title": ..., "paragraphs": [...]}')
        for p, paragraph in enumerate(paragraphs):
            at = f"data[{a}].paragraphs[{p}]"
            need(paragraph, dict, at, 'a paragraph {"context": ..., "qas": [...]}')
            context = need(paragraph.get("context"), str, f"{at}.context", "the context text")
            if not context.strip():
                flags.fail(f"{path}: {at}.context: empty; expected the paragraph's text")
            for q, qa in enumerate(need(paragraph.get("qas"), list, f"{at}.qas", "a list of questions")):
                where = f"{at}.qas[{q}]"
                need(qa, dict, where, 'a question {"id": ..., "question": ..., "answers": [...]}')
                qid = qa.get("id")
                if not isinstance(qid, str) or not qid:
                    flags.fail(f"{path}: {where}: no \"id\"; expected a unique string id for every question")
                if qid in seen:
                    flags.fail(f"{path}: {where}: duplicate id {qid!r} (also at {seen[qid]}); expected unique ids")
                seen[qid] = where
                where = f"{where} (id {qid})"
                question = need(qa.get("question"), str, where, "a \"question\" string")
                answers = need(qa.get("answers", []), list, where, 'a list of "answers"')
                for answer in answers:
                    if not (isinstance(answer, dict) and isinstance(answer.get("text"), str)
                            and isinstance(answer.get("answer_start"), int)):
                        flags.fail(f'{path}: {where}: expected answers like {{"text": "...", "answer_start": 0}}, '
                                   f"found {json.dumps(answer)[:80]}")
                if qa.get("is_impossible") and answers:
                    flags.fail(f"{path}: {where}: is_impossible is true but it has {len(answers)} answers")
                examples.append({"id": qid, "question": question, "context": context, "answers": answers,
                                 "impossible": not answers, "where": f"{path}: {where}"})
    if not examples:
        flags.fail(f"{path}: no questions; expected data[].paragraphs[].qas[]")
    return examples


def read_hub(args):
    """{split: examples} from `datasets` (squad, squad_v2, a saved folder) or a folder of official files."""
    folder = Path(args.dataset_name)
    if folder.is_dir() and not (folder / "dataset_dict.json").exists():
        splits = {}
        for split, pattern in (("train", "train*.json"), ("validation", "dev*.json")):
            found = sorted(folder.glob(pattern))
            if len(found) > 1:
                flags.fail(f"{folder}: several {pattern} ({', '.join(p.name for p in found)}); expected one, or "
                           "use --train_file/--validation_file")
            if found:
                splits[split] = read_squad(found[0])
        if not splits:
            flags.fail(f"{folder}: no train*.json or dev*.json, and no saved `datasets` folder")
        return splits
    import datasets
    try:
        loaded = datasets.load_from_disk(str(folder)) if folder.is_dir() else \
            datasets.load_dataset(args.dataset_name, args.dataset_config_name)
    except Exception as e:  # noqa: BLE001 (datasets raises many kinds; one line is what the user needs)
        flags.fail(f"{args.dataset_name}: cannot load ({(str(e).splitlines() or [type(e).__name__])[0]})")
    splits = {}
    for split in ("train", "validation"):
        if split not in loaded:
            continue
        rows = loaded[split]
        missing = {"id", "question", "context", "answers"} - set(rows.column_names)
        if missing:
            flags.fail(f"{args.dataset_name}[{split}]: no column {sorted(missing)[0]} (columns: {rows.column_names})")
        splits[split] = read_rows(rows, f"{args.dataset_name}[{split}]")
    return splits


def check_answers(examples, name, training):
    """Answers whose text is not at answer_start in the context: counted and warned about; in training the
    first answer that matches is the label, and a question with none is dropped. Training data none of whose
    answers matches is an error (it would train nothing but the no-answer position)."""
    bad, kept = [], []
    for e in examples:
        at = lambda a: e["context"][a["answer_start"]:a["answer_start"] + len(a["text"])] if a["answer_start"] >= 0 \
            else None
        good = [a for a in e["answers"] if at(a) == a["text"]]
        if len(good) < len(e["answers"]):
            a = next(a for a in e["answers"] if a not in good)
            found = "a negative offset" if at(a) is None else f"found {at(a)!r}"
            bad.append(f"{e['where']}: expected {a['text']!r} at {a['answer_start']}, {found}")
        if not training or e["impossible"] or good:
            kept.append({**e, "label": good[0] if good and training else None})
    if bad and training and not any(e["label"] for e in kept):
        flags.fail(f"no answer of {name} lies inside its context: check answer_start, expected the character offset of "
                   f"the answer text in its context ({len(bad)} questions; first: {bad[0]})")
    if bad:
        what = f"{len(examples) - len(kept)} questions skipped in training" if training else \
            "kept: evaluation reads only the answer texts"
        print(f"warning: {name}: {len(bad)} questions have an answer whose text is not at its answer_start ({what}); "
              f"first: {bad[0]}", file=sys.stderr)
    return kept


# --- the official metric (evaluate-v1.1.py and evaluate-v2.0.py), same operations in the same order
PUNCTUATION = set(string.punctuation)


def normalize_answer(text):
    """Lower case, no punctuation, no articles (a, an, the), single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in PUNCTUATION)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def exact_score(gold, prediction):
    return int(normalize_answer(gold) == normalize_answer(prediction))


def f1_score(gold, prediction, version_2=True):
    gold_tokens, predicted_tokens = normalize_answer(gold).split(), normalize_answer(prediction).split()
    if version_2 and (not gold_tokens or not predicted_tokens):
        return int(gold_tokens == predicted_tokens)  # v2: no answer scores 1 only against no answer
    same = sum((Counter(gold_tokens) & Counter(predicted_tokens)).values())
    if same == 0:
        return 0
    precision, recall = 1.0 * same / len(predicted_tokens), 1.0 * same / len(gold_tokens)
    return (2 * precision * recall) / (precision + recall)


def squad_v1_metrics(gold, predictions):
    """gold: {id: [answer texts]} in file order. A missing prediction scores 0 (and is warned about)."""
    exact = f1 = 0
    missing = [q for q in gold if q not in predictions]
    if missing:
        print(f"warning: no prediction for {len(missing)} questions (first: {missing[0]}); they score 0",
              file=sys.stderr)
    for q, texts in gold.items():
        if q in predictions:
            exact += max(exact_score(g, predictions[q]) for g in texts)
            f1 += max(f1_score(g, predictions[q], version_2=False) for g in texts)
    return {"exact_match": 100.0 * exact / len(gold), "f1": 100.0 * f1 / len(gold)}


def squad_v2_metrics(gold, predictions, null_odds=None, na_prob_thresh=1.0):
    """gold: {id: [answer texts]} in file order ([] = no answer). With null_odds, questions whose odds exceed
    na_prob_thresh count as answered '', and best_exact/best_f1 sweep the threshold over the odds."""
    has_answer = {q: bool(texts) for q, texts in gold.items()}
    exact, f1 = {}, {}
    for q, texts in gold.items():
        texts = [t for t in texts if normalize_answer(t)] or [""]  # answers that normalise to '' are dropped
        exact[q] = max(exact_score(g, predictions[q]) for g in texts)
        f1[q] = max(f1_score(g, predictions[q]) for g in texts)
    odds = null_odds if null_odds is not None else {q: 0.0 for q in predictions}
    no_answer = lambda scores: {q: float(not has_answer[q]) if odds[q] > na_prob_thresh else s
                                for q, s in scores.items()}
    exact_t, f1_t = no_answer(exact), no_answer(f1)

    def summary(qids, prefix=""):
        return {f"{prefix}exact": 100.0 * sum(exact_t[q] for q in qids) / len(qids),
                f"{prefix}f1": 100.0 * sum(f1_t[q] for q in qids) / len(qids), f"{prefix}total": len(qids)}
    result = summary(list(exact_t))
    for prefix, wanted in (("HasAns_", True), ("NoAns_", False)):
        qids = [q for q, has in has_answer.items() if has == wanted]
        if qids:
            result.update(summary(qids, prefix))
    if null_odds is not None:
        for name, scores in (("exact", exact), ("f1", f1)):
            best, threshold = best_threshold(predictions, scores, odds, has_answer)
            result[f"best_{name}"], result[f"best_{name}_thresh"] = best, threshold
    return result


def best_threshold(predictions, scores, odds, has_answer):
    """Answer '' above a threshold: sweep it over the sorted odds, keep the best total score."""
    score = best = sum(1 for q in has_answer if not has_answer[q])  # every question answered ''
    threshold = 0.0
    for q in sorted(odds, key=lambda k: odds[k]):
        if q not in scores:
            continue
        score += scores[q] if has_answer[q] else (-1 if predictions[q] else 0)
        if score > best:
            best, threshold = score, odds[q]
    return 100.0 * best / len(scores), threshold


def tuned_threshold(results, examples, null_odds):
    """The threshold of best_f1. The official sweep starts from "'' everywhere" and reports 0.0 when nothing
    beats it; the threshold that does that is below every null odds."""
    everywhere = 100.0 * sum(e["impossible"] for e in examples) / len(examples)
    return min(null_odds.values()) - 1.0 if results["best_f1"] == everywhere else results["best_f1_thresh"]


def score(examples, predictions, version_2, null_odds=None, na_prob_thresh=1.0):
    """The official metric of predictions {id: answer text} on the questions: evaluate-v2.0.py's (with null_odds:
    also best_exact/best_f1 and their thresholds) or evaluate-v1.1.py's."""
    gold = {e["id"]: [a["text"] for a in e["answers"]] for e in examples}
    return squad_v2_metrics(gold, predictions, null_odds, na_prob_thresh) if version_2 else \
        squad_v1_metrics(gold, predictions)


def read_json_map(path, kind, what):
    found = load_json(path, what)
    if not isinstance(found, dict) or not all(isinstance(v, kind) and not isinstance(v, bool) for v in found.values()):
        flags.fail(f"{path}: expected {what}")
    return found


def evaluate_file(args):
    """--evaluate_only --predictions: the official script's numbers for a predictions file."""
    examples = read_squad(args.validation_file)
    version = str(json.loads(Path(args.validation_file).read_text(encoding="utf-8")).get("version", ""))
    predictions = read_json_map(args.predictions, str, '{"question id": "answer text", ...}')
    version_2 = args.version_2_with_negative or version.startswith("v2") or any(e["impossible"] for e in examples)
    null_odds = read_json_map(args.null_odds, (int, float), '{"question id": number, ...}') if args.null_odds else None
    missing = [e["id"] for e in examples
               if e["id"] not in predictions or (null_odds is not None and e["id"] not in null_odds)]
    if version_2 and missing:
        what = "prediction" if missing[0] not in predictions else "null odds"
        flags.fail(f"{args.predictions if what == 'prediction' else args.null_odds}: no {what} for {len(missing)} of "
                   f"{len(examples)} questions of {args.validation_file} (first: {missing[0]}); expected all of them")
    result = score(examples, predictions, version_2, null_odds, args.na_prob_thresh)
    print(json.dumps(result, indent=2))
    return result


# --- windows: the tokenized features, cached
def windows(batch, tokenizer, max_seq_length, doc_stride, max_query_length, training):
    """Question + one window of the context per feature. Training: start/end token of the answer, or of CLS when
    there is none or it is not wholly inside the window. Evaluation: the example id, and offsets kept only for
    context tokens (None elsewhere), so an answer can never come from the question or special tokens."""
    questions = [q.lstrip() for q in batch["question"]]  # leading spaces would only cost tokens
    cut = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    questions = [q[:o[max_query_length - 1][1]] if len(o) > max_query_length else q for q, o in zip(questions, cut)]
    encoded = tokenizer(questions, batch["context"], truncation="only_second", max_length=max_seq_length,
                        stride=doc_stride, return_overflowing_tokens=True, return_offsets_mapping=True)
    samples, offsets = encoded.pop("overflow_to_sample_mapping"), encoded.pop("offset_mapping")
    out = {**encoded, **({"start_positions": [], "end_positions": []} if training else
                         {"example_id": [], "cls_index": [], "offset_mapping": []})}
    for i, (sample, offs) in enumerate(zip(samples, offsets)):
        sequence = encoded.sequence_ids(i)
        ids = encoded["input_ids"][i]
        cls = ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in ids else 0
        if not training:
            out["example_id"].append(batch["id"][sample])
            out["cls_index"].append(cls)
            out["offset_mapping"].append([o if s == 1 else None for o, s in zip(offs, sequence)])
            continue
        start, end = batch["answer_start"][sample], batch["answer_end"][sample]
        first = sequence.index(1)
        last = len(sequence) - 1 - sequence[::-1].index(1)
        if start < 0 or offs[first][0] > start or offs[last][1] < end:
            out["start_positions"].append(cls)
            out["end_positions"].append(cls)
            continue
        a, b = first, last
        while a <= last and offs[a][0] <= start:  # the last token starting at or before the answer
            a += 1
        while b >= first and offs[b][1] >= end:  # the first token ending at or after it
            b -= 1
        out["start_positions"].append(a - 1)
        out["end_positions"].append(b + 1)
    return out


def window_columns(examples, training):
    """The columns windows() reads; training adds the answer's character span (-1 for no answer)."""
    columns = {"id": [e["id"] for e in examples], "question": [e["question"] for e in examples],
               "context": [e["context"] for e in examples]}
    if training:
        columns["answer_start"] = [e["label"]["answer_start"] if e["label"] else -1 for e in examples]
        columns["answer_end"] = [e["label"]["answer_start"] + len(e["label"]["text"]) if e["label"] else -1
                                 for e in examples]
    return columns


def featurize(examples, tokenizer, args, training, accelerator):
    """windows() over the examples with datasets.map (batched), cached under --cache_dir by a key of the examples'
    content, the tokenizer and the settings: a second run loads the windows instead of tokenizing again."""
    import datasets

    columns = window_columns(examples, training)
    settings = [args.max_seq_length, args.doc_stride, args.max_query_length, training, files.tokenizer_key(tokenizer),
                1]  # 1: the version of windows()
    key = hashlib.blake2b(json.dumps(settings).encode(), digest_size=12)
    # pickle: lossless, and a context shared by its paragraph's questions is written once: ~20 ms for SQuAD dev,
    # where JSON (10 MB, the context once per question) took ~110 ms
    key.update(pickle.dumps(columns, protocol=5))
    return files.cached_dataset(
        args.cache_dir, "squad_windows", f"{'train' if training else 'eval'}-{key.hexdigest()}",
        lambda: datasets.Dataset.from_dict(columns).map(
            windows, batched=True, remove_columns=list(columns), num_proc=args.preprocessing_num_workers,
            fn_kwargs=dict(tokenizer=tokenizer, max_seq_length=args.max_seq_length, doc_stride=args.doc_stride,
                           max_query_length=args.max_query_length, training=training), desc="tokenizing"),
        accelerator, args.overwrite_cache, what="windows:")


# --- post-processing: window logits -> one answer per question
def postprocess(examples, meta, start_logits, end_logits, n_best_size=20, max_answer_length=30, version_2=False,
                threshold=0.0, with_offsets=False):
    """The n_best_size best starts x ends of every window, invalid spans skipped (outside the context, end before
    start, longer than max_answer_length); v2: null score = the minimum over windows of the CLS start+end logits,
    and '' is predicted when null score - best span score > threshold. Returns predictions, nbest, null_odds;
    with_offsets: each n-best entry also has its character "start" and "end" in the context (0, 0 for no answer)."""
    windows_of = defaultdict(list)
    for i, example_id in enumerate(meta["example_id"]):
        windows_of[example_id].append(i)
    predictions, nbest, null_odds = {}, {}, {}
    for example in examples:
        spans, null = [], None
        for i in windows_of[example["id"]]:
            offsets, start, end, cls = meta["offsets"][i], start_logits[i], end_logits[i], meta["cls_index"][i]
            if null is None or start[cls] + end[cls] < null["score"]:
                null = {"text": "", "score": float(start[cls] + end[cls]), "start_logit": float(start[cls]),
                        "end_logit": float(end[cls]), "start": 0, "end": 0}
            context = np.flatnonzero(offsets[:, 1] >= 0)  # also drops the -100 padding of shorter windows
            starts = context[np.argsort(-start[context], kind="stable")[:n_best_size]]
            ends = context[np.argsort(-end[context], kind="stable")[:n_best_size]]
            valid = (ends[None, :] >= starts[:, None]) & (ends[None, :] < starts[:, None] + max_answer_length)
            a, b = starts[np.nonzero(valid)[0]], ends[np.nonzero(valid)[1]]
            spans.append(np.stack([start[a] + end[b], offsets[a, 0], offsets[b, 1], start[a], end[b]], axis=1))
        spans = np.concatenate(spans) if spans else np.zeros((0, 5))
        best, seen = [], set()
        for total, a, b, start_logit, end_logit in spans[np.argsort(-spans[:, 0], kind="stable")]:
            text = example["context"][int(a):int(b)]
            if text.strip() and text not in seen:
                seen.add(text)
                best.append({"text": text, "score": float(total), "start_logit": float(start_logit),
                             "end_logit": float(end_logit), "start": int(a), "end": int(b)})
                if len(best) == n_best_size:
                    break
        top = best[0] if best else {"text": "", "score": -1e6}  # no span at all: only for an empty context
        predictions[example["id"]] = top["text"]
        if version_2:
            null_odds[example["id"]] = null["score"] - top["score"]
            if null_odds[example["id"]] > threshold:
                predictions[example["id"]] = ""
            best = sorted(best + [null], key=lambda s: -s["score"])[:n_best_size]
        scores = np.array([s["score"] for s in best])
        probabilities = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum() if best else []
        nbest[example["id"]] = [{"text": s["text"], "probability": float(p), "start_logit": s["start_logit"],
                                 "end_logit": s["end_logit"], **({"start": s["start"], "end": s["end"]} if with_offsets
                                                                  else {})} for s, p in zip(best, probabilities)]
    return predictions, nbest, null_odds


def window_meta(features):
    """Example ids, CLS positions and offsets as arrays ((-1, -1) outside the context), read once."""
    return {"example_id": features["example_id"], "cls_index": features["cls_index"],
            "offsets": [np.array([o if o is not None else (-1, -1) for o in offs], dtype=np.int64).reshape(-1, 2)
                        for offs in features["offset_mapping"]]}


def main(argv=None):
    args = parse_args(argv)
    if args.predictions:
        return evaluate_file(args)
    if args.question is not None:
        result = answer(args.model_name_or_path, args.question, args.context, n_best_size=args.n_best_size,
                        max_answer_length=args.max_answer_length,
                        null_score_diff_threshold=args.null_score_diff_threshold,
                        version_2_with_negative=args.version_2_with_negative or None,
                        # the defaults give way to the run's own settings (its training_state.json)
                        max_seq_length=args.max_seq_length, doc_stride=None if args.doc_stride == 128 else
                        args.doc_stride, max_query_length=None if args.max_query_length == 64 else
                        args.max_query_length)
        print(json.dumps(result, ensure_ascii=False))
        return result
    from transformers import AutoModelForQuestionAnswering, DataCollatorWithPadding

    train, dev, test = read_jobs(args)  # read and checked before anything is written
    test_scored = bool(test) and any(e["answers"] for e in test)  # a test file with answers: scored too
    out = Path(args.output_dir)
    if train is None and (out / "training_state.json").exists() and not args.overwrite_output_dir:
        flags.fail(f"{out} holds a training run whose eval_results.json this would replace; evaluate into another "
                   "--output_dir, or pass --overwrite_output_dir")
    if train is None:  # an evaluation never replaces earlier results silently
        flags.refuse_existing([out / "predictions.json", out / "eval_results.json"] * bool(dev) +
                              [out / "predictions_test.json"] * bool(test), args.overwrite_output_dir)
    config = loading.config_for(args)
    tokenizer = check_tokenizer(args, config)  # before setup: its checks are cheap
    accelerator = core.setup(args, training=train is not None, varied_batches=True)
    try:
        model = AutoModelForQuestionAnswering.from_pretrained(args.model_name_or_path, config=config)
    except (OSError, ValueError) as e:
        flags.fail(f"{args.model_name_or_path}: cannot load ({(str(e).splitlines() or [type(e).__name__])[0]})")
    train_dataset = featurize(train, tokenizer, args, True, accelerator) if train else None
    eval_dataset = meta = None
    if dev:
        dev_features = featurize(dev, tokenizer, args, False, accelerator)
        meta = window_meta(dev_features)
        eval_dataset = dev_features.remove_columns(["example_id", "cls_index", "offset_mapping"])
    collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8)
    accelerator.print(f"questions: train {len(train or [])} -> {len(train_dataset or [])} windows, "
                      f"dev {len(dev or [])} -> {len(eval_dataset) if dev else 0} windows")

    def evaluate(arrays):
        predictions, null_odds = best_answers(dev, meta, arrays["start_logits"], arrays["end_logits"], args)
        # = evaluate-v2.0.py dev.json predictions.json -n null_odds.json -t <the threshold they were made with>
        return score(dev, predictions, args.version_2_with_negative,
                     null_odds if args.version_2_with_negative else None, args.null_score_diff_threshold)

    results, best = None, {}  # best: best/'s dev logits from the evaluation that picked it, not predicted twice
    if train:
        results = core.train(args, accelerator, model, tokenizer, train_dataset, eval_dataset, collator,
                             evaluate=evaluate if dev else None, eval_keys=("start_logits", "end_logits"),
                             on_best=lambda metrics, arrays: best.update(arrays=arrays))
        model = AutoModelForQuestionAnswering.from_pretrained(out / "best")
    model = accelerator.prepare(model)
    if test:
        results = predict_test(args, accelerator, model, tokenizer, collator, test, test_scored, out)
    if not dev:
        return results
    arrays = best.get("arrays") or core.predict(
        accelerator, model, core.eval_loader(accelerator, eval_dataset, collator, args),
        keys=("start_logits", "end_logits"), desc="[best] [VALID]" if train else "[VALID]")[1]
    return evaluate_dev(args, accelerator, dev, meta, arrays, out)


def read_jobs(args):
    """The questions of each job, read and checked (None: not this job): training (answers at their offsets, the
    first N), validation and test (the first N)."""
    if args.dataset_name:
        splits = read_hub(args)
        if args.do_train and "train" not in splits and not args.inferred:
            flags.fail(f"--do_train: {args.dataset_name} has no train split")
        if args.do_eval and "validation" not in splits and not args.inferred:
            flags.fail(f"--do_eval: {args.dataset_name} has no validation split")
        train, dev = splits.get("train"), splits.get("validation")
    else:
        train = read_squad(args.train_file) if args.train_file else None
        dev = read_squad(args.validation_file) if args.validation_file else None
    train = train if args.do_train else None
    dev = dev if args.do_eval else None
    test = read_squad(args.test_file) if args.do_predict else None
    if train is None and dev is None and test is None:
        flags.fail(f"{args.dataset_name}: no train or validation split")
    for name, examples in (("training", train), ("validation", dev)):
        check_version(examples or [], name, args.version_2_with_negative)
    if args.use_best_threshold and dev is None:
        flags.fail("--use_best_threshold needs validation data")
    # questions are limited before they become windows
    train = list(core.limit(check_answers(train, source(args, "train"), True), args.max_train_samples)) \
        if train else None
    dev = list(core.limit(check_answers(dev, source(args, "validation"), False), args.max_eval_samples)) \
        if dev else None
    test = list(core.limit(test, args.max_predict_samples)) if test else None
    return train, dev, test


def source(args, split):
    """What a split is called in messages: its file, or DATASET[split]."""
    path = {"train": args.train_file, "validation": args.validation_file}[split]
    return path or f"{args.dataset_name}[{split}]"


def check_version(examples, name, version_2):
    """Questions without an answer are SQuAD v2.0's: one line unless --version_2_with_negative."""
    unanswerable = [e for e in examples if e["impossible"]]
    if unanswerable and not version_2:
        flags.fail(f"{unanswerable[0]['where']}: no answer (one of {len(unanswerable)} such {name} questions); "
                   "SQuAD v2.0 data needs --version_2_with_negative")


def check_tokenizer(args, config):
    """The tokenizer, checked for what windows need; settles the default --max_seq_length."""
    tokenizer = loading.tokenizer_for(args)
    if not tokenizer.is_fast:
        flags.fail(f"{args.model_name_or_path}: squad.py needs a fast tokenizer (tokenizer.json): it reads answers "
                   "back through the token offsets")
    if tokenizer.padding_side != "right":
        flags.fail(f"{args.model_name_or_path}: the tokenizer pads on the left; squad.py puts the question first "
                   "and needs right padding")
    if args.max_seq_length is None:  # the default: 384, or what the model takes if less
        args.max_seq_length = min(384, tokenizer.model_max_length)
    flags.check_max_seq_length(args.max_seq_length, config)
    room = args.max_seq_length - args.max_query_length - tokenizer.num_special_tokens_to_add(pair=True)
    if args.doc_stride >= room:
        flags.fail(f"--doc_stride {args.doc_stride} must be less than the context tokens of a window, --max_seq_length "
                   f"- --max_query_length - special tokens = {room}")
    return tokenizer


def evaluate_dev(args, accelerator, dev, meta, arrays, out):
    """best/ (or the model as given) on dev: the metrics, and the predictions written beside them."""
    version_2 = args.version_2_with_negative
    predictions, nbest, null_odds = postprocess(dev, meta, arrays["start_logits"], arrays["end_logits"],
                                                args.n_best_size, args.max_answer_length, version_2,
                                                args.null_score_diff_threshold)
    results = score(dev, predictions, version_2, null_odds if version_2 else None, args.null_score_diff_threshold)
    accelerator.print(f"eval: {json.dumps(results)}")
    written = {"predictions.json": predictions, "nbest_predictions.json": nbest}
    if version_2:
        written["null_odds.json"] = null_odds
    if args.use_best_threshold:
        # the google-research/bert workflow: the threshold is chosen on this dev set, so these numbers are optimistic
        threshold = tuned_threshold(results, dev, null_odds)
        tuned_predictions, _, _ = postprocess(dev, meta, arrays["start_logits"], arrays["end_logits"],
                                              args.n_best_size, args.max_answer_length, version_2, threshold)
        tuned = {"null_score_diff_threshold": threshold,
                 **score(dev, tuned_predictions, True, null_odds, threshold)}
        results["tuned_on_dev"] = tuned
        written["predictions_tuned_on_dev.json"] = tuned_predictions
        accelerator.print(f"eval with the threshold tuned on dev (optimistic): {json.dumps(tuned)}")
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        for name, obj in {**written, "eval_results.json": results}.items():
            files.write_json(out / name, obj)
        # each prediction beside its gold answers, one question a line
        files.write_text(out / "predictions_dev.jsonl", "".join(
            json.dumps({"id": e["id"], "question": e["question"], "gold": [a["text"] for a in e["answers"]],
                        "prediction": predictions[e["id"]],
                        **({"null_odds": null_odds[e["id"]]} if version_2 else {})}, ensure_ascii=False) + "\n"
            for e in dev))
        accelerator.print(f"wrote {', '.join(written)}, predictions_dev.jsonl and eval_results.json to {out}")
    return results

def predict_test(args, accelerator, model, tokenizer, collator, test, scored, out):
    """--do_predict: predictions_test.json (and nbest, null odds for v2); test_results.json when the file has
    answers. Returns the test metrics, or None."""
    features = featurize(test, tokenizer, args, False, accelerator)
    meta = window_meta(features)
    dataset = features.remove_columns(["example_id", "cls_index", "offset_mapping"])
    _, arrays = core.predict(accelerator, model, core.eval_loader(accelerator, dataset, collator, args),
                             keys=("start_logits", "end_logits"), desc="[TEST]")
    version_2 = args.version_2_with_negative
    predictions, nbest, null_odds = postprocess(test, meta, arrays["start_logits"], arrays["end_logits"],
                                                args.n_best_size, args.max_answer_length, version_2,
                                                args.null_score_diff_threshold)
    results = score(test, predictions, version_2, null_odds if version_2 else None,
                    args.null_score_diff_threshold) if scored else None
    if results is not None:
        accelerator.print(f"test: {json.dumps(results)}")
    written = {"predictions_test.json": predictions, "nbest_predictions_test.json": nbest,
               **({"null_odds_test.json": null_odds} if version_2 else {}),
               **({"test_results.json": results} if results is not None else {})}
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        for name, obj in written.items():
            files.write_json(out / name, obj)
        accelerator.print(f"wrote {', '.join(written)} to {out} ({len(predictions)} questions"
                          f"{'' if scored else '; no answers in the file: no metric'})")
    return results


def answer(model_dir, question, context, *, n_best_size=20, max_answer_length=30, null_score_diff_threshold=0.0,
           version_2_with_negative=None, max_seq_length=None, doc_stride=None, max_query_length=None, model=None,
           tokenizer=None):
    """The answer to one question from `context` with a question-answering checkpoint (best/ as squad.py writes
    it; any AutoModelForQuestionAnswering folder or hub id): the context cut into windows overlapping by
    doc_stride, the n_best_size best starts x ends of each, and for SQuAD v2 models '' when null score - best span
    score > null_score_diff_threshold. Settings left None come from the run's training_state.json beside the
    weights (else 384 / 128 / 64 tokens, v1.1). Returns {"answer", "score" (its probability among the n best),
    "start", "end"} (character offsets in context; 0, 0 for no answer). model/tokenizer: already loaded ones."""
    import torch
    from transformers import AutoModelForQuestionAnswering

    saved = Path(model_dir) / "training_state.json"
    run = json.loads(saved.read_text()).get("args", {}) if saved.is_file() else {}
    if tokenizer is None:
        tokenizer = loading.load_tokenizer(str(model_dir))
    if not tokenizer.is_fast:
        flags.fail(f"{model_dir}: answering needs a fast tokenizer (tokenizer.json): it reads answers back through "
                   "the token offsets")
    if model is None:
        try:
            model = AutoModelForQuestionAnswering.from_pretrained(model_dir)
        except (OSError, ValueError) as e:
            flags.fail(f"{model_dir}: cannot load ({(str(e).splitlines() or [type(e).__name__])[0]})")
    model.eval()
    pick = lambda given, name, default: given if given is not None else run.get(name) or default
    max_seq_length = pick(max_seq_length, "max_seq_length", min(384, tokenizer.model_max_length))
    doc_stride = pick(doc_stride, "doc_stride", 128)
    max_query_length = pick(max_query_length, "max_query_length", 64)
    version_2 = pick(version_2_with_negative, "version_2_with_negative", False)
    if not context.strip():
        flags.fail("--context is empty; expected the text to answer from")
    room = max_seq_length - max_query_length - tokenizer.num_special_tokens_to_add(pair=True)
    if doc_stride >= room:
        flags.fail(f"--doc_stride {doc_stride} must be less than the context tokens of a window, --max_seq_length "
                   f"- --max_query_length - special tokens = {room}")
    example = {"id": "q", "question": question, "context": context}
    features = windows({k: [v] for k, v in example.items()}, tokenizer, max_seq_length, doc_stride, max_query_length,
                       training=False)
    meta = window_meta(features)
    inputs = [{k: features[k][i] for k in ("input_ids", "attention_mask", "token_type_ids") if k in features}
              for i in range(len(features["input_ids"]))]
    batch = tokenizer.pad(inputs, return_tensors="pt")
    device = next(model.parameters()).device
    with torch.no_grad():
        output = model(**{k: v.to(device) for k, v in batch.items()})
    start_logits, end_logits = output.start_logits.float().cpu().numpy(), output.end_logits.float().cpu().numpy()
    predictions, nbest, _ = postprocess([example], meta, start_logits, end_logits, n_best_size, max_answer_length,
                                        version_2, null_score_diff_threshold, with_offsets=True)
    text = predictions["q"]
    entry = next((e for e in nbest["q"] if e["text"] == text), {"probability": 0.0, "start": 0, "end": 0})
    return {"answer": text, "score": entry["probability"], "start": entry["start"] if text else 0,
            "end": entry["end"] if text else 0}


if __name__ == "__main__":
    main()
