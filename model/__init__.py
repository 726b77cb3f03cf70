"""The template for a custom task: copy this folder and train.py, then change the three files.

configuration.py  ModelConfig: the encoder's config and the task's settings; all a Model needs to be built
modeling.py       Model: encoder + head; forward(..., labels=None) returns a ModelOutput with loss
dataset.py        generate_dataset(path, tokenizer, ...) -> torch Dataset, and the Collator that pads batches

The modules import each other relatively: import them from a script beside this folder (train.py),
not by running them directly.
"""
from .configuration import ModelConfig
from .dataset import Collator, generate_dataset, read_labels
from .modeling import Model

__all__ = ["ModelConfig", "Model", "Collator", "generate_dataset", "read_labels"]
