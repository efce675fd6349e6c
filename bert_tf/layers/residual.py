"""Dense projection, dropout, residual add and LayerNorm: the original's `output` scopes."""
import keras

from bert_tf.layers.embeddings import LAYER_NORM_EPSILON
from bert_tf.layers.dropout import Dropout
from bert_tf.layers.initializers import truncated_normal
from bert_tf.layers.normalization import LayerNorm


@keras.saving.register_keras_serializable(package="bert_tf")
class DenseResidualNorm(keras.layers.Layer):
  """LayerNorm(residual + dropout(dense(x))), with sub-layers named `dense` and `LayerNorm`.

  Serves both `attention/output` and the feed-forward `output` of a transformer block.

  Call args:
    inputs: float Tensor [batch_size, seq_length, input_width].
    residual: float Tensor [batch_size, seq_length, units].
  Returns:
    float Tensor [batch_size, seq_length, units].
  """

  def __init__(self, units, initializer_range=0.02, dropout_rate=0.1, **kwargs):
    super().__init__(**kwargs)
    self.units = units
    self.initializer_range = initializer_range
    self.dropout_rate = dropout_rate
    self.dense = keras.layers.Dense(units, kernel_initializer=truncated_normal(initializer_range),
                                    name="dense")
    self.dropout = Dropout(dropout_rate)
    self.layer_norm = LayerNorm(epsilon=LAYER_NORM_EPSILON, name="LayerNorm")

  def build(self, inputs_shape, residual_shape=None):
    self.dense.build(inputs_shape)
    self.layer_norm.build(tuple(inputs_shape[:-1]) + (self.units,))
    self.built = True

  def call(self, inputs, residual, training=None):
    return self.layer_norm(self.dropout(self.dense(inputs), training=training) + residual,
                           training=training)

  def compute_output_shape(self, inputs_shape, residual_shape=None):
    return tuple(inputs_shape[:-1]) + (self.units,)

  def get_config(self):
    config = super().get_config()
    config.update(units=self.units, initializer_range=self.initializer_range,
                  dropout_rate=self.dropout_rate)
    return config
