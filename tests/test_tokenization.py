"""FullTokenizer reproduces Google's original tokenization.

The independent reference is tf-models-official's copy of the original tokenization.py
(official.nlp.tools.tokenization), compared id for id on every line of the real corpora.
"""
import functools

import pytest

import corpora
from conftest import SHARED_DATA, missing_data, shared_path
from bert_tf.tokenization import BasicTokenizer, FullTokenizer, WordpieceTokenizer

tfm_tokenization = pytest.importorskip("official.nlp.tools.tokenization")

_ENGLISH = ("mrpc", "conll")
SETTINGS = corpora.SETTINGS + [
    (name, corpora.UNCASED_VOCAB, lower) for name in corpora.EXTRA if name.startswith(_ENGLISH)
    for lower in (True, False)] + [
    (name, corpora.CHINESE_VOCAB, True) for name in corpora.EXTRA if not name.startswith(_ENGLISH)]


@functools.lru_cache(maxsize=None)
def corpus_lines(name):
  """Every text line of a corpus of either table (None when its file is absent)."""
  if name not in corpora.EXTRA:
    return corpora.corpus_lines(name)
  relative, reader = corpora.EXTRA[name]
  path = SHARED_DATA / relative
  return tuple(reader(path)) if path.exists() else None


@functools.lru_cache(maxsize=None)
def full_ids(name, vocab, do_lower_case):
  """bert_tf FullTokenizer ids of every line, shared with test_fast_tokenizer."""
  tokenizer = corpora.full_tokenizer(vocab, do_lower_case)
  return tuple(tuple(tokenizer.encode(line)) for line in corpus_lines(name))


def real_corpus(setting):
  """(lines, vocab path, do_lower_case) of a setting, or pytest.skip when the data is absent."""
  name, vocab, do_lower_case = setting
  lines = corpus_lines(name)
  if lines is None or not (SHARED_DATA / vocab).exists():
    relative = corpora.EXTRA.get(name, corpora.ALL.get(name))[0]
    missing_data(f"{SHARED_DATA / relative} or {SHARED_DATA / vocab} is absent")
  return lines, SHARED_DATA / vocab, do_lower_case


def test_hand_checked_examples(small_vocab):
  tokenizer = FullTokenizer(small_vocab, do_lower_case=True)
  assert tokenizer.tokenize("UNwant\u00E9d,running") == ["un", "##want", "##ed", ",", "runn", "##ing"]
  assert tokenizer.tokenize("unwantedZ") == ["[UNK]"]  # no full split -> the whole word is [UNK]
  assert tokenizer.tokenize("中国人") == ["中", "国", "[UNK]"]  # CJK one by one, never ##国
  assert tokenizer.tokenize("Naïve CAFÉ") == ["na", "##ive", "cafe"]
  assert tokenizer.convert_tokens_to_ids(["un", "##want"]) == [7, 4]
  assert tokenizer.convert_ids_to_tokens([7, 4]) == ["un", "##want"]
  cased = FullTokenizer(small_vocab, do_lower_case=False)
  assert cased.tokenize("Naïve é") == ["[UNK]", "é"]  # no lower-casing, no accent stripping


def test_hand_checked_ids_of_the_released_vocabs():
  """Ids anyone can look up in Google's released vocab.txt files (line number = id)."""
  uncased = FullTokenizer(shared_path(corpora.UNCASED_VOCAB))
  assert uncased.encode("Hello, World!") == [7592, 1010, 2088, 999]
  assert uncased.tokenize("unaffable") == ["una", "##ffa", "##ble"]
  assert uncased.convert_tokens_to_ids(["[UNK]", "[CLS]", "[SEP]", "[MASK]"]) == [100, 101, 102, 103]
  chinese = FullTokenizer(shared_path(corpora.CHINESE_VOCAB))
  assert chinese.tokenize("我爱北京，ABC！") == ["我", "爱", "北", "京", "，", "abc", "！"]
  assert chinese.encode("我，") == [2769, 8024]
  assert chinese.convert_tokens_to_ids(["[PAD]", "[UNK]", "[CLS]", "[SEP]"]) == [0, 100, 101, 102]


