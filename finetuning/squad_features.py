"""SQuAD examples -> windowed model features, the original run_squad.py conversion:

  [CLS] question (at most max_query_length tokens) [SEP] window of the context [SEP], padding;
  windows of max_seq_length - len(question) - 3 context tokens every doc_stride tokens;
  token_is_max_context marks, for each context token, the window where it has the most
  context on both sides (the score min(left, right) + 0.01 * window length);
  training answers are narrowed to the tokenized answer text (_improve_answer_span) and
  windows without the answer point at [CLS] (position 0).

The WordPiece tokens of every doc token are memoised and a paragraph's doc tokens are tokenized
once for all of its questions (the original re-tokenizes the context for every question): the
same features, several times faster.
"""
import dataclasses

import numpy as np
import tensorflow as tf

RECORD_FEATURES = ("unique_ids", "input_ids", "input_mask", "segment_ids")
TRAINING_FEATURES = ("start_positions", "end_positions", "is_impossible")
FIRST_UNIQUE_ID = 1000000000


@dataclasses.dataclass
class SquadFeature:
  unique_id: int
  example_index: int
  doc_span_index: int
  tokens: list
  token_to_orig_map: dict       # position in tokens -> doc-token index
  token_is_max_context: dict
  input_ids: list
  input_mask: list
  segment_ids: list
  start_position: int = 0
  end_position: int = 0
  is_impossible: bool = False


class MemoTokenizer:
  """FullTokenizer.tokenize memoised per string (doc tokens repeat a lot)."""

  def __init__(self, tokenizer):
    self.tokenizer, self.vocab, self._memo = tokenizer, tokenizer.vocab, {}

  def tokenize(self, text):
    pieces = self._memo.get(text)
    if pieces is None:
      pieces = self._memo[text] = self.tokenizer.tokenize(text)
    return pieces


def improve_answer_span(doc_tokens, start, end, tokenizer, answer_text):
  """The smallest sub-span of [start, end] whose tokens spell the tokenized answer (e.g. the
  answer "1895" inside the word "(1895)"), else the span unchanged."""
  target = " ".join(tokenizer.tokenize(answer_text))
  for new_start in range(start, end + 1):
    for new_end in range(end, new_start - 1, -1):
      if " ".join(doc_tokens[new_start:new_end + 1]) == target:
        return new_start, new_end
  return start, end


def window_starts(num_tokens, max_tokens, stride):
  """(start, length) of the sliding windows over num_tokens context tokens."""
  spans, start = [], 0
  while start < num_tokens:
    length = min(num_tokens - start, max_tokens)
    spans.append((start, length))
    if start + length == num_tokens:
      break
    start += min(length, stride)
  return spans


def max_context_windows(spans, num_tokens):
  """For each context token, the index of the window giving it the most context (first best
  window on ties, as the original's strict comparison)."""
  best_score = np.full(num_tokens, -np.inf)
  best = np.zeros(num_tokens, np.int64)
  for index, (start, length) in enumerate(spans):
    positions = np.arange(start, start + length)
    score = np.minimum(positions - start, start + length - 1 - positions) + 0.01 * length
    better = score > best_score[positions]
    best_score[positions[better]] = score[better]
    best[positions[better]] = index
  return best


def _paragraph_tokens(example, tokenizer):
  tok_to_orig, orig_to_tok, all_tokens = [], [], []
  for i, token in enumerate(example.doc_tokens):
    orig_to_tok.append(len(all_tokens))
    for piece in tokenizer.tokenize(token):
      tok_to_orig.append(i)
      all_tokens.append(piece)
  return all_tokens, tok_to_orig, orig_to_tok


def convert_examples_to_features(examples, tokenizer, max_seq_length, doc_stride,
                                 max_query_length, is_training):
  """Yields SquadFeature for every window of every example (unique ids from 1000000000)."""
  tokenizer = tokenizer if isinstance(tokenizer, MemoTokenizer) else MemoTokenizer(tokenizer)
  vocab = tokenizer.vocab
  unique_id = FIRST_UNIQUE_ID
  paragraph = (None, None)
  for example_index, example in enumerate(examples):
    query = tokenizer.tokenize(example.question_text)[:max_query_length]
    if paragraph[0] != example.paragraph_index:
      paragraph = (example.paragraph_index, _paragraph_tokens(example, tokenizer))
    all_tokens, tok_to_orig, orig_to_tok = paragraph[1]
    tok_start = tok_end = None
    if is_training and example.is_impossible:
      tok_start = tok_end = -1
    elif is_training:
      tok_start = orig_to_tok[example.start_position]
      tok_end = (orig_to_tok[example.end_position + 1] - 1
                 if example.end_position < len(example.doc_tokens) - 1 else len(all_tokens) - 1)
      tok_start, tok_end = improve_answer_span(all_tokens, tok_start, tok_end, tokenizer,
                                               example.orig_answer_text)
    spans = window_starts(len(all_tokens), max_seq_length - len(query) - 3, doc_stride)
    best_window = max_context_windows(spans, len(all_tokens))
    for span_index, (start, length) in enumerate(spans):
      offset = len(query) + 2
      tokens = ["[CLS]", *query, "[SEP]", *all_tokens[start:start + length], "[SEP]"]
      token_to_orig = {offset + i: tok_to_orig[start + i] for i in range(length)}
      is_max = {offset + i: bool(best_window[start + i] == span_index) for i in range(length)}
      segment_ids = [0] * offset + [1] * (length + 1)
      padding = max_seq_length - len(tokens)
      feature = SquadFeature(
          unique_id, example_index, span_index, tokens, token_to_orig, is_max,
          [vocab[t] for t in tokens] + [0] * padding, [1] * len(tokens) + [0] * padding,
          segment_ids + [0] * padding)
      if is_training:
        inside = (not example.is_impossible and tok_start >= start and
                  tok_end <= start + length - 1)
        if inside:
          feature.start_position = tok_start - start + offset
          feature.end_position = tok_end - start + offset
        feature.is_impossible = not inside
      yield feature
      unique_id += 1


def write_features(path, features, is_training):
  """Writes the original run_squad records (unique_ids, input_ids, input_mask, segment_ids and,
  for training, start_positions, end_positions, is_impossible) to `path`, atomically."""
  tmp = f"{path}.incomplete"
  count = 0
  with tf.io.TFRecordWriter(tmp) as writer:
    for feature in features:
      def ints(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))
      record = {"unique_ids": ints([feature.unique_id]), "input_ids": ints(feature.input_ids),
                "input_mask": ints(feature.input_mask), "segment_ids": ints(feature.segment_ids)}
      if is_training:
        record["start_positions"] = ints([feature.start_position])
        record["end_positions"] = ints([feature.end_position])
        record["is_impossible"] = ints([int(feature.is_impossible)])
      writer.write(tf.train.Example(features=tf.train.Features(feature=record))
                   .SerializeToString())
      count += 1
  tf.io.gfile.rename(tmp, path, overwrite=True)
  return count


def parse_fn(max_seq_length, is_training):
  spec = {name: tf.io.FixedLenFeature([max_seq_length], tf.int64)
          for name in ("input_ids", "input_mask", "segment_ids")}
  spec["unique_ids"] = tf.io.FixedLenFeature([], tf.int64)
  if is_training:
    spec.update({name: tf.io.FixedLenFeature([], tf.int64) for name in TRAINING_FEATURES})

  def parse(records):
    parsed = tf.io.parse_example(records, spec)
    return {k: (v if k == "unique_ids" else tf.cast(v, tf.int32)) for k, v in parsed.items()}
  return parse
