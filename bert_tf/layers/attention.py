"""Multi-head self-attention (the original `attention/self` and `attention` scopes)."""
import math

import keras
import tensorflow as tf

from bert_tf import kernels
from bert_tf.layers.dropout import Dropout
from bert_tf.layers.initializers import truncated_normal
from bert_tf.layers.residual import DenseResidualNorm

# The original adds -10000 to masked logits (modeling.attention_layer). Any value far below the
# logits gives the same softmax; keeping the original's makes outputs match it bit for bit in
# spirit and stays finite in float16 and bfloat16.
MASK_ADDER = -10000.0


def attention_bias(input_mask, dtype=tf.float32):
  """Additive attention bias from a padding mask.

  Args:
    input_mask: int Tensor [batch_size, seq_length], 1 for real tokens, 0 for padding.
  Returns:
    float Tensor [batch_size, 1, 1, seq_length]: 0 where attending is allowed, -10000 elsewhere.
  """
  mask = tf.cast(input_mask, dtype)[:, tf.newaxis, tf.newaxis, :]
  return (1.0 - mask) * MASK_ADDER


@keras.saving.register_keras_serializable(package="bert_tf")
class SelfAttention(keras.layers.Layer):
  """Scaled dot-product self-attention over `num_heads` heads with 2-D query/key/value kernels.

  Kernels keep the original [hidden, hidden] shape (Dense + reshape to heads in `call`), so an
  original checkpoint loads by renaming alone.

  Call args:
    hidden_states: float Tensor [batch_size, seq_length, hidden_size].
    bias: float Tensor broadcastable to [batch_size, num_heads, seq_length, seq_length].
  Returns:
    context: float Tensor [batch_size, seq_length, hidden_size] (heads concatenated).
  """

  def __init__(self, num_heads, hidden_size, initializer_range=0.02, dropout_rate=0.1, **kwargs):
    super().__init__(**kwargs)
    if hidden_size % num_heads:
      raise ValueError(f"hidden_size {hidden_size} is not a multiple of num_heads {num_heads}")
    self.num_heads = num_heads
    self.hidden_size = hidden_size
    self.initializer_range = initializer_range
    self.dropout_rate = dropout_rate
    self.head_size = hidden_size // num_heads
    init = truncated_normal(initializer_range)
    self.query = keras.layers.Dense(hidden_size, kernel_initializer=init, name="query")
    self.key = keras.layers.Dense(hidden_size, kernel_initializer=init, name="key")
    self.value = keras.layers.Dense(hidden_size, kernel_initializer=init, name="value")
    self.dropout = Dropout(dropout_rate)

  def build(self, hidden_states_shape, bias_shape=None):
    for dense in (self.query, self.key, self.value):
      dense.build(hidden_states_shape)
    self.built = True

  def _split_heads(self, x, batch_size, seq_length):
    # [batch, seq, hidden] -> head-major [batch, heads, seq, head_size]: the score and context
    # matmuls then batch over contiguous [seq, head_size] matrices. Measured on this CPU, that
    # transpose plus plain batched matmuls beat einsums over [batch, seq, heads, head_size]
    # (which transpose inside): pretraining step at L4/H256 10% faster, 5% with XLA.
    x = tf.reshape(x, [batch_size, seq_length, self.num_heads, self.head_size])
    return tf.transpose(x, [0, 2, 1, 3])

  def attention_probs(self, hidden_states, bias):
    """Attention probabilities [batch_size, num_heads, seq_length (query), seq_length (key)],
    before dropout (what `call` attends with at inference; also for attention maps)."""
    shape = tf.shape(hidden_states)
    return self._probs(self._split_heads(self.query(hidden_states), shape[0], shape[1]),
                       self._split_heads(self.key(hidden_states), shape[0], shape[1]), bias)

  def _probs(self, query, key, bias):
    # Scale the query, not the [seq, seq] scores: same result, fewer multiplies.
    query = query * tf.cast(1.0 / math.sqrt(self.head_size), query.dtype)
    scores = tf.matmul(query, key, transpose_b=True)  # [batch, heads, query, key]
    # Softmax in float32 whatever the compute dtype: under mixed precision a float16 softmax over
    # logits offset by -10000 loses the small probabilities (the Model Garden does the same).
    scores = tf.cast(scores, tf.float32) + tf.cast(bias, tf.float32)
    return tf.cast(tf.nn.softmax(scores, axis=-1), self.compute_dtype)

  def call(self, hidden_states, bias, training=None, token_rows=None, query_states=None):
    """With `token_rows` (bert_tf.layers.token_rows.TokenRows), hidden_states and the result
    are [rows, hidden_size] rows of real tokens; the scores still use the padded layout.

    With `query_states` (float [batch_size, num_queries, hidden_size]: hidden states at some
    positions), only those positions attend, to keys and values of every token; the result is
    then [batch_size, num_queries, hidden_size].
    """
    if token_rows is None:
      shape = tf.shape(hidden_states)
      batch_size, seq_length = shape[0], shape[1]
      to_tokens = lambda x: x  # pylint: disable=unnecessary-lambda-assignment
    else:
      batch_size, seq_length = token_rows.batch_size, token_rows.seq_length
      to_tokens = token_rows.to_tokens

    def heads(projection):  # projection of every token, laid out [batch, heads, seq, head_size]
      return self._split_heads(to_tokens(projection), batch_size, seq_length)

    if query_states is None:
      query, key, value = map(heads, self._project((self.query, self.key, self.value),
                                                   hidden_states))
      num_queries = seq_length
    else:
      key, value = map(heads, self._project((self.key, self.value), hidden_states))
      num_queries = tf.shape(query_states)[1]
      query = self._split_heads(self.query(query_states), batch_size, num_queries)
    probs = self.dropout(self._probs(query, key, bias), training=training)
    context = tf.transpose(tf.matmul(probs, value), [0, 2, 1, 3])  # [batch, query, heads, size]
    context = tf.reshape(context, [batch_size, num_queries, self.hidden_size])
    if token_rows is None or query_states is not None:
      return context
    return token_rows.to_rows(context)

  def _project(self, denses, inputs):
    """[dense(inputs) for dense in denses]; inside XLA as one matmul with the kernels side by side.

    XLA:CPU ran the forward and backward of one [tokens, 768] x [768, 2304] matmul 12% faster
    than of three [768, 768] ones (21.2 vs 24.2 ms at 1024 tokens), the input gradient then being
    one matmul instead of three summed. Outside XLA, TensorFlow's three oneDNN matmuls were as
    fast as one plus the concatenation, so the layers are called as they are; on GPUs and TPUs
    (not measured there) too (bert_tf.kernels).
    """
    if len(denses) == 1 or not (kernels.in_xla_context() and kernels.policy().fused_qkv):
      return [dense(inputs) for dense in denses]
    kernel = tf.concat([tf.cast(dense.kernel, self.compute_dtype) for dense in denses], axis=1)
    bias = tf.concat([tf.cast(dense.bias, self.compute_dtype) for dense in denses], axis=0)
    outputs = tf.matmul(tf.reshape(inputs, [-1, inputs.shape[-1]]), kernel) + bias
    # The width spelled out, not -1: with an empty batch (0 elements) -1 is undetermined.
    width = sum(dense.units for dense in denses)
    outputs = tf.reshape(outputs, tf.concat([tf.shape(inputs)[:-1], [width]], 0))
    return tf.split(outputs, [dense.units for dense in denses], axis=-1)

  def compute_output_shape(self, hidden_states_shape, bias_shape=None):
    return hidden_states_shape

  def get_config(self):
    config = super().get_config()
    config.update(num_heads=self.num_heads, hidden_size=self.hidden_size,
                  initializer_range=self.initializer_range, dropout_rate=self.dropout_rate)
    return config


