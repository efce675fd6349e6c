"""The inspection program: decoded examples and statistics that match the records."""
import json
import subprocess
import sys

import numpy as np

from conftest import ROOT
from original_reference import original_decode
from pretraining import local_runner
from pretraining.generation import GenerationOptions


def test_inspection_program(tmp_path, pretraining_vocab):
  corpus = tmp_path / "c.txt"
  corpus.write_text("\n\n".join("hello world\nthe quick brown fox\njumps over the lazy dog\n"
                                "我们爱北京天安门" for _ in range(30)), encoding="utf-8")
  out = tmp_path / "o.tfrecord"
  local_runner.run(GenerationOptions(vocab_file=pretraining_vocab, max_seq_length=20,
                                     max_predictions_per_seq=4, dupe_factor=3),
                   str(corpus), str(out), num_shards=2, num_workers=1, show_progress=False)
  result = subprocess.run([sys.executable, "-m", "pretraining.inspect_pretraining_data",
                           f"--input_file={out}*", f"--vocab_file={pretraining_vocab}",
                           "--num_examples=2"], cwd=ROOT, capture_output=True, text=True)
  assert result.returncode == 0, result.stderr[-2000:]
  text = result.stdout
  assert text.count("--- instance") == 2 and "[CLS]" in text and "->" in text
  summary = json.loads(text.split("--- summary")[1])
  records = original_decode(sorted(map(str, tmp_path.glob("o.tfrecord-*"))), 20, 4)
  lengths = records["input_mask"].sum(axis=1)
  assert summary["instances"] == len(lengths)
  assert summary["max_seq_length"] == 20 and summary["max_predictions_per_seq"] == 4
  assert np.isclose(summary["mean_real_length"], lengths.mean())
  assert np.isclose(summary["random_next_fraction"], records["next_sentence_labels"].mean())
  assert np.isclose(summary["mean_predictions"], records["masked_lm_weights"].sum(axis=1).mean())
  assert abs(summary["masked_as_mask"] + summary["masked_random"] + summary["masked_unchanged"] - 1) < 1e-9
