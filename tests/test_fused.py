"""bert_tf.fused against the plain TensorFlow formulas: values and gradients."""
import math

import numpy as np
import pytest
import tensorflow as tf

from bert_tf import fused


def _value_and_grads(function, inputs, weights):
  with tf.GradientTape() as tape:
    tape.watch(inputs)
    output = function(*inputs)
    loss = tf.reduce_sum(tf.cast(output, tf.float32) * weights)
  return output, tape.gradient(loss, inputs)


def _plain_gelu(x):
  return 0.5 * x * (1.0 + tf.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * tf.pow(x, 3))))


@pytest.mark.parametrize("shape", [(3, 5, 37), (64, 7)])
def test_gelu_matches_tanh_formula(shape):
  x = tf.random.stateless_normal(shape, seed=[1, 2]) * 3.0
  weights = tf.random.stateless_normal(shape, seed=[3, 4])
  ours, (d_ours,) = _value_and_grads(fused.gelu, [x], weights)
  ref, (d_ref,) = _value_and_grads(_plain_gelu, [x], weights)
  np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(d_ours, d_ref, rtol=1e-4, atol=1e-5)
  # Also matches the closed-form derivative at a hand-checked point: GELU'(0) = 0.5.
  _, (d_zero,) = _value_and_grads(fused.gelu, [tf.zeros([1])], tf.ones([1]))
  assert float(d_zero[0]) == pytest.approx(0.5)


def _plain_layer_norm(x, gamma, beta):
  mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
  return (x - mean) / tf.sqrt(variance + 1e-12) * gamma + beta


@pytest.mark.parametrize("shape", [(3, 5, 32), (11, 32)])
def test_layer_norm_matches_formula(shape):
  x = tf.random.stateless_normal(shape, seed=[5, 6]) * 4.0 + 2.0
  gamma = tf.random.stateless_normal([shape[-1]], seed=[7, 8])
  beta = tf.random.stateless_normal([shape[-1]], seed=[9, 10])
  weights = tf.random.stateless_normal(shape, seed=[11, 12])
  ours, d_ours = _value_and_grads(lambda *a: fused.layer_norm(*a, 1e-12), [x, gamma, beta], weights)
  ref, d_ref = _value_and_grads(_plain_layer_norm, [x, gamma, beta], weights)
  np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)
  for a, b in zip(d_ours, d_ref):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_layer_norm_layer_training_equals_inference_and_keeps_bfloat16():
  import keras  # pylint: disable=import-outside-toplevel
  from bert_tf.layers.normalization import LayerNorm  # pylint: disable=import-outside-toplevel
  x = tf.random.stateless_normal([2, 3, 16], seed=[1, 1]) * 3.0
  layer = LayerNorm(epsilon=1e-12)
  layer.build(x.shape)
  layer.gamma.assign(tf.random.stateless_normal([16], seed=[2, 2]))
  np.testing.assert_allclose(layer(x, training=True), layer(x, training=False), atol=1e-5)
  keras.mixed_precision.set_global_policy("mixed_bfloat16")
  try:
    half = LayerNorm(epsilon=1e-12)
    half.build(x.shape)
    with tf.GradientTape() as tape:
      xb = tf.cast(x, tf.bfloat16)
      tape.watch(xb)
      out = half(xb, training=True)
    assert out.dtype == tf.bfloat16 and half.gamma.dtype == tf.float32
    assert tape.gradient(out, xb).dtype == tf.bfloat16
  finally:
    keras.mixed_precision.set_global_policy("float32")


def test_cross_entropy_matches_tf_op():
  logits = tf.random.stateless_normal([4, 5, 301], seed=[1, 3]) * 5.0
  labels = tf.random.stateless_uniform([4, 5], seed=[2, 3], maxval=301, dtype=tf.int32)
  weights = tf.random.stateless_uniform([4, 5], seed=[4, 3])
  ours, (d_ours,) = _value_and_grads(lambda l: fused.sparse_softmax_cross_entropy(labels, l),
                                     [logits], weights)
  ref, (d_ref,) = _value_and_grads(
      lambda l: tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=l),
      [logits], weights)
  np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(d_ours, d_ref, atol=1e-6)
  # Stable for logits far from zero, where a naive log(softmax) would overflow.
  big = tf.constant([[1000.0, 0.0, -1000.0]])
  np.testing.assert_allclose(fused.sparse_softmax_cross_entropy(tf.constant([1]), big), [1000.0])


def _fused_step(x, labels, gamma, beta, weights):
  """Per-example loss of gelu -> layer_norm -> cross-entropy and its gradient for x."""
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = fused.layer_norm(fused.gelu(x), gamma, beta, 1e-12) * weights
    loss = fused.sparse_softmax_cross_entropy(labels, y)
  return loss, tape.gradient(loss, x)


def _plain_step(x, labels, gamma, beta, weights):
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = _plain_layer_norm(_plain_gelu(x), gamma, beta) * weights
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=y)
  return loss, tape.gradient(loss, x)


