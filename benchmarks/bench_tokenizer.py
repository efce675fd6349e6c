"""Tokenizer throughput and agreement with the original, side by side in one run.

    python -m benchmarks.bench_tokenizer            # real corpora from ../shared/data
    python -m benchmarks.bench_tokenizer --quick    # first 500 lines, 1 repetition

For each corpus: tokens/s (tokens = the original tokenizer's output count, the same for every
implementation) and agreement (share of lines whose ids equal the original's) for bert_tf's
FullTokenizer and FastTokenizer, tf-models-official's FullTokenizer, tensorflow-text's
FastBertTokenizer and BertTokenizer, and Hugging Face tokenizers' BertWordPieceTokenizer, each
configured as close to the original as it allows (same casing and accent stripping, the
original's 200-character word limit where it can be set). The original's ids come from
tf-models-official's copy of google-research/bert's tokenization.py with that limit (bert_tf's
FullTokenizer when tf-models-official is absent). Batched implementations get the corpus in
batches of --batch_size lines. One-time set-up and graph tracing are excluded (a warm-up pass);
the timed repetitions interleave the implementations and each figure is their median.
bert_tf's FullTokenizer memoises word pieces; its cache is cleared before every timed pass so
each pass is a cold single pass over the corpus.
"""
import argparse
import statistics
import sys
import time

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from benchmarks.common import RESULTS, SHARED_DATA, machine_info, markdown_table, write_results
from bert_tf.fast_tokenizer import FastTokenizer
from bert_tf.tokenization import FullTokenizer, load_vocab

CORPORA = [
    # name, corpus, vocab, do_lower_case
    ("English (WikiText-2, uncased)", "english_corpus/wikitext-2_valid_sentences.txt",
     "vocab/uncased_vocab.txt", True),
    ("Chinese (CLUECorpusSmall)", "chinese_corpus/CLUECorpusSmall_bert_sampled.txt",
     "vocab/chinese_vocab.txt", True),
]


def _batches(lines, batch_size):
  return [lines[i:i + batch_size] for i in range(0, len(lines), batch_size)]


def implementations(vocab_file, do_lower_case):
  """name -> function(list of str) -> ids per line (lists, or an int64 RaggedTensor)."""
  vocab = load_vocab(vocab_file)
  tokens = [None] * (max(vocab.values()) + 1)
  for token, index in vocab.items():
    tokens[index] = token
  impls = {}

  full = FullTokenizer(vocab_file, do_lower_case)

  def full_encode(lines):
    # Each timed pass starts cold: the word cache would otherwise hold the whole corpus from
    # the previous pass, which no real single pass over new text enjoys.
    full.wordpiece_tokenizer._cache.clear()  # pylint: disable=protected-access
    return [full.encode(line) for line in lines]
  impls["bert_tf FullTokenizer"] = full_encode

  fast = FastTokenizer(vocab_file, do_lower_case)
  impls["bert_tf FastTokenizer"] = lambda batch: fast.tokenize_to_ids(tf.constant(batch))

  try:
    from official.nlp.tools import tokenization as tfm  # pylint: disable=g-import-not-at-top
    tfm_tok = tfm.FullTokenizer(str(vocab_file), do_lower_case=do_lower_case)
    # The copy's default limit is 400 characters; google-research/bert's is 200.
    tfm_tok.wordpiece_tokenizer.max_input_chars_per_word = 200
    impls["tf-models FullTokenizer"] = lambda lines: [
        tfm_tok.convert_tokens_to_ids(tfm_tok.tokenize(line)) for line in lines]
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
    impls["HF tokenizers BertWordPiece"] = lambda batch: [
        e.ids for e in hf.encode_batch(batch, add_special_tokens=False)]
  except ImportError as e:
    print(f"skipping Hugging Face tokenizers: {e}", file=sys.stderr)
  return impls


def _as_lists(result):
  if isinstance(result, tf.RaggedTensor):
    return result.to_list()
  return [list(r) for r in result]


def _timed_pass(fn, batches):
  start = time.perf_counter()
  for batch in batches:
    out = fn(batch)
    if isinstance(out, tf.RaggedTensor):
      out.flat_values.numpy()  # make sure the work is done, without Python conversion
  return time.perf_counter() - start


