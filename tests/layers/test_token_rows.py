"""Skipping padding in training (bert_tf.layers.token_rows): the rows, their gradients, and models
whose outputs and gradients equal the padded computation's."""
import numpy as np
import pytest
import tensorflow as tf

from bert_tf import BertConfig, BertPretrainer, fused
from bert_tf.layers import token_rows
from conftest import TINY_CONFIG

LENGTHS = [7, 3, 0, 5, 1, 7]  # a full row, an all-padding row, a single token


def _mask(lengths, seq_length=7):
  return (np.arange(seq_length)[None, :] < np.array(lengths)[:, None]).astype(np.int32)


@pytest.fixture(autouse=True)
def _restore_switch():
  yield
  token_rows.set_skip_padding(True)


def test_rows_are_the_real_tokens_in_order_and_come_back_with_zero_padding():
  mask = _mask(LENGTHS)
  x = tf.random.stateless_normal([6, 7, 5], seed=[1, 2])
  rows = token_rows.TokenRows(tf.constant(mask))
  got = rows.to_rows(x).numpy()
  real = x.numpy()[mask == 1]  # numpy's boolean indexing: row-major order
  # 23 real tokens of 42; rows are rounded up to a multiple of max(seq_length, 42 // 32) = 7.
  assert len(real) == 23 and got.shape == (28, 5)
  np.testing.assert_array_equal(got[:23], real)
  np.testing.assert_array_equal(got[23:], 0.0)
  np.testing.assert_array_equal(rows.to_tokens(rows.to_rows(x)).numpy(), x.numpy() * mask[..., None])


def test_row_count_never_exceeds_the_batch():
  rows = token_rows.TokenRows(tf.constant(_mask([7, 7, 6])))
  assert rows.to_rows(tf.zeros([3, 7, 2])).shape == (21, 2)
  rows = token_rows.TokenRows(tf.constant(_mask([0, 0])))
  assert rows.to_rows(tf.zeros([2, 7, 2])).shape == (7, 2)  # never empty: one granule of zeros


def test_gather_rows_gradient_is_the_inverse_gather():
  # Reference: gather from x with a zero row appended, differentiated by TensorFlow.
  x = tf.random.stateless_normal([5, 3], seed=[3, 4])
  indices = tf.constant([4, 0, 5, 2, 5, 1])  # 5 = the zero row; row 3 of x is never picked
  inverse = tf.constant([1, 5, 3, 6, 0])  # where each row of x went (6 = nowhere)
  weights = tf.random.stateless_normal([6, 3], seed=[5, 6])
  with tf.GradientTape(persistent=True) as tape:
    tape.watch(x)
    ours = fused.gather_rows(x, indices, inverse)
    ref = tf.gather(tf.concat([x, tf.zeros([1, 3])], 0), indices)
    loss_ours, loss_ref = tf.reduce_sum(ours * weights), tf.reduce_sum(ref * weights)
  np.testing.assert_array_equal(ours, ref)
  np.testing.assert_allclose(tape.gradient(loss_ours, x),
                             tf.convert_to_tensor(tape.gradient(loss_ref, x)), atol=1e-7)


def _batch(batch_size=6, seq_length=7, predictions=3, seed=0):
  rng = np.random.default_rng(seed)
  # Every row has its [CLS]: an all-padding row's pooled output is undefined either way.
  lengths = np.array([7, 3, 1, 5, 2, 7][:batch_size])
  mask = _mask(lengths, seq_length)
  # Masked positions on real tokens only (padding positions have no defined output here).
  positions = np.stack([rng.integers(0, max(length, 1), predictions) for length in lengths])
  return {"input_ids": rng.integers(1, TINY_CONFIG["vocab_size"], mask.shape).astype(np.int32) * mask,
          "input_mask": mask, "segment_ids": (np.arange(seq_length) >= 3).astype(np.int32) * mask,
          "masked_lm_positions": positions.astype(np.int32),
          "masked_lm_ids": rng.integers(1, TINY_CONFIG["vocab_size"], positions.shape).astype(np.int32),
          "next_sentence_labels": rng.integers(0, 2, (batch_size, 1)).astype(np.int32)}


def _training_step(model, batch, skip, jit_compile=False):
  token_rows.set_skip_padding(skip)

  @tf.function(jit_compile=jit_compile)
  def step(batch):
    with tf.GradientTape() as tape:
      out = model(batch, training=True)
      loss = (tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
          batch["masked_lm_ids"], out["mlm_logits"])) +
              tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                  batch["next_sentence_labels"][:, 0], out["nsp_logits"])))
    return out, loss, tape.gradient(loss, model.trainable_variables)
  return step({k: tf.constant(v) for k, v in batch.items()})


