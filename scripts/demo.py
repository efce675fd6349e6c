"""The main job on bundled data, end to end:  bash scripts/demo.sh  (or python -m scripts.demo)

What pretraining buys: a sentiment classifier fine-tuned on a few dozen labelled sentences, once
from the BERT this demo pretrains and once from scratch.

  1. generate a corpus and a sentiment task from this project's templates (scripts/demo_data.py;
     nothing is downloaded). The labelled sentences use 3 opinion words per polarity; half the
     dev sentences use 9 others per polarity, which only the corpus contains.
  2. learn a WordPiece vocabulary from the corpus (pretraining.build_vocab)
  3. write whole-word-masked pretraining records (pretraining.create_pretraining_data)
  4. pretrain a tiny BERT (pretraining.run_pretraining, LAMB), exported as an original checkpoint
  5. fine-tune it (finetuning.run_classifier) on 8, 32 and 128 labelled sentences, 3 seeds, and the
     same model from scratch; print the learning curve and plot it to learning_curve.png
Each stage prints its command line, a progress bar and its result; the programs' logs go to
demo.log in the output folder (warnings and errors also to the terminal). summary.json keeps the
figures. --small fine-tunes on 32 labelled sentences only. --gpu=N or --tpu=NAME runs the
same pipeline on that hardware (a TPU needs --output_dir on gs://).
"""
import argparse
import json
import os
import pathlib
import queue
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEMO_CONFIG = ROOT / "data" / "demo" / "bert_config.json"
SEEDS = (1, 2, 3)
LABEL_BUDGET = 32          # labelled sentences of the headline comparison
SIZES = {  # corpus documents, pretraining steps, label budgets of the learning curve
    "default": dict(documents=3000, steps=2000, budgets=(8, LABEL_BUDGET, 128)),
    "small": dict(documents=3000, steps=2000, budgets=(LABEL_BUDGET,)),
}
# Pretraining: the opinion words part by polarity only once the masked LM has learned their
# contexts. Measured on this corpus, 32 labelled sentences, gap to scratch over 3 seeds: 1,000
# steps at 1e-2 +3.8 to +10 points, at 2e-2 +7 to +12 in one run and -4 to +30 in another (one
# seed's fine-tuning had not converged in its 100 steps); 2,000 steps at 2e-2 +25 to +32 in
# each of three runs (pretrained 1.00 at 32 and 128 sentences on every seed, 0.90-1.00 at 8).
# --small therefore keeps the full pretraining and drops the other label budgets' runs.
PRETRAIN_LEARNING_RATE = 2e-2
# Fine-tuning: the same 100 steps of batch 8 at every label budget (more epochs for fewer
# sentences), so the curve measures the labels, not the training length.
FINETUNE = dict(steps=100, batch=8, learning_rate=1e-4)
# Output lines of the programs that are shown on the terminal as well as logged: warnings and
# errors (absl's W/E/F lines, TensorFlow's C++ ones, Python warnings and tracebacks)...
ATTENTION = re.compile(r"^[WEF]\d{4} |^\S+ \S+: [WEF] |Warning\b|^WARNING|^ERROR|^Traceback")
# ...except these, which every CPU-only run prints and which ask nothing of the user.
NOISE = ("failed call to cuInit", "oneDNN supports DT_INT64 only",
         "All log messages before absl::InitializeLog()")
STEP_LINE = re.compile(r"\] step (\d+)/(\d+) .* ETA (\d+) s")


class Progress:
  """A progress line: redrawn in place on a terminal; elsewhere printed once, when done."""

  def __init__(self, total, unit):
    self.total, self.unit, self.started = total, unit, time.perf_counter()
    self.tty = sys.stdout.isatty()

  def _line(self, done, note):
    seconds = time.perf_counter() - self.started
    if not self.total:
      return f"   [{seconds:4.0f} s] {note}"
    filled = int(30 * min(done, self.total) / self.total)
    return (f"   [{'#' * filled}{'.' * (30 - filled)}] {int(done)}/{self.total} {self.unit} "
            f"{seconds:4.0f} s {note}").rstrip()

  def show(self, done, note=""):
    if self.tty:
      sys.stdout.write("\r\033[K" + self._line(done, note))
      sys.stdout.flush()

  def message(self, text):
    """A line above the bar (a warning a program printed)."""
    sys.stdout.write(("\r\033[K" if self.tty else "") + text + "\n")
    sys.stdout.flush()

  def finish(self, done, note=""):
    sys.stdout.write(("\r\033[K" if self.tty else "") + self._line(done, note) + "\n")
    sys.stdout.flush()


