"""BertPretrainer: the encoder plus the original masked-LM and next-sentence heads."""
import keras

from bert_tf.encoder import (INPUT_NAMES, BertLayers, as_config, encoder_inputs,
                             select_inputs)
from bert_tf.layers.heads import MaskedLMHead, NextSentenceHead


@keras.saving.register_keras_serializable(package="bert_tf")
class BertPretrainer(keras.Model):
  """BERT with the pretraining heads of google-research/bert's run_pretraining.py.

  The encoder's weights have the same paths as in BertEncoder; the heads live under `cls/`
  (`cls/predictions/transform/dense/kernel`, `cls/predictions/output_bias`,
  `cls/seq_relationship/output_weights`), mirroring the original scopes.

  Call args:
    inputs: dict of int32 Tensors: `input_ids`, `input_mask`, `segment_ids` [batch_size,
      seq_length] and `masked_lm_positions` [batch_size, max_predictions_per_seq].
    training: enables dropout; outside XLA, training also skips padding tokens
      (bert_tf.layers.token_rows), so `sequence_output` and `encoder_outputs` are zero there.
  Constructor args besides the config and shapes:
    last_layer_at_predictions: True (the default) computes the last layer's queries, output
      projection and feed-forward at [CLS] and the masked positions only; False computes it for
      every token and the heads gather from it, as the original does (same outputs and
      gradients, tests/layers/test_token_rows.py; for comparisons such as benchmarks/bench_pretraining.py).
  Returns:
    dict with the encoder's `sequence_output`, `pooled_output`, `encoder_outputs`, plus
    `mlm_logits` float32 [batch_size, max_predictions_per_seq, vocab_size] and `nsp_logits`
    float32 [batch_size, 2].
  """

  def __init__(self, config, seq_length=None, max_predictions_per_seq=None,
               last_layer_at_predictions=True, **kwargs):
    config = as_config(config)
    inputs = encoder_inputs(seq_length)
    inputs["masked_lm_positions"] = keras.Input(shape=(max_predictions_per_seq,), dtype="int32",
                                                name="masked_lm_positions")
    # The heads read masked positions and [CLS] only, so training skips padding tokens, and the
    # last layer is computed at [CLS] and the masked positions alone (bert_tf.layers).
    bert_layers = BertLayers(config, skip_padding=True)
    positions = inputs["masked_lm_positions"]
    if last_layer_at_predictions:
      outputs = dict(bert_layers(inputs, output_positions=keras.ops.concatenate(
          [keras.ops.zeros_like(positions[:, :1]), positions], axis=1)))
      selected, mlm_positions = outputs.pop("selected_output")[:, 1:], None
    else:
      outputs = dict(bert_layers(inputs))
      selected, mlm_positions = outputs["sequence_output"], positions
    with keras.name_scope("cls"):
      mlm_head = MaskedLMHead(config.vocab_size, config.hidden_size, config.hidden_act,
                              config.initializer_range, name="predictions")
      nsp_head = NextSentenceHead(config.hidden_size, config.initializer_range,
                                  name="seq_relationship")
      outputs["mlm_logits"] = mlm_head(selected, mlm_positions,
                                       bert_layers.embeddings.word_embeddings)
      outputs["nsp_logits"] = nsp_head(outputs["pooled_output"])
    kwargs.setdefault("name", "bert_pretrainer")
    super().__init__(inputs=inputs, outputs=outputs, **kwargs)
    self.config = config
    self.seq_length = seq_length
    self.max_predictions_per_seq = max_predictions_per_seq
    self.last_layer_at_predictions = last_layer_at_predictions
    self.embeddings = bert_layers.embeddings
    self.masked_lm = mlm_head
    self.next_sentence = nsp_head

  @property
  def embedding_table(self):
    """The word-embedding variable [vocab_size, hidden_size], shared with the MLM output layer."""
    return self.embeddings.word_embeddings

  def call(self, inputs, training=None, mask=None):
    names = INPUT_NAMES + ("masked_lm_positions",)
    return super().call(select_inputs(self, inputs, names, training), training=training, mask=mask)

  def get_config(self):
    return {"config": self.config.to_dict(), "seq_length": self.seq_length,
            "max_predictions_per_seq": self.max_predictions_per_seq,
            "last_layer_at_predictions": self.last_layer_at_predictions, "name": self.name}

  @classmethod
  def from_config(cls, config):
    return cls(**config)

  @classmethod
  def from_pretrained(cls, model_dir, **kwargs):
    """Builds the pretrainer from a released model folder and loads its original checkpoint."""
    from bert_tf.checkpoint.original import from_pretrained  # pylint: disable=g-import-not-at-top
    return from_pretrained(cls, model_dir, **kwargs)
