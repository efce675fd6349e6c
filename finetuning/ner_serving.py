"""SavedModel export of a fine-tuned NER tagger that takes raw text and returns entities with
character offsets. Everything between runs in the graph, as run_ner's Python path does it:

  1. words: the text split into words with their character offsets (`split_words` is the Python
     definition): per character for CLUENER (every character a word, as its reader does), else
     at whitespace, with each punctuation mark and CJK character a word (BasicTokenizer's rule,
     read on the original characters so offsets survive lower-casing and accent stripping);
  2. ner_features.convert_examples: each word's WordPiece ids ([UNK] for a word without any, at
     most max_seq_length - 2), windows cut greedily at word boundaries, the tag on each word's
     first piece;
  3. ner_features.decode: argmax per token, or with a CRF the Viterbi path over the words;
  4. tasks.ner.entities over the word tags of the whole text (conlleval's BIO reading).

    export_ner("out/saved_model", model, tokenizer, max_seq_length=128, task=task, use_crf=True)
    served = tf.saved_model.load("out/saved_model")      # after `import tensorflow_text`
    served.signatures["serving_default"](text=tf.constant(["...", "..."]))
    # -> entity_type, entity_text [n, max_entities] strings ("" beyond num_entities),
    #    start_char, end_char [n, max_entities] int32 (-1 beyond), num_entities [n] int32.
Offsets count characters (Python str positions, end exclusive) of valid UTF-8 input.
"""
import unicodedata

import tensorflow as tf

from bert_tf.tokenization import _is_chinese_char, _is_control, _is_punctuation
from finetuning import crf
from finetuning.ner_features import compact
from finetuning.serving import save_atomically

# Label prefixes, as tasks.ner.entities reads them.
_OUTSIDE, _BEGIN, _INSIDE = 0, 1, 2


def split_words(text, per_character):
  """[(word, start_char, end_char)]: the words the NER SavedModel makes of a raw text."""
  if per_character:
    return [(ch, i, i + 1) for i, ch in enumerate(text)]
  words, start = [], None
  for i, ch in enumerate(text + " "):
    removed = ch in ("\0", "\ufffd") or _is_control(ch)
    space = (ch.isspace() or unicodedata.category(ch) == "Zs") and not removed
    alone = i < len(text) and (_is_punctuation(ch) or _is_chinese_char(ord(ch)))
    if start is not None and (space or alone):
      words.append((text[start:i], start, i))
      start = None
    if alone:
      words.append((ch, i, i + 1))
    elif not space and start is None:
      start = i
  return words


class NotBioError(ValueError):
  """Labels the served decoding cannot read."""


def check_bio(labels):
  """The served decoding reads B-/I-/O tags (every task's tags are BIO after reading; a `bio`
  task given other tags with --labels is not)."""
  bad = [label for label in labels if label != "O" and label[:2] not in ("B-", "I-")]
  if bad or "O" not in labels:
    raise NotBioError(f"the NER export reads BIO tags and 'O'; the labels {list(labels)} are not")


def _previous(values, fill):
  """values shifted one place later along the flat axis (the first gets `fill`)."""
  return tf.concat([[fill], values[:-1]], 0)[:tf.size(values)]


def _next(values, fill):
  """values shifted one place earlier along the flat axis (the last gets `fill`)."""
  return tf.concat([values[1:], [fill]], 0)[:tf.size(values)]


