"""File access for local paths and remote ones (gs://, hdfs://, s3:// through tf.io.gfile).

Local paths use Python's own functions so that a process that only plans or checks files
(the main process of a parallel run) need not import TensorFlow, which takes seconds.
"""
import glob as _glob
import os


def _remote(path):
  return "://" in str(path)


def _gfile():
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return tf.io.gfile


def glob(pattern):
  if _remote(pattern):
    return _gfile().glob(pattern)
  return _glob.glob(pattern) if _glob.has_magic(pattern) else (
      [pattern] if os.path.exists(pattern) else [])


def exists(path):
  return _gfile().exists(path) if _remote(path) else os.path.exists(path)


def isdir(path):
  return _gfile().isdir(path) if _remote(path) else os.path.isdir(path)


def size(path):
  return _gfile().stat(path).length if _remote(path) else os.path.getsize(path)


def makedirs(path):
  if path:
    _gfile().makedirs(path) if _remote(path) else os.makedirs(path, exist_ok=True)


def open_file(path, mode="rb"):
  if _remote(path):
    return _gfile().GFile(path, mode)
  return open(path, mode, encoding=None if "b" in mode else "utf-8")


def rename(source, target):
  """Replaces target by source (atomic for local files)."""
  if _remote(source):
    _gfile().rename(source, target, overwrite=True)
  else:
    os.replace(source, target)


def write_text_atomically(path, text):
  temporary = path + ".incomplete"
  with open_file(temporary, "w") as f:
    f.write(text)
  rename(temporary, path)