def needs_attention(line):
  return bool(ATTENTION.search(line)) and not any(noise in line for noise in NOISE)


def display(module, args):
  return "$ " + " ".join(shlex.quote(c) for c in ["python", "-m", module, *args])


class Runner:
  """Runs the programs as a user would, from the repository root; their output goes to the log."""

  def __init__(self, log_path, env):
    self.log_path, self.env = log_path, env
    self.log = open(log_path, "a", encoding="utf-8")  # pylint: disable=consider-using-with
    self.shown = set()   # warnings already on the terminal (parallel runs repeat theirs)

  def _attention(self, line, progress):
    message = line.split("] ", 1)[-1].strip()
    if needs_attention(line) and message not in self.shown:
      self.shown.add(message)
      progress.message(line.rstrip())

  def _start(self, module, args, stdout):
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, env=self.env,
                            stdout=stdout, stderr=subprocess.STDOUT, text=True, errors="replace")

  def _failed(self, module, returncode, lines):
    tail = "".join(lines[-15:])
    raise SystemExit(f"{tail}\n{module} failed (exit {returncode}); its output is in "
                     f"{self.log_path}")

  def run(self, module, *args, unit="steps"):
    """One program with a progress bar: its `step N/M ... ETA s` lines give the position, which
    moves on at the last rate between them (the programs log every 30 s)."""
    print(display(module, args), flush=True)
    self.log.write(f"\n{display(module, args)}\n")
    process = self._start(module, args, subprocess.PIPE)
    lines, output = queue.Queue(), []
    reader = threading.Thread(
        target=lambda: [lines.put(text) for text in process.stdout] + [lines.put(None)], daemon=True)
    reader.start()
    progress, position = Progress(None, unit), None   # (step, total, steps/s, at)
    while True:
      try:
        line = lines.get(timeout=0.5)
      except queue.Empty:
        line = ""
      if line is None:
        break
      if line:
        output.append(line)
        self.log.write(line)
        self._attention(line, progress)
        match = STEP_LINE.search(line)
        if match:
          step, total, eta = (int(g) for g in match.groups())
          progress.total = total
          position = (step, total, (total - step) / max(eta, 1), time.perf_counter())
      if position:
        step, total, rate, at = position
        progress.show(min(step + rate * (time.perf_counter() - at), max(step, total - 1)))
      else:
        progress.show(0)
    self.log.flush()
    returncode = process.wait()
    if returncode:
      progress.finish(position[0] if position else 0, "failed")
      self._failed(module, returncode, output)
    progress.finish(progress.total or 0, "done")

  def run_many(self, jobs, parallel):
    """Programs [(module, args, log_file)] `parallel` at a time, one bar over all of them; each
    one's output goes to its log_file, then to the log. Returns when all have finished."""
    pending, running, done = list(jobs), [], 0
    progress = Progress(len(jobs), "runs")
    while pending or running:
      while pending and len(running) < parallel:
        module, args, log_file = pending.pop(0)
        os.makedirs(os.path.dirname(log_file), exist_ok=True)
        handle = open(log_file, "w", encoding="utf-8")  # pylint: disable=consider-using-with
        running.append((module, args, self._start(module, args, handle), handle, log_file))
      for item in list(running):
        module, args, process, handle, log_file = item
        if process.poll() is None:
          continue
        handle.close()
        running.remove(item)
        done += 1
        with open(log_file, encoding="utf-8", errors="replace") as f:
          output = f.readlines()
        self.log.write(f"\n{display(module, args)}\n(output also in {log_file})\n" +
                       "".join(output))
        self.log.flush()
        for line in output:
          self._attention(line, progress)
        if process.returncode:
          for other in running:
            other[2].kill()
          progress.finish(done, "failed")
          self._failed(module, process.returncode, output)
      progress.show(done)
      time.sleep(0.2)
    progress.finish(done, "done")


