"""Shared test fixtures: the tiny config, the real-data folder, and original-checkpoint builders."""
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Real vocabularies, corpora and task data from the public releases (see its MANIFEST.md). A user's
# fresh clone has no such folder: tests that need it skip with the reason.
SHARED_DATA = pathlib.Path(os.environ.get("BERT_TF_SHARED_DATA", ROOT.parent / "shared" / "data"))


# CI (.ci/run) sets BERT_TF_REQUIRE_SHARED_DATA=1: there the data must be present, and a missing
# file fails the test instead of skipping it (a suite of skips would otherwise pass green).
REQUIRE_SHARED_DATA = os.environ.get("BERT_TF_REQUIRE_SHARED_DATA", "") not in ("", "0")


def missing_data(message):
  """Skips the test with `message` (a user's fresh clone), or fails it when the run requires the
  real data (BERT_TF_REQUIRE_SHARED_DATA=1, as .ci/run sets)."""
  if REQUIRE_SHARED_DATA:
    pytest.fail(f"{message}, and BERT_TF_REQUIRE_SHARED_DATA is set (CI expects the real data)",
                pytrace=False)
  pytest.skip(message)


def shared_path(relative):
  """Path of a file under ../shared/data; skips the test with the reason when it is absent (or
  fails, see missing_data)."""
  path = SHARED_DATA / relative
  if not path.exists():
    missing_data(f"real data file {path} is absent (../shared/data is not part of a fresh clone)")
  return path


@pytest.fixture
def shared_data():
  return shared_path


# A hand-made vocabulary for tokenizer cases that are checked by hand.
SMALL_VOCAB = ["[UNK]", "[CLS]", "[SEP]", "want", "##want", "##ed", "wa", "un", "runn", "##ing", ",",
               "low", "lowest", "中", "国", "##国", "na", "##ive", "cafe", "x", "##x", "é"]


@pytest.fixture
def small_vocab(tmp_path):
  path = tmp_path / "vocab.txt"
  path.write_text("\n".join(SMALL_VOCAB) + "\n", encoding="utf-8")
  return path


# The classic tester sizes (batch 13, seq 7, vocab 99, hidden 32, intermediate 37).
TINY_CONFIG = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                   intermediate_size=37, hidden_act="gelu", hidden_dropout_prob=0.1,
                   attention_probs_dropout_prob=0.1, max_position_embeddings=64, type_vocab_size=2,
                   initializer_range=0.02)
BATCH_SIZE, SEQ_LENGTH, NUM_PREDICTIONS = 13, 7, 3


@pytest.fixture
def tiny_config():
  from bert_tf import BertConfig
  return BertConfig(**TINY_CONFIG)


def original_variable_shapes(config, with_heads=True):
  """Original TF1 variable names and shapes, written out by hand from google-research/bert's
  modeling.py and run_pretraining.py (independent of bert_tf's name table)."""
  h, i, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
  shapes = {
      "bert/embeddings/word_embeddings": (v, h),
      "bert/embeddings/token_type_embeddings": (config["type_vocab_size"], h),
      "bert/embeddings/position_embeddings": (config["max_position_embeddings"], h),
      "bert/embeddings/LayerNorm/gamma": (h,),
      "bert/embeddings/LayerNorm/beta": (h,),
      "bert/pooler/dense/kernel": (h, h),
      "bert/pooler/dense/bias": (h,),
  }
  for n in range(config["num_hidden_layers"]):
    p = f"bert/encoder/layer_{n}/"
    for name in ("query", "key", "value"):
      shapes[p + f"attention/self/{name}/kernel"] = (h, h)
      shapes[p + f"attention/self/{name}/bias"] = (h,)
    shapes[p + "attention/output/dense/kernel"] = (h, h)
    shapes[p + "attention/output/dense/bias"] = (h,)
    shapes[p + "attention/output/LayerNorm/gamma"] = (h,)
    shapes[p + "attention/output/LayerNorm/beta"] = (h,)
    shapes[p + "intermediate/dense/kernel"] = (h, i)
    shapes[p + "intermediate/dense/bias"] = (i,)
    shapes[p + "output/dense/kernel"] = (i, h)
    shapes[p + "output/dense/bias"] = (h,)
    shapes[p + "output/LayerNorm/gamma"] = (h,)
    shapes[p + "output/LayerNorm/beta"] = (h,)
  if with_heads:
    shapes.update({
        "cls/predictions/transform/dense/kernel": (h, h),
        "cls/predictions/transform/dense/bias": (h,),
        "cls/predictions/transform/LayerNorm/gamma": (h,),
        "cls/predictions/transform/LayerNorm/beta": (h,),
        "cls/predictions/output_bias": (v,),
        "cls/seq_relationship/output_weights": (2, h),
        "cls/seq_relationship/output_bias": (2,),
    })
  return shapes


