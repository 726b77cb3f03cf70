"""squad.py on malformed input: every case exits with code 2 and one line on stderr, `error: ...`, naming the file
(and line or question) and what was expected; where a finished run sits in --output_dir, it is byte-identical
afterwards, also with --overwrite_output_dir."""
import json

import pytest
from bad_input import damaged_models, expect_error, params, run_case

import fixtures_squad
import squad

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = ["--max_seq_length", "40", "--doc_stride", "8", "--max_query_length", "12"]


@pytest.fixture(scope="module")
def ctx(tiny_bert, tmp_path_factory):
    """The tiny model, damaged copies of it, SQuAD files, one finished training run and one evaluation."""
    root = tmp_path_factory.mktemp("squad-errors")
    files = fixtures_squad.write_squad(root / "v1", sizes=(10, 4))
    run = root / "run"
    common = ["--report_to", "none", "--cache_dir", str(root / "cache"), *SMALL]
    squad.main(["--train_file", str(files["train"]), "--validation_file", str(files["dev"]), "--model", str(tiny_bert),
                "--output_dir", str(run), "--max_train_steps", "2", *common])
    evaluation = root / "evaluation"
    squad.main(["--evaluate_only", "--validation_file", str(files["dev"]), "--model", str(tiny_bert),
                "--output_dir", str(evaluation), *common])
    assert (run / "best").is_dir() and (run / "predictions.json").exists() and (evaluation / "predictions.json").exists()
    return {"model": str(tiny_bert), "train": str(files["train"]), "dev": str(files["dev"]), "run": run,
            "evaluation": evaluation, "root": root, **damaged_models(tiny_bert, root / "models")}


CONTEXT = "The capital of Dorvia is Port Alder. The river of Dorvia is Lune."


def qa(i, text="Port Alder", start=25, **extra):
    return {"question": f"What is it {i}?", "id": f"q{i}", "answers": [{"text": text, "answer_start": start}], **extra}


def squad_json(*qas, context=CONTEXT, version="1.1"):
    return json.dumps({"version": version, "data": [{"title": "t", "paragraphs": [{"context": context,
                                                                                 "qas": list(qas)}]}]})


