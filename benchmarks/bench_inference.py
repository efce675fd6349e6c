"""Inference on real lengths: bert_tf (which skips padding at inference) against tf-models-official
and keras-hub on the real length distributions of five dev sets, one run.

    python -m benchmarks.bench_inference           # small config (L4/H256), lengths 128 and 512
    python -m benchmarks.bench_inference --quick   # tiny config, one batch (smoke test)
    python -m benchmarks.bench_inference --config=base --seq_lengths=128   # BERT-base, longer

Config: "small" (bench_encoder.CONFIGS: 4 layers, hidden 256) in every row by default. BERT-base
does not fit the benchmark's budget of about 12 minutes on 2 cores: one padded batch of 32 at
length 128 takes about 2.7 s per peer configuration on this machine (benchmarks/results/
encoder.md), about 13 s at 512, and each of the 10 cases times five padded configurations.
Expected runtime of the default run: about 8-10 minutes on a quiet 2-core machine.

What is measured: one forward pass without dropout over batches of 32 real dev examples, as one
tf.function per implementation, fp32, the machine's threads for every side. Classification
(SST-2, MRPC: English uncased vocabulary; ChnSentiCorp, LCQMC: Chinese vocabulary): a
2-class classifier's logits and their softmax. Reading comprehension (CMRC 2018): a span
labeler's start and end logits over the windows of our SQuAD feature conversion
(finetuning.squad_features, doc_stride 128, max_query_length 64, Chinese vocabulary).
The batches are the first --batches batches of 32 in file order, tokenized with our feature
code (classifier_features.convert_examples with FastTokenizer; squad_features), padded to
max_seq_length 128 and 512; the table states the share of real tokens in those padded batches.
Every side gets the same padded batches, as a user would feed them.

Sides, each with random weights (speed does not depend on them) at the same config:
  bert_tf: finetuning.models.BertClassifier / BertSpanLabeler with the CPU's default kernel
    policy, as `model(features)` in a tf.function without jit_compile (its "XLA: no" row): the
    batch is cut to its longest real extent, then run on its real tokens only or, when it is still
    mostly real tokens (token_rows.dense_plan), padded as one XLA island compiled per length
    bucket (bert_tf.layers.token_rows). With jit_compile on the whole function, shapes must be
    static, so nothing is cut and the padded batch is computed: that row is ours on the padded
    batch, for reference.
  tf-models: official.nlp.modeling.models.BertClassifier / BertSpanLabeler on networks.BertEncoder
    (tf_keras), XLA off and on.
  keras-hub: models.BertTextClassifier (no preprocessor) / BertBackbone + a Dense(2) for spans,
    XLA off and on.
"vs faster peer" divides the faster peer configuration's time by ours without XLA. Targets
(issue 23): 2x on SST-2 and LCQMC at 128, 1.3x elsewhere. "max |diff|" is our skipping path's
largest difference from our padded computation (the same weights, skipping switched off) at the
positions the task reads (logits; start/end logits at real tokens).
Timed repetitions interleave the implementations (after one untimed call each); each figure is
the median over --reps repetitions of the whole sample of batches.
"""
import argparse
import itertools
import sys
import time
import statistics

import numpy as np
import tensorflow as tf

from benchmarks.bench_encoder import CONFIGS
from benchmarks.common import RESULTS, SHARED_DATA, machine_info, markdown_table, write_results

BATCH = 32
# (name, kind, data file relative to SHARED_DATA, vocabulary, task name or None for spans)
DATASETS = [("SST-2", "classify", "glue/SST-2/dev.tsv", "vocab/uncased_vocab.txt", "sst-2"),
            ("MRPC", "classify", "glue/MRPC/dev.tsv", "vocab/uncased_vocab.txt", "mrpc"),
            ("ChnSentiCorp", "classify", "chnsenticorp/dev.tsv", "vocab/chinese_vocab.txt",
             "chnsenticorp"),
            ("LCQMC", "classify", "lcqmc/dev.txt", "vocab/chinese_vocab.txt", "lcqmc"),
            ("CMRC 2018", "span", "cmrc2018/cmrc2018_dev.json", "vocab/chinese_vocab.txt", None)]