def test_basic_tokenizer_cleaning_and_splitting():
  basic = BasicTokenizer(do_lower_case=True)
  assert basic.tokenize(" \tHeLLo!how  \n Are yoU?  ") == ["hello", "!", "how", "are", "you", "?"]
  assert basic.tokenize("H\u00E9llo") == ["hello"]
  assert basic.tokenize("a\x00b\ufffdc\u200bd\x7fe") == ["abcde"]  # NUL, U+FFFD, Cf, Cc removed
  assert basic.tokenize("a\u2028b\u00a0c\u3000d") == ["a", "b", "c", "d"]
  assert basic.tokenize("\ue000x\u0378") == ["\ue000x\u0378"]  # Co and Cn are kept, as the original
  assert basic.tokenize("ah博推zz") == ["ah", "博", "推", "zz"]
  assert basic.tokenize("$5^2`~") == ["$", "5", "^", "2", "`", "~"]  # ASCII symbols are punctuation
  assert basic.tokenize("“quoted”—dash…") == ["“", "quoted", "”", "—", "dash", "…"]
  assert basic.tokenize("ΟΔΟΣ ΣΑΣ") == ["οδος", "σας"]  # str.lower's final sigma
  assert BasicTokenizer(do_lower_case=False).tokenize("HäLLo!") == ["HäLLo", "!"]


def test_long_words_become_unk(small_vocab):
  """The original's limit: 200 characters (not bytes), counted after normalization."""
  tokenizer = FullTokenizer(small_vocab)
  assert tokenizer.tokenize("x" * 200) == ["x"] + ["##x"] * 199
  assert tokenizer.tokenize("x" * 201) == ["[UNK]"]
  wordpiece = WordpieceTokenizer(tokenizer.vocab, max_input_chars_per_word=100)
  assert wordpiece.tokenize("x" * 100) == ["x"] + ["##x"] * 99
  assert wordpiece.tokenize("x" * 101) == ["[UNK]"]


def test_tf_models_default_word_limit_differs(small_vocab):
  """Documented difference: google-research/bert's limit is 200 characters, tf-models-official's
  copy uses 400, so a 300-character word splits there and is [UNK] in the original and here."""
  ours = FullTokenizer(small_vocab)
  tfm = tfm_tokenization.FullTokenizer(str(small_vocab), do_lower_case=True)
  assert ours.tokenize("x" * 300) == ["[UNK]"]
  assert tfm.tokenize("x" * 300) == ["x"] + ["##x"] * 299
  longer_limit = FullTokenizer(small_vocab, max_input_chars_per_word=400)
  assert longer_limit.tokenize("x" * 300) == tfm.tokenize("x" * 300)


def test_errors_name_the_problem(tmp_path, small_vocab):
  with pytest.raises(FileNotFoundError, match="nope.txt"):
    FullTokenizer(tmp_path / "nope.txt")
  with pytest.raises(FileNotFoundError, match="uncased_L-2/vocab.txt"):
    FullTokenizer.from_pretrained(tmp_path / "uncased_L-2")
  with pytest.raises(KeyError, match="'zebra' is not in the vocabulary"):
    FullTokenizer(small_vocab).convert_tokens_to_ids(["zebra"])
  with pytest.raises(TypeError, match="expected str or bytes"):
    FullTokenizer(small_vocab).tokenize(42)


@pytest.mark.parametrize("folder,expected", [("uncased_L-12_H-768_A-12", True),
                                             ("cased_L-12_H-768_A-12", False),
                                             ("multi_cased_L-12_H-768_A-12", False),
                                             ("multilingual_L-12_H-768_A-12", True),
                                             ("chinese_L-12_H-768_A-12", True),
                                             ("chinese_roberta_wwm_ext_L-12_H-768_A-12", True),
                                             ("my_bert", True)])
def test_from_pretrained_infers_casing(tmp_path, small_vocab, folder, expected):
  (tmp_path / folder).mkdir()
  (tmp_path / folder / "vocab.txt").write_bytes(small_vocab.read_bytes())
  assert FullTokenizer.from_pretrained(tmp_path / folder).do_lower_case is expected
  forced = FullTokenizer.from_pretrained(tmp_path / folder, do_lower_case=not expected)
  assert forced.do_lower_case is (not expected)


