"""Training runs over several topologies, for tests/test_replica_invariance.py (run as a script).

    python tests/replica_runs.py local RECORDS OUT_DIR      # one device, 4 logical CPUs, and
                                                           # 4 accumulated micro-batches
    python tests/replica_runs.py pairs RECORDS OUT_DIR      # 2 logical CPUs: XLA and dropout
    TF_CONFIG=... python tests/replica_runs.py worker RECORDS OUT_DIR   # one of 2 workers

Every run trains the same model from the same initial weights on the same global batches of
real pretraining records (in record order, no shuffling): 20 steps, global batch 16. Each writes
OUT_DIR/<objective>-<topology>.npz with every model and optimizer variable after the last step
and the per-step logged loss and grad_norm. Logical devices must be configured before TensorFlow
initialises, and two MirroredStrategies of different sizes in one process share collective
group keys, hence a process per group.
"""
import json
import os
import sys

import numpy as np
import tensorflow as tf

MODE, RECORDS, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
if MODE in ("local", "pairs"):
  cpu = tf.config.list_physical_devices("CPU")[0]
  tf.config.set_logical_device_configuration(
      cpu, [tf.config.LogicalDeviceConfiguration()] * (4 if MODE == "local" else 2))

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import keras  # pylint: disable=wrong-import-position
from bert_tf import BertConfig, BertPretrainer, distribute, optimization, training  # pylint: disable=wrong-import-position
from finetuning.models import BertClassifier  # pylint: disable=wrong-import-position
from finetuning.objectives import ClassificationObjective  # pylint: disable=wrong-import-position
from pretraining import input_pipeline  # pylint: disable=wrong-import-position
from pretraining.task import PretrainingTask  # pylint: disable=wrong-import-position

SEQ, PREDICTIONS, GLOBAL_BATCH, STEPS = 64, 10, 16, 20
CLIP_NORM = 0.1   # well below the gradient norms of these steps: clipping is engaged
CONFIG = dict(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
              intermediate_size=37, hidden_act="gelu", hidden_dropout_prob=0.0,
              attention_probs_dropout_prob=0.0, max_position_embeddings=64, type_vocab_size=2,
              initializer_range=0.02)
OBJECTIVES = ("pretraining-lamb", "pretraining-adamw", "classifier-lamb")


def dataset_fn_for(micro_batch):
  """Global micro-batches of `micro_batch` records in file order; each input pipeline takes its
  slice and splits it over its replicas, so every topology sees the same global batches."""
  def dataset_fn(context):
    per_replica = context.get_per_replica_batch_size(micro_batch)
    share = micro_batch // context.num_input_pipelines
    start = context.input_pipeline_id * share
    records = tf.data.TFRecordDataset(sorted(tf.io.gfile.glob(RECORDS))).repeat()
    batches = records.batch(micro_batch, drop_remainder=True).map(lambda r: r[start:start + share])
    parsed = batches.unbatch().batch(per_replica, drop_remainder=True).map(
        lambda r: input_pipeline.decode(r, SEQ, PREDICTIONS))
    return parsed.map(lambda f: dict(f, label_ids=tf.reshape(f["next_sentence_labels"], [-1])))
  dataset_fn.global_batch_size = micro_batch
  return dataset_fn


def build(objective, strategy, config):
  with strategy.scope():
    keras.utils.set_random_seed(7)
    if objective.startswith("classifier"):
      model, task = BertClassifier(config, 2, seq_length=SEQ), ClassificationObjective()
    else:
      model = BertPretrainer(config, seq_length=SEQ, max_predictions_per_seq=PREDICTIONS)
      task = PretrainingTask()
    optimizer = optimization.create_optimizer(objective.split("-")[1], 1e-3, STEPS, 2,
                                              clip_norm=CLIP_NORM)
  return model, task, optimizer


def train(objective, strategy, name, accumulation=1, jit_compile=False, dropout=0.0,
          steps=STEPS):
  config = BertConfig(**dict(CONFIG, hidden_dropout_prob=dropout,
                             attention_probs_dropout_prob=dropout))
  model, task, optimizer = build(objective, strategy, config)
  model_dir = os.path.join(OUT, "model_dirs", f"{objective}-{name}")
  trainer = training.Trainer(strategy, model, optimizer, task, training.TrainerConfig(
      model_dir=model_dir, num_train_steps=steps, steps_per_loop=1, save_checkpoints_steps=0,
      gradient_accumulation_steps=accumulation, jit_compile=jit_compile, progress_bar=False))
  logged = {"loss": [], "grad_norm": []}

  def on_loop_end(step, results):
    del step
    for key in logged:
      logged[key].append(results[key])

  trainer.train(dataset_fn_for(GLOBAL_BATCH // accumulation), on_loop_end=on_loop_end)
  arrays = {f"model/{v.path}": v.numpy() for v in model.weights}
  arrays.update({f"optimizer/{i:03d}/{v.path}": v.numpy()
                 for i, v in enumerate(optimizer.variables)})
  arrays.update({f"logged/{k}": np.array(v) for k, v in logged.items()})
  arrays["step"] = np.array(trainer.step)
  if trainer.is_chief:
    np.savez(os.path.join(OUT, f"{objective}-{name}.npz"), **arrays)
  return arrays


def dropout_checks(results, strategy):
  """Per-replica masks, and the same loss curve for the same seed and replica count."""
  from bert_tf.layers.dropout import Dropout  # pylint: disable=import-outside-toplevel
  with strategy.scope():
    keras.utils.set_random_seed(3)
    layer = Dropout(0.5)
  ones = tf.ones([4, 64])
  masks = strategy.run(tf.function(lambda: layer(ones, training=True)))
  local = [t.numpy() != 0 for t in strategy.experimental_local_results(masks)]
  results["dropout_drop_rates"] = [float(1 - m.mean()) for m in local]
  results["dropout_masks_equal"] = bool((local[0] == local[1]).all())
  curves = [train("pretraining-lamb", strategy, f"dropout{run}", dropout=0.1, steps=5)
            ["logged/loss"].tolist() for run in range(2)]
  results["dropout_loss_curves"] = curves


def main():
  results = {}
  if MODE == "worker":
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    results["replicas"] = strategy.num_replicas_in_sync
    for objective in OBJECTIVES:
      train(objective, strategy, "2workers")
    if distribute.is_chief(strategy):
      with open(os.path.join(OUT, "worker_results.json"), "w") as f:
        json.dump(results, f)
    return
  if MODE == "local":
    one = tf.distribute.get_strategy()
    four = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(4)])
    for objective in OBJECTIVES:
      train(objective, one, "1device")
      train(objective, four, "4replicas")
      train(objective, one, "accumulate4", accumulation=4)
    return
  two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
  # The compiled step (forward/backward and the optimizer update in XLA) against the plain one,
  # 2 replicas, float32 and mixed_bfloat16.
  for precision in ("float32", "mixed_bfloat16"):
    keras.mixed_precision.set_global_policy(precision)
    for jit in (False, True):
      train("pretraining-lamb", two, f"{precision}-xla{int(jit)}", jit_compile=jit, steps=5)
  keras.mixed_precision.set_global_policy("float32")
  dropout_checks(results, two)
  with open(os.path.join(OUT, "pairs_results.json"), "w") as f:
    json.dump(results, f)


if __name__ == "__main__":
  main()
