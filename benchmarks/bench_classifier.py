"""Fine-tuning and evaluation throughput of the classifier: bert_tf against tf-models-official's
BertClassifier at the same config, one run.

    python -m benchmarks.bench_classifier            # small (L4/H256) batch 32, base batch 16
    python -m benchmarks.bench_classifier --quick    # tiny config (smoke test)

Input: one fixed batch of length 128 whose every row is a quarter padding (the `padding` column
states the share). Training step = forward with dropout, cross-entropy of 2 labels, backward,
global-norm clipping at 1.0 applied once, and an AdamW update; evaluation = forward without
dropout and softmax. Each runs as one tf.function per call of --steps steps, XLA off and on.

bert_tf: its BertClassifier and bert_tf.optimization.AdamWeightDecay(global_clipnorm=1.0), with
the device's default kernels (bert_tf.kernels), which outside XLA may skip the padding tokens
(bert_tf.layers.token_rows: on CPUs, in training and at inference). "bert_tf, padding
computed" is the same model and step with token_rows.set_skip_padding(False) (both switches),
for training and evaluation alike, so
the two rows differ by padding skipping only (outside XLA only: inside XLA shapes are static and
every implementation computes padding). "bert_tf Trainer loop" is bert_tf's real training path, the
one run_classifier takes (Trainer: steps per host call, tf.data input of the same batch).

Peer: tf-models-official's BertClassifier on its BertEncoder, with the optimizer built the way
its fine-tuning experiments build it (official.modeling.optimization.OptimizerFactory, as
official/nlp/configs/finetuning_experiments.py configures GLUE: weight decay 0.01 excluding
LayerNorm and biases), in two documented configurations, each clipping once at global norm 1.0:
"adamw" (legacy AdamWeightDecay, its own gradient_clip_norm=1.0, no Keras clipnorm on top) and
"adamw_experimental" (tf_keras AdamW, global_clipnorm=1.0, jit_compile=True: the update itself
XLA-compiled even when the step is not; tf_keras switches that off when it finds no GPU, so the
benchmark sets it back on). bert_tf's rows are compared with the faster of the two
in the same XLA mode; the table names it. Evaluation does not involve the optimizer, so the
peer's eval row is one model.

Timed repetitions interleave the implementations; each figure is their median after one untimed
warm-up call (tracing, XLA compilation, optimizer slots). The encoder benchmark's forward-pass
ratio is against the faster of tf-models and keras-hub; here tf-models is the only peer, so the
eval ratio is bert_tf / tf-models, as that benchmark's tf-models column gives it.
"""
import argparse
import gc
import sys

import numpy as np
import tensorflow as tf

from benchmarks.bench_encoder import CONFIGS, _interleaved_medians
from benchmarks.common import RESULTS, machine_info, markdown_table, write_results

SEQ = 128
BATCHES = {"tiny": 8, "small": 32, "base": 16}
# Steps per timed call: a base training step alone takes seconds on 2 cores.
STEPS = {"tiny": 2, "small": 3, "base": 1}
PADDED = "bert_tf, padding computed"
PEER = "tf-models BertClassifier"
PEER_OPTIMIZERS = ("adamw", "adamw_experimental")


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
                lambda: model.trainable_variables, optimizer)


def peer_optimizer(kind):
  """tf-models' optimizer as its fine-tuning experiments build it (OptimizerFactory), clipping
  once at global norm 1.0."""
  from official.modeling import optimization  # pylint: disable=import-outside-toplevel
  exclude = ["LayerNorm", "layer_norm", "bias"]
  settings = {
      # Its own clip_by_global_norm (gradient_clip_norm, default 1.0); no Keras clipping on top.
      "adamw": dict(weight_decay_rate=0.01, exclude_from_weight_decay=exclude, epsilon=1e-6,
                    gradient_clip_norm=1.0),
      "adamw_experimental": dict(weight_decay=0.01, epsilon=1e-6, global_clipnorm=1.0,
                                 jit_compile=True),
  }[kind]
  factory = optimization.OptimizerFactory(optimization.OptimizationConfig({
      "optimizer": {"type": kind, kind: settings},
      "learning_rate": {"type": "constant", "constant": {"learning_rate": 2e-5}}}))
  optimizer = factory.build_optimizer(factory.build_learning_rate())
  if kind == "adamw_experimental":
    optimizer.exclude_from_weight_decay(var_names=exclude)  # the config has no such field
    # tf_keras drops jit_compile when it sees no GPU ("only benefits ... on GPU"); on here as set.
    optimizer.jit_compile = True
  return optimizer


