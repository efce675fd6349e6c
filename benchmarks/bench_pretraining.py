"""Pretraining step throughput: bert_tf against tf-models-official and keras-hub, one run.

    python -m benchmarks.bench_pretraining            # the groups below (est. 25-30 min, 2 cores)
    python -m benchmarks.bench_pretraining --quick    # tiny config, length 128, 2 x 1 steps

One training step = forward, masked-LM loss over the predictions + next-sentence loss, backward,
global-norm clipping at 1.0 and a LAMB update, all in one tf.function, on one fixed batch per
(config, length). Where: this machine's CPUs only; "XLA yes" rows are the whole step compiled by
XLA:CPU (tf.function(jit_compile=True)), not a TPU or GPU.

Batches have the padding of real records: the lengths of the instances our generation code
(pretraining.instances, the original's algorithm with its defaults, short_seq_prob 0.1) makes
from CLUECorpusSmall_bert_sampled.txt (shared data, the BERT one-sentence-per-line format) at
that max_seq_length, taken at evenly spaced quantiles so the batch's padding share is the
corpus's (about 19% at length 128, 60% at 512; each row states it). Masked positions:
round(15%) of each real length, at most max_predictions_per_seq (20 at 128, 80 at 512 as the
original's phase 2), the unused slots weighted 0 as in the records.

Groups (each measured in a child process; within a group the implementations' timed calls
interleave and each figure is the median of REPS calls of STEPS steps, after one untimed call of
one step and one of STEPS steps):
  small (L4/H256/A4, vocab 30522)  length 128 batch 32, length 512 batch 8 (same tokens):
      XLA off: the ladder and both peers, fp32 and bf16   REPS 5 x STEPS 2
      XLA on:  bert_tf and both peers, fp32 and bf16       REPS 5 x STEPS 2
  base (L12/H768/A12)               length 128 batch 8, every group REPS 3 x STEPS 2:
      XLA off: bert_tf plain ops, bert_tf and both peers in fp32 (one group), bert_tf and both
               peers in bf16 (a second group: memory)
      XLA on:  bert_tf and both peers, fp32

Implementations, every one with the same loss formula, clipping and a LAMB:
  bert_tf                   BertPretrainer, bert_tf.fused's cross-entropy (PretrainingTask's),
                            bert_tf.optimization.Lamb
  tf-models BertPretrainer  official.nlp.modeling BertEncoder + BertPretrainerV2 (tf_keras, gelu
                            MLM transform) with official.modeling.optimization's LAMB
  keras-hub BertBackbone    BertBackbone + keras_hub.layers.MaskedLMHead built as keras-hub's
                            BertMaskedLM builds it (gelu transform, tied embeddings) + an NSP
                            dense layer, Keras 3's Lamb
bf16 rows build every implementation under the mixed_bfloat16 policy (Keras 3's for bert_tf and
keras-hub, tf_keras' for tf-models): bf16 compute, float32 variables, float32 losses.

The ladder (XLA off, same batch) switches bert_tf's optimizations on one at a time:
  bert_tf plain ops                    every token through every layer, plain TensorFlow ops
                                       (bert_tf.kernels.override: every shortcut off)
  bert_tf + fused kernels              + bert_tf.fused's XLA-compiled GELU, LayerNorm, dropout,
                                       cross-entropy and LAMB update (padding still computed,
                                       full last layer)
  bert_tf + last layer at predictions  + the last layer computed at [CLS] and the masked
                                       positions only (BertPretrainer's default;
                                       last_layer_at_predictions=False turns it off)
  bert_tf                              + padding tokens skipped (token_rows; the default)
Inside XLA shapes are static, so padding is computed by every implementation there.

"vs faster peer" divides by the faster of the two peers in the same group and precision (bf16 by
bf16, fp32 by fp32). MFU = model matmul FLOPs (3x the forward's, every token's, padding and full
last layer included, so MFU is proportional to throughput within a group) per second over the
fp32 matmul ceiling measured in the same run; bf16 rows can exceed 100% of that fp32 ceiling.
"""
import argparse
import collections
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

from benchmarks.bench_encoder import CONFIGS, _interleaved_medians, forward_flops
from benchmarks.common import (RESULTS, SHARED_DATA, machine_info, markdown_table,
                               matmul_ceiling_gflops, write_results)
from bert_tf import kernels

