"""Masked-LM predictions for a batch of instances at once: the original's rules, in numpy.

google-research/bert's create_masked_lm_predictions, per instance:
  1. candidates are all tokens but [CLS]/[SEP]; with whole word masking a token continuing a
     word joins the previous candidate's group (a "word"), otherwise every token is a group;
  2. the groups are shuffled;
  3. num_to_predict = min(max_predictions_per_seq, max(1, round(len(tokens) * masked_lm_prob)))
     where len(tokens) counts [CLS] and [SEP];
  4. groups are taken in shuffled order; a group that would exceed num_to_predict is skipped
     (a later, shorter one may still fit); stop when the budget is met;
  5. each masked token independently: 80% [MASK], else 50/50 unchanged or a uniformly random
     vocabulary entry;
  6. positions sorted; labels are the original ids.
Here the shuffle is "sort groups by a random key", and steps 4-5 run over the whole batch as
array operations (step 4 is one vectorised pass per group rank). A token that continues a word
right after [CLS]/[SEP] (the word's head was truncated away, or segment B starts mid-word)
starts its own group; the original would glue it to the last word of segment A across [SEP].
With per_word_replacement, step 5 draws once per word (tf-models-official's choice).

All randomness comes in a MaskingDraws, so the function is pure and testable against a
straight transcription of the original loop fed the same draws.
"""
import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class MaskingConfig:
  """Masking parameters (the original's flag names).

  random_token_ids: int array of the ids a random replacement is drawn from uniformly (the
    original draws from its vocabulary's distinct tokens).
  """
  masked_lm_prob: float
  max_predictions_per_seq: int
  mask_id: int
  random_token_ids: np.ndarray
  do_whole_word_mask: bool = False
  per_word_replacement: bool = False


@dataclasses.dataclass
class MaskingDraws:
  """Random numbers for a batch of n rows: group_keys [n, seq_length] orders the groups of each
  row (group g = the g-th word in position order); replace, keep and random_index
  [n, max_predictions_per_seq] are step 5's draws for the row's k-th masked token in position
  order (with per_word_replacement, replace/keep are read at the slot of the word's first token)."""
  group_keys: np.ndarray
  replace: np.ndarray
  keep: np.ndarray
  random_index: np.ndarray

  @classmethod
  def draw(cls, rng, num_rows, seq_length, max_predictions, num_random_tokens):
    small = (num_rows, max_predictions)
    return cls(rng.random((num_rows, seq_length), np.float32), rng.random(small, np.float32),
               rng.random(small, np.float32), rng.integers(0, num_random_tokens, size=small))


def num_to_predict(lengths, config):
  """Step 3 for int array `lengths` (tokens incl. [CLS]/[SEP]); np.rint rounds half to even
  as Python's round() does."""
  budget = np.rint(lengths.astype(np.float64) * config.masked_lm_prob).astype(np.int64)
  return np.minimum(config.max_predictions_per_seq, np.maximum(1, budget))


def mask_batch(input_ids, candidates, continues, lengths, config, draws):
  """Applies masked-LM masking to a batch.

  Args:
    input_ids: int [n, seq_length] ids with [CLS]/[SEP] in place, 0 after `lengths`.
    candidates: bool [n, seq_length], True at maskable tokens (not [CLS]/[SEP]/padding).
    continues: bool [n, seq_length], True where a token continues the previous token's word
      (## piece or inner character of a Chinese word); only read with do_whole_word_mask.
    lengths: int [n], real length of each row (incl. [CLS]/[SEP]).
    config: MaskingConfig.
    draws: MaskingDraws for n rows.

  Returns:
    dict with input_ids (masked copy), masked_lm_positions, masked_lm_ids (int64
    [n, max_predictions_per_seq], 0-padded), masked_lm_weights (float32, 1.0 at real
    predictions), masked (bool [n, seq_length]) and counts num_masked, num_as_mask (replaced
    by [MASK]) and num_unchanged.
  """
  n, seq_length = input_ids.shape
  starts = candidates.copy()
  if config.do_whole_word_mask:
    previous_candidate = np.zeros_like(candidates)
    previous_candidate[:, 1:] = candidates[:, :-1]
    starts &= ~(continues & previous_candidate)
  # int16/int32 where they suffice: these [n, seq_length] passes are most of the cost.
  group = np.cumsum(starts, axis=1, dtype=np.int16)  # group index + 1 of each candidate
  group = np.where(candidates, group - 1, 0).astype(np.int16)
  num_groups = starts.sum(axis=1)
  flat_group = (np.arange(n, dtype=np.int32)[:, None] * seq_length + group)[candidates]
  group_length = np.bincount(flat_group, minlength=n * seq_length).reshape(n, seq_length)

  ranks = np.arange(seq_length)[None, :]
  keys = np.where(ranks < num_groups[:, None], draws.group_keys, np.inf)
  order = np.argsort(keys, axis=1)     # the shuffle of step 2 (ties have probability ~0)
  sorted_length = np.take_along_axis(group_length, order, axis=1)

  budget = num_to_predict(lengths, config)
  taken = np.zeros(n, np.int64)
  accepted_sorted = np.zeros((n, seq_length), bool)
  for k in range(int(num_groups.max(initial=0))):    # step 4, one group rank at a time
    length = sorted_length[:, k]
    ok = (length > 0) & (taken + length <= budget)
    accepted_sorted[:, k] = ok
    taken += np.where(ok, length, 0)
    if k % 8 == 7 and np.all((taken >= budget) | (k + 1 >= num_groups)):
      break
  accepted = np.zeros((n, seq_length), bool)
  np.put_along_axis(accepted, order, accepted_sorted, axis=1)
  masked = candidates & np.take_along_axis(accepted, group, axis=1)

  # Masked tokens in position order: row, column and slot (k-th of its row), i.e. step 6.
  rows, cols = np.nonzero(masked)
  counts = np.bincount(rows, minlength=n)
  first_of_row = np.cumsum(counts) - counts
  order_index = np.arange(len(rows))
  slots = order_index - first_of_row[rows]
  # Step 5.
  if config.per_word_replacement:   # a word's tokens are consecutive in this order
    draw_slots = np.maximum.accumulate(np.where(starts[rows, cols], order_index, 0))
    draw_slots -= first_of_row[rows]
  else:
    draw_slots = slots
  original = input_ids[rows, cols]
  replace = draws.replace[rows, draw_slots]
  keep = draws.keep[rows, draw_slots]
  random_ids = config.random_token_ids[draws.random_index[rows, slots]]
  new_ids = np.where(replace < 0.8, config.mask_id, np.where(keep < 0.5, original, random_ids))
  output_ids = input_ids.copy()
  output_ids[rows, cols] = new_ids

  max_predictions = config.max_predictions_per_seq
  positions = np.zeros((n, max_predictions), np.int64)
  labels = np.zeros((n, max_predictions), np.int64)
  weights = np.zeros((n, max_predictions), np.float32)
  positions[rows, slots] = cols
  labels[rows, slots] = original
  weights[rows, slots] = 1.0
  return {"input_ids": output_ids, "masked_lm_positions": positions, "masked_lm_ids": labels,
          "masked_lm_weights": weights, "masked": masked,
          "num_masked": len(rows), "num_as_mask": int((new_ids == config.mask_id).sum()),
          "num_unchanged": int((new_ids == original).sum())}
