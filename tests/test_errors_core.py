"""The shared flags (flags.add_args) and output folder: each bad value is one line, exit code 2, and a finished run
in --output_dir stays byte-identical, with --overwrite_output_dir too. Driven through train.py."""
import pytest
from bad_input import expect_error

import train

pytestmark = pytest.mark.usefixtures("one_thread")

CASES = {  # flags -> what the line must say
    "batch 0": (["--per_device_train_batch_size", 0], "--per_device_train_batch_size 0: expected a whole number"),
    "batch -1": (["--per_device_train_batch_size", -1], "--per_device_train_batch_size -1: expected"),
    "eval batch 0": (["--per_device_eval_batch_size", 0], "--per_device_eval_batch_size 0: expected"),
    "accumulation 0": (["--gradient_accumulation_steps", 0], "--gradient_accumulation_steps 0: expected"),
    "epochs 0": (["--num_train_epochs", 0], "--num_train_epochs 0: expected at least 1"),
    "negative lr": (["--learning_rate", -0.001], "--learning_rate -0.001: expected a finite number of at least 0"),
    "nan lr": (["--learning_rate", "nan"], "--learning_rate nan: expected"),
    "inf lr": (["--learning_rate", "inf"], "--learning_rate inf: expected"),
    "workers -1": (["--dataloader_num_workers", -1], "--dataloader_num_workers -1: expected"),
    "logging 0": (["--logging_steps", 0], "--logging_steps 0: expected"),
    "eval steps -1": (["--eval_steps", -1], "--eval_steps -1: expected"),
    "save steps -2": (["--save_steps", -2], "--save_steps -2: expected"),
    "warmup ratio 1.5": (["--warmup_ratio", 1.5], "--warmup_ratio 1.5: expected a share in [0, 1)"),
    "warmup steps -3": (["--warmup_steps", -3], "--num_warmup_steps -3: expected"),
    "beta1 1": (["--adam_beta1", 1.0], "--adam_beta1 1.0: expected a number in [0, 1)"),
    "epsilon 0": (["--adam_epsilon", 0], "--adam_epsilon 0.0: expected a positive number"),
    "clip -1": (["--max_grad_norm", -1], "--max_grad_norm -1.0: expected"),
    "patience -1": (["--early_stopping_patience", -1], "--early_stopping_patience -1: expected"),
    "fp16 on a CPU": (["--fp16"], "--mixed_precision fp16 needs a GPU"),
    "unknown tracker": (["--report_to", "tensorbored"], "--report_to tensorbored: expected tensorboard"),
    "no such checkpoint": (["--resume_from_checkpoint", "/nonexistent/last"], "/nonexistent/last: no such folder"),
    "unknown embedding updates": (["--embedding_updates", "sparse"], "argument --embedding_updates: invalid choice"),
}


@pytest.fixture(scope="module")
def finished(tiny_bert, topic_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "out"
    train.main(base(tiny_bert, topic_data, out) + ["--max_train_steps", "2"])
    return out


def base(model, data, out):
    return ["--model", str(model), "--train_file", str(data / "train.jsonl"), "--validation_file",
            str(data / "valid.jsonl"), "--output_dir", str(out), "--report_to", "none"]


@pytest.mark.parametrize("overwrite", [False, True], ids=["", "overwrite"])
@pytest.mark.parametrize("case", CASES)
def test_a_bad_shared_flag_is_one_line(tiny_bert, topic_data, finished, capfd, case, overwrite):
    flags, needle = CASES[case]
    argv = base(tiny_bert, topic_data, finished) + flags + (["--overwrite_output_dir"] if overwrite else [])
    expect_error(capfd, train.main, argv, needle, run_dir=finished)


def test_an_output_dir_that_is_a_file(tiny_bert, topic_data, tmp_path, capfd):
    path = tmp_path / "a-file"
    path.write_text("not a folder\n")
    expect_error(capfd, train.main, base(tiny_bert, topic_data, path), f"--output_dir {path}: a file is there")
    assert path.read_text() == "not a folder\n"
