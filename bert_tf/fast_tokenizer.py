"""FastTokenizer: in-graph, batched BERT tokenization with FullTokenizer's ids.

The original's BasicTokenizer is rebuilt from TensorFlow string ops, each step the exact
counterpart of a step of bert_tf.tokenization:

  1. invalid UTF-8 bytes dropped                 (convert_to_unicode's decode(errors="ignore"))
  2. \\t \\n \\r and Zs -> space; NUL, U+FFFD, Cc and Cf removed                 (_clean_text)
  3. lower-case, NFD, drop Mn, when do_lower_case            (token.lower(), _run_strip_accents)
  4. spaces around CJK ideographs and punctuation  (_tokenize_chinese_chars, _run_split_on_punc)
  5. split on spaces                                                    (whitespace_tokenize)

Steps 4 and 5 and the WordPiece step are done in one pass by tensorflow-text's
FastWordpieceTokenizer in its end-to-end mode: its pre-tokenization splits on Unicode whitespace
and on exactly the original's punctuation and CJK sets (ASCII 33-47, 58-64, 91-96, 123-126,
u_ispunct, the same eight CJK ranges), and LinMaxMatch yields greedy longest-match-first. The
original's per-word limit counts *characters* (200) while tensorflow-text's counts bytes, so
words over the limit are found from the token offsets and turned into one [UNK] here.
`words()` gives the words alone (BasicTokenizer's output) with regex ops.

Why not tensorflow-text's BertTokenizer / FastBertTokenizer as they are: their `lower_case` is
NFKC case folding, which also rewrites full-width punctuation (`，` -> `,`), ligatures and
compatibility characters, so ids differ from the original on most Chinese lines.

Known, documented differences (pinned in tests/test_fast_tokenizer.py):
  * Unicode version. Python's unicodedata (Unicode 14.0 in Python 3.11) and RE2/ICU inside
    TensorFlow may classify characters assigned after Unicode 14 differently (a Cf, Zs, P* or Mn
    character new in Unicode 15). No such character occurs in the bundled or ../shared/data
    corpora.
"""
import os

import tensorflow as tf
import tensorflow_text as tf_text

from bert_tf.tokenization import CJK_RANGES, load_vocab

# Step 2. U+2028 and U+2029 (Zl, Zp) survive the original's cleaning but its str.split() treats
# them as whitespace, so they become spaces here too. \t \n \r are Cc but already spaces.
_WHITESPACE = r"[\t\n\r\p{Zs}\x{2028}\x{2029}]"
_REMOVED = r"[\x00\x{FFFD}\p{Cc}\p{Cf}]"
# Steps 3 and 5 in one pass: CJK ideographs and punctuation both become words of their own. The
# original spaces out CJK before lower-casing and punctuation after; neither step can create or
# remove a CJK or punctuation character in a way that changes the words (lower-casing and NFD
# map letters to letters and marks), so one pass after lower-casing gives the same words.
_CJK = "".join(f"\\x{{{lo:X}}}-\\x{{{hi:X}}}" for lo, hi in CJK_RANGES)
# Step 5. All non-alphanumeric printable ASCII counts as punctuation in the original, as does
# every Unicode P* character.
_PUNCTUATION = r"!-/:-@\[-`{-~\p{P}"



class FastTokenizer(tf.Module):
  """Batched in-graph tokenizer whose ids equal FullTokenizer's.

  Usable eagerly, inside tf.function and tf.data `map`, and in a SavedModel (the vocabulary is
  a resource of this module).

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
    # original keeps its last line; earlier lines (and blank ones) get placeholders containing a
    # space, which no word can contain, so they never match.
    tokens = [f"[bert_tf unused {i}]" for i in range(max(vocab.values()) + 1)]
    for token, index in vocab.items():
      if token:
        tokens[index] = token
    self.unk_id = vocab["[UNK]"]
    self._long_run = f".*[^ !-/:-@\\[-`{{-~{_CJK}]{{{max_input_chars_per_word + 1}}}.*"
    self._is_suffix = tf.constant([t.startswith("##") and len(t) > 2 for t in tokens])
    # The original's limit counts characters, tensorflow-text's counts bytes: set it above the
    # byte length of any word within the character limit and apply the limit in _unk_overlong.
    max_bytes = 4 * max_input_chars_per_word + 4
    self._wordpiece = tf_text.FastWordpieceTokenizer(
        vocab=tokens, suffix_indicator="##", unknown_token="[UNK]", no_pretokenization=False,
        max_bytes_per_word=max_bytes, token_out_type=tf.int64, support_detokenization=False)
    self._word_wordpiece = tf_text.FastWordpieceTokenizer(
        vocab=tokens, suffix_indicator="##", unknown_token="[UNK]", no_pretokenization=True,
        max_bytes_per_word=max_bytes, token_out_type=tf.int64, support_detokenization=False)

  def normalize(self, texts):
    """Steps 1-3: tf.string Tensor [batch] -> normalized tf.string Tensor [batch]."""
    texts = tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8", errors="ignore")
    texts = tf.strings.regex_replace(texts, _WHITESPACE, " ")
    texts = tf.strings.regex_replace(texts, _REMOVED, "")
    if self.do_lower_case:
      texts = tf.strings.lower(texts, encoding="utf-8")
      texts = tf_text.normalize_utf8(texts, "NFD")
      texts = tf.strings.regex_replace(texts, r"\p{Mn}", "")
    return texts

  def words(self, texts):
    """tf.string Tensor [batch] -> RaggedTensor of words [batch, (words)] (BasicTokenizer)."""
    texts = tf.strings.regex_replace(self.normalize(texts), f"[{_CJK}{_PUNCTUATION}]", r" \0 ")
    # Only ASCII spaces are left as separators; split without a separator drops empty words.
    return tf.strings.split(texts)

  def word_pieces(self, words):
    """WordPiece ids of already split words: RaggedTensor [batch, (words), (pieces)]."""
    too_long = tf.strings.length(words, unit="UTF8_CHAR") > self.max_input_chars_per_word
    words = tf.ragged.map_flat_values(
        lambda w, long: tf.where(long, tf.constant("[UNK]"), w), words, too_long)
    return self._word_wordpiece.tokenize(words)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def tokenize_to_ids(self, texts):
    """tf.string [batch] -> int64 RaggedTensor [batch, (tokens)] of WordPiece ids."""
    size = tf.shape(texts, out_type=tf.int64)[0]
    k = self.num_shards
    parts = [self._tokenize(texts[i * size // k:(i + 1) * size // k]) for i in range(k)]
    return parts[0] if k == 1 else tf.concat(parts, axis=0)

  def _tokenize(self, texts):
    normalized = self.normalize(texts)
    # A word over the limit needs that many characters in a row that are neither spaces, ASCII
    # punctuation nor CJK (words break at all three). This cheap test (a few % of the work)
    # lets the common batch skip the offsets and the per-word length check.
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

  def encode_batch(self, texts):
    """Python convenience: list of str -> list of lists of int ids."""
    return self.tokenize_to_ids(tf.constant(list(texts), dtype=tf.string)).to_list()
