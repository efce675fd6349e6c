"""NER examples -> windows of model features, and predictions back to one tag per word.

Each word is split into WordPiece tokens; its tag sits on the first piece (label_mask 1), the
other pieces are masked out of the loss and the metric. A sentence whose pieces do not fit
max_seq_length - 2 is cut into consecutive windows at word boundaries (no word is dropped; a
single word longer than a window keeps its first pieces). Chinese text comes as one word per
character.
"""
import dataclasses

import numpy as np
import tensorflow as tf

from bert_tf.tokenization import warn_if_many_unknown
from finetuning import crf

FEATURE_NAMES = ("input_ids", "input_mask", "segment_ids", "label_ids", "label_mask")


@dataclasses.dataclass
class NerFeature:
  example_index: int
  first_word: int              # index in the example of the window's first word
  word_positions: list         # token position of each of the window's words
  arrays: dict                 # FEATURE_NAMES -> int32 [max_seq_length]


def convert_examples(examples, tokenizer, max_seq_length, labels):
  """Features of all examples, in order (several per example when a sentence is long)."""
  label_id = {label: i for i, label in enumerate(labels)}
  vocab = tokenizer.vocab
  unk = vocab["[UNK]"]
  budget = max_seq_length - 2
  memo = {}
  features = []
  for example_index, example in enumerate(examples):
    pieces = []
    for word in example.words:
      if word not in memo:
        memo[word] = [vocab.get(p, unk) for p in tokenizer.tokenize(word)] or [unk]
      pieces.append(memo[word][:budget])
    start = 0
    while start < len(pieces):
      end, used = start, 0
      while end < len(pieces) and used + len(pieces[end]) <= budget:
        used += len(pieces[end])
        end += 1
      ids, positions = [vocab["[CLS]"]], []
      label_ids = np.zeros(max_seq_length, np.int32)
      label_mask = np.zeros(max_seq_length, np.int32)
      for w in range(start, end):
        positions.append(len(ids))
        if example.tags is not None:
          label_ids[len(ids)] = label_id[example.tags[w]]
        label_mask[len(ids)] = 1
        ids.extend(pieces[w])
      ids.append(vocab["[SEP]"])
      arrays = {"input_ids": np.zeros(max_seq_length, np.int32),
                "input_mask": np.zeros(max_seq_length, np.int32),
                "segment_ids": np.zeros(max_seq_length, np.int32),
                "label_ids": label_ids, "label_mask": label_mask}
      arrays["input_ids"][:len(ids)] = ids
      arrays["input_mask"][:len(ids)] = 1
      features.append(NerFeature(example_index, start, positions, arrays))
      start = end
  if examples:
    words = [w for e in examples for w in e.words]
    warn_if_many_unknown(sum(memo[w].count(unk) for w in words), sum(len(memo[w]) for w in words),
                         examples[0].where.rsplit(":", 1)[0] or "NER examples",
                         getattr(tokenizer, "vocab_file", "?"))
  return features


def word_tags(examples, features, token_predictions, labels):
  """Per example, the tag of each word read at its first piece (windows joined in order).

  Args:
    token_predictions: int [num_features, max_seq_length] predicted label ids per token.
  """
  tags = [[None] * len(e.words) for e in examples]
  for feature, predicted in zip(features, token_predictions):
    for offset, position in enumerate(feature.word_positions):
      tags[feature.example_index][feature.first_word + offset] = labels[int(predicted[position])]
  return tags


def write_features(path, features):
  """The features as a TFRecord (FEATURE_NAMES, int64 [max_seq_length]), atomically."""
  tmp = f"{path}.incomplete"
  with tf.io.TFRecordWriter(tmp) as writer:
    for feature in features:
      record = {name: tf.train.Feature(int64_list=tf.train.Int64List(value=feature.arrays[name]))
                for name in FEATURE_NAMES}
      writer.write(tf.train.Example(features=tf.train.Features(feature=record)).SerializeToString())
  tf.io.gfile.rename(tmp, path, overwrite=True)
  return len(features)


def parse_fn(max_seq_length):
  spec = {name: tf.io.FixedLenFeature([max_seq_length], tf.int64) for name in FEATURE_NAMES}

  def parse(records):
    return {k: tf.cast(v, tf.int32) for k, v in tf.io.parse_example(records, spec).items()}
  return parse


def compact(values, label_mask):
  """Moves the labelled positions of each row to the front (in order): ([batch, time, ...],
  lengths [batch]); the CRF runs over words, not WordPiece tokens."""
  time = tf.shape(label_mask)[1]
  order = tf.argsort(tf.cast(1 - label_mask, tf.int32) * time + tf.range(time)[None], axis=1,
                     stable=True)
  return tf.gather(values, order, batch_dims=1), tf.reduce_sum(label_mask, axis=1)


def decode(logits, transitions, label_mask, use_crf):
  """Predicted label ids per token [n, seq]: the argmax of each token's logits, or with a CRF
  the Viterbi path over the words (first pieces, moved together by `compact`), put back in
  place; other positions 0.

  Args:
    logits: float array [n, seq, num_labels].
    transitions: float array [n, num_labels, num_labels] (the model output repeats the CRF's
      transition matrix per example) or None without a CRF.
    label_mask: int array [n, seq], 1 on each word's first piece.
    use_crf: bool.
  """
  if not use_crf:
    return np.argmax(logits, axis=-1)
  words, lengths = compact(tf.constant(logits), tf.constant(label_mask))
  path = crf.crf_decode(words, tf.maximum(lengths, 1), tf.constant(transitions[0])).numpy()
  predictions = np.zeros(label_mask.shape, np.int64)
  for row in range(len(label_mask)):
    positions = np.flatnonzero(label_mask[row])
    predictions[row, positions] = path[row, :len(positions)]
  return predictions