def _step_inputs():
  return (tf.random.stateless_normal([8, 8], seed=[1, 9]) * 2.0,
          tf.random.stateless_uniform([8], seed=[2, 9], maxval=8, dtype=tf.int32),
          tf.random.stateless_normal([8], seed=[3, 9]) + 1.0,
          tf.random.stateless_normal([8], seed=[4, 9]), tf.random.stateless_normal([8], seed=[5, 9]))


def test_kernels_run_inside_a_compiled_step():
  """Values and gradients of the composed kernels (random LayerNorm scale and offset, weighted
  logits: nothing cancels) eager and inside jit_compile equal the plain TensorFlow formulas."""
  inputs = _step_inputs()
  reference = _plain_step(*inputs)
  assert float(tf.reduce_max(tf.abs(reference[1]))) > 0.01
  for result in (_fused_step(*inputs), tf.function(_fused_step, jit_compile=True)(*inputs)):
    np.testing.assert_allclose(result[0], reference[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(result[1], reference[1], rtol=1e-4, atol=1e-5)


MIRRORED_SCRIPT = r"""
import sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, "tests")
import test_fused
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
x, labels, gamma, beta, weights = test_fused._step_inputs()
batches = strategy.experimental_distribute_dataset(
    tf.data.Dataset.from_tensor_slices((x, labels)).batch(8))
per_replica = strategy.run(tf.function(lambda x, l: test_fused._fused_step(x, l, gamma, beta,
                                                                           weights)),
                           args=next(iter(batches)))
losses, grads = [[t.numpy() for t in strategy.experimental_local_results(v)] for v in per_replica]
assert [len(l) for l in losses] == [4, 4], [len(l) for l in losses]
reference = test_fused._plain_step(x, labels, gamma, beta, weights)
np.testing.assert_allclose(np.concatenate(losses), reference[0], rtol=1e-5, atol=1e-5)
np.testing.assert_allclose(np.concatenate(grads), reference[1], rtol=1e-4, atol=1e-5)
print("replicas", strategy.num_replicas_in_sync)
"""


def test_kernels_run_under_a_two_replica_mirrored_strategy():
  """Two logical CPUs (configured before TensorFlow starts, hence the child process): each
  replica runs the fused kernels on its half of the batch, and the halves' losses and gradients
  equal the plain formulas on the whole batch. Mutation caught: one logical CPU (1 replica)."""
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  from conftest import ROOT  # pylint: disable=import-outside-toplevel
  result = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "replicas 2" in result.stdout


# Random123's known-answer vectors for Philox4x32-10 (kat_vectors): counter, key -> output.
PHILOX_KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter,key,expected", PHILOX_KAT)
def test_philox_matches_random123_known_answers(counter, key, expected):
  as_u32 = lambda values: [tf.constant([v], tf.uint32) for v in values]  # pylint: disable=unnecessary-lambda-assignment
  for compile_ in (False, True):
    out = tf.function(lambda c, k: fused.philox4x32(c, k), jit_compile=compile_)(
        as_u32(counter), as_u32(key))
    assert tuple(int(o.numpy()[0]) for o in out) == expected


@pytest.mark.parametrize("jit_compile", [False, True])  # TensorFlow's Philox kernel / ours in XLA
def test_random_bits_are_uniform_and_dropout_keeps_the_rate(jit_compile):
  bits = tf.function(fused.random_bits16, jit_compile=jit_compile)(
      tf.constant([1000, 101]), tf.constant([3, 5]))   # odd width: the tail draw
  assert bits.dtype == tf.uint16 and bits.shape == (1000, 101)
  values = tf.cast(bits, tf.float32).numpy() / 65536.0
  assert abs(values.mean() - 0.5) < 0.005 and abs(values.std() - 1 / math.sqrt(12)) < 0.005
  # Neighbouring elements (two halves of one draw, adjacent draws) are uncorrelated.
  flat = values.reshape(-1) - 0.5
  for lag in (1, 2, 8):
    assert abs(np.mean(flat[:-lag] * flat[lag:])) < 0.002
  # Another seed, other bits.
  other = tf.function(fused.random_bits16, jit_compile=jit_compile)(
      tf.constant([1000, 101]), tf.constant([3, 6]))
  assert (other.numpy() != bits.numpy()).mean() > 0.99
  x = tf.ones([1000, 101])
  dropped = fused.dropout(x, 0.1, bits).numpy()
  # Kept elements are scaled by 1 / (1 - rate); the drop rate is binomial around 0.1.
  np.testing.assert_allclose(np.unique(dropped), [0.0, 1 / 0.9], rtol=1e-6)
  assert abs((dropped == 0).mean() - 0.1) < 4 * math.sqrt(0.09 / dropped.size)


def test_dropout_layer_masks_the_gradient_like_the_output_and_is_identity_at_inference():
  from bert_tf.layers.dropout import Dropout  # pylint: disable=import-outside-toplevel
  layer = Dropout(0.3, seed=7)
  x = tf.random.stateless_normal([64, 50], seed=[1, 4])
  np.testing.assert_array_equal(layer(x, training=False), x)
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = layer(x, training=True)
  grad = tape.gradient(y, x).numpy()
  kept = y.numpy() != 0
  np.testing.assert_allclose(grad[kept], 1 / 0.7, rtol=1e-6)
  assert not grad[~kept].any()
  assert abs((~kept).mean() - 0.3) < 0.03
  # A fresh mask on every call.
  assert (layer(x, training=True).numpy() != y.numpy()).any()


def test_global_norm_matches_tf_and_counts_indexed_slices_by_values():
  tensors = [tf.random.stateless_normal(s, seed=[i, 0]) for i, s in enumerate([(3, 4), (7,), (2, 2, 2)])]
  sliced = tf.IndexedSlices(tf.constant([[1.0, 2.0]]), tf.constant([1]), tf.constant([3, 2]))
  values = tensors + [None, sliced]
  np.testing.assert_allclose(fused.global_norm(values), tf.linalg.global_norm(values), rtol=1e-6)


@pytest.mark.parametrize("shape", [(), (7,), (3, 5, 7), (4096, 999)])
@pytest.mark.parametrize("jit_compile", [False, True])
def test_sum_of_squares_matches_a_float64_sum(shape, jit_compile):
  # Inside XLA the rows are summed by a two-operand reduce (not XLA's reduce-window split):
  # the float32 result must stay as close to a float64 sum as reduce_sum's is.
  x = tf.random.stateless_normal(shape, seed=[4, 2]) * 0.03 + 0.01
  reference = np.sum(x.numpy().astype(np.float64) ** 2)
  got = float(tf.function(fused.sum_of_squares, jit_compile=jit_compile)(x))
  assert abs(got - reference) <= 2e-6 * reference
  # Traced with unknown dimensions (as the kernels are, with reduce_retracing) and in bfloat16.
  relaxed = tf.function(fused.sum_of_squares, jit_compile=True,
                        input_signature=[tf.TensorSpec([None] * len(shape), tf.bfloat16)])
  x16 = tf.cast(x, tf.bfloat16)
  reference16 = np.sum(tf.cast(x16, tf.float64).numpy() ** 2)
  assert abs(float(relaxed(x16)) - reference16) <= 2e-6 * reference16


def _compiled_function_count(concrete):
  library = concrete.graph.as_graph_def().library.function
  return sum(1 for f in library if f.attr["_XlaMustCompile"].b)


def test_training_graph_uses_the_fused_kernels_and_inference_graph_needs_no_xla(tiny_config):
  from bert_tf import BertPretrainer  # pylint: disable=import-outside-toplevel
  model = BertPretrainer(tiny_config, seq_length=7, max_predictions_per_seq=2)
  features = {"input_ids": tf.ones([2, 7], tf.int32), "input_mask": tf.ones([2, 7], tf.int32),
              "segment_ids": tf.zeros([2, 7], tf.int32),
              "masked_lm_positions": tf.constant([[1, 2], [3, 4]])}

  def trace(training):
    @tf.function
    def forward(features):
      with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(features, training=training)["mlm_logits"])
      return tape.gradient(loss, model.trainable_variables)
    return forward.get_concrete_function(features)

  assert _compiled_function_count(trace(True)) > 0
  inference = tf.function(lambda f: model(f, training=False)).get_concrete_function(features)
  assert _compiled_function_count(inference) == 0
  # And training mode without dropout computes what inference computes.
  config = dict(tiny_config.to_dict(), hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
  from bert_tf import BertConfig  # pylint: disable=import-outside-toplevel
  quiet = BertPretrainer(BertConfig(**config), seq_length=7, max_predictions_per_seq=2)
  np.testing.assert_allclose(quiet(features, training=True)["mlm_logits"],
                             quiet(features, training=False)["mlm_logits"], atol=2e-5)


def test_kernels_run_as_plain_ops_when_xla_is_switched_off():
  x = tf.random.stateless_normal([4, 8], seed=[2, 9])

  # A random scale and offset and weighted outputs: with unit scale and zero offset the sum of
  # a LayerNorm output is identically 0, and so is its gradient (which compared nothing).
  gamma = tf.random.stateless_normal([8], seed=[3, 9]) + 1.0
  beta = tf.random.stateless_normal([8], seed=[4, 9])
  weights = tf.random.stateless_normal([4, 8], seed=[5, 9])

  @tf.function
  def step(x):
    with tf.GradientTape() as tape:
      tape.watch(x)
      loss = tf.reduce_sum(fused.layer_norm(fused.gelu(x), gamma, beta, 1e-12) * weights)
    return loss, tape.gradient(loss, x)

  fused_result = step.get_concrete_function(x)
  fused.set_xla_kernels(False)
  try:
    plain = tf.function(step.python_function).get_concrete_function(x)
  finally:
    fused.set_xla_kernels(True)
  assert _compiled_function_count(fused_result) > 0 and _compiled_function_count(plain) == 0
  with tf.GradientTape() as tape:
    tape.watch(x)
    formula = tf.reduce_sum(_plain_layer_norm(_plain_gelu(x), gamma, beta) * weights)
  reference = (formula, tape.gradient(formula, x))
  assert abs(float(reference[0])) > 0.1 and float(tf.reduce_min(tf.abs(reference[1]))) > 1e-4
  for result in (fused_result(x), plain(x)):
    for a, b in zip(result, reference):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
