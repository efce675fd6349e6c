"""The README's first command runs the demo: here at its own size, end to end."""
import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
  proc = subprocess.run([sys.executable, "-m", "scripts.demo", f"--output_dir={tmp_path}"],
                        cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
  assert "FastTokenizer ids == FullTokenizer ids on every sentence" in proc.stdout
  assert "reloaded outputs identical: True" in proc.stdout
  assert "instances from 8 documents" in proc.stdout and "{[MASK]->" in proc.stdout
  for name in ("vocab.txt", "model/bert_config.json", "model/vocab.txt", "model/bert_model.ckpt.index",
               "pretraining/demo.tfrecord"):
    assert (tmp_path / name).is_file(), name