def build_tf_models(c, optimizer_kinds):
  """(train steps by optimizer kind, evaluate) of one tf-models BertClassifier: one model whose
  variables each optimizer updates in its own step (a base model per optimizer would not fit
  in memory beside the others)."""
  import tf_keras  # pylint: disable=import-outside-toplevel
  from official.modeling import tf_utils  # pylint: disable=import-outside-toplevel
  from official.nlp.modeling import models, networks  # pylint: disable=import-outside-toplevel
  init = tf_keras.initializers.TruncatedNormal(stddev=0.02)
  encoder = networks.BertEncoder(
      vocab_size=c["vocab_size"], hidden_size=c["hidden_size"], num_layers=c["num_hidden_layers"],
      num_attention_heads=c["num_attention_heads"], intermediate_size=c["intermediate_size"],
      activation=tf_utils.get_activation("gelu"), max_sequence_length=512, type_vocab_size=2,
      initializer=init, dict_outputs=True)
  model = models.BertClassifier(encoder, num_classes=2, initializer=init, dropout_rate=0.1)

  def logits(f, training):
    return model({"input_word_ids": f["input_ids"], "input_mask": f["input_mask"],
                  "input_type_ids": f["segment_ids"]}, training=training)
  steps = {kind: _steps(logits, lambda: model.trainable_variables, peer_optimizer(kind))
           for kind in optimizer_kinds}
  return {kind: train for kind, (train, _) in steps.items()}, steps[optimizer_kinds[0]][1]


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


def _timed(fn, features, steps):
  return lambda: float([fn(features) for _ in range(steps)][-1])


def measure(config_name, reps, steps):
  c = CONFIGS[config_name]
  batch_size = BATCHES[config_name]
  features = batch_of(batch_size, c["vocab_size"])
  padding = 1 - float(tf.reduce_mean(tf.cast(features["input_mask"], tf.float32)))
  rows = []
  for xla in (False, True):
    seconds = _measure_mode(c, features, steps, xla, reps)
    gc.collect()  # this mode's models (Keras holds reference cycles) before the next are built
    for (name, kind), s in seconds.items():
      rows.append({"config": config_name, "implementation": name, "xla": xla, "kind": kind,
                   "batch_size": batch_size, "padding": padding, "steps": steps,
                   "examples_per_s": batch_size * steps / s})
      print(f"{config_name:5s} {name:44s} {kind:5s} xla={xla!s:5s} "
            f"{rows[-1]['examples_per_s']:8.2f} examples/s", flush=True)
  return rows


def _measure_mode(c, features, steps, xla, reps):
  """{(implementation, kind): median seconds per timed call} with XLA on or off."""
  from bert_tf.layers import token_rows  # pylint: disable=import-outside-toplevel
  fns = {}
  train, evaluate = build_bert_tf(c)
  variants = {"bert_tf": None} if xla else {"bert_tf": None, PADDED: False}
  for name, skip_padding in variants.items():
    # The kernel policy acts when a function is traced, so trace each variant now.
    token_rows.set_skip_padding(skip_padding)  # in training and at inference
    for kind, fn in (("train", train), ("eval", evaluate)):
      compiled = tf.function(fn, jit_compile=xla)
      compiled.get_concrete_function(features)
      fns[(name, kind)] = _timed(compiled, features, steps)
    token_rows.set_skip_padding(None)
  fns[("bert_tf Trainer loop", "train")] = trainer_loop(c, features, steps, xla)
  try:
    peer_trains, peer_evaluate = build_tf_models(c, PEER_OPTIMIZERS)
  except ImportError as e:
    print(f"skipping {PEER}: {e}", file=sys.stderr)
  else:
    for kind, peer_train in peer_trains.items():
      fns[(f"{PEER}, {kind}", "train")] = _timed(
          tf.function(peer_train, jit_compile=xla), features, steps)
    fns[(PEER, "eval")] = _timed(tf.function(peer_evaluate, jit_compile=xla), features, steps)
  return _interleaved_medians(fns, reps, warmup=1)


