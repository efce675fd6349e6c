"""run_squad's data path against tf-models-official's squad_lib (the original run_squad code),
same settings, one run: feature conversion (reading the JSON, tokenizing, windows) and
prediction post-processing (n-best search, mapping back to the text) in examples/s.

    python -m benchmarks.bench_squad            # SQuAD dev subset and CMRC 2018 trial
    python -m benchmarks.bench_squad --quick    # one repetition on 100 questions

Both sides use the same Python FullTokenizer algorithm; ours tokenizes each paragraph once for
all its questions and memoises words. Settings: max_seq_length 384, doc_stride 128,
max_query_length 64, n_best_size 20, max_answer_length 30; logits are random at real tokens
and -10000 at padding (the same for both).
"""
import argparse
import collections
import json
import os
import statistics
import sys
import tempfile

import numpy as np

from benchmarks.common import RESULTS, machine_info, markdown_table, median_seconds, write_results

SHARED = os.environ.get("BERT_TF_SHARED_DATA", os.path.join(os.path.dirname(__file__), "..", "..",
                                                          "shared", "data"))
DATASETS = [("SQuAD v1.1 dev (subset)", "squad/expmrc-squad-dev.json", "uncased"),
            ("CMRC 2018 trial", "cmrc2018/cmrc2018_trial.json", "chinese")]
LENGTHS = (384, 128, 64)


def _first_answers(path, limit):
  with open(path, encoding="utf-8") as f:
    data = json.load(f)
  count = 0
  for article in data["data"]:
    for paragraph in article["paragraphs"]:
      if limit:
        paragraph["qas"] = paragraph["qas"][:max(limit - count, 0)]
      for qa in paragraph["qas"]:
        qa["answers"] = qa["answers"][:1]
        count += 1
  handle = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8")
  json.dump(data, handle, ensure_ascii=False)
  handle.close()
  return handle.name, count


def reference_side(path, vocab):
  from official.nlp.data import squad_lib  # pylint: disable=import-outside-toplevel
  from official.nlp.tools import tokenization  # pylint: disable=import-outside-toplevel

  def convert():
    tokenizer = tokenization.FullTokenizer(vocab, do_lower_case=True)
    tokenizer.wordpiece_tokenizer.max_input_chars_per_word = 200
    examples = squad_lib.read_squad_examples(path, False, False)
    features = []
    squad_lib.convert_examples_to_features(
        examples, tokenizer, *LENGTHS, False,
        lambda f, is_padding=False: None if is_padding else features.append(f), batch_size=1)
    return examples, features

  def postprocess(examples, features, logits):
    raw = collections.namedtuple("RawResult", ["unique_id", "start_logits", "end_logits"])
    return squad_lib.postprocess_output(
        examples, features, [raw(u, s.tolist(), e.tolist()) for u, (s, e) in logits.items()],
        20, 30, True)[0]
  return convert, postprocess


def our_side(path, vocab):
  from bert_tf.tokenization import FullTokenizer  # pylint: disable=import-outside-toplevel
  from finetuning import squad_features, squad_postprocess  # pylint: disable=import-outside-toplevel
  from finetuning.tasks.squad import read_squad_examples  # pylint: disable=import-outside-toplevel

  def convert():
    examples, _ = read_squad_examples(path, False)
    features = list(squad_features.convert_examples_to_features(
        examples, FullTokenizer(vocab, do_lower_case=True), *LENGTHS, False))
    return examples, features

  def postprocess(examples, features, logits):
    return squad_postprocess.predict_answers(examples, features, logits, 20, 30, True)[0]
  return convert, postprocess


def measure(name, relative, vocab_name, reps, limit):
  path, count = _first_answers(os.path.join(SHARED, relative), limit)
  vocab = os.path.join(SHARED, "vocab", f"{vocab_name}_vocab.txt")
  rows, sides = [], {"tf-models squad_lib": reference_side(path, vocab), "bert_tf": our_side(path, vocab)}
  converted = {label: convert() for label, (convert, _) in sides.items()}
  rng = np.random.default_rng(0)
  # Random logits at real tokens; -10000 at padding, as far below as a trained model puts them.
  # Random logits there too would hand the original (which ranks padding positions, then drops
  # them) fewer candidates to map back than bert_tf (which ranks real positions only).
  logits = {}
  for f in converted["bert_tf"][1]:
    padding = np.arange(LENGTHS[0]) >= len(f.tokens)
    logits[f.unique_id] = tuple(np.where(padding, -10000.0, rng.normal(size=LENGTHS[0]) * 3)
                                for _ in range(2))
  seconds = {}
  for _ in range(reps):       # interleaved repetitions
    for label, (convert, postprocess) in sides.items():
      examples, features = converted[label]
      seconds.setdefault((label, "conversion"), []).append(median_seconds(convert, 1, warmup=0))
      seconds.setdefault((label, "post-processing"), []).append(
          median_seconds(lambda: postprocess(examples, features, logits), 1, warmup=0))
  for (label, stage), values in seconds.items():
    rows.append({"dataset": name, "questions": count, "implementation": label, "stage": stage,
                 "examples_per_s": count / statistics.median(values),
                 "windows": len(converted[label][1])})
    print(f"{name:26s} {label:20s} {stage:16s} {rows[-1]['examples_per_s']:9.1f} examples/s",
          flush=True)
  os.unlink(path)
  return rows


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--output_dir", default=str(RESULTS))
  parser.add_argument("--reps", type=int, default=3)
  args = parser.parse_args(argv)
  if not os.path.isdir(SHARED):
    print(f"skipping: {SHARED} (the real data folder) is absent", file=sys.stderr)
    return
  reps, limit = (1, 100) if args.quick else (args.reps, None)
  rows = [r for name, rel, vocab in DATASETS for r in measure(name, rel, vocab, reps, limit)]
  for row in rows:
    peer = [r["examples_per_s"] for r in rows if r["dataset"] == row["dataset"] and
            r["stage"] == row["stage"] and r["implementation"].startswith("tf-models")]
    row["vs_tf_models"] = row["examples_per_s"] / peer[0]
  table = markdown_table(
      ["dataset", "questions", "stage", "implementation", "examples/s", "vs tf-models"],
      [[r["dataset"], r["questions"], r["stage"], r["implementation"],
        f"{r['examples_per_s']:.0f}", f"{r['vs_tf_models']:.2f}x"] for r in rows])
  markdown = (f"SQuAD-format data path, max_seq_length {LENGTHS[0]}, doc_stride {LENGTHS[1]}, "
              f"max_query_length {LENGTHS[2]}, n_best 20; post-processing of random logits at real "
              f"tokens, -10000 at padding (the same for both); median of {reps} interleaved "
              f"runs, one core (both are single-threaded Python).\n\n{table}")
  write_results(args.output_dir, "squad", {"rows": rows, "machine": machine_info()}, markdown)
  print(markdown)


if __name__ == "__main__":
  main()
