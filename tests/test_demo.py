"""The README's first command runs the demo pipeline: here at its small size, end to end."""
import json
import re
import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.mark.slow
def test_demo_pipeline_end_to_end_pretraining_beats_scratch(tmp_path):
  """--small: pretrained ahead of the same model from scratch on every seed, both models' figures
  read from the programs' own eval_results.txt. Mutation caught (run): fine-tuning the
  "pretrained" runs from the untrained model folder gives the same accuracies as from scratch
  ([0.6775, 0.72, 0.7525] twice) and fails the per-seed assertion."""
  proc = subprocess.run([sys.executable, "-m", "scripts.demo", "--small", f"--output_dir={tmp_path}"],
                        cwd=ROOT, capture_output=True, text=True, timeout=1200)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  out = proc.stdout
  for command in ("pretraining.build_vocab", "pretraining.create_pretraining_data",
                  "pretraining.run_pretraining", "finetuning.run_classifier"):
    assert f"$ python -m {command}" in out
  # The terminal shows the stages, not TensorFlow's INFO lines: those are in the log it names.
  assert not re.search(r"^I\d{4} ", out + proc.stderr, re.M), out[:2000]
  assert f"logs: {tmp_path / 'demo.log'}" in out
  assert re.search(r"^I\d{4} .*\] step \d+/\d+", (tmp_path / "demo.log").read_text(), re.M)

  summary = json.loads((tmp_path / "summary.json").read_text())
  pretrained, scratch = summary["pretrained_accuracy"], summary["scratch_accuracy"]
  assert len(pretrained) == len(scratch) == len(summary["seeds"]) == 3
  for seed, budget_pretrained, budget_scratch in zip(summary["seeds"], pretrained, scratch):
    run = f"{summary['label_budget']}_seed{seed}/eval_results.txt"
    for accuracy, start in ((budget_pretrained, "pretrained"), (budget_scratch, "from_scratch")):
      text = (tmp_path / "classifier" / f"{start}_{run}").read_text()
      assert f"eval_accuracy = {accuracy}" in text
  assert all(p > s for p, s in zip(pretrained, scratch)), (pretrained, scratch)
  assert all(p > m + 0.1 for p, m in zip(pretrained, summary["majority_accuracy"]))
  assert [p["labelled_examples"] for p in summary["learning_curve"]] == [summary["label_budget"]]
  assert "points ahead of the same model from scratch" in out
  for name in ("vocab.txt", "data/corpus.txt", "learning_curve.png",
               "pretrain/export/bert_model.ckpt.index", "pretrain/eval_results.txt",
               "classifier/pretrained_32_seed1/test_results.tsv",
               "classifier/pretrained_32_seed1/saved_model/saved_model.pb"):
    assert (tmp_path / name).is_file(), name
  assert list((tmp_path / "pretraining").glob("records.tfrecord-*-of-00004"))


def _rows(path):
  return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()[1:]]


def test_demo_data_labelled_sets_never_show_the_held_out_words(tmp_path):
  """Checked against the word lists by plain string search: a labelled sentence holds a labelled
  opinion word of its label's polarity and no other opinion word; half the dev sentences hold a
  held-out word; a seed's smaller set is a prefix of its larger one; labels balanced. Mutation
  caught: drawing the labelled sets from every opinion word."""
  from scripts import demo_data
  first = demo_data.write_corpus(str(tmp_path / "a.txt"), 50)
  second = demo_data.write_corpus(str(tmp_path / "b.txt"), 50)
  corpus = open(first, encoding="utf-8").read()
  assert corpus == open(second, encoding="utf-8").read()
  k = demo_data.LABELLED_WORDS
  words = {"positive": demo_data.POSITIVE, "negative": demo_data.NEGATIVE}
  assert all(f" {word} " in corpus for word in demo_data.POSITIVE + demo_data.NEGATIVE)
  folders = demo_data.write_sentiment(str(tmp_path / "sentiment"), [8, 16], [1, 2], dev=100)
  assert sorted(folders) == [(8, 1), (8, 2), (16, 1), (16, 2)]

  def opinion_words(text):
    return [(label, i) for label, ws in words.items() for i, w in enumerate(ws) if f" {w} ." in text]

  for (budget, seed), folder in folders.items():
    rows = _rows(tmp_path / "sentiment" / folder / "train.tsv")
    assert len(rows) == budget
    assert [label for _, label in rows].count("positive") == budget // 2
    for text, label in rows:
      assert [(found, i < k) for found, i in opinion_words(text)] == [(label, True)], text
  assert _rows(tmp_path / "sentiment" / folders[16, 1] / "train.tsv")[:8] == \
      _rows(tmp_path / "sentiment" / folders[8, 1] / "train.tsv")
  assert _rows(tmp_path / "sentiment" / folders[16, 1] / "train.tsv") != \
      _rows(tmp_path / "sentiment" / folders[16, 2] / "train.tsv")
  dev = _rows(tmp_path / "sentiment" / "dev.tsv")
  assert dev == _rows(tmp_path / "sentiment" / folders[8, 2] / "dev.tsv")
  found = [opinion_words(text) for text, _ in dev]
  assert all(len(f) == 1 and f[0][0] == label for f, (_, label) in zip(found, dev))
  assert sum(f[0][1] >= k for f in found) == len(dev) // 2
  assert [label for _, label in dev].count("positive") == len(dev) // 2