def compare_with_faster_peer(rows):
  """Adds to every bert_tf row vs_faster_peer (its examples/s over the faster tf-models row of
  the same config, XLA mode and kind) and faster_peer (that row's implementation)."""
  for row in rows:
    if not row["implementation"].startswith("bert_tf"):
      continue
    peers = [r for r in rows if r["implementation"].startswith(PEER) and
             (r["config"], r["xla"], r["kind"]) == (row["config"], row["xla"], row["kind"])]
    if peers:
      best = max(peers, key=lambda r: r["examples_per_s"])
      row["vs_faster_peer"] = row["examples_per_s"] / best["examples_per_s"]
      row["faster_peer"] = best["implementation"]
  return rows


def _peer_label(name):
  """The faster peer's configuration as the table names it."""
  if name == PEER:
    return "(eval: no optimizer)"
  return name.replace(PEER + ", ", "")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--output_dir", default=str(RESULTS))
  parser.add_argument("--reps", type=int, default=3)
  parser.add_argument("--steps", type=int, default=None,
                      help="steps per timed call (default: small 3, base 1)")
  parser.add_argument("--configs", default="small,base")
  args = parser.parse_args(argv)
  configs = ["tiny"] if args.quick else args.configs.split(",")
  reps = 2 if args.quick else args.reps
  rows = [r for name in configs
          for r in measure(name, reps, args.steps or STEPS[name])]
  compare_with_faster_peer(rows)
  table = markdown_table(
      ["config", "implementation", "step", "XLA", "batch", "padding", "examples/s",
       "vs faster peer", "faster peer"],
      [[r["config"], r["implementation"], r["kind"], "yes" if r["xla"] else "no", r["batch_size"],
        f"{r['padding']:.0%}", f"{r['examples_per_s']:.1f}",
        f"{r['vs_faster_peer']:.2f}x" if r.get("vs_faster_peer") else "",
        _peer_label(r.get("faster_peer", ""))]
       for r in rows])
  steps = ", ".join(f"{n} {args.steps or STEPS[n]}" for n in configs)
  markdown = (
      f"Classifier fine-tuning (forward, loss, backward, one global-norm clipping at 1.0, AdamW "
      f"update) and evaluation (forward, softmax), length {SEQ}, every row of the batch a quarter "
      f"padding, median of {reps} timed calls of ({steps}) steps after one warm-up call, "
      f"{machine_info()['cpus']} CPUs. Peer: tf-models-official's BertClassifier with its "
      "optimizer from OptimizerFactory as its GLUE fine-tuning configures it, in two "
      "configurations: `adamw` (legacy AdamWeightDecay, gradient_clip_norm=1.0) and "
      "`adamw_experimental` (tf_keras AdamW, global_clipnorm=1.0, jit_compile=True, which tf_keras "
      "would drop without a GPU); bert_tf is "
      "compared with the faster one in the same XLA mode (its eval row is the same model for both "
      "optimizers). bert_tf's rows use its default kernels, which outside XLA may skip the "
      "padding tokens (on CPUs, in training and at inference); \"padding computed\" is the same "
      "with skipping switched off (token_rows.set_skip_padding(False)). "
      "This eval ratio is against tf-models alone; the encoder benchmark's is against the faster "
      f"of tf-models and keras-hub.\n\n{table}")
  write_results(args.output_dir, "classifier", {"rows": rows, "machine": machine_info()}, markdown)
  print(markdown)


if __name__ == "__main__":
  main()
