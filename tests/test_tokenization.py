"""FullTokenizer reproduces Google's original tokenization.

The independent reference is tf-models-official's copy of the original tokenization.py
(official.nlp.tools.tokenization), compared id for id on every line of the real corpora.
"""
import pytest

import corpora
from conftest import SHARED_DATA, shared_path
from bert_tf.tokenization import BasicTokenizer, FullTokenizer, WordpieceTokenizer

tfm_tokenization = pytest.importorskip("official.nlp.tools.tokenization")

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


def test_basic_tokenizer_cleaning_and_splitting():
  basic = BasicTokenizer(do_lower_case=True)
  assert basic.tokenize(" \tHeLLo!how  \n Are yoU?  ") == ["hello", "!", "how", "are", "you", "?"]
  assert basic.tokenize("H\u00E9llo") == ["hello"]
  assert basic.tokenize("a\x00b\ufffdc\u200bd\x7fe") == ["abcde"]  # NUL, U+FFFD, Cf, Cc removed
  assert basic.tokenize("a\u2028b\u00a0c\u3000d") == ["a", "b", "c", "d"]
  assert basic.tokenize("\ue000x") == ["\ue000x"]  # private use (Co) is kept, as the original
  assert basic.tokenize("ah博推zz") == ["ah", "博", "推", "zz"]
  assert basic.tokenize("$5^2`~") == ["$", "5", "^", "2", "`", "~"]  # ASCII symbols are punctuation
  assert basic.tokenize("“quoted”—dash…") == ["“", "quoted", "”", "—", "dash", "…"]
  assert BasicTokenizer(do_lower_case=False).tokenize("HäLLo!") == ["HäLLo", "!"]


def test_long_words_become_unk(small_vocab):
  tokenizer = FullTokenizer(small_vocab)
  assert tokenizer.tokenize("x" * 200) == ["x"] + ["##x"] * 199
  assert tokenizer.tokenize("x" * 201) == ["[UNK]"]
  wordpiece = WordpieceTokenizer(tokenizer.vocab, max_input_chars_per_word=100)
  assert wordpiece.tokenize("x" * 101) == ["[UNK]"]


def test_tf_models_default_word_limit_differs(small_vocab):
  """Documented difference: google-research/bert's limit is 200 characters, tf-models-official's
  copy uses 400, so a 300-character word splits there and is [UNK] in the original and here."""
  ours = FullTokenizer(small_vocab)
  tfm = tfm_tokenization.FullTokenizer(str(small_vocab), do_lower_case=True)
  assert ours.tokenize("x" * 300) == ["[UNK]"]
  assert tfm.tokenize("x" * 300) == ["x"] + ["##x"] * 299
  assert FullTokenizer(small_vocab, max_input_chars_per_word=400).tokenize("x" * 300) == tfm.tokenize("x" * 300)


def test_errors_name_the_problem(tmp_path, small_vocab):
  with pytest.raises(FileNotFoundError, match="nope.txt"):
    FullTokenizer(tmp_path / "nope.txt")
  with pytest.raises(KeyError, match="'zebra' is not in the vocabulary"):
    FullTokenizer(small_vocab).convert_tokens_to_ids(["zebra"])


@pytest.mark.parametrize("folder,expected", [("uncased_L-12_H-768_A-12", True),
                                             ("cased_L-12_H-768_A-12", False),
                                             ("chinese_L-12_H-768_A-12", True),
                                             ("chinese_roberta_wwm_ext_L-12_H-768_A-12", True)])
def test_from_pretrained_infers_casing(tmp_path, small_vocab, folder, expected):
  (tmp_path / folder).mkdir()
  (tmp_path / folder / "vocab.txt").write_bytes(small_vocab.read_bytes())
  assert FullTokenizer.from_pretrained(tmp_path / folder).do_lower_case is expected
  assert FullTokenizer.from_pretrained(tmp_path / folder, do_lower_case=not expected).do_lower_case is (not expected)


STRESS_LINES = [
    "", "   ", "\t\n", "Crème brûlée, naïve façade; Zoë's café", "ÅNGSTRÖM İstanbul ΟΔΟΣ ß ǅ ﬁ",
    "emoji 😀👍🏽 flags 🇨🇳 ZWJ 👩‍💻", "zero\u200bwidth\u200cjoin\u200dmark\ufeffbom",
    "control\x01\x02\x1f\x7f\x85chars", "中英混合 mixed text 中文，标点！“引号”（括号）",
    "全角ＡＢＣ１２３，。？", "한국어 日本語のテキスト カタカナ", "Ελληνικά Кириллица العربية עברית हिन्दी ไทย",
    "a" * 199, "b" * 200, "c" * 201, "ü" * 200, "ü" * 201, "ab\u2028cd\u2029ef",
    "tab\tseparated\tvalues", "<unk> @-@ tokens @,@ of wikitext", "\U00020000\U0002A700 rare CJK",
    "\uf900\ufa00 compatibility ideographs", "a\u0301e\u0300 combining", "x\ue000y private use",
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


@pytest.mark.slow
@pytest.mark.parametrize("setting", corpora.SETTINGS, ids=corpora.setting_id)
def test_real_corpus_matches_tf_models_on_every_line(setting):
  name, vocab, do_lower_case = setting
  lines = corpora.corpus_lines(name)
  if lines is None or not (SHARED_DATA / vocab).exists():
    pytest.skip(f"{corpora.ALL[name][0]} or {vocab} is absent from {SHARED_DATA}")
  tfm = tfm_tokenization.FullTokenizer(str(SHARED_DATA / vocab), do_lower_case=do_lower_case)
  tfm.wordpiece_tokenizer.max_input_chars_per_word = 200
  ours = corpora.full_ids(name, vocab, do_lower_case)
  mismatched = [i for i, line in enumerate(lines)
                if list(ours[i]) != tfm.convert_tokens_to_ids(tfm.tokenize(line))]
  assert not mismatched, f"{len(mismatched)} of {len(lines)} lines differ, first: {lines[mismatched[0]]!r}"
  assert sum(map(len, ours)) > len(lines)  # the corpus really was tokenized


def test_cjk_ranges_table_matches_the_character_test():
  """CJK_RANGES (used by the in-graph tokenizer) and _is_chinese_char must agree everywhere."""
  from bert_tf.tokenization import CJK_RANGES, _is_chinese_char
  for cp in range(0x30000):
    assert _is_chinese_char(cp) == any(lo <= cp <= hi for lo, hi in CJK_RANGES), hex(cp)
