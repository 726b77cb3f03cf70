"""pretrain_mlm.py: tokenizers of every kind (AutoTokenizer = the trainer's own ids, reproducible), config from
the tokenizer, BERT masking and whole-word boundaries, a from-scratch RoBERTa end to end (fill-mask, perplexity
reproducible), the tokenization cache, exact resume after SIGKILL, line-by-line / streaming / continued
pretraining, bad input, and WikiText-2 when ../shared/data is there.

Also the demo's corpus writer:  python tests/test_pretrain_mlm.py corpus DIR  (train.txt, valid.txt)."""
import hashlib
import json
import math
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, SHARED, run, run_killer
from safetensors.torch import load_file

import tiny

TINY = "num_hidden_layers=1,hidden_size=32,num_attention_heads=2,intermediate_size=64"
TEXT = "Café déjà vu in Zürich, 東京 は 日本 の 首都 です 🎉 ＡＢＣ ﬁne"
KNOWN = "Café déjà vu. 東京 は 日本 🎉 good game"  # every character occurs in the corpus
CLASSES = {"bpe": "RobertaTokenizer", "wordpiece": "BertTokenizer", "unigram": "TokenizersBackend",
           "sentencepiece": "TokenizersBackend"}


def write_corpus(folder, n=600):
    """Topic sentences (tests/tiny.py) plus accented, CJK and emoji lines, as plain text: train.txt, valid.txt."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.txt").write_text("\n".join(tiny.corpus(n, seed=0) + tiny.EXTRA * 4) + "\n", encoding="utf-8")
    (folder / "valid.txt").write_text("\n".join(tiny.corpus(n // 6, seed=1)) + "\n", encoding="utf-8")
    return folder


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("mlm-corpus"))


@pytest.fixture(scope="module")
def tokenizers(corpus, tmp_path_factory):
    """Every kind trained through main(--tokenizer_only), on a seeded sample of 500 of the 604 lines."""
    import pretrain_mlm

    out = tmp_path_factory.mktemp("tokenizers")
    for kind in CLASSES:
        pretrain_mlm.main(tokenizer_args(corpus, out / kind, kind))
    return out


def tokenizer_args(corpus, out, kind):
    return ["--train_file", str(corpus / "train.txt"), "--train_tokenizer", kind, "--vocab_size", "500",
            "--input_sentence_size", "500", "--tokenizer_only", "--output_dir", str(out)]


def mlm_args(corpus, out, *extra, tokenizer=None, cache=None):
    return ["--train_file", str(corpus / "train.txt"), "--validation_file", str(corpus / "valid.txt"),
            "--output_dir", str(out), "--report_to", "none", "--max_seq_length", "32", "--learning_rate", "2e-3",
            "--per_device_train_batch_size", "8", "--cache_dir", str(cache or out.parent / "cache"),
            *(["--tokenizer_name", str(tokenizer), "--model_type", "bert", "--config_overrides", TINY] if tokenizer else []),
            *map(str, extra)]


@pytest.mark.parametrize("kind", CLASSES)
def test_tokenizer_loads_through_autotokenizer_with_the_trainers_ids(tokenizers, kind):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    folder = tokenizers / kind / "tokenizer"
    tok = AutoTokenizer.from_pretrained(folder)
    assert type(tok).__name__ == CLASSES[kind] and len(tok) <= 500
    ids = tok(TEXT)["input_ids"]
    # the class rebuilds its pipeline from the vocabulary: it must be the one tokenizer.json holds
    assert ids == Tokenizer.from_file(str(folder / "tokenizer.json")).encode(TEXT).ids
    assert tok.unk_token_id not in tok(KNOWN)["input_ids"]  # accents, CJK and emoji seen in training are known
    masked = tok(f"good {tok.mask_token} game")["input_ids"]
    assert masked.count(tok.mask_token_id) == 1 and ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    if kind == "bpe":  # byte-level: lossless
        assert tok.decode(ids, skip_special_tokens=True) == TEXT
    if kind == "wordpiece":  # the pure-Python "slow" BERT tokenizer of transformers 5 on the saved vocab.txt
        from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy
        assert BertTokenizerLegacy(str(folder / "vocab.txt"), do_lower_case=False)(TEXT)["input_ids"] == ids
        assert tok.convert_ids_to_tokens(list(range(5))) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    if kind == "sentencepiece":  # the sentencepiece library itself, NFKC (ＡＢＣ, ﬁ) included
        import sentencepiece as spm
        sp = spm.SentencePieceProcessor(model_file=str(folder / "spiece.model"))
        assert sp.encode(TEXT) == ids[1:-1]
        known = tok(KNOWN)["input_ids"]  # (the library writes <unk> as ⁇, transformers skips it)
        assert sp.encode(KNOWN) == known[1:-1] and tok.decode(known, skip_special_tokens=True) == sp.decode(known[1:-1])


def test_tokenizer_training_is_reproducible_across_processes(corpus, tokenizers, tmp_path):
    """Hash seeds differ per process: tokenizers' WordPieceTrainer would give another vocabulary each time."""
    kinds = ("bpe", "wordpiece", "sentencepiece")
    runs = [tokenizer_args(corpus, tmp_path / kind, kind) for kind in kinds]
    done = run([sys.executable, "-c", "import json, sys, pretrain_mlm\nfor a in json.loads(sys.argv[1]): pretrain_mlm.main(a)",
                json.dumps(runs)])
    assert done.returncode == 0, done.stderr[-2000:]
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()
    for kind in kinds:
        assert digest(tmp_path / kind / "tokenizer" / "tokenizer.json") == digest(tokenizers / kind / "tokenizer" / "tokenizer.json")


