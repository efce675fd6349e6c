"""Load and save original TF1 BERT checkpoints (google-research/bert, Chinese BERT-wwm family).

Original checkpoints are name-based: `bert/encoder/layer_3/attention/self/query/kernel` and so on.
`load_original_checkpoint` fills a BertEncoder or BertPretrainer from one through the table in
name_map.py; `save_original_checkpoint` writes the model back under the original names, readable by
google-research/bert, tf-models-official's converter and Hugging Face's TF-checkpoint loader.
"""
import dataclasses
import os
import re
import uuid

import numpy as np
import tensorflow as tf
from absl import logging

from bert_tf.checkpoint import name_map as nm
from bert_tf.errors import InputFileError
from bert_tf.tokenization import model_vocab_file


class CheckpointMismatchError(InputFileError):
  """The checkpoint does not fit the model; the message names the variable and both shapes."""


@dataclasses.dataclass
class LoadReport:
  """What load_original_checkpoint did.

  Attributes:
    loaded: (original name, Keras weight path) pairs that were assigned.
    skipped: (original name, reason) for checkpoint variables left unused.
    missing: original names of model weights absent from the checkpoint (only those allowed by
      `allow_missing`, otherwise loading raises).
  """
  checkpoint: str
  loaded: list = dataclasses.field(default_factory=list)
  skipped: list = dataclasses.field(default_factory=list)
  missing: list = dataclasses.field(default_factory=list)

  def summary(self):
    return (f"{self.checkpoint}: loaded {len(self.loaded)} variables, skipped {len(self.skipped)}, "
            f"missing {len(self.missing)}")


def resolve_checkpoint(ckpt_path):
  """Returns the checkpoint prefix for a prefix, a `.index`/`.data-*` file name or a folder."""
  path = str(ckpt_path)
  for suffix in (".index", ".meta"):
    if path.endswith(suffix):
      path = path[:-len(suffix)]
  if ".data-" in os.path.basename(path):
    path = path[:path.rindex(".data-")]
  if tf.io.gfile.isdir(path):
    latest = tf.train.latest_checkpoint(path)
    if latest:
      return latest
    candidates = sorted(tf.io.gfile.glob(os.path.join(path, "*.ckpt.index")) or
                        tf.io.gfile.glob(os.path.join(path, "*.index")))
    if len(candidates) != 1:
      raise FileNotFoundError(
          f"{path}: expected exactly one checkpoint (*.ckpt.index) in the folder, found "
          f"{len(candidates)}; pass the checkpoint prefix, e.g. {os.path.join(path, 'bert_model.ckpt')}")
    return candidates[0][:-len(".index")]
  if not tf.io.gfile.exists(path + ".index"):
    raise FileNotFoundError(f"no checkpoint at {path}: {path}.index does not exist")
  return path


class _CheckedReader:
  """tf.train.load_checkpoint whose read errors name the checkpoint: a truncated or damaged
  data file otherwise surfaces as `IndexError: Read less bytes than requested` or a DataLossError
  naming neither the file nor the variable."""

  def __init__(self, prefix):
    self.prefix = prefix
    try:
      self.reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, IndexError) as e:
      raise InputFileError(f"{prefix}: checkpoint cannot be read, its files are damaged or "
                           f"incomplete ({_first_line(e)})") from e

  def get_variable_to_shape_map(self):
    return self.reader.get_variable_to_shape_map()

  def get_tensor(self, name):
    try:
      return self.reader.get_tensor(name)
    except (tf.errors.OpError, IndexError, ValueError) as e:
      raise InputFileError(f"{self.prefix}: variable {name} cannot be read: a data file of the "
                           f"checkpoint is truncated or damaged ({_first_line(e)}); copy it "
                           "again") from e


def _first_line(error):
  text = re.sub(r"\{\{[^}]*\}\}\s*", "", getattr(error, "message", None) or str(error))
  return text.strip().splitlines()[0] if text.strip() else type(error).__name__


def _model_weights(model):
  """{Keras weight path: variable} for the model; raises if two weights share a path."""
  weights = {}
  for weight in model.weights:
    if weight.path in weights and weights[weight.path] is not weight:
      raise ValueError(f"two weights of {model.name} share the path {weight.path}; build one BERT "
                       "per model so weight paths are unique")
    weights[weight.path] = weight
  if not model.weights:
    raise ValueError(f"model {model.name} has no weights yet; build it before loading")
  return weights


