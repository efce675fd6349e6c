"""The import-time version check names the skewed package and what to install."""
import importlib.metadata

import pytest

from bert_tf import _versions


def _fake(versions, monkeypatch):
  def version(name):
    if versions.get(name) is None:
      raise importlib.metadata.PackageNotFoundError(name)
    return versions[name]
  monkeypatch.setattr(_versions.importlib.metadata, "version", version)


GOOD = {"tensorflow": "2.20.0", "tensorflow-text": "2.20.1", "keras": "3.15.1"}


def test_installed_stack_passes():
  versions = _versions.check_versions()
  assert versions["tensorflow"].startswith("2.20.")


@pytest.mark.parametrize("override,message", [
    ({"tensorflow": "2.19.1"}, "supports TensorFlow 2.20.x, found 2.19.1"),
    ({"tensorflow-text": "2.18.0"}, "tensorflow-text 2.18.0 does not match TensorFlow 2.20.0"),
    ({"keras": "2.15.0"}, "needs Keras 3, found 2.15.0"),
    ({"tensorflow": None}, "none is installed"),
])
def test_skew_is_explained(monkeypatch, override, message):
  _fake(dict(GOOD, **override), monkeypatch)
  with pytest.raises(_versions.VersionSkewError, match=message) as err:
    _versions.check_versions()
  assert "pip install" in str(err.value)


def test_legacy_keras_switch_is_refused(monkeypatch):
  _fake(GOOD, monkeypatch)
  monkeypatch.setenv("TF_USE_LEGACY_KERAS", "1")
  with pytest.raises(_versions.VersionSkewError, match="TF_USE_LEGACY_KERAS"):
    _versions.check_versions()