def test_masking_rates_special_tokens_and_random_ids():
    from mlm import mask_tokens

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (64, 512), generator=g)
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = special[:, -1] = special[:, 400:] = True  # [CLS], [SEP] and padding
    masked, labels = mask_tokens(ids, special, None, mask_id=4, vocab_size=1000, probability=0.15, generator=g)
    chosen = labels != -100
    assert not chosen[special].any() and torch.equal(labels[chosen], ids[chosen]) and torch.equal(masked[~chosen], ids[~chosen])
    assert abs(chosen.sum() / (~special).sum() - 0.15) < 0.005
    share = lambda m: (m & chosen).sum().item() / chosen.sum().item()
    assert abs(share(masked == 4) - 0.8) < 0.02
    kept, changed = share(masked == ids), share((masked != ids) & (masked != 4))
    assert abs(kept - 0.1) < 0.02 and abs(changed - 0.1) < 0.02  # 10% random (a few draw the same id)
    assert masked.max() < 1000
    # the same generator state gives the same masks; a row with one maskable token still predicts it
    again = mask_tokens(ids, special, None, 4, 1000, 0.15, torch.Generator().manual_seed(5))
    assert torch.equal(again[1], mask_tokens(ids, special, None, 4, 1000, 0.15, torch.Generator().manual_seed(5))[1])
    short = torch.tensor([[2, 77, 3]])
    for seed in range(20):
        _, labels = mask_tokens(short, short != 77, None, 4, 1000, 0.15, torch.Generator().manual_seed(seed))
        assert labels.tolist() == [[-100, 77, -100]]


@pytest.mark.parametrize("kind", ["bpe", "wordpiece", "sentencepiece"])
def test_whole_word_masking_uses_word_ids_for_every_tokenizer(tokenizers, kind):
    from transformers import AutoTokenizer

    from mlm import encode, mask_tokens

    tok = AutoTokenizer.from_pretrained(tokenizers / kind / "tokenizer")
    line = "unbelievable reconstruction happened yesterday in parliament"
    row = encode({"text": [line]}, tok, 64, line_by_line=True, whole_word=True)
    ids, starts = torch.tensor(row["input_ids"]), torch.tensor(row["word_start"])
    assert starts.sum().item() == 6 + 2  # six words, plus [CLS] and [SEP] as words of their own
    assert (starts == 0).sum() >= 3  # words of several tokens: "##" would find none in BPE or SentencePiece
    special = torch.isin(ids, torch.tensor(tok.all_special_ids))
    word = starts.cumsum(1)[0]
    seen = set()
    for seed in range(100):
        _, labels = mask_tokens(ids, special, starts, tok.mask_token_id, len(tok), 0.3, torch.Generator().manual_seed(seed))
        chosen = (labels[0] != -100)
        for w in word.unique():
            assert chosen[word == w].all() or not chosen[word == w].any()  # all of a word's tokens, or none
        seen.add(tuple(chosen.tolist()))
    assert len(seen) > 20


