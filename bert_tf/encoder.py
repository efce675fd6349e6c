"""BertEncoder: the BERT transformer encoder as a Keras functional model."""
import keras
import numpy as np
import tensorflow as tf

from bert_tf.config import BertConfig
from bert_tf.errors import UserInputError
from bert_tf.layers.attention import attention_bias
from bert_tf.layers.embeddings import BertEmbeddings
from bert_tf.layers.heads import Pooler
from bert_tf.layers.transformer_block import TransformerStack

INPUT_NAMES = ("input_ids", "input_mask", "segment_ids")


def as_config(config):
  if isinstance(config, BertConfig):
    return config
  if isinstance(config, dict):
    return BertConfig.from_dict(config)
  raise TypeError(f"config must be a BertConfig or a dict of bert_config.json fields, got {type(config).__name__}")


def select_inputs(model, inputs, names, training=None):
  """The named features of `inputs`, so a full feature dict (masked_lm_ids, labels, ...) can be
  passed as is: a functional model fed a dict with extra keys would otherwise match tensors by
  position and silently misroute them."""
  if not isinstance(inputs, dict):
    raise TypeError(f"{model.name} takes a dict with keys {', '.join(names)}; got {type(inputs).__name__}")
  absent = [name for name in names if name not in inputs]
  if absent:
    raise KeyError(f"{model.name} inputs lack {', '.join(absent)}; expected keys {', '.join(names)}")
  selected = {name: inputs[name] for name in names}
  if getattr(model, "config", None) is not None:
    selected = check_id_ranges(model.config, selected, training)
  return selected


def check_id_ranges(config, inputs, training=None):
  """Refuses input_ids outside [0, vocab_size) and segment_ids outside [0, type_vocab_size).

  An out-of-range gather raises on CPU but silently returns zeros on GPUs (and clamps on TPUs).
  Concrete values (numpy, eager tensors) are checked here at once; in a traced function that is
  not training, an assertion op gates the ids (XLA ignores assertions). The training step is
  left without it: its records were checked when they were written and read.

  Returns:
    the inputs, with traced ids behind their assertions.
  """
  inputs = dict(inputs)
  limits = {"input_ids": (config.vocab_size, "vocab_size"),
            "segment_ids": (config.type_vocab_size, "type_vocab_size")}
  for name, (limit, field) in limits.items():
    value = inputs.get(name)
    if value is None or isinstance(value, keras.KerasTensor):
      continue
    if not tf.is_tensor(value) or tf.executing_eagerly():
      array = np.asarray(value)
      if array.size and (array.max() >= limit or array.min() < 0):
        bad = array.max() if array.max() >= limit else array.min()
        raise UserInputError(f"{name} holds {bad}; expected ids in [0, {limit}): {field}="
                             f"{limit} in the model's config (wrong vocabulary or config?)")
    elif not training:
      checks = [tf.debugging.assert_less(value, tf.cast(limit, value.dtype),
                                         message=f"{name} must be < {field}={limit}"),
                tf.debugging.assert_non_negative(value, message=f"{name} must be >= 0")]
      with tf.control_dependencies(checks):
        inputs[name] = tf.identity(value)
  return inputs


def encoder_inputs(seq_length=None):
  """Symbolic int32 inputs named as the original features, each [batch_size, seq_length]."""
  return {name: keras.Input(shape=(seq_length,), dtype="int32", name=name) for name in INPUT_NAMES}


