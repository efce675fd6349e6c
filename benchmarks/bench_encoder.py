"""Encoder forward throughput and latency: bert_tf vs tf-models-official vs keras-hub, one run.

    python -m benchmarks.bench_encoder                  # small (L4/H256) and base (L12/H768)
    python -m benchmarks.bench_encoder --quick          # tiny config, 1 repetition (smoke test)

For each config and implementation: sequences/s at batch 32 x seq 128 and latency (ms) at batch
1 x seq 128, with a plain tf.function and with XLA (jit_compile=True), inference mode. The fp32
matmul ceiling of the machine is measured in the same run and each throughput is also given as
model FLOPs utilisation (MFU). Inputs are random ids with a quarter of each row padded.
"""
import argparse
import statistics
import sys
import time

import numpy as np
import tensorflow as tf

from benchmarks.common import (RESULTS, machine_info, markdown_table, matmul_ceiling_gflops,
                               write_results)

CONFIGS = {
    "tiny": dict(num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=37,
                 vocab_size=99),
    "small": dict(num_hidden_layers=4, hidden_size=256, num_attention_heads=4,
                  intermediate_size=1024, vocab_size=30522),
    "base": dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12,
                 intermediate_size=3072, vocab_size=30522),
}
SEQ_LENGTH = 128


def forward_flops(config, seq_length):
  """Matmul FLOPs of one sequence's forward pass (2 per multiply-add).

  Per layer: Q, K, V and output projections 4 * (2 * S * H * H); feed-forward 2 * (2 * S * H * I);
  attention scores QK^T and context PV 2 * (2 * S * S * H). Plus the pooler 2 * H * H. Embedding
  gathers, LayerNorm, softmax and GELU are not matmuls and are left out, as MFU usually does.
  Base at S=128: 12 * (8*128*768^2 + 4*128*768*3072 + 4*128^2*768) + 2*768^2 = 22.3 GFLOP.
  """
  s, h, i = seq_length, config["hidden_size"], config["intermediate_size"]
  per_layer = 8 * s * h * h + 4 * s * h * i + 4 * s * s * h
  return config["num_hidden_layers"] * per_layer + 2 * h * h


