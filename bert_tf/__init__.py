"""bert_tf: Google's BERT for TensorFlow 2 / Keras 3.

Public names are imported lazily, so `from bert_tf import FullTokenizer` does not build Keras
layers, while `import bert_tf` still checks the installed stack at once.
"""
import importlib

from bert_tf._versions import check_versions

__version__ = "0.1.0"
check_versions()

_EXPORTS = {
    "BertConfig": "bert_tf.config",
    "BertConfigError": "bert_tf.config",
    "FullTokenizer": "bert_tf.tokenization",
    "FastTokenizer": "bert_tf.fast_tokenizer",
    "BertEncoder": "bert_tf.encoder",
    "BertPretrainer": "bert_tf.pretrainer",
    "load_original_checkpoint": "bert_tf.checkpoint.original",
    "save_original_checkpoint": "bert_tf.checkpoint.original",
    "slim_original_checkpoint": "bert_tf.checkpoint.original",
    "CheckpointMismatchError": "bert_tf.checkpoint.original",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
  if name in _EXPORTS:
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
  raise AttributeError(f"module 'bert_tf' has no attribute {name!r}")


def __dir__():
  return sorted(list(globals()) + __all__)
