"""optim.AdamW's row-wise word-embedding updates against torch's dense fused AdamW: bit for bit, through clipping,
gradient accumulation, a state saved and loaded mid-run (a resume), the switch to a dense call once most rows were
touched, and a model that reads the matrix outside its embedding layer (caught, then dense; equal to rounding). And
the cases where the row-wise path must not be used: weight decay, a tied output layer (a masked LM)."""
import copy
import os
import types

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification

import optim
import train

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = types.SimpleNamespace(device=torch.device("cpu"), distributed_type=None)


def args(**kw):
    return types.SimpleNamespace(**{"weight_decay": 0.0, "mixed_precision": "no", "torch_compile": False,
                                    "embedding_updates": "rows", "learning_rate": 1e-2, "adam_beta1": 0.9,
                                    "adam_beta2": 0.999, "adam_epsilon": 1e-8, **kw})


def tiny_classifier(vocab=400, seed=0):
    torch.manual_seed(seed)
    return BertForSequenceClassification(BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2,
                                                    num_attention_heads=2, intermediate_size=64,
                                                    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))


def train_steps(model, optimizer, batches, accumulation=1, reload_at=None, make=None):
    """batches of (ids, labels): backward on each, clip and step every `accumulation`; at step reload_at the
    optimizer is rebuilt from its state_dict, as a resume does."""
    model.train()
    for i, (ids, labels) in enumerate(batches):
        (model(input_ids=ids, labels=labels).loss / accumulation).backward()
        if (i + 1) % accumulation:
            continue
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if reload_at is not None and (i + 1) // accumulation == reload_at:
            state = copy.deepcopy(optimizer.state_dict())
            optimizer = make(model)
            optimizer.load_state_dict(state)
    return model


def batches(n, vocab_used, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randint(0, vocab_used, (4, 10), generator=g), torch.randint(0, 2, (4,), generator=g))
            for _ in range(n)]


def same(a, b):
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    return all(torch.equal(pa[k], pb[k]) for k in pa)


@pytest.mark.parametrize("most", [1.0, optim.AdamW.MOST], ids=["rows", "rows-then-dense"])
@pytest.mark.parametrize("accumulation, reload_at", [(1, None), (2, None), (1, 3)], ids=["plain", "accumulated",
                                                                                     "resumed"])
def test_row_updates_are_dense_adamw_bit_for_bit(most, accumulation, reload_at, monkeypatch):
    monkeypatch.setattr(optim.AdamW, "MOST", most)
    dense_model, rows_model = tiny_classifier(), tiny_classifier()
    data = batches(12, 60)  # 60 of 400 rows: 15%, so "rows-then-dense" switches on the way
    make = lambda m: optim.adamw(args(), CPU, m)
    rows_opt = make(rows_model)
    assert any(g.get("rows") for g in rows_opt.param_groups)
    dense_opt = torch.optim.AdamW(dense_model.parameters(), lr=1e-2, weight_decay=0.0, fused=True)
    train_steps(dense_model, dense_opt, data, accumulation)
    train_steps(rows_model, rows_opt, data, accumulation, reload_at, make)
    assert same(dense_model, rows_model)
    untouched = rows_model.get_input_embeddings().weight[60:]
    assert torch.equal(untouched, tiny_classifier().get_input_embeddings().weight[60:])  # never moved


def test_a_model_reading_the_matrix_elsewhere_is_caught_and_goes_dense(capsys, monkeypatch):
    monkeypatch.setattr(optim.AdamW, "MOST", 1.0)

    class Peeking(BertForSequenceClassification):  # reads every row of the matrix outside the embedding layer
        def forward(self, **kw):
            out = super().forward(**kw)
            out.loss = out.loss + 1e-3 * self.get_input_embeddings().weight.pow(2).mean()
            return out
    torch.manual_seed(0)
    config = tiny_classifier().config
    a, b = Peeking(config), Peeking(config)
    b.load_state_dict(a.state_dict())
    data = batches(4, 50)
    rows_opt = optim.adamw(args(), CPU, a)
    train_steps(a, rows_opt, data)
    train_steps(b, torch.optim.AdamW(b.parameters(), lr=1e-2, weight_decay=0.0, fused=True), data)
    assert "dense AdamW from here on" in capsys.readouterr().out
    assert not any(g.get("rows") for g in rows_opt.param_groups) and not a.get_input_embeddings().sparse
    # the first step's gradient was summed by autograd from a sparse and a dense part: equal to rounding only
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    assert all(torch.allclose(pa[k], pb[k], rtol=0, atol=1e-4) for k in pa)  # Adam magnifies it in key biases