def make_original_checkpoint(directory, config, with_heads=True, with_optimizer=True, seed=0,
                             extra=None):
  """Writes a TF1 checkpoint with original variable names, as google-research/bert's Estimator
  did (tf.compat.v1 variables + Saver): random weights, LayerNorm gammas away from 1 and betas
  away from 0, and optionally the AdamWeightDecay slots (`/adam_m`, `/adam_v`) and global_step.

  Returns:
    (checkpoint prefix, {name: ndarray} of the model variables).
  """
  import numpy as np
  import tensorflow as tf
  rng = np.random.default_rng(seed)
  values = {}
  for name, shape in original_variable_shapes(config, with_heads).items():
    if name.endswith("gamma"):
      values[name] = (1.0 + 0.2 * rng.standard_normal(shape)).astype(np.float32)
    elif name.endswith(("beta", "bias")):
      values[name] = (0.1 * rng.standard_normal(shape)).astype(np.float32)
    else:
      values[name] = (0.05 * rng.standard_normal(shape)).astype(np.float32)
  values.update(extra or {})
  prefix = str(pathlib.Path(directory) / "bert_model.ckpt")
  with tf.Graph().as_default():
    for name, value in values.items():
      tf.compat.v1.get_variable(name, initializer=tf.constant(value))
      if with_optimizer:
        tf.compat.v1.get_variable(name + "/adam_m", initializer=tf.constant(np.abs(value) * 0.01))
        tf.compat.v1.get_variable(name + "/adam_v", initializer=tf.constant(np.abs(value) * 0.001))
    if with_optimizer:
      tf.compat.v1.get_variable("global_step", initializer=tf.constant(1234, dtype=tf.int64))
    saver = tf.compat.v1.train.Saver()
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      saver.save(session, prefix, write_meta_graph=False)
  return prefix, values


def random_inputs(config, batch_size=BATCH_SIZE, seq_length=SEQ_LENGTH, num_predictions=None, seed=1):
  """int32 input dict with real padding: each row has a random length in [2, seq_length]."""
  import numpy as np
  rng = np.random.default_rng(seed)
  lengths = rng.integers(2, seq_length + 1, size=batch_size)
  lengths[0] = seq_length
  mask = (np.arange(seq_length)[None, :] < lengths[:, None]).astype(np.int32)
  ids = rng.integers(1, config["vocab_size"], size=(batch_size, seq_length)).astype(np.int32) * mask
  segments = ((np.arange(seq_length)[None, :] >= (lengths[:, None] // 2)) * mask).astype(np.int32)
  inputs = {"input_ids": ids, "input_mask": mask, "segment_ids": segments}
  if num_predictions:
    inputs["masked_lm_positions"] = np.stack(
        [np.sort(rng.choice(max(l, num_predictions), num_predictions, replace=False)) for l in lengths]
    ).astype(np.int32)
  return inputs


# A small WordPiece vocabulary for synthetic pretraining text: whole words, ## pieces and CJK.
PRETRAINING_VOCAB = (["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] +
                     "hello world the quick brown fox jumps over lazy dog un ##want ##ed run ##ning".split() +
                     list("我们爱北京天安门中国人民大学生活") + [",", "."])


@pytest.fixture
def pretraining_vocab(tmp_path):
  path = tmp_path / "pretraining_vocab.txt"
  path.write_text("\n".join(PRETRAINING_VOCAB) + "\n", encoding="utf-8")
  return str(path)


# A small BERT over Google's Chinese vocabulary (from ../shared/data), for fine-tuning programs.
TINY_CHINESE = dict(TINY_CONFIG, vocab_size=21128, hidden_size=64, num_attention_heads=2,
                    intermediate_size=128, max_position_embeddings=128)


@pytest.fixture
def tiny_chinese_model(tmp_path):
  """A model folder (bert_config.json, vocab.txt, no checkpoint: trained from scratch)."""
  import json
  import shutil
  folder = tmp_path / "tiny_chinese"
  folder.mkdir()
  shutil.copy(shared_path("vocab/chinese_vocab.txt"), folder / "vocab.txt")
  (folder / "bert_config.json").write_text(json.dumps(TINY_CHINESE))
  return folder


def real_pretraining_records(folder, num_lines, max_seq_length, max_predictions_per_seq,
                             num_shards=1):
  """create_pretraining_data (original defaults, dupe_factor 1) on the first `num_lines` lines of
  WikiText-2 valid with Google's uncased vocabulary: real records. Returns (glob, vocab path)."""
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  corpus = shared_path("english_corpus/wikitext-2_valid_sentences.txt")
  vocab = shared_path("vocab/uncased_vocab.txt")
  folder = pathlib.Path(folder)
  lines = corpus.read_text(encoding="utf-8").splitlines(keepends=True)[:num_lines]
  (folder / "corpus.txt").write_text("".join(lines), encoding="utf-8")
  out = folder / f"wiki{max_seq_length}.tfrecord"
  result = subprocess.run([sys.executable, "-m", "pretraining.create_pretraining_data",
                           f"--input_file={folder / 'corpus.txt'}", f"--output_file={out}",
                           f"--vocab_file={vocab}", f"--max_seq_length={max_seq_length}",
                           f"--max_predictions_per_seq={max_predictions_per_seq}",
                           "--dupe_factor=1", f"--num_shards={num_shards}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  return f"{out}*", str(vocab)


def start_local_workers(command, count=2, timeout=1800):
  """Starts `count` processes of `command`, each with a TF_CONFIG naming it one of `count`
  workers on free localhost ports (MultiWorkerMirroredStrategy), and waits for them. Returns
  [(process, combined output)] in worker order; every process is gone on return."""
  import json  # pylint: disable=import-outside-toplevel
  import socket  # pylint: disable=import-outside-toplevel
  import subprocess  # pylint: disable=import-outside-toplevel
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(("127.0.0.1", 0))
  cluster = {"worker": [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]}
  for s in sockets:
    s.close()
  workers = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True,
                              env=dict(os.environ, PYTHONPATH=str(ROOT), TF_CONFIG=json.dumps(
                                  {"cluster": cluster, "task": {"type": "worker", "index": i}})))
             for i in range(count)]
  outputs = []
  try:
    for worker in workers:
      outputs.append(worker.communicate(timeout=timeout)[0])
  finally:
    for worker in workers:
      worker.kill()
      worker.wait()
  return list(zip(workers, outputs))
