from transformers import AutoConfig, PreTrainedConfig


class ModelConfig(PreTrainedConfig):
    """The encoder's config (nested, so out/best needs nothing else to be rebuilt) and the task's settings.
    Labels live in the standard id2label/label2id; add your task's settings as keyword arguments here."""

    model_type = "template-multilabel"
    sub_configs = {"encoder": AutoConfig}

    def __init__(self, encoder=None, encoder_name_or_path=None, classifier_dropout=0.1, threshold=0.5, **kwargs):
        if isinstance(encoder, dict):
            encoder = AutoConfig.for_model(**encoder)
        self.encoder = encoder
        self.encoder_name_or_path = encoder_name_or_path  # where the encoder's pretrained weights came from
        self.classifier_dropout = classifier_dropout
        self.threshold = threshold  # a label is predicted when its probability exceeds this
        super().__init__(**kwargs)

    @classmethod
    def from_encoder(cls, name_or_path, labels, encoder=None, **kwargs):
        """A config for a new model on top of a pretrained encoder (a hub name or a local folder); encoder: a config
        other than the encoder's own (train.py's --config_name)."""
        return cls(encoder=encoder or AutoConfig.from_pretrained(name_or_path), encoder_name_or_path=str(name_or_path),
                   id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)},
                   problem_type="multi_label_classification", **kwargs)
