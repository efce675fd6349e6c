"""Parity with the TF Model Garden (tf-models-official) on the same original checkpoint.

The reference path is the Model Garden's own: tf1_bert_checkpoint_converter_lib.convert, then
create_v2_checkpoint into its legacy networks.BertEncoder (and BertPretrainerV2 for the MLM head),
built with the same GELU as the original (tanh approximation).
"""
import numpy as np
import pytest
import tensorflow as tf

from conftest import TINY_CONFIG, make_original_checkpoint, random_inputs

tfm_lib = pytest.importorskip("official.nlp.tools.tf1_bert_checkpoint_converter_lib")
tf_keras = pytest.importorskip("tf_keras")
from official.modeling import tf_utils  # noqa: E402
from official.nlp.modeling import models as tfm_models  # noqa: E402
from official.nlp.modeling import networks as tfm_networks  # noqa: E402

from bert_tf import BertConfig, BertEncoder, BertPretrainer, load_original_checkpoint  # noqa: E402

ATOL = 1e-5


def _tfm_encoder(c):
  return tfm_networks.BertEncoder(
      vocab_size=c["vocab_size"], hidden_size=c["hidden_size"], num_layers=c["num_hidden_layers"],
      num_attention_heads=c["num_attention_heads"], intermediate_size=c["intermediate_size"],
      activation=tf_utils.get_activation(c["hidden_act"]), dropout_rate=c["hidden_dropout_prob"],
      attention_dropout_rate=c["attention_probs_dropout_prob"],
      max_sequence_length=c["max_position_embeddings"], type_vocab_size=c["type_vocab_size"],
      initializer=tf_keras.initializers.TruncatedNormal(stddev=c["initializer_range"]),
      dict_outputs=True)


def _convert_with_model_garden(tmp_path, v1_prefix, c, model):
  """The Model Garden's TF1 -> TF2 conversion, restored into `model`."""
  temp = str(tmp_path / "tfm_v1" / "ckpt")
  tfm_lib.convert(v1_prefix, temp, num_heads=c["num_attention_heads"],
                  name_replacements=tfm_lib.BERT_V2_NAME_REPLACEMENTS,
                  permutations=tfm_lib.BERT_V2_PERMUTATIONS, exclude_patterns=["adam", "Adam"])
  v2 = tfm_lib.create_v2_checkpoint(model, temp, str(tmp_path / "tfm_v2" / "ckpt"), "model")
  del v2
  return model


def _tfm_inputs(inputs):
  return {"input_word_ids": inputs["input_ids"], "input_mask": inputs["input_mask"],
          "input_type_ids": inputs["segment_ids"]}


@pytest.mark.parametrize("hidden_act", ["gelu", "relu"])
def test_encoder_matches_model_garden(tmp_path, hidden_act):
  c = dict(TINY_CONFIG, hidden_act=hidden_act, num_hidden_layers=3)
  prefix, _ = make_original_checkpoint(tmp_path / "v1", c, with_heads=True, with_optimizer=True)
  tfm = _convert_with_model_garden(tmp_path, prefix, c, _tfm_encoder(c))
  ours = BertEncoder(BertConfig(**c))
  report = load_original_checkpoint(ours, prefix)
  assert len(report.loaded) == len(ours.weights)

  inputs = random_inputs(c)
  expected = tfm(_tfm_inputs(inputs), training=False)
  got = ours(inputs, training=False)
  assert inputs["input_mask"].min() == 0, "the inputs must include padding"
  np.testing.assert_allclose(got["sequence_output"], expected["sequence_output"], atol=ATOL)
  np.testing.assert_allclose(got["pooled_output"], expected["pooled_output"], atol=ATOL)
  assert len(got["encoder_outputs"]) == len(expected["encoder_outputs"]) == 3
  for ours_layer, tfm_layer in zip(got["encoder_outputs"], expected["encoder_outputs"]):
    np.testing.assert_allclose(ours_layer, tfm_layer, atol=ATOL)
  # Sanity: the outputs are not trivially equal (a broken load gives different numbers).
  assert np.abs(np.asarray(got["sequence_output"])).max() > 0.1


def test_pretrainer_heads_match_model_garden(tmp_path):
  c = dict(TINY_CONFIG)
  prefix, values = make_original_checkpoint(tmp_path / "v1", c, with_heads=True)
  encoder = _tfm_encoder(c)
  tfm = tfm_models.BertPretrainerV2(
      encoder_network=encoder, mlm_activation=tf_utils.get_activation(c["hidden_act"]),
      mlm_initializer=tf_keras.initializers.TruncatedNormal(stddev=c["initializer_range"]))
  _ = tfm(tfm.inputs)
  _convert_with_model_garden(tmp_path, prefix, c, tfm)
  ours = BertPretrainer(BertConfig(**c))
  load_original_checkpoint(ours, prefix)

  inputs = random_inputs(c, num_predictions=3)
  tfm_in = dict(_tfm_inputs(inputs), masked_lm_positions=inputs["masked_lm_positions"])
  expected = tfm(tfm_in, training=False)
  got = ours(inputs, training=False)
  np.testing.assert_allclose(got["mlm_logits"], expected["mlm_logits"], atol=ATOL)
  # The Model Garden's BertPretrainerV2 has no next-sentence head; the reference is the original
  # formula (run_pretraining.get_next_sentence_output) on the Model Garden's pooled output.
  nsp = (np.asarray(expected["pooled_output"]) @ values["cls/seq_relationship/output_weights"].T
         + values["cls/seq_relationship/output_bias"])
  np.testing.assert_allclose(got["nsp_logits"], nsp, atol=ATOL)


def test_xla_compiled_encoder_matches_eager(tmp_path, tiny_config):
  """The TPU path compiles with XLA; its outputs must equal the eager ones."""
  prefix, _ = make_original_checkpoint(tmp_path, TINY_CONFIG)
  model = BertEncoder(tiny_config)
  load_original_checkpoint(model, prefix)
  inputs = random_inputs(TINY_CONFIG)
  compiled = tf.function(lambda x: model(x, training=False), jit_compile=True)
  got = compiled(inputs)
  expected = model(inputs, training=False)
  np.testing.assert_allclose(got["sequence_output"], expected["sequence_output"], atol=1e-5)
  np.testing.assert_allclose(got["pooled_output"], expected["pooled_output"], atol=1e-5)


def test_model_garden_reads_our_export(tmp_path, tiny_config):
  """A checkpoint written by save_original_checkpoint converts with the Model Garden's TF1
  converter and gives its encoder our outputs."""
  from bert_tf import save_original_checkpoint
  ours = BertEncoder(tiny_config)
  prefix = str(tmp_path / "ours" / "bert_model.ckpt")
  save_original_checkpoint(ours, prefix)
  tfm = _convert_with_model_garden(tmp_path, prefix, TINY_CONFIG, _tfm_encoder(TINY_CONFIG))
  inputs = random_inputs(TINY_CONFIG)
  np.testing.assert_allclose(ours(inputs)["sequence_output"],
                             tfm(_tfm_inputs(inputs), training=False)["sequence_output"], atol=ATOL)
