"""FullTokenizer: Google's original BERT tokenization, reproduced exactly.

BasicTokenizer cleans the text (drops NUL, U+FFFD and Cc/Cf control characters, maps whitespace
to a space), puts spaces around CJK ideographs, optionally lower-cases and strips accents (NFD,
drop category Mn), and splits off punctuation. WordpieceTokenizer then splits each word greedily,
longest match first, into vocabulary pieces with `##` continuations, or `[UNK]` when a word has
no such split or is longer than max_input_chars_per_word characters: 200 in google-research/bert
(tf-models-official's copy uses 400, Hugging Face 100; pass the value to match either).
Control characters are Cc and Cf only, as in the original (Hugging Face's copy drops all C*).
Character classes use Python's unicodedata, as the original did; bert_tf.fast_tokenizer
reproduces the same ids in-graph.
"""
import collections
import os
import unicodedata


def convert_to_unicode(text):
  """str for str or bytes (UTF-8, undecodable bytes dropped as the original does)."""
  if isinstance(text, str):
    return text
  if isinstance(text, bytes):
    return text.decode("utf-8", "ignore")
  raise TypeError(f"expected str or bytes, got {type(text).__name__}")


def load_vocab(vocab_file):
  """OrderedDict token -> id, one token per line (the id is the line number)."""
  vocab_file = str(vocab_file)
  if "://" in vocab_file:   # gs://, hdfs://, ...: TensorFlow's file system (seconds to import)
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    exists, opener = tf.io.gfile.exists, tf.io.gfile.GFile
  else:
    exists, opener = os.path.exists, open
  if not exists(vocab_file) or os.path.isdir(vocab_file):
    raise FileNotFoundError(f"vocab file not found: {vocab_file}")
  vocab = collections.OrderedDict()
  with opener(vocab_file, "rb") as reader:
    for index, line in enumerate(reader):
      # Like the original: strip surrounding whitespace; a repeated token keeps its last id.
      vocab[convert_to_unicode(line).strip()] = index
  return vocab


def whitespace_tokenize(text):
  text = text.strip()
  return text.split() if text else []


def _is_whitespace(char):
  if char in (" ", "\t", "\n", "\r"):
    return True
  return unicodedata.category(char) == "Zs"


def _is_control(char):
  if char in ("\t", "\n", "\r"):
    return False
  # Cc and Cf only, as google-research/bert and tf-models-official: private-use (Co) and
  # unassigned (Cn) characters are kept and usually end up as [UNK].
  return unicodedata.category(char) in ("Cc", "Cf")


def _is_punctuation(char):
  cp = ord(char)
  # ASCII symbols such as "^", "$" and "`" are not Unicode punctuation (P*), but the original
  # treats all non-alphanumeric ASCII as punctuation.
  if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
    return True
  return unicodedata.category(char).startswith("P")


# The CJK Unified Ideographs blocks the original spaces out. Hangul, Hiragana and Katakana are
# deliberately absent (they are written with spaces or handled by WordPiece).
CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)


def _is_chinese_char(cp):
  # Chained comparisons rather than a loop over CJK_RANGES: this runs once per character.
  return ((0x4E00 <= cp <= 0x9FFF) or (0x3400 <= cp <= 0x4DBF) or (0x20000 <= cp <= 0x2A6DF) or
          (0x2A700 <= cp <= 0x2B73F) or (0x2B740 <= cp <= 0x2B81F) or (0x2B820 <= cp <= 0x2CEAF) or
          (0xF900 <= cp <= 0xFAFF) or (0x2F800 <= cp <= 0x2FA1F))


class BasicTokenizer:
  """Text cleaning, CJK spacing, optional lower-casing with accent stripping, punctuation split."""

  def __init__(self, do_lower_case=True):
    self.do_lower_case = do_lower_case

  def tokenize(self, text):
    """Returns the list of words of `text` (str or bytes)."""
    text = self._clean_text(convert_to_unicode(text))
    text = self._tokenize_chinese_chars(text)
    words = []
    for token in whitespace_tokenize(text):
      if self.do_lower_case:
        token = self._run_strip_accents(token.lower())
      words.extend(self._run_split_on_punc(token))
    return whitespace_tokenize(" ".join(words))

  @staticmethod
  def _run_strip_accents(text):
    text = unicodedata.normalize("NFD", text)
    return "".join(char for char in text if unicodedata.category(char) != "Mn")

  @staticmethod
  def _run_split_on_punc(text):
    pieces, current = [], []
    for char in text:
      if _is_punctuation(char):
        if current:
          pieces.append("".join(current))
          current = []
        pieces.append(char)
      else:
        current.append(char)
    if current:
      pieces.append("".join(current))
    return pieces

  @staticmethod
  def _tokenize_chinese_chars(text):
    out = []
    for char in text:
      if _is_chinese_char(ord(char)):
        out.extend((" ", char, " "))
      else:
        out.append(char)
    return "".join(out)

  @staticmethod
  def _clean_text(text):
    out = []
    for char in text:
      cp = ord(char)
      if cp == 0 or cp == 0xFFFD or _is_control(char):
        continue
      out.append(" " if _is_whitespace(char) else char)
    return "".join(out)


