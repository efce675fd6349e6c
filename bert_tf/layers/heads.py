"""The original output heads: pooler, masked-LM predictions, next-sentence classifier."""
import keras
import tensorflow as tf

from bert_tf.layers.activations import dense_activation, get_activation
from bert_tf.layers.embeddings import LAYER_NORM_EPSILON
from bert_tf.layers.initializers import truncated_normal
from bert_tf.layers.normalization import LayerNorm


@keras.saving.register_keras_serializable(package="bert_tf")
class Pooler(keras.layers.Layer):
  """tanh(dense(first token)), the original `bert/pooler`.

  Call args: sequence_output float [batch_size, seq_length, hidden_size].
  Returns: float [batch_size, hidden_size].
  """

  def __init__(self, hidden_size, initializer_range=0.02, **kwargs):
    super().__init__(**kwargs)
    self.hidden_size = hidden_size
    self.initializer_range = initializer_range
    self.dense = keras.layers.Dense(hidden_size, activation="tanh",
                                    kernel_initializer=truncated_normal(initializer_range),
                                    name="dense")

  def build(self, input_shape):
    self.dense.build((input_shape[0], input_shape[-1]))
    self.built = True

  def call(self, sequence_output):
    return self.dense(sequence_output[:, 0, :])

  def compute_output_shape(self, input_shape):
    return (input_shape[0], self.hidden_size)

  def get_config(self):
    config = super().get_config()
    config.update(hidden_size=self.hidden_size, initializer_range=self.initializer_range)
    return config


@keras.saving.register_keras_serializable(package="bert_tf")
class MaskedLMHead(keras.layers.Layer):
  """The original `cls/predictions`: transform (dense + activation + LayerNorm), then logits
  over the vocabulary with the output projection tied to the word embeddings, plus a bias.

  The word-embedding table is passed in at call time (not owned), so the tie needs no shared
  variable bookkeeping and the head serializes from its plain arguments.

  Call args:
    sequence_output: float Tensor [batch_size, seq_length, hidden_size].
    masked_lm_positions: int32 Tensor [batch_size, num_predictions], or None when
      sequence_output already holds just those positions [batch_size, num_predictions, hidden].
    embedding_table: float Tensor [vocab_size, hidden_size].
  Returns:
    float32 Tensor [batch_size, num_predictions, vocab_size] of logits.
  """

  def __init__(self, vocab_size, hidden_size, activation="gelu", initializer_range=0.02, **kwargs):
    super().__init__(**kwargs)
    self.vocab_size = vocab_size
    self.hidden_size = hidden_size
    self.activation = activation
    self.initializer_range = initializer_range
    # The activation is applied in `call` (bert_tf.fused's in training), not by the Dense.
    get_activation(activation)  # fails early on an unknown name
    self.transform_dense = keras.layers.Dense(
        hidden_size, kernel_initializer=truncated_normal(initializer_range), name="dense")
    self.transform_layer_norm = LayerNorm(epsilon=LAYER_NORM_EPSILON, name="LayerNorm")

  def build(self, sequence_output_shape, masked_lm_positions_shape=None, embedding_table_shape=None):
    # Weight paths read `transform/dense/...` and `transform/LayerNorm/...` as in the original.
    with keras.name_scope("transform"):
      self.transform_dense.build((None, None, self.hidden_size))
      self.transform_layer_norm.build((None, None, self.hidden_size))
    self.output_bias = self.add_weight(name="output_bias", shape=(self.vocab_size,),
                                       initializer="zeros")
    self.built = True

  def call(self, sequence_output, masked_lm_positions, embedding_table, training=None):
    # masked_lm_positions None: sequence_output is already [batch_size, num_predictions, hidden].
    gathered = (sequence_output if masked_lm_positions is None else
                tf.gather(sequence_output, masked_lm_positions, batch_dims=1))
    hidden = self.transform_layer_norm(
        dense_activation(self.transform_dense, self.activation, gathered, training), training=training)
    table = tf.cast(embedding_table, hidden.dtype)
    # One 2-D matmul over all predictions: a batched [batch, predictions, hidden] x [vocab,
    # hidden]^T matmul broadcasts the table, and its gradient then builds a [batch, vocab,
    # hidden] tensor before summing it (2.1x slower forward + backward at batch 32, vocab 30522).
    shape = tf.shape(hidden)
    logits = tf.matmul(tf.reshape(hidden, [-1, self.hidden_size]), table, transpose_b=True)
    logits = tf.reshape(logits, tf.concat([shape[:2], [self.vocab_size]], axis=0))
    # Logits in float32 so the softmax cross-entropy over the vocabulary is stable under mixed
    # precision.
    return tf.cast(logits, tf.float32) + tf.cast(self.output_bias, tf.float32)

  def compute_output_shape(self, sequence_output_shape, masked_lm_positions_shape=None,
                           embedding_table_shape=None):
    num_predictions = (masked_lm_positions_shape[1] if masked_lm_positions_shape else
                       sequence_output_shape[1])
    return (sequence_output_shape[0], num_predictions, self.vocab_size)

  def get_config(self):
    config = super().get_config()
    config.update(vocab_size=self.vocab_size, hidden_size=self.hidden_size,
                  activation=self.activation, initializer_range=self.initializer_range)
    return config


@keras.saving.register_keras_serializable(package="bert_tf")
class NextSentenceHead(keras.layers.Layer):
  """The original `cls/seq_relationship`: logits = pooled @ output_weights^T + output_bias.

  `output_weights` keeps the original [2, hidden_size] layout (transposed relative to a Dense
  kernel), so checkpoints load without a transpose.

  Call args: pooled_output float [batch_size, hidden_size].
  Returns: float32 [batch_size, 2].
  """

  def __init__(self, hidden_size, initializer_range=0.02, num_classes=2, **kwargs):
    super().__init__(**kwargs)
    self.hidden_size = hidden_size
    self.initializer_range = initializer_range
    self.num_classes = num_classes

  def build(self, input_shape=None):
    self.output_weights = self.add_weight(
        name="output_weights", shape=(self.num_classes, self.hidden_size),
        initializer=truncated_normal(self.initializer_range))
    self.output_bias = self.add_weight(name="output_bias", shape=(self.num_classes,),
                                       initializer="zeros")
    self.built = True

  def call(self, pooled_output):
    weights = tf.cast(self.output_weights, pooled_output.dtype)
    logits = tf.matmul(pooled_output, weights, transpose_b=True)
    return tf.cast(logits, tf.float32) + tf.cast(self.output_bias, tf.float32)

  def compute_output_shape(self, input_shape):
    return (input_shape[0], self.num_classes)

  def get_config(self):
    config = super().get_config()
    config.update(hidden_size=self.hidden_size, initializer_range=self.initializer_range,
                  num_classes=self.num_classes)
    return config
