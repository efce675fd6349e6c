"""Shared test fixtures: the tiny config, the real-data folder, and original-checkpoint builders."""
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Real vocabularies, corpora and task data from the public releases (see its MANIFEST.md). A user's
# fresh clone has no such folder: tests that need it skip with the reason.
SHARED_DATA = pathlib.Path(os.environ.get("BERT_TF_SHARED_DATA", ROOT.parent / "shared" / "data"))


def shared_path(relative):
  """Path of a file under ../shared/data, or pytest.skip with a clear reason when absent."""
  path = SHARED_DATA / relative
  if not path.exists():
    pytest.skip(f"real data file {path} is absent (../shared/data is not part of a fresh clone)")
  return path


@pytest.fixture
def shared_data():
  return shared_path
