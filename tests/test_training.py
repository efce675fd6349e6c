"""The training loop: global-batch loss semantics over replicas, XLA, gradient accumulation."""
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, TINY_CONFIG

SCRIPT = r'''
import json, sys
import numpy as np
import tensorflow as tf
replicas, xla, accumulation = int(sys.argv[1]), sys.argv[2] == "1", int(sys.argv[3])
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from bert_tf import BertConfig, BertPretrainer, optimization, training
from pretraining.task import PretrainingTask
config = BertConfig(**dict(json.loads(sys.argv[4]), hidden_dropout_prob=0.0,
                           attention_probs_dropout_prob=0.0))
devices = [f"/cpu:{i}" for i in range(replicas)]
strategy = tf.distribute.MirroredStrategy(devices) if replicas > 1 else tf.distribute.get_strategy()
rng = np.random.default_rng(0)
n, seq, pred = 64, 16, 4
data = {"input_ids": rng.integers(0, config.vocab_size, (n, seq)).astype(np.int32),
        "input_mask": (np.arange(seq)[None] < rng.integers(8, seq + 1, (n, 1))).astype(np.int32),
        "segment_ids": np.broadcast_to(np.arange(seq)[None] >= 6, (n, seq)).astype(np.int32),
        "masked_lm_positions": rng.integers(1, 8, (n, pred)).astype(np.int32),
        "masked_lm_ids": rng.integers(0, config.vocab_size, (n, pred)).astype(np.int32),
        "masked_lm_weights": (rng.random((n, pred)) < 0.8).astype(np.float32),
        "next_sentence_labels": rng.integers(0, 2, (n, 1)).astype(np.int32)}
global_batch = 8 // accumulation
def dataset_fn(ctx):
  batch = ctx.get_per_replica_batch_size(global_batch)
  ds = tf.data.Dataset.from_tensor_slices(data)
  ds = ds.shard(ctx.num_input_pipelines, ctx.input_pipeline_id)
  return ds.batch(batch, drop_remainder=True).repeat()
dataset_fn.global_batch_size = global_batch
with strategy.scope():
  tf.keras.utils.set_random_seed(1)
  model = BertPretrainer(config, seq_length=seq, max_predictions_per_seq=pred)
  # SGD for the comparisons: the update is the gradient itself, so weights compare the
  # gradients; LAMB/Adam normalise away the scale and amplify float noise in tiny gradients.
  optimizer = (tf.keras.optimizers.SGD(1.0) if sys.argv[6] == "sgd"
               else optimization.create_optimizer("lamb", 1e-2, 100, 0))
trainer = training.Trainer(strategy, model, optimizer, PretrainingTask(),
                           training.TrainerConfig(model_dir=sys.argv[5], num_train_steps=3 * 1,
                                                  steps_per_loop=3, save_checkpoints_steps=0,
                                                  gradient_accumulation_steps=accumulation,
                                                  jit_compile=xla))
results = trainer.train(dataset_fn)
np.savez(sys.argv[5] + ".npz", **{w.path: w.numpy() for w in model.weights})
print(json.dumps({"loss": results["loss"], "step": trainer.step}))
'''


def run(tmp_path, replicas, xla=False, accumulation=1, optimizer="sgd"):
  out = tmp_path / f"r{replicas}x{int(xla)}a{accumulation}{optimizer}"
  result = subprocess.run([sys.executable, "-c", SCRIPT, str(replicas), "1" if xla else "0",
                           str(accumulation), json.dumps(TINY_CONFIG), str(out), optimizer],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-4000:]
  summary = json.loads(result.stdout.strip().splitlines()[-1])
  with np.load(f"{out}.npz") as weights:
    summary["weights"] = dict(weights)
  return summary


def assert_same_weights(actual, expected, rtol, zero_gradient_atol=1e-7):
  """Every weight within rtol of its variable's largest value. The attention key bias has a zero
  gradient in exact arithmetic (softmax ignores a shift shared by all keys), so it only has to
  stay numerically zero."""
  assert sorted(actual) == sorted(expected) and len(expected) > 20
  for name, value in expected.items():
    if "attention/self/key/bias" in name:
      assert np.abs(actual[name]).max() < zero_gradient_atol and np.abs(value).max() < zero_gradient_atol
      continue
    scale = np.abs(value).max()
    assert np.abs(actual[name] - value).max() <= rtol * scale, name


@pytest.mark.slow
def test_two_replicas_follow_the_single_device_run(tmp_path):
  one = run(tmp_path, 1)
  two = run(tmp_path, 2)
  assert one["step"] == two["step"] == 3
  assert np.isfinite(one["loss"])
  assert_same_weights(two["weights"], one["weights"], rtol=1e-5)
  assert abs(two["loss"] - one["loss"]) < 1e-5


@pytest.mark.slow
def test_xla_compiled_loop_matches(tmp_path):
  plain = run(tmp_path, 1, optimizer="lamb")
  xla = run(tmp_path, 1, xla=True, optimizer="lamb")
  assert_same_weights(xla["weights"], plain["weights"], rtol=1e-4, zero_gradient_atol=1e-6)
  assert abs(xla["loss"] - plain["loss"]) < 1e-4


