"""Pretraining step throughput: bert_tf against tf-models-official and keras-hub, one run.

    python -m benchmarks.bench_pretraining            # small (L4/H256, batch 32), base (batch 8)
    python -m benchmarks.bench_pretraining --quick    # tiny config, 2 repetitions

One training step = forward, masked-LM loss over 20 predictions per sequence + next-sentence
loss, backward, global-norm clipping at 1.0 and a LAMB update, on a fixed batch of length 128
(a quarter padded). Implementations:
  bert_tf                 BertPretrainer, PretrainingTask's losses, bert_tf.optimization.Lamb
  tf-models BertPretrainer  official.nlp.modeling BertEncoder + BertPretrainerV2 (tf_keras) with
                          official.modeling.optimization LAMB
  keras-hub BertBackbone  BertBackbone + keras_hub.layers.MaskedLMHead (tied embeddings) + an
                          NSP dense layer, Keras 3's built-in Lamb
each as one tf.function step (XLA off and on), with the same loss formula. Outside XLA bert_tf's
training skips the padding tokens (bert_tf.layers.token_rows; a quarter of this batch): the row
"bert_tf, padding computed" is the same step with that switched off, i.e. what the fused kernels
alone give; inside XLA shapes are static and every implementation computes padding. Timed
repetitions of
--steps steps interleave the implementations; each figure is their median. MFU = model matmul
FLOPs (3x the forward's: forward + two for the backward) per second over the fp32 matmul
ceiling measured in the same run. bert_tf also runs under the mixed_bfloat16 policy.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

from benchmarks.bench_encoder import CONFIGS, _interleaved_medians, forward_flops
from benchmarks.common import RESULTS, machine_info, markdown_table, matmul_ceiling_gflops, write_results
from bert_tf.layers import token_rows

SEQ, PREDICTIONS = 128, 20
BATCHES = {"tiny": 8, "small": 32, "base": 8}


def batch_of(batch_size, vocab_size, seed=0):
  rng = np.random.default_rng(seed)
  mask = np.ones((batch_size, SEQ), np.int32)
  mask[:, SEQ * 3 // 4:] = 0
  return {
      "input_ids": tf.constant(rng.integers(1, vocab_size, (batch_size, SEQ)).astype(np.int32) * mask),
      "input_mask": tf.constant(mask),
      "segment_ids": tf.constant(np.where(np.arange(SEQ) >= SEQ // 2, 1, 0)[None].repeat(batch_size, 0).astype(np.int32) * mask),
      "masked_lm_positions": tf.constant(rng.integers(1, SEQ * 3 // 4, (batch_size, PREDICTIONS)).astype(np.int32)),
      "masked_lm_ids": tf.constant(rng.integers(1, vocab_size, (batch_size, PREDICTIONS)).astype(np.int32)),
      "masked_lm_weights": tf.constant(np.ones((batch_size, PREDICTIONS), np.float32)),
      "next_sentence_labels": tf.constant(rng.integers(0, 2, (batch_size, 1)).astype(np.int32)),
  }


def tf_cross_entropy(labels, logits):
  return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)


def losses(mlm_logits, nsp_logits, features, cross_entropy=tf_cross_entropy):
  """MLM + NSP loss; `cross_entropy` is the masked-LM one each implementation's own training
  code uses (tf.nn's in tf-models' MaskedLMTask and Keras' losses; bert_tf.fused's in
  bert_tf's PretrainingTask)."""
  mlm_logits, nsp_logits = tf.cast(mlm_logits, tf.float32), tf.cast(nsp_logits, tf.float32)
  weights = features["masked_lm_weights"]
  mlm = cross_entropy(features["masked_lm_ids"], mlm_logits)
  nsp = tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=tf.reshape(features["next_sentence_labels"], [-1]), logits=nsp_logits)
  return tf.reduce_sum(weights * mlm) / (tf.reduce_sum(weights) + 1e-5) + tf.reduce_mean(nsp)


def lamb_step(forward, variables, optimizer, cross_entropy=tf_cross_entropy):
  """One training step: forward(features) -> (mlm_logits, nsp_logits), loss, backward, the
  optimizer's update. `variables` is called after the first forward (keras-hub's heads build
  their weights on first use)."""
  def step(features):
    with tf.GradientTape() as tape:
      loss = losses(*forward(features), features, cross_entropy)
    trainable = variables()
    optimizer.apply_gradients(zip(tape.gradient(loss, trainable), trainable))
    return loss
  return step


