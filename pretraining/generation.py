"""One shard of text -> one TFRecord file of masked-LM / next-sentence instances.

ShardProcessor does a shard's whole job: read its byte range (pretraining.documents), tokenize
the lines in batches (FastTokenizer in TensorFlow, or on small jobs CachedTokenizer, which needs
no TensorFlow; both give the original FullTokenizer's ids), mark word
continuations for whole word masking (## pieces; inner characters of Chinese words from the
segmenter), build the instances as the original does (pretraining.instances), mask them a batch
at a time (pretraining.masking), serialize (pretraining.features) and write the file under a
temporary name, renamed when complete. The local runner and the Beam pipeline both call it, so
the same shard gives the same bytes on either.

Randomness per shard: the original's `random.Random`, seeded with random_seed + 1000003 * shard
index (for a single shard: exactly random_seed, like the original), and a numpy generator
seeded with (random_seed, shard index) for masking. Output depends on the input files, the
flags and the shard count only.
"""
import collections
import dataclasses
import json
import os
import random

import numpy as np

from bert_tf.cached_tokenizer import CachedTokenizer
from bert_tf.errors import FlagError, InputFileError
from bert_tf.tokenization import BasicTokenizer, WordpieceTokenizer, load_vocab
from pretraining import documents as documents_lib
from pretraining import features, fileio, instances, masking, segmentation, tfrecord

_LINE_BATCH = 4096
_INSTANCE_BATCH = 2048
REQUIRED_TOKENS = ("[CLS]", "[SEP]", "[MASK]", "[UNK]")


@dataclasses.dataclass(frozen=True)
class GenerationOptions:
  """The flags that decide the content of the records (the original's names first)."""
  vocab_file: str
  do_lower_case: bool = True
  do_whole_word_mask: bool = False
  max_seq_length: int = 128
  max_predictions_per_seq: int = 20
  random_seed: int = 12345
  dupe_factor: int = 10
  masked_lm_prob: float = 0.15
  short_seq_prob: float = 0.1
  next_sentence: bool = True
  per_word_replacement: bool = False
  chinese_segmenter: str = "jieba"
  chinese_segmenter_user_dict: str = ""
  max_input_chars_per_word: int = 200

  def validate(self):
    checks = [
        (self.max_seq_length >= 5, "max_seq_length must be at least 5"),
        (self.max_predictions_per_seq >= 1, "max_predictions_per_seq must be at least 1"),
        (self.dupe_factor >= 1, "dupe_factor must be at least 1"),
        (0.0 < self.masked_lm_prob < 1.0, "masked_lm_prob must be in (0, 1)"),
        (0.0 <= self.short_seq_prob <= 1.0, "short_seq_prob must be in [0, 1]"),
    ]
    # A sequence holds max_seq_length minus [CLS] and one [SEP] per segment.
    room = self.max_seq_length - (3 if self.next_sentence else 2)
    checks.append((self.max_predictions_per_seq <= room,
                   f"max_predictions_per_seq must be at most {room}, the tokens a sequence of "
                   f"max_seq_length={self.max_seq_length} holds"))
    for ok, message in checks:
      if not ok:
        value = message.split()[0]
        raise FlagError(f"--{value}={getattr(self, value)}: {message.split(' ', 1)[1]}")
    segmentation.get_segmenter(self.chinese_segmenter, self.chinese_segmenter_user_dict or None)


def shard_output_paths(output_file, num_shards):
  """The original's comma-separated list, one file per shard; or one name, sharded as
  NAME-00000-of-00004 when there are several shards (so NAME* finds them all)."""
  names = [n.strip() for n in output_file.split(",") if n.strip()]
  if len(names) > 1:
    if num_shards not in (0, len(names)):
      raise FlagError(f"--output_file lists {len(names)} files but --num_shards={num_shards}")
    return names
  if num_shards == 1:
    return names
  return [f"{names[0]}-{i:05d}-of-{num_shards:05d}" for i in range(num_shards)]


def _hidden(path, suffix):
  directory, name = os.path.split(path)
  return os.path.join(directory, f".{name}.{suffix}")


def stats_path(output_path):
  return _hidden(output_path, "stats.json")