def _inputs(batch_size, seq_length, vocab_size, seed=0):
  rng = np.random.default_rng(seed)
  ids = rng.integers(1, vocab_size, size=(batch_size, seq_length)).astype(np.int32)
  mask = np.ones((batch_size, seq_length), np.int32)
  mask[:, seq_length * 3 // 4:] = 0
  segments = np.zeros((batch_size, seq_length), np.int32)
  segments[:, seq_length // 2:] = 1
  return tf.constant(ids * mask), tf.constant(mask), tf.constant(segments * mask)


def build_bert_tf(c):
  from bert_tf import BertConfig, BertEncoder  # pylint: disable=g-import-not-at-top
  model = BertEncoder(BertConfig(**c, type_vocab_size=2))
  return lambda ids, mask, seg: model({"input_ids": ids, "input_mask": mask, "segment_ids": seg},
                                      training=False)["sequence_output"]


def build_tf_models(c):
  import tf_keras  # pylint: disable=g-import-not-at-top
  from official.modeling import tf_utils  # pylint: disable=g-import-not-at-top
  from official.nlp.modeling import networks  # pylint: disable=g-import-not-at-top
  model = networks.BertEncoder(
      vocab_size=c["vocab_size"], hidden_size=c["hidden_size"], num_layers=c["num_hidden_layers"],
      num_attention_heads=c["num_attention_heads"], intermediate_size=c["intermediate_size"],
      activation=tf_utils.get_activation("gelu"), max_sequence_length=512, type_vocab_size=2,
      initializer=tf_keras.initializers.TruncatedNormal(stddev=0.02), dict_outputs=True)
  return lambda ids, mask, seg: model(
      {"input_word_ids": ids, "input_mask": mask, "input_type_ids": seg},
      training=False)["sequence_output"]


def build_keras_hub(c):
  import keras_hub  # pylint: disable=g-import-not-at-top
  model = keras_hub.models.BertBackbone(
      vocabulary_size=c["vocab_size"], num_layers=c["num_hidden_layers"],
      num_heads=c["num_attention_heads"], hidden_dim=c["hidden_size"],
      intermediate_dim=c["intermediate_size"], max_sequence_length=512, num_segments=2)
  return lambda ids, mask, seg: model(
      {"token_ids": ids, "padding_mask": mask, "segment_ids": seg},
      training=False)["sequence_output"]


IMPLEMENTATIONS = {"bert_tf": build_bert_tf, "tf-models BertEncoder": build_tf_models,
                   "keras-hub BertBackbone": build_keras_hub}


def _interleaved_medians(fns, reps, warmup=2):
  """{name: median seconds}, timing the functions in turn within each repetition so that load
  drifting over the run affects every implementation alike, after `warmup` untimed calls of each
  (tracing / XLA compilation and first-call allocations)."""
  for fn in fns.values():
    for _ in range(warmup):
      fn()
  times = {name: [] for name in fns}
  for _ in range(reps):
    for name, fn in fns.items():
      start = time.perf_counter()
      fn()
      times[name].append(time.perf_counter() - start)
  return {name: statistics.median(t) for name, t in times.items()}


def measure(config_name, reps, batch_size, ceiling):
  c = CONFIGS[config_name]
  flops = forward_flops(c, SEQ_LENGTH)
  forwards = {}
  for impl_name, build in IMPLEMENTATIONS.items():
    try:
      forwards[impl_name] = build(c)
    except ImportError as e:
      print(f"skipping {impl_name}: {e}", file=sys.stderr)
  batch = _inputs(batch_size, SEQ_LENGTH, c["vocab_size"])
  single = _inputs(1, SEQ_LENGTH, c["vocab_size"])
  rows = []
  for xla in (False, True):
    compiled = {name: tf.function(f, jit_compile=xla) for name, f in forwards.items()}
    # Default arguments bind each loop value (a closure would see only the last one).
    throughput_s = _interleaved_medians(
        {n: (lambda f=f: f(*batch).numpy()) for n, f in compiled.items()}, reps)
    latency_s = _interleaved_medians(
        {n: (lambda f=f: f(*single).numpy()) for n, f in compiled.items()}, max(4 * reps, 20))
    for impl_name in compiled:
      throughput = batch_size / throughput_s[impl_name]
      rows.append({"config": config_name, "implementation": impl_name, "xla": xla,
                   "batch_size": batch_size, "seq_length": SEQ_LENGTH,
                   "sequences_per_s": throughput,
                   "latency_ms_batch1": latency_s[impl_name] * 1e3,
                   "gflops_per_s": throughput * flops / 1e9,
                   "mfu": throughput * flops / 1e9 / ceiling})
      print(f"{config_name:5s} {impl_name:24s} xla={xla!s:5s} {throughput:8.1f} seq/s  "
            f"batch-1 latency {latency_s[impl_name] * 1e3:7.1f} ms  MFU {rows[-1]['mfu']:.0%}",
            flush=True)
  # Ours against the faster peer at the same point (config, XLA): throughput and latency ratios
  # above 1 mean ours is faster.
  for xla in (False, True):
    point = [r for r in rows if r["xla"] == xla]
    ours = [r for r in point if r["implementation"] == "bert_tf"]
    peers = [r for r in point if r["implementation"] != "bert_tf"]
    if ours and peers:
      ours[0]["throughput_vs_best_peer"] = ours[0]["sequences_per_s"] / max(
          p["sequences_per_s"] for p in peers)
      ours[0]["latency_vs_best_peer"] = min(p["latency_ms_batch1"] for p in peers) / ours[0][
          "latency_ms_batch1"]
  return rows


def plot(rows, path):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  configs = sorted({r["config"] for r in rows}, key=list(CONFIGS).index)
  impls = list(dict.fromkeys(r["implementation"] for r in rows))
  fig, axes = plt.subplots(1, len(configs), figsize=(5 * len(configs), 4), squeeze=False)
  for ax, config in zip(axes[0], configs):
    labels = []
    for k, impl in enumerate(impls):
      for j, xla in enumerate((False, True)):
        match = [r for r in rows if r["config"] == config and r["implementation"] == impl and
                 r["xla"] == xla]
        if match:
          ax.bar(k * 3 + j, match[0]["sequences_per_s"], color=f"C{k}", alpha=0.55 + 0.45 * j)
          labels.append((k * 3 + j, f"{impl.split()[0]}\n{'XLA' if xla else 'graph'}"))
    ax.set_xticks([x for x, _ in labels], [l for _, l in labels], fontsize=7, rotation=35,
                  ha="right")
    ax.set_title(f"{config}: batch 32 x seq 128")
    ax.set_ylabel("sequences / s")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--configs", default="small,base")
  parser.add_argument("--quick", action="store_true", help="tiny config, batch 4, 1 repetition")
  parser.add_argument("--reps", type=int, default=11)
  parser.add_argument("--output_dir", default=str(RESULTS))
  parser.add_argument("--replot", action="store_true",
                      help="only redraw the plot from output_dir/encoder.json")
  args = parser.parse_args(argv)
  if args.replot:
    import json  # pylint: disable=g-import-not-at-top
    rows = json.loads(open(f"{args.output_dir}/encoder.json").read())["rows"]
    plot(rows, f"{args.output_dir}/encoder_throughput.png")
    return rows
  configs, reps, batch_size = args.configs.split(","), args.reps, 32
  if args.quick:
    configs, reps, batch_size = ["tiny"], 1, 4
  ceiling = matmul_ceiling_gflops(reps=1 if args.quick else 7)
  print(f"fp32 matmul ceiling: {ceiling:.1f} GFLOP/s")
  rows = []
  for config in configs:
    rows.extend(measure(config, reps, batch_size, ceiling))
  ceiling_after = matmul_ceiling_gflops(reps=1 if args.quick else 7)
  table = markdown_table(
      ["config", "implementation", "XLA", "seq/s (b32)", "MFU", "latency ms (b1)",
       "ours vs best peer: throughput", "ours vs best peer: latency"],
      [[r["config"], r["implementation"], "yes" if r["xla"] else "no",
        f"{r['sequences_per_s']:.1f}", f"{r['mfu']:.0%}", f"{r['latency_ms_batch1']:.1f}",
        f"{r['throughput_vs_best_peer']:.2f}x" if "throughput_vs_best_peer" in r else "",
        f"{r['latency_vs_best_peer']:.2f}x" if "latency_vs_best_peer" in r else ""]
       for r in rows])
  markdown = ("# Encoder forward throughput\n\n"
              f"Batch {batch_size} x seq {SEQ_LENGTH} (a quarter padded), inference, median of "
              f"{reps} repetitions (latency at batch 1: {max(4 * reps, 20)}), implementations "
              "timed in turn within each repetition. Ratios above 1x mean bert_tf is faster than "
              "the faster peer. fp32 matmul ceiling measured in the same "
              f"run: {ceiling:.0f} GFLOP/s before, {ceiling_after:.0f} after. MFU = model matmul "
              "FLOPs/s over that ceiling.\n\n" + table +
              "\n![encoder throughput](encoder_throughput.png)\n")
  payload = {"machine": machine_info(), "matmul_ceiling_gflops": [ceiling, ceiling_after],
             "quick": args.quick, "rows": rows}
  for path in write_results(args.output_dir, "encoder", payload, markdown):
    print("wrote", path)
  plot(rows, f"{args.output_dir}/encoder_throughput.png")
  print(table)
  return rows


if __name__ == "__main__":
  main()
