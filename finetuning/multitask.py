"""Multi-task fine-tuning: one shared encoder, one head per task (classification or token
tagging), batches sampled across the tasks, each task with its own data, loss weight and metrics.

A task list (JSON or YAML, see run_multitask) becomes TaskSpecs; every task's examples become
features of one shared layout (input_ids, input_mask, segment_ids, task_id, class_label,
token_labels, token_mask), so that a batch of any task has the same shapes. Each training batch
comes from one task, drawn with probability proportional to the task's size, or to size^(1/T)
with temperature sampling (T > 1 evens the tasks out).
"""
import dataclasses
import json

import keras
import numpy as np
import tensorflow as tf

from bert_tf.errors import InputFileError
from bert_tf.encoder import INPUT_NAMES, BertLayers, as_config, encoder_inputs, select_inputs
from finetuning.heads import ClassificationHead, TokenClassificationHead

KINDS = ("classification", "tagging")


@dataclasses.dataclass
class TaskSpec:
  name: str                    # a short identifier (letters, digits, _)
  kind: str                    # classification | tagging
  task_name: str               # run_classifier's or run_ner's --task_name
  data_dir: str
  loss_weight: float = 1.0
  options: dict = dataclasses.field(default_factory=dict)   # e.g. generic task columns

  @classmethod
  def from_dict(cls, value, where):
    known = {f.name for f in dataclasses.fields(cls)} - {"options"}
    if not isinstance(value, dict):
      raise InputFileError(f"{where}: expected an object with name, kind, task_name, data_dir; "
                           f"got {type(value).__name__}")
    missing = [k for k in ("name", "kind", "task_name", "data_dir") if k not in value]
    if missing:
      raise InputFileError(f"{where}: a task needs {', '.join(missing)}")
    spec = cls(**{k: v for k, v in value.items() if k in known},
               options={k: v for k, v in value.items() if k not in known})
    if spec.kind not in KINDS:
      raise InputFileError(f"{where}: kind {spec.kind!r} is not one of {KINDS}")
    if not spec.name.replace("_", "").isalnum():
      raise InputFileError(f"{where}: name {spec.name!r} must be letters, digits and _")
    return spec


def load_task_list(path):
  """{"tasks": [...], "sampling": "proportional"|"temperature", "temperature": T} from JSON or
  YAML; returns (list of TaskSpec, sampling, temperature)."""
  with tf.io.gfile.GFile(path) as f:
    text = f.read()
  if path.endswith((".yaml", ".yml")):
    try:
      import yaml  # pylint: disable=import-outside-toplevel
    except ImportError as e:
      raise ImportError(f"{path}: YAML task lists need pyyaml (pip install pyyaml), or use JSON") from e
    data = yaml.safe_load(text)
  else:
    try:
      data = json.loads(text)
    except json.JSONDecodeError as e:
      raise InputFileError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
  if not isinstance(data, dict):
    raise InputFileError(f"{path}: expected an object with a 'tasks' list")
  tasks = [TaskSpec.from_dict(t, f"{path} task {i}") for i, t in enumerate(data.get("tasks", []))]
  if not tasks:
    raise InputFileError(f"{path}: no tasks listed")
  if len({t.name for t in tasks}) != len(tasks):
    raise InputFileError(f"{path}: task names must be unique")
  sampling = data.get("sampling", "proportional")
  if sampling not in ("proportional", "temperature"):
    raise InputFileError(f"{path}: sampling must be proportional or temperature, got {sampling!r}")
  return tasks, sampling, float(data.get("temperature", 2.0))


def sampling_weights(sizes, sampling, temperature):
  sizes = np.asarray(sizes, np.float64)
  weights = sizes if sampling == "proportional" else sizes ** (1.0 / temperature)
  return (weights / weights.sum()).tolist()


