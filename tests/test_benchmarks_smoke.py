"""The benchmark scripts run (quick mode) and write well-formed results."""
import json
import os
import subprocess
import sys

import numpy as np
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
  assert len(ours) == 6 and all(r["agreement"] == 1.0 for r in ours)
  # Every tool on one thread (a child process), the ones that can use more on all cores too.
  by_threads = {t: {r["implementation"] for r in rows if r["threads"] == t} for t in (1, os.cpu_count())}
  assert {"bert_tf FastTokenizer", "tf-text FastBertTokenizer", "HF tokenizers BertWordPiece",
          "bert_tf FullTokenizer", "tf-models FullTokenizer"} <= by_threads[1]
  assert "bert_tf FastTokenizer" in by_threads[os.cpu_count()]
  # Every pass counts the ids it produced: the original's count wherever the ids agree.
  # (Mutation caught: RaggedTensor outputs counted by rows instead of ids.)
  assert all(r["ids_counted"] == r["tokens"] for r in rows if r["agreement"] == 1.0)
  for row in (r for r in rows if r["implementation"] == "bert_tf FastTokenizer"):
    peers = [r for r in rows if (r["corpus"], r["threads"]) == (row["corpus"], row["threads"])
             and not r["implementation"].startswith("bert_tf")]
    fastest = max(peers, key=lambda r: r["tokens_per_s"])
    assert row["faster_peer"] == fastest["implementation"]
    assert row["vs_faster_peer"] == pytest.approx(row["tokens_per_s"] / fastest["tokens_per_s"])


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
  shared_path("chinese_corpus/CLUECorpusSmall_bert_sampled.txt")
  _run("benchmarks.bench_pretraining", tmp_path)
  payload = json.loads((tmp_path / "pretraining_step.json").read_text())
  rows = payload["rows"]
  from benchmarks.bench_pretraining import BF16, FP32, LADDER, PEERS
  from benchmarks.run_all import headlines
  assert {(r["implementation"], r["precision"]) for r in rows} == (
      {(name, FP32) for name in (*LADDER, *PEERS)} | {(name, BF16) for name in ("bert_tf", *PEERS)})
  assert all(r["sequences_per_s"] > 0 and 0 < r["mfu"] < 1 for r in rows)
  assert {r["xla"] for r in rows} == {False, True}
  ladder = [r for r in rows if r["ladder"] is not None and r["precision"] == FP32]
  assert [r["implementation"] for r in ladder] == list(LADDER) and not any(r["xla"] for r in ladder)
  # The batch has the padding of real records at length 128 (about a fifth).
  assert all(r["seq_length"] == 128 and 0.1 < r["padding_share"] < 0.3 for r in rows)
  # Ratios divide by the faster peer of the same precision and XLA setting.
  for r in rows:
    same = [p["sequences_per_s"] for p in rows if p["implementation"] in PEERS
            and (p["precision"], p["xla"]) == (r["precision"], r["xla"])]
    assert r["vs_faster_peer"] == pytest.approx(r["sequences_per_s"] / max(same))
  cases = [case for case, _, _ in headlines("pretraining_step", payload)]
  assert "bert_tf tiny len 128 bf16" in cases and "bert_tf plain ops tiny len 128 fp32" in cases