def _model_name_map(model):
  """The expanded table for this model: its layer count, and heads when it has them."""
  weights = _model_weights(model)
  num_layers = 1 + max((nm.layer_index(path) for path in weights if nm.layer_index(path) is not None),
                       default=-1)
  with_heads = "cls/predictions/output_bias" in weights
  rows = [(orig, path) for orig, path in nm.name_map(num_layers, with_heads)]
  # A fine-tuning model lists its task head's original names (e.g. run_classifier's
  # output_weights/output_bias) in `original_head_names`, so they load and export too.
  rows += list(getattr(model, "original_head_names", ()))
  absent = [path for _, path in rows if path not in weights]
  if absent:
    raise ValueError(f"model {model.name} is not a bert_tf BERT model: no weight at {absent[0]}")
  return rows, weights


def _shape_error(orig, path, ckpt_shape, model_shape, model):
  config = getattr(model, "config", None)
  hint = ""
  if orig == "bert/embeddings/word_embeddings" and config is not None:
    hint = (f" The checkpoint has a vocabulary of {ckpt_shape[0]} tokens but bert_config.json says "
            f"vocab_size={config.vocab_size}: use the bert_config.json and vocab.txt released with "
            "this checkpoint.")
  elif orig == "bert/embeddings/position_embeddings":
    hint = (f" The checkpoint was trained with max_position_embeddings={ckpt_shape[0]}, the config "
            f"says {model_shape[0]}.")
  elif orig == "bert/embeddings/token_type_embeddings":
    hint = f" The checkpoint has type_vocab_size={ckpt_shape[0]}, the config {model_shape[0]}."
  elif ckpt_shape and model_shape and ckpt_shape[-1] != model_shape[-1] and config is not None:
    hint = (" The checkpoint's hidden or intermediate size differs from bert_config.json: use the "
            "config released with this checkpoint.")
  return CheckpointMismatchError(
      f"checkpoint variable {orig} has shape {list(ckpt_shape)} but model weight {path} has shape "
      f"{list(model_shape)}.{hint}")


# A checkpoint without the pooler's two variables loads (see load_variables).
POOLER_SCOPE = "bert/pooler/"


def load_original_checkpoint(model, ckpt_path, allow_missing=()):
  """Loads an original-name BERT checkpoint into a BertEncoder or BertPretrainer.

  Optimizer slots and counters (adam_m, adam_v, global_step, ...) are skipped, as are variables
  this model has no place for (a classifier's output layer, the `cls/` heads when loading into an
  encoder, layers beyond num_hidden_layers); all are listed in the report.

  Args:
    model: a built BertEncoder or BertPretrainer (bert_tf models are built on construction).
    ckpt_path: checkpoint prefix (`.../bert_model.ckpt`), one of its files, or its folder.
    allow_missing: original-name prefixes (e.g. `("cls/",)`) whose absence is tolerated; those
      weights keep their initial values and are listed as missing. So is a pooler absent as a
      whole (Hugging Face's question-answering and token-classification models have none), with
      a warning. Anything else missing raises.
  Returns:
    LoadReport.
  Raises:
    CheckpointMismatchError: a shape differs or a required variable is missing.
    FileNotFoundError: no checkpoint at ckpt_path.
  """
  prefix = resolve_checkpoint(ckpt_path)
  return load_variables(model, _CheckedReader(prefix), prefix, allow_missing)


