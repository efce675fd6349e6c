"""One post-LayerNorm transformer block (the original `encoder/layer_N`) and the stack of them."""
import keras
import tensorflow as tf

from bert_tf import kernels
from bert_tf.layers import token_rows
from bert_tf.layers.attention import BertAttention
from bert_tf.layers.feed_forward import Intermediate
from bert_tf.layers.residual import DenseResidualNorm


@keras.saving.register_keras_serializable(package="bert_tf")
class TransformerBlock(keras.layers.Layer):
  """attention -> intermediate -> output, each with the original scope name.

  Call args:
    hidden_states: float Tensor [batch_size, seq_length, hidden_size].
    bias: float Tensor [batch_size, 1, 1, seq_length], additive attention bias.
  Returns:
    float Tensor [batch_size, seq_length, hidden_size].
  """

  def __init__(self, hidden_size, num_heads, intermediate_size, activation="gelu",
               initializer_range=0.02, dropout_rate=0.1, attention_dropout_rate=0.1, **kwargs):
    super().__init__(**kwargs)
    self.hidden_size = hidden_size
    self.num_heads = num_heads
    self.intermediate_size = intermediate_size
    self.activation = activation
    self.initializer_range = initializer_range
    self.dropout_rate = dropout_rate
    self.attention_dropout_rate = attention_dropout_rate
    self.attention = BertAttention(num_heads, hidden_size, initializer_range, dropout_rate,
                                   attention_dropout_rate, name="attention")
    self.intermediate = Intermediate(intermediate_size, activation, initializer_range,
                                     name="intermediate")
    self.output_block = DenseResidualNorm(hidden_size, initializer_range, dropout_rate, name="output")

  def build(self, hidden_states_shape, bias_shape=None):
    self.attention.build(hidden_states_shape)
    self.intermediate.build(hidden_states_shape)
    self.output_block.build(tuple(hidden_states_shape[:-1]) + (self.intermediate_size,),
                            hidden_states_shape)
    self.built = True

  def call(self, hidden_states, bias, training=None, token_rows=None, query_states=None):
    """With `token_rows`, hidden_states and the result are [rows, hidden_size] (TokenRows). With
    `query_states` [batch_size, num_queries, hidden_size] (hidden_states at some positions), the
    block computes its output at those positions only: [batch_size, num_queries, hidden_size]."""
    attention_output = self.attention(hidden_states, bias, training=training,
                                      token_rows=token_rows, query_states=query_states)
    intermediate_output = self.intermediate(attention_output, training=training)
    return self.output_block(intermediate_output, attention_output, training=training)

  def compute_output_shape(self, hidden_states_shape, bias_shape=None):
    return hidden_states_shape

  def get_config(self):
    config = super().get_config()
    config.update(hidden_size=self.hidden_size, num_heads=self.num_heads,
                  intermediate_size=self.intermediate_size, activation=self.activation,
                  initializer_range=self.initializer_range, dropout_rate=self.dropout_rate,
                  attention_dropout_rate=self.attention_dropout_rate)
    return config


