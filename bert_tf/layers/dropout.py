"""Dropout whose training-time mask comes from 16 random bits per element, applied fused."""
import keras
import tensorflow as tf

from bert_tf import fused


@keras.saving.register_keras_serializable(package="bert_tf")
class Dropout(keras.layers.Dropout):
  """keras.layers.Dropout (same config, seed generator and inference behaviour) with a faster
  training path: the mask is drawn as 16 random bits per element (bert_tf.fused.random_bits16)
  and applied by an XLA-fused kernel both ways. The drop probability is `rate` to within 2^-17.

  `random_bits(shape)` also serves layers that fuse the dropout into a larger kernel.
  """

  def random_bits(self, shape):
    """uint16 Tensor `shape` of fresh random bits (a new seed from the layer's generator)."""
    seed = self.seed_generator.next()
    # Stateless random ops want an int32 seed; Keras keeps its generator state in int64.
    seed = tf.cast(tf.math.floormod(seed, 2147483646), tf.int32)
    return fused.random_bits16(shape, seed)

  def call(self, inputs, training=False):
    if not training or not self.rate or self.noise_shape is not None:
      return super().call(inputs, training=training)
    return fused.dropout(inputs, self.rate, self.random_bits(tf.shape(inputs)))