def run_corpus(name, corpus, vocab, do_lower_case, max_lines, reps, batch_size):
  lines = [raw.decode("utf-8", "ignore").rstrip("\n")
           for raw in open(SHARED_DATA / corpus, "rb")][:max_lines]
  impls = implementations(SHARED_DATA / vocab, do_lower_case)
  reference_name = next(n for n in ("tf-models FullTokenizer", "bert_tf FullTokenizer")
                        if n in impls)
  reference = impls[reference_name](lines)
  num_tokens = sum(map(len, reference))
  batches, agreement = {}, {}
  for impl_name, fn in impls.items():
    batches[impl_name] = [lines] if "FullTokenizer" in impl_name else _batches(lines, batch_size)
    outputs = [fn(batch) for batch in batches[impl_name]]  # warm-up: tracing, tables, caches
    ids = [row for out in outputs for row in _as_lists(out)]
    agreement[impl_name] = float(np.mean([a == b for a, b in zip(ids, reference)]))
  # Repetitions interleave the implementations, so that load from other processes on a shared
  # machine falls on all of them alike.
  times = {impl_name: [] for impl_name in impls}
  for _ in range(reps):
    for impl_name, fn in impls.items():
      times[impl_name].append(_timed_pass(fn, batches[impl_name]))
  rows = []
  for impl_name in impls:
    seconds = statistics.median(times[impl_name])
    rows.append({"corpus": name, "implementation": impl_name, "lines": len(lines),
                 "tokens": num_tokens, "seconds": seconds, "tokens_per_s": num_tokens / seconds,
                 "agreement": agreement[impl_name], "reference": reference_name,
                 "seconds_per_repetition": times[impl_name]})
    print(f"{name:32s} {impl_name:28s} {num_tokens / seconds / 1e3:9.0f}k tokens/s  "
          f"agreement {agreement[impl_name]:.4%}", flush=True)
  base = next(r for r in rows if r["implementation"] == "bert_tf FullTokenizer")["tokens_per_s"]
  for r in rows:
    r["speed_vs_full_tokenizer"] = r["tokens_per_s"] / base
  return rows


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--quick", action="store_true", help="500 lines per corpus, 1 repetition")
  parser.add_argument("--reps", type=int, default=5)
  parser.add_argument("--batch_size", type=int, default=8192)
  parser.add_argument("--output_dir", default=str(RESULTS))
  args = parser.parse_args(argv)
  max_lines, reps = (500, 1) if args.quick else (None, args.reps)
  rows = []
  for name, corpus, vocab, lower in CORPORA:
    if not (SHARED_DATA / corpus).exists() or not (SHARED_DATA / vocab).exists():
      print(f"skipping {name}: {SHARED_DATA / corpus} or its vocab is absent "
            "(../shared/data is not part of a fresh clone)")
      continue
    rows.extend(run_corpus(name, corpus, vocab, lower, max_lines, reps, args.batch_size))
  table = markdown_table(
      ["corpus", "implementation", "tokens/s", "x bert_tf FullTokenizer", "agreement"],
      [[r["corpus"], r["implementation"], f"{r['tokens_per_s'] / 1e3:,.0f}k",
        f"{r['speed_vs_full_tokenizer']:.1f}x", f"{r['agreement']:.2%}"] for r in rows])
  ratios = [f"{r['corpus']}: {r['speed_vs_full_tokenizer']:.1f}x" for r in rows
            if r["implementation"] == "bert_tf FastTokenizer"]
  info = machine_info()
  markdown = ("# Tokenizer throughput and agreement\n\n"
              f"Median of {reps} repetition(s) on {info['cpus']} CPU(s), batches of "
              f"{args.batch_size} lines for the batched tokenizers; tracing and warm-up excluded. "
              "Agreement = share of lines with ids identical to the original tokenization "
              f"({rows[0]['reference'] if rows else '-'}, 200-character word limit). "
              "bert_tf FullTokenizer's word cache is cleared before every pass.\n\n"
              f"FastTokenizer / FullTokenizer speed: {', '.join(ratios) or '-'}.\n\n" + table)
  payload = {"machine": info, "quick": args.quick, "reps": reps,
             "batch_size": args.batch_size, "rows": rows}
  for path in write_results(args.output_dir, "tokenizer", payload, markdown):
    print("wrote", path)
  print(table)
  return rows


if __name__ == "__main__":
  main()