@pytest.mark.slow
def test_gradient_accumulation_equals_the_larger_batch(tmp_path):
  # 2 micro-batches of 4 per step = one batch of 8 (same examples in the same order), LAMB with
  # global-norm clipping: every weight. (tests/test_replica_invariance.py does the same on real
  # records for 4 micro-batches, 4 replicas and 2 workers, optimizer slots included.)
  whole = run(tmp_path, 1, optimizer="lamb")
  accumulated = run(tmp_path, 1, accumulation=2, optimizer="lamb")
  assert_same_weights(accumulated["weights"], whole["weights"], rtol=1e-5)


def test_a_non_finite_loss_stops_naming_the_step_and_the_last_checkpoint(tmp_path):
  """An injected NaN (masked-LM weights of the batches from step 23 on) stops the run at the end
  of that loop with the step and the last checkpoint in the message."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from bert_tf import BertConfig, BertPretrainer, optimization, training  # pylint: disable=import-outside-toplevel
  from pretraining.task import PretrainingTask  # pylint: disable=import-outside-toplevel
  config = BertConfig(**TINY_CONFIG)
  rng = np.random.default_rng(0)
  batch, seq, pred = 4, 8, 2
  data = {"input_ids": rng.integers(0, 99, (batch, seq)).astype(np.int32),
          "input_mask": np.ones((batch, seq), np.int32),
          "segment_ids": np.zeros((batch, seq), np.int32),
          "masked_lm_positions": rng.integers(0, seq, (batch, pred)).astype(np.int32),
          "masked_lm_ids": rng.integers(0, 99, (batch, pred)).astype(np.int32),
          "masked_lm_weights": np.ones((batch, pred), np.float32),
          "next_sentence_labels": np.zeros((batch, 1), np.int32)}

  def dataset_fn(context):
    del context
    steps = tf.data.Dataset.range(1000)

    def batch_at(step):
      poison = tf.where(step >= 22, float("nan"), 1.0)   # batch 22 is step 23's
      return dict(data, masked_lm_weights=data["masked_lm_weights"] * poison)
    return steps.map(batch_at)
  dataset_fn.global_batch_size = batch
  model = BertPretrainer(config, seq_length=seq, max_predictions_per_seq=pred)
  trainer = training.Trainer(
      tf.distribute.get_strategy(), model, optimization.create_optimizer("lamb", 1e-3, 100, 0),
      PretrainingTask(), training.TrainerConfig(model_dir=str(tmp_path), num_train_steps=100,
                                                steps_per_loop=5, save_checkpoints_steps=10))
  with pytest.raises(FloatingPointError) as error:
    trainer.train(dataset_fn)
  message = str(error.value)
  assert "step 25" in message and str(tmp_path / "ckpt-20") in message, message


def test_a_complete_checkpoint_missing_from_the_state_file_is_used(tmp_path):
  """A kill after ckpt-N is fully written but before the checkpoint state file lists it: the
  resumed run starts from N (verified by reading every tensor back), and a newer checkpoint
  whose data file was cut short is ignored."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from bert_tf import BertConfig, BertPretrainer, optimization, training  # pylint: disable=import-outside-toplevel
  from pretraining.task import PretrainingTask  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  data = {"input_ids": rng.integers(0, 99, (4, 8)).astype(np.int32),
          "input_mask": np.ones((4, 8), np.int32), "segment_ids": np.zeros((4, 8), np.int32),
          "masked_lm_positions": rng.integers(0, 8, (4, 2)).astype(np.int32),
          "masked_lm_ids": rng.integers(0, 99, (4, 2)).astype(np.int32),
          "masked_lm_weights": np.ones((4, 2), np.float32),
          "next_sentence_labels": np.zeros((4, 1), np.int32)}

  def dataset_fn(context):
    del context
    return tf.data.Dataset.from_tensors(data).repeat()
  dataset_fn.global_batch_size = 4

  def trainer(steps):
    model = BertPretrainer(BertConfig(**TINY_CONFIG), seq_length=8, max_predictions_per_seq=2)
    return training.Trainer(
        tf.distribute.get_strategy(), model, optimization.create_optimizer("lamb", 1e-3, 100, 0),
        PretrainingTask(), training.TrainerConfig(model_dir=str(tmp_path), num_train_steps=steps,
                                                  steps_per_loop=5, save_checkpoints_steps=10))
  trainer(30).train(dataset_fn)
  state = tmp_path / "checkpoint"
  # The state file as it was before ckpt-20 and ckpt-30 were registered; ckpt-30's data cut short.
  state.write_text('model_checkpoint_path: "ckpt-10"\nall_model_checkpoint_paths: "ckpt-10"\n')
  data_file = tmp_path / "ckpt-30.data-00000-of-00001"
  data_file.write_bytes(data_file.read_bytes()[:100])
  resumed = trainer(40)
  assert resumed.latest_checkpoint() == str(tmp_path / "ckpt-20")
  resumed.train(dataset_fn)
  assert resumed.step == 40
