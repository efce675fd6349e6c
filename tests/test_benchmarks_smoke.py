"""The benchmark scripts run (quick mode) and write well-formed results."""
import json
import subprocess
import sys

import pytest

from conftest import ROOT, shared_path


def _run(module, tmp_path, *flags):
  proc = subprocess.run([sys.executable, "-m", module, "--quick", f"--output_dir={tmp_path}", *flags],
                        cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
  return proc


@pytest.mark.slow
def test_encoder_benchmark_quick(tmp_path):
  _run("benchmarks.bench_encoder", tmp_path)
  rows = json.loads((tmp_path / "encoder.json").read_text())["rows"]
  implementations = {r["implementation"] for r in rows}
  assert implementations == {"bert_tf", "tf-models BertEncoder", "keras-hub BertBackbone"}
  assert {r["xla"] for r in rows} == {False, True}
  assert all(r["sequences_per_s"] > 0 and r["latency_ms_batch1"] > 0 for r in rows)
  assert (tmp_path / "encoder_throughput.png").stat().st_size > 1000


@pytest.mark.slow
def test_tokenizer_benchmark_quick(tmp_path):
  shared_path("vocab/uncased_vocab.txt")
  _run("benchmarks.bench_tokenizer", tmp_path)
  rows = json.loads((tmp_path / "tokenizer.json").read_text())["rows"]
  ours = [r for r in rows if r["implementation"] in ("bert_tf FullTokenizer", "bert_tf FastTokenizer")]
  assert len(ours) == 4 and all(r["agreement"] == 1.0 for r in ours)


def test_flop_count_by_hand():
  from benchmarks.bench_encoder import CONFIGS, forward_flops
  base = forward_flops(CONFIGS["base"], 128)
  by_hand = 12 * (8 * 128 * 768 ** 2 + 4 * 128 * 768 * 3072 + 4 * 128 ** 2 * 768) + 2 * 768 ** 2
  assert base == by_hand
  assert abs(base / 1e9 - 22.3) < 0.05


@pytest.mark.slow
def test_pretraining_data_benchmark_quick(tmp_path):
  shared_path("vocab/uncased_vocab.txt")
  _run("benchmarks.bench_pretraining_data", tmp_path, "--languages=Chinese")
  payload = json.loads((tmp_path / "pretraining_data.json").read_text())
  rows = payload["rows"]
  assert len(rows) == 4 and {r["whole_word_mask"] for r in rows} == {False, True}
  for row in rows:
    # Same flags, same corpus: the instance counts agree up to the random target lengths.
    assert abs(row["ours"]["instances"] / row["reference"]["instances"] - 1) < 0.15
    assert row["ours"]["peak_mb"] > 0 and row["reference"]["seconds"] > 0
  assert (tmp_path / "pretraining_data.png").stat().st_size > 1000


@pytest.mark.slow
def test_pretraining_step_benchmark_quick(tmp_path):
  _run("benchmarks.bench_pretraining", tmp_path)
  rows = json.loads((tmp_path / "pretraining_step.json").read_text())["rows"]
  names = {r["implementation"] for r in rows}
  assert names == {"bert_tf", "bert_tf bf16", "tf-models BertPretrainer", "keras-hub BertBackbone",
                   "bert_tf, padding computed"}
  assert all(r["sequences_per_s"] > 0 and 0 < r["mfu"] < 1 for r in rows)
  assert {r["xla"] for r in rows} == {False, True}
  assert [r["xla"] for r in rows if r["implementation"] == "bert_tf, padding computed"] == [False]


def test_training_flops_by_hand():
  from benchmarks.bench_pretraining import training_flops
  from benchmarks.bench_encoder import CONFIGS, forward_flops
  base = CONFIGS["base"]
  heads = 2 * 20 * 768 * 768 + 2 * 20 * 768 * 30522 + 2 * 768 * 2
  assert training_flops(base) == 3 * (forward_flops(base, 128) + heads)


@pytest.mark.slow
def test_squad_benchmark_quick(tmp_path):
  shared_path("squad")
  _run("benchmarks.bench_squad", tmp_path)
  rows = json.loads((tmp_path / "squad.json").read_text())["rows"]
  assert {(r["implementation"], r["stage"]) for r in rows} == {
      (side, stage) for side in ("bert_tf", "tf-models squad_lib")
      for stage in ("conversion", "post-processing")}
  assert all(r["examples_per_s"] > 0 and r["questions"] == 100 for r in rows)


@pytest.mark.slow
def test_run_all_writes_the_report_and_plots(tmp_path):
  """run_all with the classifier benchmark (quick): the report, the plots and the benchmark's
  rows."""
  proc = subprocess.run([sys.executable, "-m", "benchmarks.run_all", "--quick", "--only=classifier",
                         f"--output_dir={tmp_path}", f"--demo_dir={tmp_path / 'no_demo'}"],
                        cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
  report = (tmp_path / "REPORT.md").read_text()
  assert "| Classifier fine-tuning | train tiny |" in report
  assert "## Classifier fine-tuning" in report and "| classifier | ok |" in report
  assert (tmp_path / "ratios.png").stat().st_size > 5000
  # The classifier benchmark's own results (run once, here, for both checks).
  rows = json.loads((tmp_path / "classifier.json").read_text())["rows"]
  assert {(r["implementation"], r["kind"]) for r in rows} == {
      ("bert_tf", "train"), ("bert_tf", "eval"), ("tf-models BertClassifier", "train"),
      ("tf-models BertClassifier", "eval"), ("bert_tf Trainer loop", "train")}
  assert all(r["examples_per_s"] > 0 for r in rows)


def test_report_headlines_read_every_results_file():
  """The summary understands the results layout of each benchmark that has results here."""
  from benchmarks.run_all import BENCHMARKS, headlines
  from benchmarks.common import RESULTS
  for name, _, _ in BENCHMARKS:
    path = RESULTS / f"{name}.json"
    if path.exists():
      rows = headlines(name, json.loads(path.read_text()))
      assert rows and all(ratio > 0 for _, ratio, _ in rows), name


def test_status_file_keeps_the_latest_run_of_each_benchmark(tmp_path):
  from benchmarks.run_all import record_status
  path = tmp_path / "status.json"
  first = record_status(path, {"encoder": ("ok", 300.0, "2026-01-01 10:00"),
                              "demo": ("ok", 200.0, "2026-01-01 09:00")})
  assert list(first) == ["demo", "encoder"]
  second = record_status(path, {"encoder": ("failed (exit 1)", 5.0, "2026-01-01 11:00"),
                                "squad": ("ok", 60.0, "2026-01-01 11:01")})
  assert list(second) == ["demo", "encoder", "squad"]
  assert second["demo"] == first["demo"]
  assert second["encoder"]["status"] == "failed (exit 1)" and second["encoder"]["seconds"] == 5.0
  assert record_status(path, {}) == second  # --collect: reads, writes nothing new
  from benchmarks.run_all import run_table
  (tmp_path / "tokenizer.json").write_text(json.dumps({"machine": {"date": "2026-01-02T03:04:05"}}))
  rows = run_table(second, tmp_path)
  assert [row[0] for row in rows] == ["demo", "encoder", "tokenizer", "squad"]
  assert rows[2] == ["tokenizer", "ok (before status.json)", "", "started 2026-01-02 03:04"]
  assert rows[1][1:] == ["failed (exit 1)", "5", "2026-01-01 11:00"]


def test_readme_blocks_are_replaced_between_markers(tmp_path):
  from benchmarks.run_all import readme_block, update_readme
  readme = tmp_path / "README.md"
  readme.write_text("a\n<!-- run_all:x -->\nold\n<!-- /run_all:x -->\nb\n"
                    "<!-- run_all:y -->\nkeep\n<!-- /run_all:y -->\n")
  assert update_readme(readme, {"x": "new 1.23x", "z": "absent"}) == ["x"]
  assert readme.read_text() == ("a\n<!-- run_all:x -->\nnew 1.23x\n<!-- /run_all:x -->\nb\n"
                                "<!-- run_all:y -->\nkeep\n<!-- /run_all:y -->\n")
  assert readme_block("# Title\n\ntext\n\n![p](p.png)\n", "benchmarks/results") == (
      "text\n\n![p](benchmarks/results/p.png)")


def test_readme_figures_are_the_results_files():
  """Every generated block of the README equals the results file run_all wrote it from."""
  from benchmarks.run_all import BENCHMARKS, readme_block
  from benchmarks.common import RESULTS
  readme = (ROOT / "README.md").read_text()
  for name, _, _ in BENCHMARKS:
    start, end = f"<!-- run_all:{name} -->", f"<!-- /run_all:{name} -->"
    assert start in readme and end in readme, name
    block = readme.split(start, 1)[1].split(end, 1)[0].strip()
    assert block == readme_block((RESULTS / f"{name}.md").read_text(), "benchmarks/results"), name


def test_demo_section_reports_every_seed_of_both_models_and_the_wall_time(tmp_path):
  """Hand-computed: medians 0.90 / 0.55 -> gap +35.0, pretrained ahead on 2 of 3 seeds (seed 3
  ties). Mutation caught: a table with the medians only (the per-seed cells are missing)."""
  from benchmarks.run_all import demo_section
  point = {"labelled_examples": 32, "pretrained_accuracy": [0.9, 0.95, 0.55],
           "scratch_accuracy": [0.6, 0.5, 0.55], "majority_accuracy": [0.5, 0.5, 0.5]}
  summary = {"size": "default", "seconds": 300.0, "masked_lm_accuracy": 0.8,
             "next_sentence_accuracy": 0.7, "pretraining_steps": 2000, "seeds": [1, 2, 3],
             "label_budget": 32, "dev_sentences": 400,
             "learning_curve": [dict(point, labelled_examples=8), point]}
  demo_dir = tmp_path / "demo"
  demo_dir.mkdir()
  (demo_dir / "summary.json").write_text(json.dumps(summary))
  (demo_dir / "learning_curve.png").write_bytes(b"png")
  text = demo_section(demo_dir, tmp_path)
  assert "5.0 min wall time" in text
  row = "| 32 | 0.900 / 0.950 / 0.550 | 0.900 | 0.600 / 0.500 / 0.550 | 0.550 | +35.0 | 2/3 | 0.500 |"
  assert row in text.splitlines()
  assert "| 8 | 0.900 / 0.950 / 0.550 |" in text
  assert (tmp_path / "demo_learning_curve.png").read_bytes() == b"png"
  assert demo_section(tmp_path / "absent", tmp_path) is None


def test_distinct_pretraining_corpus_repeats_no_line(tmp_path):
  """The data benchmark's English corpus holds every line once, in documents. Mutation caught:
  write_corpus without its seen-set (CoNLL-2003's valid.txt and eng.testa hold the same
  sentences)."""
  shared_path("conll2003/eng.testa")
  from benchmarks.pretraining_corpora import write_corpus
  path = tmp_path / "en.txt"
  size = write_corpus("English", path)
  text = path.read_text(encoding="utf-8")
  lines = [line for line in text.split("\n") if line]
  assert size == path.stat().st_size > 4 * 2**20
  assert len(lines) == len(set(lines)) > 40_000
  assert text.count("\n\n") > 10_000 and "\n\n\n" not in text