TARGETS = {("SST-2", 128): 2.0, ("LCQMC", 128): 2.0}
DEFAULT_TARGET = 1.3


def real_batches(dataset, seq_length, num_batches):
  """The first num_batches batches of 32 of a dev set as our feature code pads them: list of
  dicts of int32 numpy arrays input_ids, input_mask, segment_ids [32, seq_length]."""
  name, kind, relative, vocab, task_name = dataset
  path = SHARED_DATA / relative
  count = num_batches * BATCH
  if kind == "classify":
    from bert_tf import FastTokenizer  # pylint: disable=import-outside-toplevel
    from finetuning import classifier_features  # pylint: disable=import-outside-toplevel
    from finetuning.tasks import classification  # pylint: disable=import-outside-toplevel
    task = classification.get_task(task_name)
    examples = task.read_examples(str(path.parent), "dev")[:count]
    features = classifier_features.convert_examples(task, examples,
                                                    FastTokenizer(str(SHARED_DATA / vocab)),
                                                    seq_length)
    arrays = {k: features[k] for k in classifier_features.FEATURE_NAMES}
  else:
    from bert_tf.tokenization import FullTokenizer  # pylint: disable=import-outside-toplevel
    from finetuning import squad_features  # pylint: disable=import-outside-toplevel
    from finetuning.tasks.squad import read_squad_examples  # pylint: disable=import-outside-toplevel
    examples, _ = read_squad_examples(str(path), False)
    windows = list(itertools.islice(squad_features.convert_examples_to_features(
        examples, FullTokenizer(str(SHARED_DATA / vocab), do_lower_case=True), seq_length, 128,
        64, False), count))
    arrays = {k: np.array([getattr(w, k) for w in windows])
              for k in ("input_ids", "input_mask", "segment_ids")}
  if len(arrays["input_ids"]) < count:
    raise ValueError(f"{name} has fewer than {count} examples")
  return [{k: v[i:i + BATCH].astype(np.int32) for k, v in arrays.items()}
          for i in range(0, count, BATCH)]


def build_bert_tf(c, kind, vocab_size):
  from bert_tf import BertConfig  # pylint: disable=import-outside-toplevel
  from finetuning.models import BertClassifier, BertSpanLabeler  # pylint: disable=import-outside-toplevel
  config = BertConfig(**dict(c, vocab_size=vocab_size), type_vocab_size=2)
  if kind == "classify":
    model = BertClassifier(config, 2)
    return lambda f: model(f, training=False)["logits"]
  model = BertSpanLabeler(config)

  def spans(f):
    out = model(f, training=False)
    return tf.stack([out["start_logits"], out["end_logits"]], -1)
  return spans


def build_tf_models(c, kind, vocab_size):
  import tf_keras  # pylint: disable=import-outside-toplevel
  from official.modeling import tf_utils  # pylint: disable=import-outside-toplevel
  from official.nlp.modeling import models, networks  # pylint: disable=import-outside-toplevel
  init = tf_keras.initializers.TruncatedNormal(stddev=0.02)
  encoder = networks.BertEncoder(
      vocab_size=vocab_size, hidden_size=c["hidden_size"], num_layers=c["num_hidden_layers"],
      num_attention_heads=c["num_attention_heads"], intermediate_size=c["intermediate_size"],
      activation=tf_utils.get_activation("gelu"), max_sequence_length=512, type_vocab_size=2,
      initializer=init, dict_outputs=True)
  if kind == "classify":
    model = models.BertClassifier(encoder, num_classes=2, initializer=init, dropout_rate=0.1)
  else:
    model = models.BertSpanLabeler(encoder, initializer=init)

  def forward(f):
    out = model({"input_word_ids": f["input_ids"], "input_mask": f["input_mask"],
                 "input_type_ids": f["segment_ids"]}, training=False)
    if kind == "classify":
      return out
    start, end = (out["start_logits"], out["end_logits"]) if isinstance(out, dict) else out
    return tf.stack([start, end], -1)
  return forward


