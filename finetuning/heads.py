"""Task heads on top of the encoder, keeping the original run_classifier / run_squad layouts."""
import keras
import tensorflow as tf

from bert_tf.layers.dropout import Dropout
from bert_tf.layers.heads import NextSentenceHead


@keras.saving.register_keras_serializable(package="bert_tf")
class ClassificationHead(NextSentenceHead):
  """run_classifier's output layer: dropout on the pooled output, then
  logits = pooled @ output_weights^T + output_bias, with output_weights [num_classes, hidden]
  as in the original checkpoint (the same layout as the next-sentence head, hence the parent).

  Call args: pooled_output float [batch_size, hidden_size]; training enables dropout.
  Returns: float32 logits [batch_size, num_classes] (one column for regression).
  """

  def __init__(self, hidden_size, num_classes, dropout_rate=0.1, initializer_range=0.02,
               **kwargs):
    super().__init__(hidden_size, initializer_range, num_classes, **kwargs)
    self.dropout_rate = dropout_rate
    self.dropout = Dropout(dropout_rate)  # per-replica masks under a strategy

  def call(self, pooled_output, training=None):
    return super().call(self.dropout(pooled_output, training=training))

  def get_config(self):
    config = super().get_config()
    config.update(dropout_rate=self.dropout_rate)
    return config


@keras.saving.register_keras_serializable(package="bert_tf")
class SpanHead(keras.layers.Layer):
  """run_squad's output layer: one [2, hidden] projection of every token to start/end logits
  (original variables `cls/squad/output_weights` [2, hidden] and `cls/squad/output_bias` [2]).

  Call args: sequence_output float [batch_size, seq_length, hidden_size].
  Returns: dict of float32 `start_logits`, `end_logits` [batch_size, seq_length].
  """

  def __init__(self, hidden_size, initializer_range=0.02, **kwargs):
    super().__init__(**kwargs)
    self.hidden_size = hidden_size
    self.initializer_range = initializer_range

  def build(self, input_shape=None):
    self.output_weights = self.add_weight(
        name="output_weights", shape=(2, self.hidden_size),
        initializer=keras.initializers.TruncatedNormal(stddev=self.initializer_range))
    self.output_bias = self.add_weight(name="output_bias", shape=(2,), initializer="zeros")
    self.built = True

  def call(self, sequence_output):
    weights = tf.cast(self.output_weights, sequence_output.dtype)
    logits = tf.cast(tf.einsum("bsh,kh->bsk", sequence_output, weights), tf.float32)
    logits += tf.cast(self.output_bias, tf.float32)
    return {"start_logits": logits[..., 0], "end_logits": logits[..., 1]}

  def compute_output_shape(self, input_shape):
    return {"start_logits": input_shape[:2], "end_logits": input_shape[:2]}

  def get_config(self):
    config = super().get_config()
    config.update(hidden_size=self.hidden_size, initializer_range=self.initializer_range)
    return config


@keras.saving.register_keras_serializable(package="bert_tf")
class TokenClassificationHead(ClassificationHead):
  """The classifier's output layer applied to every token (BERT-NER scripts' layout:
  `output_weights` [num_labels, hidden], `output_bias`), after dropout.

  Call args: sequence_output float [batch_size, seq_length, hidden_size].
  Returns: float32 logits [batch_size, seq_length, num_labels].
  """

  def call(self, sequence_output, training=None):
    hidden = self.dropout(sequence_output, training=training)
    weights = tf.cast(self.output_weights, hidden.dtype)
    logits = tf.einsum("bsh,kh->bsk", hidden, weights)
    return tf.cast(logits, tf.float32) + tf.cast(self.output_bias, tf.float32)

  def compute_output_shape(self, input_shape):
    return tuple(input_shape[:2]) + (self.num_classes,)