def test_rows_only_where_exact():
    assert optim.row_embedding(tiny_classifier(), CPU, args()) is not None
    assert optim.row_embedding(tiny_classifier(), CPU, args(weight_decay=0.01)) is None  # decay moves every row
    assert optim.row_embedding(tiny_classifier(), CPU, args(mixed_precision="fp16")) is None
    assert optim.row_embedding(tiny_classifier(), CPU, args(torch_compile=True)) is None
    mlm = BertForMaskedLM(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=64))
    assert optim.row_embedding(mlm, CPU, args()) is None  # the decoder shares the matrix: every row has a gradient


def test_a_training_run_is_the_same_with_rows_or_dense(tiny_bert, topic_data, tmp_path, monkeypatch):
    """core.train through train.py, accumulation 2 and two epochs: the same weights either way."""
    from safetensors.torch import load_file
    monkeypatch.setattr(optim.AdamW, "MOST", 1.0)
    runs = {}
    for mode in ("rows", "dense"):
        out = tmp_path / mode
        train.main(["--model_name_or_path", str(tiny_bert), "--train_file", str(topic_data / "train.jsonl"),
                    "--validation_file", str(topic_data / "valid.jsonl"), "--output_dir", str(out),
                    "--num_train_epochs", "2", "--gradient_accumulation_steps", "2", "--learning_rate", "3e-3",
                    "--per_device_train_batch_size", "4", "--report_to", "none", "--embedding_updates", mode])
        runs[mode] = load_file(str(out / "last" / "model.safetensors"))
    assert all(torch.equal(runs["rows"][k], runs["dense"][k]) for k in runs["rows"])


def test_the_word_embedding_gradient_is_one_kept_matrix():
    """One process: the layer's sparse gradient goes into one matrix kept for the run (no dense gradient allocated
    and zero-filled each step), zero again after each step."""
    model = tiny_classifier()
    optimizer = optim.adamw(args(), CPU, model)
    embedding = model.get_input_embeddings()
    kept = embedding.weight.grad
    assert embedding.sparse and kept is not None and not kept.any()
    train_steps(model, optimizer, batches(4, 60), accumulation=2)
    assert embedding.weight.grad is kept and not kept.any()


def resident_kb(tensor):
    """Resident memory (kB) of the mapping that holds the tensor's data, from /proc/self/smaps."""
    address, inside = tensor.data_ptr(), False
    with open("/proc/self/smaps") as f:
        for line in f:
            field = line.split()
            if "-" in field[0] and not field[0].endswith(":"):
                low, high = (int(x, 16) for x in field[0].split("-"))
                inside = low <= address < high
            elif inside and field[0] == "Rss:":
                return int(field[1])
    raise AssertionError("no mapping holds the tensor")


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="Linux's /proc/self/smaps")
def test_row_moments_take_memory_only_in_the_rows_written():
    """A 1.5 MB word-embedding matrix trained on ids under 60: its moments are resident in the pages of those rows
    only (the rest stays unmapped zeros), and the run is still dense AdamW bit for bit."""
    rows_model, dense_model = tiny_classifier(vocab=12000), tiny_classifier(vocab=12000)
    optimizer = optim.adamw(args(), CPU, rows_model)
    data = batches(4, 60)
    train_steps(rows_model, optimizer, data)
    train_steps(dense_model, torch.optim.AdamW(dense_model.parameters(), lr=1e-2, weight_decay=0.0, fused=True), data)
    assert same(rows_model, dense_model)
    state = optimizer.state[rows_model.get_input_embeddings().weight]
    written_kb = 60 * 32 * 4 / 1024
    for moment in ("exp_avg", "exp_avg_sq"):
        assert resident_kb(state[moment]) <= written_kb + 8 and state[moment].any()  # + the pages they straddle