@keras.saving.register_keras_serializable(package="bert_tf")
class BertAttention(keras.layers.Layer):
  """Self-attention followed by its output projection, dropout, residual and LayerNorm.

  Sub-layers are named `self` and `output` so weight paths read like the original
  `attention/self/query/kernel` and `attention/output/dense/kernel`.
  """

  def __init__(self, num_heads, hidden_size, initializer_range=0.02, dropout_rate=0.1,
               attention_dropout_rate=0.1, **kwargs):
    super().__init__(**kwargs)
    self.num_heads = num_heads
    self.hidden_size = hidden_size
    self.initializer_range = initializer_range
    self.dropout_rate = dropout_rate
    self.attention_dropout_rate = attention_dropout_rate
    self.self_attention = SelfAttention(num_heads, hidden_size, initializer_range,
                                        attention_dropout_rate, name="self")
    self.output_block = DenseResidualNorm(hidden_size, initializer_range, dropout_rate, name="output")

  def build(self, hidden_states_shape, bias_shape=None):
    self.self_attention.build(hidden_states_shape)
    self.output_block.build(hidden_states_shape)
    self.built = True

  def call(self, hidden_states, bias, training=None, token_rows=None, query_states=None):
    """`token_rows`, `query_states`: see SelfAttention.call; the residual is the queries'."""
    context = self.self_attention(hidden_states, bias, training=training, token_rows=token_rows,
                                  query_states=query_states)
    residual = hidden_states if query_states is None else query_states
    return self.output_block(context, residual, training=training)

  def compute_output_shape(self, hidden_states_shape, bias_shape=None):
    return hidden_states_shape

  def get_config(self):
    config = super().get_config()
    config.update(num_heads=self.num_heads, hidden_size=self.hidden_size,
                  initializer_range=self.initializer_range, dropout_rate=self.dropout_rate,
                  attention_dropout_rate=self.attention_dropout_rate)
    return config
