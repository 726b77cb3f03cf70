"""pretrain_mlm.py and distill.py on malformed input: every case exits with code 2 and one line on stderr,
`error: ...`, naming the file (and line) and what was expected; the finished run in --output_dir is byte-identical
afterwards, also with --overwrite_output_dir. Also: a tokenizer trained for a new run replaces an earlier run's
tokenizer/ only once the new run has trained, and a resumed run takes the tokenizer it was trained with."""
import shutil

import pytest
from bad_input import damaged_models, expect_error, fill, params, run_case, snapshot

import distill
import pretrain_mlm
import tiny

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = "num_hidden_layers=1,hidden_size=32,num_attention_heads=2,intermediate_size=64"
STUDENT = "n_layers=1,dim=32,hidden_dim=64,n_heads=2,max_position_embeddings=64"


@pytest.fixture(scope="module")
def ctx(tiny_bert, tmp_path_factory):
    """A corpus, the tiny BERT and damaged copies of it, a finished pretraining run (a wordpiece tokenizer trained on
    the spot) and a finished distillation run (the tiny BERT as teacher)."""
    root = tmp_path_factory.mktemp("mlm-errors")
    corpus = root / "corpus"
    corpus.mkdir()
    (corpus / "train.txt").write_text("\n".join(tiny.corpus(120, seed=0) + tiny.EXTRA) + "\n", encoding="utf-8")
    (corpus / "valid.txt").write_text("\n".join(tiny.corpus(30, seed=1)) + "\n", encoding="utf-8")
    common = ["--train_file", str(corpus / "train.txt"), "--validation_file", str(corpus / "valid.txt"),
              "--max_seq_length", "32", "--max_train_steps", "2", "--per_device_train_batch_size", "8",
              "--report_to", "none", "--cache_dir", str(root / "cache")]
    run = root / "run"
    pretrain_mlm.main([*common, "--train_tokenizer", "wordpiece", "--vocab_size", "300", "--model_type", "bert",
                       "--config_overrides", TINY, "--output_dir", str(run)])
    assert (run / "best").is_dir() and (run / "tokenizer").is_dir() and not (run / "tokenizer.new").exists()
    drun = root / "drun"
    distill.main([*common, "--teacher", str(tiny_bert), "--config_overrides", STUDENT, "--output_dir", str(drun)])
    assert (drun / "best").is_dir() and (drun / "eval_results.json").exists()
    return {"corpus": str(corpus), "model": str(tiny_bert), "run": run, "drun": drun, "root": root,
            **damaged_models(tiny_bert, root / "models")}


DATA = ["--train_file", "{corpus}/train.txt", "--validation_file", "{corpus}/valid.txt", "--max_seq_length", "32"]
NEW = [*DATA, "--train_tokenizer", "wordpiece", "--vocab_size", "300", "--model_type", "bert",
       "--config_overrides", TINY]  # a new model with its own tokenizer
GIVEN = [*DATA, "--tokenizer_name", "{model}", "--model_type", "bert", "--config_overrides", TINY]
MORE = [*DATA, "--model_name_or_path", "{model}"]  # continued pretraining
LATIN1 = "a goal today\nthe team\ncaf\xe9 au lait\n".encode("latin-1")

