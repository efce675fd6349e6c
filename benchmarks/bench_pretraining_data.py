"""Pretraining data generation: ours against tf-models-official's, same corpus and flags.

    python -m benchmarks.bench_pretraining_data          # real corpora, about 12 min on 2 cores
    python -m benchmarks.bench_pretraining_data --quick  # tiny corpora, for the smoke test

Each row runs whole command lines end to end as a user would (process start, imports and
tokenizer set-up included): tf-models-official's `python -m official.nlp.data.
create_pretraining_data` (it holds the corpus and every instance in memory) and ours,
`python -m pretraining.create_pretraining_data`. Flags are the same for both (the original's
defaults: max_seq_length 128, max_predictions_per_seq 20, dupe_factor 10, masked_lm_prob 0.15,
short_seq_prob 0.1, seed 12345). For Chinese, "whole word" means jieba words for ours; the
reference has no Chinese word segmentation, so its flag only groups ## pieces.

Two rows per case, like for like:
  single process  one reference process against ours with --num_workers=1;
  all cores       the reference as one process per core (N), run in parallel over the corpus
                  cut into N files at document boundaries, each with its own output file and
                  seed (12345 + i), as a user would spread it; against ours with the default
                  --num_workers=0 (all cores). Wall time until the last process ends.
Our output depends on the shard count only (auto-sized from the input), so both of our rows
write the same records.

Corpora: wikitext-2 valid (1.0 MB, English, with and without whole word masking), and the
largest corpora ../shared/data allows with every line distinct (benchmarks/pretraining_corpora.py:
all its English text, 4.4 MB; all its Chinese text, 12.2 MB, with jieba whole word masking).
No corpus is repeated: a repeat would flatter our per-word tokenizer cache. shared/data holds
no 30 MB of distinct text in either language. Peak memory is the largest sum of resident memory
over the process trees of all processes of a row, sampled every 100 ms (sampling every 20 ms
took 3-10% of a run that keeps both cores busy; memory changes slowly, so 100 ms still catches
the peak). Results: benchmarks/results/pretraining_data.{json,md,png}.
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

from benchmarks import pretraining_corpora
from benchmarks.common import RESULTS, SHARED_DATA, machine_info, markdown_table, write_results

# Cases: (language, corpus, vocab, whole word masking values). A corpus is a shared/data file or
# "distinct:LANGUAGE", the largest distinct-line corpus shared/data allows
# (benchmarks/pretraining_corpora.py).
CASES = [
    ("English", "english_corpus/wikitext-2_valid_sentences.txt", "vocab/uncased_vocab.txt",
     (False, True)),
    ("English", "distinct:English", "vocab/uncased_vocab.txt", (False,)),
    ("Chinese", "distinct:Chinese", "vocab/chinese_vocab.txt", (True,)),
]
QUICK = [
    ("English", "pretrain_corpus/sample_text.txt", "vocab/uncased_vocab.txt", (False, True)),
    ("Chinese", "chinese_corpus/news_zh_1.txt", "vocab/chinese_vocab.txt", (False, True)),
]
MODES = ("single process", "all cores")


def measure(commands, cwd):
  """Runs the commands in parallel; returns (seconds until the last ends, peak of the summed
  RSS of their process trees in MB, [(stdout, stderr)])."""
  start = time.perf_counter()
  outputs = [(tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")) for _ in commands]
  processes = [subprocess.Popen(c, cwd=cwd, stdout=o, stderr=e)
               for c, (o, e) in zip(commands, outputs)]
  roots = [psutil.Process(p.pid) for p in processes]
  peak = 0
  while any(p.poll() is None for p in processes):
    total = 0
    for root in roots:
      try:
        tree = [root] + root.children(recursive=True)
        total += sum(p.memory_info().rss for p in tree if p.is_running())
      except psutil.Error:
        pass
    peak = max(peak, total)
    time.sleep(0.1)
  seconds = time.perf_counter() - start
  texts = []
  for out, err in outputs:
    out.seek(0)
    err.seek(0)
    texts.append((out.read(), err.read()))
    out.close()
    err.close()
  for command, process, (_, stderr) in zip(commands, processes, texts):
    if process.returncode:
      raise RuntimeError(f"{' '.join(map(str, command))} failed:\n{stderr[-3000:]}")
  return seconds, peak / 2**20, texts


def flags(corpus, output, vocab, wwm, dupe_factor, seed=12345):
  return [f"--input_file={corpus}", f"--output_file={output}", f"--vocab_file={vocab}",
          "--do_lower_case=true", f"--do_whole_word_mask={str(wwm).lower()}",
          "--max_seq_length=128", "--max_predictions_per_seq=20", f"--random_seed={seed}",
          f"--dupe_factor={dupe_factor}", "--masked_lm_prob=0.15", "--short_seq_prob=0.1"]


def split_by_documents(corpus, parts, work):
  """corpus cut at blank lines into parts files of about equal size (the reference's own way to
  use several cores: one process per input file)."""
  text = corpus.read_text(encoding="utf-8")
  documents = [d for d in text.split("\n\n") if d.strip()]
  target = len(text) / parts
  paths, current, size = [], [], 0
  for document in documents:
    current.append(document)
    size += len(document) + 2
    if size >= target * (len(paths) + 1) and len(paths) < parts - 1:
      paths.append(current)
      current = []
  paths.append(current)
  files = []
  for index, documents in enumerate(paths):
    path = work / f"{corpus.stem}.part{index}.txt"
    path.write_text("\n\n".join(documents) + "\n", encoding="utf-8")
    files.append(path)
  return files


def run_reference(inputs, vocab, wwm, dupe_factor, work):
  """One reference process per input file, in parallel, each with its own output and seed."""
  outputs = [work / f"reference{i}.tfrecord" for i in range(len(inputs))]
  commands = [[sys.executable, "-m", "official.nlp.data.create_pretraining_data",
               *flags(corpus, output, vocab, wwm, dupe_factor, seed=12345 + i)]
              for i, (corpus, output) in enumerate(zip(inputs, outputs))]
  seconds, peak, texts = measure(commands, work)
  instances = sum(int(re.search(r"Wrote (\d+) total instances", stderr).group(1))
                  for _, stderr in texts)
  for output in outputs:
    output.unlink()
  return {"seconds": seconds, "peak_mb": peak, "instances": instances,
          "instances_per_s": instances / seconds, "processes": len(inputs)}


def run_ours(corpus, vocab, wwm, dupe_factor, work, num_workers):
  output = work / "ours" / "data.tfrecord"
  seconds, peak, texts = measure(
      [[sys.executable, "-m", "pretraining.create_pretraining_data",
        *flags(corpus, output, vocab, wwm, dupe_factor), f"--num_workers={num_workers}"]],
      pathlib.Path(__file__).parents[1])
  summary = json.loads(texts[0][0].strip().splitlines()[-1])
  shutil.rmtree(output.parent)
  return {"seconds": seconds, "peak_mb": peak, "instances": summary["instances"],
          "instances_per_s": summary["instances"] / seconds, "shards": summary["shards"],
          "num_workers": num_workers}


def size_text(megabytes):
  return f"{megabytes:.1f} MB" if megabytes >= 0.1 else f"{megabytes * 1024:.0f} KB"


def corpus_file(name, language, work):
  if name.startswith("distinct:"):
    path = work / f"{language}_distinct.txt"
    pretraining_corpora.write_corpus(language, path)
    return path, f"all of shared/data's {language} text, distinct lines"
  return SHARED_DATA / name, pathlib.Path(name).name


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--output_dir", default=str(RESULTS))
  parser.add_argument("--dupe_factor", type=int, default=10)
  parser.add_argument("--languages", default="English,Chinese")
  parser.add_argument("--modes", default=",".join(MODES))
  args = parser.parse_args(argv)
  cases = QUICK if args.quick else CASES
  dupe_factor = 2 if args.quick else args.dupe_factor
  cores = os.cpu_count() or 1
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    work = pathlib.Path(tmp)
    # Our fixed cost: a one-line corpus (process start, imports, vocabulary).
    one_line = work / "one_line.txt"
    one_line.write_text("Hello world.\nA second sentence.\n", encoding="utf-8")
    startup = run_ours(one_line, SHARED_DATA / "vocab/uncased_vocab.txt", False, 1, work, 1)
    for language, name, vocab, wwms in cases:
      if language not in args.languages.split(","):
        continue
      corpus, description = corpus_file(name, language, work)
      megabytes = corpus.stat().st_size / 2**20
      parts = split_by_documents(corpus, cores, work)
      for wwm in wwms:
        for mode in args.modes.split(","):
          single = mode == "single process"
          reference = run_reference([corpus] if single else parts, SHARED_DATA / vocab, wwm,
                                    dupe_factor, work)
          ours = run_ours(corpus, SHARED_DATA / vocab, wwm, dupe_factor, work,
                          1 if single else 0)
          row = {"language": language, "corpus": description, "corpus_mb": round(megabytes, 2),
                 "whole_word_mask": wwm, "mode": mode, "reference": reference, "ours": ours,
                 "speedup": ours["instances_per_s"] / reference["instances_per_s"]}
          rows.append(row)
          print(json.dumps(row), flush=True)
      for path in parts + ([corpus] if corpus.parent == work else []):
        path.unlink()
  payload = {"dupe_factor": dupe_factor, "cpus": cores,
             "our_startup_seconds": startup["seconds"], "our_startup_peak_mb": startup["peak_mb"],
             "machine": machine_info(), "rows": rows}
  table = markdown_table(
      ["corpus", "size", "whole word", "processes (reference / ours)", "reference inst/s",
       "reference wall s", "reference peak MB", "ours inst/s", "ours wall s", "ours peak MB",
       "speed-up"],
      [[f"{r['language']}: {r['corpus']}", size_text(r["corpus_mb"]),
        "yes" if r["whole_word_mask"] else "no",
        f"{r['mode']} ({r['reference']['processes']} / "
        f"{min(r['ours']['num_workers'] or cores, r['ours']['shards'])})",
        f"{r['reference']['instances_per_s']:,.0f}", f"{r['reference']['seconds']:.1f}",
        f"{r['reference']['peak_mb']:,.0f}", f"{r['ours']['instances_per_s']:,.0f}",
        f"{r['ours']['seconds']:.1f}", f"{r['ours']['peak_mb']:,.0f}", f"{r['speedup']:.1f}x"]
       for r in rows])
  markdown = (f"tf-models-official create_pretraining_data vs bert_tf, same corpus and flags "
              f"(dupe_factor {dupe_factor}), whole runs from the command line on {cores} cores. "
              f"Single process: one reference process, ours with --num_workers=1. All cores: the "
              f"reference as {cores} processes in parallel over the corpus cut into {cores} "
              f"files at document boundaries (seeds 12345+i), ours with --num_workers=0; wall "
              f"time until the last process ends, peak = largest sum of resident memory of all "
              f"processes. Our fixed start-up cost (one-line corpus): "
              f"{startup['seconds']:.1f} s, {startup['peak_mb']:.0f} MB.\n\n{table}")
  write_results(args.output_dir, "pretraining_data", payload, markdown)
  plot(rows, pathlib.Path(args.output_dir) / "pretraining_data.png")
  print(markdown)


def plot(rows, path):
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  labels = [f"{r['language']} {size_text(r['corpus_mb'])}{' wwm' if r['whole_word_mask'] else ''}\n"
            f"{r['mode']}" for r in rows]
  x = np.arange(len(rows))
  fig, (left, right) = plt.subplots(1, 2, figsize=(max(12, 1.6 * len(rows)), 5))
  left.bar(x, [r["speedup"] for r in rows], color="tab:green")
  left.axhline(20, color="grey", lw=0.8, ls=":")
  left.axhline(5, color="grey", lw=0.8, ls=":")
  left.set(ylabel="instances/s, bert_tf / reference", title="Speed-up (whole runs)")
  right.bar(x - 0.2, [r["reference"]["peak_mb"] for r in rows], 0.4, color="tab:red",
            label="tf-models")
  right.bar(x + 0.2, [r["ours"]["peak_mb"] for r in rows], 0.4, color="tab:green",
            label="bert_tf")
  right.set(ylabel="peak resident MB (all processes)", title="Peak memory", yscale="log")
  right.legend(fontsize=8)
  for axis in (left, right):
    axis.set_xticks(x, labels, fontsize=7, rotation=30, ha="right")
  fig.tight_layout()
  tmp = path.with_suffix(".tmp.png")
  fig.savefig(tmp, dpi=110)
  os.replace(tmp, path)


if __name__ == "__main__":
  main()