@pytest.mark.parametrize("arch", ["bert", "roberta", "distilbert"])
def test_masked_only_head_gives_the_full_models_loss_gradients_and_eval_sums(arch, tmp_path):
    """masked_only projects just the labelled positions: same loss and gradients as the model's own loss on all
    logits; logits are the full model's at the labelled positions; masked_nll / masked_tokens are the per-example
    (summed loss, tokens) that add up to that loss; without labels the outputs are the plain model's."""
    import torch.nn.functional as F
    from transformers import AutoModelForMaskedLM

    from mlm import SUMS, masked_only
    folder = tiny.build_model(arch, tmp_path / arch, dropout=0.0)
    plain, hooked = (AutoModelForMaskedLM.from_pretrained(folder) for _ in range(2))
    masked_only(hooked)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, plain.config.vocab_size, (3, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[2, 6:] = 0
    labels = torch.where(torch.rand(ids.shape, generator=g) < 0.3, ids, -100)
    labels[2, 6:] = -100
    labels[:, 0] = ids[:, 0]  # every row has one
    losses = []
    for model in (plain, hooked):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-6) and losses[0] > 0
    for (name, a), b in zip(plain.named_parameters(), hooked.parameters()):
        assert a.grad is not None and torch.allclose(a.grad, b.grad, atol=1e-7), name
    # the projection really ran on the labelled positions only
    seen = []
    hooked.get_output_embeddings().register_forward_hook(lambda m, i, o: seen.append(o.shape))
    hooked.eval()
    with torch.no_grad():
        out = hooked(input_ids=ids, attention_mask=mask, labels=labels)
        full = plain.eval()(input_ids=ids, attention_mask=mask).logits
        bare = hooked(input_ids=ids, attention_mask=mask).logits  # no labels: the plain model's outputs
    assert torch.allclose(bare, full, atol=1e-5) and seen[-1] == full.shape
    seen.clear()
    with torch.no_grad():
        out = hooked(input_ids=ids, attention_mask=mask, labels=labels)
    nll = F.cross_entropy(full.transpose(1, 2), labels, reduction="none").sum(1)
    assert torch.allclose(out.logits, full[labels != -100], atol=1e-5)  # logits keep their meaning, where labelled
    assert torch.allclose(out[SUMS[0]], nll, atol=1e-5) and out.masked_nll.shape == (3,)
    assert out.masked_tokens.tolist() == (labels != -100).sum(1).float().tolist()
    assert out.loss.item() == pytest.approx((nll.sum() / (labels != -100).sum()).item(), rel=1e-6)
    n = int((labels != -100).sum())
    assert seen == [(min(n + -n % 64, labels.numel()), plain.config.vocab_size)]  # rows padded to a multiple of 64
    ids, mask, labels = (x.repeat(8, 4)[:23] for x in (ids, mask, labels))  # 828 positions
    with torch.no_grad():
        out = hooked(input_ids=ids, attention_mask=mask, labels=labels)
        full = plain(input_ids=ids, attention_mask=mask).logits
    n = int((labels != -100).sum())
    assert n % 64 and seen[-1] == (n + -n % 64, plain.config.vocab_size) and n + -n % 64 < labels.numel()
    nll = F.cross_entropy(full.transpose(1, 2), labels, reduction="none").sum(1)
    assert torch.allclose(out.masked_nll, nll, atol=1e-4) and out.logits.shape == (n, plain.config.vocab_size)


def test_new_config_matches_the_tokenizer(tokenizers, capsys):
    from transformers import AutoTokenizer

    import pretrain_mlm

    tok = AutoTokenizer.from_pretrained(tokenizers / "bpe" / "tokenizer")
    args = lambda *a: pretrain_mlm.parse_args(["--train_file", "x", "--tokenizer_name", "t", "--model_type", "roberta", *a])
    config = pretrain_mlm.new_config(args(), {}, "roberta", tok, 512)
    assert (config.vocab_size, config.pad_token_id, config.bos_token_id, config.eos_token_id) == (len(tok), 1, 0, 2)
    assert config.max_position_embeddings == 514  # positions start after the padding index
    values, model_type = pretrain_mlm.read_config(args("--config_name", str(ROOT / "configs" / "roberta-base.json")))
    config = pretrain_mlm.new_config(args(), values, model_type, tok, 128)
    assert model_type == "roberta" and config.max_position_embeddings == 514 and config.vocab_size == len(tok)
    bert = pretrain_mlm.new_config(args("--model_type", "bert", "--config_overrides", "num_hidden_layers=3"), {},
                                   "bert", tok, 128)
    assert bert.max_position_embeddings == 128 and bert.num_hidden_layers == 3
    with pytest.raises(SystemExit) as e:  # a config that says 512 positions cannot hold 512 RoBERTa tokens
        pretrain_mlm.new_config(args(), {"max_position_embeddings": 512}, "roberta", tok, 512)
    assert e.value.code == 2 and "max_position_embeddings 512 < 514" in capsys.readouterr().err


