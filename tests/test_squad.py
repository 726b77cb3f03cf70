"""squad.py: the official metric against hand-derived values (normalisation, several gold answers, empty gold and
prediction, articles and punctuation only, thresholds), windows and their labels on WordPiece and byte-level BPE,
post-processing of hand-made logits, --evaluate_only, training end to end on synthetic data (files, a model that
learns, the checkpoint used as is), the windows cache, bad input (one line, exit code 2), and the real files."""
import json

import numpy as np
import pytest
import torch
from conftest import SHARED

import files
import fixtures_squad
import squad
import tiny

SQUAD = SHARED / "squad"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("squad")
    v1 = fixtures_squad.write_squad(root / "v1", sizes=(200, 40), max_facts=1)
    v2 = fixtures_squad.write_squad(root / "v2", sizes=(40, 12), v2=True, seed=5)
    return {"v1": v1, "v2": v2, "corpus": v1["corpus"].read_text().splitlines() + v2["corpus"].read_text().splitlines()}


@pytest.fixture(scope="module")
def qa_bert(tmp_path_factory, data):
    return tiny.build_model("bert", tmp_path_factory.mktemp("qa-bert"), texts=data["corpus"], dropout=0.0)


@pytest.fixture(scope="module")
def qa_roberta(tmp_path_factory, data):
    return tiny.build_model("roberta", tmp_path_factory.mktemp("qa-roberta"), texts=data["corpus"], dropout=0.0)


def flags(model, out, tmp_path, *extra):
    return ["--model", str(model), "--output_dir", str(out), "--report_to", "none",
            "--cache_dir", str(tmp_path / "cache"),
            "--max_seq_length", "40", "--doc_stride", "8", "--max_query_length", "12", "--learning_rate", "3e-3",
            "--per_device_train_batch_size", "16", *map(str, extra)]


def fails(argv, capsys):
    """main(argv) stops with exit code 2; returns its one-line message."""
    with pytest.raises(SystemExit) as e:
        squad.main(argv)
    assert e.value.code == 2
    return capsys.readouterr().err


def write(path, obj):
    path.write_text(json.dumps(obj))
    return path


