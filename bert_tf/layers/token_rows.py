"""Skipping padding: the real tokens of a padded batch as the rows of one matrix.

Every part of a transformer block except the attention scores works on each token alone (the
dense layers, GELU, dropout, residual adds, LayerNorm), so it can run on the real tokens only:
a batch whose sequences are a quarter padding then costs a quarter less in those parts, which
hold nearly all of BERT's matmul FLOPs. Only the attention needs the [batch, seq] layout, so its
query, key and value are laid back out for the scores and its context is gathered back to rows.
NVIDIA's and other "unpadded" BERT implementations do the same.

The number of real tokens changes from batch to batch, so this path has dynamic shapes: it runs
wherever TensorFlow runs ops one by one (CPU, GPU without XLA) and is off inside an XLA
computation (jit_compile=True, TPUs), which needs static shapes. The row count is rounded up to
a multiple of about 1/32 of the batch's tokens (at least seq_length), so the XLA-fused kernels
(bert_tf.fused) compile for a few row counts, not for every batch; the extra rows are zeros and
never reach an output.

Inference (InferenceRows, real_extent, dense_plan) goes further: the batch is first cut to its
longest real extent (the last real position of any row, plus one), which also shrinks the
attention's [seq, seq] scores. Then, per batch: if real tokens are a small enough share of what is
left, the dense parts run on exactly the real tokens' rows with plain gathers and scatters (no XLA
island, no rounding of the row count: no gradient and nothing compiled per shape); if not (reading
comprehension windows, long reviews), the cut batch runs padded, as one XLA island where the
kernel policy allows XLA (its length rounded up to a quarter of seq_length, so XLA compiles a few
lengths), since there the gathers cost more than the padding they save. The outputs are padded
back to the input's seq_length with zeros either way. Cutting is exact: a key past every real
position is masked in every row (weight exp(-10000) = 0), and masks with holes (padding between
real tokens) are cut after their last real token only.

Outputs at real tokens equal the padded computation's; padding tokens come out as zeros instead
of the values the padded computation gives them, which is why only the models that read real
positions alone use it: in training BertPretrainer (masked positions and [CLS]) and
BertClassifier ([CLS]); at inference BertClassifier, BertTokenTagger and BertSpanLabeler (whose
consumers read real positions: NER decoding, the SQuAD candidates) and an encoder called inside
`reading_real_positions()` (feature extraction, which writes real tokens only).
Whether it is used is decided by device type in bert_tf.kernels (on CPUs, where it was measured
faster); `set_skip_padding(False)` turns it off everywhere, `True` on (comparisons, debugging).
"""
import contextlib
import threading

import tensorflow as tf

from bert_tf import fused
from bert_tf import kernels

# The row count is a multiple of max(seq_length, batch tokens / _ROW_GRANULES).
_ROW_GRANULES = 32


# Per thread: a declaration made while tracing one function must not reach another thread's.
_DECLARED = threading.local()


def set_skip_padding(enabled):
  """Skip padding tokens in training and at inference (True), compute them (False), or follow
  the device type's default (None: on CPUs, see bert_tf.kernels); for functions traced
  afterwards."""
  kernels.override(skip_padding=enabled, skip_padding_at_inference=enabled)


def skips_padding(training):
  """Whether a training call traced now can use TokenRows: the kernel policy says so, and not
  inside an XLA computation (jit_compile or a TPU), where shapes must be static."""
  return bool(training) and kernels.policy().skip_padding and not kernels.in_xla_context()


def skips_padding_at_inference(training):
  """Whether an inference call traced now can trim the batch and use InferenceRows: not
  training, the kernel policy says so, and not inside an XLA computation."""
  return (not training and kernels.policy().skip_padding_at_inference and
          not kernels.in_xla_context())


@contextlib.contextmanager
def reading_real_positions():
  """Within it, inference calls of any encoder skip padding (where skips_padding_at_inference):
  for callers that read the outputs at real positions only (feature extraction), so padding
  positions may come out as zeros. Applies to calls made (functions traced) inside it."""
  _DECLARED.depth = getattr(_DECLARED, "depth", 0) + 1
  try:
    yield
  finally:
    _DECLARED.depth -= 1


def reads_real_positions():
  """Whether the current caller declared it reads real positions only (reading_real_positions)."""
  return getattr(_DECLARED, "depth", 0) > 0


def real_extent(input_mask):
  """The batch's longest real extent: 1 + the last position any row has a real token at (at
  least 1, so an all-padding batch keeps its [CLS] column). int32 scalar."""
  seq_length = tf.shape(input_mask)[1]
  last = tf.where(input_mask > 0, tf.range(1, seq_length + 1)[tf.newaxis, :], 0)
  return tf.maximum(tf.reduce_max(last), 1)


# Inference runs a batch padded (cut to its real extent) rather than on its real tokens' rows when
# real tokens are at least this share of the padded run's batch x length. Measured per batch on 2
# CPU cores, config small, batches of 32 at 128, padded run under XLA: rows won at 0.58 (MRPC,
# 497 vs 438 examples/s), padded won at 0.63-0.64 (ChnSentiCorp, 297 vs 285 and 280 vs 265), 0.73
# (323 vs 293) and 0.89-0.92 (CMRC 2018, 253-272 vs 203-210). Per real token the rows path costs
# about 1.6x a padded token under XLA: gathers and scatters around each attention, no fusion.
DENSE_SHARE = 0.6
# Without XLA (exported graphs, --noxla_kernels) the padded run loses its fusion too: rows won at
# 0.67 (ChnSentiCorp, 339 vs 240-263 examples/s) and lost at 0.91 (CMRC 2018, 187 vs 197-214).
DENSE_SHARE_WITHOUT_XLA = 0.85
# Under XLA the padded batch is cut to a multiple of seq_length / _DENSE_BUCKETS (at least 32):
# XLA compiles once per length, so a few lengths, not one per batch.
_DENSE_BUCKETS = 4


