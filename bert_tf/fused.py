"""XLA-fused kernels for the element-wise parts of a training step.

Without XLA, TensorFlow runs each element-wise operation as its own kernel, a full pass over its
tensor: the tanh GELU and its automatic gradient are about twenty passes over the
[batch * seq, intermediate_size] activation, layer normalization a dozen, a LAMB update about
fifteen per variable, the masked-LM softmax cross-entropy several over [predictions, vocab].
On a CPU those passes, not the matmuls, separated our pretraining step from the peers'. Each
function here is one XLA-compiled forward and one XLA-compiled hand-derived backward joined by a
custom gradient, so XLA fuses the chain into a loop or two, while the rest of the graph (matmuls
through oneDNN, attention) runs as before. Figures: benchmarks/results/pretraining_step.md.

Used for training only (gradients are first order): inference graphs and exported SavedModels
keep plain TensorFlow ops, because TF Serving disables XLA:CPU JIT by default. (In-process
inference on a CPU runs its nearly full batches as one XLA island instead: token_rows.dense_plan;
exported graphs, traced under kernels.portable(), do not.) Values equal the
plain formulas to float32 rounding (tests/test_fused.py).

Whether these kernels run as XLA islands is decided by device type in bert_tf.kernels (on CPUs,
where they were measured; plain TensorFlow ops on GPUs and TPUs). `set_xla_kernels(False)` (the
programs' `--noxla_kernels`) runs them as plain ops everywhere, e.g. on a device without XLA.
"""
import functools
import math

import tensorflow as tf
# XLA's variadic reduce is not in tf.raw_ops; tf2xla's wrapper is the way TensorFlow itself calls it.
from tensorflow.compiler.tf2xla.python import xla as tf_xla  # pylint: disable=g-direct-tensorflow-import

from bert_tf import kernels
from bert_tf.kernels import in_xla_context  # pylint: disable=unused-import  (public here too)

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def set_xla_kernels(enabled):
  """False: run the kernels as plain TensorFlow ops on every device; True: the device type's
  default (bert_tf.kernels). Takes effect for functions traced afterwards."""
  kernels.override(fused_kernels=None if enabled else False)


def _jit(function):
  compiled = tf.function(function, jit_compile=True, autograph=False, reduce_retracing=True)

  @functools.wraps(function)
  def call(*args):
    return (compiled if kernels.policy().fused_kernels else function)(*args)
  return call


# --- GELU, tanh approximation -------------------------------------------------------------------

def _gelu_tanh_term(x):
  # tanh(sqrt(2/pi) * (x + 0.044715 x^3)), x factored out: fewer multiplies.
  return tf.tanh(x * (_SQRT_2_OVER_PI + (_SQRT_2_OVER_PI * 0.044715) * (x * x)))


def _gelu_value(x):
  return 0.5 * x * (1.0 + _gelu_tanh_term(x))


def _gelu_derivative(x):
  # d/dx 0.5 x (1 + t) = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2); t is
  # recomputed inside the fused loop rather than stored by the forward.
  t = _gelu_tanh_term(x)
  slope = _SQRT_2_OVER_PI + (3.0 * _SQRT_2_OVER_PI * 0.044715) * (x * x)
  return 0.5 * (1.0 + t) + (0.5 * x) * (1.0 - t * t) * slope


@_jit
def _gelu_forward(x):
  return _gelu_value(x)


@_jit
def _gelu_backward(x, dy):
  return dy * _gelu_derivative(x)


@tf.custom_gradient
def gelu(x):
  """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), Google's "gelu".

  The bias add before it stays a TensorFlow BiasAdd: its gradient is a column sum over all
  rows, which TensorFlow's kernel runs on every core and the fused loop (measured) did not.
  """
  x = tf.convert_to_tensor(x)
  return _gelu_forward(x), lambda dy: _gelu_backward(x, dy)


# --- Dropout -------------------------------------------------------------------------------------

_PHILOX_MULTIPLIERS = (0xD2511F53, 0xCD9E8D57)
_PHILOX_KEY_STEPS = (0x9E3779B9, 0xBB67AE85)


