"""Chinese word segmentation for whole word masking, and which CJK characters continue a word.

BERT's tokenizer makes every CJK character a token of its own, so Chinese whole word masking
(Chinese BERT-wwm) needs words from a segmenter: all characters of one word are masked
together. The segmenter only decides grouping; the ids written stay the ordinary character ids.
(The jieba scripts in circulation mark inner characters as "##字" and then look those up or
write them as labels; here nothing is ever renamed.)

A segmenter is any callable str -> list of words whose concatenation is the input. Built in:
  jieba (default; optional user dictionary; with rjieba installed, its dictionary route comes
  from rjieba: the same words, faster, see pretraining.fast_jieba), pkuseg and ltp (imported
  only when asked for), or "package.module:function" naming your own.
"""
import importlib
import itertools
import logging
import re

import numpy as np

from bert_tf.errors import FlagError
from bert_tf.tokenization import CJK_RANGES
from pretraining import fast_jieba

_CJK = re.compile("[" + "".join(f"\\U{lo:08X}-\\U{hi:08X}" for lo, hi in CJK_RANGES) + "]")


def is_cjk(char):
  return _CJK.match(char) is not None


def has_cjk(text):
  return _CJK.search(text) is not None


class JiebaSegmenter:
  """jieba's default (precise) mode with its HMM for unknown words, as jieba.lcut(text).

  Args:
    user_dict: optional jieba user dictionary (one "word [freq] [tag]" per line) for domain
      terms. A private jieba.Tokenizer is used, so the global jieba state is left alone.
    accelerate: with rjieba installed and no user dictionary, take the dictionary route from
      rjieba (pretraining.fast_jieba: the same words, about 4x faster); False runs jieba alone.
  """

  def __init__(self, user_dict=None, accelerate=True):
    self.user_dict = user_dict
    self.accelerate = accelerate
    self._cut = None

  def _load(self):
    import jieba  # pylint: disable=import-outside-toplevel
    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    if self.accelerate and not self.user_dict and fast_jieba.rjieba_available():
      self._cut = fast_jieba.FastJieba(tokenizer)  # loads jieba's dictionary only if it must
      return
    tokenizer.initialize()
    if self.user_dict:
      tokenizer.load_userdict(str(self.user_dict))
    self._cut = tokenizer.lcut

  def __call__(self, text):
    if self._cut is None:
      self._load()
    return self._cut(text)

  def __getstate__(self):  # picklable for worker processes and Beam: the dictionary reloads
    return {"user_dict": self.user_dict, "accelerate": self.accelerate, "_cut": None}


class PkusegSegmenter:
  """pkuseg (pip install pkuseg); `user_dict` as pkuseg's user_dict argument."""

  def __init__(self, user_dict=None):
    self.user_dict = user_dict
    self._seg = None

  def __call__(self, text):
    if self._seg is None:
      pkuseg = _import_optional("pkuseg", "pkuseg")
      self._seg = pkuseg.pkuseg(user_dict=self.user_dict or "default")
    return self._seg.cut(text)

  def __getstate__(self):
    return {"user_dict": self.user_dict, "_seg": None}


class LtpSegmenter:
  """LTP (pip install ltp), the segmenter Chinese BERT-wwm used; `user_dict` is added as words."""

  def __init__(self, user_dict=None, model="LTP/small"):
    self.user_dict, self.model = user_dict, model
    self._ltp = None

  def __call__(self, text):
    if self._ltp is None:
      ltp = _import_optional("ltp", "ltp")
      self._ltp = ltp.LTP(self.model)
      if self.user_dict:
        with open(self.user_dict, encoding="utf-8") as f:
          self._ltp.add_words([line.split()[0] for line in f if line.strip()])
    return self._ltp.pipeline([text], tasks=["cws"]).cws[0]

  def __getstate__(self):
    return {"user_dict": self.user_dict, "model": self.model, "_ltp": None}


def _import_optional(module, package):
  try:
    return importlib.import_module(module)
  except ImportError as e:
    raise ImportError(f"chinese_segmenter={module} needs the {package} package: "
                      f"pip install {package}") from e


class _Custom:
  def __init__(self, spec):
    self.spec = spec
    self._fn = None

  def __call__(self, text):
    if self._fn is None:
      module, _, name = self.spec.partition(":")
      self._fn = getattr(importlib.import_module(module), name)
    return list(self._fn(text))

  def __getstate__(self):
    return {"spec": self.spec, "_fn": None}


def get_segmenter(name, user_dict=None):
  """Segmenter by name: jieba | pkuseg | ltp | none (returns None) | package.module:function."""
  if not name or name == "none":
    return None
  builtin = {"jieba": JiebaSegmenter, "pkuseg": PkusegSegmenter, "ltp": LtpSegmenter}
  if name in builtin:
    return builtin[name](user_dict)
  if ":" in name:
    if user_dict:
      raise FlagError("--chinese_segmenter_user_dict applies to jieba, pkuseg and ltp only")
    return _Custom(name)
  raise FlagError(f"--chinese_segmenter: unknown segmenter {name!r}; expected jieba, pkuseg, "
                   "ltp, none or package.module:function")


def cjk_continuations(words):
  """For each CJK character of the text, in order: does it continue the previous one's word?

  True when the character before it in the same segmented word is also CJK. Non-CJK characters
  get no entry (their grouping comes from WordPiece's ## pieces).
  """
  flags, _ = cjk_continuations_batch([words])
  return flags.tolist()


def _is_cjk_code(codes):
  result = np.zeros(codes.shape, bool)
  for lo, hi in CJK_RANGES:
    result |= (codes >= lo) & (codes <= hi)
  return result


def cjk_continuations_batch(lines):
  """cjk_continuations for many segmented lines at once, without a Python step per character.

  Args:
    lines: a list of word lists (one per line).
  Returns:
    (flags, counts): the flags of every line's CJK characters, concatenated (bool array), and
    the number of CJK characters of each line (int array), which splits them.
  """
  words = list(itertools.chain.from_iterable(lines))
  codes = np.frombuffer("".join(words).encode("utf-32-le"), np.uint32)
  cjk = _is_cjk_code(codes)
  word_lengths = np.fromiter(map(len, words), np.int64, count=len(words))
  word_starts = np.zeros(len(codes) + 1, bool)
  word_starts[np.cumsum(word_lengths) - word_lengths] = True  # (a zero-length word marks nothing new)
  previous_cjk = np.concatenate([[False], cjk[:-1]])
  continues = cjk & previous_cjk & ~word_starts[:len(codes)]
  words_per_line = np.fromiter(map(len, lines), np.int64, count=len(lines))
  line_of_char = np.repeat(np.repeat(np.arange(len(lines)), words_per_line), word_lengths)
  counts = np.bincount(line_of_char[cjk], minlength=len(lines))
  return continues[cjk], counts
