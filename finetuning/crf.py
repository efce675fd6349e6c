"""A linear-chain CRF over label scores: log-likelihood (forward algorithm) and Viterbi decoding,
in TensorFlow with static shapes (tf.scan over time), so it trains under XLA and on TPUs.

Sequences are left-aligned in [batch, time] with `lengths`; steps past a length leave the
forward scores unchanged and pass the tag through in decoding. tensorflow-addons had this and is
discontinued; Keras has none, hence these few lines (tested against enumerating every path).
"""
import keras
import tensorflow as tf


def _time_major(x):
  return tf.transpose(x, [1, 0] + list(range(2, len(x.shape))))


def crf_log_likelihood(potentials, tags, lengths, transitions):
  """log p(tags | potentials) per sequence.

  Args:
    potentials: float [batch, time, num_tags] unary scores.
    tags: int [batch, time] gold tags (ignored past the length).
    lengths: int [batch] sequence lengths (>= 1).
    transitions: float [num_tags, num_tags], score of tag i followed by tag j.
  Returns:
    float [batch].
  """
  potentials = tf.cast(potentials, tf.float32)
  transitions = tf.cast(transitions, tf.float32)
  tags = tf.cast(tags, tf.int32)
  time = tf.shape(potentials)[1]
  mask = tf.sequence_mask(lengths, time, dtype=tf.float32)
  unary = tf.reduce_sum(tf.gather(potentials, tags, batch_dims=2) * mask, axis=1)
  pairs = tf.gather_nd(transitions, tf.stack([tags[:, :-1], tags[:, 1:]], axis=-1))
  binary = tf.reduce_sum(pairs * mask[:, 1:], axis=1)

  def forward(alpha, inputs):
    step_potentials, step_mask = inputs
    scores = tf.reduce_logsumexp(alpha[:, :, None] + transitions[None], axis=1) + step_potentials
    return tf.where(step_mask[:, None] > 0, scores, alpha)

  alpha = tf.scan(forward, (_time_major(potentials[:, 1:]), _time_major(mask[:, 1:])),
                  initializer=potentials[:, 0])
  last = tf.concat([potentials[:, 0][None], alpha], axis=0)[-1]     # also for time == 1
  return unary + binary - tf.reduce_logsumexp(last, axis=1)


def crf_decode(potentials, lengths, transitions):
  """The highest-scoring tag sequence (Viterbi): int32 [batch, time], 0 past the length."""
  potentials = tf.cast(potentials, tf.float32)
  transitions = tf.cast(transitions, tf.float32)
  time, num_tags = tf.shape(potentials)[1], tf.shape(potentials)[2]
  mask = tf.sequence_mask(lengths, time)
  identity = tf.range(num_tags)

  def forward(carry, inputs):
    score, _ = carry
    step_potentials, step_mask = inputs
    candidates = score[:, :, None] + transitions[None]
    best = tf.argmax(candidates, axis=1, output_type=tf.int32)
    new_score = tf.reduce_max(candidates, axis=1) + step_potentials
    keep = step_mask[:, None]
    return (tf.where(keep, new_score, score),
            tf.where(keep, best, tf.broadcast_to(identity, tf.shape(best))))

  first = potentials[:, 0]
  scores, pointers = tf.scan(
      forward, (_time_major(potentials[:, 1:]), _time_major(mask[:, 1:])),
      initializer=(first, tf.zeros_like(first, tf.int32)))
  final = tf.concat([first[None], scores], axis=0)[-1]
  last_tag = tf.argmax(final, axis=1, output_type=tf.int32)

  def backward(tag, step_pointers):
    return tf.gather(step_pointers, tag, batch_dims=1)

  earlier = tf.scan(backward, pointers, initializer=last_tag, reverse=True)
  path = tf.concat([_time_major(earlier), last_tag[:, None]], axis=1)
  return tf.where(mask, path, 0)


@keras.saving.register_keras_serializable(package="bert_tf")
class CrfTransitions(keras.layers.Layer):
  """Holds the CRF's transition scores `transitions` [num_tags, num_tags]; called on the label
  scores it returns them broadcast to the batch (so they travel with the model's outputs)."""

  def __init__(self, num_tags, **kwargs):
    super().__init__(**kwargs)
    self.num_tags = num_tags

  def build(self, input_shape=None):
    self.transitions = self.add_weight(name="transitions", shape=(self.num_tags, self.num_tags),
                                       initializer="zeros", dtype="float32")
    self.built = True

  def call(self, logits):
    batch = tf.shape(logits)[0]
    return tf.broadcast_to(tf.cast(self.transitions, tf.float32)[None],
                           [batch, self.num_tags, self.num_tags])

  def compute_output_shape(self, input_shape):
    return (input_shape[0], self.num_tags, self.num_tags)

  def get_config(self):
    config = super().get_config()
    config.update(num_tags=self.num_tags)
    return config
