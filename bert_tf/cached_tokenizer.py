"""FullTokenizer's ids, memoized per piece of text: exact, and fast on real corpora without
TensorFlow (a process that only tokenizes and writes records never pays its import of seconds).

Why memoizing per piece is exact. FullTokenizer first cleans the text (drops NUL, U+FFFD and
Cc/Cf control characters; maps whitespace to a space), puts spaces around CJK ideographs and
splits on whitespace with str.split; everything after that (lower-casing, accent stripping,
punctuation splitting, WordPiece) works within one such token. So on a line with no character
that the cleaning drops, the tokens of the line are the tokens of its pieces in order, where the
pieces are the line's single CJK ideographs and its maximal runs of other non-whitespace
characters (`\\s` of Python's re is str.isspace, which holds every Zs character the cleaning
maps to a space; tests/test_cached_tokenizer.py checks both facts over all code points). Each
distinct piece is tokenized once by FullTokenizer itself; a line holding a character the
cleaning drops goes through FullTokenizer whole.

Memory: the cache keeps at most `max_cache_entries` pieces and is emptied when full.
"""
import re
import unicodedata

import numpy as np

from bert_tf.tokenization import CJK_RANGES, FullTokenizer, _is_control

_CJK_CLASS = "".join(f"{chr(a)}-{chr(b)}" for a, b in CJK_RANGES)
_PIECES = re.compile(f"[{_CJK_CLASS}]|[^\\s{_CJK_CLASS}]+")
# The ranges dropped_characters() gives under Unicode 14.0.0 (Python 3.11's unicodedata),
# precomputed because the scan takes half a second; under another Unicode version the scan runs.
# tests/test_cached_tokenizer.py checks the table against the scan.
_DROPPED_RANGES = {"14.0.0": (
    (0x0, 0x8), (0xB, 0xC), (0xE, 0x1F), (0x7F, 0x9F), (0xAD, 0xAD), (0x600, 0x605),
    (0x61C, 0x61C), (0x6DD, 0x6DD), (0x70F, 0x70F), (0x890, 0x891), (0x8E2, 0x8E2),
    (0x180E, 0x180E), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F),
    (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0xFFFD, 0xFFFD), (0x110BD, 0x110BD), (0x110CD, 0x110CD),
    (0x13430, 0x13438), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001),
    (0xE0020, 0xE007F))}
_DROPPED = []


def dropped_characters():
  """The characters FullTokenizer's cleaning removes: NUL, U+FFFD and Cc/Cf controls."""
  return [chr(c) for c in range(0x110000)
          if c in (0, 0xFFFD) or (not 0xD800 <= c <= 0xDFFF and _is_control(chr(c)))]


def code_point_ranges(chars):
  """[(first, last)] code point runs of sorted characters."""
  ranges = []
  for code in map(ord, chars):
    if ranges and code == ranges[-1][1] + 1:
      ranges[-1] = (ranges[-1][0], code)
    else:
      ranges.append((code, code))
  return ranges


def _dropped_pattern():
  if not _DROPPED:
    ranges = _DROPPED_RANGES.get(unicodedata.unidata_version) or code_point_ranges(
        dropped_characters())
    _DROPPED.append(re.compile("[" + "".join(
        re.escape(chr(a)) + ("-" + re.escape(chr(b)) if b > a else "") for a, b in ranges) + "]"))
  return _DROPPED[0]


class CachedTokenizer:
  """ids_of_lines(texts) -> (flat int32 ids, int64 lengths): FullTokenizer.encode of each text."""

  def __init__(self, vocab_file, do_lower_case=True, max_input_chars_per_word=200,
               max_cache_entries=1 << 20):
    self.full = FullTokenizer(vocab_file, do_lower_case=do_lower_case,
                              max_input_chars_per_word=max_input_chars_per_word)
    self.max_cache_entries = max_cache_entries
    self._cache = {}
    self._dropped = _dropped_pattern()

  def _tokenize_piece(self, piece):
    if len(self._cache) >= self.max_cache_entries:
      self._cache.clear()
    ids = self._cache[piece] = tuple(self.full.encode(piece))
    return ids

  def encode(self, text):
    """FullTokenizer.encode(text), list of ids."""
    ids, _ = self.ids_of_lines([text])
    return ids.tolist()

  def ids_of_lines(self, texts):
    flat, lengths = [], []
    cache, find, dropped = self._cache, _PIECES.findall, self._dropped.search
    for text in texts:
      if isinstance(text, bytes):
        text = text.decode("utf-8", "ignore")
      start = len(flat)
      if dropped(text):
        flat.extend(self.full.encode(text))
      else:
        for piece in find(text):
          ids = cache.get(piece)
          flat.extend(ids if ids is not None else self._tokenize_piece(piece))
      lengths.append(len(flat) - start)
    return np.array(flat, np.int32), np.array(lengths, np.int64)
