"""Training instances: the original's segment A/B construction, on flat token arrays.

A shard's text lives in one flat id array; sentence s is ids[offsets[s]:offsets[s + 1]] and a
document is a range of consecutive sentences. An instance's segments are then contiguous
ranges of that array, so an instance is four integers (a_lo, a_hi, b_lo, b_hi) plus the
next-sentence label, and building the id matrix of a batch is one vectorised gather.

create_instance_spans follows google-research/bert's create_training_instances and
create_instances_from_document call by call, with the same `random.Random` calls in the same
order (the document shuffle, the target length, the A/B split, the random next document and
start, the put-back of unused sentences, the token-by-token truncation and the final instance
shuffle); only masking (pretraining.masking) draws from its own numpy generator. So, given the
same documents and seed, the spans equal the original's instances exactly; the tests check this
against tf-models-official's copy of the algorithm.
"""
import dataclasses

import numpy as np


@dataclasses.dataclass
class TokenizedShard:
  """ids: int32 [num_tokens]; continues: bool [num_tokens] (token continues the previous
  token's word); offsets: int64 [num_sentences + 1]; documents: int64 [num_documents, 2]
  sentence ranges [first, end)."""
  ids: np.ndarray
  continues: np.ndarray
  offsets: np.ndarray
  documents: np.ndarray


@dataclasses.dataclass
class InstanceSpans:
  """Token ranges of each instance's segments in a TokenizedShard, in output order. For
  single-segment instances (no next-sentence task) b_lo == b_hi."""
  a_lo: np.ndarray
  a_hi: np.ndarray
  b_lo: np.ndarray
  b_hi: np.ndarray
  is_random_next: np.ndarray

  def __len__(self):
    return len(self.a_lo)

  def take(self, index):
    return InstanceSpans(*(getattr(self, f.name)[index] for f in dataclasses.fields(self)))


def create_instance_spans(shard, rng, max_seq_length, dupe_factor, short_seq_prob,
                          next_sentence=True):
  """All instances of a shard, shuffled as the original does.

  Args:
    shard: TokenizedShard.
    rng: random.Random; consumed exactly as the original consumes its rng (masking aside).
    max_seq_length, dupe_factor, short_seq_prob: the original's flags.
    next_sentence: False gives single-segment instances (no next-sentence task): sentences
      are packed contiguously up to the target length, [CLS] A [SEP], label 0.

  Returns:
    InstanceSpans.
  """
  documents = [tuple(d) for d in shard.documents.tolist()]
  rng.shuffle(documents)
  offsets = shard.offsets.tolist()
  lengths = np.diff(shard.offsets).tolist()
  spans = []
  make = _document_pairs if next_sentence else _document_singles
  for _ in range(dupe_factor):
    for index in range(len(documents)):
      make(documents, index, offsets, lengths, max_seq_length, short_seq_prob, rng, spans)
  rng.shuffle(spans)
  if not spans:
    empty = np.zeros(0, np.int64)
    return InstanceSpans(empty, empty, empty, empty, np.zeros(0, bool))
  columns = np.array(spans, np.int64).T
  return InstanceSpans(columns[0], columns[1], columns[2], columns[3], columns[4].astype(bool))


def _target_length(max_num_tokens, short_seq_prob, rng):
  if rng.random() < short_seq_prob:
    return rng.randint(2, max_num_tokens)
  return max_num_tokens


