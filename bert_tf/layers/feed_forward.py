"""The expanding half of the feed-forward network (the original `intermediate` scope)."""
import keras

from bert_tf.layers.activations import dense_activation, get_activation
from bert_tf.layers.initializers import truncated_normal


@keras.saving.register_keras_serializable(package="bert_tf")
class Intermediate(keras.layers.Layer):
  """activation(dense(x)) to `intermediate_size`, with the Dense named `dense`.

  The contracting half is a DenseResidualNorm named `output`, as in the original.

  Call args:
    hidden_states: float Tensor [batch_size, seq_length, hidden_size].
  Returns:
    float Tensor [batch_size, seq_length, intermediate_size].
  """

  def __init__(self, intermediate_size, activation="gelu", initializer_range=0.02, **kwargs):
    super().__init__(**kwargs)
    self.intermediate_size = intermediate_size
    self.activation = activation
    self.initializer_range = initializer_range
    get_activation(activation)  # fails early on an unknown name
    self.dense = keras.layers.Dense(intermediate_size,
                                    kernel_initializer=truncated_normal(initializer_range),
                                    name="dense")

  def build(self, input_shape):
    self.dense.build(input_shape)
    self.built = True

  def call(self, hidden_states, training=None):
    return dense_activation(self.dense, self.activation, hidden_states, training)

  def compute_output_shape(self, input_shape):
    return tuple(input_shape[:-1]) + (self.intermediate_size,)

  def get_config(self):
    config = super().get_config()
    config.update(intermediate_size=self.intermediate_size, activation=self.activation,
                  initializer_range=self.initializer_range)
    return config