def build_bert_tf(c, precision="float32"):
  import keras  # pylint: disable=import-outside-toplevel
  from bert_tf import BertConfig, BertPretrainer, fused, optimization  # pylint: disable=import-outside-toplevel
  keras.mixed_precision.set_global_policy(precision)
  model = BertPretrainer(BertConfig(**c, type_vocab_size=2), seq_length=SEQ,
                         max_predictions_per_seq=PREDICTIONS)
  keras.mixed_precision.set_global_policy("float32")
  optimizer = optimization.Lamb(1e-4, global_clipnorm=1.0)

  def forward(features):
    out = model(features, training=True)
    return out["mlm_logits"], out["nsp_logits"]
  return lamb_step(forward, lambda: model.trainable_variables, optimizer,
                   fused.sparse_softmax_cross_entropy)


def build_tf_models(c):
  import tf_keras  # pylint: disable=import-outside-toplevel
  from official.modeling import tf_utils  # pylint: disable=import-outside-toplevel
  from official.modeling.optimization import lamb  # pylint: disable=import-outside-toplevel
  from official.nlp.modeling import layers, models, networks  # pylint: disable=import-outside-toplevel
  init = tf_keras.initializers.TruncatedNormal(stddev=0.02)
  encoder = networks.BertEncoder(
      vocab_size=c["vocab_size"], hidden_size=c["hidden_size"], num_layers=c["num_hidden_layers"],
      num_attention_heads=c["num_attention_heads"], intermediate_size=c["intermediate_size"],
      activation=tf_utils.get_activation("gelu"), max_sequence_length=512, type_vocab_size=2,
      initializer=init, dict_outputs=True)
  nsp = layers.ClassificationHead(inner_dim=c["hidden_size"], num_classes=2, initializer=init,
                                  dropout_rate=0.1, name="next_sentence")
  model = models.BertPretrainerV2(encoder_network=encoder, mlm_activation=tf_utils.get_activation("gelu"),
                                  mlm_initializer=init, classification_heads=[nsp])
  optimizer = lamb.LAMB(1e-4, weight_decay_rate=0.01,
                        exclude_from_weight_decay=["LayerNorm", "layer_norm", "bias"],
                        global_clipnorm=1.0)

  def forward(features):
    out = model({"input_word_ids": features["input_ids"], "input_mask": features["input_mask"],
                 "input_type_ids": features["segment_ids"],
                 "masked_lm_positions": features["masked_lm_positions"]}, training=True)
    return out["mlm_logits"], out["next_sentence"]
  return lamb_step(forward, lambda: model.trainable_variables, optimizer)


def build_keras_hub(c):
  import keras  # pylint: disable=import-outside-toplevel
  import keras_hub  # pylint: disable=import-outside-toplevel
  backbone = keras_hub.models.BertBackbone(
      vocabulary_size=c["vocab_size"], num_layers=c["num_hidden_layers"],
      num_heads=c["num_attention_heads"], hidden_dim=c["hidden_size"],
      intermediate_dim=c["intermediate_size"], max_sequence_length=512, num_segments=2)
  mlm_head = keras_hub.layers.MaskedLMHead(vocabulary_size=c["vocab_size"],
                                           token_embedding=backbone.token_embedding,
                                           activation=None)
  nsp_head = keras.layers.Dense(2)
  optimizer = keras.optimizers.Lamb(1e-4, global_clipnorm=1.0)

  def forward(features):
    out = backbone({"token_ids": features["input_ids"], "padding_mask": features["input_mask"],
                    "segment_ids": features["segment_ids"]}, training=True)
    return (mlm_head(out["sequence_output"], mask_positions=features["masked_lm_positions"]),
            nsp_head(out["pooled_output"]))
  return lamb_step(forward, lambda: (backbone.trainable_variables + mlm_head.trainable_variables +
                                     nsp_head.trainable_variables), optimizer)


def training_flops(c):
  """Matmul FLOPs of one sequence's training step: 3x the forward (encoder + MLM transform and
  output layer over the predictions + NSP)."""
  h, v = c["hidden_size"], c["vocab_size"]
  heads = 2 * PREDICTIONS * h * h + 2 * PREDICTIONS * h * v + 2 * h * 2
  return 3 * (forward_flops(c, SEQ) + heads)


