"""A small on-disk cache for tables that take seconds to compute and never change for a setup.

FastTokenizer's character tables come from running ICU and Python's unicodedata over every
code point (2-3 s); they depend only on the code and library versions, so they are computed
once per setup and read back afterwards (a fresh process, e.g. each data-generation worker,
then starts in milliseconds). The key hashes everything the tables depend on; a changed
version or source file simply misses. Location: $BERT_TF_CACHE, else $XDG_CACHE_HOME/bert_tf,
else ~/.cache/bert_tf; BERT_TF_CACHE=off disables it. Failures to read or write are ignored.
"""
import hashlib
import json
import os
import tempfile


def cache_dir():
  configured = os.environ.get("BERT_TF_CACHE")
  if configured:
    return None if configured.lower() in ("off", "0", "none") else configured
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "bert_tf")


def cached_json(name, key_parts, compute):
  """compute() (a JSON-serialisable value), read from the cache when key_parts match."""
  directory = cache_dir()
  if directory is None:
    return compute()
  key = hashlib.sha256(json.dumps([str(p) for p in key_parts]).encode()).hexdigest()[:24]
  path = os.path.join(directory, f"{name}-{key}.json")
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except (OSError, ValueError):
    pass
  value = compute()
  try:
    os.makedirs(directory, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=directory, delete=False, suffix=".tmp",
                                     encoding="utf-8") as f:
      json.dump(value, f)
    os.replace(f.name, path)
  except OSError:
    pass
  return value


def source_digest(*modules):
  """Hash of the modules' source files (a code change invalidates what they computed)."""
  digest = hashlib.sha256()
  for module in modules:
    with open(module.__file__, "rb") as f:
      digest.update(f.read())
  return digest.hexdigest()
