"""Segmenters for Chinese whole word masking: jieba, user dictionaries, plug-ins."""
import collections

import numpy as np
import pytest

from pretraining import documents, generation, segmentation


def test_cjk_continuations_hand_checked():
  # 我们|爱|北京天安门|UCLA|3D打印: inner characters of multi-character words continue.
  words = ["我们", "爱", "北京天安门", "UCLA", "3D打印", "，"]
  assert segmentation.cjk_continuations(words) == [
      False, True, False, False, True, True, True, True, False, True]


def test_jieba_matches_jieba_lcut():
  import jieba  # pylint: disable=import-outside-toplevel
  text = "在UCLA陶哲轩手下读博是什么感受？我们爱北京天安门。"
  assert segmentation.JiebaSegmenter()(text) == jieba.lcut(text)


def test_user_dictionary_keeps_domain_terms_whole(tmp_path):
  text = "我们爱北京天安门"
  plain = segmentation.JiebaSegmenter()(text)
  assert "爱北京" not in plain
  user_dict = tmp_path / "terms.txt"
  user_dict.write_text("爱北京 100000 n\n", encoding="utf-8")
  assert "爱北京" in segmentation.JiebaSegmenter(str(user_dict))(text)


def halves(text):
  """A toy plug-in segmenter: the text as two words."""
  middle = len(text) // 2
  return [text[:middle], text[middle:]]


def tokenized_with_halves(tmp_path, vocab, text):
  corpus = tmp_path / "c.txt"
  corpus.write_text(text, encoding="utf-8")
  options = generation.GenerationOptions(vocab_file=vocab, do_whole_word_mask=True,
                                         chinese_segmenter="test_segmentation:halves")
  files = documents.expand_input_files(str(corpus))
  processor = generation.ShardProcessor(options, files)
  return processor.tokenize_shard(documents.make_shards(files, 1)[0], collections.Counter())


def test_plugged_in_segmenter_drives_the_grouping(tmp_path, pretraining_vocab):
  shard = tokenized_with_halves(tmp_path, pretraining_vocab, "我们爱北京天安门\n中国人民大学生活\n")
  # Each line is two 4-character "words": continuation flags F T T T F T T T per line.
  assert shard.continues.tolist() == [False, True, True, True] * 4


def test_unknown_segmenter_is_named():
  with pytest.raises(ValueError, match="unknown segmenter 'hanlp'"):
    segmentation.get_segmenter("hanlp")
  assert segmentation.get_segmenter("none") is None


def test_unknown_characters_align_word_by_word(tmp_path, pretraining_vocab):
  # 猫 is not in the vocabulary: it becomes [UNK], and the flags are aligned word by word.
  shard = tokenized_with_halves(tmp_path, pretraining_vocab, "我们爱猫北京天安门\n")
  # halves: 我们爱猫 | 北京天安门
  assert shard.continues.tolist() == [False, True, True, True, False, True, True, True, True]
  assert (shard.ids == 2).sum() == 1    # the one [UNK]
