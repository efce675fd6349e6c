"""Import-time check of the TensorFlow stack.

The most common breakage reported by users of TF2 BERT stacks is a skewed install: a
tensorflow-text built for another TensorFlow minor (undefined-symbol errors deep in an op), or
Keras 2 (tf-keras) picked up where Keras 3 is expected. We check once, at import, and say what to
install instead of letting an obscure error surface later.
"""
import importlib.metadata
import os

SUPPORTED_TF_MINOR = (2, 20)
INSTALL_HINT = 'pip install "tensorflow==2.20.*" "tensorflow-text==2.20.*" "keras>=3.10,<4"'


class VersionSkewError(ImportError):
  """Raised when installed package versions cannot work together."""


def _minor(version):
  parts = version.split(".")
  return int(parts[0]), int(parts[1])


def _installed(name):
  try:
    return importlib.metadata.version(name)
  except importlib.metadata.PackageNotFoundError:
    return None


def check_versions():
  """Raises VersionSkewError naming the offending package, or returns the versions found."""
  tf_version = _installed("tensorflow") or _installed("tensorflow-cpu")
  if tf_version is None:
    raise VersionSkewError(f"bert_tf needs TensorFlow {SUPPORTED_TF_MINOR[0]}.{SUPPORTED_TF_MINOR[1]}; "
                           f"none is installed. Run: {INSTALL_HINT}")
  if _minor(tf_version) != SUPPORTED_TF_MINOR:
    raise VersionSkewError(
        f"bert_tf supports TensorFlow {SUPPORTED_TF_MINOR[0]}.{SUPPORTED_TF_MINOR[1]}.x, found "
        f"{tf_version}. Run: {INSTALL_HINT}")
  text_version = _installed("tensorflow-text")
  if text_version is not None and _minor(text_version) != _minor(tf_version):
    raise VersionSkewError(
        f"tensorflow-text {text_version} does not match TensorFlow {tf_version}: their minor "
        f"versions must be equal (its ops are compiled against one TensorFlow). Run: {INSTALL_HINT}")
  keras_version = _installed("keras")
  if keras_version is None or _minor(keras_version)[0] != 3:
    raise VersionSkewError(f"bert_tf needs Keras 3, found {keras_version}. Run: {INSTALL_HINT}")
  if os.environ.get("TF_USE_LEGACY_KERAS", "0").lower() in ("1", "true"):
    raise VersionSkewError(
        "TF_USE_LEGACY_KERAS is set, which makes tf.keras Keras 2; bert_tf is built on Keras 3. "
        "Unset TF_USE_LEGACY_KERAS (tf-models-official still works: it imports tf_keras itself).")
  return {"tensorflow": tf_version, "tensorflow-text": text_version, "keras": keras_version}
