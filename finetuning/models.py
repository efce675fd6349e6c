"""Fine-tuning models: the encoder's layers plus a task head, as Keras functional models.

Weights keep the encoder's paths (so original checkpoints load through the one name table), and
each model lists its head's original variable names in `original_head_names`, so a fine-tuned
model exports to, and loads from, the original run_classifier / run_squad checkpoints.
"""
import keras

from bert_tf.encoder import INPUT_NAMES, BertLayers, as_config, encoder_inputs, select_inputs
from finetuning.crf import CrfTransitions
from finetuning.heads import ClassificationHead, SpanHead, TokenClassificationHead


class _FineTuningModel(keras.Model):
  """Shared plumbing: the inputs dict, get_config and from_config."""

  def call(self, inputs, training=None, mask=None):
    return super().call(select_inputs(self, inputs, INPUT_NAMES, training), training=training, mask=mask)

  @classmethod
  def from_config(cls, config):
    return cls(**config)


@keras.saving.register_keras_serializable(package="bert_tf")
class BertClassifier(_FineTuningModel):
  """BERT + run_classifier's head (dropout on the pooled output, one linear layer).

  Call args: dict of int32 `input_ids`, `input_mask`, `segment_ids` [batch_size, seq_length].
  Returns: dict with float32 `logits` [batch_size, num_classes] and the encoder's outputs.
  """
  original_head_names = (("output_weights", "classifier/output_weights"),
                         ("output_bias", "classifier/output_bias"))

  def __init__(self, config, num_classes, seq_length=None, dropout_rate=None, **kwargs):
    config = as_config(config)
    inputs = encoder_inputs(seq_length)
    # The head reads [CLS] only, so training and inference skip padding tokens
    # (bert_tf.layers.token_rows).
    bert_layers = BertLayers(config, skip_padding=True, skip_padding_at_inference=True)
    outputs = dict(bert_layers(inputs))
    rate = config.hidden_dropout_prob if dropout_rate is None else dropout_rate
    head = ClassificationHead(config.hidden_size, num_classes, rate, config.initializer_range,
                              name="classifier")
    outputs["logits"] = head(outputs["pooled_output"])
    kwargs.setdefault("name", "bert_classifier")
    super().__init__(inputs=inputs, outputs=outputs, **kwargs)
    self.config, self.num_classes, self.seq_length = config, num_classes, seq_length
    self.dropout_rate = dropout_rate

  def get_config(self):
    return {"config": self.config.to_dict(), "num_classes": self.num_classes,
            "seq_length": self.seq_length, "dropout_rate": self.dropout_rate, "name": self.name}


@keras.saving.register_keras_serializable(package="bert_tf")
class BertSpanLabeler(_FineTuningModel):
  """BERT + run_squad's head: start and end logits for every token.

  Returns: dict with float32 `start_logits`, `end_logits` [batch_size, seq_length] and the
  encoder's outputs. Inference skips padding tokens (bert_tf.layers.token_rows): the logits at
  padding positions are then the head's bias, which the SQuAD candidates never read
  (squad_postprocess and squad_serving rank real positions only).
  """
  original_head_names = (("cls/squad/output_weights", "cls/squad/output_weights"),
                         ("cls/squad/output_bias", "cls/squad/output_bias"))

  def __init__(self, config, seq_length=None, **kwargs):
    config = as_config(config)
    inputs = encoder_inputs(seq_length)
    bert_layers = BertLayers(config, skip_padding_at_inference=True)
    outputs = dict(bert_layers(inputs))
    with keras.name_scope("cls"):
      outputs.update(SpanHead(config.hidden_size, config.initializer_range,
                              name="squad")(outputs["sequence_output"]))
    kwargs.setdefault("name", "bert_span_labeler")
    super().__init__(inputs=inputs, outputs=outputs, **kwargs)
    self.config, self.seq_length = config, seq_length

  def get_config(self):
    return {"config": self.config.to_dict(), "seq_length": self.seq_length, "name": self.name}


@keras.saving.register_keras_serializable(package="bert_tf")
class BertTokenTagger(_FineTuningModel):
  """BERT + a per-token classifier (NER), optionally with CRF transition scores.

  Returns: dict with float32 `logits` [batch_size, seq_length, num_labels] (and `transitions`
  [batch_size, num_labels, num_labels], the CRF's, with use_crf) and the encoder's outputs.
  Inference skips padding tokens (bert_tf.layers.token_rows): the logits at padding positions
  are then the head's bias, which NER decoding never reads (it reads words' first pieces).
  """
  original_head_names = (("output_weights", "tagger/output_weights"),
                         ("output_bias", "tagger/output_bias"))

  def __init__(self, config, num_labels, use_crf=False, seq_length=None, **kwargs):
    config = as_config(config)
    inputs = encoder_inputs(seq_length)
    bert_layers = BertLayers(config, skip_padding_at_inference=True)
    outputs = dict(bert_layers(inputs))
    head = TokenClassificationHead(config.hidden_size, num_labels, config.hidden_dropout_prob,
                                   config.initializer_range, name="tagger")
    outputs["logits"] = head(outputs["sequence_output"])
    if use_crf:
      outputs["transitions"] = CrfTransitions(num_labels, name="crf")(outputs["logits"])
    kwargs.setdefault("name", "bert_token_tagger")
    super().__init__(inputs=inputs, outputs=outputs, **kwargs)
    self.config, self.num_labels, self.use_crf, self.seq_length = (config, num_labels, use_crf,
                                                                  seq_length)
    if use_crf:
      self.original_head_names = self.original_head_names + (("crf/transitions", "crf/transitions"),)

  def get_config(self):
    return {"config": self.config.to_dict(), "num_labels": self.num_labels,
            "use_crf": self.use_crf, "seq_length": self.seq_length, "name": self.name}
