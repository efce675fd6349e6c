"""Each layer: config round trip, and the numbers of the pieces with an independent reference."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from bert_tf.layers import activations
from bert_tf.layers.attention import BertAttention, SelfAttention, attention_bias
from bert_tf.layers.embeddings import BertEmbeddings
from bert_tf.layers.feed_forward import Intermediate
from bert_tf.layers.heads import MaskedLMHead, NextSentenceHead, Pooler
from bert_tf.layers.residual import DenseResidualNorm
from bert_tf.layers.transformer_block import TransformerBlock, TransformerStack

LAYERS = [
    BertEmbeddings(99, 32, 64, 2, 0.02, 0.1, name="embeddings"),
    SelfAttention(4, 32, 0.02, 0.1, name="self"),
    BertAttention(4, 32, 0.02, 0.1, 0.1, name="attention"),
    DenseResidualNorm(32, 0.02, 0.1, name="output"),
    Intermediate(37, "gelu_exact", 0.02, name="intermediate"),
    TransformerBlock(32, 4, 37, "relu", 0.02, 0.1, 0.0, name="layer_0"),
    TransformerStack(3, 32, 4, 37, "gelu", 0.02, 0.1, 0.1, name="encoder"),
    Pooler(32, 0.02, name="pooler"),
    MaskedLMHead(99, 32, "gelu", 0.02, name="predictions"),
    NextSentenceHead(32, 0.02, name="seq_relationship"),
]


@pytest.mark.parametrize("layer", LAYERS, ids=lambda l: type(l).__name__)
def test_get_config_round_trip(layer):
  config = layer.get_config()
  clone = type(layer).from_config(config)
  assert clone.get_config() == config
  # Every constructor argument is in the config (keras-hub's rule), so keras.saving round trips.
  restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
  assert restored.get_config() == config


def test_gelu_is_the_tanh_approximation_of_the_original():
  x = np.linspace(-6, 6, 1001).astype(np.float32)
  # google-research/bert modeling.gelu, written out in NumPy.
  reference = 0.5 * x * (1.0 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
  np.testing.assert_allclose(activations.gelu(x), reference, atol=1e-6)
  np.testing.assert_allclose(activations.gelu(x), tf.nn.gelu(x, approximate=True), atol=1e-6)
  np.testing.assert_allclose(activations.gelu_exact(x), tf.nn.gelu(x, approximate=False), atol=1e-6)
  assert np.abs(np.asarray(activations.gelu(x)) - np.asarray(activations.gelu_exact(x))).max() > 1e-4
  with pytest.raises(ValueError, match="unknown activation 'swishy'"):
    activations.get_activation("swishy")


def test_attention_bias_is_minus_10000_on_padding():
  bias = attention_bias(tf.constant([[1, 1, 0]]))
  assert bias.shape == (1, 1, 1, 3)
  np.testing.assert_array_equal(np.asarray(bias).ravel(), [0.0, 0.0, -10000.0])


def test_self_attention_matches_a_numpy_reference():
  layer = SelfAttention(num_heads=2, hidden_size=8, dropout_rate=0.0)
  rng = np.random.default_rng(0)
  x = rng.standard_normal((2, 5, 8)).astype(np.float32)
  mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], np.int32)
  got = np.asarray(layer(x, attention_bias(mask)))
  wq, bq = [np.asarray(v) for v in layer.query.weights]
  wk, bk = [np.asarray(v) for v in layer.key.weights]
  wv, bv = [np.asarray(v) for v in layer.value.weights]
  q, k, v = x @ wq + bq, x @ wk + bk, x @ wv + bv
  expected = np.zeros_like(x)
  for b in range(2):
    for h in range(2):
      s = slice(4 * h, 4 * h + 4)
      scores = q[b, :, s] @ k[b, :, s].T / 2.0 + (1 - mask[b])[None, :] * -10000.0
      probs = np.exp(scores - scores.max(-1, keepdims=True))
      probs /= probs.sum(-1, keepdims=True)
      expected[b, :, s] = probs @ v[b, :, s]
  np.testing.assert_allclose(got, expected, atol=1e-5)


def test_layer_norm_epsilon_is_googles():
  embeddings = BertEmbeddings(10, 8, 16, 2)
  embeddings.build()
  assert embeddings.layer_norm.epsilon == 1e-12
  assert DenseResidualNorm(8).layer_norm.epsilon == 1e-12