class WordpieceTokenizer:
  """Greedy longest-match-first WordPiece over a vocabulary, `##` marking continuations."""

  def __init__(self, vocab, unk_token="[UNK]", max_input_chars_per_word=200):
    self.vocab = vocab
    self.unk_token = unk_token
    self.max_input_chars_per_word = max_input_chars_per_word
    # Words repeat a lot in real text: caching each word's pieces makes bulk tokenization several
    # times faster without changing any result (the split depends on the word alone).
    self._cache = {}

  def tokenize(self, text):
    """Pieces of every whitespace-separated word of `text` (already BasicTokenizer output)."""
    output = []
    for word in whitespace_tokenize(convert_to_unicode(text)):
      output.extend(self.word_pieces(word))
    return output

  def word_pieces(self, word):
    """Pieces of one word (no whitespace inside), memoised."""
    pieces = self._cache.get(word)
    if pieces is None:
      pieces = self._split_word(word)
      if len(self._cache) < 1_000_000:
        self._cache[word] = pieces
    return pieces

  def _split_word(self, word):
    if len(word) > self.max_input_chars_per_word:
      return [self.unk_token]
    pieces, start = [], 0
    while start < len(word):
      end = len(word)
      piece = None
      while start < end:
        candidate = word[start:end]
        if start > 0:
          candidate = "##" + candidate
        if candidate in self.vocab:
          piece = candidate
          break
        end -= 1
      if piece is None:
        return [self.unk_token]
      pieces.append(piece)
      start = end
    return pieces


def read_json_file(path):
  """The JSON value of a model folder's file; InputFileError naming the line when malformed."""
  import json  # pylint: disable=import-outside-toplevel
  from bert_tf.errors import InputFileError  # pylint: disable=import-outside-toplevel
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    raise InputFileError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}): {e.msg}") from None


def recorded_do_lower_case(model_dir):
  """The casing a model folder records, or None: `do_lower_case` of its tokenizer_config.json
  (Hugging Face) or model_info.json (bert-convert), else the `lowercase` of tokenizer.json's
  BertNormalizer (transformers 5 may record it there only)."""
  for name in ("tokenizer_config.json", "model_info.json"):
    path = os.path.join(str(model_dir), name)
    if os.path.exists(path):
      value = read_json_file(path).get("do_lower_case")
      if isinstance(value, bool):
        return value
  path = os.path.join(str(model_dir), "tokenizer.json")
  if os.path.exists(path):
    normalizer = read_json_file(path).get("normalizer") or {}
    if normalizer.get("type") == "BertNormalizer" and isinstance(normalizer.get("lowercase"), bool):
      return normalizer["lowercase"]
  return None


_VOCABS_FROM_TOKENIZER_JSON = {}


def model_vocab_file(model_dir):
  """vocab.txt of a model folder. A Hugging Face folder that holds tokenizer.json instead (what
  transformers 5 saves): its WordPiece vocabulary, written in id order to a vocab.txt in a
  temporary folder (removed at exit), whose path is returned."""
  path = os.path.join(str(model_dir), "vocab.txt")
  source = os.path.join(str(model_dir), "tokenizer.json")
  if os.path.exists(path) or not os.path.exists(source):
    return path
  if source not in _VOCABS_FROM_TOKENIZER_JSON:
    import atexit  # pylint: disable=import-outside-toplevel
    import shutil  # pylint: disable=import-outside-toplevel
    import tempfile  # pylint: disable=import-outside-toplevel
    from bert_tf.errors import InputFileError  # pylint: disable=import-outside-toplevel
    model = read_json_file(source).get("model") or {}
    vocab = model.get("vocab")
    if model.get("type") != "WordPiece" or not isinstance(vocab, dict) or model.get(
        "continuing_subword_prefix", "##") != "##":
      raise InputFileError(f"{source}: expected a WordPiece model with '##' continuations "
                           f"(BERT's tokenizer), found {model.get('type')!r}; and there is no "
                           "vocab.txt")
    tokens = sorted(vocab, key=vocab.get)
    if [vocab[t] for t in tokens] != list(range(len(tokens))):
      raise InputFileError(f"{source}: the WordPiece ids are not 0..{len(tokens) - 1}")
    folder = tempfile.mkdtemp(prefix="bert_tf_vocab_")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    with open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8") as f:
      f.write("".join(f"{token}\n" for token in tokens))
    _VOCABS_FROM_TOKENIZER_JSON[source] = os.path.join(folder, "vocab.txt")
  return _VOCABS_FROM_TOKENIZER_JSON[source]


