"""Vectorised masking against a line-by-line transcription of the original's loop."""
import numpy as np
import pytest

from pretraining import masking

MASK_ID = 103


def original_masking(tokens, continues, do_whole_word_mask, config, draws, row):
  """google-research/bert's create_masked_lm_predictions for one row, with its rng.shuffle and
  rng.random/randint calls answered from `draws` (keys order the groups; draws are read at the
  token position, or at the group index with per_word_replacement)."""
  cand_indexes = []
  for i, token in enumerate(tokens):
    if token in ("[CLS]", "[SEP]"):
      continue
    joins = (do_whole_word_mask and cand_indexes and continues[i] and
             tokens[i - 1] not in ("[CLS]", "[SEP]"))
    if joins:
      cand_indexes[-1].append(i)
    else:
      cand_indexes.append([i])
  keys = draws.group_keys[row, :len(cand_indexes)]
  shuffled = [(g, cand_indexes[g]) for g in np.argsort(keys, kind="stable")]
  assert len(set(keys.tolist())) == len(keys)   # no ties: any sort gives this order
  output_tokens = list(tokens)
  num_to_predict = min(config.max_predictions_per_seq,
                       max(1, int(round(len(tokens) * config.masked_lm_prob))))
  masked_lms = []
  covered = set()
  for group, index_set in shuffled:
    if len(masked_lms) >= num_to_predict:
      break
    if len(masked_lms) + len(index_set) > num_to_predict:
      continue
    if any(index in covered for index in index_set):
      continue
    for index in index_set:
      covered.add(index)
      masked_lms.append((index, tokens[index]))
  masked_lms.sort()
  # The draws of the k-th masked position (in position order); per word: its first token's.
  slot_of = {index: k for k, (index, _) in enumerate(masked_lms)}
  word_head = {}
  for index_set in cand_indexes:
    for index in index_set:
      word_head[index] = index_set[0]
  for index, _ in masked_lms:
    at = slot_of[word_head[index]] if config.per_word_replacement else slot_of[index]
    if draws.replace[row, at] < 0.8:
      masked_token = MASK_ID
    elif draws.keep[row, at] < 0.5:
      masked_token = tokens[index]
    else:
      masked_token = int(config.random_token_ids[draws.random_index[row, slot_of[index]]])
    output_tokens[index] = masked_token
  return output_tokens, [p for p, _ in masked_lms], [label for _, label in masked_lms]


def random_batch(rng, n, seq_length):
  ids = np.zeros((n, seq_length), np.int64)
  candidates = np.zeros((n, seq_length), bool)
  continues = rng.random((n, seq_length)) < 0.4
  lengths = np.zeros(n, np.int64)
  rows = []
  for i in range(n):
    la = int(rng.integers(1, seq_length - 4))
    lb = int(rng.integers(0, seq_length - 2 - la))  # 0: single segment
    tokens = ["[CLS]"] + list(rng.integers(1000, 2000, la)) + ["[SEP]"]
    if lb:
      tokens += list(rng.integers(1000, 2000, lb)) + ["[SEP]"]
    lengths[i] = len(tokens)
    for j, token in enumerate(tokens):
      ids[i, j] = {"[CLS]": 101, "[SEP]": 102}.get(token, token) if isinstance(token, str) else token
      candidates[i, j] = not isinstance(token, str)
    rows.append([t if isinstance(t, str) else int(t) for t in tokens])
  return ids, candidates, continues & candidates, lengths, rows


@pytest.mark.parametrize("whole_word,per_word,prob,max_predictions", [
    (False, False, 0.15, 20), (True, False, 0.15, 20), (True, True, 0.15, 20),
    (True, False, 0.3, 7), (False, False, 0.5, 3), (True, False, 0.02, 20)])
def test_matches_the_original_loop(whole_word, per_word, prob, max_predictions):
  rng = np.random.default_rng(7)
  n, seq_length = 300, 40
  ids, candidates, continues, lengths, rows = random_batch(rng, n, seq_length)
  config = masking.MaskingConfig(prob, max_predictions, MASK_ID, np.arange(30522),
                                 do_whole_word_mask=whole_word, per_word_replacement=per_word)
  draws = masking.MaskingDraws.draw(rng, n, seq_length, max_predictions, 30522)
  out = masking.mask_batch(ids, candidates, continues, lengths, config, draws)
  for i, tokens in enumerate(rows):
    expected, positions, labels = original_masking(tokens, continues[i], whole_word, config,
                                                   draws, i)
    expected_ids = [{"[CLS]": 101, "[SEP]": 102}.get(t, t) if isinstance(t, str) else t
                    for t in expected]
    k = len(positions)
    assert out["input_ids"][i, :len(tokens)].tolist() == expected_ids, i
    assert out["masked_lm_positions"][i, :k].tolist() == positions
    assert out["masked_lm_ids"][i, :k].tolist() == labels
    assert out["masked_lm_weights"][i].tolist() == [1.0] * k + [0.0] * (max_predictions - k)
    assert not out["masked_lm_positions"][i, k:].any() and not out["masked_lm_ids"][i, k:].any()


def test_budget_rounds_like_python():
  config = masking.MaskingConfig(0.15, 20, MASK_ID, np.arange(10))
  lengths = np.arange(1, 200)
  expected = [min(20, max(1, int(round(n * 0.15)))) for n in lengths.tolist()]
  assert masking.num_to_predict(lengths, config).tolist() == expected
  # Half-way cases round to even in both.
  config = masking.MaskingConfig(0.5, 100, MASK_ID, np.arange(10))
  assert masking.num_to_predict(np.array([5, 7, 9]), config).tolist() == [2, 4, 4]


def test_replacement_rates():
  rng = np.random.default_rng(0)
  ids, candidates, continues, lengths, _ = random_batch(rng, 4000, 64)
  config = masking.MaskingConfig(0.15, 20, MASK_ID, np.arange(30522))
  out = masking.mask_batch(ids, candidates, continues, lengths, config,
                           masking.MaskingDraws.draw(rng, *ids.shape, 20, 30522))
  where = out["masked"]
  new, old = out["input_ids"][where], ids[where]
  total = where.sum()
  assert abs((new == MASK_ID).sum() / total - 0.8) < 0.01
  assert abs((new == old).sum() / total - 0.1) < 0.01
  assert abs(((new != MASK_ID) & (new != old)).sum() / total - 0.1) < 0.01