# (id, {file name: content}, argv, needles); later flags win over the base's. {t}: this case's folder.
MLM = [
    # the corpus
    ("empty-corpus", {"e.txt": ""}, [*GIVEN, "--train_file", "{t}/e.txt"], ["{t}/e.txt: no text (empty"]),
    ("blank-lines-only", {"e.txt": "\n  \n\t\n"}, [*GIVEN, "--train_file", "{t}/e.txt"], ["{t}/e.txt: no text"]),
    ("corpus-not-utf8", {"c.txt": LATIN1}, [*GIVEN, "--train_file", "{t}/c.txt"],
     ["{t}/c.txt:3: not UTF-8 text (byte 0xe9", "expected UTF-8 text, one text per line"]),
    ("corpus-binary", {"c.txt": bytes(range(128, 256)) * 8}, [*GIVEN, "--train_file", "{t}/c.txt"],
     ["{t}/c.txt:1: not UTF-8 text"]),
    ("corpus-nul-bytes", {"c.txt": b"a goal\nthe \x00 team\n"}, [*GIVEN, "--train_file", "{t}/c.txt"],
     ["{t}/c.txt:2: a NUL byte (binary data)"]),
    ("second-train-file-bad", {"c.txt": LATIN1}, [*GIVEN, "--train_file", "{corpus}/train.txt", "{t}/c.txt"],
     ["{t}/c.txt:3: not UTF-8 text"]),
    ("validation-not-utf8", {"v.txt": LATIN1}, [*GIVEN, "--validation_file", "{t}/v.txt"],
     ["{t}/v.txt:3: not UTF-8 text"]),
    ("jsonl-bad-line", {"c.jsonl": '{"text": "a goal"}\n{"text": "the team"\n'}, [*GIVEN, "--train_file", "{t}/c.jsonl"],
     ["{t}/c.jsonl:2: not valid JSON", 'expected one JSON object per line with a "text" string']),
    ("jsonl-no-text", {"c.jsonl": '{"text": "a goal"}\n{"body": "the team"}\n'}, [*GIVEN, "--train_file", "{t}/c.jsonl"],
     ['{t}/c.jsonl:2: no "text" string']),
    ("jsonl-text-not-a-string", {"c.jsonl": '{"text": 3}\n'}, [*GIVEN, "--train_file", "{t}/c.jsonl"],
     ['{t}/c.jsonl:1: no "text" string']),
    ("train-file-is-a-folder", {"d/x.txt": "a"}, [*GIVEN, "--train_file", "{t}/d"],
     ["{t}/d: a folder; expected a file of UTF-8 text"]),
    ("train-file-missing", {}, [*GIVEN, "--train_file", "{t}/missing.txt"], ["{t}/missing.txt: no such file"]),
    # tokenizer training
    ("wordpiece-vocab-too-small", {}, [*NEW, "--vocab_size", "10"],
     ["--vocab_size 10 is below the", "tokens a wordpiece tokenizer of this corpus needs", "expected at least"]),
    ("unigram-vocab-too-small", {}, [*NEW, "--train_tokenizer", "unigram", "--vocab_size", "10"],
     ["--vocab_size 10: the unigram trainer refuses it", "expected room for every character"]),
    ("sentencepiece-vocab-too-small", {}, [*NEW, "--train_tokenizer", "sentencepiece", "--vocab_size", "10"],
     ["--vocab_size 10: sentencepiece refuses it", "smaller than required_chars"]),
    ("bpe-vocab-below-bytes", {}, [*NEW, "--train_tokenizer", "bpe", "--vocab_size", "200", "--model_type", "roberta"],
     ["--vocab_size 200 leaves no room beside the 5 special tokens and the 256 bytes", "expected more than 261"]),
    ("vocab-size-zero", {}, [*NEW, "--vocab_size", "0"], ["--vocab_size 0: expected a whole number >= 1"]),
    ("min-frequency-negative", {}, [*NEW, "--min_frequency", "-1"], ["--min_frequency -1: expected"]),
    ("input-sentence-size-negative", {}, [*NEW, "--input_sentence_size", "-5"], ["--input_sentence_size -5"]),
    # the model and its config
    ("model-missing", {}, [*MORE, "--model_name_or_path", "{t}/no-model"],
     ["--model_name_or_path {t}/no-model: no such folder"]),
    ("model-is-a-file", {}, [*MORE, "--model_name_or_path", "{corpus}/train.txt"],
     ["--model_name_or_path {corpus}/train.txt: a file; expected a model folder"]),
    ("model-weights-truncated", {}, [*MORE, "--model_name_or_path", "{truncated}"],
     ["{truncated}/model.safetensors: damaged weights", "expected a complete safetensors file"]),
    ("model-weights-garbage", {}, [*MORE, "--model_name_or_path", "{garbage}"],
     ["{garbage}/model.safetensors: damaged weights"]),
    ("model-config-garbage", {}, [*MORE, "--model_name_or_path", "{badconfig}"],
     ["--model_name_or_path {badconfig}: cannot load its config"]),
    ("model-without-tokenizer", {}, [*MORE, "--model_name_or_path", "{notokenizer}"],
     ["--model_name_or_path {notokenizer}: its tokenizer has no vocabulary"]),
    ("tokenizer-name-missing", {}, [*GIVEN, "--tokenizer_name", "{t}/no-tokenizer"],
     ["--tokenizer_name {t}/no-tokenizer: no such folder"]),
    ("max-seq-length-above-positions", {}, [*MORE, "--max_seq_length", "256"],
     ["--max_seq_length 256: the model holds at most 128 positions"]),
    ("max-seq-length-two", {}, [*MORE, "--max_seq_length", "2"], ["--max_seq_length 2: expected a block length >= 3"]),
    ("max-seq-length-not-a-number", {}, [*MORE, "--max_seq_length", "many"], ["invalid int value: 'many'"]),
    ("config-name-missing", {}, [*GIVEN, "--config_name", "{t}/none.json"], ["{t}/none.json: cannot read a config JSON"]),
    ("config-name-garbage", {"c.json": "{hidden_size: 32"}, [*GIVEN, "--config_name", "{t}/c.json"],
     ["{t}/c.json: cannot read a config JSON"]),
    ("config-name-a-list", {"c.json": "[1, 2]"}, [*GIVEN, "--config_name", "{t}/c.json"],
     ["{t}/c.json: expected a config JSON object, found list"]),
    ("config-name-other-type", {"c.json": '{"model_type": "roberta"}'}, [*GIVEN, "--config_name", "{t}/c.json"],
     ["{t}/c.json: model_type is 'roberta' but --model_type is 'bert'"]),
    ("model-type-unknown", {}, [*GIVEN, "--model_type", "gpt2"], ["model type 'gpt2' has no masked-LM class"]),
    ("config-overrides-bad-key", {}, [*GIVEN, "--config_overrides", "num_layers=2"],
     ["--config_overrides 'num_layers=2'", "expected key=value pairs of the config"]),
    ("config-overrides-bad-value", {}, [*GIVEN, "--config_overrides", "hidden_size=big"],
     ["--config_overrides 'hidden_size=big'"]),
    ("positions-below-block", {}, [*GIVEN, "--config_overrides", f"{TINY},max_position_embeddings=8"],
     ["max_position_embeddings 8 < 32 needed for --max_seq_length 32"]),
    ("hidden-not-multiple-of-heads", {}, [*GIVEN, "--config_overrides", f"{TINY},hidden_size=30,num_attention_heads=4"],
     ["--model_type bert with --config_overrides", "cannot build the model"]),
    # flags
    ("mlm-probability-zero", {}, [*MORE, "--mlm_probability", "0"], ["--mlm_probability 0.0: expected a share"]),
    ("mlm-probability-above-one", {}, [*MORE, "--mlm_probability", "1.5"], ["--mlm_probability 1.5"]),
    ("validation-split-100", {}, [*MORE, "--validation_split_percentage", "100"],
     ["--validation_split_percentage 100.0: expected a share of the training lines in [0, 100)"]),
    ("validation-split-negative", {}, [*MORE, "--validation_split_percentage", "-5"],
     ["--validation_split_percentage -5.0"]),
    ("workers-zero", {}, [*MORE, "--preprocessing_num_workers", "0"], ["--preprocessing_num_workers 0: expected"]),
    ("streaming-without-validation", {}, ["--train_file", "{corpus}/train.txt", "--model_name_or_path", "{model}",
                                          "--streaming", "--max_train_steps", "1"],
     ["--streaming cannot sample a validation split"]),
    ("model-and-new-tokenizer", {}, [*MORE, "--train_tokenizer", "bpe"],
     ["--model_name_or_path continues pretraining with its own config and tokenizer"]),
    ("new-model-without-type", {}, [*DATA, "--tokenizer_name", "{model}"],
     ["a new model needs --model_type or --config_name"]),
    ("new-model-without-tokenizer", {}, [*DATA, "--model_type", "bert"],
     ["a new model needs --train_tokenizer or --tokenizer_name"]),
    ("tokenizer-only-without-kind", {}, [*DATA, "--tokenizer_only"], ["--tokenizer_only needs --train_tokenizer"]),
    ("no-train-file", {}, ["--model_name_or_path", "{model}"],
     ["the following arguments are required: --train_file"]),
]
# fail after core.setup (tokenizer training, the model built, the data read), where the finished run would be refused
# first without --overwrite_output_dir: a fresh folder then, and a copy of the finished run with it
MLM_AFTER_SETUP = {"wordpiece-vocab-too-small", "unigram-vocab-too-small", "sentencepiece-vocab-too-small",
                   "positions-below-block", "hidden-not-multiple-of-heads", "streaming-without-validation"}
