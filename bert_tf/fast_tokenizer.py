"""FastTokenizer: in-graph, batched BERT tokenization with FullTokenizer's ids.

Same ids as bert_tf.tokenization.FullTokenizer (the original's Python loop over characters) from
TensorFlow ops: on batches, in tf.function, tf.data and SavedModels (vocabulary and character
tables are part of the module).

    fast = FastTokenizer("vocab.txt", do_lower_case=True)
    ids = fast.tokenize_to_ids(tf.constant(["first line", "第二行"]))  # int64 [batch, (tokens)]

Each row takes one of two paths:
  fast path, for rows of valid UTF-8 without a "special" character: with do_lower_case, ICU
    lower-casing (tf.strings.lower) and NFD (tensorflow-text); one regex pass deleting what
    _clean_text removes (NUL, U+FFFD, Cc, Cf) and the accents (Mn); then tensorflow-text's
    FastWordpieceTokenizer end to end, whose pre-tokenization splits at whitespace, punctuation
    and the original's CJK ranges, and whose LinMaxMatch is greedy longest-match-first. The
    original's 200-character word limit counts characters, tensorflow-text's bytes: words over
    it are found from the token offsets and become one [UNK].
  exact path, for the other rows and for normalize() / words(): the original's steps in its
    order. Invalid UTF-8 bytes dropped as decode("utf-8", "ignore") does, cleaning, Python's
    final-sigma rule, ICU lower-casing and NFD with the characters ICU gets wrong swapped for
    placeholders and back for Python's result, Mn removed, spaces around punctuation and CJK,
    a split, and the WordPiece of each word.

Character classes are written out from Python's unicodedata, which the original uses, never
RE2's \\p{..}, because the Unicode tables at work differ in version: with Python 3.11 and TF
2.20, unicodedata is Unicode 14, tf.strings.lower's ICU 13 (it leaves U+2C2F, new in 14,
upper-case) and tensorflow-text's ICU 16 (it decomposes and splits characters Python does not
know yet). So the first FastTokenizer of a process (per casing) runs both sides on every code
point, 2-3 s, and calls special each character where ICU's lower case, NFD or combining
class differs from Python's, or tensorflow-text splits the fast path's result differently from
the original; plus U+03A3 (its lower case depends on its neighbours), NUL (tf.strings.lower
stops at it) and spacing marks with a combining class (the fast path deletes Cf characters
after NFD, so NFD could reorder such marks across them). RE2 reads invalid UTF-8 as surrogates,
which are special too. No line of the real corpora in ../shared/data holds one.

Why not tensorflow-text's BertTokenizer / FastBertTokenizer: their lower-casing is NFKC case
folding, which also rewrites full-width punctuation (`，` -> `,`) and compatibility characters,
so ids differ from the original on most Chinese lines.

Known differences from FullTokenizer: none. tests/test_fast_tokenizer.py compares the two on
every line of the real corpora and on every code point. The tables follow the Python that
builds the tokenizer, and a SavedModel keeps them (the original itself gives other ids under a
Python with other Unicode tables).
"""
import collections
import functools
import logging
import operator
import os
import unicodedata

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from bert_tf.tokenization import CJK_RANGES, BasicTokenizer, load_vocab

_SIGMA = "\u03a3"
# Canonical combining class probe: between U+0345 (class 240) and U+0334 (class 1), NFD reorders
# a character iff its class is not 0, so the probe tells whether ICU and Python agree on that.
_PROBE = ("\u0345", "\u0334")

_Tables = collections.namedtuple(
    "_Tables", "removed spaces marks splits special sigma_context protect restore inexact")


def _char_class(code_points):
  """RE2 bracket-expression body matching exactly `code_points` (an iterable of ints)."""
  ranges = []
  for cp in sorted(set(code_points)):
    if ranges and cp == ranges[-1][1] + 1:
      ranges[-1][1] = cp
    else:
      ranges.append([cp, cp])
  return "".join(f"\\x{{{lo:X}}}" if lo == hi else f"\\x{{{lo:X}}}-\\x{{{hi:X}}}"
                 for lo, hi in ranges)


