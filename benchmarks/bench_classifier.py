"""Fine-tuning and evaluation throughput of the classifier: bert_tf against tf-models-official's
BertClassifier at the same config, one run.

    python -m benchmarks.bench_classifier            # small (L4/H256) batch 32, base batch 16
    python -m benchmarks.bench_classifier --quick    # tiny config (smoke test)

Training step = forward with dropout, cross-entropy of 2 labels, backward, global-norm clipping
at 1.0 and an AdamWeightDecay update (each side its own: bert_tf.optimization.AdamWeightDecay,
official.nlp.optimization.AdamWeightDecay), on a fixed batch of length 128 (a quarter padded).
Evaluation = forward without dropout and softmax. Both as one tf.function per call of --steps
steps, XLA off and on. bert_tf is also timed through its real training loop (Trainer: steps per
host call, tf.data input of the same batch), the path run_classifier takes. Timed repetitions
interleave the implementations; each figure is their median.
"""
import argparse
import sys

import numpy as np
import tensorflow as tf

from benchmarks.bench_encoder import CONFIGS, _interleaved_medians
from benchmarks.common import RESULTS, machine_info, markdown_table, write_results

SEQ = 128
BATCHES = {"tiny": 8, "small": 32, "base": 16}


def batch_of(batch_size, vocab_size, seed=0):
  rng = np.random.default_rng(seed)
  mask = np.ones((batch_size, SEQ), np.int32)
  mask[:, SEQ * 3 // 4:] = 0
  return {
      "input_ids": tf.constant(rng.integers(1, vocab_size, (batch_size, SEQ)).astype(np.int32) * mask),
      "input_mask": tf.constant(mask),
      "segment_ids": tf.constant(np.where(np.arange(SEQ) >= SEQ // 2, 1, 0)[None].repeat(batch_size, 0).astype(np.int32) * mask),
      "label_ids": tf.constant(rng.integers(0, 2, batch_size).astype(np.int32)),
  }


def _steps(logits_fn, variables, optimizer):
  def train(features):
    with tf.GradientTape() as tape:
      logits = tf.cast(logits_fn(features, True), tf.float32)
      loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
          labels=features["label_ids"], logits=logits))
    trainable = variables()
    optimizer.apply_gradients(zip(tape.gradient(loss, trainable), trainable))
    return loss

  def evaluate(features):
    return tf.reduce_sum(tf.nn.softmax(tf.cast(logits_fn(features, False), tf.float32)))
  return train, evaluate


def build_bert_tf(c):
  from bert_tf import BertConfig, optimization  # pylint: disable=import-outside-toplevel
  from finetuning.models import BertClassifier  # pylint: disable=import-outside-toplevel
  model = BertClassifier(BertConfig(**c, type_vocab_size=2), 2, seq_length=SEQ)
  optimizer = optimization.AdamWeightDecay(2e-5, global_clipnorm=1.0)
  return _steps(lambda f, training: model(f, training=training)["logits"],
                lambda: model.trainable_variables, optimizer) + (model,)


def build_tf_models(c):
  import tf_keras  # pylint: disable=import-outside-toplevel
  from official.modeling import tf_utils  # pylint: disable=import-outside-toplevel
  from official.nlp import optimization  # pylint: disable=import-outside-toplevel
  from official.nlp.modeling import models, networks  # pylint: disable=import-outside-toplevel
  init = tf_keras.initializers.TruncatedNormal(stddev=0.02)
  encoder = networks.BertEncoder(
      vocab_size=c["vocab_size"], hidden_size=c["hidden_size"], num_layers=c["num_hidden_layers"],
      num_attention_heads=c["num_attention_heads"], intermediate_size=c["intermediate_size"],
      activation=tf_utils.get_activation("gelu"), max_sequence_length=512, type_vocab_size=2,
      initializer=init, dict_outputs=True)
  model = models.BertClassifier(encoder, num_classes=2, initializer=init, dropout_rate=0.1)
  optimizer = optimization.AdamWeightDecay(
      2e-5, weight_decay_rate=0.01, exclude_from_weight_decay=["LayerNorm", "layer_norm", "bias"],
      global_clipnorm=1.0)

  def logits(f, training):
    return model({"input_word_ids": f["input_ids"], "input_mask": f["input_mask"],
                  "input_type_ids": f["segment_ids"]}, training=training)
  return _steps(logits, lambda: model.trainable_variables, optimizer)


def trainer_loop(c, features, steps, xla):
  """bert_tf's real path: Trainer.train's compiled loop of `steps` steps per host call."""
  from bert_tf import BertConfig, optimization, training  # pylint: disable=import-outside-toplevel
  from finetuning.models import BertClassifier  # pylint: disable=import-outside-toplevel
  from finetuning.objectives import ClassificationObjective  # pylint: disable=import-outside-toplevel
  strategy = tf.distribute.get_strategy()
  model = BertClassifier(BertConfig(**c, type_vocab_size=2), 2, seq_length=SEQ)
  optimizer = optimization.AdamWeightDecay(2e-5, global_clipnorm=1.0)
  trainer = training.Trainer(strategy, model, optimizer, ClassificationObjective(),
                             training.TrainerConfig(model_dir="/tmp/unused", num_train_steps=10**9,
                                                    jit_compile=xla, progress_bar=False))
  optimizer.build(model.trainable_variables)
  iterator = iter(strategy.distribute_datasets_from_function(
      lambda _: tf.data.Dataset.from_tensors(features).repeat()))
  loop = trainer._compile_loop()  # pylint: disable=protected-access
  count = tf.constant(steps, tf.int32)
  return lambda: (loop(iterator, count), trainer._sums["loss"].numpy())  # pylint: disable=protected-access


def measure(config_name, reps, steps):
  c = CONFIGS[config_name]
  batch_size = BATCHES[config_name]
  features = batch_of(batch_size, c["vocab_size"])
  rows = []
  for xla in (False, True):
    fns = {}
    for name, build in {"bert_tf": build_bert_tf, "tf-models BertClassifier": build_tf_models}.items():
      try:
        train, evaluate = build(c)[:2]
      except ImportError as e:
        print(f"skipping {name}: {e}", file=sys.stderr)
        continue
      train, evaluate = tf.function(train, jit_compile=xla), tf.function(evaluate, jit_compile=xla)
      fns[(name, "train")] = lambda f=train: float([f(features) for _ in range(steps)][-1])
      fns[(name, "eval")] = lambda f=evaluate: float([f(features) for _ in range(steps)][-1])
    fns[("bert_tf Trainer loop", "train")] = trainer_loop(c, features, steps, xla)
    for (name, kind), seconds in _interleaved_medians(fns, reps).items():
      rows.append({"config": config_name, "implementation": name, "xla": xla, "kind": kind,
                   "batch_size": batch_size, "examples_per_s": batch_size * steps / seconds})
      print(f"{config_name:5s} {name:26s} {kind:5s} xla={xla!s:5s} "
            f"{rows[-1]['examples_per_s']:8.2f} examples/s", flush=True)
  return rows


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--output_dir", default=str(RESULTS))
  parser.add_argument("--reps", type=int, default=5)
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--configs", default="small,base")
  args = parser.parse_args(argv)
  configs = ["tiny"] if args.quick else args.configs.split(",")
  reps, steps = (2, 2) if args.quick else (args.reps, args.steps)
  rows = [r for name in configs for r in measure(name, reps, steps)]
  for row in rows:
    peer = [r["examples_per_s"] for r in rows if r["config"] == row["config"] and
            r["xla"] == row["xla"] and r["kind"] == row["kind"] and
            r["implementation"].startswith("tf-models")]
    row["vs_tf_models"] = row["examples_per_s"] / peer[0] if peer else None
  table = markdown_table(
      ["config", "implementation", "step", "XLA", "batch", "examples/s", "vs tf-models"],
      [[r["config"], r["implementation"], r["kind"], "yes" if r["xla"] else "no", r["batch_size"],
        f"{r['examples_per_s']:.1f}", f"{r['vs_tf_models']:.2f}x" if r["vs_tf_models"] else ""]
       for r in rows])
  markdown = (f"Classifier fine-tuning (forward, loss, backward, clipping, AdamWeightDecay) and "
              f"evaluation (forward, softmax), length {SEQ}, median of {reps} x {steps} steps, "
              f"{machine_info()['cpus']} CPUs.\n\n{table}")
  write_results(args.output_dir, "classifier", {"rows": rows, "machine": machine_info()}, markdown)
  print(markdown)


if __name__ == "__main__":
  main()