# Hand-made lines for what real corpora rarely hold. Long words are made of letters the vocab
# splits into pieces, so that the limit and not a failed split gives [UNK].
STRESS_LINES = [
    "", "   ", "\t\n", "\u3000\u00a0\u2028", "Crème brûlée, naïve façade; Zoë's café",
    "ÅNGSTRÖM İstanbul ΟΔΟΣ ΣΑΣ Σ ΑΣ'Σ ß ǅ ﬁ", "emoji 😀👍🏽 flags 🇨🇳 ZWJ 👩‍💻 keycap 1️⃣",
    "zero\u200bwidth\u200cjoin\u200dmark\ufeffbom\u2060wj\u00adshy",
    "control\x01\x02\x1f\x7f\x85chars\x00nul",
    "中英混合 mixed text 中文，标点！“引号”（括号）", "全角ＡＢＣ１２３，。？ｱｲｳ", "한국어 日本語のテキスト カタカナ",
    "Ελληνικά Кириллица العربية עברית हिन्दी ไทย", "ab\u2028cd\u2029ef", "tab\tseparated\tvalues",
    "<unk> @-@ tokens @,@ of wikitext", "\U00020000\U0002A700 rare CJK \U00030000",
    "\uf900\ufa00 compatibility ideographs", "a\u0301e\u0300 combining \u0301 alone",
    "x\ue000y private use",
    "\u2c2f\U00010570 Unicode 14 capitals \u1b4e\U00011b00 Unicode 16 signs \u0897 \U00016121",
    "bad\ufffdreplacement", "\U0001D16D\U0001D165\u1715 spacing marks \U0001D16D\u200b\U0001D165",
    "a\u0301\u200b\u0316b \u00c5\u200d\u030a",
    *("a" * n for n in (99, 100, 101, 199, 200, 201)),
    *("é" * n for n in (99, 100, 101, 199, 200, 201)),
    *("😀" * n for n in (100, 200, 201)), "\u4e00" * 300, "한" * 66, "한" * 67,
    "Ab" + "\u0301" * 250 + "cd", "word " + "ab" * 101 + " word",
]


@pytest.mark.parametrize("vocab", [corpora.UNCASED_VOCAB, corpora.CHINESE_VOCAB])
@pytest.mark.parametrize("do_lower_case", [True, False])
def test_stress_lines_match_tf_models(vocab, do_lower_case):
  path = shared_path(vocab)
  ours = FullTokenizer(path, do_lower_case=do_lower_case)
  tfm = tfm_tokenization.FullTokenizer(str(path), do_lower_case=do_lower_case)
  tfm.wordpiece_tokenizer.max_input_chars_per_word = 200  # the original's limit, see above
  for line in STRESS_LINES:
    assert ours.tokenize(line) == tfm.tokenize(line), repr(line)
    assert ours.tokenize(line.encode("utf-8")) == ours.tokenize(line)


@pytest.mark.slow
@pytest.mark.parametrize("setting", SETTINGS, ids=corpora.setting_id)
def test_real_corpus_matches_tf_models_on_every_line(setting):
  lines, vocab, do_lower_case = real_corpus(setting)
  tfm = tfm_tokenization.FullTokenizer(str(vocab), do_lower_case=do_lower_case)
  tfm.wordpiece_tokenizer.max_input_chars_per_word = 200
  ours = full_ids(*setting)
  mismatched = [i for i, line in enumerate(lines)
                if list(ours[i]) != tfm.convert_tokens_to_ids(tfm.tokenize(line))]
  assert not mismatched, (f"{len(mismatched)} of {len(lines)} lines differ, "
                          f"first: {lines[mismatched[0]]!r}")
  assert sum(map(len, ours)) > len(lines)  # the corpus really was tokenized


def test_cjk_ranges_table_matches_the_character_test():
  """CJK_RANGES (used by the in-graph tokenizer) and _is_chinese_char must agree everywhere."""
  from bert_tf.tokenization import CJK_RANGES, _is_chinese_char
  for cp in range(0x30000):
    assert _is_chinese_char(cp) == any(lo <= cp <= hi for lo, hi in CJK_RANGES), hex(cp)