def _joined(chars, before="", after=""):
  """One text holding before + char + after for every char, space separated: each analysis
  below runs once over it (a few ms) instead of once per character."""
  return before + f"{after} {before}".join(chars) + after


def _icu(text, lower=False, marks=""):
  """The fast path's ICU steps (lower-casing if asked, NFD, then deleting `marks`, a class body)
  applied to `text`, split at its spaces."""
  texts = tf.strings.lower([text], encoding="utf-8") if lower else tf.constant([text])
  texts = tf_text.normalize_utf8(texts, "NFD")
  texts = tf.strings.regex_replace(texts, f"[{marks}]", "") if marks else texts
  return texts[0].numpy().decode("utf-8").split(" ")


def _pretokenizer_words(texts):
  """Words tensorflow-text's own pre-tokenization makes of "b" + text + "b", for each text."""
  wordpiece = tf_text.FastWordpieceTokenizer(
      vocab=["[UNK]", "zzzz"], no_pretokenization=False, token_out_type=tf.int64,
      support_detokenization=False)
  text = _joined(texts, "b", "b").encode("utf-8")
  _, starts, _ = wordpiece.tokenize_with_offsets(tf.constant(text))
  # No text holds U+0020, so the 0x20 bytes are exactly the separators.
  separators = np.flatnonzero(np.frombuffer(text, np.uint8) == 0x20)
  segment = np.searchsorted(np.concatenate([[0], separators + 1]), starts.numpy(), "right") - 1
  return np.bincount(segment, minlength=len(texts))


@functools.lru_cache(maxsize=None)
def _python_classes():
  """The original's character classes, as arrays over every code point but the surrogates."""
  code_points = np.concatenate([np.arange(0xD800), np.arange(0xE000, 0x110000)])
  chars = list(map(chr, code_points.tolist()))
  categories = np.array(list(map(unicodedata.category, chars)))
  is_space = np.fromiter(map(str.isspace, chars), bool, len(chars))
  removed = ((np.isin(categories, ["Cc", "Cf"]) & ~np.isin(code_points, [9, 10, 13])) |
             np.isin(code_points, [0, 0xFFFD]))
  # \t \n \r and Zs, and U+2028 / U+2029, which survive cleaning but split words in str.split.
  spaces = (is_space | (categories == "Zs")) & ~removed
  ascii_symbols = [*range(33, 48), *range(58, 65), *range(91, 97), *range(123, 127)]
  punctuation = np.char.startswith(categories, "P") | np.isin(code_points, ascii_symbols)
  cjk = np.zeros(len(code_points), bool)
  for lo, hi in CJK_RANGES:
    cjk |= (code_points >= lo) & (code_points <= hi)
  return code_points, chars, categories, removed, spaces, punctuation, cjk


