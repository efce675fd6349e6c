"""Reading pretraining TFRecords back: decoded examples with their masks, and summary statistics.

Library side of `python -m pretraining.inspect_pretraining_data`; tests use it too.
"""
import numpy as np

from pretraining import features, fileio


def feature_lengths_of(path):
  """(max_seq_length, max_predictions_per_seq) read off the first record of a file."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  for record in tf.data.TFRecordDataset([path]).take(1):
    example = tf.train.Example.FromString(record.numpy())
    feature = example.features.feature
    missing = [name for name in features.INT_FEATURES + features.FLOAT_FEATURES
               if name not in feature]
    if missing:
      raise ValueError(f"{path}: not a pretraining record file (no {', '.join(missing)})")
    return (len(feature["input_ids"].int64_list.value),
            len(feature["masked_lm_ids"].int64_list.value))
  raise ValueError(f"{path} holds no records")


def read_records(patterns, max_records=0):
  """All records (or the first max_records) of the files -> dict of numpy arrays."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  if isinstance(patterns, str):
    patterns = patterns.split(",")
  files = sorted(f for p in patterns for f in fileio.glob(p.strip()))
  if not files:
    raise FileNotFoundError(f"no file matches {','.join(patterns)}")
  seq_length, predictions = feature_lengths_of(files[0])
  dataset = tf.data.TFRecordDataset(files)
  if max_records:
    dataset = dataset.take(max_records)
  dataset = dataset.batch(8192).map(
      lambda r: features.parse_examples(r, seq_length, predictions))
  parts = list(dataset.as_numpy_iterator())
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
