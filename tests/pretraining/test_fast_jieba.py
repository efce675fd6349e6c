"""pretraining.fast_jieba gives jieba.lcut's words exactly (the reference is jieba itself)."""
import json
import logging
import pickle
import random

import pytest

from conftest import SHARED_DATA, missing_data
from pretraining import fast_jieba, segmentation

pytest.importorskip("rjieba")
DATA = SHARED_DATA


@pytest.fixture(scope="module")
def tokenizer():
  import jieba  # pylint: disable=import-outside-toplevel
  jieba.setLogLevel(logging.WARNING)
  tok = jieba.Tokenizer()
  tok.initialize()
  return tok


@pytest.fixture(scope="module")
def fast(tokenizer):
  return fast_jieba.FastJieba(tokenizer)


def _lines(path):
  return [line.rstrip("\n") for line in open(path, encoding="utf-8")]


def _squad_texts(path):
  data = json.load(open(path, encoding="utf-8"))["data"]
  paragraphs = [p for article in data for p in article["paragraphs"]]
  return [p["context"] for p in paragraphs] + [q["question"] for p in paragraphs for q in p["qas"]]


# Simplified and traditional Chinese, web text, reviews, questions, mixed with English and digits.
CORPORA = {
    "CLUECorpusSmall": lambda: _lines(DATA / "chinese_corpus" / "CLUECorpusSmall_bert_sampled.txt"),
    "news_zh": lambda: _lines(DATA / "chinese_corpus" / "news_zh_1.txt"),
    "ChnSentiCorp dev": lambda: _lines(DATA / "chnsenticorp" / "dev.tsv"),
    "CMRC 2018 dev": lambda: _squad_texts(DATA / "cmrc2018" / "cmrc2018_dev.json"),
    "DRCD dev (traditional)": lambda: _squad_texts(DATA / "drcd" / "DRCD_dev.json"),
    "LCQMC dev": lambda: _lines(DATA / "lcqmc" / "dev.txt"),
    "XNLI zh dev": lambda: _lines(DATA / "xnli_zh" / "dev.tsv"),
}


@pytest.mark.parametrize("name", list(CORPORA))
def test_same_words_as_jieba_on_real_text(name, tokenizer, fast):
  if not DATA.is_dir():
    missing_data(f"real data not present at {DATA} (see the project README)")
  lines = [line for line in CORPORA[name]() if line.strip()]
  assert len(lines) > 200
  differing = [line for line in lines if fast(line) != tokenizer.lcut(line)]
  assert not differing, f"{len(differing)} of {len(lines)} lines differ, e.g. {differing[0][:80]!r}"


def test_hand_checked_cases_where_rjieba_alone_differs(tokenizer, fast):
  import rjieba  # pylint: disable=import-outside-toplevel
  # jieba's HMM tags the buffer 常在我 S S S; rjieba's own HMM joins 常在.
  text = "过去我们常在我爸家聚会。"
  expected = ["过去", "我们", "常", "在", "我", "爸家", "聚会", "。"]
  assert fast(text) == expected == tokenizer.lcut(text)
  assert "常在" in rjieba.cut(text)
  # The buffer 可当 is a dictionary word (frequency 3): jieba emits its characters one by one.
  text = "白䲟可当哪些鱼类？"
  expected = ["白", "䲟", "可", "当", "哪些", "鱼类", "？"]
  assert fast(text) == expected == tokenizer.lcut(text)
  assert "可当" in rjieba.cut(text)
  # Whitespace runs, English, numbers with units, dictionary words mixing letters and han.
  text = "我买了iphone手机和T恤，  还有2.5%的A股\r\n3D打印 UCLA"
  assert fast(text) == tokenizer.lcut(text)


def test_viterbi_equals_finalseg_including_ties_of_unseen_characters(fast):
  from jieba import finalseg  # pylint: disable=import-outside-toplevel
  # Common characters, and ones finalseg has no emission for (MIN_FLOAT absorbs the sums, so
  # the decode rests on jieba's tie-breaking).
  # Characters finalseg has emissions for, and ones it has none for (MIN_FLOAT absorbs the
  # sums, so the decode rests on jieba's tie-breaking).
  seen = sorted(finalseg.emit_P["S"])
  unseen = [chr(c) for c in range(0x4E00, 0x9FD6) if chr(c) not in finalseg.emit_P["S"]]
  assert len(seen) > 5000 and len(unseen) > 5000
  pool = random.Random(3).sample(seen, 300) + random.Random(4).sample(unseen, 300)
  rng = random.Random(7)
  for _ in range(2000):
    text = "".join(rng.choice(pool) for _ in range(rng.randint(1, 14)))
    words = fast._hmm_words(text)  # pylint: disable=protected-access
    assert words == tuple(finalseg.cut(text)), text


def test_ambiguous_letter_words_fall_back_to_jieba(tokenizer, monkeypatch):
  # A user dictionary could hold a word of letters only, which rjieba's output cannot tell
  # from joined single letters: that block is segmented by jieba itself.
  fast = fast_jieba.FastJieba(tokenizer)
  calls = []
  original = tokenizer.lcut
  monkeypatch.setattr(tokenizer, "lcut", lambda text: calls.append(text) or original(text))
  in_dictionary = fast._in_dictionary  # pylint: disable=protected-access
  monkeypatch.setattr(fast, "_in_dictionary", lambda word: word == "ab" or in_dictionary(word))
  assert fast("我有ab在手，好") == original("我有ab在手，好")
  assert calls == ["我有ab在手"]
  calls.clear()
  fast("我有abc在手")
  assert calls == []


def test_rjieba_dictionary_lookups_equal_jiebas_frequency_table(tokenizer):
  import rjieba  # pylint: disable=import-outside-toplevel
  # Every entry of jieba's table, including the prefixes it stores with frequency 0.
  assert all(rjieba.has_word(word) == bool(freq) for word, freq in tokenizer.FREQ.items())
  assert not rjieba.has_word("不在词典里的一串字")


def test_segmenter_uses_it_only_without_a_user_dictionary(tmp_path):
  seg = segmentation.JiebaSegmenter()
  assert seg("我们爱北京天安门") == ["我们", "爱", "北京", "天安门"]
  assert isinstance(seg._cut, fast_jieba.FastJieba)  # pylint: disable=protected-access
  assert isinstance(pickle.loads(pickle.dumps(seg)), segmentation.JiebaSegmenter)
  plain = segmentation.JiebaSegmenter(accelerate=False)
  plain("我们")
  assert not isinstance(plain._cut, fast_jieba.FastJieba)  # pylint: disable=protected-access
  user_dict = tmp_path / "terms.txt"
  user_dict.write_text("爱北京 100000 n\n", encoding="utf-8")
  custom = segmentation.JiebaSegmenter(str(user_dict))
  assert "爱北京" in custom("我们爱北京天安门")
  assert not isinstance(custom._cut, fast_jieba.FastJieba)  # pylint: disable=protected-access
