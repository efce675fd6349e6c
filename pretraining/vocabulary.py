"""Learning a WordPiece vocabulary in BERT's layout from a corpus.

Words come from bert_tf's BasicTokenizer, the exact pre-tokenization FullTokenizer applies later
(so every counted word is one the tokenizer will see, CJK characters one by one); the WordPiece
learning itself is tensorflow-text's learner (wordpiece_tokenizer_learner_lib), the one behind
its bert_vocab_from_dataset.
"""
import collections

import tensorflow as tf
from absl import logging
from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

from bert_tf.errors import FlagError, InputFileError
from bert_tf.files import write_text_atomically
from bert_tf.tokenization import BasicTokenizer

SPECIAL_TOKENS = ("[UNK]", "[CLS]", "[SEP]", "[MASK]")


def reserved_tokens(num_unused=99):
  """[PAD], [unused0..num_unused-1], [UNK], [CLS], [SEP], [MASK]: Google's English layout (with
  the default 99 unused tokens [UNK] gets id 100, [CLS] 101, [SEP] 102, [MASK] 103)."""
  return ["[PAD]"] + [f"[unused{i}]" for i in range(num_unused)] + list(SPECIAL_TOKENS)


def count_words(lines, do_lower_case=True):
  """Counter of BasicTokenizer words over an iterable of text lines."""
  tokenizer = BasicTokenizer(do_lower_case=do_lower_case)
  counts = collections.Counter()
  for line in lines:
    counts.update(tokenizer.tokenize(line))
  return counts


def learn_vocab(word_counts, vocab_size, num_unused=99, min_count=2, max_unique_chars=20000):
  """Learns a WordPiece vocabulary of at most `vocab_size` entries, reserved tokens first.

  Args:
    word_counts: {word: count} from count_words.
    vocab_size: upper bound on the vocabulary size (reserved tokens included).
    num_unused: how many [unusedN] placeholders follow [PAD].
    min_count: lower bound of the learner's frequency threshold search.
    max_unique_chars: alphabet cap; large enough by default that every CJK character seen stays
      a token of its own, as in Google's Chinese vocabulary.
  Returns:
    list of tokens; index = id.
  """
  reserved = reserved_tokens(num_unused)
  if vocab_size <= len(reserved):
    raise FlagError(f"vocab_size={vocab_size} leaves no room after the {len(reserved)} reserved "
                    "tokens ([PAD], [unusedN], [UNK], [CLS], [SEP], [MASK])")
  vocab = learner.learn(dict(word_counts), vocab_size=vocab_size, reserved_tokens=reserved,
                        lower_thresh=min_count, max_unique_chars=max_unique_chars)
  # The learner returns reserved tokens first, then its tokens; drop any repeat defensively.
  seen, ordered = set(), []
  for token in vocab:
    if token not in seen:
      seen.add(token)
      ordered.append(token)
  return ordered


def build_vocab_file(input_patterns, output_file, vocab_size, do_lower_case=True, num_unused=99,
                     min_count=2):
  """Counts words in the files matching `input_patterns` and writes the vocabulary atomically."""
  files = []
  for pattern in input_patterns:
    matched = tf.io.gfile.glob(pattern)
    if not matched:
      raise FileNotFoundError(f"--input_file: no file matches {pattern}")
    files.extend(sorted(matched))

  def lines():
    for path in files:
      with tf.io.gfile.GFile(path, "rb") as reader:
        for raw in reader:
          yield raw.decode("utf-8", "ignore")

  counts = count_words(lines(), do_lower_case=do_lower_case)
  if not counts:
    raise InputFileError(f"{', '.join(files)}: no words to learn a vocabulary from (the input "
                         "is empty or only whitespace)")
  vocab = learn_vocab(counts, vocab_size, num_unused=num_unused, min_count=min_count)
  write_text_atomically(output_file, "\n".join(vocab) + "\n")
  logging.info("%d words counted in %d files; wrote %d tokens to %s", len(counts), len(files),
               len(vocab), output_file)
  return vocab
