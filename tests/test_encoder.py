"""BertEncoder and BertPretrainer: weight paths, numbers, masking, dropout, saving."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import TINY_CONFIG, make_original_checkpoint, random_inputs
from bert_tf import BertConfig, BertEncoder, BertPretrainer, load_original_checkpoint

LAYER_PATHS = [
    "attention/self/query/kernel", "attention/self/query/bias", "attention/self/key/kernel",
    "attention/self/key/bias", "attention/self/value/kernel", "attention/self/value/bias",
    "attention/output/dense/kernel", "attention/output/dense/bias",
    "attention/output/LayerNorm/gamma", "attention/output/LayerNorm/beta",
    "intermediate/dense/kernel", "intermediate/dense/bias", "output/dense/kernel",
    "output/dense/bias", "output/LayerNorm/gamma", "output/LayerNorm/beta",
]


def test_weight_paths_are_pinned(tiny_config):
  paths = [w.path for w in BertPretrainer(tiny_config).weights]
  expected = ["embeddings/word_embeddings", "embeddings/token_type_embeddings",
              "embeddings/position_embeddings", "embeddings/LayerNorm/gamma",
              "embeddings/LayerNorm/beta"]
  expected += [f"encoder/layer_{i}/{p}" for i in range(2) for p in LAYER_PATHS]
  expected += ["pooler/dense/kernel", "pooler/dense/bias", "cls/predictions/output_bias",
               "cls/predictions/transform/dense/kernel", "cls/predictions/transform/dense/bias",
               "cls/predictions/transform/LayerNorm/gamma", "cls/predictions/transform/LayerNorm/beta",
               "cls/seq_relationship/output_weights", "cls/seq_relationship/output_bias"]
  assert paths == expected


def test_output_dict_shapes(tiny_config):
  inputs = random_inputs(TINY_CONFIG, num_predictions=3)
  out = BertPretrainer(tiny_config)(inputs)
  assert set(out) == {"sequence_output", "pooled_output", "encoder_outputs", "mlm_logits", "nsp_logits"}
  assert out["sequence_output"].shape == (13, 7, 32)
  assert out["pooled_output"].shape == (13, 32)
  assert [t.shape for t in out["encoder_outputs"]] == [(13, 7, 32)] * 2
  assert out["mlm_logits"].shape == (13, 3, 99) and out["mlm_logits"].dtype == tf.float32
  assert out["nsp_logits"].shape == (13, 2)


def test_frozen_expected_slice(tmp_path, tiny_config):
  """Regression guard: values computed once from a seeded original-name checkpoint (bert_tf at
  commit of this test, agreeing with tf-models-official to 8e-7 in test_parity_tf_models)."""
  prefix, _ = make_original_checkpoint(tmp_path, TINY_CONFIG, seed=0)
  model = BertPretrainer(tiny_config)
  load_original_checkpoint(model, prefix)
  out = model(random_inputs(TINY_CONFIG, num_predictions=3, seed=1), training=False)
  np.testing.assert_allclose(np.asarray(out["sequence_output"])[0, :3, :4], [
      [0.149466, -3.045562, -1.456584, 0.22154],
      [-0.63887, -0.134857, -0.853488, 0.338723],
      [0.392044, -1.877358, -0.555736, -1.64273]], atol=2e-5)
  np.testing.assert_allclose(np.asarray(out["pooled_output"])[1, :4],
                             [0.146264, 0.14924, 0.569995, 0.642762], atol=2e-5)
  np.testing.assert_allclose(np.asarray(out["mlm_logits"])[2, 0, :4],
                             [-0.180161, 0.058896, -0.257196, 0.506704], atol=2e-5)
  np.testing.assert_allclose(np.asarray(out["nsp_logits"])[:2],
                             [[0.061596, 0.365382], [0.150868, 0.363057]], atol=2e-5)


def test_padding_does_not_change_real_positions(tiny_config):
  """With the -10000 mask, what sits in padded positions must not reach the real tokens."""
  model = BertEncoder(tiny_config)
  inputs = random_inputs(TINY_CONFIG)
  noisy = dict(inputs)
  rng = np.random.default_rng(7)
  pad = inputs["input_mask"] == 0
  noisy["input_ids"] = np.where(pad, rng.integers(1, 99, pad.shape), inputs["input_ids"]).astype(np.int32)
  noisy["segment_ids"] = np.where(pad, 1, inputs["segment_ids"]).astype(np.int32)
  a = np.asarray(model(inputs)["sequence_output"])
  b = np.asarray(model(noisy)["sequence_output"])
  real = inputs["input_mask"].astype(bool)
  np.testing.assert_allclose(a[real], b[real], atol=1e-5)
  assert np.abs(a[~real] - b[~real]).max() > 1e-3  # the padded positions themselves did change


def test_dropout_only_in_training(tiny_config):
  model = BertEncoder(tiny_config)
  inputs = random_inputs(TINY_CONFIG)
  infer = [np.asarray(model(inputs, training=False)["sequence_output"]) for _ in range(2)]
  np.testing.assert_array_equal(infer[0], infer[1])
  train = [np.asarray(model(inputs, training=True)["sequence_output"]) for _ in range(2)]
  assert np.abs(train[0] - train[1]).max() > 1e-3
  no_dropout = BertEncoder(BertConfig(**dict(TINY_CONFIG, hidden_dropout_prob=0.0,
                                             attention_probs_dropout_prob=0.0)))
  np.testing.assert_allclose(no_dropout(inputs, training=True)["sequence_output"],
                             no_dropout(inputs, training=False)["sequence_output"], atol=1e-6)


def test_initializer_is_truncated_normal_with_initializer_range():
  model = BertEncoder(BertConfig(**dict(TINY_CONFIG, hidden_size=64, intermediate_size=256,
                                        initializer_range=0.05)))
  kernel = next(w for w in model.weights if w.path == "encoder/layer_0/intermediate/dense/kernel")
  values = np.asarray(kernel.numpy())
  assert np.abs(values).max() <= 2 * 0.05 + 1e-6  # truncated at two standard deviations
  assert 0.035 < values.std() < 0.05  # truncation shrinks the std to about 0.88 * 0.05


def test_mlm_output_is_tied_to_word_embeddings(tiny_config):
  model = BertPretrainer(tiny_config)
  inputs = random_inputs(TINY_CONFIG, num_predictions=3)
  before = model(inputs)["mlm_logits"]
  model.embedding_table.assign(model.embedding_table * 2.0)
  after = model(inputs)["mlm_logits"]
  assert np.abs(np.asarray(after) - np.asarray(before)).max() > 1e-3
  assert sum(w is model.embedding_table for w in model.weights) == 1
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(model(inputs)["mlm_logits"])
  grad = tape.gradient(loss, model.embedding_table)
  # Every vocabulary row receives gradient through the output projection, not only looked-up ids.
  dense = tf.convert_to_tensor(grad)
  assert np.count_nonzero(np.abs(np.asarray(dense)).sum(axis=1)) == TINY_CONFIG["vocab_size"]


def test_extra_features_are_ignored_and_missing_ones_named(tiny_config):
  model = BertEncoder(tiny_config)
  inputs = random_inputs(TINY_CONFIG)
  full = dict(inputs, masked_lm_ids=np.zeros((13, 3), np.int32), next_sentence_labels=np.zeros((13, 1)))
  np.testing.assert_array_equal(model(full)["sequence_output"], model(inputs)["sequence_output"])
  with pytest.raises((KeyError, ValueError), match="input_mask"):
    model({"input_ids": inputs["input_ids"], "segment_ids": inputs["segment_ids"]})


@pytest.mark.parametrize("cls", [BertEncoder, BertPretrainer])
def test_native_keras_save_and_load(tmp_path, tiny_config, cls):
  model = cls(tiny_config)
  inputs = random_inputs(TINY_CONFIG, num_predictions=3)
  path = str(tmp_path / "model.keras")
  model.save(path)
  restored = keras.models.load_model(path)
  assert isinstance(restored, cls) and restored.config == tiny_config
  for key in ("sequence_output", "pooled_output") + (("mlm_logits", "nsp_logits") if cls is BertPretrainer else ()):
    np.testing.assert_array_equal(restored(inputs)[key], model(inputs)[key])
  model.save_weights(str(tmp_path / "w.weights.h5"))
  fresh = cls(tiny_config)
  fresh.load_weights(str(tmp_path / "w.weights.h5"))
  np.testing.assert_array_equal(fresh(inputs)["pooled_output"], model(inputs)["pooled_output"])


def test_static_shapes_compile_with_xla(tiny_config):
  model = BertPretrainer(tiny_config, seq_length=7, max_predictions_per_seq=3)
  inputs = random_inputs(TINY_CONFIG, num_predictions=3)
  out = tf.function(lambda x: model(x, training=True), jit_compile=True)(inputs)
  assert out["mlm_logits"].shape == (13, 3, 99)


def test_mixed_precision_keeps_logits_float32(tiny_config):
  keras.mixed_precision.set_global_policy("mixed_bfloat16")
  try:
    model = BertPretrainer(tiny_config)
    out = model(random_inputs(TINY_CONFIG, num_predictions=3))
  finally:
    keras.mixed_precision.set_global_policy("float32")
  assert out["sequence_output"].dtype == tf.bfloat16
  assert out["mlm_logits"].dtype == tf.float32 and out["nsp_logits"].dtype == tf.float32
  assert all(w.dtype == "float32" for w in model.weights)


def test_too_long_sequences_are_refused_clearly(tiny_config):
  model = BertEncoder(tiny_config)
  inputs = random_inputs(TINY_CONFIG, seq_length=TINY_CONFIG["max_position_embeddings"] + 1)
  with pytest.raises(ValueError, match="exceed max_position_embeddings=64"):
    model(inputs)
