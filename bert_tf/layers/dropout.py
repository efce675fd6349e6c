"""Dropout whose training-time mask comes from 16 random bits per element, applied fused."""
import keras
import tensorflow as tf

from bert_tf import fused


def replica_seed(seed):
  """`seed` (int32 Tensor [2]) folded with the replica's id when several replicas run the step,
  so each replica draws its own masks: Keras' seed generator keeps one state per replica, and
  every replica advances it alike, so without the fold every replica would drop the same
  elements of its own examples. Deterministic for a given seed and replica count."""
  context = tf.distribute.get_replica_context()
  if context is None or context.num_replicas_in_sync == 1:
    return seed
  replica = tf.cast(context.replica_id_in_sync_group, tf.int32)
  folded = tf.random.experimental.stateless_fold_in(seed, replica, alg="philox")
  return tf.cast(tf.math.floormod(folded, 2147483646), tf.int32)


@keras.saving.register_keras_serializable(package="bert_tf")
class Dropout(keras.layers.Dropout):
  """keras.layers.Dropout (same config, seed generator and inference behaviour) with a faster
  training path: the mask is drawn as 16 random bits per element (bert_tf.fused.random_bits16)
  and applied by an XLA-fused kernel both ways. The drop probability is `rate` to within 2^-17.
  Under a distribution strategy each replica draws its own masks (replica_seed).
  """

  def call(self, inputs, training=False):
    if not training or not self.rate or self.noise_shape is not None:
      return super().call(inputs, training=training)
    # A fresh seed per call from the layer's generator; stateless random ops want int32, Keras
    # keeps its generator state in int64.
    seed = tf.cast(tf.math.floormod(self.seed_generator.next(), 2147483646), tf.int32)
    return fused.dropout(inputs, self.rate, fused.random_bits16(tf.shape(inputs), replica_seed(seed)))
