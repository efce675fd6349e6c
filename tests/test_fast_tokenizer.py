"""FastTokenizer gives FullTokenizer's ids, in graph, on every line of the real corpora and on
every Unicode code point."""
import functools
import random
import sys
import unicodedata

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text as tf_text

import corpora
from conftest import shared_path
from test_tokenization import SETTINGS, STRESS_LINES, full_ids, real_corpus
from bert_tf.fast_tokenizer import FastTokenizer
from bert_tf.tokenization import (BasicTokenizer, FullTokenizer, _is_chinese_char, _is_control,
                                  _is_punctuation, _is_whitespace)

ALL_CODE_POINTS = [cp for cp in range(sys.maxunicode + 1) if not 0xD800 <= cp <= 0xDFFF]


@functools.lru_cache(maxsize=None)
def fast_tokenizer(vocab, do_lower_case):
  """One FastTokenizer per real vocab and casing, traced once, shared by the tests."""
  return FastTokenizer(shared_path(vocab), do_lower_case=do_lower_case)


def test_hand_checked_examples(small_vocab):
  fast = FastTokenizer(small_vocab)
  full = FullTokenizer(small_vocab)
  lines = ["UNwant\u00E9d,running", "unwantedZ", "中国人", "Naïve CAFÉ", "", "x" * 200, "x" * 201,
           "é" * 201, "want " + "x" * 250 + " want"]
  assert fast.encode_batch(lines) == [full.encode(line) for line in lines]
  assert fast.encode_batch(["want " + "x" * 250 + " want"]) == [[3, 0, 3]]
  assert fast.encode_batch([]) == []


@pytest.mark.parametrize("vocab", [corpora.UNCASED_VOCAB, corpora.CHINESE_VOCAB])
@pytest.mark.parametrize("do_lower_case", [True, False])
def test_stress_lines(vocab, do_lower_case):
  full = FullTokenizer(shared_path(vocab), do_lower_case=do_lower_case)
  fast = fast_tokenizer(vocab, do_lower_case)
  got = fast.encode_batch(STRESS_LINES)
  for line, ids in zip(STRESS_LINES, got):
    assert ids == full.encode(line), repr(line)
  words = fast.words(tf.constant(STRESS_LINES)).to_list()
  for line, row in zip(STRESS_LINES, words):
    assert [w.decode("utf-8") for w in row] == full.basic_tokenizer.tokenize(line), repr(line)


def test_characters_icu_gets_wrong_take_the_exact_path(small_vocab):
  """TensorFlow's ICU tables are not Python's (tf.strings.lower does not lower-case U+2C2F, added
  in Unicode 14; tensorflow-text splits on U+1B4E, punctuation since Unicode 16, and decomposes
  U+16121): rows holding such characters are tokenized by the exact path."""
  fast = FastTokenizer(small_vocab)
  basic = BasicTokenizer(do_lower_case=True)
  lines = ["x\u2c2fx", "x\u1b4ex", "x\U00016121x", "ΑΣ'Σ.", "x\u0301\u2c2f\u0301"]
  assert [[w.decode() for w in row] for row in fast.words(tf.constant(lines)).to_list()] == [
      basic.tokenize(line) for line in lines]
  assert basic.tokenize("x\u2c2fx") == ["x\u2c5fx"] and basic.tokenize("x\u1b4ex") == ["x\u1b4ex"]
  full = FullTokenizer(small_vocab)
  assert fast.encode_batch(lines + ["want"]) == [full.encode(line) for line in lines + ["want"]]


def test_tensorflow_text_bert_tokenizers_fold_full_width_punctuation(tmp_path):
  """Why FastTokenizer does not use tensorflow-text's BertTokenizer: NFKC folding maps `，` to
  `,`, so Chinese text gets other ids than the original's."""
  (tmp_path / "vocab.txt").write_text("[UNK]\n,\n，\n", encoding="utf-8")
  tf_text_bert = tf_text.FastBertTokenizer(["[UNK]", ",", "，"], lower_case_nfd_strip_accents=True)
  assert tf_text_bert.tokenize(["，"]).to_list() == [[1]]
  assert FullTokenizer(tmp_path / "vocab.txt").encode("，") == [2]
  assert FastTokenizer(tmp_path / "vocab.txt").encode_batch(["，"]) == [[2]]


