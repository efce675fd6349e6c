"""The README's first command runs the demo pipeline: here at its small size, end to end."""
import re
import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.mark.slow
def test_demo_pipeline_end_to_end(tmp_path):
  proc = subprocess.run([sys.executable, "-m", "scripts.demo", "--small", f"--output_dir={tmp_path}"],
                        cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  out = proc.stdout
  for command in ("pretraining.create_pretraining_data", "pretraining.run_pretraining",
                  "finetuning.run_classifier"):
    assert f"$ python -m {command}" in out
  accuracy = re.search(r"sentiment dev accuracy, pretrained\s*: ([0-9.]+) \(majority class ([0-9.]+)\)",
                       out)
  assert accuracy, out[-2000:]
  assert float(accuracy.group(1)) > float(accuracy.group(2)) + 0.1
  for name in ("vocab.txt", "data/corpus.txt", "data/reviews/train.tsv",
               "pretrain/export/bert_model.ckpt.index", "pretrain/eval_results.txt",
               "classifier_pretrained/eval_results.txt", "classifier_pretrained/test_results.tsv",
               "classifier_pretrained/saved_model/saved_model.pb"):
    assert (tmp_path / name).is_file(), name
  assert list((tmp_path / "pretraining").glob("records.tfrecord-*-of-00004"))


def test_demo_data_is_deterministic_and_balanced(tmp_path):
  from scripts import demo_data
  first = demo_data.write_corpus(str(tmp_path / "a.txt"), 50)
  second = demo_data.write_corpus(str(tmp_path / "b.txt"), 50)
  assert open(first, encoding="utf-8").read() == open(second, encoding="utf-8").read()
  demo_data.write_reviews(str(tmp_path / "reviews"), train=200, dev=200, test=10)
  rows = [line.split("\t") for line in
          (tmp_path / "reviews" / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]]
  labels = [label for _, label in rows]
  assert 0.35 < labels.count("positive") / len(labels) < 0.65
  # Negation flips the polarity: every "not <positive word>" is negative.
  for text, label in rows:
    for word in demo_data.POSITIVE:
      if f"not {word} " in text:
        assert label == "negative", text
  held_out = demo_data.POSITIVE[-demo_data.HELD_OUT:] + demo_data.NEGATIVE[-demo_data.HELD_OUT:]
  train = (tmp_path / "reviews" / "train.tsv").read_text(encoding="utf-8")
  assert not any(f" {word} ." in train for word in held_out)
