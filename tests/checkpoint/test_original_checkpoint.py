"""load_original_checkpoint / save_original_checkpoint / slim / from_pretrained."""
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import ROOT, TINY_CONFIG, make_original_checkpoint, random_inputs
from bert_tf import (BertConfig, BertEncoder, BertPretrainer, CheckpointMismatchError,
                     load_original_checkpoint, save_original_checkpoint, slim_original_checkpoint)
from bert_tf.checkpoint.original import export_pretrained


def _weights(model):
  return {w.path: np.asarray(w.numpy()) for w in model.weights}


def test_load_fills_every_weight_with_the_checkpoint_value(tmp_path, tiny_config):
  prefix, values = make_original_checkpoint(tmp_path, TINY_CONFIG)
  model = BertPretrainer(tiny_config)
  report = load_original_checkpoint(model, prefix)
  weights = _weights(model)
  assert len(report.loaded) == len(weights) == len(values)
  for orig, path in report.loaded:
    np.testing.assert_array_equal(weights[path], values[orig])
  reasons = dict(report.skipped)
  assert reasons["global_step"] == "optimizer state"
  assert reasons["bert/encoder/layer_1/output/dense/kernel/adam_m"] == "optimizer state"
  assert all(reason == "optimizer state" for reason in reasons.values())
  assert len(reasons) == 2 * len(values) + 1
  assert report.missing == []


def test_encoder_skips_the_pretraining_heads(tmp_path, tiny_config):
  prefix, _ = make_original_checkpoint(tmp_path, TINY_CONFIG, with_optimizer=False)
  report = load_original_checkpoint(BertEncoder(tiny_config), prefix)
  assert dict(report.skipped)["cls/predictions/output_bias"] == "not part of this model"


def test_folder_and_file_names_resolve_to_the_prefix(tmp_path, tiny_config):
  prefix, _ = make_original_checkpoint(tmp_path, TINY_CONFIG)
  for path in (tmp_path, prefix + ".index", prefix + ".data-00000-of-00001"):
    assert load_original_checkpoint(BertEncoder(tiny_config), path).checkpoint == prefix


def test_round_trip_is_bit_identical(tmp_path, tiny_config):
  prefix, _ = make_original_checkpoint(tmp_path / "src", TINY_CONFIG)
  first = BertPretrainer(tiny_config)
  load_original_checkpoint(first, prefix)
  names = save_original_checkpoint(first, tmp_path / "out" / "bert_model.ckpt")
  assert not [n for n in names if "adam" in n or n == "global_step"]
  second = BertPretrainer(tiny_config)
  load_original_checkpoint(second, tmp_path / "out" / "bert_model.ckpt")
  a, b = _weights(first), _weights(second)
  assert a.keys() == b.keys()
  for path in a:
    assert a[path].tobytes() == b[path].tobytes(), path
  # Nothing but the checkpoint files is left in the folder (atomic write leaves no temp files).
  assert sorted(os.listdir(tmp_path / "out")) == ["bert_model.ckpt.data-00000-of-00001",
                                                  "bert_model.ckpt.index"]


def test_saved_checkpoint_has_original_names_and_shapes(tmp_path, tiny_config):
  from conftest import original_variable_shapes
  model = BertPretrainer(tiny_config)
  save_original_checkpoint(model, tmp_path / "bert_model.ckpt")
  listed = dict(tf.train.list_variables(str(tmp_path / "bert_model.ckpt")))
  expected = original_variable_shapes(TINY_CONFIG)
  assert {k: tuple(v) for k, v in listed.items()} == expected


