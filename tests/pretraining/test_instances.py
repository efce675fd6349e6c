"""Instance construction equals the original algorithm, instance for instance.

The reference is tf-models-official's create_training_instances (its document reading, shuffle,
create_instances_from_document and truncate_seq_pair follow google-research/bert's). Its masking
(which differs from the original's and shares the rng) is replaced by the identity, so both
sides consume the same random.Random stream and must produce the same instances in the same
order.
"""
import collections
import random

import numpy as np
import pytest

from conftest import shared_path
from original_reference import reference_instances
from pretraining import documents, generation, instances

def our_instances(path, vocab, lower, max_seq_length, dupe_factor, short_seq_prob, seed):
  options = generation.GenerationOptions(vocab_file=vocab, do_lower_case=lower, random_seed=seed,
                                         max_seq_length=max_seq_length, dupe_factor=dupe_factor,
                                         short_seq_prob=short_seq_prob,
                                         # instance creation does not use it; at most what a
                                         # sequence holds (validated)
                                         max_predictions_per_seq=min(20, max_seq_length - 3))
  files = documents.expand_input_files(path)
  processor = generation.ShardProcessor(options, files)
  shard = processor.tokenize_shard(documents.make_shards(files, 1)[0], collections.Counter())
  py_rng, _ = processor.rngs(0)
  spans = instances.create_instance_spans(shard, py_rng, max_seq_length, dupe_factor,
                                          short_seq_prob)
  arrays = instances.assemble(shard, spans, max_seq_length, processor.cls_id, processor.sep_id)
  rows = [row[:n].tolist() for row, n in zip(arrays["input_ids"], arrays["lengths"])]
  return list(zip(rows, spans.is_random_next.tolist())), arrays


def check_layout(arrays, max_seq_length):
  for i, n in enumerate(arrays["lengths"].tolist()):
    mask, segments = arrays["input_mask"][i], arrays["segment_ids"][i]
    assert mask.tolist() == [1] * n + [0] * (max_seq_length - n)
    assert not arrays["input_ids"][i, n:].any() and not segments[n:].any()
    # segment_ids: 0 through the first [SEP], then 1 up to the last [SEP].
    first_sep = int(np.argmax(segments[:n])) if segments[:n].any() else n
    assert segments[:first_sep].sum() == 0 and segments[first_sep:n].all()


CASES = {
    "wikitext2_sentences": ("english_corpus/wikitext-2_valid_sentences.txt", "vocab/uncased_vocab.txt", True, 128, 2),
    "sample_text_cased": ("pretrain_corpus/sample_text.txt", "vocab/uncased_vocab.txt", False, 64, 5),
    "news_zh": ("chinese_corpus/news_zh_1.txt", "vocab/chinese_vocab.txt", True, 128, 3),
    "clue_small_seq512": ("chinese_corpus/CLUECorpusSmall_bert_sampled.txt", "vocab/chinese_vocab.txt", True, 512, 1),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_real_corpus_equals_the_original_algorithm(case, monkeypatch):
  relative, vocab, lower, max_seq_length, dupe = CASES[case]
  path, vocab = str(shared_path(relative)), str(shared_path(vocab))
  expected = reference_instances(path, vocab, lower, max_seq_length, dupe, 0.1, 12345, monkeypatch)
  got, arrays = our_instances(path, vocab, lower, max_seq_length, dupe, 0.1, 12345)
  assert len(got) == len(expected) > 50
  assert got == expected
  check_layout(arrays, max_seq_length)


def test_edge_cases_equal_the_original_algorithm(tmp_path, pretraining_vocab, monkeypatch):
  # One-sentence documents, a document of one long line, empty documents, blank-line runs,
  # a line with no tokens, and the last document without a trailing blank line.
  text = ("hello world\n\n\n\nthe quick brown fox\n\n" + "jumps over the lazy dog " * 30 +
          "\n\n\u200b\n\nhello\nworld\nthe fox\njumps\n\n\nlazy dog\nquick")
  path = tmp_path / "edge.txt"
  path.write_text(text, encoding="utf-8")
  for max_seq_length, short in ((16, 0.1), (8, 0.5), (128, 0.0)):
    expected = reference_instances(str(path), pretraining_vocab, True, max_seq_length, 4, short, 3,
                                   monkeypatch)
    got, arrays = our_instances(str(path), pretraining_vocab, True, max_seq_length, 4, short, 3)
    assert got == expected and got
    check_layout(arrays, max_seq_length)


def test_single_segment_mode(tmp_path, pretraining_vocab):
  lines = [" ".join(["hello", "world", "the", "fox"][: 1 + i % 4]) for i in range(200)]
  text = "\n".join(lines[:120]) + "\n\n" + "\n".join(lines[120:]) + "\n"
  path = tmp_path / "c.txt"
  path.write_text(text, encoding="utf-8")
  options = generation.GenerationOptions(vocab_file=pretraining_vocab, max_seq_length=24)
  files = documents.expand_input_files(str(path))
  processor = generation.ShardProcessor(options, files)
  shard = processor.tokenize_shard(documents.make_shards(files, 1)[0], collections.Counter())
  spans = instances.create_instance_spans(shard, random.Random(1), 24, 3, 0.1, next_sentence=False)
  sentence_starts = set(shard.offsets.tolist())
  assert len(spans) and not spans.is_random_next.any()
  assert (spans.b_lo == spans.b_hi).all()
  lengths = spans.a_hi - spans.a_lo
  assert lengths.max() <= 22 and lengths.min() >= 1
  # Whole sentences (no sentence here is longer than the limit) from one document.
  assert set(spans.a_lo.tolist()) <= sentence_starts and set(spans.a_hi.tolist()) <= sentence_starts
  doc_of_token = np.repeat(np.arange(len(shard.documents)),
                           shard.offsets[shard.documents[:, 1]] - shard.offsets[shard.documents[:, 0]])
  assert (doc_of_token[spans.a_lo] == doc_of_token[spans.a_hi - 1]).all()
  arrays = instances.assemble(shard, spans, 24, processor.cls_id, processor.sep_id)
  assert not arrays["segment_ids"].any()
  assert (arrays["input_ids"][np.arange(len(spans)), arrays["lengths"] - 1] == processor.sep_id).all()
  # Each dupe covers every token once.
  assert lengths.sum() == 3 * len(shard.ids)