class NerServer(tf.Module):
  """Raw text -> entities (type, text, character span). Holds the model and the FastTokenizer."""

  def __init__(self, model, tokenizer, max_seq_length, labels, per_character, use_crf):
    super().__init__(name="bert_ner_server")
    check_bio(labels)
    self.model, self.tokenizer = model, tokenizer
    self.max_seq_length, self.per_character, self.use_crf = max_seq_length, per_character, use_crf
    types = sorted({label[2:] for label in labels if label != "O"}) or [""]
    self.types = tf.constant(types, tf.string)
    self.label_prefix = tf.constant(
        [_OUTSIDE if l == "O" else _BEGIN if l.startswith("B-") else _INSIDE for l in labels],
        tf.int32)
    self.label_type = tf.constant([types.index(l[2:]) if l != "O" else 0 for l in labels],
                                  tf.int32)
    self.spaces, self.splits = tokenizer.word_break_classes()
    self.serve = tf.function(self._serve, input_signature=[tf.TensorSpec([None], tf.string)])

  def _words(self, texts):
    """Flat words of the batch: (text, row, start_char, end_char), in order."""
    chars = tf.strings.unicode_split(texts, "UTF-8")
    flat = chars.flat_values
    row = tf.cast(chars.value_rowids(), tf.int32)
    index = tf.range(tf.size(flat)) - tf.gather(tf.cast(chars.row_starts(), tf.int32), row)
    if self.per_character:
      return flat, row, index, index + 1
    space = tf.strings.regex_full_match(flat, f"[{self.spaces}]")
    alone = tf.strings.regex_full_match(flat, f"[{self.splits}]")
    other = ~space & ~alone
    previous_other = _previous(other, False) & (index > 0)
    starts = alone | (other & ~previous_other)
    keep = tf.where(~space)[:, 0]
    word = tf.gather(tf.cumsum(tf.cast(starts, tf.int32)) - 1, keep)
    num_words = tf.reduce_sum(tf.cast(starts, tf.int32))
    index, row = tf.gather(index, keep), tf.gather(row, keep)
    return (tf.strings.unsorted_segment_join(tf.gather(flat, keep), word, num_words),
            tf.math.unsorted_segment_min(row, word, num_words),
            tf.math.unsorted_segment_min(index, word, num_words),
            tf.math.unsorted_segment_max(index, word, num_words) + 1)

  def _pieces(self, words):
    """WordPiece ids of each word as FullTokenizer.tokenize: [UNK] if none, at most a window."""
    ids = tf.cast(self.tokenizer.tokenize_to_ids(words), tf.int32)
    unk = tf.fill([tf.shape(words)[0], 1], self.tokenizer.unk_id)
    padded = tf.concat([ids.to_tensor(self.tokenizer.unk_id), unk], axis=1)
    lengths = tf.minimum(tf.maximum(tf.cast(ids.row_lengths(), tf.int32), 1),
                         self.max_seq_length - 2)
    return tf.RaggedTensor.from_tensor(padded, lengths=lengths)

  def _windows(self, lengths, row, batch):
    """convert_examples' greedy windows: per word (window index within its text, pieces of the
    window before it). Words of a text are consecutive in `lengths`."""
    words_per_row = tf.math.bincount(row, minlength=batch, maxlength=batch)
    per_row = tf.RaggedTensor.from_value_rowids(lengths, tf.cast(row, tf.int64),
                                               nrows=tf.cast(batch, tf.int64))
    budget = self.max_seq_length - 2

    def step(carry, length):
      window, used, _ = carry
      valid = length > 0
      new = valid & (used + length > budget)
      window = tf.where(new, window + 1, window)
      before = tf.where(new, 0, used)
      return window, tf.where(valid, before + length, used), before

    zeros = tf.zeros([batch], tf.int32)
    # One more column of padding: tf.scan cannot stack zero steps (a batch without words).
    padded = tf.pad(per_row.to_tensor(0), [[0, 0], [0, 1]])
    window, _, before = tf.scan(step, tf.transpose(padded), initializer=(zeros, zeros, zeros))
    mask = tf.sequence_mask(words_per_row, tf.shape(window)[0])
    return (tf.boolean_mask(tf.transpose(window), mask),
            tf.boolean_mask(tf.transpose(before), mask), words_per_row)

  def _serve(self, text):
    batch = tf.shape(text)[0]
    words, row, start_char, end_char = self._words(text)
    pieces = self._pieces(words)
    lengths = tf.cast(pieces.row_lengths(), tf.int32)
    window, before, words_per_row = self._windows(lengths, row, batch)
    # Global window index (texts in order), and each word's token position in it.
    last_window = tf.math.unsorted_segment_max(window, row, batch)
    windows_per_row = tf.where(words_per_row > 0, last_window + 1, 0)
    window = tf.gather(tf.cumsum(windows_per_row, exclusive=True), row) + window
    num_windows = tf.reduce_sum(windows_per_row)
    position = before + 1
    used = tf.math.unsorted_segment_sum(lengths, window, num_windows)
    piece_word = tf.cast(pieces.value_rowids(), tf.int32)
    piece_index = tf.range(tf.size(pieces.flat_values)) - tf.gather(
        tf.cast(pieces.row_starts(), tf.int32), piece_word)
    seq = self.max_seq_length
    windows = tf.range(num_windows)
    cells = tf.concat([
        tf.stack([tf.gather(window, piece_word), tf.gather(position, piece_word) + piece_index], 1),
        tf.stack([windows, tf.zeros_like(windows)], 1), tf.stack([windows, used + 1], 1)], 0)
    values = tf.concat([pieces.flat_values, tf.fill([num_windows], self.tokenizer.cls_id),
                        tf.fill([num_windows], self.tokenizer.sep_id)], 0)
    shape = tf.stack([num_windows, seq])
    inputs = {"input_ids": tf.scatter_nd(cells, values, shape),
              "input_mask": tf.cast(tf.range(seq)[None] < (used + 2)[:, None], tf.int32),
              "segment_ids": tf.zeros(shape, tf.int32)}
    logits = tf.cast(self.model(inputs, training=False)["logits"], tf.float32)
    word_cells = tf.stack([window, position], 1)
    if self.use_crf:
      label_mask = tf.scatter_nd(word_cells, tf.ones_like(window), shape)
      scores, count = compact(logits, label_mask)
      transitions = self.model.get_layer("crf").transitions
      path = crf.crf_decode(scores, tf.maximum(count, 1), transitions)
      rank = tf.range(tf.size(window)) - tf.gather(
          tf.math.unsorted_segment_min(tf.range(tf.size(window)), window, num_windows), window)
      tags = tf.gather_nd(path, tf.stack([window, rank], 1))
    else:
      tags = tf.argmax(tf.gather_nd(logits, word_cells), axis=-1, output_type=tf.int32)
    return self._entities(text, tags, row, start_char, end_char, batch)

  def _entities(self, text, tags, row, start_char, end_char, batch):
    """tasks.ner.entities over each text's word tags, as padded outputs."""
    prefix, kind = tf.gather(self.label_prefix, tags), tf.gather(self.label_type, tags)
    inside = prefix != _OUTSIDE
    same_row = _previous(row, -1) == row
    continues = (prefix == _INSIDE) & same_row & _previous(inside, False) & (
        _previous(kind, -1) == kind)
    begins = inside & ~continues
    # An entity ends at a word whose next word (in the same text) does not continue it.
    ends = inside & ~_next(continues, False)
    start_word, end_word = tf.where(begins)[:, 0], tf.where(ends)[:, 0]
    entity_row = tf.gather(row, start_word)
    start, end = tf.gather(start_char, start_word), tf.gather(end_char, end_word)
    entity_text = tf.strings.substr(tf.gather(text, entity_row), start, end - start,
                                    unit="UTF8_CHAR")

    def padded(values, default):
      ragged = tf.RaggedTensor.from_value_rowids(values, tf.cast(entity_row, tf.int64),
                                                 nrows=tf.cast(batch, tf.int64))
      return ragged.to_tensor(default)
    return {"entity_type": padded(tf.gather(self.types, tf.gather(kind, start_word)), ""),
            "entity_text": padded(entity_text, ""), "start_char": padded(start, -1),
            "end_char": padded(end, -1),
            "num_entities": tf.math.bincount(entity_row, minlength=batch, maxlength=batch)}


def export_ner(export_dir, model, tokenizer, max_seq_length, task, use_crf):
  """Writes the SavedModel (signature `serving_default`: text -> entities) and a `task.json`
  (labels, per_character, use_crf, max_seq_length, inputs, outputs)."""
  per_character = getattr(task, "per_character", False)
  server = NerServer(model, tokenizer, max_seq_length, task.labels, per_character, use_crf)
  return save_atomically(server, export_dir, {"serving_default": server.serve}, {
      "task_name": task.name, "labels": list(task.labels), "per_character": per_character,
      "use_crf": use_crf, "max_seq_length": max_seq_length, "inputs": ["text"],
      "outputs": ["entity_type", "entity_text", "start_char", "end_char", "num_entities"]})
