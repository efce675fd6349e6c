"""bert_tf.cached_tokenizer gives FullTokenizer's ids exactly (the argument in its docstring,
checked here fact by fact and on real corpora)."""
import random
import re
import unicodedata

import numpy as np
import pytest

from bert_tf import cached_tokenizer
from bert_tf.cached_tokenizer import CachedTokenizer
from bert_tf.tokenization import FullTokenizer, _is_whitespace
from conftest import PRETRAINING_VOCAB, shared_path

ALL = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]


def test_the_facts_the_memoization_rests_on():
  """Over every code point: re's \\s is str.isspace; every character the cleaning maps to a
  space is whitespace to str.split; and the precomputed dropped-character table equals the scan
  of this Python's unicodedata."""
  space = re.compile(r"\s")
  assert [c for c in ALL if bool(space.match(c)) != c.isspace()] == []
  assert [c for c in ALL if _is_whitespace(c) and not c.isspace()] == []
  table = cached_tokenizer._DROPPED_RANGES.get(unicodedata.unidata_version)  # pylint: disable=protected-access
  if table is None:
    pytest.skip(f"no precomputed table for Unicode {unicodedata.unidata_version} (the scan runs)")
  assert tuple(cached_tokenizer.code_point_ranges(cached_tokenizer.dropped_characters())) == table


@pytest.fixture
def vocab(tmp_path):
  path = tmp_path / "vocab.txt"
  path.write_text("\n".join(PRETRAINING_VOCAB + ["中", "国", "##国", "é", "cafe"]) + "\n",
                  encoding="utf-8")
  return path


@pytest.mark.parametrize("do_lower_case", [True, False])
def test_odd_text_equals_full_tokenizer(vocab, do_lower_case):
  """Random lines over characters that stress each step: controls the cleaning drops (line
  falls back), every kind of whitespace, CJK (with compatibility ideographs NFD changes),
  accents, punctuation, and words over max_input_chars_per_word; with a full cache and with one
  that is emptied all the time. Mutation caught: no fallback for lines holding a dropped control
  (\\x0b, \\x1c: the original joins the words around them, str.split separates them)."""
  alphabet = (list("the quick brown fox ab") + ["\x0b", "\x00", "\u200b", "\ufffd", "\xa0",
              "\u3000", "\u2028", "\x1c", "\t", "\n", "中", "国", "\uf900", "é", "e\u0301", "!",
              "$", "-", "'", "Ä", "ß", "İ", "ﬁ", "\U00020000", "x" * 30])
  rng = random.Random(0)
  texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(3000)]
  full = FullTokenizer(vocab, do_lower_case=do_lower_case, max_input_chars_per_word=25)
  for max_cache in (1 << 20, 2):
    ours = CachedTokenizer(vocab, do_lower_case=do_lower_case, max_input_chars_per_word=25,
                           max_cache_entries=max_cache)
    ids, lengths = ours.ids_of_lines(texts)
    expected = [full.encode(t) for t in texts]
    assert lengths.tolist() == [len(e) for e in expected]
    assert ids.tolist() == [i for e in expected for i in e]
    assert len(ours._cache) <= max_cache  # pylint: disable=protected-access


@pytest.mark.slow
@pytest.mark.parametrize("corpus,vocab_name,lower", [
    ("english_corpus/wikitext-2_valid.txt", "uncased", True),
    ("chinese_corpus/CLUECorpusSmall_bert_sampled.txt", "chinese", True),
    ("english_corpus/wikitext-2_valid.txt", "uncased", False)])
def test_real_corpora_equal_full_tokenizer(corpus, vocab_name, lower):
  lines = shared_path(corpus).read_text(encoding="utf-8").splitlines()[:6000]
  vocab_file = shared_path(f"vocab/{vocab_name}_vocab.txt")
  ids, lengths = CachedTokenizer(vocab_file, do_lower_case=lower).ids_of_lines(lines)
  full = FullTokenizer(vocab_file, do_lower_case=lower)
  expected = [full.encode(line) for line in lines]
  assert lengths.tolist() == [len(e) for e in expected]
  np.testing.assert_array_equal(ids, np.array([i for e in expected for i in e], np.int32))