@functools.lru_cache(maxsize=None)
def _character_tables(do_lower_case):
  """Regex classes and placeholder tables that make the graph follow Python's unicodedata.

  The fast path runs, on rows free of special characters, ICU lower-casing and NFD (when
  lower-casing), then deletes removed characters and Mn marks in one pass, and leaves the
  splitting at whitespace, punctuation and CJK characters to tensorflow-text. A character is
  special wherever that would part from the original, which this function finds out by running
  both on every code point.
  """
  code_points, chars, categories, removed, spaces, punctuation, cjk = _python_classes()
  marks = code_points[categories == "Mn"]
  strip = dict.fromkeys(marks.tolist())
  marks_class = _char_class(marks.tolist())
  present_index = np.flatnonzero(~removed & (code_points != 0x20))
  present = [chars[i] for i in present_index]
  special, protect, restore, inexact, sigma_context = set(), {}, {}, set(), None
  if do_lower_case:
    # NUL: tf.strings.lower stops at it. Spacing marks with a combining class: the fast path
    # deletes removed characters after NFD, so NFD may reorder such marks across them.
    special |= {"\0"} | {chars[i] for i in np.flatnonzero(categories == "Mc")
                         if unicodedata.combining(chars[i])}
    python = unicodedata.normalize("NFD", _joined(present).lower()).translate(strip).split(" ")
    fast = _icu(_joined(present), lower=True, marks=marks_class)
    differs = {ch for ch, p, f in zip(present, python, fast) if p != f}
    probed = unicodedata.normalize("NFD", _joined(present, *_PROBE)).split(" ")
    icu = _icu(_joined(present, *_PROBE))
    differs |= {ch for ch, p, i in zip(present, probed, icu) if p != i}
    # The fast path deletes removed characters after ICU: they must pass it unchanged. Those
    # that do are the exact path's placeholders for the characters that differ.
    candidates = [chars[i] for i in np.flatnonzero(removed & (code_points != 0))]
    alone = _icu(_joined(candidates), lower=True)
    probed = _icu(_joined(candidates, *_PROBE))
    stable = [a == ch and p == _PROBE[0] + ch + _PROBE[1]
              for ch, a, p in zip(candidates, alone, probed)]
    special |= {ch for ch, ok in zip(candidates, stable) if not ok}
    placeholders = iter([ch for ch, ok in zip(candidates, stable) if ok])
    for ch in sorted(differs):
      decomposed = unicodedata.normalize("NFD", ch.lower())
      result = decomposed.translate(strip)
      if all(ord(c) in strip and unicodedata.combining(c) for c in decomposed):
        # Marks Python strips whose classes are not 0: deleting them before NFD is the same
        # (it merges no reordering runs) and keeps ICU's view of them out of it.
        protect[ch] = ""
        continue
      if unicodedata.combining(ch) or any(unicodedata.combining(c) for c in result):
        inexact.add(ch)  # a placeholder (class 0) would change how NFD reorders around it
      placeholder = next(placeholders, None)
      if placeholder is None:
        raise RuntimeError(f"more characters ({len(differs)}) differ between ICU and Python's "
                           f"Unicode {unicodedata.unidata_version} than there are placeholders")
      protect[ch], restore[placeholder] = placeholder, result
    special |= differs | {_SIGMA}  # capital sigma: its lower case depends on its neighbours
  else:
    python = fast = present
  # Pre-tokenization: the words tensorflow-text makes of "b" + the fast path's normalization of
  # a character + "b", against the original's words of "b" + character + "b".
  split_on_punctuation = BasicTokenizer._run_split_on_punc  # pylint: disable=protected-access
  is_space, is_cjk = spaces[present_index], cjk[present_index]
  expected = np.where(is_space, 2, np.where(punctuation[present_index] | is_cjk, 3, 1))
  unchanged = np.fromiter(map(operator.eq, python, present), bool, len(present))
  for k in np.flatnonzero(~unchanged & ~is_space):
    normalized = python[k]
    if is_cjk[k]:  # spaced out before lower-casing, then split at punctuation
      expected[k] = 2 + len(split_on_punctuation(normalized))
    else:
      expected[k] = len(split_on_punctuation(f"b{normalized}b"))
  got = _pretokenizer_words(fast)
  special |= {ch for ch, g, e in zip(present, got, expected) if g != e}
  if do_lower_case:
    # Final sigma (Python's str.lower): capital sigma becomes U+03C2 after a cased letter and any
    # case-ignorable characters, unless case-ignorable characters and a cased letter follow.
    # Both classes are read off Python's own str.lower.
    assigned = [chars[i] for i in np.flatnonzero(~np.isin(categories, ["Cn", "Co", "Cs"]))
                if chars[i] not in " \0"]
    after_cased = _joined(assigned, "A", _SIGMA).lower().split(" ")
    alone = _joined(assigned, "", _SIGMA).lower().split(" ")
    cased = {ord(ch) for ch, a in zip(assigned, alone) if a[-1] == "\u03c2"}
    ignorable = {ord(ch) for ch, a, c in zip(assigned, alone, after_cased)
                 if a[-1] == "\u03c3" and c[-1] == "\u03c2"}
    cased, ignorable = _char_class(cased), _char_class(ignorable)
    sigma_context = (f"([{cased}][{ignorable}]*){_SIGMA}"
                     f"([{ignorable}]*(?:[^{cased}{ignorable}]|$))")
  splits = code_points[punctuation | cjk].tolist()
  return _Tables(
      removed=_char_class(code_points[removed].tolist()),
      spaces=_char_class(code_points[spaces & (code_points != 0x20)].tolist()),
      marks=marks_class, splits=_char_class(splits),
      # Surrogates: RE2 reads a row with invalid UTF-8 as holding one, so such rows are special
      # too (the exact path drops invalid bytes as the original does).
      special=_char_class([*map(ord, special), *range(0xD800, 0xE000)]),
      sigma_context=sigma_context, protect=protect, restore=restore, inexact=inexact)


