"""Tokenizer throughput and agreement with the original, side by side in one run, on one thread
and on all cores.

    python -m benchmarks.bench_tokenizer            # real corpora from ../shared/data
    python -m benchmarks.bench_tokenizer --quick    # first 500 lines, 1 repetition
    python -m benchmarks.bench_tokenizer --threads=1   # the single-thread rows only

For each corpus: tokens/s (tokens = the original tokenizer's output count, the same for every
implementation) and agreement (share of lines whose ids equal the original's) for bert_tf's
FullTokenizer and FastTokenizer, tf-models-official's FullTokenizer, tensorflow-text's
FastBertTokenizer and BertTokenizer, and Hugging Face tokenizers' BertWordPieceTokenizer, each
configured as close to the original as it allows (same casing and accent stripping, the
original's 200-character word limit where it can be set). The original's ids come from
tf-models-official's copy of google-research/bert's tokenization.py with that limit (bert_tf's
FullTokenizer when tf-models-official is absent). Batched implementations get the corpus in
batches of --batch_size lines; Hugging Face through `Tokenizer.encode_batch_fast` (its fastest
documented batch call: no offsets). Every timed pass ends with the ids readable on the host and
counts them: TensorFlow outputs as the NumPy array of the RaggedTensor's flat values, Hugging
Face as each Encoding's `.ids` (the only way tokenizers returns ids: Python lists), the Python
tokenizers' own lists. One-time set-up and graph tracing are excluded (a warm-up pass); the
timed repetitions interleave the implementations and each figure is their median. bert_tf's
FullTokenizer memoises word pieces; its cache is cleared before every timed pass so each pass is
a cold single pass over the corpus.

Threads. "1 thread": a child process (`--threads=1`, run first by the default `--threads=both`,
its rows merged into this run's results) with TensorFlow's intra- and inter-op pools at 1
thread, FastTokenizer with num_shards=1, and Hugging Face with RAYON_NUM_THREADS=1 and
TOKENIZERS_PARALLELISM=false (set before tokenizers starts its thread pool). "all cores": this
process with TensorFlow's default pools, FastTokenizer's default shards (min(CPUs, 4) slices of
each batch run in parallel) and Hugging Face's default parallel encode_batch_fast. tf-text gets
the same default pools (its documented configuration has no thread setting); its kernels work
through a batch on one thread, so extra cores help it only where TensorFlow overlaps independent
ops. The Python tokenizers (FullTokenizer) run on one thread (the GIL) and are timed in the
single-thread process only. bert_tf's FastTokenizer is compared with the faster peer (any
implementation not from bert_tf) at the same thread setting, whatever its agreement (the
headline run_all reports), and with the faster peer among those whose ids equal the original's
on every line.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from benchmarks.common import (RESULTS, ROOT, SHARED_DATA, machine_info, markdown_table,
                               write_results)
from bert_tf.fast_tokenizer import FastTokenizer
from bert_tf.tokenization import FullTokenizer, load_vocab

CORPORA = [
    # name, corpus, vocab, do_lower_case
    ("English (WikiText-2, uncased)", "english_corpus/wikitext-2_valid_sentences.txt",
     "vocab/uncased_vocab.txt", True),
    ("Chinese (CLUECorpusSmall)", "chinese_corpus/CLUECorpusSmall_bert_sampled.txt",
     "vocab/chinese_vocab.txt", True),
]
OURS = "bert_tf FastTokenizer"
# Environment of the single-thread child: read by tokenizers when it starts its thread pool.
SINGLE_THREAD_ENV = {"RAYON_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def _batches(lines, batch_size):
  return [lines[i:i + batch_size] for i in range(0, len(lines), batch_size)]


def _tfm_tokenizer(vocab_file, do_lower_case):
  """tf-models-official's copy of the original tokenization.py with the original's limit."""
  from official.nlp.tools import tokenization as tfm  # pylint: disable=g-import-not-at-top
  tok = tfm.FullTokenizer(str(vocab_file), do_lower_case=do_lower_case)
  # The copy's default limit is 400 characters; google-research/bert's is 200.
  tok.wordpiece_tokenizer.max_input_chars_per_word = 200
  return lambda lines: [tok.convert_tokens_to_ids(tok.tokenize(line)) for line in lines]


def reference(vocab_file, do_lower_case):
  """(name, function(lines) -> ids per line) of the original tokenization."""
  try:
    return "tf-models FullTokenizer", _tfm_tokenizer(vocab_file, do_lower_case)
  except ImportError as e:
    print(f"skipping tf-models-official: {e}", file=sys.stderr)
    full = FullTokenizer(vocab_file, do_lower_case)
    return "bert_tf FullTokenizer", lambda lines: [full.encode(line) for line in lines]


def implementations(vocab_file, do_lower_case, single_thread):
  """name -> function(list of str) -> ids per line (lists, or an int64 RaggedTensor)."""
  vocab = load_vocab(vocab_file)
  tokens = [None] * (max(vocab.values()) + 1)
  for token, index in vocab.items():
    tokens[index] = token
  impls = {}

  if single_thread:
    full = FullTokenizer(vocab_file, do_lower_case)

    def full_encode(lines):
      # Each timed pass starts cold: the word cache would otherwise hold the whole corpus from
      # the previous pass, which no real single pass over new text enjoys.
      full.wordpiece_tokenizer._cache.clear()  # pylint: disable=protected-access
      return [full.encode(line) for line in lines]
    impls["bert_tf FullTokenizer"] = full_encode

  fast = FastTokenizer(vocab_file, do_lower_case, num_shards=1 if single_thread else None)
  impls[OURS] = lambda batch: fast.tokenize_to_ids(tf.constant(batch))

  if single_thread:
    try:
      impls["tf-models FullTokenizer"] = _tfm_tokenizer(vocab_file, do_lower_case)
    except ImportError as e:
      print(f"skipping tf-models-official: {e}", file=sys.stderr)

  fast_bert = tf_text.FastBertTokenizer(
      vocab=[t if t else "[bert_tf empty]" for t in tokens], token_out_type=tf.int64,
      lower_case_nfd_strip_accents=do_lower_case, max_bytes_per_word=800)
  fast_bert_fn = tf.function(lambda x: fast_bert.tokenize(x))
  impls["tf-text FastBertTokenizer"] = lambda batch: fast_bert_fn(tf.constant(batch))

  table = tf.lookup.StaticHashTable(
      tf.lookup.KeyValueTensorInitializer(list(vocab.keys()), list(vocab.values()),
                                          value_dtype=tf.int64), default_value=-1)
  bert_tok = tf_text.BertTokenizer(table, token_out_type=tf.int64, lower_case=do_lower_case,
                                   max_bytes_per_word=800)
  bert_fn = tf.function(lambda x: bert_tok.tokenize(x).merge_dims(1, 2))
  impls["tf-text BertTokenizer"] = lambda batch: bert_fn(tf.constant(batch))

  try:
    from tokenizers import BertWordPieceTokenizer  # pylint: disable=g-import-not-at-top
    hf = BertWordPieceTokenizer(str(vocab_file), lowercase=do_lower_case,
                                strip_accents=do_lower_case, clean_text=True,
                                handle_chinese_chars=True)
    hf._tokenizer.model.max_input_chars_per_word = 200  # pylint: disable=protected-access
    encode = hf._tokenizer.encode_batch_fast  # pylint: disable=protected-access
    impls["HF tokenizers BertWordPiece"] = lambda batch: [
        e.ids for e in encode(batch, add_special_tokens=False)]
  except ImportError as e:
    print(f"skipping Hugging Face tokenizers: {e}", file=sys.stderr)
  return impls


def _as_lists(result):
  if isinstance(result, tf.RaggedTensor):
    return result.to_list()
  return [list(r) for r in result]


def _count_ids(result):
  """The number of ids of one output, read on the host (see the module doc)."""
  if isinstance(result, tf.RaggedTensor):
    return result.flat_values.numpy().size
  return sum(map(len, result))


def _timed_pass(fn, batches):
  """(seconds, ids) of one pass over the batches."""
  start = time.perf_counter()
  ids = sum(_count_ids(fn(batch)) for batch in batches)
  return time.perf_counter() - start, ids


def run_corpus(name, corpus, vocab, do_lower_case, max_lines, reps, batch_size, single_thread):
  lines = [raw.decode("utf-8", "ignore").rstrip("\n")
           for raw in open(SHARED_DATA / corpus, "rb")][:max_lines]
  reference_name, reference_fn = reference(SHARED_DATA / vocab, do_lower_case)
  expected = reference_fn(lines)
  num_tokens = sum(map(len, expected))
  impls = implementations(SHARED_DATA / vocab, do_lower_case, single_thread)
  batches, agreement = {}, {}
  for impl_name, fn in impls.items():
    batches[impl_name] = [lines] if "FullTokenizer" in impl_name else _batches(lines, batch_size)
    outputs = [fn(batch) for batch in batches[impl_name]]  # warm-up: tracing, tables, caches
    ids = [row for out in outputs for row in _as_lists(out)]
    agreement[impl_name] = float(np.mean([a == b for a, b in zip(ids, expected)]))
  # Repetitions interleave the implementations, so that load from other processes on a shared
  # machine falls on all of them alike.
  times = {impl_name: [] for impl_name in impls}
  counts = {}
  for _ in range(reps):
    for impl_name, fn in impls.items():
      seconds, counts[impl_name] = _timed_pass(fn, batches[impl_name])
      times[impl_name].append(seconds)
  threads = 1 if single_thread else os.cpu_count()
  rows = []
  for impl_name in impls:
    seconds = statistics.median(times[impl_name])
    rows.append({"corpus": name, "implementation": impl_name, "threads": threads,
                 "lines": len(lines), "tokens": num_tokens, "ids_counted": counts[impl_name],
                 "seconds": seconds, "tokens_per_s": num_tokens / seconds,
                 "agreement": agreement[impl_name], "reference": reference_name,
                 "seconds_per_repetition": times[impl_name]})
    print(f"{name:32s} {impl_name:28s} {threads} thread(s) {num_tokens / seconds / 1e3:9.0f}k "
          f"tokens/s  agreement {agreement[impl_name]:.4%}", flush=True)
  return rows


def compare_with_faster_peer(rows):
  """Adds vs_faster_peer and faster_peer to bert_tf FastTokenizer's rows: its tokens/s over the
  fastest implementation not from bert_tf on the same corpus at the same thread setting, whatever
  its agreement; and vs_faster_exact_peer, faster_exact_peer: the same among the peers whose ids
  equal the original's on every line."""
  for row in rows:
    if row["implementation"] != OURS:
      continue
    peers = [r for r in rows if not r["implementation"].startswith("bert_tf") and
             (r["corpus"], r["threads"]) == (row["corpus"], row["threads"])]
    if peers:
      best = max(peers, key=lambda r: r["tokens_per_s"])
      row["vs_faster_peer"] = row["tokens_per_s"] / best["tokens_per_s"]
      row["faster_peer"] = best["implementation"]
    exact = [r for r in peers if r["agreement"] == 1.0]
    if exact:
      best = max(exact, key=lambda r: r["tokens_per_s"])
      row["vs_faster_exact_peer"] = row["tokens_per_s"] / best["tokens_per_s"]
      row["faster_exact_peer"] = best["implementation"]
  return rows


