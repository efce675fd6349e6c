"""Pretraining data generation: ours against tf-models-official's, same corpus and flags, one run.

    python -m benchmarks.bench_pretraining_data            # real corpora, two sizes each
    python -m benchmarks.bench_pretraining_data --quick    # a tiny corpus, for the smoke test

Each row runs one command line end to end as a user would (process start, imports and
tokenizer set-up included): tf-models-official's `python -m official.nlp.data.
create_pretraining_data` (one process; it holds the corpus and every instance in memory) and
ours, `python -m pretraining.create_pretraining_data` with default parallelism (all cores) and
sharding. Flags are the same for both (the original's defaults: max_seq_length 128,
max_predictions_per_seq 20, dupe_factor 10, masked_lm_prob 0.15, short_seq_prob 0.1, seed
12345), with and without do_whole_word_mask. For Chinese, "whole word" means jieba words for
ours; the reference has no Chinese word segmentation, so its flag only groups ## pieces.

Corpus sizes: the real corpus from ../shared/data repeated k times (documents stay documents;
a repeat is new text to both programs). Peak memory is the largest sum of resident memory over
the program's process tree, sampled every 100 ms (sampling a process tree every 20 ms took
3-10% of a run that keeps both cores busy, as ours does, and next to nothing from the
single-process reference; memory changes slowly, so 100 ms still catches the peak). Results:
benchmarks/results/pretraining_data.{json,md,png}.
"""
import argparse
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

import psutil

from benchmarks.common import RESULTS, SHARED_DATA, machine_info, markdown_table, write_results

CORPORA = {
    # name: (corpus, vocab, sizes (repeats))
    "English": ("english_corpus/wikitext-2_valid_sentences.txt", "vocab/uncased_vocab.txt", (4, 32)),
    "Chinese": ("chinese_corpus/CLUECorpusSmall_bert_sampled.txt", "vocab/chinese_vocab.txt", (2, 16)),
}
QUICK = {
    "English": ("pretrain_corpus/sample_text.txt", "vocab/uncased_vocab.txt", (2, 4)),
    "Chinese": ("chinese_corpus/news_zh_1.txt", "vocab/chinese_vocab.txt", (1, 2)),
}


def measure(command, cwd):
  """Runs command; returns (seconds, peak RSS MB of its process tree, stdout, stderr)."""
  start = time.perf_counter()
  with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
    process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=err)
    root = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
      try:
        tree = [root] + root.children(recursive=True)
        peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
      except psutil.Error:
        pass
      time.sleep(0.1)
    seconds = time.perf_counter() - start
    out.seek(0)
    err.seek(0)
    stdout, stderr = out.read(), err.read()
  if process.returncode:
    raise RuntimeError(f"{' '.join(command)} failed:\n{stderr[-3000:]}")
  return seconds, peak / 2**20, stdout, stderr


def flags(corpus, output, vocab, wwm, dupe_factor):
  return [f"--input_file={corpus}", f"--output_file={output}", f"--vocab_file={vocab}",
          "--do_lower_case=true", f"--do_whole_word_mask={str(wwm).lower()}",
          "--max_seq_length=128", "--max_predictions_per_seq=20", "--random_seed=12345",
          f"--dupe_factor={dupe_factor}", "--masked_lm_prob=0.15", "--short_seq_prob=0.1"]


def run_reference(corpus, vocab, wwm, dupe_factor, work):
  output = work / "reference.tfrecord"
  seconds, peak, _, stderr = measure(
      [sys.executable, "-m", "official.nlp.data.create_pretraining_data",
       *flags(corpus, output, vocab, wwm, dupe_factor)], work)
  instances = int(re.search(r"Wrote (\d+) total instances", stderr).group(1))
  output.unlink()
  return seconds, peak, instances