def load_variables(model, reader, prefix, allow_missing=()):
  """load_original_checkpoint from `reader` (get_variable_to_shape_map / get_tensor by original
  name: a checkpoint reader, or a converted Hugging Face folder's variables); `prefix` names the
  source in messages."""
  shapes = reader.get_variable_to_shape_map()
  rows, weights = _model_name_map(model)
  report = LoadReport(checkpoint=prefix)

  missing = [orig for orig, _ in rows if orig not in shapes]
  pooler = [orig for orig, _ in rows if orig.startswith(POOLER_SCOPE)]
  if pooler and set(pooler) <= set(missing):
    # Hugging Face's BertForQuestionAnswering and BertForTokenClassification have no pooler
    # (add_pooling_layer=False) and save none, nor does a checkpoint converted from theirs.
    allow_missing = tuple(allow_missing) + (POOLER_SCOPE,)
    logging.warning("%s has no pooler (%s): it keeps its initial values, so pooled_output (and "
                    "a head reading it) starts untrained", prefix, ", ".join(pooler))
  required = [orig for orig in missing if not orig.startswith(tuple(allow_missing))]
  if required:
    layer_note = ""
    present_layers = {nm.layer_index(n) for n in shapes if n.startswith("bert/encoder/")} - {None}
    if present_layers and any(nm.layer_index(o) is not None for o in required):
      layer_note = (f" The checkpoint has {max(present_layers) + 1} transformer layers; check "
                    "num_hidden_layers in bert_config.json.")
    raise CheckpointMismatchError(
        f"{prefix} lacks {len(required)} variable(s) the model needs, first: {required[0]}.{layer_note}")
  report.missing = missing

  values = []
  for orig, path in rows:
    if orig in missing:
      continue
    variable = weights[path]
    ckpt_shape = tuple(shapes[orig])
    if ckpt_shape != tuple(variable.shape):
      raise _shape_error(orig, path, ckpt_shape, tuple(variable.shape), model)
    values.append((variable, reader.get_tensor(orig)))
    report.loaded.append((orig, path))
  # Assign only after every shape checked, so a failed load leaves the model untouched.
  for variable, value in values:
    variable.assign(value.astype(variable.dtype))

  used = {orig for orig, _ in report.loaded}
  for name in sorted(shapes):
    if name in used:
      continue
    if nm.is_optimizer_state(name):
      reason = "optimizer state"
    elif nm.is_model_variable(name):
      reason = "not part of this model"
    else:
      reason = "unknown variable"
    report.skipped.append((name, reason))
  unknown = [name for name, reason in report.skipped if reason == "unknown variable"]
  if unknown:
    logging.warning("%s: %d variables are not BERT weights and were skipped, e.g. %s", prefix,
                    len(unknown), unknown[:3])
  logging.info(report.summary())
  return report


def _write_name_based(prefix, named_values):
  """Writes {name: ndarray} as a TF1-style name-based checkpoint, atomically.

  The files are written under a temporary prefix and renamed, data first and index last, so a
  reader never sees a prefix whose index points at incomplete data.
  """
  directory = os.path.dirname(prefix) or "."
  tf.io.gfile.makedirs(directory)
  tmp = os.path.join(directory, f".tmp-{uuid.uuid4().hex}-{os.path.basename(prefix)}")
  names = sorted(named_values)
  tf.raw_ops.SaveV2(prefix=tmp, tensor_names=names, shape_and_slices=[""] * len(names),
                    tensors=[tf.convert_to_tensor(named_values[n]) for n in names])
  data_files = tf.io.gfile.glob(tmp + ".data-*")
  for data_file in data_files:
    tf.io.gfile.rename(data_file, prefix + data_file[len(tmp):], overwrite=True)
  tf.io.gfile.rename(tmp + ".index", prefix + ".index", overwrite=True)


def save_original_checkpoint(model, ckpt_path):
  """Writes the model's weights under the original variable names and shapes.

  The result holds model variables only (no optimizer slots or step), like the checkpoints
  Google released, and loads with google-research/bert (`init_from_checkpoint`),
  tf-models-official's TF1 converter and Hugging Face's `load_tf_weights_in_bert`.

  Args:
    model: a BertEncoder or BertPretrainer.
    ckpt_path: checkpoint prefix to write, e.g. `out/bert_model.ckpt`.
  Returns:
    the list of original names written.
  """
  rows, weights = _model_name_map(model)
  named = {orig: np.asarray(weights[path].numpy(), dtype=np.float32) for orig, path in rows}
  _write_name_based(str(ckpt_path), named)
  logging.info("wrote %d variables to %s", len(named), ckpt_path)
  return sorted(named)


def slim_original_checkpoint(src_path, dst_path):
  """Copies only the BERT model variables of an original training checkpoint.

  Drops optimizer slots (adam_m / adam_v: two thirds of a training checkpoint), global_step and
  other non-model state. Variables that are neither model weights nor optimizer state (a task
  head such as run_classifier's output_weights) are kept.

  Returns:
    dict with `kept`, `dropped` (lists of names) and `src_bytes`, `dst_bytes`.
  """
  prefix = resolve_checkpoint(src_path)
  reader = _CheckedReader(prefix)
  kept, dropped = {}, []
  for name in sorted(reader.get_variable_to_shape_map()):
    if nm.is_optimizer_state(name):
      dropped.append(name)
    else:
      kept[name] = reader.get_tensor(name)
  if not any(nm.is_model_variable(name) for name in kept):
    raise CheckpointMismatchError(f"{prefix} holds no BERT variables (bert/embeddings/..., bert/encoder/...)")
  _write_name_based(str(dst_path), kept)

  def size(p):
    return sum(tf.io.gfile.stat(f).length for f in tf.io.gfile.glob(p + ".*"))
  return {"kept": sorted(kept), "dropped": dropped, "src_bytes": size(prefix), "dst_bytes": size(str(dst_path))}