def philox4x32(counter, key, rounds=10):
  """The Philox4x32 counter-based generator (Salmon et al. 2011, Random123's reference).

  Args:
    counter: 4 uint32 Tensors of one shape; key: 2 uint32 Tensors (scalars or that shape).
  Returns:
    4 uint32 Tensors of random bits, one output block per counter.
  """
  c0, c1, c2, c3 = counter
  k0, k1 = key
  xor = tf.bitwise.bitwise_xor
  for r in range(rounds):
    # 32 x 32 -> 64-bit products: high and low halves.
    p0 = tf.cast(c0, tf.uint64) * tf.constant(_PHILOX_MULTIPLIERS[0], tf.uint64)
    p1 = tf.cast(c2, tf.uint64) * tf.constant(_PHILOX_MULTIPLIERS[1], tf.uint64)
    hi0 = tf.cast(tf.bitwise.right_shift(p0, tf.constant(32, tf.uint64)), tf.uint32)
    hi1 = tf.cast(tf.bitwise.right_shift(p1, tf.constant(32, tf.uint64)), tf.uint32)
    c0, c1, c2, c3 = xor(xor(hi1, c1), k0), tf.cast(p1, tf.uint32), xor(xor(hi0, c3), k1), \
        tf.cast(p0, tf.uint32)
    if r < rounds - 1:
      k0 = k0 + tf.constant(_PHILOX_KEY_STEPS[0], tf.uint32)
      k1 = k1 + tf.constant(_PHILOX_KEY_STEPS[1], tf.uint32)
  return c0, c1, c2, c3