class BertLayers:
  """The layers of one BERT encoder, built from a BertConfig and applied to symbolic inputs.

  Shared by BertEncoder and BertPretrainer so the pretrainer holds the very same layers (and so
  the same weight paths) without nesting a model inside a model. `skip_padding`: in training,
  run the transformer on real tokens only (bert_tf.layers.token_rows); for models that read
  real positions alone, since padding positions then come out as zeros.
  `skip_padding_at_inference`: the same at inference (the batch also cut to its real extent).
  """

  def __init__(self, config, skip_padding=False, skip_padding_at_inference=False):
    c = config
    self.embeddings = BertEmbeddings(
        c.vocab_size, c.hidden_size, c.max_position_embeddings, c.type_vocab_size,
        c.initializer_range, c.hidden_dropout_prob, name="embeddings")
    self.encoder = TransformerStack(
        c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size,
        c.hidden_act, c.initializer_range, c.hidden_dropout_prob, c.attention_probs_dropout_prob,
        skip_padding=skip_padding, skip_padding_at_inference=skip_padding_at_inference,
        name="encoder")
    self.pooler = Pooler(c.hidden_size, c.initializer_range, name="pooler")

  def __call__(self, inputs, output_positions=None):
    """Symbolic outputs for `inputs`; with `output_positions` (int32 [batch_size, positions],
    [CLS] = 0 first) also `selected_output`, the last layer at those positions computed for them
    alone, from which the pooler then reads [CLS]."""
    embeddings = self.embeddings(inputs["input_ids"], inputs["segment_ids"])
    bias = keras.layers.Lambda(attention_bias, name="attention_bias")(inputs["input_mask"])
    outputs = {}
    if output_positions is None:
      encoder_outputs = self.encoder(embeddings, bias, input_mask=inputs["input_mask"])
      first_token_source = encoder_outputs[-1]
    else:
      *encoder_outputs, outputs["selected_output"] = self.encoder(
          embeddings, bias, input_mask=inputs["input_mask"], output_positions=output_positions)
      first_token_source = outputs["selected_output"]
    outputs.update(sequence_output=encoder_outputs[-1],
                   pooled_output=self.pooler(first_token_source), encoder_outputs=encoder_outputs)
    return outputs


@keras.saving.register_keras_serializable(package="bert_tf")
class BertEncoder(keras.Model):
  """BERT encoder built from a BertConfig.

  Weight paths follow the original variable scopes without the leading `bert/`
  (`embeddings/word_embeddings`, `encoder/layer_3/attention/self/query/kernel`,
  `pooler/dense/bias`), see bert_tf.checkpoint.name_map.

  Call args:
    inputs: dict of int32 Tensors [batch_size, seq_length]: `input_ids`, `input_mask` (1 for real
      tokens, 0 for padding), `segment_ids`.
    training: enables dropout.
  Returns:
    dict with `sequence_output` float [batch_size, seq_length, hidden_size], `pooled_output`
    float [batch_size, hidden_size] and `encoder_outputs`, a list with one
    [batch_size, seq_length, hidden_size] Tensor per layer.
  """

  def __init__(self, config, seq_length=None, **kwargs):
    config = as_config(config)
    inputs = encoder_inputs(seq_length)
    bert_layers = BertLayers(config)
    outputs = bert_layers(inputs)
    kwargs.setdefault("name", "bert")
    super().__init__(inputs=inputs, outputs=outputs, **kwargs)
    self.config = config
    self.seq_length = seq_length
    self.embeddings = bert_layers.embeddings

  @property
  def embedding_table(self):
    """The word-embedding variable [vocab_size, hidden_size]."""
    return self.embeddings.word_embeddings

  def call(self, inputs, training=None, mask=None):
    return super().call(select_inputs(self, inputs, INPUT_NAMES, training), training=training,
                        mask=mask)

  def get_config(self):
    return {"config": self.config.to_dict(), "seq_length": self.seq_length, "name": self.name}

  @classmethod
  def from_config(cls, config):
    return cls(**config)

  @classmethod
  def from_pretrained(cls, model_dir, **kwargs):
    """Builds the encoder from a released model folder and loads its original checkpoint.

    Args:
      model_dir: folder with bert_config.json and bert_model.ckpt.{index,data-*} (Google's and the
        Chinese BERT-wwm family's layout) or a Hugging Face folder (config.json,
        model.safetensors, vocab.txt).
    """
    from bert_tf.checkpoint.original import from_pretrained  # pylint: disable=g-import-not-at-top
    return from_pretrained(cls, model_dir, **kwargs)


def attention_maps(encoder, inputs):
  """Every layer's attention probabilities for `inputs` (inference, no dropout).

  Recomputed from each block's input (the embeddings, then the previous block's output) with the
  block's own query/key weights, so the encoder itself carries no extra outputs.

  Returns:
    float32 Tensor [num_layers, batch_size, num_heads, seq_length, seq_length].
  """
  inputs = select_inputs(encoder, inputs, INPUT_NAMES)
  outputs = encoder(inputs, training=False)
  bias = attention_bias(inputs["input_mask"])
  stack = encoder.get_layer("encoder")
  block_inputs = [encoder.embeddings(inputs["input_ids"], inputs["segment_ids"], training=False)]
  block_inputs += list(outputs["encoder_outputs"][:-1])
  return tf.stack([tf.cast(block.attention.self_attention.attention_probs(x, bias), tf.float32)
                   for block, x in zip(stack.blocks, block_inputs)])