def test_saved_checkpoint_loads_with_google_init_from_checkpoint(tmp_path, tiny_config):
  """google-research/bert restores with tf.compat.v1.train.init_from_checkpoint in a graph."""
  from conftest import original_variable_shapes
  model = BertEncoder(tiny_config)
  save_original_checkpoint(model, tmp_path / "bert_model.ckpt")
  shapes = original_variable_shapes(TINY_CONFIG, with_heads=False)
  with tf.Graph().as_default():
    variables = {name: tf.compat.v1.get_variable(name, shape=shape) for name, shape in shapes.items()}
    tf.compat.v1.train.init_from_checkpoint(str(tmp_path / "bert_model.ckpt"),
                                            {name: name for name in shapes})
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      restored = session.run(variables)
  ours = {w.path: w.numpy() for w in model.weights}
  for name, value in restored.items():
    np.testing.assert_array_equal(value, ours[name[len("bert/"):]])


def test_shape_mismatch_names_variable_and_shapes(tmp_path, tiny_config):
  prefix, _ = make_original_checkpoint(tmp_path, dict(TINY_CONFIG, intermediate_size=40))
  model = BertEncoder(tiny_config)
  before = _weights(model)
  with pytest.raises(CheckpointMismatchError) as err:
    load_original_checkpoint(model, prefix)
  message = str(err.value)
  assert "bert/encoder/layer_0/intermediate/dense/kernel" in message
  assert "[32, 40]" in message and "[32, 37]" in message
  after = _weights(model)
  assert all(np.array_equal(before[k], after[k]) for k in before), "a failed load must not assign"


def test_vocab_mismatch_is_explained(tmp_path, tiny_config):
  prefix, _ = make_original_checkpoint(tmp_path, dict(TINY_CONFIG, vocab_size=120))
  with pytest.raises(CheckpointMismatchError, match="vocabulary of 120 tokens.*vocab_size=99"):
    load_original_checkpoint(BertEncoder(tiny_config), prefix)


def test_missing_layer_is_an_error_that_counts_layers(tmp_path):
  prefix, _ = make_original_checkpoint(tmp_path, dict(TINY_CONFIG, num_hidden_layers=1))
  model = BertEncoder(BertConfig(**TINY_CONFIG))
  with pytest.raises(CheckpointMismatchError, match="bert/encoder/layer_1/.*has 1 transformer layers"):
    load_original_checkpoint(model, prefix)


def test_missing_heads_allowed_on_request(tmp_path, tiny_config):
  prefix, _ = make_original_checkpoint(tmp_path, TINY_CONFIG, with_heads=False)
  with pytest.raises(CheckpointMismatchError, match="cls/"):
    load_original_checkpoint(BertPretrainer(tiny_config), prefix)
  report = load_original_checkpoint(BertPretrainer(tiny_config), prefix, allow_missing=("cls/",))
  assert len(report.missing) == 7


def test_a_checkpoint_without_pooler_loads_with_the_pooler_at_init(tmp_path, tiny_config):
  """Hugging Face's question-answering and token-classification models save no pooler: a
  checkpoint without both pooler variables loads (the pooler keeps its initial values and is
  listed as missing); one with half of it is still refused. Mutation caught: dropping the
  exception in load_variables (CheckpointMismatchError: lacks bert/pooler/dense/kernel)."""
  from bert_tf.checkpoint.original import _write_name_based
  _, values = make_original_checkpoint(tmp_path / "full", TINY_CONFIG, with_heads=False,
                                       with_optimizer=False)
  no_pooler = {n: v for n, v in values.items() if not n.startswith("bert/pooler/")}
  _write_name_based(str(tmp_path / "no_pooler" / "bert_model.ckpt"), no_pooler)
  model = BertEncoder(tiny_config)
  initial = _weights(model)["pooler/dense/kernel"].copy()
  report = load_original_checkpoint(model, tmp_path / "no_pooler" / "bert_model.ckpt")
  assert sorted(report.missing) == ["bert/pooler/dense/bias", "bert/pooler/dense/kernel"]
  np.testing.assert_array_equal(_weights(model)["pooler/dense/kernel"], initial)
  np.testing.assert_array_equal(_weights(model)["embeddings/word_embeddings"],
                                values["bert/embeddings/word_embeddings"])
  half = dict(no_pooler, **{"bert/pooler/dense/bias": values["bert/pooler/dense/bias"]})
  _write_name_based(str(tmp_path / "half" / "bert_model.ckpt"), half)
  with pytest.raises(CheckpointMismatchError, match="bert/pooler/dense/kernel"):
    load_original_checkpoint(BertEncoder(tiny_config), tmp_path / "half" / "bert_model.ckpt")