def infer_do_lower_case(model_dir):
  """The casing of a model folder: what it records (recorded_do_lower_case), else from its name
  as FullTokenizer.from_pretrained documents."""
  recorded = recorded_do_lower_case(model_dir)
  if recorded is not None:
    return recorded
  name = os.path.basename(os.path.normpath(str(model_dir))).lower()
  return "uncased" in name or "chinese" in name or "cased" not in name


class FullTokenizer:
  """BasicTokenizer followed by WordpieceTokenizer, as google-research/bert's FullTokenizer.

  Args:
    vocab_file: vocab.txt, one token per line.
    do_lower_case: True for uncased and Chinese models, False for cased ones; must match the
      checkpoint.
    max_input_chars_per_word: longer words become [UNK]; 200 as google-research/bert.
  """

  def __init__(self, vocab_file, do_lower_case=True, max_input_chars_per_word=200):
    self.vocab_file = str(vocab_file)
    self.do_lower_case = do_lower_case
    self.max_input_chars_per_word = max_input_chars_per_word
    self.vocab = load_vocab(vocab_file)
    self.inv_vocab = {index: token for token, index in self.vocab.items()}
    self.basic_tokenizer = BasicTokenizer(do_lower_case=do_lower_case)
    self.wordpiece_tokenizer = WordpieceTokenizer(
        vocab=self.vocab, max_input_chars_per_word=max_input_chars_per_word)

  @classmethod
  def from_pretrained(cls, model_dir, do_lower_case=None):
    """Tokenizer of a released model folder (its vocab.txt, or a Hugging Face tokenizer.json).

    When do_lower_case is None it is read from the folder's tokenizer_config.json (a Hugging Face
    folder) or model_info.json (written by bert-convert), else inferred from the folder name, in
    the spirit of the
    original's validate_case_matches_checkpoint: a name containing "uncased" or "chinese" (Google's
    Chinese model and the Chinese BERT-wwm family are uncased) is lower-cased, one containing
    "cased" is not, and anything else (e.g. multilingual_L-12_H-768_A-12, the uncased
    multilingual release) defaults to lower-casing.
    """
    if do_lower_case is None:
      do_lower_case = infer_do_lower_case(model_dir)
    return cls(model_vocab_file(model_dir), do_lower_case=do_lower_case)

  def tokenize(self, text):
    """List of WordPiece tokens of `text` (str or bytes)."""
    tokens = []
    word_pieces = self.wordpiece_tokenizer.word_pieces
    for word in self.basic_tokenizer.tokenize(text):
      tokens.extend(word_pieces(word))
    return tokens

  def convert_tokens_to_ids(self, tokens):
    ids = []
    for token in tokens:
      try:
        ids.append(self.vocab[token])
      except KeyError:
        raise KeyError(f"token {token!r} is not in the vocabulary {self.vocab_file}") from None
    return ids

  def convert_ids_to_tokens(self, ids):
    return [self.inv_vocab[int(i)] for i in ids]

  def encode(self, text):
    """ids of `text`: convert_tokens_to_ids(tokenize(text))."""
    return self.convert_tokens_to_ids(self.tokenize(text))


# Above this share of [UNK] a warning names the likely cause. English text through an English
# vocabulary, or Chinese through Google's Chinese one, stays well under 1%; Chinese text through
# an English vocabulary gave 68.8% (issue 20).
UNKNOWN_SHARE_WARNING = 0.05


def warn_if_many_unknown(num_unknown, num_tokens, source, vocab_file):
  """Logs a warning when more than UNKNOWN_SHARE_WARNING of the tokens of `source` are [UNK].

  Returns:
    the share of [UNK] tokens (0 for no tokens).
  """
  share = num_unknown / num_tokens if num_tokens else 0.0
  if share > UNKNOWN_SHARE_WARNING:
    from absl import logging  # pylint: disable=import-outside-toplevel
    logging.warning("%s: %.1f%% of the tokens are [UNK] with the vocabulary %s: the vocabulary "
                    "probably does not fit the text (another language or script, or cased text "
                    "with --do_lower_case=false on an uncased vocabulary)", source, 100 * share,
                    vocab_file)
  return share
