"""Runs data generation on this machine: shards over worker processes, resumable, with progress.

    summary = run(options, "corpus/*.txt", "out/train.tfrecord", num_workers=8)

Every shard is written by ShardProcessor.write_shard under a hidden temporary name and renamed
when complete, so a killed run leaves complete shards and no truncated one; running the same
command again skips the shards that exist. A manifest (hidden file next to the outputs) records
the settings; re-running into the same output_file with other settings is refused rather than
mixing records of two configurations.
"""
import concurrent.futures
import dataclasses
import glob
import json
import logging
import math
import multiprocessing
import os
import re
import signal
import sys
import threading
import time

from bert_tf.errors import FlagError, InputFileError, UserInputError
from pretraining import documents, fileio, generation

_PROCESSOR = None
_QUEUE = None


AUTO_SHARDS = 64
MIN_SHARD_MB, MAX_SHARD_MB = 1.0, 64.0


def auto_num_shards(total_bytes, shard_size_mb=0.0):
  """Shards for a corpus: one per shard_size_mb, or with shard_size_mb=0 about 64 shards of
  1-64 MB each (small corpora still spread over every core; memory stays bounded by 64 MB of
  text per worker however large the corpus). Depends on the input size only."""
  if shard_size_mb <= 0:
    shard_size_mb = min(max(total_bytes / 2**20 / AUTO_SHARDS, MIN_SHARD_MB), MAX_SHARD_MB)
  return max(1, math.ceil(total_bytes / (shard_size_mb * 2**20)))


def plan(input_file, output_file, num_shards=0, shard_size_mb=0.0):
  """Input files, shards and their output paths.

  num_shards: 0 picks auto_num_shards(input size, shard_size_mb), or the number of names in a
  comma-separated output_file.
  """
  files = documents.expand_input_files(input_file)
  names = [n for n in output_file.split(",") if n.strip()]
  if not names:
    raise FlagError("--output_file is empty")
  if num_shards == 0:
    if len(names) > 1:
      num_shards = len(names)
    else:
      num_shards = auto_num_shards(sum(f.size for f in files), shard_size_mb)
  outputs = generation.shard_output_paths(output_file, num_shards)
  return files, documents.make_shards(files, num_shards), outputs


def manifest_path(output_paths):
  """Hidden file next to the outputs, named after output_file (without the shard suffix)."""
  base = re.sub(r"-\d{5}-of-\d{5}$", "", output_paths[0])
  return generation._hidden(base, "manifest.json")  # pylint: disable=protected-access


def check_manifest(options, files, output_paths):
  manifest = {"options": dataclasses.asdict(options),
              "input_files": [[f.path, f.size] for f in files],
              "outputs": output_paths}
  path = manifest_path(output_paths)
  if fileio.exists(path):
    with fileio.open_file(path, "r") as f:
      previous = json.load(f)
    if previous != json.loads(json.dumps(manifest)):
      existing = [p for p in output_paths if fileio.exists(p)]
      if existing:
        changed = sorted(k for k in manifest if previous.get(k) != manifest[k])
        changed += sorted(f"options.{k}" for k, v in manifest["options"].items()
                          if previous.get("options", {}).get(k) != v)
        raise UserInputError(
            f"{len(existing)} output files such as {existing[0]} were made with other settings "
            f"({', '.join(changed)} differ; see {path}). Delete them or choose another "
            "output_file; mixing the two would give inconsistent records.")
  fileio.makedirs(os.path.dirname(output_paths[0]))
  fileio.write_text_atomically(path, json.dumps(manifest, indent=1))


def _exit_with_parent(parent_pid):
  """A worker exits when the process that started it dies (a kill -9 of the parent would
  otherwise leave it finishing its shards and idling with its memory): on Linux the kernel
  sends SIGKILL (prctl PR_SET_PDEATHSIG; workers are started from the parent's main thread),
  and everywhere a watch thread notices the new parent id within half a second."""
  if sys.platform.startswith("linux"):
    import ctypes  # pylint: disable=import-outside-toplevel
    try:
      ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
      pass
  if os.getppid() != parent_pid:   # died before the prctl
    os._exit(1)

  def watch():
    while os.getppid() == parent_pid:
      time.sleep(0.5)
    os._exit(1)
  threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def _init_worker(processor, queue, parent_pid=None):
  global _PROCESSOR, _QUEUE
  # Ctrl-C reaches the whole process group: the parent alone decides (see run).
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  if parent_pid is not None:
    _exit_with_parent(parent_pid)
  processor.tokenizer_threads = 1
  if processor.uses_tensorflow():
    # One process per core already: keep each one's TensorFlow to a single thread.
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
  _PROCESSOR, _QUEUE = processor, queue


