"""extract_features: activations from an original-format checkpoint equal BertEncoder's own,
in the original JSON layout; NumPy output; attention maps consistent with the layers."""
import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import ROOT, SMALL_VOCAB, TINY_CONFIG, make_original_checkpoint

LINES = ["want running", "unwanted ||| low lowest", "中国 na ive"]


@pytest.fixture
def model_dir(tmp_path):
  folder = tmp_path / "model"
  folder.mkdir()
  vocab = SMALL_VOCAB + [f"[unused{i}]" for i in range(TINY_CONFIG["vocab_size"] - len(SMALL_VOCAB))]
  (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
  (folder / "bert_config.json").write_text(json.dumps(TINY_CONFIG))
  make_original_checkpoint(folder, TINY_CONFIG, with_heads=True, with_optimizer=True)
  return folder


def extract(tmp_path, model_dir, *flags):
  (tmp_path / "input.txt").write_text("\n".join(LINES) + "\n\n", encoding="utf-8")
  result = subprocess.run([sys.executable, "-m", "finetuning.extract_features",
                           f"--input_file={tmp_path / 'input.txt'}", f"--model_dir={model_dir}",
                           "--max_seq_length=16", "--layers=-1,-2,0", *flags],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]


def direct_outputs(model_dir, text_a, text_b):
  from bert_tf import BertEncoder, FullTokenizer
  tokenizer = FullTokenizer(str(model_dir / "vocab.txt"))
  tokens = ["[CLS]"] + tokenizer.tokenize(text_a) + ["[SEP]"]
  segments = [0] * len(tokens)
  if text_b:
    more = tokenizer.tokenize(text_b) + ["[SEP]"]
    tokens, segments = tokens + more, segments + [1] * len(more)
  ids = tokenizer.convert_tokens_to_ids(tokens)
  encoder = BertEncoder.from_pretrained(str(model_dir))
  outputs = encoder({"input_ids": tf.constant([ids]), "input_mask": tf.ones([1, len(ids)], tf.int32),
                     "segment_ids": tf.constant([segments])}, training=False)
  return tokens, outputs


def test_json_lines_equal_the_encoder(tmp_path, model_dir):
  extract(tmp_path, model_dir, f"--output_file={tmp_path / 'out.jsonl'}")
  records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
  assert [r["linex_index"] for r in records] == [0, 1, 2]
  for line, record in zip(LINES, records):
    text_a, _, text_b = line.partition(" ||| ")
    tokens, outputs = direct_outputs(model_dir, text_a, text_b or None)
    assert [f["token"] for f in record["features"]] == tokens
    for position, feature in enumerate(record["features"]):
      assert [layer["index"] for layer in feature["layers"]] == [-1, -2, 0]
      for layer in feature["layers"]:
        expected = outputs["encoder_outputs"][layer["index"]].numpy()[0, position]
        np.testing.assert_allclose(layer["values"], expected, atol=2e-6)
    np.testing.assert_allclose(record["pooled_output"], outputs["pooled_output"].numpy()[0], atol=2e-6)
    np.testing.assert_allclose(record["mean_pooled"],
                               outputs["sequence_output"].numpy()[0].mean(0), atol=2e-6)


def test_npz_and_attention_maps(tmp_path, model_dir):
  extract(tmp_path, model_dir, f"--output_file={tmp_path / 'out.npz'}", "--output_format=npz",
          f"--attention_dir={tmp_path / 'attention'}", "--attention_line=1")
  arrays = np.load(tmp_path / "out.npz")
  assert arrays["layers"].shape == (3, 3, 16, TINY_CONFIG["hidden_size"])
  # [CLS] want runn ##ing [SEP] / [CLS] un ##want ##ed [SEP] low lowest [SEP] /
  # [CLS] 中 国 na [UNK] [SEP] ("ive" alone is not in the vocabulary)
  assert arrays["input_mask"].sum(1).tolist() == [5, 8, 6]
  tokens, outputs = direct_outputs(model_dir, "unwanted", "low lowest")
  np.testing.assert_allclose(arrays["layers"][1, 0, :len(tokens)],
                             outputs["sequence_output"].numpy()[0], atol=2e-6)
  maps = np.load(tmp_path / "attention" / "attention.npy")
  assert maps.shape == (TINY_CONFIG["num_hidden_layers"], TINY_CONFIG["num_attention_heads"],
                        len(tokens), len(tokens))
  np.testing.assert_allclose(maps.sum(-1), 1.0, atol=1e-5)
  assert json.loads((tmp_path / "attention" / "tokens.json").read_text()) == tokens
  for layer in range(TINY_CONFIG["num_hidden_layers"]):
    assert (tmp_path / "attention" / f"layer_{layer}.png").stat().st_size > 1000


def test_attention_maps_reproduce_each_layer(tiny_config):
  """probs @ V through the output block gives each layer's attention output: the maps are the
  ones the layers attend with."""
  from bert_tf import BertEncoder
  from bert_tf.encoder import attention_maps
  from bert_tf.layers.attention import attention_bias
  from conftest import random_inputs
  encoder = BertEncoder(tiny_config)
  inputs = {k: v for k, v in random_inputs(TINY_CONFIG).items()
            if k in ("input_ids", "input_mask", "segment_ids")}
  maps = attention_maps(encoder, inputs)
  outputs = encoder(inputs, training=False)
  block = encoder.get_layer("encoder").blocks[1]
  hidden = outputs["encoder_outputs"][0]
  attention = block.attention.self_attention
  batch, seq = hidden.shape[0], hidden.shape[1]
  value = tf.reshape(attention.value(hidden), [batch, seq, attention.num_heads, attention.head_size])
  context = tf.reshape(tf.einsum("bnqk,bknd->bqnd", maps[1], value), [batch, seq, -1])
  expected = attention(hidden, attention_bias(inputs["input_mask"]), training=False)
  np.testing.assert_allclose(context.numpy(), expected.numpy(), atol=1e-5)
  mask = np.asarray(inputs["input_mask"])
  row = int(np.argmin(mask.sum(1)))
  padded = mask[row] == 0
  assert padded.any() and np.all(maps.numpy()[:, row][..., padded] < 1e-3)  # none to padding


@pytest.mark.slow
def test_export_dir_serves_the_encoders_sentence_vectors(tmp_path, model_dir):
  """--export_dir alone (no --input_file) writes the raw-text SavedModel; from a fresh process
  its pooled_output and mean_pooled equal the encoder's on the FullTokenizer's tokens, for a
  single text (serving_default) and a pair (`pair`). Mutation caught: the export built with
  segment ids 0 for text_b (pair outputs differ)."""
  from serving_checks import serve_in_fresh_process
  result = subprocess.run([sys.executable, "-m", "finetuning.extract_features",
                           f"--model_dir={model_dir}", "--max_seq_length=16", "--layers=-1",
                           f"--export_dir={tmp_path / 'saved'}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  for signature, inputs in (("serving_default", {"text_a": ["want running"]}),
                            ("pair", {"text_a": ["unwanted"], "text_b": ["low lowest"]})):
    served = serve_in_fresh_process(tmp_path / "saved", inputs, signature)
    _, outputs = direct_outputs(model_dir, inputs["text_a"][0], inputs.get("text_b", [None])[0])
    np.testing.assert_allclose(served["pooled_output"], outputs["pooled_output"], atol=1e-5)
    np.testing.assert_allclose(served["mean_pooled"],
                               tf.reduce_mean(outputs["sequence_output"], axis=1), atol=1e-5)
