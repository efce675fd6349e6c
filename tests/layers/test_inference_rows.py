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


# Mostly real after the cut to extent 8 (37 of 40 tokens): token_rows.dense_plan runs it padded.
DENSE_MASK = np.array([[1, 1, 1, 1, 1, 1, 1, 1, 0],
                       [1, 1, 1, 1, 1, 1, 1, 0, 0],
                       [1, 1, 1, 1, 1, 1, 1, 1, 0],
                       [1, 1, 1, 0, 1, 1, 1, 1, 0],
                       [1, 1, 1, 1, 1, 1, 1, 0, 0]], np.int32)


def test_dense_plan_lengths_and_choice():
  """Padded when real tokens are at least DENSE_SHARE (DENSE_SHARE_WITHOUT_XLA without XLA) of
  batch x length; under XLA the length is rounded up to a quarter of seq_length (at least 32), so
  XLA compiles a few lengths."""
  def plan(mask, xla):
    mask = tf.constant(mask)
    length, dense = token_rows.dense_plan(mask, token_rows.real_extent(mask), xla)
    return int(length), bool(dense)
  assert plan(MASK, xla=False) == (7, False)     # 19 of 35
  assert plan(DENSE_MASK, xla=False) == (8, True)   # 37 of 40
  assert plan(DENSE_MASK, xla=True) == (9, True)    # rounded to the whole (short) sequence
  long_rows = np.zeros([2, 512], np.int32)
  long_rows[:, :130] = 1
  assert plan(long_rows, xla=True) == (256, False)   # 260 of 512: on rows
  long_rows[:, :200] = 1
  assert plan(long_rows, xla=True) == (256, True)    # 400 of 512
  assert plan(long_rows, xla=False) == (200, True)
  long_rows[0, 120:] = 0
  assert plan(long_rows, xla=False) == (200, False)  # 320 of 400: without XLA rows still pay
  assert plan(long_rows[:, :128], xla=True) == (128, True)
  assert plan(np.zeros([0, 9], np.int32), xla=True) == (9, False)   # an empty batch: rows


@pytest.mark.parametrize("xla_island", [True, False])
@pytest.mark.parametrize("name", ["classifier", "span_labeler"])
def test_dense_batches_run_padded_with_the_same_outputs(name, xla_island, monkeypatch):
  """A batch mostly real after the cut runs padded (under an XLA island where the policy allows
  it), with zeros at padding as the rows path gives; MASK's batch runs on rows. Mutations caught:
  the padded branch without its mask multiply (padding not zero), dense_plan never choosing the
  padded run (the rows counter moves)."""
  from bert_tf import kernels  # pylint: disable=import-outside-toplevel
  rows_built = tf.Variable(0)
  plain_init = token_rows.InferenceRows.__init__

  def counted_init(self, input_mask):   # a stateful op: counts only when the rows branch runs
    rows_built.assign_add(1)
    plain_init(self, input_mask)
  monkeypatch.setattr(token_rows.InferenceRows, "__init__", counted_init)
  model, keys = _models()[name]
  batch = _batch(DENSE_MASK, seed=2)
  padded = _run(model, batch, False)
  kernels.set_device("cpu")
  kernels.override(fused_kernels=None if xla_island else False)
  try:
    skipped = tf.function(lambda b: model(b, training=False))
    token_rows.set_skip_padding(True)
    graph = skipped.get_concrete_function(batch).graph
    ours = skipped(batch)
    assert int(rows_built.numpy()) == 0   # the padded run
    skipped(_batch(seed=2))
    assert int(rows_built.numpy()) == 1   # MASK's sparse batch: on rows
  finally:
    kernels.override(fused_kernels=None)
  real = DENSE_MASK == 1
  for key in keys + ["sequence_output"]:
    got, ref = ours[key].numpy(), padded[key].numpy()
    if got.ndim >= 2 and got.shape[1] == SEQ:
      assert np.all(got[~real] == 0.0), key
      got, ref = got[real], ref[real]
    np.testing.assert_allclose(got, ref, atol=2e-5, err_msg=key)
  functions = [graph, *[f.graph for f in graph._functions.values() if hasattr(f, "graph")]]  # pylint: disable=protected-access
  islands = [op for f in functions for op in f.get_operations()
             if "_XlaMustCompile" in op.node_def.attr and op.get_attr("_XlaMustCompile")]
  assert bool(islands) == xla_island


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
