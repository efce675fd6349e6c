"""Reading pretraining TFRecords back: decoded examples with their masks, and summary statistics.

Library side of `python -m pretraining.inspect_pretraining_data`; tests use it too.
"""
import re

import numpy as np

from bert_tf.errors import InputFileError
from pretraining import features, fileio


def damaged(path, error):
  """The error for a TFRecord file that cannot be read to its end."""
  detail = re.sub(r"\{\{[^}]*\}\}\s*", "", getattr(error, "message", None) or str(error))
  detail = detail.strip().splitlines()[0] if detail.strip() else type(error).__name__
  detail = re.sub(r"\s*\[Op:.*$", "", detail).replace("' failed with ", ": ")
  return InputFileError(f"{path}: not a TFRecord file, or damaged or truncated ({detail}); write it "
                        "again (create_pretraining_data keeps the shards that exist: delete this "
                        "one and rerun)")


def records_of(path, take=0):
  """Serialized records of one file; errors name the file (a directory, damaged or cut
  records, random bytes)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  if fileio.isdir(path):
    raise InputFileError(f"{path} is a directory; expected a TFRecord file (or a glob)")
  dataset = tf.data.TFRecordDataset([path])
  if take:
    dataset = dataset.take(take)
  try:
    return [record.numpy() for record in dataset]
  except (tf.errors.DataLossError, tf.errors.OutOfRangeError, tf.errors.InvalidArgumentError) as e:
    raise damaged(path, e) from e


def feature_lengths_of(path):
  """(max_seq_length, max_predictions_per_seq) read off the first record of a file."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from google.protobuf.message import DecodeError  # pylint: disable=import-outside-toplevel
  for record in records_of(path, take=1):
    try:
      example = tf.train.Example.FromString(record)
    except DecodeError as e:
      raise InputFileError(f"{path}: a record is not a tf.train.Example; expected pretraining "
                           "records from create_pretraining_data") from e
    feature = example.features.feature
    missing = [name for name in features.INT_FEATURES + features.FLOAT_FEATURES
               if name not in feature]
    if missing:
      raise InputFileError(f"{path}: not a pretraining record file (no {', '.join(missing)})")
    return (len(feature["input_ids"].int64_list.value),
            len(feature["masked_lm_ids"].int64_list.value))
  raise InputFileError(f"{path} holds no records")


def verify_files(files, max_bytes=2 * 2**30):
  """Preflight of a run's record files: each one's first record, and every record (checksums)
  of the files while their total stays under max_bytes, so a damaged shard is named before
  training rather than hours into it. Returns the number of files read in full."""
  for path in files:
    feature_lengths_of(path)
  budget, full = max_bytes, 0
  for path in files:
    size = fileio.size(path)
    if size > budget:
      break
    records_of(path)
    budget -= size
    full += 1
  return full


def read_records(patterns, max_records=0):
  """All records (or the first max_records) of the files -> dict of numpy arrays."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  if isinstance(patterns, str):
    patterns = patterns.split(",")
  files = sorted(f for p in patterns for f in fileio.glob(p.strip()))
  if not files:
    raise FileNotFoundError(f"no file matches {','.join(patterns)}")
  seq_length, predictions = feature_lengths_of(files[0])
  parts = []
  remaining = max_records or -1
  for path in files:   # file by file, so that a damaged one is named
    if not remaining:
      break
    records = records_of(path, take=max(remaining, 0))
    remaining -= len(records) if remaining > 0 else 0
    for start in range(0, len(records), 8192):
      try:
        parts.append({k: v.numpy() for k, v in features.parse_examples(
            tf.constant(records[start:start + 8192]), seq_length, predictions).items()})
      except tf.errors.InvalidArgumentError as e:
        raise InputFileError(f"{path}: records do not hold the features of {files[0]} "
                             f"(max_seq_length={seq_length}, max_predictions_per_seq="
                             f"{predictions}): {e.message.splitlines()[0]}") from e
  return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}


def summarize(records, mask_id):
  """Counts a user checks before a long pretraining run."""
  lengths = records["input_mask"].sum(axis=1)
  n, seq_length = records["input_ids"].shape
  weights = records["masked_lm_weights"] > 0
  inputs = np.take_along_axis(records["input_ids"], records["masked_lm_positions"], axis=1)
  labels = records["masked_lm_ids"]
  paired = records["segment_ids"].sum(axis=1) > 0
  real = lengths - np.where(paired, 3, 2)
  predictions = weights.sum()
  as_mask = (inputs[weights] == mask_id).sum()
  unchanged = (inputs[weights] == labels[weights]).sum()
  return {
      "instances": int(n),
      "max_seq_length": int(seq_length),
      "max_predictions_per_seq": int(weights.shape[1]),
      "mean_real_length": float(lengths.mean()),
      "full_length_fraction": float((lengths == seq_length).mean()),
      "masked_fraction_of_real_tokens": float(predictions / max(real.sum(), 1)),
      "mean_predictions": float(weights.sum(axis=1).mean()),
      "masked_as_mask": float(as_mask / max(predictions, 1)),
      "masked_unchanged": float(unchanged / max(predictions, 1)),
      "masked_random": float((predictions - as_mask - unchanged) / max(predictions, 1)),
      "random_next_fraction": float(records["next_sentence_labels"].mean()),
      "single_segment_fraction": float((~paired).mean()),
  }


def decode(records, index, vocab):
  """One instance as text: predicted positions as {input->label}, segments split by [SEP]."""
  length = int(records["input_mask"][index].sum())
  tokens = [vocab[i] if i < len(vocab) else f"<{i}>" for i in records["input_ids"][index, :length]]
  weights = records["masked_lm_weights"][index] > 0
  for position, label in zip(records["masked_lm_positions"][index][weights],
                             records["masked_lm_ids"][index][weights]):
    tokens[position] = f"{{{tokens[position]}->{vocab[label]}}}"
  label = "random next" if records["next_sentence_labels"][index, 0] else "actual next"
  return f"[{label}] " + " ".join(tokens)