def test_invalid_utf8_bytes_are_dropped_like_the_original(small_vocab):
  raw = [b"want\xffed", b"\xe4\xb8want", "中".encode() + b"\x80", b"\xed\xa0\x80want",
         b"\xf4\x90\x80\x80x", b"\xc0\x80x"]
  rng = random.Random(0)
  pieces = [b"\x80", b"\xc2", b"\xe4\xb8", b"\xed\xa0\x80", b"\xf0\x90\x80", b"\xff", b"x", b" ",
            "中".encode(), "é".encode(), "\u03a3".encode(), b"\x00", b"want"]
  raw += [b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 8))) for _ in range(2000)]
  full = FullTokenizer(small_vocab)
  got = FastTokenizer(small_vocab).tokenize_to_ids(tf.constant(raw)).to_list()
  assert got == [full.encode(r) for r in raw]


def test_shard_count_does_not_change_ids(small_vocab):
  lines = ["want", "unwanted", "x" * 300, "中国", "running, low", "lowest", "ΑΣ"] * 3
  expected = FastTokenizer(small_vocab, num_shards=1).encode_batch(lines)
  for shards in (2, 3):
    assert FastTokenizer(small_vocab, num_shards=shards).encode_batch(lines) == expected


def test_in_tf_function_and_tf_data(small_vocab):
  fast = FastTokenizer(small_vocab)
  full = FullTokenizer(small_vocab)
  lines = ["unwanted running", "中国", "naïve café", "ΑΣ x" + "x" * 300]

  @tf.function
  def lengths(texts):
    return fast.tokenize_to_ids(texts).row_lengths()

  np.testing.assert_array_equal(lengths(tf.constant(lines)), [len(full.encode(l)) for l in lines])
  dataset = tf.data.Dataset.from_tensor_slices(lines).batch(2).map(fast.tokenize_to_ids)
  got = [row for batch in dataset for row in batch.to_list()]
  assert got == [full.encode(l) for l in lines]


def test_saved_model_keeps_the_vocabulary_and_tables(tmp_path, small_vocab):
  fast = FastTokenizer(small_vocab)
  lines = ["unwanted running", "中国", "\u2c2f x " + "x" * 201, "ΑΣ"]
  expected = fast.encode_batch(lines)
  tf.saved_model.save(fast, str(tmp_path / "tokenizer"))
  small_vocab.unlink()  # the SavedModel must not need the vocab file any more
  restored = tf.saved_model.load(str(tmp_path / "tokenizer"))
  assert restored.tokenize_to_ids(tf.constant(lines)).to_list() == expected
  assert expected[:2] == [[7, 4, 5, 8, 9], [13, 14]]


def test_vocab_without_unk_is_refused(tmp_path):
  (tmp_path / "v.txt").write_text("a\nb\n")
  with pytest.raises(ValueError, match="no \\[UNK\\] token"):
    FastTokenizer(tmp_path / "v.txt")


def test_character_tables_follow_the_original(small_vocab):
  """The regex classes equal the original's predicates on every code point, and every character
  on which ICU and Python differ can be swapped out exactly."""
  # pylint: disable=protected-access
  cased = FastTokenizer(small_vocab, do_lower_case=False)._tables
  tables = FastTokenizer(small_vocab)._tables
  assert not tables.inexact and not cased.inexact
  chars = tf.constant([chr(cp) for cp in ALL_CODE_POINTS])
  removed = tf.strings.regex_full_match(chars, f"[{tables.removed}]").numpy()
  spaces = tf.strings.regex_full_match(chars, f"[{tables.spaces}]").numpy()
  splits = tf.strings.regex_full_match(chars, f"[{tables.splits}]").numpy()
  for i, cp in enumerate(ALL_CODE_POINTS):
    ch = chr(cp)
    assert removed[i] == (cp in (0, 0xFFFD) or _is_control(ch)), hex(cp)
    is_space = _is_whitespace(ch) or ch.isspace()  # str.split's whitespace too
    assert spaces[i] == (cp != 0x20 and not removed[i] and is_space), hex(cp)
    assert splits[i] == (_is_punctuation(ch) or _is_chinese_char(cp)), hex(cp)


def _packed_rows(texts, is_special, per_row=64):
  """Space-joined rows of `texts`, special ones (exact path) apart from the others (fast path)."""
  ordered = ([t for t, s in zip(texts, is_special) if not s] +
             [t for t, s in zip(texts, is_special) if s])
  return [" ".join(ordered[i:i + per_row]) for i in range(0, len(ordered), per_row)]


