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


class SpanObjective:
  """run_squad's loss: the mean of the start and end positions' cross-entropies over the
  sequence, averaged over the examples (windows without the answer point at [CLS])."""
  loss_names = ("span_loss",)
  metric_names = ("start_accuracy", "end_accuracy")

  def denominators(self, features):
    return {"span_loss": tf.cast(tf.shape(features["start_positions"])[0], tf.float32)}

  def numerators(self, features, outputs):
    total, metrics = 0.0, {}
    count = tf.cast(tf.shape(features["start_positions"])[0], tf.float32)
    for side in ("start", "end"):
      logits = tf.cast(outputs[f"{side}_logits"], tf.float32)
      labels = tf.cast(features[f"{side}_positions"], tf.int32)
      total += tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels,
                                                                            logits=logits)) / 2
      correct = tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels)
      metrics[f"{side}_accuracy"] = (tf.reduce_sum(tf.cast(correct, tf.float32)), count)
    return {"span_loss": total}, metrics


class TaggingObjective:
  """Token tagging: cross-entropy over the labelled positions (each word's first piece),
  averaged over them; with a CRF, the negative log-likelihood of each window's word sequence,
  averaged over the windows."""
  loss_names = ("tagging_loss",)
  metric_names = ("token_accuracy",)

  def __init__(self, use_crf=False):
    self.use_crf = use_crf

  def denominators(self, features):
    if self.use_crf:
      return {"tagging_loss": tf.cast(tf.shape(features["label_mask"])[0], tf.float32)}
    return {"tagging_loss": tf.reduce_sum(tf.cast(features["label_mask"], tf.float32))}

  def numerators(self, features, outputs):
    from finetuning import crf, ner_features  # pylint: disable=import-outside-toplevel
    logits = tf.cast(outputs["logits"], tf.float32)
    labels = tf.cast(features["label_ids"], tf.int32)
    mask = tf.cast(features["label_mask"], tf.float32)
    if self.use_crf:
      words, lengths = ner_features.compact(logits, features["label_mask"])
      word_labels, _ = ner_features.compact(labels, features["label_mask"])
      likelihood = crf.crf_log_likelihood(words, word_labels, tf.maximum(lengths, 1),
                                          outputs["transitions"][0])
      loss = -tf.reduce_sum(likelihood * tf.cast(lengths > 0, tf.float32))
    else:
      per_token = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
      loss = tf.reduce_sum(per_token * mask)
    correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32)
    return ({"tagging_loss": loss},
            {"token_accuracy": (tf.reduce_sum(correct * mask), tf.reduce_sum(mask))})
