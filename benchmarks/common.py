"""Helpers shared by the benchmarks: timing, the matmul ceiling, and writing results.

Timings on a shared 2-core machine are noisy, so every figure is the median of repetitions and
is read against a peer measured in the same run.
"""
import datetime
import json
import os
import pathlib
import platform
import statistics
import subprocess
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = pathlib.Path(os.environ.get("BERT_TF_SHARED_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results"


def median_seconds(fn, reps=5, warmup=1):
  """Median wall time of `fn()` over `reps` calls after `warmup` untimed calls."""
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(reps):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def matmul_ceiling_gflops(reps=5):
  """fp32 matmul throughput of this machine now (GFLOP/s): the best median over a few shapes
  (BERT-base's feed-forward GEMMs at batch 32 x 128 and a 2048^3 square), each with a plain
  tf.function (oneDNN) and with XLA, so that no model can beat its own "ceiling"."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  best = 0.0
  for m, k, n in ((4096, 768, 3072), (4096, 3072, 768), (2048, 2048, 2048)):
    a = tf.random.normal([m, k])
    b = tf.random.normal([k, n])
    for xla in (False, True):
      fn = tf.function(lambda a, b: tf.matmul(a, b), jit_compile=xla)
      seconds = median_seconds(lambda: fn(a, b).numpy(), reps=reps, warmup=2)
      best = max(best, 2.0 * m * k * n / seconds / 1e9)
  return best


def source_commit(root=ROOT):
  """The commit the measured code comes from: `git rev-parse --short=12 HEAD`, with
  " + uncommitted changes" when tracked files other than results and prose (benchmarks/results,
  README.md, docs/) differ from it; "unknown" outside a git checkout."""
  def git(*args):
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout
  try:
    commit = git("rev-parse", "--short=12", "HEAD").strip()
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".",
                  ":!benchmarks/results", ":!README.md", ":!docs").strip()
  except (OSError, subprocess.CalledProcessError):
    return "unknown"
  return commit + (" + uncommitted changes" if changed else "")


def machine_info():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
          "cpus": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
          "tensorflow": tf.__version__, "commit": source_commit()}


def markdown_table(headers, rows):
  lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
  lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
  return "\n".join(lines) + "\n"


def write_results(output_dir, name, payload, markdown):
  """Writes name.json and name.md atomically into output_dir; returns their paths."""
  output_dir = pathlib.Path(output_dir)
  output_dir.mkdir(parents=True, exist_ok=True)
  paths = []
  for suffix, text in ((".json", json.dumps(payload, indent=2, ensure_ascii=False) + "\n"),
                       (".md", markdown)):
    path = output_dir / (name + suffix)
    tmp = path.with_suffix(suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    paths.append(path)
  return paths
