import inspect

from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .configuration import ModelConfig


def _no_pooler(encoder_config):
    """{"add_pooling_layer": False} for an encoder class that has a pooler to leave out (BERT, RoBERTa), {} for one
    that has none and refuses the argument (DistilBERT): the head pools the first token's hidden state either way."""
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    try:
        encoder_class = MODEL_MAPPING[type(encoder_config)]
    except KeyError:  # a model type AutoModel resolves some other way: let it decide, without the argument
        return {}
    accepted = inspect.signature(encoder_class.__init__).parameters
    return {"add_pooling_layer": False} if "add_pooling_layer" in accepted else {}


class Model(PreTrainedModel):
    """Encoder + dropout + linear head over the first token's last hidden state (any encoder AutoModel loads: BERT,
    RoBERTa, DistilBERT, ...; no pooler is used); one independent sigmoid per label."""

    config_class = ModelConfig
    base_model_prefix = "encoder"
    supports_gradient_checkpointing = True

    def __init__(self, config):
        super().__init__(config)
        self.encoder = AutoModel.from_config(config.encoder, **_no_pooler(config.encoder))
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.encoder.hidden_size, config.num_labels)
        self.post_init()

    @classmethod
    def from_encoder(cls, config):
        """A new model whose encoder starts from config.encoder_name_or_path's pretrained weights."""
        model = cls(config)
        model.encoder = AutoModel.from_pretrained(config.encoder_name_or_path, config=config.encoder,
                                                  **_no_pooler(config.encoder))
        return model

    def _init_weights(self, module):
        if module is self.classifier:
            nn.init.normal_(module.weight, std=self.config.encoder.initializer_range)
            nn.init.zeros_(module.bias)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state
        logits = self.classifier(self.dropout(hidden[:, 0]))
        loss = None
        if labels is not None:
            loss = nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
        return SequenceClassifierOutput(loss=loss, logits=logits)