def one_paragraph(context, qas, version="v2.0"):
    return {"version": version, "data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]}


# --- the official metric
def test_normalisation_and_scores():
    assert squad.normalize_answer("The  Cat, sat!") == "cat sat"
    assert squad.normalize_answer("An apple a day") == "apple day"
    assert squad.normalize_answer("Theatre") == "theatre"  # articles only as whole words
    assert squad.normalize_answer("the") == "" and squad.normalize_answer(" ...!") == ""
    assert squad.exact_score("the Eiffel tower.", "Eiffel Tower") == 1
    assert squad.exact_score("the", "") == 1 and squad.exact_score("Paris", "") == 0
    # token F1: 2 of 3 tokens on each side -> P = R = 2/3
    assert squad.f1_score("the big red dog", "red dog barked") == pytest.approx(2 / 3)
    assert squad.f1_score("x x y", "x y y") == pytest.approx(2 / 3)  # counts clipped: one x, one y in common
    assert squad.f1_score("New York City", "York") == pytest.approx(0.5)  # P 1, R 1/3
    # no answer on either side: v2 gives 1 only when both are empty; v1.1 has no such rule (0)
    assert squad.f1_score("", "") == 1 and squad.f1_score("the", "a.") == 1 and squad.f1_score("Paris", "") == 0
    assert squad.f1_score("", "", version_2=False) == 0 and squad.f1_score("the", "", version_2=False) == 0


GOLD = {"q1": ["Paris", "the Paris"], "q2": [], "q3": [], "q4": ["a"], "q5": ["New York City"]}
PREDICTIONS = {"q1": "paris.", "q2": "", "q3": "London", "q4": "", "q5": "York"}
ODDS = {"q1": -1.0, "q2": 2.0, "q3": 0.5, "q4": 3.0, "q5": 0.2}


def test_v2_metric_by_hand():
    # raw: exact 1,1,0,1,0 and f1 1,1,0,1,0.5 (q4's only answer normalises to '', so '' is right)
    result = squad.squad_v2_metrics(GOLD, PREDICTIONS)
    assert result == {"exact": 60.0, "f1": 70.0, "total": 5,
                      "HasAns_exact": pytest.approx(200 / 3), "HasAns_f1": pytest.approx(250 / 3), "HasAns_total": 3,
                      "NoAns_exact": 50.0, "NoAns_f1": 50.0, "NoAns_total": 2}
    # odds above 1.0 (q2, q4) count as no answer: q4 has an answer, so it scores 0 now
    result = squad.squad_v2_metrics(GOLD, PREDICTIONS, ODDS, na_prob_thresh=1.0)
    assert (result["exact"], result["f1"], result["NoAns_exact"]) == (40.0, 50.0, 50.0)
    # the sweep from "all ''" (2 right) in odds order q1 q5 q3 q2 q4: exact 3,3,2,2,3 -> best 3/5 at -1.0;
    # f1 3,3.5,2.5,2.5,3.5 -> best 3.5/5 at 0.2 (a later tie does not move it)
    assert (result["best_exact"], result["best_exact_thresh"]) == (60.0, -1.0)
    assert (result["best_f1"], result["best_f1_thresh"]) == (70.0, 0.2)
    assert list(result)[-4:] == ["best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh"]
    # a v1.1 file scored as v2: no NoAns_ keys
    assert "NoAns_total" not in squad.squad_v2_metrics({"q1": ["Paris"]}, {"q1": "Paris"})


def test_tuned_threshold():
    examples = [{"impossible": False}, {"impossible": True}]  # '' everywhere scores 50.0
    assert squad.tuned_threshold({"best_f1": 75.0, "best_f1_thresh": 0.3}, examples, {"a": -2.0, "b": 1.0}) == 0.3
    # nothing beat '' everywhere: the official 0.0 would still answer "a" (odds -0.5); below every odds answers none
    assert squad.tuned_threshold({"best_f1": 50.0, "best_f1_thresh": 0.0}, examples, {"a": -0.5, "b": 1.0}) == -1.5


def test_v1_metric_by_hand(capsys):
    gold = {"q1": ["Paris", "paris france"], "q2": ["the"], "q3": ["x"]}
    # q1: exact 0, f1 max(0, 2/3); q2: '' == normalised 'the' (exact 1), F1 0; q3: missing, scores 0
    result = squad.squad_v1_metrics(gold, {"q1": "France", "q2": ""})
    assert result == {"exact_match": pytest.approx(100 / 3), "f1": pytest.approx(100 * (2 / 3) / 3)}
    assert "no prediction for 1 questions (first: q3)" in capsys.readouterr().err


def test_evaluate_only_scores_a_predictions_file(tmp_path, capsys):
    context = "Paris is big. London is old. New York City is far."
    qas = [{"question": f"{q}?", "id": q, "is_impossible": not texts,
            "answers": [{"text": t, "answer_start": max(context.find(t), 0)} for t in texts]}
           for q, texts in GOLD.items()]
    qas[3]["answers"][0]["answer_start"] = 0  # 'a': any offset, evaluation reads only texts
    dev = write(tmp_path / "dev.json", one_paragraph(context, qas))
    predictions, odds = write(tmp_path / "p.json", PREDICTIONS), write(tmp_path / "o.json", ODDS)
    result = squad.main(["--evaluate_only", "--validation_file", str(dev), "--predictions", str(predictions),
                         "--null_odds", str(odds)])
    assert json.loads(capsys.readouterr().out) == result
    assert (result["exact"], result["f1"], result["best_f1"], result["best_f1_thresh"]) == (40.0, 50.0, 70.0, 0.2)
    result = squad.main(["--evaluate_only", "--validation_file", str(dev), "--predictions", str(predictions),
                         "--null_odds", str(odds), "--na_prob_thresh", "5"])
    assert (result["exact"], result["f1"]) == (60.0, 70.0)
    # every question needs a prediction in v2 (the official script crashes without one)
    partial = write(tmp_path / "partial.json", {k: v for k, v in PREDICTIONS.items() if k != "q5"})
    err = fails(["--evaluate_only", "--validation_file", str(dev), "--predictions", str(partial)], capsys)
    assert "partial.json: no prediction for 1 of 5 questions" in err and "(first: q5)" in err


# --- windows and labels
WORDS = tiny.FILLER + tiny.TOPICS["sports"] + tiny.TOPICS["music"]


@pytest.mark.parametrize("kind", ["wordpiece", "bpe"])
def test_windows_overlap_labels_and_offsets(kind):
    tokenizer = tiny.train_tokenizer(kind, tiny.corpus())
    context = " ".join(WORDS[i % len(WORDS)] for i in range(45)) + "."
    question = "What is the score of the match?"
    batch = {"id": ["e1"], "question": [question], "context": [context]}
    evaluation = squad.windows(batch, tokenizer, 32, 6, 12, training=False)
    kept = [[o for o in offsets if o is not None] for offsets in evaluation["offset_mapping"]]
    assert len(kept) >= 3 and evaluation["example_id"] == ["e1"] * len(kept)
    assert evaluation["cls_index"] == [0] * len(kept)  # [CLS] / <s> first
    question_tokens = len(tokenizer(question, add_special_tokens=False)["input_ids"])
    for ids, offsets in zip(evaluation["input_ids"], evaluation["offset_mapping"]):
        # one run of context offsets; the question and the special tokens around it have none
        present = [o is not None for o in offsets]
        first, count = present.index(True), sum(present)
        assert len(offsets) == len(ids) and all(present[first:first + count])
        assert len(offsets) - count == min(question_tokens, 12) + tokenizer.num_special_tokens_to_add(pair=True)
    for a, b in zip(kept, kept[1:]):
        assert [tuple(o) for o in a[-6:]] == [tuple(o) for o in b[:6]]  # doc_stride: 6 context tokens shared
    assert kept[0][0][0] == 0 and kept[-1][-1][1] == len(context)  # the windows cover the whole context
    # an answer of two tokens cut by the end of window 0: CLS there, its tokens in window 1, CLS after
    last, following = kept[0][-1], kept[1][kept[1].index(kept[0][-1]) + 1]
    start, end = last[0], following[1]
    training = squad.windows({**batch, "answer_start": [start], "answer_end": [end]}, tokenizer, 32, 6, 12, True)
    labels = list(zip(training["start_positions"], training["end_positions"]))
    assert labels[0] == (0, 0) and all(label == (0, 0) for label in labels[2:])
    offsets = evaluation["offset_mapping"][1]  # the same windows
    assert offsets[labels[1][0]][0] == start and offsets[labels[1][1]][1] == end
    # an impossible question: CLS in every window
    training = squad.windows({**batch, "answer_start": [-1], "answer_end": [-1]}, tokenizer, 32, 6, 12, True)
    assert set(training["start_positions"]) == set(training["end_positions"]) == {0}


@pytest.mark.parametrize("kind", ["wordpiece", "bpe"])
def test_max_query_length_cuts_the_question(kind):
    tokenizer = tiny.train_tokenizer(kind, tiny.corpus())
    question = "What " + " ".join(tiny.FILLER[:20]) + "?"
    out = squad.windows({"id": ["e"], "question": [question], "context": ["the match was big ."]}, tokenizer, 64, 8, 5,
                        training=False)
    assert len(tokenizer(question, add_special_tokens=False)["input_ids"]) > 5
    context_tokens = sum(o is not None for o in out["offset_mapping"][0])
    assert len(out["input_ids"][0]) - context_tokens - tokenizer.num_special_tokens_to_add(pair=True) == 5


# --- post-processing of hand-made logits
CONTEXT = "alpha beta gamma delta"
NONE = [-1, -1]
META = {"example_id": ["q1", "q1", "q2"], "cls_index": [0, 0, 0],
        "offsets": [np.array(o) for o in (
            [NONE, NONE, NONE, [0, 5], [6, 10], [11, 16], NONE],   # [CLS] question [SEP] alpha beta gamma [SEP]
            [NONE, NONE, NONE, [6, 10], [11, 16], [17, 22], NONE],  # [CLS] question [SEP] beta gamma delta [SEP]
            [NONE, NONE, [0, 3], [4, 6], NONE])]}                   # [CLS] question yes no [SEP]
EXAMPLES = [{"id": "q1", "context": CONTEXT}, {"id": "q2", "context": "yes no"}]
PAD = -100.0  # core.predict pads shorter windows with -100
START = np.array([[1, 9, 0, 2, 0, 0, 0, PAD], [0.5, 0, 0, 0, 4, 0, 0, PAD], [5, 0, 1, 0, 0, PAD, PAD, PAD]])
END = np.array([[1, 9, 0, 0, 3, 0, 0, PAD], [0.5, 0, 0, 6, 0, 4.5, 0, PAD], [5, 0, 0, 1, 0, PAD, PAD, PAD]])


def test_postprocess_hand_made_logits():
    post = lambda **kw: squad.postprocess(EXAMPLES, META, START, END, **kw)
    # the question token (9 + 9) is never an answer; end before start (gamma..beta) is skipped;
    # best: gamma..delta 4 + 4.5 in window 1, then beta 0 + 6, then alpha..beta 2 + 3 in window 0
    predictions, nbest, null_odds = post()
    assert predictions == {"q1": "gamma delta", "q2": "yes no"} and null_odds == {}
    assert [e["text"] for e in nbest["q1"][:3]] == ["gamma delta", "beta", "alpha beta"]
    assert (nbest["q1"][0]["start_logit"], nbest["q1"][0]["end_logit"]) == (4.0, 4.5)
    scores = np.array([e["start_logit"] + e["end_logit"] for e in nbest["q1"]])
    assert [e["probability"] for e in nbest["q1"]] == pytest.approx(np.exp(scores) / np.exp(scores).sum())
    assert len({e["text"] for e in nbest["q1"]}) == len(nbest["q1"])  # one entry per text
    # v2: null score = min over the windows of CLS start + end = min(1 + 1, 0.5 + 0.5) = 1
    predictions, nbest, null_odds = post(version_2=True)
    assert null_odds == {"q1": 1.0 - 8.5, "q2": 10.0 - 2.0}
    assert predictions == {"q1": "gamma delta", "q2": ""}
    assert {"text": "", "probability": pytest.approx(nbest["q2"][0]["probability"]), "start_logit": 5.0,
            "end_logit": 5.0} == nbest["q2"][0]
    assert post(version_2=True, threshold=-8.0)[0]["q1"] == ""  # -7.5 > -8: no answer
    assert post(version_2=True, threshold=-7.5)[0]["q1"] == "gamma delta"  # not strictly above
    assert post(version_2=True, threshold=8.0)[0]["q2"] == "yes no"
    # max_answer_length 1: single tokens only, beta (6) is best; n_best_size 2: two starts x two ends per window
    predictions, _, null_odds = post(version_2=True, max_answer_length=1)
    assert predictions["q1"] == "beta" and null_odds["q1"] == 1.0 - 6.0
    assert all(len(entries) <= 2 for entries in post(n_best_size=2)[1].values())


# --- end to end
def test_train_v1_end_to_end(data, qa_bert, tmp_path, capsys, monkeypatch):
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    out, v1 = tmp_path / "v1", data["v1"]
    best = squad.main(["--train_file", str(v1["train"]), "--validation_file", str(v1["dev"]),
                       *flags(qa_bert, out, tmp_path, "--num_train_epochs", 3)])
    printed = capsys.readouterr().out
    windows = [int(w) for w in printed.split("questions: train ")[1].split(" windows")[0].split(" -> ")]
    assert windows[1] > windows[0]  # some contexts need two windows at 40 tokens
    assert best["f1"] > 80, best  # it learned: the labels and the post-processing agree
    results = json.loads((out / "eval_results.json").read_text())
    assert results == pytest.approx(best) and set(results) == {"exact_match", "f1"}
    log = json.loads((out / "log.json").read_text())
    assert max(log[f"Epoch {e}"]["valid_log"]["f1"] for e in range(3)) == pytest.approx(best["f1"])
    assert "loss" not in log["Epoch 0"]["valid_log"]  # dev windows have no labels: no eval loss
    dev = squad.read_squad(v1["dev"])
    predictions = json.loads((out / "predictions.json").read_text())
    nbest = json.loads((out / "nbest_predictions.json").read_text())
    assert list(predictions) == list(nbest) == [e["id"] for e in dev] and not (out / "null_odds.json").exists()
    assert all(predictions[q] == entries[0]["text"] for q, entries in nbest.items())
    # the written predictions score the same through --evaluate_only (the official v1.1 numbers)
    assert squad.main(["--evaluate_only", "--validation_file", str(v1["dev"]),
                       "--predictions", str(out / "predictions.json")]) == results
    capsys.readouterr()
    # best/ as it is: evaluated again without training, its windows come from the cache (no tokenizing)
    monkeypatch.setattr(squad, "windows", lambda *a, **k: pytest.fail("tokenized again"))
    again = squad.main(["--evaluate_only", "--validation_file", str(v1["dev"]),
                        *flags(out / "best", tmp_path / "e", tmp_path)])
    assert again == pytest.approx(results) and "windows: loaded from" in capsys.readouterr().out
    # and answers a new question with the plain transformers classes (what the removed QA pipeline did)
    tokenizer = AutoTokenizer.from_pretrained(out / "best")
    model = AutoModelForQuestionAnswering.from_pretrained(out / "best")
    context = "Some people said the city was very big. The capital of Dorvia is Greywater. The report was new."
    encoded = tokenizer("What is the capital of Dorvia?", context, return_offsets_mapping=True, return_tensors="pt")
    offsets = encoded.pop("offset_mapping")[0]
    with torch.no_grad():
        logits = model(**encoded)
    start, end = logits.start_logits[0].argmax(), logits.end_logits[0].argmax()
    assert context[offsets[start][0]:offsets[end][1]] == "Greywater"


def test_train_v2_roberta_end_to_end(data, qa_roberta, tmp_path, capsys):
    out, v2 = tmp_path / "v2", data["v2"]
    train = json.loads(v2["train"].read_text())
    train["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] += 1  # one answer in the wrong place
    bad = write(tmp_path / "train.json", train)
    results = squad.main(["--train_file", str(bad), "--validation_file", str(v2["dev"]), "--version_2_with_negative",
                          "--use_best_threshold", *flags(qa_roberta, out, tmp_path, "--max_train_steps", 12)])
    captured = capsys.readouterr()
    assert "eval with the threshold tuned on dev (optimistic)" in captured.out
    err = captured.err
    assert f"warning: {bad}: 1 questions have an answer whose text is not at its answer_start " \
           "(1 questions skipped in training)" in err and "data[0].paragraphs[0].qas[0]" in err
    null_odds = json.loads((out / "null_odds.json").read_text())
    predictions = json.loads((out / "predictions.json").read_text())
    dev = squad.read_squad(v2["dev"])
    assert list(null_odds) == list(predictions) == [e["id"] for e in dev]
    assert all((predictions[q] == "") == (odds > 0.0) for q, odds in null_odds.items())  # threshold 0.0
    nbest = json.loads((out / "nbest_predictions.json").read_text())
    assert all("" in [e["text"] for e in entries] or len(entries) == 20 for entries in nbest.values())
    assert {"HasAns_f1", "NoAns_f1", "best_f1", "best_f1_thresh"} <= set(results)
    # the numbers are the official script's for these files (-n null_odds.json -t 0.0)
    scored = squad.main(["--evaluate_only", "--validation_file", str(v2["dev"]), "--predictions",
                         str(out / "predictions.json"), "--null_odds", str(out / "null_odds.json"),
                         "--na_prob_thresh", "0"])
    written = json.loads((out / "eval_results.json").read_text())
    tuned = results.pop("tuned_on_dev")
    assert written.pop("tuned_on_dev") == tuned and scored == written == results
    # --use_best_threshold: predictions again at dev's best_f1_thresh, labelled as tuned on dev
    assert tuned["null_score_diff_threshold"] == squad.tuned_threshold(results, dev, null_odds)
    again = json.loads((out / "predictions_tuned_on_dev.json").read_text())
    assert all((again[q] == "") == (odds > tuned["null_score_diff_threshold"]) for q, odds in null_odds.items())


def test_dataset_name_folders(data, qa_bert, tmp_path):
    """--dataset_name: a folder of official files, or a saved `datasets` folder with the hub's squad columns."""
    import datasets

    dev = squad.read_squad(data["v1"]["dev"])
    rows = [{"id": e["id"], "title": "t", "context": e["context"], "question": e["question"],
             "answers": {"text": [a["text"] for a in e["answers"]],
                         "answer_start": [a["answer_start"] for a in e["answers"]]}}
            for e in dev]
    datasets.DatasetDict({"validation": datasets.Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "saved"))
    for name, out in ((data["v1"]["dev"].parent, "files"), (tmp_path / "saved", "saved")):
        squad.main(["--dataset_name", str(name), "--evaluate_only", *flags(qa_bert, tmp_path / out, tmp_path)])
    files, saved = [json.loads((tmp_path / out / "predictions.json").read_text()) for out in ("files", "saved")]
    assert files == saved and list(files) == [e["id"] for e in dev]  # the same questions in the same order


def test_cache_is_keyed_on_settings(data, qa_bert, qa_roberta, tmp_path, monkeypatch):
    from transformers import AutoTokenizer

    import core
    tokenizer = AutoTokenizer.from_pretrained(qa_bert)
    args = squad.parse_args(["--validation_file", "x", *flags(qa_bert, tmp_path, tmp_path)])
    accelerator = core.setup(args, training=False)
    examples = squad.read_squad(data["v2"]["dev"])
    first = squad.featurize(examples, tokenizer, args, False, accelerator)
    monkeypatch.setattr(squad, "windows", lambda *a, **k: pytest.fail("tokenized again"))
    assert squad.featurize(examples, tokenizer, args, False, accelerator)[:] == first[:]
    for change in ({"doc_stride": 4}, {"max_seq_length": 48}, {"max_query_length": 10}):
        with pytest.raises(pytest.fail.Exception):
            changed = squad.argparse.Namespace(**{**vars(args), **change})
            squad.featurize(examples, tokenizer, changed, False, accelerator)
    with pytest.raises(pytest.fail.Exception):
        squad.featurize(examples[1:], tokenizer, args, False, accelerator)
    # one context edited, same length: every question of that paragraph changes, so the key does
    edited = [{**e, "context": e["context"].replace(e["context"][0], "Z", 1)} if e["context"] == examples[0]["context"]
              else e for e in examples]
    assert edited[0]["context"] != examples[0]["context"] and len(edited[0]["context"]) == len(examples[0]["context"])
    with pytest.raises(pytest.fail.Exception):
        squad.featurize(edited, tokenizer, args, False, accelerator)
    with pytest.raises(pytest.fail.Exception):
        squad.featurize(examples, AutoTokenizer.from_pretrained(qa_roberta), args, False, accelerator)


def test_tokenizer_key_ignores_the_last_calls_truncation(qa_bert, qa_roberta):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(qa_bert)
    key = files.tokenizer_key(tokenizer)
    tokenizer("a question", "the capital of the country is the city " * 4, truncation="only_second", max_length=16,
              stride=2, padding="max_length", return_overflowing_tokens=True)
    assert tokenizer.backend_tokenizer.truncation is not None and files.tokenizer_key(tokenizer) == key
    assert files.tokenizer_key(AutoTokenizer.from_pretrained(qa_roberta)) != key

    class Reordered:  # another layout of tokenizer.json (the vocabulary first, truncation last): parsed
        def __init__(self, truncation, vocab):
            self.backend_tokenizer = self
            self.text = json.dumps({"model": {"vocab": vocab}, "added_tokens": [], "truncation": truncation},
                                   separators=(",", ":"))

        def to_str(self):
            return self.text
    keys = [files.tokenizer_key(Reordered(t, v)) for t, v in ((None, {"a": 0}), ({"max_length": 8}, {"a": 0}),
                                                              (None, {"b": 0}))]
    assert keys[0] == keys[1] != keys[2]


# --- bad input: one line naming the file and the question, exit code 2
def test_bad_input(data, qa_bert, tmp_path, capsys):
    run = lambda path, *extra: fails(["--train_file", str(path), *flags(qa_bert, tmp_path / "o", tmp_path), *extra],
                                     capsys)
    broken = tmp_path / "broken.json"
    broken.write_text('{"version": "v2.0", "data": [\n  {"title": "x",\n}')
    assert "broken.json:3:1: not valid JSON" in run(broken)
    qa = lambda **kw: {"question": "What?", "id": "a1", "answers": [{"text": "big", "answer_start": 4}], **kw}
    noid = write(tmp_path / "noid.json", one_paragraph("the big city", [qa(), {"question": "Who?", "answers": []}]))
    assert 'noid.json: data[0].paragraphs[0].qas[1]: no "id"' in run(noid)
    dup = write(tmp_path / "dup.json", one_paragraph("the big city", [qa(), qa()]))
    assert "dup.json: data[0].paragraphs[0].qas[1]: duplicate id 'a1' (also at data[0].paragraphs[0].qas[0])" \
        in run(dup)
    v2 = write(tmp_path / "v2.json", one_paragraph("the big city", [qa(), qa(id="a2", answers=[], is_impossible=True)]))
    assert "qas[1] (id a2): no answer" in run(v2) and "--version_2_with_negative" in run(v2)
    layout = write(tmp_path / "layout.json", {"version": "1.1", "paragraphs": []})
    assert 'layout.json: expected a JSON object with a "data" list' in run(layout)
    answer = write(tmp_path / "answer.json", one_paragraph("the big city", [qa(answers=[{"text": "big"}])]))
    assert 'expected answers like {"text": "...", "answer_start": 0}' in run(answer)
    assert "--doc_stride 30 must be less than" in run(data["v1"]["train"], "--doc_stride", "30")
    assert "no such file" in run(tmp_path / "missing.json")
    for name in ("dev-a.json", "dev-b.json", "train.json"):
        (tmp_path / "two" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "two" / name).write_text(data["v1"]["dev"].read_text())
    err = fails(["--dataset_name", str(tmp_path / "two"), "--model", "m"], capsys)
    assert "several dev*.json (dev-a.json, dev-b.json)" in err
    (tmp_path / "trained").mkdir()
    (tmp_path / "trained" / "training_state.json").write_text("{}")
    assert "trained holds a training run" in fails(["--evaluate_only", "--validation_file", str(data["v1"]["dev"]),
                                                    "--model", "m", "--output_dir", str(tmp_path / "trained")], capsys)
    # a wrong answer_start: counted, warned, the question left out of training
    wrong = one_paragraph("the big city", [qa(), qa(id="a2", answers=[{"text": "city", "answer_start": 3}])])["data"]
    kept = squad.check_answers(squad.read_squad(write(tmp_path / "wrong.json", {"data": wrong})), "wrong.json", True)
    assert [e["id"] for e in kept] == ["a1"] and kept[0]["label"] == {"text": "big", "answer_start": 4}
    assert "wrong.json: 1 questions have an answer whose text is not at its answer_start (1 questions skipped in " \
           "training); first: " in capsys.readouterr().err


# --- the real files (../shared/data/squad)
@pytest.mark.skipif(not SQUAD.exists(), reason="../shared/data/squad not present")
def test_real_files_parse_and_train_a_few_steps(tmp_path):
    counts = {}
    for name in ("train-v2.0.first10articles.json", "dev-v2.0.explorer-rebuilt.json", "dev-v1.1.explorer-rebuilt.json"):
        examples = squad.read_squad(SQUAD / name)
        counts[name] = (len({e["where"].split(".paragraphs[")[0] for e in examples}),
                        len({e["where"].split(".qas[")[0] for e in examples}), len(examples),
                        sum(e["impossible"] for e in examples), sum(len(e["answers"]) for e in examples),
                        len(squad.check_answers(examples, name, True)))
    assert counts == {"train-v2.0.first10articles.json": (10, 694, 4719, 348, 4371, 4719),
                      "dev-v2.0.explorer-rebuilt.json": (35, 1204, 11873, 5945, 20302, 11873),
                      "dev-v1.1.explorer-rebuilt.json": (48, 2067, 10570, 0, 34726, 10570)}
    texts = [e["context"] for e in squad.read_squad(SQUAD / "train-v2.0.first10articles.json")[::40]]
    model = tiny.build_model("bert", tmp_path / "m", texts=texts, dropout=0.0)
    results = squad.main(["--train_file", str(SQUAD / "train-v2.0.first10articles.json"),
                          "--validation_file", str(SQUAD / "dev-v2.0.explorer-rebuilt.json"),
                          "--version_2_with_negative",
                          "--model", str(model), "--output_dir", str(tmp_path / "o"), "--report_to", "none",
                          "--cache_dir", str(tmp_path / "c"), "--max_seq_length", "128", "--doc_stride", "32",
                          "--max_train_samples", "24", "--max_eval_samples", "24", "--max_train_steps", "3"])
    assert results["total"] == 24 and len(json.loads((tmp_path / "o" / "null_odds.json").read_text())) == 24
