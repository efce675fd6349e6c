"""run_pretraining end to end on CPU: loss falls, kill and resume, export, eval, recipes parse."""
import glob
import json
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT, shared_path

CONFIGS = sorted((ROOT / "tpu_configs").glob("*.flags"))


def program(*args):
  return [sys.executable, "-m", "pretraining.run_pretraining", *args]


@pytest.mark.parametrize("flagfile", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_recipe_parses_and_is_consistent(flagfile, tmp_path):
  result = subprocess.run(program(f"--flagfile={flagfile}", "--input_file=unused",
                                  f"--output_dir={tmp_path}", "--dry_run"),
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  resolved = json.loads(result.stdout.strip().splitlines()[-1])
  assert resolved["max_predictions_per_seq"] * 4 < resolved["max_seq_length"] * 1.0
  assert resolved["num_warmup_steps"] < resolved["num_train_steps"]
  assert resolved["do_train"]
  if resolved["use_tpu"]:
    assert resolved["train_batch_size"] % resolved["num_tpu_cores"] == 0
    assert resolved["precision"] == "mixed_bfloat16"


def test_inconsistent_flags_are_named(tmp_path):
  result = subprocess.run(program(f"--flagfile={ROOT / 'tpu_configs/tiny_cpu.flags'}",
                                  "--input_file=unused", f"--output_dir={tmp_path}",
                                  "--max_predictions_per_seq=60", "--num_warmup_steps=400",
                                  "--dry_run"),
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert result.returncode != 0
  assert "max_predictions_per_seq=60" in result.stderr and "num_warmup_steps=400" in result.stderr


@pytest.fixture(scope="module")
def records(tmp_path_factory):
  """Real English text as seq-64 records (the tiny CPU recipe's lengths)."""
  corpus = shared_path("english_corpus/wikitext-2_valid_sentences.txt")
  vocab = shared_path("vocab/uncased_vocab.txt")
  out = tmp_path_factory.mktemp("records") / "wiki.tfrecord"
  result = subprocess.run([sys.executable, "-m", "pretraining.create_pretraining_data",
                           f"--input_file={corpus}", f"--output_file={out}",
                           f"--vocab_file={vocab}", "--max_seq_length=64",
                           "--max_predictions_per_seq=10", "--dupe_factor=2", "--num_shards=4"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  return f"{out}*", str(vocab)


def summaries(model_dir, tag):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  values = {}
  for path in sorted(glob.glob(str(pathlib.Path(model_dir) / "train" / "events.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == tag:
          values[event.step] = float(tf.make_ndarray(value.tensor))
  return values


def train_command(records, output_dir, *extra):
  pattern, vocab = records
  return program(f"--flagfile={ROOT / 'tpu_configs/tiny_cpu.flags'}", f"--input_file={pattern}",
                 f"--output_dir={output_dir}", f"--vocab_file={vocab}", *extra)


@pytest.fixture(scope="module")
def float32_run(records, tmp_path_factory):
  out = tmp_path_factory.mktemp("pretraining") / "run"
  result = subprocess.run(train_command(records, out), cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
  assert result.returncode == 0, result.stderr[-4000:]
  return out


@pytest.mark.slow
def test_pretraining_learns_exports_and_evaluates(float32_run):
  out = float32_run
  mlm = summaries(out, "masked_lm_loss")
  steps = sorted(mlm)
  assert steps[-1] == 300 and len(steps) == 6
  assert mlm[steps[0]] > 9.0                    # about ln(30522) = 10.3 at the start
  assert mlm[steps[-1]] < 0.75 * mlm[steps[0]]  # well below it after 300 steps
  assert set(summaries(out, "learning_rate")) == set(steps)
  results = dict(line.split(" = ") for line in (out / "eval_results.txt").read_text().splitlines())
  assert set(results) >= {"masked_lm_loss", "masked_lm_accuracy", "next_sentence_loss",
                          "next_sentence_accuracy", "global_step"}
  assert int(results["global_step"]) == 300
  assert float(results["masked_lm_loss"]) < mlm[steps[0]]
  # The export is an original checkpoint: it loads into a fresh model with identical outputs.
  check_export(out)


@pytest.mark.slow
def test_bfloat16_follows_the_float32_loss_curve(records, float32_run, tmp_path):
  """Mixed bfloat16 (float32 variables, softmax, LayerNorm and losses) learns as float32 does:
  same data, same initialisation, the masked-LM loss within 5% of float32's at every logged step."""
  out = tmp_path / "bf16"
  result = subprocess.run(train_command(records, out, "--precision=mixed_bfloat16",
                                        "--do_eval=false"),
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-4000:]
  half, full = summaries(out, "masked_lm_loss"), summaries(float32_run, "masked_lm_loss")
  assert sorted(half) == sorted(full)
  for step in full:
    assert half[step] == pytest.approx(full[step], rel=0.05), (step, half[step], full[step])
  assert half[max(half)] < 0.75 * half[min(half)]


def check_export(out):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from bert_tf import BertPretrainer  # pylint: disable=import-outside-toplevel
  exported = BertPretrainer.from_pretrained(out / "export", max_predictions_per_seq=10)
  trained = BertPretrainer(exported.config, max_predictions_per_seq=10)
  from bert_tf.training import model_checkpoint  # pylint: disable=import-outside-toplevel
  status = model_checkpoint(trained).restore(tf.train.latest_checkpoint(str(out)))
  status.assert_existing_objects_matched().expect_partial()
  names = {n for n, _ in tf.train.list_variables(str(out / "export" / "bert_model.ckpt"))}
  assert "bert/embeddings/word_embeddings" in names and "cls/predictions/output_bias" in names
  rng = np.random.default_rng(0)
  features = {"input_ids": rng.integers(0, 30522, (3, 64)).astype(np.int32),
              "input_mask": np.ones((3, 64), np.int32),
              "segment_ids": np.zeros((3, 64), np.int32),
              "masked_lm_positions": rng.integers(0, 64, (3, 10)).astype(np.int32)}
  a, b = exported(features, training=False), trained(features, training=False)
  for key in ("sequence_output", "mlm_logits", "nsp_logits"):
    np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())


@pytest.mark.slow
def test_killed_run_resumes_at_its_step(records, tmp_path):
  out = tmp_path / "killed"
  process = subprocess.Popen(train_command(records, out, "--do_eval=false"), cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 600
  state = out / "checkpoint"  # CheckpointManager registers a save here after writing its files
  while time.time() < deadline and process.poll() is None:
    if state.exists() and "ckpt-100" in state.read_text():
      break
    time.sleep(0.1)
  process.send_signal(signal.SIGKILL)
  process.wait()
  assert glob.glob(str(out / "ckpt-100.index")), "no checkpoint before the kill"
  assert not glob.glob(str(out / "ckpt-300.index"))
  before = summaries(out, "masked_lm_loss")
  result = subprocess.run(train_command(records, out, "--do_eval=false"), cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-4000:]
  assert "resumed from" in result.stderr
  after = summaries(out, "masked_lm_loss")
  assert max(after) == 300
  # The loss continues from where it was (the resumed run rewrote step 150), not from the
  # start (about 10.3).
  assert after[150] < before[100] + 0.5 and after[150] < 9.0