def _vocab_size_of(vocab_file):
  with tf.io.gfile.GFile(vocab_file, "r") as reader:
    return sum(1 for _ in reader)  # load_vocab gives every line an id, blank ones too


def from_pretrained(model_class, model_dir, allow_missing=None, **kwargs):
  """Builds `model_class` from a released model folder and loads its checkpoint.

  The folder holds bert_config.json, vocab.txt and bert_model.ckpt.{index,data-*} (the layout of
  Google's and the Chinese BERT-wwm releases), or is a Hugging Face folder (config.json,
  model.safetensors, vocab.txt; read by bert_tf/checkpoint/huggingface.py), told apart by its files.
  A vocab.txt whose size differs from the config's
  vocab_size is an error: ids would silently point at the wrong rows.
  """
  from bert_tf.config import BertConfig  # pylint: disable=g-import-not-at-top
  model_dir = str(model_dir)
  config_file = os.path.join(model_dir, "bert_config.json")
  hf_model = None
  if (not tf.io.gfile.exists(config_file) and
      tf.io.gfile.exists(os.path.join(model_dir, "config.json"))):
    from bert_tf.checkpoint import huggingface  # pylint: disable=g-import-not-at-top
    huggingface.detect_format(model_dir)   # names a missing model.safetensors or vocab.txt
    hf_model = huggingface.read_huggingface(model_dir)
    config, config_file = hf_model.config, os.path.join(model_dir, "config.json")
  elif not tf.io.gfile.exists(config_file):
    raise FileNotFoundError(f"{model_dir} has no bert_config.json; expected a released BERT folder "
                            "(bert_config.json, vocab.txt, bert_model.ckpt.*) or a Hugging Face one "
                            "(config.json, model.safetensors, vocab.txt)")
  else:
    config = BertConfig.from_json_file(config_file)
  vocab_file = model_vocab_file(model_dir) if "://" not in model_dir else os.path.join(
      model_dir, "vocab.txt")
  if not tf.io.gfile.exists(vocab_file):
    logging.warning("%s has no vocab.txt: the vocabulary was not checked against vocab_size=%d "
                    "of %s; tokenize with the vocabulary released with this checkpoint",
                    model_dir, config.vocab_size, config_file)
  else:
    vocab_size = _vocab_size_of(vocab_file)
    if vocab_size != config.vocab_size:
      raise CheckpointMismatchError(
          f"{vocab_file} has {vocab_size} tokens but {config_file} says vocab_size="
          f"{config.vocab_size}: the vocabulary and the config come from different models")
  model = model_class(config, **kwargs)
  if hf_model is not None:
    load_variables(model, _VariablesReader(hf_model.variables),
                   os.path.join(model_dir, "model.safetensors"), allow_missing=allow_missing or ())
  else:
    load_original_checkpoint(model, model_dir, allow_missing=allow_missing or ())
  return model


class _VariablesReader:
  """{original name: ndarray} with a checkpoint reader's interface."""

  def __init__(self, variables):
    self.variables = variables

  def get_variable_to_shape_map(self):
    return {name: list(value.shape) for name, value in self.variables.items()}

  def get_tensor(self, name):
    return self.variables[name]


def export_pretrained(model, model_dir, vocab_file=None):
  """Writes a released-model folder: bert_config.json, vocab.txt (copied) and bert_model.ckpt."""
  tf.io.gfile.makedirs(str(model_dir))
  model.config.to_json_file(os.path.join(str(model_dir), "bert_config.json"))
  if vocab_file is not None:
    tf.io.gfile.copy(str(vocab_file), os.path.join(str(model_dir), "vocab.txt"), overwrite=True)
  return save_original_checkpoint(model, os.path.join(str(model_dir), "bert_model.ckpt"))