def measure(config_name, reps, steps, ceiling):
  """Rows of one config, each XLA setting measured in a child process of its own: one group
  holds four or five models with optimizer slots and compiled kernels, and what TensorFlow and
  XLA keep of a group after it is dropped (17 GB after the base group without XLA) left too
  little of this machine's 24 GB for the base group with XLA."""
  rows = []
  for xla in (False, True):
    with tempfile.TemporaryDirectory() as tmp:
      out = os.path.join(tmp, "rows.json")
      subprocess.run([sys.executable, "-m", "benchmarks.bench_pretraining",
                      f"--group={config_name}:{int(xla)}", f"--group_output={out}",
                      f"--reps={reps}", f"--steps={steps}", f"--ceiling={ceiling}"],
                     check=True, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
      with open(out) as f:
        rows += json.load(f)
  return rows


def measure_group(config_name, xla, reps, steps, ceiling):
  c = CONFIGS[config_name]
  batch_size = BATCHES[config_name]
  features = batch_of(batch_size, c["vocab_size"])
  rows = []
  builders = {"bert_tf": build_bert_tf, "tf-models BertPretrainer": build_tf_models,
              "keras-hub BertBackbone": build_keras_hub,
              "bert_tf bf16": lambda c: build_bert_tf(c, "mixed_bfloat16")}
  if not xla:
    builders["bert_tf, padding computed"] = build_bert_tf
  fns = {}
  for name, build in builders.items():
    try:
      step = tf.function(build(c), jit_compile=xla)
    except ImportError as e:
      print(f"skipping {name}: {e}", file=sys.stderr)
      continue
    # The switch acts when the step is traced, so trace it now.
    token_rows.set_skip_padding(name != "bert_tf, padding computed")
    step.get_concrete_function(features)
    token_rows.set_skip_padding(True)
    # Each timed call runs `steps` steps and waits for the last loss.
    fns[name] = lambda step=step: float(
        [step(features) for _ in range(steps)][-1])
  seconds = {name: s / steps for name, s in _interleaved_medians(fns, reps).items()}
  for name, s in seconds.items():
    throughput = batch_size / s
    rows.append({"config": config_name, "implementation": name, "xla": xla,
                 "batch_size": batch_size, "sequences_per_s": throughput,
                 "mfu": throughput * training_flops(c) / 1e9 / ceiling})
    print(f"{config_name:5s} {name:26s} xla={xla!s:5s} {throughput:8.2f} seq/s  "
          f"MFU {rows[-1]['mfu']:.0%}", flush=True)
  return rows


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--output_dir", default=str(RESULTS))
  parser.add_argument("--reps", type=int, default=5)
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--configs", default="small,base")
  parser.add_argument("--group", help="internal: measure CONFIG:XLA(0|1) only")
  parser.add_argument("--group_output", help="internal: JSON file for --group's rows")
  parser.add_argument("--ceiling", type=float, help="internal: the parent's matmul ceiling")
  args = parser.parse_args(argv)
  if args.group:
    name, xla = args.group.split(":")
    with open(args.group_output, "w") as f:
      json.dump(measure_group(name, xla == "1", args.reps, args.steps, args.ceiling), f)
    return
  configs = ["tiny"] if args.quick else args.configs.split(",")
  reps, steps = (2, 2) if args.quick else (args.reps, args.steps)
  ceiling = matmul_ceiling_gflops(reps=2 if args.quick else 5)
  rows = [r for name in configs for r in measure(name, reps, steps, ceiling)]
  for row in rows:
    peers = [r["sequences_per_s"] for r in rows
             if r["config"] == row["config"] and r["xla"] == row["xla"]
             and not r["implementation"].startswith("bert_tf")]
    row["vs_faster_peer"] = row["sequences_per_s"] / max(peers) if peers else None
  table = markdown_table(
      ["config", "implementation", "XLA", "batch", "seq/s", "MFU", "vs faster fp32 peer"],
      [[r["config"], r["implementation"], "yes" if r["xla"] else "no", r["batch_size"],
        f"{r['sequences_per_s']:.2f}", f"{r['mfu']:.0%}",
        f"{r['vs_faster_peer']:.2f}x" if r["vs_faster_peer"] else ""] for r in rows])
  markdown = (f"Training step (forward, MLM+NSP loss, backward, clipping, LAMB), length {SEQ}, "
              f"{PREDICTIONS} predictions, a quarter of every sequence padding, median of {reps} x "
              f"{steps} steps, {machine_info()['cpus']} CPUs; fp32 matmul ceiling {ceiling:.0f} "
              f"GFLOP/s. Without XLA bert_tf skips the padding tokens; \"padding computed\" is the "
              f"same step without that. MFU counts the FLOPs of every token, padding included."
              f"\n\n{table}")
  write_results(args.output_dir, "pretraining_step", {"rows": rows, "ceiling_gflops": ceiling,
                                                      "machine": machine_info()}, markdown)
  print(markdown)


if __name__ == "__main__":
  main()