def run_ours(corpus, vocab, wwm, dupe_factor, work):
  output = work / "ours" / "data.tfrecord"
  seconds, peak, stdout, _ = measure(
      [sys.executable, "-m", "pretraining.create_pretraining_data",
       *flags(corpus, output, vocab, wwm, dupe_factor)], pathlib.Path(__file__).parents[1])
  summary = json.loads(stdout.strip().splitlines()[-1])
  shutil.rmtree(output.parent)
  return seconds, peak, summary["instances"], summary["shards"]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--output_dir", default=str(RESULTS))
  parser.add_argument("--dupe_factor", type=int, default=10)
  parser.add_argument("--languages", default="English,Chinese")
  args = parser.parse_args(argv)
  corpora = QUICK if args.quick else CORPORA
  dupe_factor = 2 if args.quick else args.dupe_factor
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    work = pathlib.Path(tmp)
    # Our fixed cost: a one-line corpus (process start, TensorFlow import in each worker).
    one_line = work / "one_line.txt"
    one_line.write_text("Hello world.\nA second sentence.\n", encoding="utf-8")
    startup, _, _, _ = run_ours(one_line, SHARED_DATA / "vocab/uncased_vocab.txt", False, 1, work)
    for language in args.languages.split(","):
      relative, vocab, sizes = corpora[language]
      text = (SHARED_DATA / relative).read_text(encoding="utf-8").rstrip("\n") + "\n\n"
      for repeats in sizes:
        corpus = work / f"{language}_{repeats}x.txt"
        corpus.write_text(text * repeats, encoding="utf-8")
        megabytes = corpus.stat().st_size / 2**20
        for wwm in (False, True):
          ref_s, ref_mb, ref_n = run_reference(corpus, SHARED_DATA / vocab, wwm, dupe_factor, work)
          our_s, our_mb, our_n, shards = run_ours(corpus, SHARED_DATA / vocab, wwm, dupe_factor,
                                                   work)
          row = {"language": language, "corpus_mb": round(megabytes, 2), "repeats": repeats,
                 "whole_word_mask": wwm,
                 "reference": {"seconds": ref_s, "peak_mb": ref_mb, "instances": ref_n,
                               "instances_per_s": ref_n / ref_s},
                 "ours": {"seconds": our_s, "peak_mb": our_mb, "instances": our_n,
                          "instances_per_s": our_n / our_s, "shards": shards},
                 "speedup": (our_n / our_s) / (ref_n / ref_s)}
          rows.append(row)
          print(json.dumps(row), flush=True)
        corpus.unlink()
  payload = {"dupe_factor": dupe_factor, "cpus": os.cpu_count(), "our_startup_seconds": startup,
             "machine": machine_info(), "rows": rows}
  table = markdown_table(
      ["corpus", "size", "whole word", "reference inst/s", "reference wall s",
       "reference peak MB", "ours inst/s", "ours wall s", "ours peak MB", "speed-up"],
      [[r["language"], f"{r['corpus_mb']:.1f} MB ({r['repeats']}x)",
        "yes" if r["whole_word_mask"] else "no",
        f"{r['reference']['instances_per_s']:,.0f}", f"{r['reference']['seconds']:.1f}",
        f"{r['reference']['peak_mb']:,.0f}", f"{r['ours']['instances_per_s']:,.0f}",
        f"{r['ours']['seconds']:.1f}", f"{r['ours']['peak_mb']:,.0f}", f"{r['speedup']:.1f}x"]
       for r in rows])
  markdown = (f"tf-models-official create_pretraining_data vs bert_tf, same flags (dupe_factor "
              f"{dupe_factor}), whole runs from the command line on {os.cpu_count()} cores. "
              f"Our fixed start-up cost (one-line corpus): {startup:.1f} s.\n\n{table}")
  write_results(args.output_dir, "pretraining_data", payload, markdown)
  plot(rows, pathlib.Path(args.output_dir) / "pretraining_data.png")
  print(markdown)


def plot(rows, path):
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
  for language, marker in (("English", "o"), ("Chinese", "s")):
    for wwm, style in ((False, "-"), (True, "--")):
      sel = [r for r in rows if r["language"] == language and r["whole_word_mask"] == wwm]
      if not sel:
        continue
      sizes = [r["corpus_mb"] for r in sel]
      label = f"{language}{' wwm' if wwm else ''}"
      left.plot(sizes, [r["speedup"] for r in sel], style, marker=marker, label=label)
      right.plot(sizes, [r["reference"]["peak_mb"] for r in sel], style, marker=marker,
                 color="tab:red", label=f"reference {label}")
      right.plot(sizes, [r["ours"]["peak_mb"] for r in sel], style, marker=marker,
                 color="tab:green", label=f"bert_tf {label}")
  left.set(xlabel="corpus MB", ylabel="instances/s, bert_tf / reference",
           title="Speed-up (whole runs)")
  left.axhline(20, color="grey", lw=0.8, ls=":")
  right.set(xlabel="corpus MB", ylabel="peak resident MB (process tree)", title="Peak memory",
            yscale="log")
  left.legend(fontsize=8)
  right.legend(fontsize=7)
  fig.tight_layout()
  tmp = path.with_suffix(".tmp.png")
  fig.savefig(tmp, dpi=110)
  os.replace(tmp, path)


if __name__ == "__main__":
  main()