def _document_pairs(documents, index, offsets, lengths, max_seq_length, short_seq_prob, rng, out):
  """create_instances_from_document: appends (a_lo, a_hi, b_lo, b_hi, is_random_next)."""
  first, end = documents[index]
  max_num_tokens = max_seq_length - 3     # [CLS] A [SEP] B [SEP]
  target = _target_length(max_num_tokens, short_seq_prob, rng)
  random, randint, append = rng.random, rng.randint, out.append  # hot loop: local names
  chunk_first = first
  current_length = 0
  i = first
  while i < end:
    current_length += lengths[i]
    if i == end - 1 or current_length >= target:
      chunk_size = i - chunk_first + 1
      a_end = randint(1, chunk_size - 1) if chunk_size >= 2 else 1
      a_lo, a_hi = offsets[chunk_first], offsets[chunk_first + a_end]
      if chunk_size == 1 or random() < 0.5:
        is_random_next = 1
        target_b = target - (a_hi - a_lo)
        for _ in range(10):
          other = randint(0, len(documents) - 1)
          if other != index:
            break
        other_first, other_end = documents[other]
        j = other_first + randint(0, other_end - other_first - 1)
        b_lo, b_length = offsets[j], 0
        while j < other_end:
          b_length += lengths[j]
          j += 1
          if b_length >= target_b:
            break
        b_hi = offsets[j]
        i -= chunk_size - a_end           # put the unused sentences back
      else:
        is_random_next = 0
        b_lo, b_hi = a_hi, offsets[i + 1]
      # truncate_seq_pair: one token at a time from the longer side, front or back at random.
      while (a_hi - a_lo) + (b_hi - b_lo) > max_num_tokens:
        if (a_hi - a_lo) > (b_hi - b_lo):
          if random() < 0.5:
            a_lo += 1
          else:
            a_hi -= 1
        elif random() < 0.5:
          b_lo += 1
        else:
          b_hi -= 1
      append((a_lo, a_hi, b_lo, b_hi, is_random_next))
      chunk_first = i + 1
      current_length = 0
    i += 1


def _document_singles(documents, index, offsets, lengths, max_seq_length, short_seq_prob, rng,
                      out):
  """No next-sentence task: whole sentences packed up to the target length ([CLS] A [SEP]).

  A sentence that does not fit starts the next instance; one longer than the limit on its own
  is cut from a random end, as the original truncates.
  """
  first, end = documents[index]
  max_num_tokens = max_seq_length - 2
  target = _target_length(max_num_tokens, short_seq_prob, rng)
  i = first
  while i < end:
    j, length = i, 0
    while j < end and (j == i or length + lengths[j] <= target):
      length += lengths[j]
      j += 1
    lo, hi = offsets[i], offsets[j]
    while hi - lo > max_num_tokens:
      if rng.random() < 0.5:
        lo += 1
      else:
        hi -= 1
    out.append((lo, hi, hi, hi, 0))
    i = j


def assemble(shard, spans, max_seq_length, cls_id, sep_id):
  """Id matrix and layout of a batch of instances.

  Returns:
    dict: input_ids int32 [n, max_seq_length] ([CLS] A [SEP] B [SEP], 0-padded), input_mask,
    segment_ids (int8, same shape), candidates (bool, maskable tokens), continues (bool),
    lengths (int64 [n], real length), next_sentence_labels (int64 [n, 1]).
  """
  la = (spans.a_hi - spans.a_lo)[:, None]
  lb = (spans.b_hi - spans.b_lo)[:, None]
  paired = lb > 0
  col = np.arange(max_seq_length)[None, :]
  in_a = (col >= 1) & (col <= la)
  in_b = (col >= la + 2) & (col < la + 2 + lb)
  source = np.where(in_a, spans.a_lo[:, None] + col - 1,
                    np.where(in_b, spans.b_lo[:, None] + col - la - 2, 0))
  candidates = in_a | in_b
  lengths = (la + 2 + np.where(paired, lb + 1, 0))[:, 0]
  sep = (col == la + 1) | (paired & (col == la + 2 + lb))
  input_ids = np.where(candidates, shard.ids[source],
                       np.where(col == 0, cls_id, np.where(sep, sep_id, 0))).astype(np.int32)
  continues = candidates & shard.continues[source]
  return {
      "input_ids": input_ids,
      "input_mask": (col < lengths[:, None]).astype(np.int8),
      "segment_ids": (paired & (col >= la + 2) & (col < lengths[:, None])).astype(np.int8),
      "candidates": candidates,
      "continues": continues,
      "lengths": lengths,
      "next_sentence_labels": spans.is_random_next.astype(np.int64)[:, None],
  }