def test_step_batch_has_the_padding_and_predictions_of_real_records():
  """The step benchmark's batch: lengths from records generated from the shared corpus, whose
  padding share the batch keeps; masked positions on real tokens, round(15%) of the length up to
  max_predictions_per_seq. Mutation tried: taking the first batch_size sorted lengths instead of
  evenly spaced quantiles made the padding share differ by far more than 0.03."""
  shared_path("chinese_corpus/CLUECorpusSmall_bert_sampled.txt")
  from benchmarks.bench_pretraining import PREDICTIONS, batch_of, record_lengths
  for seq_length, batch_size in ((128, 32), (512, 8)):
    lengths = record_lengths(seq_length)
    assert lengths.max() <= seq_length and lengths.min() >= 3
    batch = {k: v.numpy() for k, v in batch_of(batch_size, seq_length, 99, lengths).items()}
    real = batch["input_mask"].sum(1)
    assert abs(real.mean() / seq_length - lengths.mean() / seq_length) < 0.03
    counts = (batch["masked_lm_weights"] > 0).sum(1)
    expected = np.minimum(PREDICTIONS[seq_length], np.maximum(1, np.round(real * 0.15)))
    np.testing.assert_array_equal(counts, expected)
    for row, count in enumerate(counts):
      positions = batch["masked_lm_positions"][row]
      assert np.all((positions[:count] >= 1) & (positions[:count] < real[row] - 1))
      assert len(set(positions[:count])) == count and not positions[count:].any()
  # Real records at length 512 are mostly padding, at 128 about a fifth.
  assert 1 - record_lengths(512).mean() / 512 > 0.4
  assert 0.1 < 1 - record_lengths(128).mean() / 128 < 0.3


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
  assert {(r["implementation"], r["kind"], r["xla"]) for r in rows} == {
      (name, kind, xla) for xla in (False, True) for name, kind in (
          ("bert_tf", "train"), ("bert_tf", "eval"), ("bert_tf Trainer loop", "train"),
          ("tf-models BertClassifier", "eval"), ("tf-models BertClassifier, adamw", "train"),
          ("tf-models BertClassifier, adamw_experimental", "train"))} | {
      ("bert_tf, padding computed", kind, False) for kind in ("train", "eval")}
  assert all(r["examples_per_s"] > 0 and r["padding"] == 0.25 for r in rows)
  # Each bert_tf row against the faster tf-models row of its kind and XLA mode.
  for row in (r for r in rows if r["implementation"].startswith("bert_tf")):
    peers = [r for r in rows if r["implementation"].startswith("tf-models") and
             (r["kind"], r["xla"]) == (row["kind"], row["xla"])]
    assert row["vs_faster_peer"] == pytest.approx(
        row["examples_per_s"] / max(r["examples_per_s"] for r in peers))


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
  first = record_status(path, {"encoder": ("ok", 300.0, "2026-01-01 10:00", "abc"),
                              "demo": ("ok", 200.0, "2026-01-01 09:00", "abc")})
  assert list(first) == ["demo", "encoder"]
  second = record_status(path, {"encoder": ("failed (exit 1)", 5.0, "2026-01-01 11:00", "def"),
                                "squad": ("ok", 60.0, "2026-01-01 11:01", "def")})
  assert list(second) == ["demo", "encoder", "squad"]
  assert second["demo"] == first["demo"]
  assert second["encoder"]["status"] == "failed (exit 1)" and second["encoder"]["seconds"] == 5.0
  assert record_status(path, {}) == second  # --collect: reads, writes nothing new
  from benchmarks.run_all import run_table
  (tmp_path / "tokenizer.json").write_text(json.dumps({"machine": {"date": "2026-01-02T03:04:05"}}))
  rows = run_table(second, tmp_path)
  assert [row[0] for row in rows] == ["demo", "encoder", "tokenizer", "squad"]
  assert rows[2] == ["tokenizer", "ok (before status.json)", "", "started 2026-01-02 03:04",
                     "not recorded"]
  assert rows[1][1:] == ["failed (exit 1)", "5", "2026-01-01 11:00", "def"]
  assert rows[0][-1] == "abc"


def test_source_commit_names_head_and_code_changes(tmp_path):
  """The commit a report names: HEAD, marked when tracked code differs from it (a mutant that
  ignores `git status` fails the second assertion), not when only results or prose do."""
  from benchmarks.common import source_commit
  git = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)  # pylint: disable=unnecessary-lambda-assignment
  git("init", "-q")
  (tmp_path / "code.py").write_text("x = 1\n")
  (tmp_path / "README.md").write_text("figures\n")
  git("add", ".")
  git("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "one")
  head = git("rev-parse", "--short=12", "HEAD").stdout.decode().strip()
  assert source_commit(tmp_path) == head
  (tmp_path / "README.md").write_text("new figures\n")
  assert source_commit(tmp_path) == head
  (tmp_path / "code.py").write_text("x = 2\n")
  assert source_commit(tmp_path) == head + " + uncommitted changes"


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


def test_classifier_peer_optimizers_clip_once_at_global_norm_1():
  """tf-models' optimizers as the classifier benchmark builds them clip once, at global norm 1.0.
  Mutations caught: global_clipnorm=1.0 added to 'adamw' (its own gradient_clip_norm clips too);
  the experimental optimizer left as tf_keras builds it (jit_compile off without a GPU)."""
  pytest.importorskip("official")
  from benchmarks.bench_classifier import peer_optimizer
  legacy = peer_optimizer("adamw")
  assert legacy.gradient_clip_norm == 1.0
  assert legacy.global_clipnorm is None and legacy.clipnorm is None
  experimental = peer_optimizer("adamw_experimental")
  assert experimental.global_clipnorm == 1.0 and experimental.clipnorm is None
  assert experimental.jit_compile and experimental.weight_decay == 0.01


@pytest.mark.slow
def test_inference_benchmark_quick(tmp_path):
  """Real SST-2 and CMRC 2018 batches through every side; our skipping path's outputs equal our
  padded ones (the benchmark's own check). Mutation caught: the span check comparing every
  position, padding included (max_abs_diff then about 1e-1: the skipping path gives the head's
  bias there)."""
  shared_path("glue/SST-2/dev.tsv")
  shared_path("cmrc2018/cmrc2018_dev.json")
  _run("benchmarks.bench_inference", tmp_path)
  rows = json.loads((tmp_path / "inference.json").read_text())["rows"]
  assert {r["dataset"] for r in rows} == {"SST-2", "CMRC 2018"}
  assert {r["implementation"] for r in rows} == {"bert_tf", "tf-models", "keras-hub"}
  assert {r["xla"] for r in rows} == {False, True}
  ours = [r for r in rows if r["implementation"] == "bert_tf"]
  assert all(r["max_abs_diff"] < 1e-4 and r["vs_faster_peer"] > 0 for r in ours)
  assert all(0.05 < r["real_token_share"] < 1.0 for r in rows)
  assert "target met" in (tmp_path / "inference.md").read_text()


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