@pytest.mark.slow
@pytest.mark.parametrize("do_lower_case", [True, False])
def test_every_code_point(do_lower_case):
  """Each code point between letters (and, lower-cased, between a capital and a capital sigma,
  where final sigma looks at it), against FullTokenizer: ids by both paths, words by the exact
  path, and the fast path's lower-casing/NFD/accent stripping character by character."""
  full = FullTokenizer(shared_path(corpora.UNCASED_VOCAB), do_lower_case=do_lower_case)
  fast = fast_tokenizer(corpora.UNCASED_VOCAB, do_lower_case)
  chars = [chr(cp) for cp in ALL_CODE_POINTS]
  special_class = fast._tables.special  # pylint: disable=protected-access
  is_special = tf.strings.regex_full_match(chars, f"(?s).*[{special_class}].*").numpy()
  rows = _packed_rows([f"a{c}b" for c in chars], is_special)
  if do_lower_case:
    # Unassigned and private-use characters are neither cased nor case-ignorable.
    assigned = [c for c in chars if unicodedata.category(c) not in ("Cn", "Co", "Cs")]
    rows += _packed_rows([f"A{c}\u03a3" for c in assigned], [True] * len(assigned))
  ids = [row for i in range(0, len(rows), 4096) for row in fast.encode_batch(rows[i:i + 4096])]
  words = fast.words(tf.constant(rows)).to_list()
  for row, row_ids, row_words in zip(rows, ids, words):
    expected_words = full.basic_tokenizer.tokenize(row)
    assert [w.decode("utf-8") for w in row_words] == expected_words, ascii(row)
    assert row_ids == full.convert_tokens_to_ids(
        [p for w in expected_words for p in full.wordpiece_tokenizer.word_pieces(w)]), ascii(row)
  if do_lower_case:
    # The fast path's normalization alone (its splitting is what the ids above check).
    clean = full.basic_tokenizer._clean_text  # pylint: disable=protected-access
    plain = [c for c, s in zip(chars, is_special) if not s and clean(c) == c != " "]
    got = fast._fast_normalize(tf.constant(plain)).numpy()  # pylint: disable=protected-access
    for c, normalized in zip(plain, got):
      expected = unicodedata.normalize("NFD", c.lower())
      expected = "".join(x for x in expected if unicodedata.category(x) != "Mn")
      assert normalized.decode("utf-8") == expected, hex(ord(c))


@pytest.mark.slow
@pytest.mark.parametrize("setting", SETTINGS, ids=corpora.setting_id)
def test_real_corpus_matches_full_tokenizer_on_every_line(setting):
  lines, _, do_lower_case = real_corpus(setting)
  fast = fast_tokenizer(setting[1], do_lower_case)
  got = fast.tokenize_to_ids(tf.constant(lines)).to_list()
  expected = full_ids(*setting)
  mismatched = [i for i in range(len(lines)) if got[i] != list(expected[i])]
  assert not mismatched, (f"{len(mismatched)} of {len(lines)} lines differ, "
                          f"first: {lines[mismatched[0]]!r}")


@pytest.mark.parametrize("vocab, data", [(corpora.UNCASED_VOCAB, "squad/expmrc-squad-dev.json"),
                                         (corpora.CHINESE_VOCAB,
                                          "cmrc2018/cmrc2018_dev.json")])
def test_char_offsets_spell_each_token(vocab, data):
  """tokenize_with_char_offsets on the whitespace-separated words of real SQuAD / CMRC 2018
  contexts (what run_squad's served graph tokenizes): the ids are tokenize_to_ids'; every token
  but [UNK] is the original's normalization of its span of the word (## removed), spans follow
  each other; a word whose normalization changes its length spans whole. Mutation caught:
  byte offsets used as character offsets (the Chinese words fail)."""
  import json
  contexts = [p["context"] for a in json.loads(shared_path(data).read_text("utf-8"))["data"]
              for p in a["paragraphs"]][:40]
  words = sorted({w for c in contexts for w in c.split()})[:3000]
  words += ["(1895)", "Café,", "a\u200bb", "İstanbul", ""]
  fast = fast_tokenizer(vocab, True)
  ids, starts, ends = fast.tokenize_with_char_offsets(tf.constant(words))
  assert ids.to_list() == fast.tokenize_to_ids(tf.constant(words)).to_list()
  basic = BasicTokenizer(do_lower_case=True)
  unk = fast.unk_id
  full = FullTokenizer(shared_path(vocab), do_lower_case=True)
  checked = 0
  for word, row_ids, row_starts, row_ends in zip(words, ids.to_list(), starts.to_list(),
                                                 ends.to_list()):
    tokens = full.convert_ids_to_tokens(row_ids)
    whole = len("".join(basic.tokenize(word))) != len("".join(word.split()))
    if whole:
      assert all(s == 0 and e == len(word) for s, e in zip(row_starts, row_ends)), word
      continue
    for token, token_id, s, e in zip(tokens, row_ids, row_starts, row_ends):
      assert 0 <= s < e <= len(word), (word, token)
      if token_id != unk:
        assert "".join(basic.tokenize(word[s:e])) == token.removeprefix("##"), (word, token)
        checked += 1
    assert all(e <= s for e, s in zip(row_ends, row_starts[1:])), word
  assert checked > 2000