GOOD = squad_json(qa(1), qa(2, "Lune", 60))
assert json.loads(GOOD)["data"][0]["paragraphs"][0]["context"][60:64] == "Lune"
Q = "data[0].paragraphs[0].qas"
TRAIN = ["--train_file", "{t}/train.json"]
# (id, {file name: content}, argv, needles); {t}: this case's folder, {train}/{dev}: good SQuAD files, {model}: the
# tiny model ({truncated}, {garbage}, ...: its damaged copies). Every case runs with --output_dir {run}, the finished
# run; training cases (--train_file) also with --overwrite_output_dir.
CASES = [
    # answers
    ("every-answer-beyond-its-context", {"train.json": squad_json(qa(1, start=500), qa(2, "Lune", 900))}, TRAIN,
     ["no answer of {t}/train.json lies inside its context: check answer_start", "2 questions",
      f"{Q}[0] (id q1): expected 'Port Alder' at 500, found ''"]),
    ("every-answer-start-negative", {"train.json": squad_json(qa(1, start=-3), qa(2, "Lune", -1))}, TRAIN,
     ["no answer of {t}/train.json lies inside its context", "at -3, a negative offset"]),
    ("every-answer-off-by-one", {"train.json": squad_json(qa(1, start=26), qa(2, "Lune", 61))}, TRAIN,
     ["no answer of {t}/train.json lies inside its context", "expected 'Port Alder' at 26, found 'ort Alder.'"]),
    ("v2-answers-all-outside", {"train.json": squad_json(qa(1, start=400), {"question": "Who?", "id": "n1",
                                                                           "answers": [], "is_impossible": True},
                                                         version="v2.0")},
     TRAIN + ["--version_2_with_negative"], ["no answer of {t}/train.json lies inside its context"]),
    # the file
    ("json-lines-instead-of-squad", {"train.json": "\n".join(json.dumps(x) for x in (qa(1), qa(2))) + "\n"}, TRAIN,
     ["{t}/train.json:2:1: not valid JSON (Extra data)", 'expected the SQuAD layout {"version"']),
    ("truncated-json", {"train.json": GOOD[:len(GOOD) // 2]}, TRAIN, ["{t}/train.json:1:", "not valid JSON"]),
    ("not-utf8", {"train.json": GOOD.replace("Dorvia", "D\xf6rvia").encode("latin-1")}, TRAIN,
     ["{t}/train.json: not UTF-8 text", "expected the SQuAD layout"]),
    ("binary-file", {"train.json": bytes(range(256)) * 8}, TRAIN, ["{t}/train.json: not UTF-8 text"]),
    ("train-file-is-a-folder", {"train.json/x": ""}, TRAIN, ["{t}/train.json: a folder; expected the SQuAD layout"]),
    ("train-file-missing", {}, TRAIN, ["{t}/train.json: no such file"]),
    ("top-level-list", {"train.json": json.dumps([qa(1)])}, TRAIN,
     ['{t}/train.json: expected a JSON object with a "data" list of articles']),
    ("no-data-list", {"train.json": json.dumps({"version": "1.1", "paragraphs": []})}, TRAIN,
     ['{t}/train.json: expected a JSON object with a "data" list']),
    ("article-without-paragraphs", {"train.json": json.dumps({"data": [{"title": "t"}]})}, TRAIN,
     ['{t}/train.json: data[0]: expected an article {"title": ..., "paragraphs": [...]}, found NoneType']),
    ("paragraph-without-context", {"train.json": json.dumps({"data": [{"paragraphs": [{"qas": [qa(1)]}]}]})}, TRAIN,
     ["{t}/train.json: data[0].paragraphs[0].context: expected the context text, found NoneType"]),
    ("empty-context", {"train.json": squad_json(qa(1), context="  ")}, TRAIN,
     ["{t}/train.json: data[0].paragraphs[0].context: empty; expected the paragraph's text"]),
    ("qas-not-a-list", {"train.json": json.dumps({"data": [{"paragraphs": [{"context": "x", "qas": {}}]}]})}, TRAIN,
     ["{t}/train.json: data[0].paragraphs[0].qas: expected a list of questions, found dict"]),
    ("question-without-id", {"train.json": squad_json(qa(1), {"question": "Who?", "answers": []})}, TRAIN,
     [f'{{t}}/train.json: {Q}[1]: no "id"; expected a unique string id']),
    ("duplicate-id", {"train.json": squad_json(qa(1), qa(1))}, TRAIN,
     [f"{{t}}/train.json: {Q}[1]: duplicate id 'q1' (also at {Q}[0])"]),
    ("question-not-a-string", {"train.json": squad_json(qa(1), {**qa(2), "question": 7})}, TRAIN,
     [f'{{t}}/train.json: {Q}[1] (id q2): expected a "question" string, found int']),
    ("answers-not-a-list", {"train.json": squad_json(qa(1), {**qa(2), "answers": "Lune"})}, TRAIN,
     [f'{{t}}/train.json: {Q}[1] (id q2): expected a list of "answers", found str']),
    ("answer-without-start", {"train.json": squad_json(qa(1), {**qa(2), "answers": [{"text": "Lune"}]})}, TRAIN,
     [f'{Q}[1] (id q2): expected answers like {{"text": "...", "answer_start": 0}}, found {{"text": "Lune"}}']),
    ("answer-start-a-string", {"train.json": squad_json(qa(1), qa(2, "Lune", "60"))}, TRAIN,
     [f'{Q}[1] (id q2): expected answers like', '"answer_start": "60"']),
    ("impossible-with-answers", {"train.json": squad_json(qa(1, is_impossible=True))}, TRAIN,
     [f"{{t}}/train.json: {Q}[0] (id q1): is_impossible is true but it has 1 answers"]),
    ("v2-without-flag", {"train.json": squad_json(qa(1), {"question": "Who?", "id": "n", "answers": [],
                                                         "is_impossible": True}, version="v2.0")}, TRAIN,
     [f"{{t}}/train.json: {Q}[1] (id n): no answer", "SQuAD v2.0 data needs --version_2_with_negative"]),
    ("no-questions", {"train.json": json.dumps({"version": "1.1", "data": []})}, TRAIN,
     ["{t}/train.json: no questions; expected data[].paragraphs[].qas[]"]),
    ("bad-validation-file", {"dev.json": squad_json(qa(1), {**qa(2), "id": None})},
     ["--train_file", "{train}", "--validation_file", "{t}/dev.json"], [f'{{t}}/dev.json: {Q}[1]: no "id"']),
    # flags
    ("doc-stride-negative", {}, ["--train_file", "{train}", "--doc_stride", "-1"],
     ["--doc_stride -1: expected the tokens consecutive windows share, >= 0"]),
    ("doc-stride-no-room", {}, ["--train_file", "{train}", "--doc_stride", "30"],
     ["--doc_stride 30 must be less than the context tokens of a window", "= 28 at most"]),
    ("doc-stride-no-room-for-specials", {}, ["--train_file", "{train}", "--doc_stride", "27"],
     ["--doc_stride 27 must be less than the context tokens of a window", "special tokens = 25"]),
    ("query-longer-than-window", {}, ["--train_file", "{train}", "--max_query_length", "50", "--doc_stride", "0"],
     ["--max_query_length 50 leaves no room for the context in a window of --max_seq_length 40"]),
    ("max-seq-length-zero", {}, ["--train_file", "{train}", "--max_seq_length", "0"],
     ["--max_seq_length 0: expected a whole number >= 1"]),
    ("max-seq-length-above-positions", {}, ["--train_file", "{train}", "--max_seq_length", "512", "--doc_stride", "128"],
     ["--max_seq_length 512: the model holds at most 128 positions"]),
    ("max-seq-length-not-a-number", {}, ["--train_file", "{train}", "--max_seq_length", "40.5"],
     ["argument --max_seq_length: invalid int value: '40.5'"]),
    ("max-query-length-zero", {}, ["--train_file", "{train}", "--max_query_length", "0"],
     ["--max_query_length 0: expected a whole number >= 1"]),
    ("n-best-size-zero", {}, ["--train_file", "{train}", "--n_best_size", "0"], ["--n_best_size 0: expected"]),
    ("max-answer-length-negative", {}, ["--train_file", "{train}", "--max_answer_length", "-2"],
     ["--max_answer_length -2: expected a whole number >= 1"]),
    ("workers-zero", {}, ["--train_file", "{train}", "--preprocessing_num_workers", "0"],
     ["--preprocessing_num_workers 0: expected"]),
    ("best-threshold-without-v2", {}, ["--train_file", "{train}", "--use_best_threshold"],
     ["--use_best_threshold tunes the no-answer threshold: it needs --version_2_with_negative"]),
    ("evaluate-only-with-train-file", {}, ["--train_file", "{train}", "--evaluate_only"],
     ["--evaluate_only does not train: drop --train_file"]),
    ("dataset-and-files", {}, ["--train_file", "{train}", "--dataset_name", "squad"],
     ["give --dataset_name or --train_file/--validation_file, not both"]),
    # the model
    ("model-missing", {}, ["--train_file", "{train}", "--model", "{t}/no-such-model"],
     ["--model_name_or_path {t}/no-such-model: no such folder"]),
    ("model-is-a-file", {}, ["--train_file", "{train}", "--model", "{train}"],
     ["--model_name_or_path {train}: a file; expected a model folder"]),
    ("model-weights-truncated", {}, ["--train_file", "{train}", "--model", "{truncated}"],
     ["{truncated}/model.safetensors: damaged weights", "expected a complete safetensors file"]),
    ("model-weights-garbage", {}, ["--train_file", "{train}", "--model", "{garbage}"],
     ["{garbage}/model.safetensors: damaged weights"]),
    ("model-config-garbage", {}, ["--train_file", "{train}", "--model", "{badconfig}"],
     ["--model_name_or_path {badconfig}: cannot load its config", "config.json"]),
    ("model-without-tokenizer", {}, ["--train_file", "{train}", "--model", "{notokenizer}"],
     ["{notokenizer}: its tokenizer has no vocabulary"]),
]


TRAINING = lambda name, argv: "--train_file" in argv and "--evaluate_only" not in argv


@pytest.mark.parametrize("name, files, argv, needles, overwrite", params(CASES, TRAINING))
def test_bad_input(ctx, tmp_path, capfd, name, files, argv, needles, overwrite):
    run_case(capfd, squad.main, ctx, tmp_path, files, argv, needles, run_dir=ctx["run"], before=SMALL,  # later win
             after=[*(["--model", ctx["model"]] * ("--model" not in argv)), "--output_dir", ctx["run"], "--report_to",
                    "none", "--cache_dir", tmp_path / "cache", *(["--overwrite_output_dir"] * overwrite)])


PREDICTIONS = {"predictions.json": json.dumps({"q1": "Port Alder", "q2": "Lune"}), "dev.json": GOOD}
V2 = squad_json(qa(1), {"question": "Who?", "id": "n1", "answers": [], "is_impossible": True}, version="v2.0")


@pytest.mark.parametrize("files, argv, needles", [
    ({"predictions.json": '{"q1": "Port'}, ["--validation_file", "{dev}", "--predictions", "{t}/predictions.json"],
     ["{t}/predictions.json:1:", "not valid JSON", 'expected {"question id": "answer text", ...}']),
    ({"predictions.json": '["Port Alder"]'}, ["--validation_file", "{dev}", "--predictions", "{t}/predictions.json"],
     ['{t}/predictions.json: expected {"question id": "answer text", ...}']),
    ({**PREDICTIONS, "odds.json": '{"q1": "high", "q2": 0.5}'},
     ["--validation_file", "{t}/dev.json", "--predictions", "{t}/predictions.json", "--null_odds", "{t}/odds.json"],
     ['{t}/odds.json: expected {"question id": number, ...}']),
    ({"predictions.json": '{"q1": "Port Alder"}', "dev.json": V2},
     ["--validation_file", "{t}/dev.json", "--predictions", "{t}/predictions.json", "--version_2_with_negative"],
     ["{t}/predictions.json: no prediction for 1 of 2 questions of {t}/dev.json (first: n1); expected all of them"]),
    ({"predictions.json": "{}"}, ["--predictions", "{t}/predictions.json"],
     ["--predictions/--null_odds go with --evaluate_only and --validation_file"]),
    ({}, ["--validation_file", "{dev}", "--predictions", "{t}"], ["{t}: a folder; expected"]),
], ids=["predictions-not-json", "predictions-a-list", "null-odds-not-numbers", "v2-prediction-missing",
        "predictions-without-evaluate-only", "predictions-a-folder"])
def test_bad_predictions_file(ctx, tmp_path, capfd, files, argv, needles):
    run_case(capfd, squad.main, ctx, tmp_path, files, argv, needles,
             before=["--evaluate_only"] * ("--validation_file" in argv))


@pytest.mark.parametrize("which, needles", [
    ("run", ["holds a training run whose eval_results.json this would replace"]),
    ("evaluation", ["predictions.json already exists (and 1 more); pass --overwrite_output_dir"]),
])
def test_evaluation_never_replaces_earlier_results(ctx, capfd, which, needles):
    expect_error(capfd, squad.main, ["--evaluate_only", "--validation_file", ctx["dev"], "--model", ctx["model"],
                                     "--output_dir", ctx[which], *SMALL], *needles, run_dir=ctx[which])


def test_some_answers_outside_their_context_are_counted_not_fatal(tmp_path, capsys):
    path = tmp_path / "train.json"
    path.write_text(squad_json(qa(1), qa(2, "Lune", 900), qa(3, "Lune", 60)))
    kept = squad.check_answers(squad.read_squad(path), str(path), True)
    assert [e["id"] for e in kept] == ["q1", "q3"]
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"warning: {path}: 1 questions have an answer whose text is not at its answer_start "
                          "(1 questions skipped in training); first: ") and "\n" not in err