def _report(**counts):
  if _QUEUE is not None:
    _QUEUE.put(counts)


def _work(shard, output_path):
  return _PROCESSOR.write_shard(shard, output_path, progress=_report)


class _Progress:
  """tqdm bar over shards on a terminal (documents, lines and instances per second), a log line
  every 30 s otherwise."""

  def __init__(self, total_shards, enabled):
    self.counts = {"lines": 0, "documents": 0, "instances": 0, "shards": 0}
    self.total_shards = total_shards
    self.start = self.last_log = time.time()
    self.bar = None
    if enabled and sys.stderr.isatty():
      from tqdm import tqdm  # pylint: disable=import-outside-toplevel
      self.bar = tqdm(total=total_shards, unit="shard", dynamic_ncols=True)

  def update(self, lines=0, instances=0, shards=0, documents=0):
    self.counts["documents"] += documents
    self.counts["lines"] += lines
    self.counts["instances"] += instances
    self.counts["shards"] += shards
    elapsed = max(time.time() - self.start, 1e-9)
    rates = (f"{self.counts['documents'] / elapsed:,.0f} docs/s, "
             f"{self.counts['lines'] / elapsed:,.0f} lines/s, "
             f"{self.counts['instances'] / elapsed:,.0f} instances/s")
    if self.bar is not None:
      self.bar.update(shards)
      self.bar.set_postfix_str(rates, refresh=False)
    elif time.time() - self.last_log >= 30 or shards and self.counts["shards"] == self.total_shards:
      self.last_log = time.time()
      logging.info("%d/%d shards, %s lines, %s instances (%s)", self.counts["shards"],
                   self.total_shards, f"{self.counts['lines']:,}",
                   f"{self.counts['instances']:,}", rates)

  def close(self):
    if self.bar is not None:
      self.bar.close()


def _remove_partial_files(output_paths):
  """Removes the hidden partial files of these shards whose writer is gone (killed runs)."""
  for path in output_paths:
    if "://" in path:
      continue
    directory, name = os.path.split(path)
    for partial in glob.glob(os.path.join(glob.escape(directory or "."),
                                          f".{glob.escape(name)}.*incomplete")):
      pid = partial[:-len(".incomplete")].rsplit(".", 1)[-1]
      if pid.isdigit() and _alive(int(pid)) and int(pid) != os.getpid():
        continue
      try:
        os.remove(partial)
      except OSError:
        pass


def _alive(pid):
  """Whether process pid runs. A zombie does not: the workers of a killed run stay zombies
  where nothing reaps orphans (a container whose process 1 is not an init)."""
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  try:
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
      return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
  except (OSError, IndexError):
    return True


# Up to this much text per process, CachedTokenizer (Python, no TensorFlow) finishes a job
# sooner than FastTokenizer, whose process first imports TensorFlow (about 4.5 s and 700 MB);
# beyond it, FastTokenizer's higher speed per megabyte wins. Both give the same records.
# Measured on distinct-line corpora (benchmarks/pretraining_corpora.py, one process): cached
# tokenization costs 0.2-0.25 s/MB more than FastTokenizer on English and Chinese alike (with
# jieba whole word masking, where segmentation dominates, 0.1 s/MB), so TensorFlow's import
# pays for itself only from about 75 MB per process; 64 MB keeps every auto-sized shard
# (at most 64 MB) of a 2-core job on the cached path.
CACHED_TOKENIZER_MAX_MB_PER_PROCESS = 64.0


def choose_tokenizer(total_bytes, processes):
  """'cached' or 'fast' (generation.TOKENIZERS) for a job of total_bytes over processes."""
  per_process = total_bytes / max(processes, 1) / 2**20
  return "cached" if per_process <= CACHED_TOKENIZER_MAX_MB_PER_PROCESS else "fast"


