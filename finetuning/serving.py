"""SavedModel exports that take raw text: the tokenizer and the input packing run inside the
graph (the same pack_inputs as the Python path), so the model serves from TF Serving or
`tf.saved_model.load` without Python preprocessing. The classifier and the feature extractor
here, NER in ner_serving.py; docs/serving.md lists every signature.

    export_classifier("out/export", model, tokenizer, max_seq_length=128, task=task)
    served = tf.saved_model.load("out/export")
    served.signatures["serving_default"](text_a=tf.constant([...]), text_b=tf.constant([...]))
    # -> {"probabilities": [n, num_labels], "logits": ..., "label": [n] strings}
"""
import json
import os

import tensorflow as tf

from bert_tf import kernels
from bert_tf.layers import token_rows
from finetuning.classifier_features import encode_texts


class ClassifierServer(tf.Module):
  """Raw text -> label probabilities. Holds the model and the FastTokenizer (its tables)."""

  def __init__(self, model, tokenizer, max_seq_length, labels, is_pair, is_regression):
    super().__init__(name="bert_classifier_server")
    self.model, self.tokenizer = model, tokenizer
    self.max_seq_length, self.is_pair, self.is_regression = max_seq_length, is_pair, is_regression
    self.labels = tf.constant(list(labels) or [""], tf.string)
    text = tf.TensorSpec([None], tf.string)
    if is_pair:
      self.serve = tf.function(self._serve_pair, input_signature=[text, text])
    else:
      self.serve = tf.function(self._serve_single, input_signature=[text])

  def _serve_single(self, text_a):
    return self._predict(text_a, None)

  def _serve_pair(self, text_a, text_b):
    return self._predict(text_a, text_b)

  def _predict(self, text_a, text_b):
    inputs = encode_texts(self.tokenizer, text_a, text_b, self.max_seq_length)
    logits = tf.cast(self.model(inputs, training=False)["logits"], tf.float32)
    if self.is_regression:
      return {"logits": logits, "score": logits[:, 0]}
    probabilities = tf.nn.softmax(logits, axis=-1)
    return {"logits": logits, "probabilities": probabilities,
            "label": tf.gather(self.labels, tf.argmax(probabilities, axis=-1))}


def save_atomically(module, export_dir, signatures, description):
  """tf.saved_model.save of `module` plus `task.json` (the description), written to a
  temporary folder then renamed over export_dir. Returns export_dir."""
  export_dir = str(export_dir)
  tmp = export_dir.rstrip("/") + ".incomplete"
  if tf.io.gfile.exists(tmp):
    tf.io.gfile.rmtree(tmp)
  with kernels.portable():   # plain ops: the export may serve on a GPU or a binary without XLA
    tf.saved_model.save(module, tmp, signatures=signatures)
  with tf.io.gfile.GFile(os.path.join(tmp, "task.json"), "w") as f:
    json.dump(description, f, indent=1, ensure_ascii=False)
  if tf.io.gfile.exists(export_dir):
    tf.io.gfile.rmtree(export_dir)
  tf.io.gfile.rename(tmp, export_dir)
  return export_dir


def export_classifier(export_dir, model, tokenizer, max_seq_length, task):
  """Writes the SavedModel (signature `serving_default`: text_a [, text_b] -> outputs) and a
  `task.json` describing labels and inputs."""
  server = ClassifierServer(model, tokenizer, max_seq_length, task.labels, task.is_pair,
                            task.is_regression)
  return save_atomically(server, export_dir, {"serving_default": server.serve}, {
      "task_name": task.name, "labels": list(task.labels), "is_pair": task.is_pair,
      "is_regression": task.is_regression, "max_seq_length": max_seq_length,
      "inputs": ["text_a", "text_b"] if task.is_pair else ["text_a"]})


class FeatureExtractorServer(tf.Module):
  """Raw text -> sentence vectors of a BertEncoder: `pooled_output` (the [CLS] pooler) and
  `mean_pooled` (the last layer averaged over the real tokens, [CLS] and [SEP] included), as
  extract_features' JSON fields of the same names. Two signatures: single texts and pairs."""

  def __init__(self, encoder, tokenizer, max_seq_length):
    super().__init__(name="bert_feature_server")
    self.encoder, self.tokenizer, self.max_seq_length = encoder, tokenizer, max_seq_length
    text = tf.TensorSpec([None], tf.string)
    self.serve = tf.function(lambda text_a: self._features(text_a, None), input_signature=[text])
    self.serve_pair = tf.function(self._features, input_signature=[text, text])

  def _features(self, text_a, text_b):
    inputs = encode_texts(self.tokenizer, text_a, text_b, self.max_seq_length)
    with token_rows.reading_real_positions():   # both outputs read real tokens only
      outputs = self.encoder(inputs, training=False)
    mask = tf.cast(inputs["input_mask"], tf.float32)[..., None]
    sequence = tf.cast(outputs["sequence_output"], tf.float32)
    return {"pooled_output": tf.cast(outputs["pooled_output"], tf.float32),
            "mean_pooled": tf.reduce_sum(sequence * mask, 1) / tf.reduce_sum(mask, 1)}


def export_feature_extractor(export_dir, encoder, tokenizer, max_seq_length):
  """Writes the SavedModel (signatures `serving_default`: text_a, and `pair`: text_a, text_b ->
  pooled_output, mean_pooled [batch, hidden] float32) and a `task.json`."""
  server = FeatureExtractorServer(encoder, tokenizer, max_seq_length)
  return save_atomically(server, export_dir,
                         {"serving_default": server.serve, "pair": server.serve_pair}, {
      "task_name": "features", "max_seq_length": max_seq_length,
      "hidden_size": encoder.config.hidden_size,
      "signatures": {"serving_default": ["text_a"], "pair": ["text_a", "text_b"]},
      "outputs": ["pooled_output", "mean_pooled"]})
