"""LayerNorm: Keras LayerNormalization whose training-time forward and backward are XLA-fused."""
import keras
import tensorflow as tf

from bert_tf import fused


@keras.saving.register_keras_serializable(package="bert_tf")
class LayerNorm(keras.layers.LayerNormalization):
  """Keras LayerNormalization over the last axis: same weights, names and inference graph.

  In training, forward and backward are bert_tf.fused.layer_norm (one XLA kernel each way instead
  of a dozen element-wise and reduction kernels). Inference keeps Keras' ops so SavedModels need
  no XLA at serving time.
  """

  def call(self, inputs, training=None):
    if not training:
      return super().call(inputs)
    return tf.cast(fused.layer_norm(inputs, self.gamma, self.beta, self.epsilon),
                   self.compute_dtype)