# Both give FullTokenizer's ids, so the records are the same bytes either way
# (tests/pretraining/test_generation.py); only the speed differs. "fast": FastTokenizer, ops
# of tensorflow-text, fastest per megabyte but paying TensorFlow's import (seconds) in every
# process. "cached": CachedTokenizer, Python memoized per word, no TensorFlow: faster on small
# jobs (local_runner.choose_tokenizer).
TOKENIZERS = ("fast", "cached")


class ShardProcessor:
  """Turns shards into record files; picklable (the tokenizer is built on first use)."""

  def __init__(self, options, input_files, tokenizer_kind="fast"):
    options.validate()
    self.options = options
    self.input_files = list(input_files)
    self.tokenizer_threads = None  # FastTokenizer's num_shards; 1 in single-threaded workers
    self.tokenizer_kind = tokenizer_kind   # see TOKENIZERS
    self._ready = False

  def __getstate__(self):
    return {"options": self.options, "input_files": self.input_files,
            "tokenizer_threads": self.tokenizer_threads, "tokenizer_kind": self.tokenizer_kind,
            "_ready": False}

  def uses_tensorflow(self):
    """Whether the work imports TensorFlow (FastTokenizer, or remote files)."""
    return self.tokenizer_kind == "fast" or any("://" in f.path for f in self.input_files)

  def __setstate__(self, state):
    self.__dict__.update(state)

  def _setup(self):
    if self._ready:
      return
    opts = self.options
    if self.tokenizer_kind not in TOKENIZERS:
      raise ValueError(f"tokenizer_kind must be one of {sorted(TOKENIZERS)}, got "
                       f"{self.tokenizer_kind!r}")
    vocab = load_vocab(opts.vocab_file)
    missing = [t for t in REQUIRED_TOKENS if t not in vocab]
    if missing:
      raise InputFileError(f"vocab_file {opts.vocab_file} lacks {', '.join(missing)}, which "
                       "pretraining data needs; is it a BERT WordPiece vocabulary?")
    size = max(vocab.values()) + 1
    self.cls_id, self.sep_id = vocab["[CLS]"], vocab["[SEP]"]
    self.unk_id = vocab["[UNK]"]
    self.is_suffix = np.zeros(size, bool)
    self.is_cjk = np.zeros(size, bool)
    for token, index in vocab.items():
      self.is_suffix[index] = token.startswith("##")
      self.is_cjk[index] = len(token) == 1 and segmentation.is_cjk(token)
    self.masking = masking.MaskingConfig(
        masked_lm_prob=opts.masked_lm_prob, max_predictions_per_seq=opts.max_predictions_per_seq,
        mask_id=vocab["[MASK]"], random_token_ids=self._random_token_ids(vocab),
        do_whole_word_mask=opts.do_whole_word_mask,
        per_word_replacement=opts.per_word_replacement)
    if self.tokenizer_kind == "fast":
      # TensorFlow only here: a process that merely plans shards never pays its import.
      from bert_tf.fast_tokenizer import FastTokenizer  # pylint: disable=import-outside-toplevel
      self.tokenizer = FastTokenizer(opts.vocab_file, do_lower_case=opts.do_lower_case,
                                     max_input_chars_per_word=opts.max_input_chars_per_word,
                                     num_shards=self.tokenizer_threads)
    else:
      self.tokenizer = CachedTokenizer(opts.vocab_file, do_lower_case=opts.do_lower_case,
                                       max_input_chars_per_word=opts.max_input_chars_per_word)
    self.segmenter = None
    if opts.do_whole_word_mask:
      self.segmenter = segmentation.get_segmenter(opts.chinese_segmenter,
                                                  opts.chinese_segmenter_user_dict or None)
    self._basic = BasicTokenizer(opts.do_lower_case)
    self._wordpiece = WordpieceTokenizer(vocab, max_input_chars_per_word=opts.max_input_chars_per_word)
    self._ready = True

  @staticmethod
  def _random_token_ids(vocab):
    """The pool of the 10% random replacements: the vocabulary's distinct tokens, as the
    original draws, minus "##" + CJK character entries (7,321 of Google's Chinese vocabulary's
    21,128), which the tokenizer never produces since each CJK character is a word of its own:
    a random input token is then always one a real text could hold."""
    return np.array([index for token, index in vocab.items()
                     if not (token.startswith("##") and segmentation.has_cjk(token[2:]))],
                    np.int64)

  # -- reading and tokenizing -------------------------------------------------------------

  def tokenize_shard(self, shard, stats, progress=None):
    """Reads and tokenizes a shard -> instances.TokenizedShard (documents in file order)."""
    self._setup()
    ids, continues, lengths, doc_of_line = [], [], [], []
    batch, batch_docs = [], []
    doc = 0
    read_stats = documents_lib.ReadStats()
    long_example = None
    max_tokens = self.options.max_seq_length - (3 if self.options.next_sentence else 2)

    def flush():
      nonlocal long_example
      if not batch:
        return
      batch_ids, batch_cont, batch_lengths = self._tokenize_lines([b[3] for b in batch])
      ids.append(batch_ids)
      continues.append(batch_cont)
      lengths.append(batch_lengths)
      doc_of_line.append(np.array(batch_docs, np.int64))
      too_long = np.nonzero(batch_lengths > max_tokens)[0]
      stats["sentences_truncated"] += len(too_long)
      if len(too_long) and long_example is None:
        long_example = documents_lib.LineLocation(*batch[too_long[0]][:3])
      if progress:
        progress(documents=len(set(batch_docs)), lines=len(batch))
      batch.clear()
      batch_docs.clear()

    for path, range_start, line_in_range, text in documents_lib.read_shard_lines(
        self.input_files, shard, read_stats):
      if not text:
        doc += 1
        continue
      batch.append((path, range_start, line_in_range, text))
      batch_docs.append(doc)
      if len(batch) >= _LINE_BATCH:
        flush()
    flush()
    stats.update(read_stats)
    if long_example is not None:
      stats.setdefault("examples", {})["sentence_truncated"] = str(long_example)

    ids = np.concatenate(ids) if ids else np.zeros(0, np.int32)
    continues = np.concatenate(continues) if continues else np.zeros(0, bool)
    lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
    doc_of_line = np.concatenate(doc_of_line) if doc_of_line else np.zeros(0, np.int64)
    # Lines whose tokenization is empty are dropped (not document breaks), as in the original.
    kept = lengths > 0
    stats["lines_without_tokens"] += int((~kept).sum())
    lengths, doc_of_line = lengths[kept], doc_of_line[kept]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    starts = np.nonzero(np.diff(doc_of_line, prepend=-1))[0]
    docs = np.stack([starts, np.append(starts[1:], len(lengths))], axis=1) if len(starts) else (
        np.zeros((0, 2), np.int64))
    stats["documents"] += len(docs)
    stats["sentences"] += len(lengths)
    stats["tokens"] += len(ids)
    stats["unknown_tokens"] += int((ids == self.unk_id).sum())
    stats["single_sentence_documents"] += int((docs[:, 1] - docs[:, 0] == 1).sum()) if len(docs) else 0
    return instances.TokenizedShard(ids, continues, offsets, docs)

  def _tokenize_lines(self, texts):
    if self.tokenizer_kind == "fast":
      ragged = self.tokenizer.tokenize_to_ids_eagerly(texts)
      ids = ragged.flat_values.numpy().astype(np.int32)
      lengths = ragged.row_lengths().numpy()
    else:
      ids, lengths = self.tokenizer.ids_of_lines(texts)
    continues = np.zeros(len(ids), bool)
    if self.options.do_whole_word_mask:
      continues |= self.is_suffix[ids]
      if self.segmenter is not None:
        continues |= self._cjk_continuations(texts, ids, lengths)
    return ids, continues, lengths

  def _cjk_continuations(self, texts, ids, lengths):
    """Inner characters of segmented Chinese words, at their token positions."""
    row = np.repeat(np.arange(len(texts)), lengths)
    cjk_tokens = self.is_cjk[ids]
    counts = np.bincount(row[cjk_tokens], minlength=len(texts))
    starts = np.concatenate([[0], np.cumsum(lengths)])
    result = np.zeros(len(ids), bool)
    segmented = [k for k, text in enumerate(texts) if counts[k] or segmentation.has_cjk(text)]
    flags, char_counts = segmentation.cjk_continuations_batch(
        [self.segmenter(texts[k]) for k in segmented])
    matched = np.zeros(len(texts), bool)
    matched[segmented] = char_counts == counts[segmented]
    keep = np.repeat(matched[segmented], char_counts)
    result[cjk_tokens & matched[row]] = flags[keep]
    line_flags = np.split(flags, np.cumsum(char_counts)[:-1])
    for k, line in zip(segmented, line_flags):
      if not matched[k]:
        # A CJK character missing from the vocabulary became [UNK]: align word by word.
        result[starts[k]:starts[k + 1]] = self._aligned_line_flags(texts[k], line.tolist(),
                                                                   lengths[k])
    return result

  def _aligned_line_flags(self, text, cjk_flags, num_tokens):
    token_flags, next_flag = [], iter(cjk_flags)
    for word in self._basic.tokenize(text):
      pieces = self._wordpiece.tokenize(word)
      if len(word) == 1 and segmentation.is_cjk(word):
        token_flags.append(next(next_flag, False))
      else:
        token_flags.extend([False] * len(pieces))
    if len(token_flags) != num_tokens:  # cannot happen: FastTokenizer == FullTokenizer
      raise AssertionError(f"token count mismatch on line {text[:80]!r}")
    return np.array(token_flags, bool)

  # -- instances and records ----------------------------------------------------------------

  def rngs(self, shard_index):
    seed = self.options.random_seed
    return random.Random(seed + 1000003 * shard_index), np.random.default_rng([seed, shard_index])

  def record_batches(self, shard, stats, progress=None):
    """Yields lists of the serialized records of a shard, in output order."""
    opts = self.options
    tokenized = self.tokenize_shard(shard, stats, progress)
    py_rng, np_rng = self.rngs(shard.index)
    spans = instances.create_instance_spans(tokenized, py_rng, opts.max_seq_length,
                                            opts.dupe_factor, opts.short_seq_prob,
                                            opts.next_sentence)
    for begin in range(0, len(spans), _INSTANCE_BATCH):
      batch = spans.take(slice(begin, begin + _INSTANCE_BATCH))
      arrays = instances.assemble(tokenized, batch, opts.max_seq_length, self.cls_id,
                                  self.sep_id)
      draws = masking.MaskingDraws.draw(np_rng, len(batch), opts.max_seq_length,
                                        opts.max_predictions_per_seq,
                                        len(self.masking.random_token_ids))
      masked = masking.mask_batch(arrays["input_ids"], arrays["candidates"],
                                  arrays["continues"], arrays["lengths"], self.masking, draws)
      _count_batch(stats, arrays, masked)
      record_features = {name: arrays[name] for name in ("input_mask", "segment_ids",
                                                         "next_sentence_labels")}
      record_features.update({name: masked[name] for name in (
          "input_ids", "masked_lm_positions", "masked_lm_ids", "masked_lm_weights")})
      if progress:
        progress(instances=len(batch))
      yield features.serialize_examples(record_features)

  def write_shard(self, shard, output_path, progress=None):
    """Writes one shard's records to output_path atomically; returns its stats dict."""
    stats = collections.Counter()
    # The process id in the name: a stale worker of a killed run cannot write into the file of
    # the rerun's worker on the same shard (each renames its own complete file).
    temporary = _hidden(output_path, f"{os.getpid()}.incomplete")
    self._setup()
    with tfrecord.RecordWriter(temporary) as writer:
      for batch in self.record_batches(shard, stats, progress):
        writer.write_all(batch)
    stats = dict(stats)
    stats.update(shard=shard.index, num_shards=shard.num_shards, output=output_path)
    fileio.write_text_atomically(stats_path(output_path), json.dumps(stats, indent=1, sort_keys=True))
    fileio.rename(temporary, output_path)
    return stats


def _count_batch(stats, arrays, masked):
  stats["instances"] += len(arrays["lengths"])
  stats["real_tokens"] += int(arrays["candidates"].sum())
  stats["padded_positions"] += int(arrays["lengths"].size * arrays["input_ids"].shape[1] -
                                   arrays["lengths"].sum())
  stats["random_next"] += int(arrays["next_sentence_labels"].sum())
  stats["masked"] += masked["num_masked"]
  stats["masked_as_mask"] += masked["num_as_mask"]
  stats["masked_unchanged"] += masked["num_unchanged"]