CORPUS, CORPUS_VOCAB = "chinese_corpus/CLUECorpusSmall_bert_sampled.txt", "vocab/chinese_vocab.txt"
PREDICTIONS = {128: 20, 512: 80}
FP32, BF16 = "float32", "mixed_bfloat16"
PEERS = ("tf-models BertPretrainer", "keras-hub BertBackbone")
_EVERY_SHORTCUT_OFF = dict(fused_kernels=False, philox_in_xla=False, variadic_norm=False,
                           fused_qkv=False, skip_padding=False)
# bert_tf's ladder: name -> (kernel overrides while the step is traced, last_layer_at_predictions)
LADDER = {
    "bert_tf plain ops": (_EVERY_SHORTCUT_OFF, False),
    "bert_tf + fused kernels": (dict(skip_padding=False), False),
    "bert_tf + last layer at predictions": (dict(skip_padding=False), True),
    "bert_tf": ({}, True),
}
Group = collections.namedtuple("Group", "config seq_length batch_size xla members reps steps")


def _both(names, precisions=(FP32, BF16)):
  return [(name, p) for p in precisions for name in names]


def plan(quick):
  """The measured groups; members are (implementation, precision)."""
  if quick:
    return [Group("tiny", 128, 8, False, _both(LADDER, (FP32,)) + _both(PEERS, (FP32,)) +
                  _both(("bert_tf",) + PEERS, (BF16,)), 2, 1),
            Group("tiny", 128, 8, True, _both(("bert_tf",) + PEERS, (FP32,)), 2, 1)]
  groups = []
  for seq, batch in ((128, 32), (512, 8)):
    groups.append(Group("small", seq, batch, False, _both(tuple(LADDER) + PEERS), 5, 2))
    groups.append(Group("small", seq, batch, True, _both(("bert_tf",) + PEERS), 5, 2))
  # BERT-base groups are split by precision to keep each child's memory within this machine's.
  groups.append(Group("base", 128, 8, False, _both(("bert_tf plain ops", "bert_tf") + PEERS,
                                                   (FP32,)), 3, 2))
  groups.append(Group("base", 128, 8, False, _both(("bert_tf",) + PEERS, (BF16,)), 3, 2))
  groups.append(Group("base", 128, 8, True, _both(("bert_tf",) + PEERS, (FP32,)), 3, 2))
  return groups


def record_lengths(max_seq_length, seed=12345):
  """Lengths of the instances pretraining.instances makes from CORPUS at max_seq_length (the
  original's algorithm and defaults, one pass over the documents)."""
  from pretraining import documents, generation, instances  # pylint: disable=import-outside-toplevel
  options = generation.GenerationOptions(vocab_file=str(SHARED_DATA / CORPUS_VOCAB),
                                         do_lower_case=True, max_seq_length=max_seq_length,
                                         dupe_factor=1)
  files = documents.expand_input_files([str(SHARED_DATA / CORPUS)])
  shard = generation.ShardProcessor(options, files).tokenize_shard(
      documents.make_shards(files, 1)[0], collections.Counter())
  spans = instances.create_instance_spans(shard, random.Random(seed), max_seq_length, 1,
                                          options.short_seq_prob)
  return (spans.a_hi - spans.a_lo) + (spans.b_hi - spans.b_lo) + np.where(
      spans.b_hi > spans.b_lo, 3, 2)