def random_bits16(shape, seed):
  """uint16 Tensor `shape` of random bits from Philox4x32-10; 16 bits per element decide a
  dropout with rate resolution 2^-16, so each 32-bit draw serves two elements. `seed`: int32
  Tensor [2].

  Outside XLA this is TensorFlow's stateless Philox kernel (multi-threaded C++). Inside an XLA
  computation that kernel becomes XLA's RNG expansion, which on a CPU took 2.4x as long as the
  same Philox written here in 32-bit integer ops (block i of the flat output from counter (i, 0,
  0, 0) under the seed as key; 3.9 vs 1.6 ms for a [8, 12, 128, 128] mask): that one is used
  there on CPUs (kernels.policy().philox_in_xla). Elsewhere TensorFlow's stateless op picks the
  device's own algorithm (on TPUs, XLA's ThreeFry). They give different (equally random) masks
  for one seed.
  """
  shape = tf.convert_to_tensor(shape, tf.int32)
  size = tf.reduce_prod(shape)
  if in_xla_context() and kernels.policy().philox_in_xla:
    counter = tf.bitcast(tf.range((size + 7) // 8, dtype=tf.int32), tf.uint32)
    zeros = tf.zeros_like(counter)
    key = tf.bitcast(tf.cast(seed, tf.int32), tf.uint32)
    blocks = tf.stack(philox4x32((counter, zeros, zeros, zeros), (key[0], key[1])), axis=-1)
    bits = tf.reshape(tf.bitcast(blocks, tf.uint16), [-1])
  else:
    draws = tf.random.stateless_uniform([(size + 1) // 2], seed=seed, minval=None, maxval=None,
                                        dtype=tf.uint32, alg="auto_select")
    bits = tf.reshape(tf.bitcast(draws, tf.uint16), [-1])
  return tf.reshape(bits[:size], shape)


def _keep_threshold(rate):
  # An element is kept when its 16 random bits are >= rate * 2^16: P(drop) = rate to 2^-17.
  return int(round(rate * 65536))


@_jit
def _dropout_apply(x, bits, rate):
  keep = bits >= tf.constant(_keep_threshold(rate), tf.uint16)
  return tf.where(keep, x * tf.cast(1.0 / (1.0 - rate), x.dtype), tf.zeros_like(x))


def dropout(x, rate, bits):
  """Inverted dropout of x (kept elements scaled by 1 / (1 - rate)) with the mask given by
  `bits` (uint16 Tensor like x, from random_bits16); the backward applies the same mask."""
  x = tf.convert_to_tensor(x)

  @tf.custom_gradient
  def function(x):
    return _dropout_apply(x, bits, rate), lambda dy: _dropout_apply(dy, bits, rate)

  return function(x)


# --- Layer normalization over the last axis ------------------------------------------------------

@_jit
def _layer_norm_forward(x, gamma, beta, epsilon):
  mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
  return (x - mean) * tf.math.rsqrt(variance + epsilon) * gamma + beta


@_jit
def _layer_norm_backward(x, gamma, epsilon, dy):
  # Statistics are recomputed (fused into the same loops) rather than kept from the forward.
  mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
  inverse = tf.math.rsqrt(variance + epsilon)
  normalized = (x - mean) * inverse
  d_normalized = dy * gamma
  dx = inverse * (d_normalized - tf.reduce_mean(d_normalized, axis=-1, keepdims=True)
                  - normalized * tf.reduce_mean(d_normalized * normalized, axis=-1, keepdims=True))
  # The gamma/beta gradients sum over [-1, width] rows: XLA:CPU sums the columns of a 2-D tensor
  # several times faster than the leading dimensions of a 3-D one (see token_rows.FlatRows).
  width = tf.shape(x)[-1]
  return (dx, tf.reduce_sum(tf.reshape(dy * normalized, [-1, width]), 0),
          tf.reduce_sum(tf.reshape(dy, [-1, width]), 0))


def layer_norm(x, gamma, beta, epsilon):
  """Layer normalization over the last axis, computed in float32.

  Args:
    x: float Tensor [..., width] (float16 / bfloat16 are normalized in float32).
    gamma, beta: float Tensors [width].
    epsilon: Python float added to the variance.
  Returns:
    float32 Tensor shaped like x.
  """
  epsilon = tf.constant(epsilon, tf.float32)

  @tf.custom_gradient
  def normalize(x, gamma, beta):
    def grad(dy):
      return _layer_norm_backward(x, gamma, epsilon, tf.cast(dy, tf.float32))
    return _layer_norm_forward(x, gamma, beta, epsilon), grad

  return normalize(tf.cast(x, tf.float32), tf.cast(gamma, tf.float32), tf.cast(beta, tf.float32))


# --- Sparse softmax cross-entropy ----------------------------------------------------------------

@_jit
def _cross_entropy_forward(labels, logits):
  peak = tf.reduce_max(logits, axis=-1, keepdims=True)
  log_normalizer = peak + tf.math.log(tf.reduce_sum(tf.exp(logits - peak), axis=-1, keepdims=True))
  picked = tf.gather(logits, labels[:, tf.newaxis], batch_dims=1)
  return (log_normalizer - picked)[:, 0], log_normalizer


@_jit
def _cross_entropy_backward(labels, logits, log_normalizer, dy):
  one_hot = tf.one_hot(labels, tf.shape(logits)[-1], dtype=logits.dtype)
  return (tf.exp(logits - log_normalizer) - one_hot) * dy[:, tf.newaxis]


def sparse_softmax_cross_entropy(labels, logits):
  """tf.nn.sparse_softmax_cross_entropy_with_logits, fused both ways.

  Args:
    labels: int Tensor [...]; every label must lie in [0, num_classes) (unlike the TF op, an
      out-of-range label is not reported: the pretraining preflight checks vocab sizes).
    logits: float32 Tensor [..., num_classes].
  Returns:
    float32 Tensor [...] of per-example losses.
  """
  labels, logits = tf.convert_to_tensor(labels), tf.convert_to_tensor(logits)
  # The kernels work on [examples, classes].
  flat_labels = tf.reshape(labels, [-1])

  @tf.custom_gradient
  def cross_entropy(flat_logits):
    loss, log_normalizer = _cross_entropy_forward(flat_labels, flat_logits)
    return loss, lambda dy: _cross_entropy_backward(flat_labels, flat_logits, log_normalizer, dy)

  flat_loss = cross_entropy(tf.reshape(logits, [-1, tf.shape(logits)[-1]]))
  return tf.reshape(flat_loss, tf.shape(labels))


# --- Sums of squares (global norm, LAMB trust ratio) ---------------------------------------------

@functools.cache
def _pair_sum_reducer():
  # The reducer of a two-operand XLA reduce: (accumulators..., inputs...) -> accumulators.
  scalar = tf.TensorSpec([], tf.float32)
  return tf.function(lambda a0, a1, x0, x1: (a0 + x0, a1 + x1),
                     autograph=False).get_concrete_function(*[scalar] * 4)


def sum_of_squares(x):
  """sum(x * x) in float32, for norms of whole variables and gradients.

  Inside XLA, one pass with the square fused into the loop: XLA:CPU splits a reduction over more
  than 32 elements into a 32-wide reduce-window and a second reduce (for accuracy), and does not
  fuse the square into the reduce-window, so a plain reduce_sum(x * x) writes the squares out,
  reads them back and sums them in scalar loops: 8.3-8.9 ms for the [30522, 768] embedding,
  0.8 ms for a [3072, 768] kernel. XLA leaves reductions with two operands alone, so here the
  rows are summed by a two-operand reduce (the second operand is the same squares, summed for
  nothing but costing no extra read), then the row sums by a plain one: 2.8 ms and 0.23 ms on
  this CPU, float32 sums within 1e-7 of a float64 reference like reduce_sum's
  (tests/test_fused.py; timings in docs/pretraining.md). Outside XLA, and on devices other than
  CPUs (kernels.policy().variadic_norm), reduce_sum.
  """
  x = tf.cast(x, tf.float32)
  if not in_xla_context() or not kernels.policy().variadic_norm:
    return tf.reduce_sum(x * x)
  # Rows of the last dimension (1 for a scalar), from the runtime shape: the kernels are traced
  # with relaxed shapes (reduce_retracing), and under XLA the shape is a compile-time constant.
  width = tf.concat([[1], tf.shape(x)], 0)[-1]
  rows = tf.reshape(x, [-1, width])
  squares = rows * rows
  zero = tf.constant(0.0, tf.float32)
  row_sums, _ = tf_xla.variadic_reduce([squares, squares], [zero, zero], [1], _pair_sum_reducer())
  return tf.reduce_sum(row_sums)


# --- Global norm -------------------------------------------------------------------------------

@_jit
def _squared_norm(x):
  return sum_of_squares(x)


def global_norm(tensors):
  """sqrt of the sum of squares of all `tensors` (None skipped; IndexedSlices by their values,
  as tf.linalg.global_norm), one fused read of each tensor instead of a square then a sum."""
  squares = [_squared_norm(t.values if isinstance(t, tf.IndexedSlices) else t)
             for t in tensors if t is not None]
  return tf.sqrt(tf.add_n(squares))


# --- Adam / LAMB update of one variable ----------------------------------------------------------

@_jit
def adam_update(gradient, gradient_scale, variable, m, v, learning_rate, step, beta_1, beta_2,
                epsilon, weight_decay_rate, bias_correction, decay, adapt):
  """New (m, v, variable) after one Adam step with decoupled weight decay (LAMB with `adapt`)
  on gradient * gradient_scale (the global-norm clipping factor, applied in the same loop).

  update = m_hat / (sqrt(v_hat) + epsilon) (+ weight_decay_rate * variable with `decay`), the
  hats bias-corrected with `bias_correction`; with `adapt` the step is scaled by the trust ratio
  ||variable|| / ||update|| (1 where either norm is 0).

  Args:
    gradient, variable, m, v: float Tensors of one shape.
    gradient_scale, learning_rate, step: scalar float Tensors (step counts from 1).
    beta_1, beta_2, epsilon, weight_decay_rate, bias_correction, decay, adapt: Python values.
  """
  gradient = gradient * gradient_scale
  m = m * beta_1 + gradient * (1.0 - beta_1)
  v = v * beta_2 + tf.square(gradient) * (1.0 - beta_2)
  if bias_correction:
    update = (m / (1.0 - tf.pow(beta_1, step))) / (tf.sqrt(v / (1.0 - tf.pow(beta_2, step))) +
                                                   epsilon)
  else:
    update = m / (tf.sqrt(v) + epsilon)
  if decay:
    update = update + weight_decay_rate * variable
  if adapt:
    w_norm, u_norm = tf.sqrt(sum_of_squares(variable)), tf.sqrt(sum_of_squares(update))
    learning_rate = learning_rate * tf.where(
        w_norm > 0, tf.where(u_norm > 0, w_norm / u_norm, 1.0), 1.0)
  return m, v, variable - learning_rate * update


# --- Row gathers for skipping padding ------------------------------------------------------------

@_jit
def _gather_rows(x, indices):
  # x[indices], a zero row where an index equals len(x): one fused pass (the clamped gather and
  # the select), where a concatenated zero row would copy x first.
  count = tf.shape(x)[0]
  rows = tf.gather(x, tf.minimum(indices, count - 1))
  return tf.where((indices < count)[:, tf.newaxis], rows, tf.zeros_like(rows))


def gather_rows(x, indices, inverse):
  """Rows of x picked by `indices`, an index equal to len(x) giving a row of zeros.

  `inverse` is the opposite map (index len(indices) for rows of x that no index picks), so the
  gradient is the same gather of dy by `inverse`: each row of x is picked at most once.

  Args:
    x: float Tensor [rows, width].
    indices: int32 Tensor [new_rows], values in [0, rows].
    inverse: int32 Tensor [rows], values in [0, new_rows].
  Returns:
    float Tensor [new_rows, width].
  """
  x = tf.convert_to_tensor(x)

  @tf.custom_gradient
  def gather(x):
    return _gather_rows(x, indices), lambda dy: gather_rows(dy, inverse, indices)

  return gather(x)
