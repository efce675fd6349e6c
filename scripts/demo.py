"""The main job on bundled data: bash scripts/demo.sh  (or python -m scripts.demo)

At this stage of the project the demo shows the model core end to end on what the repository
ships: it learns a WordPiece vocabulary from data/demo/corpus.txt, tokenizes sentences with the
exact and the in-graph tokenizer, writes whole-word-masked pretraining records (masked LM +
next sentence) from the corpus and decodes one, encodes sentences with a small BERT built from
data/demo/bert_config.json, exports the model as an original-format checkpoint and loads it back.
Shapes, timings and the artefacts' paths are printed.
"""
import argparse
import os
import pathlib
import time

import numpy as np
import tensorflow as tf

from bert_tf import BertConfig, BertEncoder, FastTokenizer, FullTokenizer
from bert_tf.checkpoint.original import export_pretrained
from pretraining import local_runner, record_stats
from pretraining.generation import GenerationOptions
from pretraining.vocabulary import build_vocab_file

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEMO_DATA = ROOT / "data" / "demo"
SENTENCES = [
    ("The river town woke slowly under a grey morning sky.", "Fishermen pulled their boats ashore."),
    ("掩码语言模型会遮住一些词。", "然后根据上下文预测它们。"),
    ("Zoë baked crème brûlée in Zürich!", None),
]


def step(title):
  print(f"\n== {title}", flush=True)


def encode_pairs(tokenizer, pairs, seq_length):
  """[CLS] A [SEP] B [SEP] features as google-research/bert builds them, padded to seq_length."""
  cls_id, sep_id = tokenizer.convert_tokens_to_ids(["[CLS]", "[SEP]"])
  features = {"input_ids": [], "input_mask": [], "segment_ids": []}
  for a, b in pairs:
    ids_a = tokenizer.encode(a)
    ids_b = tokenizer.encode(b) if b else []
    ids = [cls_id] + ids_a + [sep_id] + (ids_b + [sep_id] if b else [])
    segments = [0] * (len(ids_a) + 2) + [1] * (len(ids) - len(ids_a) - 2)
    ids, segments = ids[:seq_length], segments[:seq_length]
    pad = seq_length - len(ids)
    features["input_ids"].append(ids + [0] * pad)
    features["input_mask"].append([1] * len(ids) + [0] * pad)
    features["segment_ids"].append(segments + [0] * pad)
  return {k: tf.constant(v, tf.int32) for k, v in features.items()}


def timed(fn, reps=5):
  fn()  # trace / compile
  start = time.perf_counter()
  for _ in range(reps):
    out = fn()
  tf.nest.map_structure(lambda t: t.numpy(), out)
  return (time.perf_counter() - start) / reps * 1e3


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--output_dir", default=str(ROOT / "runs" / "demo"))
  parser.add_argument("--seq_length", type=int, default=32)
  args = parser.parse_args(argv)
  out = pathlib.Path(args.output_dir)
  out.mkdir(parents=True, exist_ok=True)
  started = time.perf_counter()

  step("1. WordPiece vocabulary from the bundled corpus")
  vocab_file = out / "vocab.txt"
  vocab = build_vocab_file([str(DEMO_DATA / "corpus.txt")], str(vocab_file), vocab_size=2000,
                           do_lower_case=True, num_unused=99, min_count=1)
  print(f"{len(vocab)} tokens ([PAD]=0, [UNK]={vocab.index('[UNK]')}, [CLS]={vocab.index('[CLS]')}, "
        f"[SEP]={vocab.index('[SEP]')}, [MASK]={vocab.index('[MASK]')}) -> {vocab_file}")

  step("2. Tokenization: exact (FullTokenizer) and in-graph (FastTokenizer)")
  full = FullTokenizer(vocab_file, do_lower_case=True)
  fast = FastTokenizer(vocab_file, do_lower_case=True)
  texts = [t for pair in SENTENCES for t in pair if t]
  fast_ids = fast.encode_batch(texts)
  for text, ids in zip(texts, fast_ids):
    assert ids == full.encode(text), text
    print(f"{text!r}\n    {full.tokenize(text)}")
  print("FastTokenizer ids == FullTokenizer ids on every sentence")

  step("3. Pretraining records: masked LM + next sentence, whole word masking")
  records_file = out / "pretraining" / "demo.tfrecord"
  options = GenerationOptions(vocab_file=str(vocab_file), do_whole_word_mask=True,
                              max_seq_length=args.seq_length, max_predictions_per_seq=5,
                              dupe_factor=5)
  summary = local_runner.run(options, str(DEMO_DATA / "corpus.txt"), str(records_file),
                             num_workers=1, show_progress=False)
  records = record_stats.read_records(str(records_file))
  stats = record_stats.summarize(records, vocab.index("[MASK]"))
  print(f"{summary['instances']} instances from {summary['documents']} documents -> {records_file}")
  print(f"masked {stats['masked_fraction_of_real_tokens']:.1%} of real tokens "
        f"({stats['masked_as_mask']:.0%} [MASK], {stats['masked_random']:.0%} random, "
        f"{stats['masked_unchanged']:.0%} unchanged); random next: {stats['random_next_fraction']:.0%}")
  print(record_stats.decode(records, 0, vocab))

  step("4. Encoder from the bundled config")
  config = BertConfig.from_json_file(DEMO_DATA / "bert_config.json")
  if config.vocab_size != len(vocab):
    raise SystemExit(f"{DEMO_DATA / 'bert_config.json'} says vocab_size={config.vocab_size} but the "
                     f"vocabulary has {len(vocab)} tokens; regenerate one of them")
  model = BertEncoder(config)
  features = encode_pairs(full, SENTENCES, args.seq_length)
  outputs = model(features, training=False)
  print(f"config: L={config.num_hidden_layers} H={config.hidden_size} A={config.num_attention_heads} "
        f"I={config.intermediate_size}, {model.count_params():,} parameters")
  for key in ("sequence_output", "pooled_output"):
    print(f"{key:16s} {tuple(outputs[key].shape)}")
  print(f"encoder_outputs  {len(outputs['encoder_outputs'])} x {tuple(outputs['encoder_outputs'][0].shape)}")
  graph = tf.function(lambda x: model(x, training=False))
  xla = tf.function(lambda x: model(x, training=False), jit_compile=True)
  for name, fn in (("eager", lambda: model(features, training=False)),
                   ("tf.function", lambda: graph(features)), ("XLA", lambda: xla(features))):
    print(f"forward, batch {len(SENTENCES)} x {args.seq_length}, {name:11s}: {timed(fn):7.2f} ms")

  step("5. Export as an original TF1 checkpoint and load it back")
  model_dir = out / "model"
  names = export_pretrained(model, model_dir, vocab_file=vocab_file)
  reloaded = BertEncoder.from_pretrained(model_dir)
  same = np.array_equal(reloaded(features)["sequence_output"], outputs["sequence_output"])
  print(f"{len(names)} variables with original names ({names[0]}, ...) -> {model_dir}")
  print(f"reloaded outputs identical: {same}")
  if not same:
    raise SystemExit("round trip changed the outputs")

  step("Artefacts")
  for path in sorted(out.rglob("*")):
    if path.is_file():
      print(f"  {path}  ({path.stat().st_size:,} bytes)")
  print(f"\ndone in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
  main()