def _cached_tables(do_lower_case):
  """_character_tables through the on-disk cache (keyed by every input they depend on)."""
  import sys  # pylint: disable=import-outside-toplevel
  from bert_tf import _table_cache, tokenization  # pylint: disable=import-outside-toplevel
  key = [sys.version, unicodedata.unidata_version, tf.__version__, tf_text.__version__,
         do_lower_case, _table_cache.source_digest(sys.modules[__name__], tokenization)]
  tables = _table_cache.cached_json(
      "fast_tokenizer_tables", key,
      lambda: {k: sorted(v) if isinstance(v, set) else v
               for k, v in _character_tables(do_lower_case)._asdict().items()})
  return _Tables(**tables)


def _string_table(mapping):
  """StaticHashTable single character -> replacement; "\\0" (never in cleaned text) if absent."""
  keys = tf.constant(list(mapping.keys()) or [""], tf.string)
  values = tf.constant(list(mapping.values()) or [""], tf.string)
  return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values), "\0")


def _translate(texts, table):
  """Replaces every character of `texts` that is a key of `table` (see _string_table)."""
  chars = tf.strings.unicode_split(texts, "UTF-8")
  mapped = table.lookup(chars.flat_values)
  chars = chars.with_flat_values(tf.where(mapped == "\0", chars.flat_values, mapped))
  return tf.strings.reduce_join(chars, axis=-1)


