"""Reference helpers for the data-generation tests: tf-models-official's copy of the original
create_pretraining_data algorithm, and the original run_pretraining.py record decoding."""
import random

import numpy as np
import pytest
import tensorflow as tf


def reference_instances(path, vocab, lower, max_seq_length, dupe_factor, short_seq_prob, seed,
                        monkeypatch):
  """(ids, is_random_next) of every instance the original algorithm makes, masking left out."""
  ref = pytest.importorskip("official.nlp.data.create_pretraining_data")
  reftok = pytest.importorskip("official.nlp.tools.tokenization")
  monkeypatch.setattr(ref, "create_masked_lm_predictions", lambda tokens, *a, **k: (tokens, [], []))
  tokenizer = reftok.FullTokenizer(vocab, lower)
  result = ref.create_training_instances(
      [path], tokenizer, ref.get_processor_text_fn(False, lower), max_seq_length, dupe_factor,
      short_seq_prob, 0.15, 20, random.Random(seed))
  return [(tokenizer.convert_tokens_to_ids(i.tokens), i.is_random_next) for i in result]


def original_decode(files, max_seq_length, max_predictions_per_seq):
  """All records, decoded as google-research/bert's run_pretraining.py input_fn does (its
  name_to_features and the int64 -> int32 cast), stacked into numpy arrays."""
  name_to_features = {
      "input_ids": tf.io.FixedLenFeature([max_seq_length], tf.int64),
      "input_mask": tf.io.FixedLenFeature([max_seq_length], tf.int64),
      "segment_ids": tf.io.FixedLenFeature([max_seq_length], tf.int64),
      "masked_lm_positions": tf.io.FixedLenFeature([max_predictions_per_seq], tf.int64),
      "masked_lm_ids": tf.io.FixedLenFeature([max_predictions_per_seq], tf.int64),
      "masked_lm_weights": tf.io.FixedLenFeature([max_predictions_per_seq], tf.float32),
      "next_sentence_labels": tf.io.FixedLenFeature([1], tf.int64),
  }

  def decode(record):
    example = tf.io.parse_single_example(record, name_to_features)
    return {k: tf.cast(v, tf.int32) if v.dtype == tf.int64 else v for k, v in example.items()}

  dataset = tf.data.TFRecordDataset(files).map(decode).batch(4096)
  parts = list(dataset.as_numpy_iterator())
  if not parts:
    return {k: np.zeros((0,)) for k in name_to_features}
  return {k: np.concatenate([p[k] for p in parts]) for k in name_to_features}