MLM_EARLY_STOP = {"model-and-new-tokenizer", "new-model-without-type", "new-model-without-tokenizer",
                  "tokenizer-only-without-kind", "no-train-file"}  # parse errors: no overwrite variant

TEACHER = [*DATA, "--teacher", "{model}", "--config_overrides", STUDENT]
DISTILL = [
    ("teacher-missing", {}, [*TEACHER, "--teacher", "{t}/no-teacher"], ["--teacher {t}/no-teacher: no such folder"]),
    ("teacher-is-a-file", {}, [*TEACHER, "--teacher", "{corpus}/train.txt"], ["--teacher {corpus}/train.txt: a file"]),
    ("teacher-weights-truncated", {}, [*TEACHER, "--teacher", "{truncated}"],
     ["{truncated}/model.safetensors: damaged weights"]),
    ("teacher-config-garbage", {}, [*TEACHER, "--teacher", "{badconfig}"], ["--teacher {badconfig}: cannot load"]),
    ("teacher-without-tokenizer", {}, [*TEACHER, "--teacher", "{notokenizer}"],
     ["--teacher {notokenizer}: its tokenizer has no vocabulary"]),
    ("teacher-not-a-model", {}, [*TEACHER, "--teacher", "{corpus}"], ["--teacher {corpus}: no config.json in the folder"]),
    ("student-config-missing", {}, [*TEACHER, "--student_config", "{t}/s.json"],
     ["--student_config {t}/s.json: cannot read a config JSON"]),
    ("student-config-garbage", {"s.json": '{"dim": '}, [*TEACHER, "--student_config", "{t}/s.json"],
     ["--student_config {t}/s.json: cannot read a config JSON"]),
    ("student-config-a-folder", {"s/x": ""}, [*TEACHER, "--student_config", "{t}/s"],
     ["--student_config {t}/s: a folder; expected a DistilBERT config JSON file"]),
    ("student-config-a-list", {"s.json": "[]"}, [*TEACHER, "--student_config", "{t}/s.json"],
     ["{t}/s.json: expected a DistilBERT config"]),
    ("student-config-of-bert", {"s.json": '{"model_type": "bert"}'}, [*TEACHER, "--student_config", "{t}/s.json"],
     ["{t}/s.json: expected a DistilBERT config (a JSON object, model_type distilbert if given)"]),
    ("student-config-unknown-key", {"s.json": '{"n_layer": 3}'}, [*TEACHER, "--student_config", "{t}/s.json"],
     ["{t}/s.json: not DistilBERT config keys: n_layer"]),
    ("student-vocab-contradicts", {"s.json": '{"vocab_size": 30522}'}, [*TEACHER, "--student_config", "{t}/s.json"],
     ["{t}/s.json: vocab_size 30522 contradicts the teacher's"]),
    ("student-pad-id-contradicts", {}, [*TEACHER, "--config_overrides", f"{STUDENT},pad_token_id=7"],
     ["pad_token_id 7 contradicts the teacher's 0"]),
    ("student-sizes-differ", {}, [*TEACHER, "--config_overrides", f"{STUDENT},dim=16"],
     ["the sizes differ (dim 16 vs hidden_size 32); use --student_init random"]),
    ("student-deeper-than-teacher", {}, [*TEACHER, "--config_overrides", f"{STUDENT},n_layers=3"],
     ["the student has 3 layers, the teacher 2: nothing to copy"]),
    ("student-more-positions", {}, [*TEACHER, "--config_overrides", "n_layers=1,dim=32,hidden_dim=64,n_heads=2,"
                                                                    "max_position_embeddings=512"],
     ["max_position_embeddings 512 > the 128 positions the teacher"]),
    ("config-overrides-bad-key", {}, [*TEACHER, "--config_overrides", "layers=2"],
     ["--config_overrides", "expected DistilBERT config values"]),
    ("student-tokenizer-other-vocab", {}, [*TEACHER, "--student_tokenizer", "{run}/tokenizer"],
     ["--student_tokenizer {run}/tokenizer: its vocabulary differs from the teacher's"]),
    ("student-tokenizer-missing", {}, [*TEACHER, "--student_tokenizer", "{t}/no-tokenizer"],
     ["--student_tokenizer {t}/no-tokenizer: no such folder"]),
    ("max-seq-length-above-teacher", {}, [*TEACHER, "--max_seq_length", "256"],
     ["--max_seq_length 256: the model holds at most 128 positions"]),
    ("max-seq-length-above-student", {}, [*TEACHER, "--max_seq_length", "100"],
     ["--max_seq_length 100 > the student's max_position_embeddings 64"]),
    ("max-seq-length-one", {}, [*TEACHER, "--max_seq_length", "1"], ["--max_seq_length 1: expected a block length"]),
    ("alpha-negative", {}, [*TEACHER, "--alpha_ce", "-1"], ["the --alpha_* weights must be >= 0, one of them > 0"]),
    ("alphas-all-zero", {}, [*TEACHER, "--alpha_ce", "0", "--alpha_mlm", "0", "--alpha_cos", "0"],
     ["the --alpha_* weights must be >= 0, one of them > 0"]),
    ("temperature-zero", {}, [*TEACHER, "--temperature", "0"], ["--temperature must be > 0"]),
    ("mlm-probability-one", {}, [*TEACHER, "--mlm_probability", "1"], ["--mlm_probability in (0, 1)"]),
    ("corpus-not-utf8", {"c.txt": LATIN1}, [*TEACHER, "--train_file", "{t}/c.txt"], ["{t}/c.txt:3: not UTF-8 text"]),
    ("corpus-empty", {"c.txt": "\n"}, [*TEACHER, "--train_file", "{t}/c.txt"], ["{t}/c.txt: no text"]),
    ("teacher-and-model-differ", {}, [*TEACHER, "--model_name_or_path", "{corpus}"],
     ["--teacher and --model_name_or_path name different models"]),
    ("no-teacher", {}, [*DATA], ["--teacher is required"]),
]
DISTILL_EARLY_STOP = {"teacher-and-model-differ", "no-teacher"}