def build_keras_hub(c, kind, vocab_size):
  import keras  # pylint: disable=import-outside-toplevel
  import keras_hub  # pylint: disable=import-outside-toplevel
  backbone = keras_hub.models.BertBackbone(
      vocabulary_size=vocab_size, num_layers=c["num_hidden_layers"],
      num_heads=c["num_attention_heads"], hidden_dim=c["hidden_size"],
      intermediate_dim=c["intermediate_size"], max_sequence_length=512, num_segments=2)
  if kind == "classify":
    model = keras_hub.models.BertTextClassifier(backbone, num_classes=2, preprocessor=None)
    return lambda f: model({"token_ids": f["input_ids"], "padding_mask": f["input_mask"],
                            "segment_ids": f["segment_ids"]}, training=False)
  dense = keras.layers.Dense(2)
  return lambda f: dense(backbone({"token_ids": f["input_ids"], "padding_mask": f["input_mask"],
                                   "segment_ids": f["segment_ids"]},
                                  training=False)["sequence_output"])


PEERS = {"tf-models": build_tf_models, "keras-hub": build_keras_hub}


def _finish(kind, forward):
  """forward + softmax (classification) or the logits (spans), reduced to one number."""
  def run(features):
    logits = tf.cast(forward(features), tf.float32)
    return tf.reduce_sum(tf.nn.softmax(logits) if kind == "classify" else logits)
  return run


def same_outputs(forward, batches, kind):
  """Max |difference| of our outputs with padding skipped and computed, where the task reads."""
  from bert_tf.layers import token_rows  # pylint: disable=import-outside-toplevel
  worst = 0.0
  try:
    for batch in batches:
      features = {k: tf.constant(v) for k, v in batch.items()}
      token_rows.set_skip_padding(True)
      skipped = tf.function(forward)(features).numpy()
      token_rows.set_skip_padding(False)
      padded = tf.function(forward)(features).numpy()
      if kind == "span":
        real = batch["input_mask"] == 1
        skipped, padded = skipped[real], padded[real]
      worst = max(worst, float(np.abs(skipped - padded).max()))
  finally:
    token_rows.set_skip_padding(None)
  return worst


def _timed(fns, batches, reps):
  """{name: median seconds over reps of running fn on every batch}, interleaved."""
  tensors = [{k: tf.constant(v) for k, v in b.items()} for b in batches]
  for fn in fns.values():
    for features in tensors:
      float(fn(features))
  times = {name: [] for name in fns}
  for _ in range(reps):
    for name, fn in fns.items():
      start = time.perf_counter()
      for features in tensors:
        float(fn(features))
      times[name].append(time.perf_counter() - start)
  return {name: statistics.median(t) for name, t in times.items()}


def measure(dataset, seq_length, config_name, num_batches, reps):
  name, kind = dataset[0], dataset[1]
  c = CONFIGS[config_name]
  batches = real_batches(dataset, seq_length, num_batches)
  vocab_size = 30522 if "uncased" in dataset[3] else 21128
  if config_name == "tiny":
    batches = [{k: np.where(b["input_mask"] > 0, v % c["vocab_size"], 0) if k == "input_ids"
                else v for k, v in b.items()} for b in batches]
    vocab_size = c["vocab_size"]
  share = float(np.mean([b["input_mask"].mean() for b in batches]))
  ours = build_bert_tf(c, kind, vocab_size)
  diff = same_outputs(ours, batches, kind)
  fns = {("bert_tf", False): tf.function(_finish(kind, ours)),
         ("bert_tf", True): tf.function(_finish(kind, ours), jit_compile=True)}
  for peer, build in PEERS.items():
    try:
      forward = _finish(kind, build(c, kind, vocab_size))
    except ImportError as e:
      print(f"skipping {peer}: {e}", file=sys.stderr)
      continue
    for xla in (False, True):
      fns[(peer, xla)] = tf.function(forward, jit_compile=xla)
  seconds = _timed(fns, batches, reps)
  examples = BATCH * len(batches)
  rows = [{"dataset": name, "task": kind, "seq_length": seq_length, "config": config_name,
           "batches": len(batches), "real_token_share": share, "implementation": impl, "xla": xla,
           "examples_per_s": examples / s, "max_abs_diff": diff if impl == "bert_tf" else None}
          for (impl, xla), s in seconds.items()]
  peers = [r for r in rows if r["implementation"] != "bert_tf"]
  best = max(peers, key=lambda r: r["examples_per_s"]) if peers else None
  target = TARGETS.get((name, seq_length), DEFAULT_TARGET)
  for r in rows:
    if best and r["implementation"] == "bert_tf":
      r["faster_peer"] = f"{best['implementation']}{' XLA' if best['xla'] else ''}"
      r["vs_faster_peer"] = r["examples_per_s"] / best["examples_per_s"]
      if not r["xla"]:
        r["target"], r["target_met"] = target, r["vs_faster_peer"] >= target
    print(f"{name:12s} {seq_length:3d} {r['implementation']:9s} xla={r['xla']!s:5s} "
          f"{r['examples_per_s']:8.1f} ex/s  real {share:.0%}"
          + (f"  {r['vs_faster_peer']:.2f}x" if r.get("vs_faster_peer") else ""), flush=True)
  return rows