def _versus(row, key):
  return f"{row['vs_' + key]:.2f}x ({row[key]})" if "vs_" + key in row else ""


def single_thread_rows(args):
  """Runs this benchmark with --threads=1 in a child process (TensorFlow's thread pools are
  fixed when it starts) and returns its rows."""
  with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "rows.json")
    command = [sys.executable, "-m", "benchmarks.bench_tokenizer", "--threads=1",
               f"--rows_out={out}", f"--reps={args.reps}", f"--batch_size={args.batch_size}"]
    subprocess.run(command + (["--quick"] if args.quick else []), cwd=ROOT, check=True,
                   env=dict(os.environ, **SINGLE_THREAD_ENV))
    with open(out, encoding="utf-8") as f:
      return json.load(f)


def measure(args, single_thread):
  if single_thread:
    os.environ.update(SINGLE_THREAD_ENV)  # before tokenizers is imported (direct --threads=1 runs)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
  max_lines, reps = (500, 1) if args.quick else (None, args.reps)
  rows = []
  for name, corpus, vocab, lower in CORPORA:
    if not (SHARED_DATA / corpus).exists() or not (SHARED_DATA / vocab).exists():
      print(f"skipping {name}: {SHARED_DATA / corpus} or its vocab is absent "
            "(../shared/data is not part of a fresh clone)")
      continue
    rows.extend(run_corpus(name, corpus, vocab, lower, max_lines, reps, args.batch_size,
                           single_thread))
  return rows


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--quick", action="store_true", help="500 lines per corpus, 1 repetition")
  parser.add_argument("--reps", type=int, default=7)
  parser.add_argument("--batch_size", type=int, default=8192)
  parser.add_argument("--threads", choices=["both", "1", "all"], default="both",
                      help="1: one thread only; all: all cores only; both: 1 in a child process, "
                           "then all cores here")
  parser.add_argument("--rows_out", default=None,
                      help="write the rows here as JSON instead of the results files")
  parser.add_argument("--output_dir", default=str(RESULTS))
  args = parser.parse_args(argv)
  if args.threads == "1":
    rows = measure(args, single_thread=True)
  else:
    rows = single_thread_rows(args) if args.threads == "both" else []
    rows += measure(args, single_thread=False)
  if args.rows_out:
    with open(args.rows_out, "w", encoding="utf-8") as f:
      json.dump(rows, f)
    return rows
  compare_with_faster_peer(rows)
  rows.sort(key=lambda r: [c for c, *_ in CORPORA].index(r["corpus"]))  # stable: 1 thread first
  info = machine_info()
  thread_label = lambda r: "1" if r["threads"] == 1 else f"all ({r['threads']})"  # pylint: disable=unnecessary-lambda-assignment
  table = markdown_table(
      ["corpus", "threads", "implementation", "tokens/s", "agreement", "vs faster peer",
       "vs faster peer with 100% agreement"],
      [[r["corpus"], thread_label(r), r["implementation"], f"{r['tokens_per_s'] / 1e3:,.0f}k",
        f"{r['agreement']:.2%}", _versus(r, "faster_peer"), _versus(r, "faster_exact_peer")]
       for r in rows])
  ratios = [f"{r['corpus']}, {thread_label(r)} thread(s): {_versus(r, 'faster_peer')}, "
            f"{_versus(r, 'faster_exact_peer') or '-'}" for r in rows if "vs_faster_peer" in r]
  reps = 1 if args.quick else args.reps
  markdown = (
      "# Tokenizer throughput and agreement\n\n"
      f"Median of {reps} repetition(s) on {info['cpus']} CPU(s), batches of {args.batch_size} "
      "lines for the batched tokenizers (Hugging Face: encode_batch_fast); tracing and warm-up "
      "excluded; every pass ends with the ids on the host (TensorFlow: NumPy flat values; "
      "Hugging Face: each Encoding's .ids list; Python tokenizers: their lists). Threads 1: "
      "TensorFlow intra/inter-op pools of 1, FastTokenizer num_shards=1, Hugging Face "
      "RAYON_NUM_THREADS=1 (a separate process). All: default pools, FastTokenizer's default "
      "shards of each batch in parallel, Hugging Face's parallel batch encoding; tf-text on the "
      "default pools (its kernels work through a batch on one thread); the Python tokenizers are single-threaded "
      "and timed at 1 thread only. Agreement = share of lines with ids identical to the original "
      f"tokenization ({rows[0]['reference'] if rows else '-'}, 200-character word limit). "
      "bert_tf FullTokenizer's word cache is cleared before every pass.\n\n"
      "The ratios compare bert_tf FastTokenizer with the fastest peer at the same thread "
      "setting, whatever its agreement, and with the fastest peer whose ids are the original's "
      f"on every line: {'; '.join(ratios) or '-'}."
      f"\n\n{table}")
  payload = {"machine": info, "quick": args.quick, "reps": reps,
             "batch_size": args.batch_size, "rows": rows}
  for path in write_results(args.output_dir, "tokenizer", payload, markdown):
    print("wrote", path)
  print(table)
  return rows


if __name__ == "__main__":
  main()