def test_roberta_from_scratch_end_to_end(corpus, tmp_path):
    from transformers import AutoTokenizer, pipeline

    import pretrain_mlm

    out = tmp_path / "roberta"
    best = pretrain_mlm.main(mlm_args(corpus, out, "--train_tokenizer", "bpe", "--vocab_size", "400", "--model_type",
                                      "roberta", "--config_overrides", TINY, "--max_train_steps", 8, "--eval_steps", 4,
                                      "--logging_steps", 2))
    config = json.loads((out / "best" / "config.json").read_text())
    tok = AutoTokenizer.from_pretrained(out / "best")
    assert config["architectures"] == ["RobertaForMaskedLM"] and config["vocab_size"] == len(tok) == 400
    assert config["max_position_embeddings"] == 34 and tok.model_max_length == 32
    log = json.loads((out / "log.json").read_text())
    evals = log["eval"]
    assert [r["step"] for r in evals] == [4, 8] and all(r["padding_share"] == 0 for r in log["train"])
    # best/ evaluated again after reloading: the same masks, so the same perplexity
    results = json.loads((out / "eval_results.json").read_text())
    assert results["perplexity"] == pytest.approx(best["perplexity"], rel=1e-6) == min(r["perplexity"] for r in evals)
    assert 50 < results["perplexity"] < 400 and results["masked_tokens"] > 0
    train = json.loads((out / "train_results.json").read_text())
    assert train["train_tokens"] == 8 * 8 * 32 and train["padding_share"] == 0 and train["tokens_per_second"] > 0
    filled = pipeline("fill-mask", model=str(out / "best"), device="cpu")(f"The team won the {tok.mask_token} today.")
    assert len(filled) == 5 and all(tok.mask_token not in f["sequence"] and f["token_str"] for f in filled)


def test_second_run_reads_the_tokenization_cache(corpus, tiny_bert, tmp_path, monkeypatch):
    import mlm
    import pretrain_mlm

    calls = []
    encode = mlm.encode
    monkeypatch.setattr(mlm, "encode", lambda *a, **k: calls.append(1) or encode(*a, **k))
    first = pretrain_mlm.main(mlm_args(corpus, tmp_path / "a", "--max_train_steps", 3, tokenizer=tiny_bert))
    assert calls
    calls.clear()
    second = pretrain_mlm.main(mlm_args(corpus, tmp_path / "b", "--max_train_steps", 3, "--per_device_eval_batch_size", 3,
                                        tokenizer=tiny_bert))
    assert calls == []  # nothing tokenized
    # other eval batches, same fixed masks: perplexity is over tokens, so it does not move
    assert second["perplexity"] == pytest.approx(first["perplexity"], rel=1e-5)
    # a damaged cache (garbage of the same size in the eval blocks) is found, rebuilt with a notice, same result
    arrow = next((tmp_path / "cache" / "pretrain_mlm").glob("*/eval/*.arrow"))
    arrow.write_bytes(bytes(arrow.stat().st_size))
    third = pretrain_mlm.main(mlm_args(corpus, tmp_path / "c", "--max_train_steps", 3, tokenizer=tiny_bert))
    assert calls and third["perplexity"] == pytest.approx(first["perplexity"], rel=1e-5)