def _table(rows):
  def cell(r):
    return f"{r['vs_faster_peer']:.2f}x" if r.get("vs_faster_peer") else ""

  def met(r):
    if "target_met" not in r:
      return "(skip off under XLA)" if r["implementation"] == "bert_tf" else ""
    return f"{'yes' if r['target_met'] else 'NO'} (>= {r['target']}x)"
  return markdown_table(
      ["data", "task", "seq", "config", "real tokens", "implementation", "XLA", "examples/s",
       "vs faster peer", "target met", "max |diff|"],
      [[r["dataset"], r["task"], r["seq_length"], r["config"], f"{r['real_token_share']:.0%}",
        r["implementation"], "yes" if r["xla"] else "no", f"{r['examples_per_s']:.1f}", cell(r),
        met(r), f"{r['max_abs_diff']:.1e}" if r["max_abs_diff"] is not None else ""]
       for r in rows])


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--output_dir", default=str(RESULTS))
  parser.add_argument("--config", default="small")
  parser.add_argument("--batches", type=int, default=3)
  parser.add_argument("--reps", type=int, default=3)
  parser.add_argument("--seq_lengths", default="128,512")
  parser.add_argument("--datasets", default=",".join(d[0] for d in DATASETS))
  args = parser.parse_args(argv)
  config = "tiny" if args.quick else args.config
  batches, reps = (1, 1) if args.quick else (args.batches, args.reps)
  seq_lengths = [int(s) for s in args.seq_lengths.split(",")]
  chosen = [d for d in DATASETS if d[0] in args.datasets.split(",")]
  if args.quick:
    seq_lengths, chosen = seq_lengths[:1], [DATASETS[0], DATASETS[-1]]
  started = time.time()
  rows = [r for seq in seq_lengths for d in chosen for r in measure(d, seq, config, batches, reps)]
  table = _table(rows)
  markdown = (f"Inference (forward without dropout; classifiers + softmax, span labelers' "
              f"logits) on the first {batches} batches of {BATCH} of each dev set, config "
              f"{config} ({CONFIGS[config]['num_hidden_layers']} layers, hidden "
              f"{CONFIGS[config]['hidden_size']}), fp32, median of {reps} interleaved "
              f"repetitions, {machine_info()['cpus']} CPUs, {time.time() - started:.0f} s in "
              f"all. Every side gets the padded batch. bert_tf's XLA-no row is its default: the "
              f"batch cut to its real extent, then run on its real tokens only or, if still "
              f"mostly real, padded as an XLA island (token_rows.dense_plan); under jit_compile "
              f"it computes the padded batch. \"vs faster peer\": against the fastest of "
              f"tf-models and keras-hub, XLA on or off. \"max |diff|\": our skipping path "
              f"against our padded computation (benchmarks/bench_inference.py; the test is "
              f"tests/layers/test_inference_rows.py).\n\n{table}")
  write_results(args.output_dir, "inference", {"rows": rows, "machine": machine_info()}, markdown)
  print(markdown)


if __name__ == "__main__":
  main()
