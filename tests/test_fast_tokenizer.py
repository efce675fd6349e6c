"""FastTokenizer gives FullTokenizer's ids, in graph, on every line of the real corpora."""
import numpy as np
import pytest
import tensorflow as tf

import corpora
from conftest import SHARED_DATA, shared_path
from test_tokenization import STRESS_LINES
from bert_tf.fast_tokenizer import FastTokenizer
from bert_tf.tokenization import FullTokenizer


def test_hand_checked_examples(small_vocab):
  fast = FastTokenizer(small_vocab)
  full = FullTokenizer(small_vocab)
  lines = ["UNwant\u00E9d,running", "unwantedZ", "中国人", "Naïve CAFÉ", "", "x" * 200, "x" * 201,
           "é" * 201, "want " + "x" * 250 + " want"]
  assert fast.encode_batch(lines) == [full.encode(line) for line in lines]
  assert fast.encode_batch(["want " + "x" * 250 + " want"]) == [[3, 0, 3]]


@pytest.mark.parametrize("vocab", [corpora.UNCASED_VOCAB, corpora.CHINESE_VOCAB])
@pytest.mark.parametrize("do_lower_case", [True, False])
def test_stress_lines(vocab, do_lower_case):
  path = shared_path(vocab)
  full = FullTokenizer(path, do_lower_case=do_lower_case)
  fast = FastTokenizer(path, do_lower_case=do_lower_case)
  got = fast.encode_batch(STRESS_LINES)
  for line, ids in zip(STRESS_LINES, got):
    assert ids == full.encode(line), repr(line)
  words = fast.words(tf.constant(STRESS_LINES)).to_list()
  for line, row in zip(STRESS_LINES, words):
    assert [w.decode("utf-8") for w in row] == full.basic_tokenizer.tokenize(line), repr(line)


def test_invalid_utf8_bytes_are_dropped_like_the_original(small_vocab):
  raw = [b"want\xffed", b"\xe4\xb8want", "中".encode() + b"\x80"]
  full = FullTokenizer(small_vocab)
  assert FastTokenizer(small_vocab).tokenize_to_ids(tf.constant(raw)).to_list() == [
      full.encode(r) for r in raw]


def test_shard_count_does_not_change_ids(small_vocab):
  lines = ["want", "unwanted", "x" * 300, "中国", "running, low", "lowest"] * 3
  expected = FastTokenizer(small_vocab, num_shards=1).encode_batch(lines)
  for shards in (2, 3, 7):
    assert FastTokenizer(small_vocab, num_shards=shards).encode_batch(lines) == expected


def test_in_tf_function_and_tf_data(small_vocab):
  fast = FastTokenizer(small_vocab)
  full = FullTokenizer(small_vocab)
  lines = ["unwanted running", "中国", "naïve café"]

  @tf.function
  def lengths(texts):
    return fast.tokenize_to_ids(texts).row_lengths()

  np.testing.assert_array_equal(lengths(tf.constant(lines)), [len(full.encode(l)) for l in lines])
  dataset = tf.data.Dataset.from_tensor_slices(lines).batch(2).map(fast.tokenize_to_ids)
  got = [row for batch in dataset for row in batch.to_list()]
  assert got == [full.encode(l) for l in lines]


def test_saved_model_keeps_the_vocabulary(tmp_path, small_vocab):
  fast = FastTokenizer(small_vocab)
  tf.saved_model.save(fast, str(tmp_path / "tokenizer"))
  (small_vocab).unlink()  # the SavedModel must not need the vocab file any more
  restored = tf.saved_model.load(str(tmp_path / "tokenizer"))
  got = restored.tokenize_to_ids(tf.constant(["unwanted running", "中国"])).to_list()
  assert got == [[7, 4, 5, 8, 9], [13, 14]]


def test_vocab_without_unk_is_refused(tmp_path):
  (tmp_path / "v.txt").write_text("a\nb\n")
  with pytest.raises(ValueError, match="no \\[UNK\\] token"):
    FastTokenizer(tmp_path / "v.txt")


@pytest.mark.slow
@pytest.mark.parametrize("setting", corpora.SETTINGS, ids=corpora.setting_id)
def test_real_corpus_matches_full_tokenizer_on_every_line(setting):
  name, vocab, do_lower_case = setting
  lines = corpora.corpus_lines(name)
  if lines is None or not (SHARED_DATA / vocab).exists():
    pytest.skip(f"{corpora.ALL[name][0]} or {vocab} is absent from {SHARED_DATA}")
  fast = FastTokenizer(SHARED_DATA / vocab, do_lower_case=do_lower_case)
  got = fast.tokenize_to_ids(tf.constant(lines)).to_list()
  expected = corpora.full_ids(name, vocab, do_lower_case)
  mismatched = [i for i in range(len(lines)) if got[i] != list(expected[i])]
  assert not mismatched, f"{len(mismatched)} of {len(lines)} lines differ, first: {lines[mismatched[0]]!r}"
