"""distill.py: student initialisation from BERT and RoBERTa teachers (copied tensors, same function at full
depth), the recipe's loss terms on hand-made numbers, masking counts and frequency smoothing, an end-to-end run
(loss terms logged, DistilBERT folders that load, fill masks and fine-tune with glue.py), a RoBERTa teacher,
random init + projection for a wider teacher with exact resume after SIGKILL, and bad input."""
import json
import math
from argparse import Namespace
from fractions import Fraction

import pytest
import torch
from conftest import run_killer
from safetensors.torch import load_file

import distill
import tiny

STUDENT = "dim=32,hidden_dim=64,n_heads=2,max_position_embeddings=64"  # the tiny teachers' sizes


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("distil-corpus")
    (folder / "train.txt").write_text("\n".join(tiny.corpus(200, seed=0)) + "\n", encoding="utf-8")
    (folder / "valid.txt").write_text("\n".join(tiny.corpus(40, seed=1)) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    """Tiny BERT (4 layers) and RoBERTa (2 layers) masked LMs, hidden 32, no dropout (exact comparisons)."""
    root = tmp_path_factory.mktemp("teachers")
    return {"bert": tiny.build_model("bert", root / "bert", layers=4, dropout=0.0),
            "roberta": tiny.build_model("roberta", root / "roberta", layers=2, dropout=0.0)}


def distill_args(teacher, corpus, out, *extra):
    return ["--teacher", str(teacher), "--train_file", str(corpus / "train.txt"),
            "--validation_file", str(corpus / "valid.txt"), "--output_dir", str(out), "--report_to", "none",
            "--max_seq_length", "32", "--per_device_train_batch_size", "8", "--learning_rate", "3e-3",
            "--cache_dir", str(out.parent / "cache"), *map(str, extra)]


def folded_positions(t):
    """A BERT teacher's first 64 position vectors plus token type 0's, from its state dict t."""
    return t["bert.embeddings.position_embeddings.weight"][:64] + t["bert.embeddings.token_type_embeddings.weight"][0]


def build_student(teacher_dir, overrides):
    """(teacher, student, {student name: teacher name}) as main() builds them, with the teacher's weights jittered
    so that position and token-type vectors are not near zero."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer, DistilBertForMaskedLM

    teacher, tokenizer = AutoModelForMaskedLM.from_pretrained(teacher_dir), AutoTokenizer.from_pretrained(teacher_dir)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in teacher.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    args = distill.parse_args(["--teacher", str(teacher_dir), "--train_file", "x", "--config_overrides", overrides])
    offset = 2 if teacher.config.model_type == "roberta" else 0  # after RoBERTa's padding index 1
    config = distill.student_config(args, teacher, tokenizer, teacher.config.max_position_embeddings - offset)
    student = DistilBertForMaskedLM(config)
    return teacher.eval(), student.eval(), distill.init_from_teacher(student, teacher, offset), tokenizer


def test_layer_map_spreads_the_teacher_layers():
    assert distill.layer_map(6, 12) == [0, 2, 4, 7, 9, 11]  # DistilBERT's
    assert distill.layer_map(3, 6) == [0, 3, 5] and distill.layer_map(2, 12) == [0, 11]
    assert distill.layer_map(4, 4) == [0, 1, 2, 3] and distill.layer_map(1, 4) == [0]


def test_init_copies_the_teacher_tensors(teachers):
    teacher, student, names, _ = build_student(teachers["bert"], f"n_layers=2,{STUDENT}")
    t = teacher.state_dict()
    layer = "distilbert.transformer.layer"
    assert names[f"{layer}.1.attention.q_lin.weight"] == "bert.encoder.layer.3.attention.self.query.weight"
    assert names[f"{layer}.0.ffn.lin2.bias"] == "bert.encoder.layer.0.output.dense.bias"
    assert len(names) == 3 + 2 * 16 + 5  # embeddings + 16 tensors per layer + head (tied decoder)
    for mine, theirs in names.items():
        assert torch.equal(student.get_parameter(mine), t[theirs]), mine
    assert torch.equal(student.vocab_projector.weight, t["bert.embeddings.word_embeddings.weight"])  # tied
    # no token types in DistilBERT: type 0's vector is folded into the positions
    assert torch.equal(student.distilbert.embeddings.position_embeddings.weight, folded_positions(t))


@pytest.mark.parametrize("arch", ["bert", "roberta"])
def test_full_depth_student_computes_the_teacher(teachers, arch):
    """All layers copied: the DistilBERT is the same function (RoBERTa: position ids offset by padding_idx + 1)."""
    layers = 4 if arch == "bert" else 2
    overrides = f"n_layers={layers},{STUDENT},dropout=0,attention_dropout=0"
    teacher, student, _, tokenizer = build_student(teachers[arch], overrides)
    batch = tokenizer(["the team won the match today", "a recipe"], padding=True, return_tensors="pt",
                      return_token_type_ids=False)
    with torch.no_grad():
        a, b = teacher(**batch, output_hidden_states=True), student(**batch, output_hidden_states=True)
    real = batch["attention_mask"].bool()
    assert (~real).any()  # padding in the batch
    assert torch.allclose(a.logits[real], b.logits[real], atol=1e-5)
    assert torch.allclose(a.hidden_states[-1][real], b.hidden_states[-1][real], atol=1e-5)


def loss_args(**kw):
    return Namespace(**{"alpha_ce": 0.0, "alpha_mlm": 0.0, "alpha_cos": 0.0, "alpha_mse": 0.0, "temperature": 2.0,
                        "restrict_ce_to_mask": False, **kw})


def test_loss_terms_on_hand_made_numbers():
    # one real token, two ids: teacher logits (ln 3, 0), student (0, 0); a padded position that must not count
    s_logits = torch.tensor([[[0.0, 0.0], [9.0, -9.0]]])
    t_logits = torch.tensor([[[math.log(3), 0.0], [-9.0, 9.0]]])
    real, labels = torch.tensor([[True, False]]), torch.tensor([[1, -100]])
    s_hidden, t_hidden = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]]), torch.tensor([[[1.0, 1.0], [-1.0, 0.0]]])
    loss, terms = distill.distill_loss(s_logits, t_logits, s_hidden, t_hidden, real, labels,
                                       loss_args(alpha_ce=5.0, alpha_mlm=2.0, alpha_cos=1.0, alpha_mse=0.5))
    p = [3 ** 0.5 / (3 ** 0.5 + 1), 1 / (3 ** 0.5 + 1)]  # teacher at T = 2: softmax(ln 3 / 2, 0)
    kl = sum(q * math.log(q / 0.5) for q in p) * 4  # x T^2
    assert terms["loss_ce"].item() == pytest.approx(kl, rel=1e-5)
    assert terms["loss_mlm"].item() == pytest.approx(math.log(2), rel=1e-5)  # label 1 at p = 1/2
    assert terms["loss_cos"].item() == pytest.approx(1 - 1 / 2 ** 0.5, rel=1e-5)
    assert terms["loss_mse"].item() == pytest.approx(math.log(3) ** 2, rel=1e-5)  # summed over the vocabulary
    assert loss.item() == pytest.approx(5 * kl + 2 * math.log(2) + 1 - 1 / 2 ** 0.5 + 0.5 * math.log(3) ** 2, rel=1e-5)
    # the student equal to the teacher: KL, MSE and cosine vanish; only the weights > 0 are computed
    loss, terms = distill.distill_loss(t_logits, t_logits, t_hidden * 3, t_hidden, real, labels,
                                       loss_args(alpha_ce=5.0, alpha_cos=1.0, alpha_mse=1.0))
    assert set(terms) == {"loss_ce", "loss_cos", "loss_mse"} and abs(loss.item()) < 1e-6
    # restricted to masked tokens: none masked here, so no KL (and no NaN)
    _, terms = distill.distill_loss(s_logits, t_logits, None, None, real, torch.full_like(labels, -100),
                                    loss_args(alpha_ce=1.0, alpha_mlm=1.0, restrict_ce_to_mask=True))
    assert terms["loss_ce"].item() == 0 and terms["loss_mlm"].item() == 0


def test_masking_counts_and_frequency_smoothing():
    from datasets import Dataset

    # token 5 is common (90 of 100 tokens), token 6 rare; ids 0-4 are special
    rows = [[2] + [5] * 10 + [3] for _ in range(9)] + [[2] + [6] * 10 + [3]]
    weights = distill.token_weights(Dataset.from_dict({"input_ids": rows}), 10, torch.arange(5), 0.7)
    assert weights[:5].tolist() == [0] * 5 and weights[5].item() == pytest.approx(90 ** -0.7)
    assert weights[6].item() == pytest.approx(10 ** -0.7) and weights[7].item() == 1.0  # unseen: count 1
    ids = torch.tensor([r + [0] * (14 - len(r)) for r in rows])  # + padding
    maskable = (ids >= 5)
    replace = torch.arange(5, 10)
    torch.manual_seed(0)
    rare, common, kinds = 0, 0, torch.zeros(3)
    for _ in range(200):
        masked, labels = distill.mask_batch(ids, maskable, weights, 4, replace, 0.15)
        chosen = labels != -100
        assert chosen.sum() == 15 and not chosen[~maskable].any()  # exactly ceil(15% of 100), never special/pad
        assert torch.equal(labels[chosen], ids[chosen]) and torch.equal(masked[~chosen], ids[~chosen])
        assert masked.max() < 10 and not ((masked < 4) & chosen).any()  # random ids are never special
        rare += (chosen & (ids == 6)).sum().item()
        common += (chosen & (ids == 5)).sum().item()
        kinds += torch.stack([(masked == 4)[chosen].sum(), (masked == ids)[chosen].sum(), torch.tensor(0)])
    # rare tokens are 10% of the text, but count^-0.7 makes each 4.7x as likely per draw: 28% of the masks
    assert 0.25 < rare / (rare + common) < 0.32
    assert abs(kinds[0] / 3000 - 0.8) < 0.03 and abs(kinds[1] / 3000 - 0.1 - 0.02) < 0.03  # (+ random = same id)
    for n, expected in ((7, 2), (20, 3), (1, 1)):  # ceil, computed exactly
        first_n = torch.arange(ids.numel()).view_as(ids) < n
        masked, labels = distill.mask_batch(ids, first_n, torch.ones(10), 4, replace, 0.15)
        assert (labels != -100).sum() == expected == math.ceil(Fraction(15, 100) * n)
    # smoothing 0: uniform over tokens, the rare one drawn about as often as its share
    flat = distill.token_weights(Dataset.from_dict({"input_ids": rows}), 10, torch.arange(5), 0.0)
    rare = sum((distill.mask_batch(ids, maskable, flat, 4, replace, 0.15)[1] == 6).sum().item() for _ in range(200))
    assert 0.05 < rare / 3000 < 0.15


@pytest.fixture(scope="module")
def bert_run(teachers, corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("bert-run") / "out"
    best = distill.main(distill_args(teachers["bert"], corpus, out, "--config_overrides", f"n_layers=2,{STUDENT}",
                                     "--max_train_steps", 6, "--eval_steps", 3, "--logging_steps", 1,
                                     "--report_to", "tensorboard", "--alpha_mse", 0.5))
    return out, best


def test_end_to_end_logs_each_term_and_writes_distilbert_folders(bert_run, teachers):
    from transformers import AutoModelForMaskedLM, AutoTokenizer, pipeline

    out, best = bert_run
    train = json.loads((out / "log.json").read_text())["train"]
    assert len(train) == 6 and all({"loss_ce", "loss_mlm", "loss_cos", "loss_mse"} <= set(r) for r in train)
    r = train[0]  # the total is the weighted sum of the logged terms (a one-step window)
    total = 5 * r["loss_ce"] + 2 * r["loss_mlm"] + r["loss_cos"] + 0.5 * r["loss_mse"]
    assert r["loss"] == pytest.approx(total, rel=1e-4)
    assert train[0]["lr"] == pytest.approx(3e-3)  # 5% warmup of 6 steps: one step
    events = b"".join(p.read_bytes() for p in (out / "runs").iterdir())
    assert all(f"train/{k}".encode() in events for k in ("loss_ce", "loss_mlm", "loss_cos", "loss_mse"))
    config = json.loads((out / "best" / "config.json").read_text())
    teacher_config = json.loads((teachers["bert"] / "config.json").read_text())
    assert config["architectures"] == ["DistilBertForMaskedLM"] and config["n_layers"] == 2
    assert config["vocab_size"] == teacher_config["vocab_size"] and config["sinusoidal_pos_embds"] is True
    tok = AutoTokenizer.from_pretrained(out / "best")
    assert tok.get_vocab() == AutoTokenizer.from_pretrained(teachers["bert"]).get_vocab()
    assert "token_type_ids" not in tok("a goal") and tok.model_max_length == 64
    model = AutoModelForMaskedLM.from_pretrained(out / "best")
    assert type(model).__name__ == "DistilBertForMaskedLM"
    # sinusoidal_pos_embds: positions stay fixed, as the recipe's (here the teacher's, + token type 0's vector)
    t = load_file(str(teachers["bert"] / "model.safetensors"))
    embeddings = model.distilbert.embeddings
    assert torch.equal(embeddings.position_embeddings.weight, folded_positions(t))
    assert not torch.equal(embeddings.word_embeddings.weight, t["bert.embeddings.word_embeddings.weight"])  # trained
    # the teacher stays out of last/: its weights are the student's alone, and so is the optimizer's state
    assert sorted(p.name for p in (out / "last").rglob("*.safetensors")) == ["model.safetensors",
                                                                             "optimizer.safetensors"]
    moments = load_file(str(out / "last" / "state" / "optimizer.safetensors"))
    assert len({k.split(".")[0] for k in moments}) <= len(list(model.parameters()))
    results = json.loads((out / "eval_results.json").read_text())
    assert results["perplexity"] == pytest.approx(best["perplexity"], rel=1e-5)  # best/ reloaded: same number
    assert results["teacher_parameters"] > results["parameters"] > 0 and results["teacher_perplexity"] > 1
    filled = pipeline("fill-mask", model=str(out / "best"), device="cpu")(f"the team won the {tok.mask_token} today")
    assert len(filled) == 5 and all(f["token_str"] for f in filled)


def test_student_fine_tunes_with_glue(bert_run, tmp_path):
    import fixtures_glue
    import glue

    data = fixtures_glue.write_glue(tmp_path / "glue", tasks=("sst2",), sizes=(64, 24, 8))
    out = tmp_path / "sst2"
    glue.main(["--task_name", "sst2", "--data_dir", str(data / "SST-2"), "--model", str(bert_run[0] / "best"),
               "--do_train", "--do_eval", "--max_train_steps", "4", "--output_dir", str(out), "--report_to", "none"])
    results = json.loads((out / "eval_results.json").read_text())
    assert set(results) == {"loss", "accuracy"} and 0 <= results["accuracy"] <= 1
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["architectures"] == ["DistilBertForSequenceClassification"]


def test_roberta_teacher(teachers, corpus, tmp_path):
    out = tmp_path / "out"
    best = distill.main(distill_args(teachers["roberta"], corpus, out, "--config_overrides", f"n_layers=1,{STUDENT}",
                                     "--max_train_steps", 3, "--line_by_line", "--group_by_length"))
    config = json.loads((out / "best" / "config.json").read_text())
    assert (config["pad_token_id"], config["bos_token_id"], config["eos_token_id"]) == (1, 0, 2)
    assert config["max_position_embeddings"] == 64 and math.isfinite(best["perplexity"])


def test_random_init_with_projection_resumes_exactly(tiny_bert, corpus, tmp_path):
    """A teacher of width 32, a student of 16: the cosine goes through a learned projection, which last/ keeps
    beside the student (the resumed run ends bitwise where the uninterrupted one does) and never inside the student's
    model.safetensors. Dropout on."""
    common = ["--student_init", "random",
              "--config_overrides", "n_layers=1,dim=16,hidden_dim=32,n_heads=2,max_position_embeddings=64",
              "--max_train_steps", 6, "--eval_steps", 2, "--logging_steps", 1]
    full, killed = tmp_path / "full", tmp_path / "killed"
    launch = lambda out, *extra, **env: run_killer(tmp_path, "distill",
                                                   distill_args(tiny_bert, corpus, out, *common, *extra), **env)
    done = launch(full)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "random init, projection 16 -> 32" in done.stdout
    assert launch(killed, KILL_AT_STEP="5").returncode == -9
    assert json.loads((killed / "last" / "training_state.json").read_text())["completed_steps"] == 4
    resumed = launch(killed, "--resume_from_checkpoint", "auto")
    assert resumed.returncode == 0 and "resumed from" in resumed.stdout, resumed.stderr[-2000:]
    weights = lambda d: {**load_file(str(d / "last" / "model.safetensors")),
                         **load_file(str(d / "last" / distill.PROJECTION))}
    a, b = weights(full), weights(killed)
    assert a["projection.weight"].shape == (32, 16) and a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    logged = lambda out: {k: v for k, v in json.loads((out / "log.json").read_text()).items() if k != "seconds"}
    assert logged(full) == logged(killed)  # all but the wall times ("seconds")
    saved = load_file(str(full / "best" / "model.safetensors"))
    assert not any("projection" in k for k in saved)
    assert saved["distilbert.embeddings.word_embeddings.weight"].shape[1] == 16


@pytest.mark.parametrize("case", ["student_tokenizer", "vocab_size", "sizes", "positions", "unknown_key", "teacher"])
def test_bad_input_fails_with_one_clear_line(teachers, corpus, tmp_path, capsys, case):
    bad = tmp_path / "student.json"
    bad.write_text(json.dumps({"vocab_size": 500} if case == "vocab_size" else {"n_layer": 3}))
    argv, expected = {
        "student_tokenizer": (["--student_tokenizer", teachers["roberta"], "--config_overrides", STUDENT],
                              "its vocabulary differs from the teacher's"),
        "vocab_size": (["--student_config", bad, "--config_overrides", STUDENT],
                       "vocab_size 500 contradicts the teacher's"),
        "sizes": (["--config_overrides", "dim=16,hidden_dim=64,n_heads=2,max_position_embeddings=64"],
                  "the sizes differ (dim 16 vs hidden_size 32); use --student_init random"),
        "positions": (["--config_overrides", "dim=32,hidden_dim=64,n_heads=2"],
                      "max_position_embeddings 512 > the 128 positions the teacher"),
        "unknown_key": (["--student_config", bad], "not DistilBERT config keys: n_layer"),
        "teacher": (["--teacher", corpus], "no config.json in the folder"),
    }[case]
    with pytest.raises(SystemExit) as e:
        distill.main(distill_args(teachers["bert"], corpus, tmp_path / "out", *argv))
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert e.value.code == 2 and len(errors) == 1 and expected in errors[0] and "Traceback" not in err
