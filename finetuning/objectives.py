"""Training objectives of the fine-tuning tasks, in the trainer's contract (bert_tf.training):
`denominators(features)` from the inputs only, `numerators(features, outputs)` summed over the
micro-batch, so the loss is the mean over the real examples of the whole global batch.
"""
import tensorflow as tf


def _weights(features):
  return tf.cast(features.get("is_real_example", tf.ones_like(features["label_ids"])), tf.float32)


class ClassificationObjective:
  """Cross-entropy of the label (run_classifier), or squared error for regression (STS-B)."""
  loss_names = ("classification_loss",)

  def __init__(self, is_regression=False):
    self.is_regression = is_regression
    self.metric_names = () if is_regression else ("accuracy",)

  def denominators(self, features):
    return {"classification_loss": tf.reduce_sum(_weights(features))}

  def numerators(self, features, outputs):
    weights = _weights(features)
    logits = tf.cast(outputs["logits"], tf.float32)
    if self.is_regression:
      per_example = tf.square(logits[:, 0] - tf.cast(features["label_ids"], tf.float32))
      return {"classification_loss": tf.reduce_sum(per_example * weights)}, {}
    labels = tf.cast(features["label_ids"], tf.int32)
    per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32)
    return ({"classification_loss": tf.reduce_sum(per_example * weights)},
            {"accuracy": (tf.reduce_sum(correct * weights), tf.reduce_sum(weights))})
