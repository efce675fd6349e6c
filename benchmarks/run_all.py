"""Runs every benchmark against its peers and writes one report with plots.

    python -m benchmarks.run_all                   # everything (about 1.7 hours on 2 cores)
    python -m benchmarks.run_all --quick           # every script in its smoke-test size
    python -m benchmarks.run_all --only=classifier,squad
    python -m benchmarks.run_all --collect         # no runs: the report from the results present

Runs the demo pipeline (scripts/demo.py into --demo_dir, default runs/demo; `--only=demo`) and
each benchmark script. Writes into --output_dir (default benchmarks/results): each benchmark's
<name>.md/.json (by the benchmark scripts themselves), REPORT.md (summary table of bert_tf
against the peer for every measured case, the demo's learning curve, then each benchmark's
table), ratios.png (the summary as bars), demo_learning_curve.png (the demo's plot: accuracy of
the pretrained and the from-scratch model against labelled sentences, every seed) and
demo_training.png (the demo's pretraining and fine-tuning loss curves read from its TensorBoard
summaries). With the default --output_dir it also rewrites
the README's generated blocks (between `<!-- run_all:NAME -->` and `<!-- /run_all:NAME -->`:
`summary`, `demo` and each benchmark's name), so every figure there comes from this run.
"""
import argparse
import glob
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import time

from benchmarks.common import RESULTS, machine_info, markdown_table, source_commit

ROOT = pathlib.Path(__file__).resolve().parents[1]
# (result name, module, title)
BENCHMARKS = [
    ("encoder", "benchmarks.bench_encoder", "Encoder forward"),
    ("tokenizer", "benchmarks.bench_tokenizer", "Tokenizers"),
    ("pretraining_data", "benchmarks.bench_pretraining_data", "Pretraining data"),
    ("pretraining_step", "benchmarks.bench_pretraining", "Pretraining step"),
    ("classifier", "benchmarks.bench_classifier", "Classifier fine-tuning"),
    ("squad", "benchmarks.bench_squad", "SQuAD data path"),
    ("inference", "benchmarks.bench_inference", "Inference on real lengths"),
]


def headlines(name, payload):
  """(case, bert_tf figure / peer figure, peer) rows of one benchmark's results."""
  rows = payload.get("rows", [])
  xla = lambda r: ", XLA" if r.get("xla") else ""  # pylint: disable=unnecessary-lambda-assignment
  if name == "encoder":
    return [(f"forward {r['config']}{xla(r)}", r["throughput_vs_best_peer"], "best peer")
            for r in rows if r["implementation"] == "bert_tf" and r.get("throughput_vs_best_peer")]
  if name == "tokenizer":
    if not any("vs_faster_peer" in r for r in rows):  # results written before the thread rows
      return [(r["corpus"], r["speed_vs_full_tokenizer"], "bert_tf FullTokenizer")
              for r in rows if r["implementation"] == "bert_tf FastTokenizer"]
    threads = lambda r: "1 thread" if r["threads"] == 1 else "all cores"  # pylint: disable=unnecessary-lambda-assignment
    # Two rows each: against the faster peer whatever its ids (tf-text's FastBertTokenizer, which
    # differs from the original on some lines), and against the faster peer with the original's ids.
    ours = [r for r in rows if r["implementation"] == "bert_tf FastTokenizer" and "vs_faster_peer" in r]
    return [row for r in ours for row in (
        (f"{r['corpus']}, {threads(r)}", r["vs_faster_peer"], f"faster peer ({r['faster_peer']})"),
        (f"{r['corpus']}, {threads(r)}, exact peers", r.get("vs_faster_exact_peer"),
         f"faster peer with the original's ids ({r.get('faster_exact_peer')})"))
        if row[1]]
  if name == "pretraining_data":
    # Single process against single process, all cores against the reference run as one
    # process per core over the corpus split by documents.
    return [(f"{r['language']} {r['corpus_mb']:.1f} MB{' WWM' if r['whole_word_mask'] else ''}, "
             f"{r.get('mode', 'ours on all cores, reference on one')}", r["speedup"],
             "tf-models create_pretraining_data" + (
                 f" x{r['reference']['processes']}" if r["reference"].get("processes", 1) > 1
                 else "")) for r in rows]
  if name == "pretraining_step":
    # bert_tf as it trains (the ladder's top) and the ladder's start (plain ops), each against
    # the faster peer in the same precision: bf16 by bf16, fp32 by fp32.
    precision = lambda r: "bf16" if r.get("precision") == "mixed_bfloat16" else "fp32"  # pylint: disable=unnecessary-lambda-assignment
    return [(f"{r['implementation']} {r['config']} len {r.get('seq_length', 128)} {precision(r)}"
             f"{xla(r)}", r["vs_faster_peer"], f"faster {precision(r)} peer")
            for r in rows if r["implementation"] in ("bert_tf", "bert_tf plain ops")
            and r.get("vs_faster_peer")]
  if name == "classifier":
    if not any("vs_faster_peer" in r for r in rows):  # results written before the two peers
      return [(f"{r['kind']} {r['config']}{xla(r)}" + (" (Trainer)" if "Trainer" in r["implementation"] else ""),
               r["vs_tf_models"], "tf-models BertClassifier")
              for r in rows if r["implementation"].startswith("bert_tf") and r.get("vs_tf_models")]
    variant = lambda r: r["implementation"][len("bert_tf"):].replace(" Trainer loop", " (Trainer)")  # pylint: disable=unnecessary-lambda-assignment
    return [(f"{r['kind']} {r['config']}{xla(r)}{variant(r)}", r["vs_faster_peer"], r["faster_peer"])
            for r in rows if r["implementation"].startswith("bert_tf") and "vs_faster_peer" in r]
  if name == "inference":
    return [(f"{r['dataset']} {r['seq_length']} {r['config']}{xla(r)}", r["vs_faster_peer"],
             r["faster_peer"]) for r in rows
            if r["implementation"] == "bert_tf" and r.get("vs_faster_peer")]
  if name == "squad":
    return [(f"{r['stage']} {r['dataset']}", r["vs_tf_models"], "tf-models squad_lib")
            for r in rows if r["implementation"] == "bert_tf"]
  return []


