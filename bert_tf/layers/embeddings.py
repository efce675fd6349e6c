"""Word + segment + position embeddings, LayerNorm and dropout (the original `bert/embeddings`)."""
import keras
import tensorflow as tf

from bert_tf.layers.dropout import Dropout
from bert_tf.layers.initializers import truncated_normal
from bert_tf.layers.normalization import LayerNorm

LAYER_NORM_EPSILON = 1e-12  # Google's modeling.layer_norm uses 1e-12, not Keras' default 1e-3.


@keras.saving.register_keras_serializable(package="bert_tf")
class BertEmbeddings(keras.layers.Layer):
  """Sums word, token-type (segment) and absolute position embeddings.

  The three tables are weights of this layer with the original names, so their paths read
  `embeddings/word_embeddings`, `embeddings/token_type_embeddings`,
  `embeddings/position_embeddings`, `embeddings/LayerNorm/{gamma,beta}`.

  Call args:
    input_ids: int32 Tensor [batch_size, seq_length].
    segment_ids: int32 Tensor [batch_size, seq_length].
  Returns:
    float Tensor [batch_size, seq_length, hidden_size].
  """

  def __init__(self, vocab_size, hidden_size, max_position_embeddings, type_vocab_size,
               initializer_range=0.02, dropout_rate=0.1, **kwargs):
    super().__init__(**kwargs)
    self.vocab_size = vocab_size
    self.hidden_size = hidden_size
    self.max_position_embeddings = max_position_embeddings
    self.type_vocab_size = type_vocab_size
    self.initializer_range = initializer_range
    self.dropout_rate = dropout_rate
    self.layer_norm = LayerNorm(epsilon=LAYER_NORM_EPSILON, name="LayerNorm")
    self.dropout = Dropout(dropout_rate)

  def build(self, input_shape=None):
    init = truncated_normal(self.initializer_range)
    self.word_embeddings = self.add_weight(
        name="word_embeddings", shape=(self.vocab_size, self.hidden_size), initializer=init)
    self.token_type_embeddings = self.add_weight(
        name="token_type_embeddings", shape=(self.type_vocab_size, self.hidden_size), initializer=init)
    self.position_embeddings = self.add_weight(
        name="position_embeddings", shape=(self.max_position_embeddings, self.hidden_size),
        initializer=init)
    self.layer_norm.build((None, None, self.hidden_size))
    self.built = True

  def call(self, input_ids, segment_ids, training=None):
    static_length = input_ids.shape[1]
    if static_length is not None and static_length > self.max_position_embeddings:
      raise ValueError(
          f"sequences of length {static_length} exceed max_position_embeddings="
          f"{self.max_position_embeddings} of bert_config.json: use max_seq_length <= "
          f"{self.max_position_embeddings}")
    seq_length = tf.shape(input_ids)[1]
    # Gathers, not one-hot matmuls: on TPU the original used one-hot for speed, XLA now lowers
    # gathers well on every backend.
    words = tf.gather(self.word_embeddings, input_ids)
    segments = tf.gather(self.token_type_embeddings, segment_ids)
    positions = self.position_embeddings[tf.newaxis, :seq_length]
    embeddings = tf.cast(words + segments + positions, self.compute_dtype)
    return self.dropout(self.layer_norm(embeddings, training=training), training=training)

  def compute_output_shape(self, input_shape):
    return tuple(input_shape) + (self.hidden_size,)

  def get_config(self):
    config = super().get_config()
    config.update(vocab_size=self.vocab_size, hidden_size=self.hidden_size,
                  max_position_embeddings=self.max_position_embeddings,
                  type_vocab_size=self.type_vocab_size, initializer_range=self.initializer_range,
                  dropout_rate=self.dropout_rate)
    return config