def test_exact_resume_after_sigkill(corpus, tiny_bert, tmp_path):
    """Masks drawn at step time from the saved RNG, dropout on: the resumed run ends bitwise where the
    uninterrupted one does (a collator masking with the global RNG would not: the loader reads ahead)."""
    common = ["--max_train_steps", 6, "--eval_steps", 2, "--logging_steps", 1, "--whole_word_mask"]
    full, killed = tmp_path / "full", tmp_path / "killed"
    launch = lambda out, *extra, **env: run_killer(
        tmp_path, "pretrain_mlm", mlm_args(corpus, out, *common, *extra, tokenizer=tiny_bert), **env)
    assert launch(full).returncode == 0
    assert launch(killed, KILL_AT_STEP="5").returncode == -9
    assert json.loads((killed / "last" / "training_state.json").read_text())["completed_steps"] == 4
    resumed = launch(killed, "--resume_from_checkpoint", "auto")
    assert resumed.returncode == 0 and "resumed from" in resumed.stdout, resumed.stderr[-2000:]
    a, b = load_file(str(full / "last" / "model.safetensors")), load_file(str(killed / "last" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    logged = lambda out: {k: v for k, v in json.loads((out / "log.json").read_text()).items() if k != "seconds"}
    assert logged(full) == logged(killed)  # all but the wall times ("seconds")


def test_line_by_line_streaming_and_continued_pretraining(corpus, tiny_bert, tmp_path):
    import pretrain_mlm

    common = ["--model_name_or_path", tiny_bert, "--max_train_steps", 3, "--whole_word_mask"]
    lines = pretrain_mlm.main(mlm_args(corpus, tmp_path / "lines", *common, "--line_by_line"))
    assert 0.2 < lines["padding_share"] < 0.8 and math.isfinite(lines["perplexity"])
    streamed = pretrain_mlm.main(mlm_args(corpus, tmp_path / "stream", *common, "--streaming"))
    assert streamed["padding_share"] == 0 and streamed["train_tokens"] == 3 * 8 * 32
    state = json.loads((tmp_path / "stream" / "training_state.json").read_text())
    assert state["completed_steps"] == 3 and state["args"]["model_name_or_path"] == str(tiny_bert)


@pytest.mark.parametrize("case", ["empty", "one_block", "vocab", "config_type", "no_validation_stream"])
def test_bad_input_fails_with_one_clear_line(corpus, tiny_bert, tmp_path, capsys, case):
    import pretrain_mlm

    (tmp_path / "empty.txt").write_text("\n  \n")
    (tmp_path / "short.txt").write_text("a goal\n")
    argv, expected = {
        "empty": (["--train_file", str(tmp_path / "empty.txt"), "--train_tokenizer", "bpe", "--model_type", "roberta"],
                  "empty.txt: no text"),
        "one_block": (["--train_file", str(tmp_path / "short.txt"), "--tokenizer_name", str(tiny_bert), "--model_type",
                       "bert", "--validation_split_percentage", "0"], "short.txt: 2 tokens, fewer than one block of --max_seq_length 512"),
        "vocab": (["--train_file", str(corpus / "train.txt"), "--train_tokenizer", "bpe", "--vocab_size", "200",
                   "--model_type", "roberta"], "--vocab_size 200 leaves no room beside the 5 special tokens and the 256"),
        "config_type": (["--train_file", str(corpus / "train.txt"), "--tokenizer_name", str(tiny_bert), "--model_type",
                         "bert", "--config_name", str(ROOT / "configs" / "roberta-base.json")],
                        "model_type is 'roberta' but --model_type is 'bert'"),
        "no_validation_stream": (["--train_file", str(corpus / "train.txt"), "--model", str(tiny_bert), "--streaming",
                                  "--max_train_steps", "1"], "--streaming cannot sample a validation split"),
    }[case]
    with pytest.raises(SystemExit) as e:
        pretrain_mlm.main([*argv, "--output_dir", str(tmp_path / "out"), "--cache_dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]  # (the rest: progress bars)
    assert e.value.code == 2 and len(errors) == 1 and expected in errors[0] and "Traceback" not in err


WIKI = SHARED / "wikitext-2"


@pytest.mark.skipif(not WIKI.exists(), reason="needs ../shared/data/wikitext-2")
def test_wikitext2_tokenize_pack_and_train_a_few_steps(tmp_path):
    import pretrain_mlm

    test, valid = WIKI / "wiki.test.tokens", WIKI / "wiki.valid.tokens"
    lines = test.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4358 and sum(len(l.split()) + 1 for l in lines) == 245569  # the published counts
    out = tmp_path / "wiki"
    best = pretrain_mlm.main(["--train_file", str(test), "--validation_file", str(valid), "--train_tokenizer", "bpe",
                              "--vocab_size", "2000", "--input_sentence_size", "1000", "--model_type", "roberta",
                              "--config_overrides", TINY, "--max_seq_length", "128", "--max_train_steps", "2",
                              "--max_eval_samples", "16", "--output_dir", str(out), "--cache_dir", str(tmp_path / "c"),
                              "--report_to", "none", "--preprocessing_num_workers", "2"])
    assert math.isfinite(best["perplexity"]) and best["padding_share"] == 0
    from datasets import Dataset
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(out / "tokenizer")
    texts = [l.strip() for l in lines if l.strip()]
    assert len(texts) == 2891  # blank lines dropped
    tokens = sum(map(len, tok(texts, add_special_tokens=False)["input_ids"])) + len(texts)  # + one [SEP] per line
    blocks = sum(len(Dataset.from_file(str(p))) for p in (tmp_path / "c" / "pretrain_mlm").glob("*/train/*.arrow"))
    # two processes pack one half each (< 10,000 lines): only their last partial blocks are dropped
    assert tokens // 126 - 1 <= blocks <= tokens // 126


if __name__ == "__main__":  # the demo's corpus: python tests/test_pretrain_mlm.py corpus DIR
    if len(sys.argv) != 3 or sys.argv[1] != "corpus":
        sys.exit("usage: python tests/test_pretrain_mlm.py corpus DIR")
    print(write_corpus(sys.argv[2], n=3000))