def _no_dropout_pretrainer(**kwargs):
  # Without dropout a training call is deterministic, so both paths must agree exactly.
  return BertPretrainer(BertConfig(**{**TINY_CONFIG, "hidden_dropout_prob": 0.0,
                                      "attention_probs_dropout_prob": 0.0}), **kwargs)


def _assert_same_step(variables, step, reference, grad_atol):
  """Two _training_step results (outputs, loss, gradients) agree: logits to 1e-5, the loss to a
  relative 1e-6, every gradient to grad_atol."""
  (out, loss, grads), (ref_out, ref_loss, ref_grads) = step, reference
  np.testing.assert_allclose(out["mlm_logits"], ref_out["mlm_logits"], atol=1e-5)
  np.testing.assert_allclose(out["nsp_logits"], ref_out["nsp_logits"], atol=1e-5)
  np.testing.assert_allclose(loss, ref_loss, rtol=1e-6)
  for variable, g, ref in zip(variables, grads, ref_grads):
    np.testing.assert_allclose(tf.convert_to_tensor(g), tf.convert_to_tensor(ref), atol=grad_atol,
                               err_msg=variable.path)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_pretrainer_training_equals_the_padded_computation(jit_compile):
  model = _no_dropout_pretrainer()
  batch = _batch()
  step = _training_step(model, batch, skip=True, jit_compile=jit_compile)
  reference = _training_step(model, batch, skip=False)
  _assert_same_step(model.trainable_variables, step, reference, grad_atol=1e-5)
  out, ref_out = step[0], reference[0]
  real = batch["input_mask"] == 1
  sequence = out["sequence_output"].numpy()
  np.testing.assert_allclose(sequence[real], ref_out["sequence_output"].numpy()[real], atol=1e-5)
  if jit_compile:  # inside XLA shapes are static: the padded path runs, padding included
    np.testing.assert_allclose(sequence, ref_out["sequence_output"], atol=1e-5)
  else:  # padding is skipped: zeros there, where the padded computation has values
    assert np.all(sequence[~real] == 0.0)
    assert np.abs(ref_out["sequence_output"].numpy()[~real]).max() > 0.1


@pytest.mark.parametrize("jit_compile", [False, True])
def test_padded_training_path_equals_plain_inference_ops(jit_compile):
  # Training calls that keep padding run on flattened [tokens, width] rows (FlatRows) and, inside
  # XLA, project query/key/value with one concatenated matmul. The reference is the inference
  # call without dropout: [batch, seq, width] tensors, Keras' own Dense/LayerNorm/GELU ops,
  # three projections, differentiated by TensorFlow.
  model = _no_dropout_pretrainer()
  batch = {k: tf.constant(v) for k, v in _batch().items()}
  token_rows.set_skip_padding(False)
  weights = tf.random.stateless_normal([6, 3, TINY_CONFIG["vocab_size"]], seed=[3, 4])

  def run(training, jit):
    @tf.function(jit_compile=jit)
    def step(batch):
      with tf.GradientTape() as tape:
        out = model(batch, training=training)
        loss = tf.reduce_sum(out["mlm_logits"] * weights) + tf.reduce_sum(out["nsp_logits"])
      return out, tape.gradient(loss, model.trainable_variables)
    return step(batch)

  out, grads = run(True, jit_compile)
  ref_out, ref_grads = run(False, False)
  for key in ("mlm_logits", "nsp_logits", "sequence_output"):
    np.testing.assert_allclose(out[key], ref_out[key], atol=2e-5, err_msg=key)
  for variable, g, ref in zip(model.trainable_variables, grads, ref_grads):
    np.testing.assert_allclose(tf.convert_to_tensor(g), tf.convert_to_tensor(ref), atol=2e-5,
                               err_msg=variable.path)


def test_flat_rows_are_a_reshape_both_ways():
  x = tf.random.stateless_normal([3, 4, 5], seed=[7, 8])
  rows = token_rows.FlatRows(x)
  np.testing.assert_array_equal(rows.to_rows(x), x.numpy().reshape(12, 5))
  np.testing.assert_array_equal(rows.to_tokens(rows.to_rows(x)), x)


def test_classifier_training_equals_the_padded_computation():
  from finetuning.models import BertClassifier  # pylint: disable=import-outside-toplevel
  config = BertConfig(**{**TINY_CONFIG, "hidden_dropout_prob": 0.0,
                         "attention_probs_dropout_prob": 0.0})
  model = BertClassifier(config, num_classes=3)
  batch = {k: tf.constant(v) for k, v in _batch().items()
           if k in ("input_ids", "input_mask", "segment_ids")}
  results = []
  for skip in (True, False):
    token_rows.set_skip_padding(skip)
    with tf.GradientTape() as tape:
      logits = tf.function(lambda b: model(b, training=True)["logits"])(batch)
      loss = tf.reduce_sum(logits * tf.constant([1.0, -2.0, 0.5]))
    results.append((logits, tape.gradient(loss, model.trainable_variables)))
  np.testing.assert_allclose(results[0][0], results[1][0], atol=1e-5)
  for g, ref in zip(results[0][1], results[1][1]):
    np.testing.assert_allclose(tf.convert_to_tensor(g), tf.convert_to_tensor(ref), atol=1e-5)