class FastTokenizer(tf.Module):
  """Batched in-graph tokenizer whose ids equal FullTokenizer's.

  Usable eagerly, inside tf.function and tf.data `map`, and in a SavedModel.

  Args:
    vocab_file: vocab.txt, one token per line (line number = id).
    do_lower_case: as for FullTokenizer.
    max_input_chars_per_word: as for FullTokenizer (200, google-research/bert's value).
    num_shards: a batch is cut into this many parts whose ops run in parallel (string ops are
      single-threaded); the output does not depend on it.
  """

  def __init__(self, vocab_file, do_lower_case=True, max_input_chars_per_word=200,
               num_shards=None, name=None):
    super().__init__(name=name)
    self.vocab_file = str(vocab_file)
    self.do_lower_case = do_lower_case
    self.max_input_chars_per_word = max_input_chars_per_word
    self.num_shards = num_shards or min(os.cpu_count() or 1, 4)
    vocab = load_vocab(vocab_file)
    if "[UNK]" not in vocab:
      raise ValueError(f"{vocab_file} has no [UNK] token")
    # The tokenizer wants a list whose index is the id. Where the file repeats a token the
    # original keeps its last line; earlier lines, blank ones and "##" (an empty continuation,
    # which the original never looks up; Google's Chinese vocab has one) get placeholders
    # containing a space, which no word can contain, so they never match.
    tokens = [f"[bert_tf unused {i}]" for i in range(max(vocab.values()) + 1)]
    for token, index in vocab.items():
      if token not in ("", "##"):
        tokens[index] = token
    self.unk_id = vocab["[UNK]"]
    # Ids of the special tokens the input packing uses (None when the vocabulary lacks one).
    self.cls_id, self.sep_id = vocab.get("[CLS]"), vocab.get("[SEP]")
    self._tables = _cached_tables(bool(do_lower_case))
    if self._tables.inexact:
      logging.warning("FastTokenizer may differ from FullTokenizer next to spacing marks with a "
                      "combining class ICU does not know: %s", sorted(self._tables.inexact))
    self._protect = _string_table(self._tables.protect)
    self._restore = _string_table(self._tables.restore)
    cjk = "".join(f"\\x{{{lo:X}}}-\\x{{{hi:X}}}" for lo, hi in CJK_RANGES)
    # A word over the limit needs that many characters in a row that are neither spaces, ASCII
    # punctuation nor CJK (words break at all three): a cheap test that lets most batches skip
    # the per-word length check.
    self._long_run = f"(?s).*[^ !-/:-@\\[-`{{-~{cjk}]{{{max_input_chars_per_word + 1}}}.*"
    self._is_suffix = tf.constant([t.startswith("##") and len(t) > 2 for t in tokens])
    # tensorflow-text's limit counts bytes: set it above the byte length of any word within the
    # character limit, and apply the character limit here.
    max_bytes = 4 * max_input_chars_per_word + 4
    self._wordpiece = tf_text.FastWordpieceTokenizer(
        vocab=tokens, suffix_indicator="##", unknown_token="[UNK]", no_pretokenization=False,
        max_bytes_per_word=max_bytes, token_out_type=tf.int64, support_detokenization=False)
    self._word_wordpiece = tf_text.FastWordpieceTokenizer(
        vocab=tokens, suffix_indicator="##", unknown_token="[UNK]", no_pretokenization=True,
        max_bytes_per_word=max_bytes, token_out_type=tf.int64, support_detokenization=False)
    # Made here rather than with a decorator, which would hold the module weakly: then
    # FastTokenizer(...).tokenize_to_ids(...) lost its module before tracing.
    self.tokenize_to_ids = tf.function(
        self._tokenize_to_ids, input_signature=[tf.TensorSpec([None], tf.string)])

  def normalize(self, texts):
    """tf.string [batch] -> the original's text before the punctuation split (exact path)."""
    tables = self._tables
    # errors="ignore" drops invalid bytes exactly as the original's decode("utf-8", "ignore").
    texts = tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8", errors="ignore")
    texts = tf.strings.regex_replace(texts, f"[{tables.removed}]", "")
    texts = tf.strings.regex_replace(texts, f"[{tables.spaces}]", " ")
    if not self.do_lower_case:
      return texts
    texts = tf.strings.regex_replace(texts, tables.sigma_context, "\\1\u03c2\\2")
    texts = tf.strings.regex_replace(texts, _SIGMA, "\u03c3")
    texts = _translate(texts, self._protect) if tables.protect else texts
    texts = tf_text.normalize_utf8(tf.strings.lower(texts, encoding="utf-8"), "NFD")
    texts = tf.strings.regex_replace(texts, f"[{tables.marks}]", "")
    return _translate(texts, self._restore) if tables.restore else texts

  def words(self, texts):
    """tf.string [batch] -> RaggedTensor of words [batch, (words)], BasicTokenizer's output."""
    spaced = tf.strings.regex_replace(self.normalize(texts), f"[{self._tables.splits}]", " \\0 ")
    return tf.strings.split(spaced)  # on ASCII whitespace, of which only " " is left

  def word_break_classes(self):
    """RE2 bracket-expression bodies (whitespace, split): the characters BasicTokenizer breaks
    words at (dropping them) and the ones it makes words of their own (punctuation, CJK), by
    the same Python tables as the tokenizer. For splitting raw text at the original characters,
    keeping their offsets (the NER SavedModel)."""
    return " " + self._tables.spaces, self._tables.splits

  def word_pieces(self, words):
    """WordPiece ids of already split words: RaggedTensor [batch, (words), (pieces)]."""
    too_long = tf.strings.length(words, unit="UTF8_CHAR") > self.max_input_chars_per_word
    words = tf.ragged.map_flat_values(
        lambda w, long: tf.where(long, tf.constant("[UNK]"), w), words, too_long)
    return self._word_wordpiece.tokenize(words)

  def _tokenize_to_ids(self, texts):
    """tf.string [batch] (or a list of str) -> int64 RaggedTensor [batch, (tokens)] of ids."""
    size = tf.shape(texts, out_type=tf.int64)[0]
    k = self.num_shards
    parts = [self._tokenize(texts[i * size // k:(i + 1) * size // k]) for i in range(k)]
    return parts[0] if k == 1 else tf.concat(parts, axis=0)

  def tokenize_with_char_offsets(self, texts):
    """tokenize_to_ids plus each token's character span in its text: (ids, starts, ends), int64
    RaggedTensors [batch, (tokens)]; text[start:end] (Python str indices, code points) is the
    token's text in the input, e.g. "1895" of "(1895)" and the whole word of an [UNK].

    The spans are tensorflow-text's offsets on the original's normalized text, read one
    character for one character: exact when normalization keeps the character count (ASCII
    case, accents dropped from precomposed letters, CJK). Where it does not (deleted control
    characters, a lower case of another length) or where that tokenization does not give the
    row's ids, every token of the row spans the whole text, as get_final_text then falls back
    to the whole original text.
    """
    texts = tf.convert_to_tensor(texts, tf.string)
    ids = self._tokenize_to_ids(texts)
    normalized = self.normalize(texts)
    pieces, byte_starts, byte_ends = self._wordpiece.tokenize_with_offsets(normalized)
    _, char_bytes = tf.strings.unicode_decode_with_offsets(normalized, "UTF-8")
    rows = tf.shape(texts, out_type=tf.int64)[0]
    # Byte offset -> the number of characters starting before it (a sentinel column keeps the
    # sorted rows non-empty).
    sorted_bytes = tf.concat([char_bytes.to_tensor(tf.int64.max),
                              tf.fill([rows, 1], tf.int64.max)], axis=1)
    width = tf.reduce_max(tf.concat([ids.row_lengths(), pieces.row_lengths(), [0]], axis=0))

    def to_chars(byte_offsets):
      dense = tf.concat([byte_offsets.to_tensor(0, shape=tf.stack([rows, width])),
                         tf.zeros([rows, 1], tf.int64)], axis=1)
      return tf.searchsorted(sorted_bytes, dense, side="left", out_type=tf.int64)[:, :-1]

    num_chars = tf.strings.length(texts, unit="UTF8_CHAR", name="num_chars")
    same_length = tf.strings.length(normalized, unit="UTF8_CHAR") == num_chars
    same_ids = tf.reduce_all(ids.to_tensor(-1, shape=tf.stack([rows, width])) ==
                             pieces.to_tensor(-1, shape=tf.stack([rows, width])), axis=1)
    exact = (same_length & same_ids)[:, None]
    starts = tf.where(exact, to_chars(byte_starts), 0)
    ends = tf.where(exact, to_chars(byte_ends), tf.cast(num_chars, tf.int64)[:, None])
    lengths = ids.row_lengths()
    return (ids, tf.RaggedTensor.from_tensor(starts, lengths=lengths),
            tf.RaggedTensor.from_tensor(ends, lengths=lengths))

  def tokenize_to_ids_eagerly(self, texts):
    """tokenize_to_ids without tf.function: the same ids, no 1-2 s tracing. For short-lived
    processes feeding a few large batches (data generation workers)."""
    return self._tokenize_to_ids(tf.convert_to_tensor(texts, tf.string))

  def encode_batch(self, texts):
    """Python convenience: list of str -> list of lists of int ids."""
    return self.tokenize_to_ids(tf.constant(list(texts), dtype=tf.string)).to_list()

  def _tokenize(self, texts):
    # Rows of valid UTF-8 without special characters (RE2 reads invalid bytes as surrogates,
    # which are special) take the fast path.
    fast = tf.strings.regex_full_match(texts, f"(?s)[^{self._tables.special}]*")

    def mixed():
      fast_rows, exact_rows = tf.where(fast)[:, 0], tf.where(~fast)[:, 0]
      exact = self.word_pieces(self.words(tf.gather(texts, exact_rows))).merge_dims(1, 2)
      ids = tf.concat([self._fast_ids(tf.gather(texts, fast_rows)), exact], axis=0)
      return tf.gather(ids, tf.argsort(tf.concat([fast_rows, exact_rows], axis=0)))

    return tf.cond(tf.reduce_all(fast), lambda: self._fast_ids(texts), mixed)

  def _fast_normalize(self, texts):
    """The original's normalization of valid rows free of special characters; the splitting at
    whitespace (still in any form), punctuation and CJK characters is left to tensorflow-text."""
    tables = self._tables
    if not self.do_lower_case:
      return tf.strings.regex_replace(texts, f"[{tables.removed}]", "")
    # Removed characters go with the marks, after NFD: the tables make that the same.
    texts = tf_text.normalize_utf8(tf.strings.lower(texts, encoding="utf-8"), "NFD")
    return tf.strings.regex_replace(texts, f"[{tables.removed}{tables.marks}]", "")

  def _fast_ids(self, texts):
    normalized = self._fast_normalize(texts)
    may_have_long_words = tf.reduce_any(tf.strings.regex_full_match(normalized, self._long_run))

    def with_length_check():
      ids, starts, ends = self._wordpiece.tokenize_with_offsets(normalized)
      return self._unk_overlong(normalized, ids, starts, ends)

    return tf.cond(may_have_long_words, with_length_check,
                   lambda: self._wordpiece.tokenize(normalized))

  def _unk_overlong(self, normalized, ids, starts, ends):
    """Replaces the pieces of every word longer than max_input_chars_per_word characters by one
    [UNK]. A word is a token plus the `##` tokens after it; its byte span bounds its character
    count from above, so characters are counted only for the rare words over the limit in bytes.
    """
    flat_ids = ids.flat_values
    is_suffix = tf.gather(self._is_suffix, flat_ids)
    starts_word = tf.cast(~is_suffix, tf.int64)
    word = tf.cumsum(starts_word) - 1
    num_words = tf.reduce_sum(starts_word)  # 0 for an empty shard
    word_start = tf.math.unsorted_segment_min(starts.flat_values, word, num_words)
    word_end = tf.math.unsorted_segment_max(ends.flat_values, word, num_words)
    candidates = tf.where(word_end - word_start > self.max_input_chars_per_word)[:, 0]

    def unk_long_words():
      word_row = tf.math.unsorted_segment_min(ids.value_rowids(), word, num_words)
      spans = tf.strings.substr(tf.gather(normalized, tf.gather(word_row, candidates)),
                                tf.gather(word_start, candidates),
                                tf.gather(word_end - word_start, candidates), unit="BYTE")
      long_candidates = tf.strings.length(spans, unit="UTF8_CHAR") > self.max_input_chars_per_word
      long_words = tf.scatter_nd(candidates[:, None], long_candidates, [num_words])
      long_token = tf.gather(long_words, word)
      keep = ~(long_token & is_suffix)
      new_ids = tf.where(long_token, tf.constant(self.unk_id, tf.int64), flat_ids)
      return tf.ragged.boolean_mask(ids.with_flat_values(new_ids), ids.with_flat_values(keep))

    return tf.cond(tf.size(candidates) > 0, unk_long_words, lambda: ids)
