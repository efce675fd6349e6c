"""Skipping padding at inference (bert_tf.layers.token_rows.InferenceRows, real_extent): the
fine-tuning models' outputs at real positions equal the padded computation's, on batches of
varied lengths, masks with holes and a row whose only real token is [CLS]."""
import numpy as np
import pytest
import tensorflow as tf

from bert_tf import BertConfig, BertEncoder
from bert_tf.layers import token_rows
from conftest import TINY_CONFIG
from finetuning.models import BertClassifier, BertSpanLabeler, BertTokenTagger

SEQ = 9
# Real-token masks: full, short, [CLS] only, a hole (padding between real tokens), two holes.
MASK = np.array([[1, 1, 1, 1, 1, 1, 1, 0, 0],
                 [1, 1, 1, 0, 0, 0, 0, 0, 0],
                 [1, 0, 0, 0, 0, 0, 0, 0, 0],
                 [1, 1, 0, 1, 1, 0, 0, 0, 0],
                 [1, 0, 1, 0, 1, 1, 0, 0, 0]], np.int32)


@pytest.fixture(autouse=True)
def _restore_switch():
  yield
  token_rows.set_skip_padding(None)


def _batch(mask=MASK, seed=0):
  rng = np.random.default_rng(seed)
  return {"input_ids": tf.constant(rng.integers(1, TINY_CONFIG["vocab_size"], mask.shape) * mask,
                                   tf.int32),
          "input_mask": tf.constant(mask),
          "segment_ids": tf.constant((np.arange(mask.shape[1]) >= 3) * mask, tf.int32)}


def _run(model, batch, skip, jit_compile=False):
  token_rows.set_skip_padding(skip)
  return tf.function(lambda b: model(b, training=False), jit_compile=jit_compile)(batch)


def test_real_extent_and_rows_with_holes():
  mask = tf.constant(MASK)
  assert int(token_rows.real_extent(mask)) == 7
  assert int(token_rows.real_extent(tf.zeros([2, 5], tf.int32))) == 1  # never empty
  rows = token_rows.InferenceRows(mask)
  x = tf.random.stateless_normal([5, SEQ, 4], seed=[1, 2])
  got = rows.to_rows(x)
  np.testing.assert_array_equal(got, x.numpy()[MASK == 1])  # exactly the real tokens, in order
  np.testing.assert_array_equal(rows.to_tokens(got), x.numpy() * MASK[..., None])


def _models():
  config = BertConfig(**TINY_CONFIG)
  return {"classifier": (BertClassifier(config, num_classes=3), ["logits"]),
          "tagger": (BertTokenTagger(config, num_labels=4, use_crf=True), ["logits", "transitions"]),
          "span_labeler": (BertSpanLabeler(config), ["start_logits", "end_logits"])}


@pytest.mark.parametrize("name", ["classifier", "tagger", "span_labeler"])
def test_inference_at_real_positions_equals_the_padded_computation(name):
  """Mutation caught: real_extent one too short (`tf.reduce_max(last) - 1`) changes every
  output (the longest row loses its last token); InferenceRows without its scatter's zeros is
  caught by the padding check of the sequence outputs."""
  model, keys = _models()[name]
  batch = _batch()
  skipped, padded = _run(model, batch, True), _run(model, batch, False)
  real = MASK == 1
  for key in keys:
    ours, ref = skipped[key].numpy(), padded[key].numpy()
    if ours.ndim >= 2 and ours.shape[1] == SEQ and key != "transitions":
      ours, ref = ours[real], ref[real]
    np.testing.assert_allclose(ours, ref, atol=2e-5, err_msg=key)
  np.testing.assert_allclose(skipped["pooled_output"], padded["pooled_output"], atol=2e-5)
  sequence, ref_sequence = skipped["sequence_output"].numpy(), padded["sequence_output"].numpy()
  np.testing.assert_allclose(sequence[real], ref_sequence[real], atol=2e-5)
  # The skip did run: zeros at padding, where the padded computation has values.
  assert np.all(sequence[~real] == 0.0) and np.abs(ref_sequence[~real]).max() > 0.1
  assert sequence.shape == ref_sequence.shape == (5, SEQ, TINY_CONFIG["hidden_size"])


def test_under_xla_the_padded_path_runs():
  model, _ = _models()["span_labeler"]
  batch = _batch()
  compiled, padded = _run(model, batch, True, jit_compile=True), _run(model, batch, False)
  for key in ("start_logits", "sequence_output"):   # padding positions included
    np.testing.assert_allclose(compiled[key], padded[key], atol=2e-5, err_msg=key)


def test_the_encoder_skips_only_for_callers_reading_real_positions():
  encoder = BertEncoder(BertConfig(**TINY_CONFIG))
  batch = _batch(seed=1)
  token_rows.set_skip_padding(True)
  plain = encoder(batch, training=False)
  with token_rows.reading_real_positions():
    skipped = encoder(batch, training=False)
  real = MASK == 1
  assert np.abs(plain["sequence_output"].numpy()[~real]).max() > 0.1   # the user's encoder
  assert np.all(skipped["sequence_output"].numpy()[~real] == 0.0)
  for ours, ref in zip(skipped["encoder_outputs"], plain["encoder_outputs"]):
    np.testing.assert_allclose(ours.numpy()[real], ref.numpy()[real], atol=2e-5)
  np.testing.assert_allclose(skipped["pooled_output"], plain["pooled_output"], atol=2e-5)



def test_exported_graphs_skip_padding_with_plain_ops():
  """Traced under kernels.portable() (the raw-text SavedModels) the classifier's inference cuts
  and scatters (the skip is on) and holds no XLA island. Mutation caught: portable() with
  skip_padding_at_inference off (no ScatterNd in the graph)."""
  from bert_tf import kernels  # pylint: disable=import-outside-toplevel
  model, _ = _models()["classifier"]
  spec = {k: tf.TensorSpec([None, None], tf.int32) for k in _batch()}
  kernels.set_device("cpu")
  with kernels.portable():
    graph = tf.function(lambda b: model(b, training=False)["logits"]).get_concrete_function(
        spec).graph
  ops = [op for function in [graph, *[f.graph for f in graph._functions.values()  # pylint: disable=protected-access
                                      if hasattr(f, "graph")]]
         for op in function.get_operations()]
  assert "ScatterNd" in {op.type for op in ops}
  assert not any("_XlaMustCompile" in op.node_def.attr and op.get_attr("_XlaMustCompile")
                 for op in ops)