def test_inference_and_the_encoder_keep_padding_outputs():
  from bert_tf import BertEncoder  # pylint: disable=import-outside-toplevel
  batch = {k: tf.constant(v) for k, v in _batch().items()
           if k in ("input_ids", "input_mask", "segment_ids")}
  padding = batch["input_mask"].numpy() == 0
  encoder = BertEncoder(BertConfig(**TINY_CONFIG))  # sequence outputs are the user's: never skipped
  assert np.abs(encoder(batch, training=True)["sequence_output"].numpy()[padding]).max() > 0.1
  pretrainer = _no_dropout_pretrainer()
  assert np.abs(pretrainer(dict(batch, masked_lm_positions=tf.zeros([6, 3], tf.int32)),
                           training=False)["sequence_output"].numpy()[padding]).max() > 0.1


def test_dropout_still_drops_on_rows():
  model = BertPretrainer(BertConfig(**TINY_CONFIG))
  batch = {k: tf.constant(v) for k, v in _batch().items()}
  first, second = (model(batch, training=True)["sequence_output"] for _ in range(2))
  real = batch["input_mask"].numpy() == 1
  assert np.abs(first.numpy()[real] - second.numpy()[real]).max() > 1e-3


@pytest.mark.parametrize("skip", [True, False])
def test_pretrainer_heads_on_the_selected_last_layer_equal_the_heads_on_the_full_output(skip):
  # BertPretrainer computes its last layer at [CLS] and the masked positions only; the same heads
  # applied to the full last layer (the model's own sequence_output) must give the same logits
  # and the same gradients.
  model = _no_dropout_pretrainer()
  batch = {k: tf.constant(v) for k, v in _batch().items()}
  token_rows.set_skip_padding(skip)
  mlm_head, nsp_head = model.get_layer("predictions"), model.get_layer("seq_relationship")
  pooler = model.get_layer("pooler")

  @tf.function
  def both(batch):
    with tf.GradientTape(persistent=True) as tape:
      out = model(batch, training=True)
      full_mlm = mlm_head(out["sequence_output"], batch["masked_lm_positions"],
                          model.get_layer("embeddings").word_embeddings)
      full_nsp = nsp_head(pooler(out["sequence_output"]))
      weights = tf.random.stateless_normal(tf.shape(full_mlm), seed=[1, 2])
      loss = tf.reduce_sum(out["mlm_logits"] * weights) + tf.reduce_sum(out["nsp_logits"])
      full_loss = tf.reduce_sum(full_mlm * weights) + tf.reduce_sum(full_nsp)
    variables = model.trainable_variables
    return (out["mlm_logits"], out["nsp_logits"], full_mlm, full_nsp,
            tape.gradient(loss, variables), tape.gradient(full_loss, variables))

  mlm, nsp, full_mlm, full_nsp, grads, full_grads = both(batch)
  np.testing.assert_allclose(mlm, full_mlm, atol=1e-5)
  np.testing.assert_allclose(nsp, full_nsp, atol=1e-5)
  for variable, g, ref in zip(model.trainable_variables, grads, full_grads):
    np.testing.assert_allclose(tf.convert_to_tensor(g), tf.convert_to_tensor(ref), atol=1e-4,
                               err_msg=variable.path)


@pytest.mark.parametrize("skip", [True, False])
def test_full_last_layer_option_equals_the_default(skip):
  """BertPretrainer(last_layer_at_predictions=False) computes the whole last layer and gathers the
  masked positions from it; with the default's weights its logits, loss, weight paths and every
  gradient equal the default's. Mutation tried: gathering from encoder_outputs[-2] (the layer
  before the last) in that branch made the logits differ."""
  model, full = _no_dropout_pretrainer(), _no_dropout_pretrainer(last_layer_at_predictions=False)
  batch = _batch()
  full(batch)
  assert [w.path for w in full.weights] == [w.path for w in model.weights]
  full.set_weights(model.get_weights())
  _assert_same_step(model.trainable_variables, _training_step(full, batch, skip=skip),
                    _training_step(model, batch, skip=skip), grad_atol=1e-4)
  assert full.get_config()["last_layer_at_predictions"] is False