def run_in(ctx, tmp_path, capfd, main, run, files, argv, needles, overwrite, after_setup):
    """A case with --output_dir the finished run, or (after_setup) a fresh folder (the finished run would be refused
    first) or a copy of the finished run."""
    if after_setup:
        out = tmp_path / "out"
        if overwrite:
            shutil.copytree(run, out)
    else:
        out = run
    run_case(capfd, main, ctx, tmp_path, files, argv, needles, run_dir=out if out.exists() else None,
             after=["--output_dir", out, "--report_to", "none", "--cache_dir", tmp_path / "cache",
                    *(["--overwrite_output_dir"] * overwrite)])


@pytest.mark.parametrize("name, files, argv, needles, overwrite",
                         params(MLM, lambda name, argv: name not in MLM_EARLY_STOP))
def test_bad_pretraining_input(ctx, tmp_path, capfd, name, files, argv, needles, overwrite):
    run_in(ctx, tmp_path, capfd, pretrain_mlm.main, ctx["run"], files, argv, needles, overwrite,
           name in MLM_AFTER_SETUP)


@pytest.mark.parametrize("name, files, argv, needles, overwrite",
                         params(DISTILL, lambda name, argv: name not in DISTILL_EARLY_STOP))
def test_bad_distillation_input(ctx, tmp_path, capfd, name, files, argv, needles, overwrite):
    run_in(ctx, tmp_path, capfd, distill.main, ctx["drun"], files, argv, needles, overwrite, False)


