"""The real-data switch of tests/conftest.py: a missing ../shared/data skips a test in a user's
plain run and fails it when BERT_TF_REQUIRE_SHARED_DATA=1 (set by .ci/run), so that CI cannot
pass on skips. Mutation caught: missing_data skipping whatever the variable says."""
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.mark.parametrize("require,outcome", [(None, "1 skipped"), ("1", "1 failed"),
                                             ("0", "1 skipped")])
def test_missing_shared_data_skips_or_fails(tmp_path, require, outcome):
  shutil.copy(ROOT / "tests" / "conftest.py", tmp_path / "conftest.py")
  (tmp_path / "test_needs_data.py").write_text(
      "from conftest import shared_path\n\n"
      "def test_needs_data():\n"
      "  shared_path('squad/expmrc-squad-dev.json')\n")
  env = dict(os.environ, BERT_TF_SHARED_DATA=str(tmp_path / "absent"))
  env.pop("BERT_TF_REQUIRE_SHARED_DATA", None)
  if require is not None:
    env["BERT_TF_REQUIRE_SHARED_DATA"] = require
  result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rsf", "-p", "no:cacheprovider",
                           str(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
  assert outcome in result.stdout, result.stdout[-2000:]
  assert "expmrc-squad-dev.json is absent" in result.stdout
  if require == "1":
    assert "BERT_TF_REQUIRE_SHARED_DATA is set" in result.stdout