def read_results(path):
  """eval_results.txt (`key = value` lines) as {key: float}."""
  if str(path).startswith("gs://"):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    text = tf.io.gfile.GFile(path).read()
  else:
    text = pathlib.Path(path).read_text(encoding="utf-8")
  return {key.strip(): float(value) for key, value in
          (line.split("=", 1) for line in text.splitlines() if "=" in line)}


def read_labels(path):
  return [line.rstrip("\n").split("\t")[1] for line in open(path, encoding="utf-8")][1:]


def majority_accuracy(train_file, dev_file):
  """Dev accuracy of always answering the training set's most frequent label."""
  train, dev = read_labels(train_file), read_labels(dev_file)
  majority = max(sorted(set(train)), key=train.count)
  return dev.count(majority) / len(dev)


def hardware_flags(args):
  if args.tpu:
    return ["--use_tpu", f"--tpu_name={args.tpu}", "--precision=mixed_bfloat16"]
  if args.gpu:
    return [f"--num_gpus={args.gpu}", "--precision=mixed_float16"]
  return []


def learning_curve_table(curve, seeds):
  """Terminal lines: per label budget the accuracy of every seed for both models, and the gap."""
  seed_names = " ".join(f"{s:>5}" for s in seeds)
  lines = [f"  labelled   pretrained (seed {seed_names})   from scratch (seed {seed_names})   "
           "gap (median)"]
  for point in curve:
    pretrained, scratch = point["pretrained_accuracy"], point["scratch_accuracy"]
    row = f"  {point['labelled_examples']:8d}   {'':16s}" + " ".join(f"{a:5.3f}" for a in pretrained)
    if scratch:
      gap = 100 * (statistics.median(pretrained) - statistics.median(scratch))
      row += f"   {'':18s}" + " ".join(f"{a:5.3f}" for a in scratch) + f"   {gap:+5.1f} points"
    lines.append(row)
  return lines