def test_tokenizer_only_never_replaces_a_runs_tokenizer(ctx, capfd):
    expect_error(capfd, pretrain_mlm.main, ["--train_file", f"{ctx['corpus']}/train.txt", "--train_tokenizer", "bpe",
                                            "--vocab_size", "400", "--tokenizer_only", "--output_dir", ctx["run"]],
                 f"{ctx['run']}/tokenizer already exists; pass --overwrite_output_dir", run_dir=ctx["run"])


def test_new_runs_tokenizer_waits_for_its_training(ctx, tmp_path, capfd):
    """--train_tokenizer --overwrite_output_dir over a finished run, failing once its tokenizer is trained (here: too
    few positions for the blocks): the old run's tokenizer/ stays as it was, and no staged tokenizer is left."""
    out = tmp_path / "run"
    shutil.copytree(ctx["run"], out)
    expect_error(capfd, pretrain_mlm.main, [*(fill(a, ctx, tmp_path) for a in NEW), "--train_tokenizer", "bpe",
                                            "--vocab_size", "400", "--config_overrides",
                                            f"{TINY},max_position_embeddings=8", "--output_dir", out,
                                            "--report_to", "none", "--overwrite_output_dir"],
                 "max_position_embeddings 8 < 32", run_dir=out / "tokenizer")
    assert not (out / "tokenizer.new").exists()


