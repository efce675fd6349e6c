"""Writing a small text file so that no reader ever sees it half-written, readable as any file
the user creates (mode 0666 minus the umask, typically 0644), on local paths or gs://.

    write_text_atomically("out/vocab.txt", "\n".join(tokens) + "\n")
"""
import os
import tempfile


def _umask():
  mask = os.umask(0)   # the only portable way to read it: set and restore at once
  os.umask(mask)
  return mask


def write_text_atomically(path, text):
  """Writes `text` (UTF-8) to `path` under a hidden temporary name, then renames it."""
  path = str(path)
  if "://" in path:  # object stores publish a file whole on close
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    with tf.io.gfile.GFile(path, "w") as writer:
      writer.write(text)
    return
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
  try:
    # mkstemp creates 0600 files; what we publish is shared (vocab.txt, bert_config.json).
    os.fchmod(fd, 0o666 & ~_umask())
    with os.fdopen(fd, "w", encoding="utf-8") as writer:
      writer.write(text)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def check_output_dir(path, flag="output_dir"):
  """Creates the output folder `path` (given by --flag) or says why it cannot be used: it is a
  file, cannot be created, or is not writable. Called before any work is done. Remote paths
  (gs://) are left to the writer."""
  from bert_tf.errors import FlagError  # pylint: disable=import-outside-toplevel
  path = str(path)
  if "://" in path:
    return
  if os.path.exists(path) and not os.path.isdir(path):
    raise FlagError(f"--{flag}={path} is a file; expected a folder (or a new name)")
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    raise FlagError(f"--{flag}={path}: the folder cannot be created ({e.strerror})") from None
  if not os.access(path, os.W_OK | os.X_OK):
    raise FlagError(f"--{flag}={path}: the folder is not writable by this user")


def check_output_file(path, flag="output_file"):
  """The folder of output file `path` exists (created if missing) and is writable, and `path`
  itself is not a folder."""
  from bert_tf.errors import FlagError  # pylint: disable=import-outside-toplevel
  path = str(path)
  if "://" in path:
    return
  if os.path.isdir(path):
    raise FlagError(f"--{flag}={path} is a folder; expected a file name")
  check_output_dir(os.path.dirname(os.path.abspath(path)), flag)