def dense_plan(input_mask, extent, xla):
  """(length, dense) for an inference batch cut to `extent` (real_extent): the length a padded
  run uses (extent, or under XLA extent rounded up to a bucket) and whether that padded run is
  the cheaper one (real tokens >= DENSE_SHARE, or DENSE_SHARE_WITHOUT_XLA, of batch_size *
  length). int32 and bool scalars."""
  seq_length = tf.shape(input_mask)[1]
  length = extent
  if xla:
    bucket = tf.maximum(seq_length // _DENSE_BUCKETS, tf.minimum(32, seq_length))
    length = tf.minimum(seq_length, (extent + bucket - 1) // bucket * bucket)
  real = tf.reduce_sum(tf.cast(input_mask > 0, tf.float32))
  padded = tf.cast(tf.shape(input_mask)[0] * length, tf.float32)
  share = DENSE_SHARE if xla else DENSE_SHARE_WITHOUT_XLA
  return length, tf.logical_and(real > 0, real >= share * padded)   # an empty batch: rows


class InferenceRows:
  """The real tokens of a padded batch as exactly that many rows, for inference: plain gathers
  and scatters, no gradient, no XLA island (exported graphs stay plain ops). TokenRows'
  interface.

  Args:
    input_mask: int Tensor [batch_size, seq_length], 1 for real tokens, 0 for padding.
  """

  def __init__(self, input_mask):
    shape = tf.shape(input_mask)
    self.batch_size, self.seq_length = shape[0], shape[1]
    self.tokens = self.batch_size * self.seq_length
    self.positions = tf.cast(tf.where(tf.reshape(input_mask, [-1]) > 0), tf.int32)  # [rows, 1]

  def to_rows(self, x):
    """float Tensor [batch_size, seq_length, width] -> [rows, width], the real tokens in order."""
    return tf.gather(tf.reshape(x, [-1, _width(x)]), self.positions[:, 0])

  def to_tokens(self, rows):
    """float Tensor [rows, width] -> [batch_size, seq_length, width], zeros at padding."""
    width = _width(rows)
    flat = tf.scatter_nd(self.positions, rows, tf.stack([self.tokens, tf.shape(rows)[1]]))
    return tf.reshape(flat, [self.batch_size, self.seq_length, width])


class TokenRows:
  """The real tokens of a padded batch as rows, and the way back.

  Args:
    input_mask: int Tensor [batch_size, seq_length], 1 for real tokens, 0 for padding.
  """

  def __init__(self, input_mask):
    shape = tf.shape(input_mask)
    self.batch_size, self.seq_length = shape[0], shape[1]
    tokens = self.batch_size * self.seq_length
    positions = tf.cast(tf.where(tf.reshape(input_mask, [-1]) > 0)[:, 0], tf.int32)
    count = tf.size(positions)
    granule = tf.maximum(self.seq_length, tokens // _ROW_GRANULES)
    rows = tf.minimum(tokens, tf.maximum((count + granule - 1) // granule, 1) * granule)
    # Row r holds token row_positions[r]; rows past the real tokens read the zero row (`tokens`).
    self.row_positions = tf.concat([positions, tf.fill([rows - count], tokens)], 0)
    # Token t sits in row token_rows[t]; padding tokens read the zero row (`rows`).
    self.token_rows = tf.tensor_scatter_nd_update(tf.fill([tokens], rows), positions[:, tf.newaxis],
                                                  tf.range(count))

  def to_rows(self, x):
    """float Tensor [batch_size, seq_length, width] -> [rows, width], real tokens first."""
    return fused.gather_rows(tf.reshape(x, [-1, _width(x)]), self.row_positions, self.token_rows)

  def to_tokens(self, rows):
    """float Tensor [rows, width] -> [batch_size, seq_length, width], zeros at padding."""
    flat = fused.gather_rows(rows, self.token_rows, self.row_positions)
    return tf.reshape(flat, [self.batch_size, self.seq_length, _width(rows)])


class FlatRows:
  """Every token as a row, padding included: [batch_size, seq_length, width] <-> [batch_size *
  seq_length, width] by reshapes alone; TokenRows' interface for the padded computation.

  Training calls that keep padding (inside XLA, or with skipping off) still run the blocks on
  2-D rows: the bias and LayerNorm gradients then sum [tokens, width] columns instead of the
  [batch, seq] plane of a [batch, seq, width] tensor, which XLA:CPU's reduce-window lowering ran
  3-10x slower (3.4 vs 0.33 ms for one [8, 128, 3072] bias gradient); BERT-base's pretraining
  step with XLA took 5% less time in interleaved runs (docs/pretraining.md). Values are the same.
  """

  def __init__(self, hidden_states):
    shape = tf.shape(hidden_states)
    self.batch_size, self.seq_length = shape[0], shape[1]

  def to_rows(self, x):
    """float Tensor [batch_size, seq_length, width] -> [batch_size * seq_length, width]."""
    return tf.reshape(x, [-1, _width(x)])

  def to_tokens(self, rows):
    """float Tensor [batch_size * seq_length, width] -> [batch_size, seq_length, width]."""
    return tf.reshape(rows, [self.batch_size, self.seq_length, _width(rows)])


def _width(x):
  # The static width when known, so the reshaped tensor keeps it for the Dense layers.
  return x.shape[-1] if x.shape[-1] is not None else tf.shape(x)[-1]