def shared_layout(arrays, task_id, kind, max_seq_length):
  """A task's feature arrays in the shared layout (zeros where the other kind's labels go)."""
  n = len(arrays["input_ids"])
  out = {name: np.asarray(arrays[name], np.int32) for name in INPUT_NAMES}
  out["task_id"] = np.full(n, task_id, np.int32)
  if kind == "classification":
    out["class_label"] = np.asarray(arrays["label_ids"], np.int32)
    out["token_labels"] = np.zeros((n, max_seq_length), np.int32)
    out["token_mask"] = np.zeros((n, max_seq_length), np.int32)
  else:
    out["class_label"] = np.zeros(n, np.int32)
    out["token_labels"] = np.asarray(arrays["label_ids"], np.int32)
    out["token_mask"] = np.asarray(arrays["label_mask"], np.int32)
  return out


@keras.saving.register_keras_serializable(package="bert_tf")
class BertMultiTask(keras.Model):
  """The encoder's layers once, a head per task: outputs `<name>_logits` per task ([batch,
  labels] for classification, [batch, seq, labels] for tagging) and the encoder's outputs.
  Heads export under `<name>/output_weights` and `<name>/output_bias`."""

  def __init__(self, config, heads, seq_length=None, **kwargs):
    config = as_config(config)
    inputs = encoder_inputs(seq_length)
    bert_layers = BertLayers(config)
    outputs = dict(bert_layers(inputs))
    names = []
    for name, kind, num_labels in heads:
      layer_class = ClassificationHead if kind == "classification" else TokenClassificationHead
      head = layer_class(config.hidden_size, num_labels, config.hidden_dropout_prob,
                         config.initializer_range, name=f"{name}_head")
      source = outputs["pooled_output"] if kind == "classification" else outputs["sequence_output"]
      outputs[f"{name}_logits"] = head(source)
      names += [(f"{name}/output_weights", f"{name}_head/output_weights"),
                (f"{name}/output_bias", f"{name}_head/output_bias")]
    kwargs.setdefault("name", "bert_multitask")
    super().__init__(inputs=inputs, outputs=outputs, **kwargs)
    self.config, self.heads, self.seq_length = config, [list(h) for h in heads], seq_length
    self.original_head_names = tuple(names)

  def call(self, inputs, training=None, mask=None):
    return super().call(select_inputs(self, inputs, INPUT_NAMES, training), training=training, mask=mask)

  def get_config(self):
    return {"config": self.config.to_dict(), "heads": self.heads, "seq_length": self.seq_length,
            "name": self.name}

  @classmethod
  def from_config(cls, config):
    return cls(**config)


class MultiTaskObjective:
  """Each task's loss over its own examples in the batch (cross-entropy of the label, or of the
  tags on first pieces), times its loss weight; the training loss is their sum."""

  def __init__(self, tasks):
    self.tasks = tasks              # list of (name, kind, loss_weight)
    self.loss_names = tuple(f"{name}_loss" for name, _, _ in tasks)
    self.metric_names = tuple(f"{name}_accuracy" for name, _, _ in tasks)

  def _weights(self, features, task_id, kind):
    mine = tf.cast(tf.equal(features["task_id"], task_id), tf.float32)
    if kind == "classification":
      return mine
    return tf.cast(features["token_mask"], tf.float32) * mine[:, None]

  def denominators(self, features):
    return {f"{name}_loss": tf.reduce_sum(self._weights(features, i, kind))
            for i, (name, kind, _) in enumerate(self.tasks)}

  def numerators(self, features, outputs):
    numerators, metrics = {}, {}
    for i, (name, kind, weight) in enumerate(self.tasks):
      logits = tf.cast(outputs[f"{name}_logits"], tf.float32)
      labels = features["class_label" if kind == "classification" else "token_labels"]
      labels = tf.cast(labels, tf.int32)
      weights = self._weights(features, i, kind)
      loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
      numerators[f"{name}_loss"] = weight * tf.reduce_sum(loss * weights)
      correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32)
      metrics[f"{name}_accuracy"] = (tf.reduce_sum(correct * weights), tf.reduce_sum(weights))
    return numerators, metrics