def run(options, input_file, output_file, num_shards=0, shard_size_mb=0.0, num_workers=0,
        show_progress=True, allow_empty=False):
  """Generates all missing shards. Returns a summary dict (totals over all shards).

  Ctrl-C (KeyboardInterrupt) stops the workers at once, abandoning the shards in flight (no
  partial file is left under a final name; complete shards are kept), and re-raises
  KeyboardInterrupt with how to resume; a second Ctrl-C meanwhile exits at once.

  Raises:
    InputFileError: the input holds no text from which an instance can be made (unless
      allow_empty; an empty output is then written as empty shards).
  """
  files, shards, outputs = plan(input_file, output_file, num_shards, shard_size_mb)
  processes = min(num_workers or os.cpu_count() or 1, len(shards))
  processor = generation.ShardProcessor(
      options, files, choose_tokenizer(sum(f.size for f in files), processes))
  if not allow_empty and not any(f.size for f in files):
    raise InputFileError(f"{', '.join(f.path for f in files[:3])}: the input is empty; give the "
                         "corpus (one sentence per line, blank lines between documents), or pass "
                         "--allow_empty to write empty shards")
  check_manifest(options, files, outputs)
  _remove_partial_files(outputs)
  try:
    summary = _write_missing(processor, shards, outputs, num_workers, show_progress)
  except KeyboardInterrupt:
    signal.signal(signal.SIGINT, lambda *_: os._exit(130))   # a second Ctrl-C: at once
    _remove_partial_files(outputs)
    done = sum(fileio.exists(p) for p in outputs)
    raise KeyboardInterrupt(f"{done} of {len(outputs)} shards are complete and kept; run the "
                            "same command again to write the others") from None
  if not summary.get("instances") and not allow_empty:
    for path in outputs:   # no record-less files left under final names
      if "://" not in path and os.path.exists(path):
        os.remove(path)
    raise InputFileError(f"{', '.join(f.path for f in files[:3])}: no instance could be made "
                         "(no line gave a token of the vocabulary); check the input and "
                         "--vocab_file, or pass --allow_empty")
  return summary


def _write_missing(processor, shards, outputs, num_workers, show_progress):
  todo = [(s, p) for s, p in zip(shards, outputs) if not fileio.exists(p)]
  if len(todo) < len(shards):
    logging.info("%d of %d shards exist already and are kept", len(shards) - len(todo),
                 len(shards))
  num_workers = min(num_workers or os.cpu_count() or 1, max(len(todo), 1))
  progress = _Progress(len(todo), show_progress)
  try:
    if num_workers <= 1:
      for shard, path in todo:
        processor.write_shard(shard, path, progress=progress.update)
        progress.update(shards=1)
    else:
      _run_pool(processor, todo, num_workers, progress)
  finally:
    progress.close()
  return summarize(outputs)


def _run_pool(processor, todo, num_workers, progress):
  context = multiprocessing.get_context("spawn")  # TensorFlow does not survive fork
  queue = context.Queue()
  pool = concurrent.futures.ProcessPoolExecutor(num_workers, mp_context=context,
                                                initializer=_init_worker,
                                                initargs=(processor, queue, os.getpid()))
  try:
    pending = {pool.submit(_work, shard, path) for shard, path in todo}
    while pending:
      done, pending = concurrent.futures.wait(pending, timeout=0.5)
      _drain(queue, progress)
      for future in done:
        future.result()  # re-raises a worker's error here
        progress.update(shards=1)
  except BaseException:
    # A worker's error or Ctrl-C: stop now rather than after the queued shards.
    _stop_workers(pool)
    raise
  pool.shutdown(wait=True)
  _drain(queue, progress)


def _stop_workers(pool):
  """Cancels the queued shards and kills the workers (their partial files are hidden names)."""
  processes = list((getattr(pool, "_processes", None) or {}).values())
  pool.shutdown(wait=False, cancel_futures=True)
  for process in processes:
    process.kill()
  for process in processes:
    process.join(5)
  # Wait for the executor's manager thread to notice and close its wakeup pipe. Otherwise, on
  # Python < 3.12, interpreter exit can write to that pipe while the thread closes it and print
  # "OSError: Bad file descriptor" with a traceback (CPython gh-105829).
  manager = getattr(pool, "_executor_manager_thread", None)
  if manager is not None:
    manager.join(5)


def _drain(queue, progress):
  while True:
    try:
      counts = queue.get_nowait()
    except Exception:  # queue.Empty; pylint: disable=broad-except
      return
    progress.update(**counts)


def summarize(output_paths):
  """Totals of the shards' stats files (written next to each shard)."""
  totals = {}
  examples = {}
  for path in output_paths:
    stats_file = generation.stats_path(path)
    if not fileio.exists(stats_file):
      continue
    with fileio.open_file(stats_file, "r") as f:
      stats = json.load(f)
    for key, value in stats.pop("examples", {}).items():
      examples.setdefault(key, value)
    for key, value in stats.items():
      if isinstance(value, (int, float)) and key not in ("shard", "num_shards"):
        totals[key] = totals.get(key, 0) + value
  totals["shards"] = len(output_paths)
  totals["examples"] = examples
  return totals