def run_benchmark(module, output_dir, quick):
  command = [sys.executable, "-m", module, f"--output_dir={output_dir}"] + (["--quick"] if quick else [])
  return run_command(command)


def run_demo(demo_dir, quick):
  # From scratch: the demo resumes from whatever an earlier run left in its folder.
  shutil.rmtree(demo_dir, ignore_errors=True)
  command = [sys.executable, "-m", "scripts.demo", f"--output_dir={demo_dir}"]
  return run_command(command + (["--small"] if quick else []))


def run_command(command):
  """Runs command; returns (status, seconds, finish time in UTC, commit of the code it ran)."""
  print("$ " + " ".join(command), flush=True)
  commit = source_commit()
  started = time.perf_counter()
  result = subprocess.run(command, cwd=ROOT)
  state = "ok" if result.returncode == 0 else f"failed (exit {result.returncode})"
  return (state, time.perf_counter() - started, time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
          commit)


def _scalars(event_dir, tag):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  points = []
  for path in sorted(glob.glob(os.path.join(event_dir, "events.out.tfevents.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == tag:
          number = (float(tf.make_ndarray(value.tensor)) if value.HasField("tensor")
                    else value.simple_value)
          points.append((event.step, number))
  return sorted(points)


def plot_ratios(rows, path):
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  labels = [f"{bench}: {case}" for bench, case, _, _ in rows]
  ratios = [ratio for _, _, ratio, _ in rows]
  fig, ax = plt.subplots(figsize=(9, 0.28 * len(rows) + 1.2))
  colors = ["tab:green" if r >= 1 else "tab:red" for r in ratios]
  ax.barh(range(len(rows)), ratios, color=colors)
  ax.axvline(1.0, color="black", linewidth=0.8)
  ax.set_yticks(range(len(rows)), labels, fontsize=7)
  ax.invert_yaxis()
  ax.set_xscale("log")
  ax.set_xlabel("bert_tf / peer (higher is better; log scale)")
  ax.set_title("bert_tf against the reference implementations, same machine, same run")
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def plot_demo(demo_dir, path):
  """demo_training.png: the pretraining loss and the fine-tuning losses of the demo's runs at its
  headline label budget and first seed (pretrained and from scratch)."""
  summary = json.loads((pathlib.Path(demo_dir) / "summary.json").read_text())
  run = f"{summary['label_budget']}_seed{summary['seeds'][0]}"
  curves = {"pretraining loss": _scalars(os.path.join(demo_dir, "pretrain", "train"), "loss")}
  for start, name in (("pretrained", "pretrained"), ("from_scratch", "from scratch")):
    curves[f"fine-tuning loss ({name}, {summary['label_budget']} sentences)"] = _scalars(
        os.path.join(demo_dir, "classifier", f"{start}_{run}", "train"), "loss")
  curves = {k: v for k, v in curves.items() if v}
  if not curves:
    return False
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
  for name, points in curves.items():
    ax = axes[0] if name.startswith("pretraining") else axes[1]
    ax.plot([p[0] for p in points], [p[1] for p in points], marker=".", label=name)
  axes[0].set_title("demo: pretraining (MLM + NSP)")
  axes[1].set_title("demo: sentiment fine-tuning")
  for ax in axes:
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return True


def demo_section(demo_dir, out):
  """The demo's learning curve (both models, every seed) and wall time from its summary.json, as
  markdown; copies its plot into `out` as demo_learning_curve.png. None when there is no
  completed demo run."""
  path = pathlib.Path(demo_dir) / "summary.json"
  if not path.exists():
    return None
  demo = json.loads(path.read_text())
  median = lambda values: f"{statistics.median(values):.3f}" if values else "-"  # pylint: disable=unnecessary-lambda-assignment
  each = lambda values: " / ".join(f"{v:.3f}" for v in values) or "-"  # pylint: disable=unnecessary-lambda-assignment
  rows = []
  for point in demo["learning_curve"]:
    pretrained, scratch = point["pretrained_accuracy"], point["scratch_accuracy"]
    gap = (f"{100 * (statistics.median(pretrained) - statistics.median(scratch)):+.1f}"
           if scratch else "-")
    ahead = f"{sum(p > s for p, s in zip(pretrained, scratch))}/{len(pretrained)}" if scratch else "-"
    rows.append([point["labelled_examples"], each(pretrained), median(pretrained), each(scratch),
                 median(scratch), gap, ahead, median(point["majority_accuracy"])])
  seeds = "/".join(map(str, demo["seeds"]))
  text = (f"`scripts/demo.py` ({demo['size']} size), {demo['seconds'] / 60:.1f} min wall time "
          f"on 2 CPU cores: generated corpus -> vocabulary -> whole-word-masked records -> LAMB "
          f"pretraining ({demo['pretraining_steps']} steps: masked-LM accuracy "
          f"{demo['masked_lm_accuracy']:.3f}, next-sentence accuracy "
          f"{demo['next_sentence_accuracy']:.3f}) -> original-format export -> fine-tuning on "
          f"a few labelled sentences, from the pretrained model and from scratch. Sentiment dev "
          f"accuracy ({demo['dev_sentences']} sentences, half with opinion words that only the "
          f"pretraining corpus contains), seeds {seeds}:\n\n" +
          markdown_table(["labelled sentences", f"pretrained (seeds {seeds})", "median",
                          f"from scratch (seeds {seeds})", "median", "gap (points)",
                          "pretrained ahead", "majority class"], rows))
  plot = pathlib.Path(demo_dir) / "learning_curve.png"
  if plot.exists():
    shutil.copy(plot, pathlib.Path(out) / "demo_learning_curve.png")
    text += "\n![demo learning curve](demo_learning_curve.png)\n"
  return text


def record_status(path, status):
  """Merges this invocation's {name: (status, seconds, finished, commit)} into the status file (so a
  report built after `--only` runs still says when every figure was measured); returns the
  merged table in the order demo, then BENCHMARKS."""
  history = json.loads(path.read_text()) if path.exists() else {}
  for name, (state, seconds, finished, commit) in status.items():
    history[name] = {"status": state, "seconds": seconds, "finished": finished, "commit": commit}
  order = ["demo"] + [name for name, _, _ in BENCHMARKS]
  history = {name: history[name] for name in order if name in history}
  if status:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(history, indent=2) + "\n")
    tmp.replace(path)
  return history


def run_table(history, out):
  """[name, status, seconds, finished, commit] per benchmark with results; results older than
  the status file give the start date their own results file records."""
  rows = []
  for name in ["demo"] + [name for name, _, _ in BENCHMARKS]:
    if name in history:
      run = history[name]
      rows.append([name, run["status"], f"{run['seconds']:.0f}", run["finished"],
                   run.get("commit", "not recorded")])
    elif (out / f"{name}.json").exists():
      machine = json.loads((out / f"{name}.json").read_text()).get("machine", {})
      date = machine.get("date", "")
      rows.append([name, "ok (before status.json)", "", f"started {date[:16].replace('T', ' ')}",
                   machine.get("commit", "not recorded")])
  return rows


def readme_block(text, prefix):
  """A report section as the README shows it: without the results file's own `# ` heading (the
  README has its own) and with plots linked from the README's folder (`prefix`/name.png)."""
  text = text.strip()
  if text.startswith("# "):
    text = text.split("\n", 1)[1].strip()
  return re.sub(r"\]\(([^)/:]+\.png)\)", rf"]({prefix}/\1)", text)


def update_readme(readme, blocks):
  """Replaces the text between `<!-- run_all:NAME -->` and `<!-- /run_all:NAME -->` with
  blocks[NAME] for every block present in both; returns the names replaced."""
  text = readme.read_text()
  replaced = []
  for name, body in blocks.items():
    start, end = f"<!-- run_all:{name} -->", f"<!-- /run_all:{name} -->"
    if start in text and end in text:
      head, rest = text.split(start, 1)
      text = f"{head}{start}\n{body.strip()}\n{end}{rest.split(end, 1)[1]}"
      replaced.append(name)
  tmp = readme.with_suffix(".md.tmp")
  tmp.write_text(text)
  tmp.replace(readme)
  return replaced


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--output_dir", default=str(RESULTS))
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--only", default="", help="comma-separated result names to run")
  parser.add_argument("--collect", action="store_true", help="build the report only")
  parser.add_argument("--demo_dir", default=str(ROOT / "runs" / "demo"))
  parser.add_argument("--readme", default=None,
                      help="README to update (default: README.md with the default --output_dir)")
  args = parser.parse_args(argv)
  out = pathlib.Path(args.output_dir)
  out.mkdir(parents=True, exist_ok=True)
  only = args.only.split(",") if args.only else None
  chosen = [b for b in BENCHMARKS if not only or b[0] in only]
  status = {}
  if not args.collect:
    if not only or "demo" in only:
      status["demo"] = run_demo(args.demo_dir, args.quick)
    for name, module, _ in chosen:
      status[name] = run_benchmark(module, out, args.quick)
  summary, sections, blocks = [], [], {}
  for name, _, title in BENCHMARKS:
    json_path, md_path = out / f"{name}.json", out / f"{name}.md"
    if not json_path.exists():
      continue
    payload = json.loads(json_path.read_text())
    for case, ratio, peer in headlines(name, payload):
      summary.append((title, case, ratio, peer))
    text = md_path.read_text().strip() if md_path.exists() else ""
    sections.append(f"## {title}\n\n{text}\n")
    blocks[name] = text
  table = markdown_table(["benchmark", "case", "bert_tf / peer", "peer"],
                         [[t, c, f"{r:.2f}x", p] for t, c, r, p in summary])
  parts = [f"# Benchmark report\n\nMachine: {machine_info()}. Each benchmark measures bert_tf and "
           "its peers in the same run; figures are medians of interleaved repetitions.\n"]
  runs = run_table(record_status(out / "status.json", status), out)
  if runs:
    parts.append("Runs behind these figures (the latest `run_all` invocation of each, and the "
                 "commit of the code it measured):\n\n" +
                 markdown_table(["benchmark", "status", "seconds", "finished (UTC)", "commit"],
                                runs) + "\n")
  parts.append(f"## Summary\n\n{table}\n\n![ratios](ratios.png)\n")
  blocks["summary"] = table
  if summary:
    plot_ratios(summary, out / "ratios.png")
  demo = demo_section(args.demo_dir, out)
  if demo:
    blocks["demo"] = demo
    parts.append(f"## Demo\n\n{demo}\n")
  if demo and plot_demo(args.demo_dir, out / "demo_training.png"):
    parts.append("## Demo training curves\n\n![demo training](demo_training.png)\n")
  parts.extend(sections)
  (out / "REPORT.md").write_text("\n".join(parts))
  print(f"wrote {out / 'REPORT.md'} ({len(summary)} comparisons)")
  readme = pathlib.Path(args.readme) if args.readme else (
      ROOT / "README.md" if out.resolve() == RESULTS.resolve() else None)
  if readme and not args.quick:
    prefix = os.path.relpath(out.resolve(), readme.resolve().parent)
    blocks = {name: readme_block(text, prefix) for name, text in blocks.items()}
    print(f"updated {readme}: {', '.join(update_readme(readme, blocks)) or 'no generated blocks'}")
  failed = [n for n, (s, _, _, _) in status.items() if s != "ok"]
  if failed:
    raise SystemExit(f"benchmarks failed: {', '.join(failed)}")


if __name__ == "__main__":
  main()