def batch_of(batch_size, seq_length, vocab_size, lengths, seed=0):
  """A batch whose real lengths are `lengths` at evenly spaced quantiles; masked positions as
  the original's records have them (round(15%) of the length, at most PREDICTIONS[seq_length],
  unused slots position 0 with weight 0)."""
  rng = np.random.default_rng(seed)
  predictions = PREDICTIONS[seq_length]
  ordered = np.sort(lengths)
  chosen = ordered[((np.arange(batch_size) + 0.5) / batch_size * len(ordered)).astype(int)]
  rng.shuffle(chosen)
  columns = np.arange(seq_length)[None]
  mask = (columns < chosen[:, None]).astype(np.int32)
  positions = np.zeros((batch_size, predictions), np.int32)
  weights = np.zeros((batch_size, predictions), np.float32)
  for row, length in enumerate(chosen):
    count = min(predictions, max(1, int(round(length * 0.15))), max(1, length - 2))
    positions[row, :count] = np.sort(rng.choice(np.arange(1, max(2, length - 1)), count,
                                                replace=False))
    weights[row, :count] = 1.0
  return {
      "input_ids": tf.constant(rng.integers(1, vocab_size, mask.shape).astype(np.int32) * mask),
      "input_mask": tf.constant(mask),
      "segment_ids": tf.constant((columns >= chosen[:, None] // 2).astype(np.int32) * mask),
      "masked_lm_positions": tf.constant(positions),
      "masked_lm_ids": tf.constant(rng.integers(1, vocab_size, positions.shape).astype(np.int32) *
                                   (weights > 0)),
      "masked_lm_weights": tf.constant(weights),
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


def build_bert_tf(c, seq_length, precision, last_layer_at_predictions=True):
  import keras  # pylint: disable=import-outside-toplevel
  from bert_tf import BertConfig, BertPretrainer, fused, optimization  # pylint: disable=import-outside-toplevel
  del precision  # the global policy (precision_policy)
  model = BertPretrainer(BertConfig(**c, type_vocab_size=2), seq_length=seq_length,
                         max_predictions_per_seq=PREDICTIONS[seq_length],
                         last_layer_at_predictions=last_layer_at_predictions)
  optimizer = optimization.Lamb(1e-4, global_clipnorm=1.0)

  def forward(features):
    out = model(features, training=True)
    return out["mlm_logits"], out["nsp_logits"]
  return lamb_step(forward, lambda: model.trainable_variables, optimizer,
                   fused.sparse_softmax_cross_entropy)


def build_tf_models(c, seq_length, precision):
  del seq_length  # shapes come with the features
  import tf_keras  # pylint: disable=import-outside-toplevel
  from official.modeling import tf_utils  # pylint: disable=import-outside-toplevel
  from official.modeling.optimization import lamb  # pylint: disable=import-outside-toplevel
  from official.nlp.modeling import layers, models, networks  # pylint: disable=import-outside-toplevel
  init = tf_keras.initializers.TruncatedNormal(stddev=0.02)
  del precision  # the global policy (precision_policy)
  encoder = networks.BertEncoder(
      vocab_size=c["vocab_size"], hidden_size=c["hidden_size"], num_layers=c["num_hidden_layers"],
      num_attention_heads=c["num_attention_heads"], intermediate_size=c["intermediate_size"],
      activation=tf_utils.get_activation("gelu"), max_sequence_length=512, type_vocab_size=2,
      initializer=init, dict_outputs=True)
  nsp = layers.ClassificationHead(inner_dim=c["hidden_size"], num_classes=2, initializer=init,
                                  dropout_rate=0.1, name="next_sentence")
  model = models.BertPretrainerV2(encoder_network=encoder,
                                  mlm_activation=tf_utils.get_activation("gelu"),
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


def build_keras_hub(c, seq_length, precision):
  del seq_length
  import keras  # pylint: disable=import-outside-toplevel
  import keras_hub  # pylint: disable=import-outside-toplevel
  from keras_hub.src.models.bert.bert_backbone import bert_kernel_initializer  # pylint: disable=import-outside-toplevel
  backbone = keras_hub.models.BertBackbone(
      vocabulary_size=c["vocab_size"], num_layers=c["num_hidden_layers"],
      num_heads=c["num_attention_heads"], hidden_dim=c["hidden_size"],
      intermediate_dim=c["intermediate_size"], max_sequence_length=512, num_segments=2,
      dtype=precision)
  # As keras_hub.models.BertMaskedLM builds its head.
  mlm_head = keras_hub.layers.MaskedLMHead(
      vocabulary_size=c["vocab_size"], token_embedding=backbone.token_embedding,
      intermediate_activation="gelu", kernel_initializer=bert_kernel_initializer(),
      dtype=backbone.dtype_policy)
  nsp_head = keras.layers.Dense(2, kernel_initializer=bert_kernel_initializer(),
                                dtype=backbone.dtype_policy)
  optimizer = keras.optimizers.Lamb(1e-4, global_clipnorm=1.0)

  def forward(features):
    out = backbone({"token_ids": features["input_ids"], "padding_mask": features["input_mask"],
                    "segment_ids": features["segment_ids"]}, training=True)
    return (mlm_head(out["sequence_output"], mask_positions=features["masked_lm_positions"]),
            nsp_head(out["pooled_output"]))
  return lamb_step(forward, lambda: (backbone.trainable_variables + mlm_head.trainable_variables +
                                     nsp_head.trainable_variables), optimizer)


@contextlib.contextmanager
def precision_policy(precision):
  """Keras 3's and tf_keras' global dtype policy, for building a model and tracing its step
  (layers that build their weights on first call, as tf-models' MaskedLM does, take the policy
  in force then)."""
  import keras  # pylint: disable=import-outside-toplevel
  try:
    import tf_keras  # pylint: disable=import-outside-toplevel
  except ImportError:
    tf_keras = None
  for module in (keras, tf_keras):
    if module is not None:
      module.mixed_precision.set_global_policy(precision)
  try:
    yield
  finally:
    for module in (keras, tf_keras):
      if module is not None:
        module.mixed_precision.set_global_policy("float32")


def build(name, c, seq_length, precision):
  """(step function, kernel overrides to trace it under)."""
  if name in LADDER:
    overrides, last_layer_at_predictions = LADDER[name]
    return build_bert_tf(c, seq_length, precision, last_layer_at_predictions), overrides
  return {"tf-models BertPretrainer": build_tf_models,
          "keras-hub BertBackbone": build_keras_hub}[name](c, seq_length, precision), {}


def training_flops(c, seq_length=128, predictions=20):
  """Matmul FLOPs of one sequence's training step: 3x the forward (encoder + MLM transform and
  output layer over the predictions + NSP)."""
  h, v = c["hidden_size"], c["vocab_size"]
  heads = 2 * predictions * h * h + 2 * predictions * h * v + 2 * h * 2
  return 3 * (forward_flops(c, seq_length) + heads)


def interleaved_medians(fns, reps):
  """{name: median seconds per call}, interleaved (bench_encoder._interleaved_medians) after each
  function's warm_up=True call (compilation, first allocations) and one untimed call."""
  for fn in fns.values():
    fn(warm_up=True)
  return _interleaved_medians(fns, reps, warmup=1)


def measure(quick, index, reps, steps, ceiling):
  """Rows of plan(quick)[index], measured in a child process of its own: one group holds up to
  twelve models with optimizer slots and compiled kernels, and what TensorFlow and XLA keep of a
  group after it is dropped (17 GB after a base group without XLA) would leave too little of this
  machine's 24 GB for the next. --quick's tiny groups run in this process (start-up time)."""
  if quick:
    return measure_group(plan(quick)[index], reps, steps, ceiling)
  with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "rows.json")
    subprocess.run([sys.executable, "-m", "benchmarks.bench_pretraining", f"--group={index}",
                    f"--group_output={out}", f"--reps={reps}", f"--steps={steps}",
                    f"--ceiling={ceiling}"],
                   check=True, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(out) as f:
      return json.load(f)


def measure_group(group, reps, steps, ceiling):
  c = CONFIGS[group.config]
  features = batch_of(group.batch_size, group.seq_length, c["vocab_size"],
                      record_lengths(group.seq_length))
  padding = 1.0 - float(tf.reduce_mean(tf.cast(features["input_mask"], tf.float32)))
  fns = {}
  for name, precision in group.members:
    # The policy and the kernel switches act when the model is built and the step traced.
    with precision_policy(precision):
      try:
        step, overrides = build(name, c, group.seq_length, precision)
      except ImportError as e:
        print(f"skipping {name}: {e}", file=sys.stderr)
        continue
      step = tf.function(step, jit_compile=group.xla)
      kernels.override(**overrides)
      try:
        step.get_concrete_function(features)
      finally:
        kernels.override(**{key: None for key in overrides})

    def timed(step=step, warm_up=False):  # `steps` steps, waiting for the last loss
      return float([step(features) for _ in range(1 if warm_up else steps)][-1])
    fns[(name, precision)] = timed
  rows = []
  flops = training_flops(c, group.seq_length, PREDICTIONS[group.seq_length])
  for (name, precision), s in interleaved_medians(fns, reps).items():
    throughput = group.batch_size * steps / s
    rows.append({"config": group.config, "seq_length": group.seq_length,
                 "max_predictions_per_seq": PREDICTIONS[group.seq_length],
                 "batch_size": group.batch_size, "padding_share": padding, "xla": group.xla,
                 "precision": precision, "implementation": name,
                 "ladder": list(LADDER).index(name) if name in LADDER and not group.xla else None,
                 "reps": reps, "steps": steps, "sequences_per_s": throughput,
                 "mfu": throughput * flops / 1e9 / ceiling})
    print(f"{group.config:5s} len {group.seq_length} {precision:14s} xla={group.xla!s:5s} "
          f"{name:36s} {throughput:8.2f} seq/s", flush=True)
  return rows


def add_ratios(rows):
  """vs_faster_peer: throughput over the faster peer's in the same group and precision."""
  key = lambda r: (r["config"], r["seq_length"], r["xla"], r["precision"])  # pylint: disable=unnecessary-lambda-assignment
  best = {}
  for r in rows:
    if r["implementation"] in PEERS:
      best[key(r)] = max(best.get(key(r), 0.0), r["sequences_per_s"])
  for r in rows:
    r["vs_faster_peer"] = r["sequences_per_s"] / best[key(r)] if key(r) in best else None


def report(rows, ceiling, quick):
  table = markdown_table(
      ["config", "length (padding)", "batch", "precision", "XLA:CPU", "implementation", "seq/s",
       "MFU", "vs faster peer (same precision)"],
      [[r["config"], f"{r['seq_length']} ({r['padding_share']:.0%})", r["batch_size"],
        "bf16" if r["precision"] == BF16 else "fp32", "yes" if r["xla"] else "no",
        r["implementation"], f"{r['sequences_per_s']:.2f}", f"{r['mfu']:.0%}",
        f"{r['vs_faster_peer']:.2f}x" if r["vs_faster_peer"] else ""] for r in rows])
  sizes = "; ".join(sorted({f"{r['config']} length {r['seq_length']}: median of {r['reps']} x "
                            f"{r['steps']} steps" for r in rows}))
  return (f"Training step (forward, MLM+NSP loss, backward, clipping at 1.0, LAMB) on "
          f"{machine_info()['cpus']} CPUs of this machine{' (--quick)' if quick else ''}; "
          f"\"XLA:CPU yes\" = the whole step compiled by XLA for this CPU, not a TPU. Batches "
          f"have the padding share of records generated from CLUECorpusSmall at that length "
          f"(in brackets); {PREDICTIONS[128]} predictions at length 128, {PREDICTIONS[512]} at "
          f"512. {sizes}. bf16 = every implementation under mixed_bfloat16; \"vs faster peer\" "
          f"divides by the faster of tf-models and keras-hub in the same precision and XLA "
          f"setting. The ladder (XLA off) adds bert_tf's optimizations one at a time: plain "
          f"ops -> + fused kernels -> + last layer at predictions -> bert_tf (+ padding "
          f"skipped, the default). MFU counts every token's FLOPs over the fp32 matmul ceiling "
          f"of {ceiling:.0f} GFLOP/s measured in the same run."
          f"\n\n{table}")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--output_dir", default=str(RESULTS))
  parser.add_argument("--reps", type=int, help="override every group's repetitions")
  parser.add_argument("--steps", type=int, help="override every group's steps per timed call")
  parser.add_argument("--configs", default="small,base", help="configs to run (not with --quick)")
  parser.add_argument("--group", type=int, help="internal: measure plan()[GROUP] only")
  parser.add_argument("--group_output", help="internal: JSON file for --group's rows")
  parser.add_argument("--ceiling", type=float, help="internal: the parent's matmul ceiling")
  args = parser.parse_args(argv)
  groups = plan(args.quick)
  if args.group is not None:
    group = groups[args.group]
    with open(args.group_output, "w") as f:
      json.dump(measure_group(group, args.reps, args.steps, args.ceiling), f)
    return
  ceiling = matmul_ceiling_gflops(reps=2 if args.quick else 5)
  configs = args.configs.split(",")
  rows = [r for i, g in enumerate(groups) if args.quick or g.config in configs
          for r in measure(args.quick, i, args.reps or g.reps, args.steps or g.steps, ceiling)]
  add_ratios(rows)
  markdown = report(rows, ceiling, args.quick)
  write_results(args.output_dir, "pretraining_step", {"rows": rows, "ceiling_gflops": ceiling,
                                                      "machine": machine_info()}, markdown)
  print(markdown)


if __name__ == "__main__":
  main()