def test_fewer_layers_than_checkpoint_takes_the_first_ones(tmp_path):
  """RBT3-style: a 3-layer model initialised from the first layers of a deeper checkpoint."""
  prefix, values = make_original_checkpoint(tmp_path, dict(TINY_CONFIG, num_hidden_layers=3))
  model = BertEncoder(BertConfig(**TINY_CONFIG))
  report = load_original_checkpoint(model, prefix)
  assert dict(report.skipped)["bert/encoder/layer_2/output/dense/kernel"] == "not part of this model"
  np.testing.assert_array_equal(_weights(model)["encoder/layer_1/output/dense/kernel"],
                                values["bert/encoder/layer_1/output/dense/kernel"])


def test_missing_checkpoint_says_where(tmp_path, tiny_config):
  with pytest.raises(FileNotFoundError, match="nowhere.ckpt"):
    load_original_checkpoint(BertEncoder(tiny_config), tmp_path / "nowhere.ckpt")


def test_slim_drops_optimizer_state_to_a_third(tmp_path, tiny_config):
  prefix, values = make_original_checkpoint(tmp_path / "train", TINY_CONFIG, with_optimizer=True)
  result = slim_original_checkpoint(prefix, tmp_path / "slim" / "bert_model.ckpt")
  assert sorted(result["kept"]) == sorted(values)
  assert "global_step" in result["dropped"]
  assert 0.30 < result["dst_bytes"] / result["src_bytes"] < 0.36
  model = BertPretrainer(tiny_config)
  load_original_checkpoint(model, tmp_path / "slim" / "bert_model.ckpt")


def test_slim_command_line(tmp_path):
  prefix, _ = make_original_checkpoint(tmp_path / "train", TINY_CONFIG)
  out = tmp_path / "slim" / "bert_model.ckpt"
  proc = subprocess.run([sys.executable, "-m", "pretraining.slim_checkpoint",
                         f"--input_checkpoint={prefix}", f"--output_checkpoint={out}"],
                        cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr
  assert "dropped" in proc.stdout
  names = dict(tf.train.list_variables(str(out)))
  assert "global_step" not in names and "bert/embeddings/word_embeddings" in names


def test_from_pretrained_folder(tmp_path, tiny_config):
  source = BertPretrainer(tiny_config)
  vocab = tmp_path / "vocab_src.txt"
  vocab.write_text("\n".join(f"tok{i}" for i in range(TINY_CONFIG["vocab_size"])) + "\n")
  export_pretrained(source, tmp_path / "model", vocab_file=vocab)
  assert sorted(os.listdir(tmp_path / "model")) == [
      "bert_config.json", "bert_model.ckpt.data-00000-of-00001", "bert_model.ckpt.index", "vocab.txt"]
  inputs = random_inputs(TINY_CONFIG, num_predictions=3)
  for cls in (BertEncoder, BertPretrainer):
    model = cls.from_pretrained(tmp_path / "model")
    got, want = model(inputs), source(inputs)
    np.testing.assert_array_equal(got["sequence_output"], want["sequence_output"])
  np.testing.assert_array_equal(got["mlm_logits"], want["mlm_logits"])


def test_from_pretrained_rejects_vocab_config_mismatch(tmp_path, tiny_config):
  export_pretrained(BertEncoder(tiny_config), tmp_path)
  (tmp_path / "vocab.txt").write_text("\n".join(f"t{i}" for i in range(50)) + "\n")
  with pytest.raises(CheckpointMismatchError, match="has 50 tokens but .* vocab_size=99"):
    BertEncoder.from_pretrained(tmp_path)
