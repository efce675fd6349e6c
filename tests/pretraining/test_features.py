"""The hand-written serializer against tf.train.Example, byte for byte."""
import numpy as np
import pytest
import tensorflow as tf

from pretraining import features


def random_features(rng, n, seq_length=128, max_predictions=20, vocab=30522):
  return {
      "input_ids": rng.integers(0, vocab, (n, seq_length)),
      "input_mask": rng.integers(0, 2, (n, seq_length)),
      "segment_ids": rng.integers(0, 2, (n, seq_length)),
      "masked_lm_positions": rng.integers(0, seq_length, (n, max_predictions)),
      "masked_lm_ids": rng.integers(0, vocab, (n, max_predictions)),
      "masked_lm_weights": rng.random((n, max_predictions)).astype(np.float32),
      "next_sentence_labels": rng.integers(0, 2, (n, 1)),
  }


def reference_bytes(values, i):
  feature = {}
  for name, array in values.items():
    if name in features.FLOAT_FEATURES:
      feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=array[i]))
    else:
      feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=array[i]))
  example = tf.train.Example(features=tf.train.Features(feature=feature))
  return example.SerializeToString(deterministic=True)


@pytest.mark.parametrize("seq_length,vocab", [(128, 30522), (512, 21128), (16, 120000)])
def test_bytes_equal_tf_train_example(seq_length, vocab):
  rng = np.random.default_rng(seq_length)
  values = random_features(rng, 300, seq_length, 20 if seq_length < 512 else 80, vocab)
  values["input_ids"][0, :3] = [0, 127, 128]          # varint width edges
  values["input_ids"][1, :4] = [16383, 16384, 2**21 - 1, 2**21]
  values["input_ids"][2, 0] = 2**40
  records = features.serialize_examples(values)
  assert len(records) == 300
  for i, record in enumerate(records):
    assert record == reference_bytes(values, i), i


def test_parse_back():
  rng = np.random.default_rng(1)
  values = random_features(rng, 50)
  parsed = features.parse_examples(tf.constant(features.serialize_examples(values)), 128, 20)
  for name, array in values.items():
    np.testing.assert_array_equal(parsed[name].numpy(), array)
    assert parsed[name].dtype == (tf.float32 if name == "masked_lm_weights" else tf.int64)


def test_bad_shapes_are_named():
  with pytest.raises(ValueError, match="input_mask"):
    features.serialize_examples({"input_ids": np.zeros((3, 4)), "input_mask": np.zeros((2, 4))})
  with pytest.raises(ValueError, match="negative"):
    features.serialize_examples({"input_ids": -np.ones((3, 4), np.int64)})