def plot_learning_curve(curve, majority, path):
  """learning_curve.png: dev accuracy against labelled sentences, every seed and the median."""
  try:
    import matplotlib  # pylint: disable=import-outside-toplevel
  except ImportError:
    return None
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  budgets = [p["labelled_examples"] for p in curve]
  fig, ax = plt.subplots(figsize=(6.4, 4.2))
  for key, name, color in (("pretrained_accuracy", "pretrained", "tab:blue"),
                           ("scratch_accuracy", "from scratch", "tab:orange")):
    if not curve[0][key]:
      continue
    for budget, point in zip(budgets, curve):
      ax.scatter([budget] * len(point[key]), point[key], color=color, alpha=0.35, s=18)
    ax.plot(budgets, [statistics.median(p[key]) for p in curve], color=color, marker="o",
            label=f"{name} (median of {len(curve[0][key])} seeds; dots: each seed)")
  ax.axhline(majority, color="grey", linestyle="--", linewidth=1, label="majority class")
  ax.set_xscale("log", base=2)
  ax.set_xticks(budgets, [str(b) for b in budgets])
  ax.set_ylim(0.3, 1.02)
  ax.set_xlabel("labelled training sentences")
  ax.set_ylabel("sentiment dev accuracy")
  ax.set_title("What pretraining buys: the same tiny BERT, pretrained or not", fontsize=10)
  ax.legend(fontsize=8, loc="lower right")
  ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def clean(local):
  """Removes what an earlier demo left in the folder (the programs would resume from it)."""
  for name in ("data", "vocab.txt", "scratch_model", "pretraining", "pretrain", "classifier",
               "demo.log", "summary.json", "learning_curve.png"):
    path = local / name
    if path.is_dir():
      shutil.rmtree(path)
    else:
      path.unlink(missing_ok=True)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--output_dir", default=str(ROOT / "runs" / "demo"))
  parser.add_argument("--small", action="store_true",
                      help="one label budget (6 fine-tuning runs instead of 18; the test's size)")
  parser.add_argument("--gpu", type=int, default=0, help="GPUs to train on")
  parser.add_argument("--tpu", default=None, help="Cloud TPU name (needs a gs:// --output_dir)")
  parser.add_argument("--jobs", type=int, default=2,
                      help="fine-tuning runs at a time on CPU (each is mostly start-up)")
  parser.add_argument("--skip_baseline", action="store_true",
                      help="do not fine-tune the from-scratch model for comparison")
  args = parser.parse_args(argv)
  size = SIZES["small" if args.small else "default"]
  if args.tpu and not args.output_dir.startswith("gs://"):
    raise SystemExit("--tpu needs --output_dir on gs:// (a TPU reads only from Cloud Storage)")
  # Data and vocabulary are made on this machine; with a TPU they are copied to the bucket.
  local = pathlib.Path(args.output_dir if not args.tpu else ROOT / "runs" / "demo_local")
  out = args.output_dir.rstrip("/")
  local.mkdir(parents=True, exist_ok=True)
  clean(local)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
  runner = Runner(local / "demo.log", env)
  started = time.perf_counter()
  hardware = hardware_flags(args)
  print(f"bert_tf demo: what pretraining buys. Programs' logs: {local / 'demo.log'}")

  print("\n== 1. Demo data from the project's templates", flush=True)
  from scripts import demo_data  # pylint: disable=import-outside-toplevel
  corpus = demo_data.write_corpus(str(local / "data" / "corpus.txt"), size["documents"])
  sentiment = local / "data" / "sentiment"
  tasks = demo_data.write_sentiment(str(sentiment), size["budgets"], SEEDS)
  lines = sum(1 for line in open(corpus, encoding="utf-8") if line.strip())
  labelled = demo_data.LABELLED_WORDS
  print(f"corpus: {size['documents']} documents, {lines} sentences, "
        f"{os.path.getsize(corpus) / 1e6:.1f} MB -> {corpus}")
  print(f"sentiment task -> {sentiment}\n"
        f"  labelled sets of {', '.join(map(str, size['budgets']))} sentences (seeds "
        f"{', '.join(map(str, SEEDS))}) with only {', '.join(demo_data.POSITIVE[:labelled])} / "
        f"{', '.join(demo_data.NEGATIVE[:labelled])}\n"
        f"  dev: {len(read_labels(sentiment / 'dev.tsv'))} sentences, half of them with words no "
        f"labelled sentence has ({', '.join(demo_data.POSITIVE[labelled:labelled + 3])}, ... / "
        f"{', '.join(demo_data.NEGATIVE[labelled:labelled + 3])}, ...), all in the corpus")

  print("\n== 2. WordPiece vocabulary", flush=True)
  vocab_file = local / "vocab.txt"
  runner.run("pretraining.build_vocab", f"--input_file={corpus}", f"--output_file={vocab_file}",
             "--vocab_size=2000", "--do_lower_case", "--num_unused=99", "--min_count=2")
  vocab = vocab_file.read_text(encoding="utf-8").splitlines()
  opinion = demo_data.POSITIVE + demo_data.NEGATIVE
  print(f"{len(vocab)} tokens -> {vocab_file}; {sum(w in vocab for w in opinion)} of the "
        f"{len(opinion)} opinion words are whole tokens")
  config = json.loads(DEMO_CONFIG.read_text())
  config["vocab_size"] = len(vocab)
  model_dir = local / "scratch_model"          # the untrained model: config + vocabulary
  model_dir.mkdir(exist_ok=True)
  (model_dir / "bert_config.json").write_text(json.dumps(config, indent=2))
  shutil.copy(vocab_file, model_dir / "vocab.txt")
  print(f"model: L={config['num_hidden_layers']} H={config['hidden_size']} "
        f"A={config['num_attention_heads']} -> {model_dir / 'bert_config.json'}")

  print("\n== 3. Pretraining records (whole word masking, masked LM + next sentence)", flush=True)
  records = local / "pretraining" / "records.tfrecord"
  runner.run("pretraining.create_pretraining_data", f"--input_file={corpus}",
             f"--output_file={records}", f"--vocab_file={vocab_file}", "--do_lower_case",
             "--do_whole_word_mask", "--max_seq_length=64", "--max_predictions_per_seq=10",
             "--dupe_factor=3", "--num_shards=4")
  shards = sorted(records.parent.glob("records.tfrecord-*"))
  print(f"{len(shards)} shards, {sum(p.stat().st_size for p in shards) / 1e6:.1f} MB -> "
        f"{records}-*")
  if args.tpu:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    for path in local.rglob("*"):
      if path.is_file():
        tf.io.gfile.makedirs(os.path.dirname(f"{out}/{path.relative_to(local)}"))
        tf.io.gfile.copy(str(path), f"{out}/{path.relative_to(local)}", overwrite=True)
  remote = (lambda p: f"{out}/{pathlib.Path(p).relative_to(local)}") if args.tpu else str

  print("\n== 4. Pretraining (LAMB) and export as an original checkpoint", flush=True)
  pretrain_dir = f"{out}/pretrain"
  steps = size["steps"]
  runner.run("pretraining.run_pretraining",
             f"--bert_config_file={remote(model_dir / 'bert_config.json')}",
             f"--vocab_file={remote(vocab_file)}", f"--input_file={remote(records)}*",
             f"--output_dir={pretrain_dir}", "--do_train", "--do_eval", "--optimizer=lamb",
             f"--learning_rate={PRETRAIN_LEARNING_RATE}", "--train_batch_size=64",
             "--eval_batch_size=64", "--max_seq_length=64", "--max_predictions_per_seq=10",
             f"--num_train_steps={steps}", f"--num_warmup_steps={steps // 10}",
             "--iterations_per_loop=50", f"--save_checkpoints_steps={steps}",
             "--max_eval_steps=20", *hardware)
  pretrain = read_results(f"{pretrain_dir}/eval_results.txt")
  print(f"masked LM accuracy {pretrain['masked_lm_accuracy']:.3f} (loss "
        f"{pretrain['masked_lm_loss']:.3f}), next sentence accuracy "
        f"{pretrain['next_sentence_accuracy']:.3f} -> {pretrain_dir}/export")

  print("\n== 5. Fine-tuning on few labelled sentences: pretrained and from scratch", flush=True)
  starts = {"pretrained": f"{pretrain_dir}/export"}
  if not args.skip_baseline:
    starts["from_scratch"] = remote(model_dir)
  jobs, result_files = [], {}
  showcase = ("pretrained", LABEL_BUDGET, SEEDS[0])   # the run that also predicts and exports
  for budget in size["budgets"]:
    for seed in SEEDS:
      for start, model in starts.items():
        name = f"{start}_{budget}_seed{seed}"
        run_dir = f"{out}/classifier/{name}"
        full = (start, budget, seed) == showcase
        flags = ["--task_name=generic", f"--data_dir={remote(tasks[budget, seed])}",
                 "--text_a_column=text", "--label_column=label", f"--model_dir={model}",
                 f"--output_dir={run_dir}", "--do_train", "--do_eval",
                 *(["--do_predict"] if full else ["--export_saved_model=false"]),
                 "--max_seq_length=32", f"--train_batch_size={FINETUNE['batch']}",
                 "--eval_batch_size=100", "--predict_batch_size=100",
                 f"--learning_rate={FINETUNE['learning_rate']}",
                 f"--num_train_epochs={FINETUNE['steps'] * FINETUNE['batch'] / budget:g}",
                 f"--seed={seed}", "--iterations_per_loop=10", "--save_checkpoints_steps=1000",
                 *hardware]
        job = ("finetuning.run_classifier", flags, str(local / "classifier" / f"{name}.log"))
        jobs.insert(0, job) if full else jobs.append(job)  # pylint: disable=expression-not-assigned
        result_files[start, budget, seed] = f"{run_dir}/eval_results.txt"
  print(display(*jobs[0][:2]))
  budgets = len(size["budgets"])
  print(f"   ... {len(jobs)} runs like this one: {budgets} label budget{'s' * (budgets > 1)} x "
        f"{len(SEEDS)} seeds x {len(starts)} starts ({' / '.join(starts)}), "
        f"{FINETUNE['steps']} steps of batch {FINETUNE['batch']} each; command lines in the log",
        flush=True)
  runner.run_many(jobs, parallel=1 if (args.tpu or args.gpu) else max(1, args.jobs))

  curve = []
  for budget in size["budgets"]:
    point = {"labelled_examples": budget}
    for start in ("pretrained", "from_scratch"):
      key = "pretrained_accuracy" if start == "pretrained" else "scratch_accuracy"
      point[key] = [read_results(result_files[start, budget, s])["eval_accuracy"]
                    for s in SEEDS] if start in starts else []
    point["majority_accuracy"] = [
        majority_accuracy(os.path.join(tasks[budget, s], "train.tsv"), sentiment / "dev.tsv")
        for s in SEEDS]
    curve.append(point)
  headline = next(p for p in curve if p["labelled_examples"] == LABEL_BUDGET)
  majority = statistics.median(headline["majority_accuracy"])
  plot = plot_learning_curve(curve, majority, local / "learning_curve.png")
  seconds = time.perf_counter() - started

  print("\n== Summary", flush=True)
  print(f"pretraining: masked LM accuracy {pretrain['masked_lm_accuracy']:.3f}, next sentence "
        f"accuracy {pretrain['next_sentence_accuracy']:.3f}")
  print(f"sentiment dev accuracy ({len(read_labels(sentiment / 'dev.tsv'))} sentences, half with "
        "opinion words no labelled sentence has):")
  print("\n".join(learning_curve_table(curve, SEEDS)))
  pretrained, scratch = headline["pretrained_accuracy"], headline["scratch_accuracy"]
  if scratch:
    gap = 100 * (statistics.median(pretrained) - statistics.median(scratch))
    ahead = sum(p > s for p, s in zip(pretrained, scratch))
    print(f"with {LABEL_BUDGET} labelled sentences the pretrained model is {gap:+.1f} points "
          f"ahead of the same model from scratch (median of {len(SEEDS)} seeds), ahead on "
          f"{ahead} of {len(SEEDS)} seeds; majority class {majority:.3f}")
  if plot:
    print(f"learning curve: {plot}")
  print("artefacts:")
  showcase_dir = f"{out}/classifier/{'_'.join(map(str, showcase[:2]))}_seed{showcase[2]}"
  for name, path in [("data", local / "data"), ("vocabulary", vocab_file),
                     ("pretraining records", f"{records}-*"),
                     ("pretraining run (checkpoints, TensorBoard in train/)", pretrain_dir),
                     ("pretrained model, original format", f"{pretrain_dir}/export"),
                     ("fine-tuning runs (eval_results.txt each)", f"{out}/classifier"),
                     ("test_results.tsv and raw-text SavedModel", showcase_dir),
                     ("the programs' logs", local / "demo.log")]:
    print(f"  {name:55s} {path}")
  print(f"\ndone in {seconds:.0f} s")
  # For benchmarks/run_all.py's report (written last: its presence means the run completed).
  summary = {"size": "small" if args.small else "default", "seconds": round(seconds, 1),
             "masked_lm_accuracy": pretrain["masked_lm_accuracy"],
             "next_sentence_accuracy": pretrain["next_sentence_accuracy"],
             "pretraining_steps": steps, "seeds": list(SEEDS), "label_budget": LABEL_BUDGET,
             "pretrained_accuracy": pretrained, "scratch_accuracy": scratch,
             "majority_accuracy": headline["majority_accuracy"],
             "dev_sentences": len(read_labels(sentiment / "dev.tsv")),
             "finetuning": FINETUNE, "learning_curve": curve}
  (local / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
  return summary


if __name__ == "__main__":
  main()