@keras.saving.register_keras_serializable(package="bert_tf")
class TransformerStack(keras.layers.Layer):
  """`num_layers` TransformerBlocks named `layer_0` ... (the original `bert/encoder` scope).

  With `skip_padding`, a training call given `input_mask` runs the blocks on the real tokens only
  (bert_tf.layers.token_rows) where shapes may be dynamic; the outputs are then zero at padding.
  Other training calls run them on all tokens flattened to rows (token_rows.FlatRows). With
  `skip_padding_at_inference` (or inside token_rows.reading_real_positions()), an inference call
  given `input_mask` runs them on the batch cut to its longest real extent, on its real tokens
  only (token_rows.InferenceRows) or, when the cut batch is still mostly real tokens, padded (an
  XLA island where the policy allows: token_rows.dense_plan), and pads the outputs back with
  zeros; outside XLA and where the kernel policy allows (bert_tf.kernels).

  Call args:
    hidden_states: float Tensor [batch_size, seq_length, hidden_size].
    bias: float Tensor [batch_size, 1, 1, seq_length], additive attention bias.
    input_mask: optional int Tensor [batch_size, seq_length], needed for skip_padding.
    output_positions: optional int32 Tensor [batch_size, num_positions].
  Returns:
    list of float Tensors [batch_size, seq_length, hidden_size], one per block; with
    output_positions, one more: the last block's output at those positions [batch_size,
    num_positions, hidden_size], computed for those positions alone (in a tf.function the full
    last output is then not computed unless it is used).
  """

  def __init__(self, num_layers, hidden_size, num_heads, intermediate_size, activation="gelu",
               initializer_range=0.02, dropout_rate=0.1, attention_dropout_rate=0.1,
               skip_padding=False, skip_padding_at_inference=False, **kwargs):
    super().__init__(**kwargs)
    self.num_layers = num_layers
    self.skip_padding = skip_padding
    self.skip_padding_at_inference = skip_padding_at_inference
    self.block_args = dict(hidden_size=hidden_size, num_heads=num_heads,
                           intermediate_size=intermediate_size, activation=activation,
                           initializer_range=initializer_range, dropout_rate=dropout_rate,
                           attention_dropout_rate=attention_dropout_rate)
    self.blocks = [TransformerBlock(**self.block_args, name=f"layer_{i}") for i in range(num_layers)]

  def build(self, hidden_states_shape, bias_shape=None, input_mask_shape=None,
            output_positions_shape=None):
    for block in self.blocks:
      block.build(hidden_states_shape)
    self.built = True

  def call(self, hidden_states, bias, input_mask=None, output_positions=None, training=None):
    if (input_mask is not None and token_rows.skips_padding_at_inference(training) and
        (self.skip_padding_at_inference or token_rows.reads_real_positions())):
      return self._call_on_real_extent(hidden_states, bias, input_mask, output_positions)
    rows = None
    if self.skip_padding and input_mask is not None and token_rows.skips_padding(training):
      rows = token_rows.TokenRows(input_mask)
    elif training:
      rows = token_rows.FlatRows(hidden_states)
    return self._run_blocks(hidden_states, bias, rows, output_positions, training)

  def _call_on_real_extent(self, hidden_states, bias, input_mask, output_positions):
    # Inference on the real tokens: columns past the last real token of every row are cut (their
    # keys have zero weight for every query), the blocks run on what is left, and the outputs get
    # the cut columns back as zeros. output_positions must lie before the cut. A batch that is
    # still mostly real tokens after the cut runs padded (under XLA where the policy allows it:
    # token_rows.dense_plan), a sparser one on its real tokens' rows only.
    extent = token_rows.real_extent(input_mask)
    xla = kernels.policy().fused_kernels
    dense_length, dense = token_rows.dense_plan(input_mask, extent, xla)

    def on_rows():
      rows = token_rows.InferenceRows(input_mask[:, :extent])
      return self._run_blocks(hidden_states[:, :extent], bias[..., :extent], rows,
                              output_positions, training=False)

    def padded():
      run = lambda h, b: self._run_blocks(h, b, None, output_positions, training=False)
      if xla:   # compiled per dense_length (a few buckets, token_rows.dense_plan)
        run = tf.function(run, jit_compile=True, autograph=False, reduce_retracing=True)
      outputs = run(hidden_states[:, :dense_length], bias[..., :dense_length])
      # Zeros at padding, as on_rows gives: which path ran does not show in the outputs.
      real = tf.cast(input_mask[:, :dense_length, tf.newaxis] > 0, outputs[0].dtype)
      return [x * real for x in outputs[:self.num_layers]] + outputs[self.num_layers:]

    outputs = tf.cond(dense, padded, on_rows)
    seq_length = tf.shape(hidden_states)[1]
    padded_back = [tf.ensure_shape(tf.pad(x, [[0, 0], [0, seq_length - tf.shape(x)[1]], [0, 0]]),
                                   hidden_states.shape) for x in outputs[:self.num_layers]]
    return padded_back + outputs[self.num_layers:]

  def _run_blocks(self, hidden_states, bias, rows, output_positions, training):
    block_input = hidden_states  # [batch_size, seq_length, hidden_size]
    x = hidden_states if rows is None else rows.to_rows(hidden_states)
    outputs = []
    for block in self.blocks:
      if output_positions is not None and block is self.blocks[-1]:
        # The last block at the requested positions only: its queries, output projection and
        # feed-forward run for those, its keys and values for every token.
        selected = block(x, bias, training=training, token_rows=rows,
                         query_states=tf.gather(block_input, output_positions, batch_dims=1))
      x = block(x, bias, training=training, token_rows=rows)
      block_input = x if rows is None else rows.to_tokens(x)
      outputs.append(block_input)
    return outputs if output_positions is None else outputs + [selected]

  def compute_output_shape(self, hidden_states_shape, bias_shape=None, input_mask_shape=None,
                           output_positions_shape=None):
    shapes = [tuple(hidden_states_shape)] * self.num_layers
    if output_positions_shape is not None:
      shapes.append((hidden_states_shape[0], output_positions_shape[1], hidden_states_shape[-1]))
    return shapes

  def get_config(self):
    config = super().get_config()
    config.update(num_layers=self.num_layers, skip_padding=self.skip_padding,
                  skip_padding_at_inference=self.skip_padding_at_inference, **self.block_args)
    return config