def test_resume_takes_the_staged_tokenizer(ctx, tmp_path):
    """A run killed after its first checkpoint, before its tokenizer was moved into place: resuming trains on with
    that tokenizer (not a new one), then moves it into tokenizer/."""
    out = tmp_path / "run"
    shutil.copytree(ctx["run"], out)
    (out / "tokenizer").rename(out / "tokenizer.new")
    before = snapshot(out / "tokenizer.new")
    pretrain_mlm.main([*(fill(a, ctx, tmp_path) for a in NEW), "--vocab_size", "500", "--max_train_steps", "3",
                       "--per_device_train_batch_size", "8", "--output_dir", str(out), "--report_to", "none",
                       "--cache_dir", str(tmp_path / "cache"), "--resume_from_checkpoint", "auto"])
    assert snapshot(out / "tokenizer") == before and not (out / "tokenizer.new").exists()
    state = (out / "last" / "training_state.json").read_text()
    assert '"completed_steps": 3' in state


def test_resume_drops_a_staged_tokenizer_that_is_not_its_own(ctx, tmp_path):
    """A replacing run that failed before its first checkpoint left its tokenizer staged and the earlier run in place:
    resuming that earlier run trains with its own checkpoint's tokenizer, keeps tokenizer/ and drops the stray one."""
    out = tmp_path / "run"
    shutil.copytree(ctx["run"], out)
    pretrain_mlm.main(["--train_file", f"{ctx['corpus']}/train.txt", "--train_tokenizer", "bpe", "--vocab_size", "400",
                       "--tokenizer_only", "--output_dir", str(tmp_path / "other")])
    shutil.copytree(tmp_path / "other" / "tokenizer", out / "tokenizer.new")
    before = snapshot(out / "tokenizer")
    pretrain_mlm.main([*(fill(a, ctx, tmp_path) for a in NEW), "--max_train_steps", "3", "--output_dir", str(out),
                       "--per_device_train_batch_size", "8", "--report_to", "none",
                       "--cache_dir", str(tmp_path / "cache"), "--resume_from_checkpoint", "auto"])
    assert snapshot(out / "tokenizer") == before and not (out / "tokenizer.new").exists()
