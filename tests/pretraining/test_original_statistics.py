"""Our pretraining data against the UNMODIFIED original algorithm, statistically.

google-research/bert's create_pretraining_data draws the masking's random numbers from the same
random.Random as instance creation, so after the first masked instance the two programs consume
different streams: with the same seed the unmodified original writes other instances than ours
(ours equal the original's instance for instance only when its masking is stubbed out, see
test_instances.py). What holds, and is checked here on real corpora, is that both draw from
the same distribution: instance count, lengths, the short-sequence share, the next-sentence
rate, the masking rate and the 80/10/10 split agree within the stated tolerances (a few
standard errors at these sizes).

The reference is tf-models-official's create_training_instances (document reading, shuffle,
create_instances_from_document and truncate_seq_pair as google-research/bert's) with its
create_masked_lm_predictions replaced by the original's, transcribed below, consuming the same
rng: that is the unmodified original program.
"""
import random

import numpy as np
import pytest

from conftest import shared_path
from original_reference import original_decode
from pretraining import local_runner
from pretraining.generation import GenerationOptions


def original_create_masked_lm_predictions(tokens, masked_lm_prob, max_predictions_per_seq,
                                          vocab_words, rng, do_whole_word_mask=False):
  """google-research/bert's create_masked_lm_predictions (the 2019 version with the
  do_whole_word_mask flag, default False), with its own rng calls."""
  cand_indexes = []
  for i, token in enumerate(tokens):
    if token in ("[CLS]", "[SEP]"):
      continue
    if do_whole_word_mask and len(cand_indexes) >= 1 and token.startswith("##"):
      cand_indexes[-1].append(i)
    else:
      cand_indexes.append([i])
  rng.shuffle(cand_indexes)
  output_tokens = list(tokens)
  num_to_predict = min(max_predictions_per_seq,
                       max(1, int(round(len(tokens) * masked_lm_prob))))
  masked_lms = []
  covered_indexes = set()
  for index_set in cand_indexes:
    if len(masked_lms) >= num_to_predict:
      break
    if len(masked_lms) + len(index_set) > num_to_predict:
      continue
    if any(index in covered_indexes for index in index_set):
      continue
    for index in index_set:
      covered_indexes.add(index)
      if rng.random() < 0.8:
        masked_token = "[MASK]"
      elif rng.random() < 0.5:
        masked_token = tokens[index]
      else:
        masked_token = vocab_words[rng.randint(0, len(vocab_words) - 1)]
      output_tokens[index] = masked_token
      masked_lms.append((index, tokens[index]))
  masked_lms.sort()
  return output_tokens, [p for p, _ in masked_lms], [label for _, label in masked_lms]


def unmodified_original(path, vocab, lower, max_seq_length, dupe_factor, seed, monkeypatch):
  ref = pytest.importorskip("official.nlp.data.create_pretraining_data")
  reftok = pytest.importorskip("official.nlp.tools.tokenization")
  monkeypatch.setattr(ref, "create_masked_lm_predictions",
                      lambda tokens, prob, most, words, rng, *a, **k:
                      original_create_masked_lm_predictions(tokens, prob, most, words, rng))
  tokenizer = reftok.FullTokenizer(vocab, lower)
  instances = ref.create_training_instances(
      [path], tokenizer, ref.get_processor_text_fn(False, lower), max_seq_length, dupe_factor,
      0.1, 0.15, 20, random.Random(seed))
  rows = []
  for instance in instances:
    labels = dict(zip(instance.masked_lm_positions, instance.masked_lm_labels))
    rows.append({"length": len(instance.tokens), "random_next": bool(instance.is_random_next),
                 "masked": len(labels),
                 "as_mask": sum(instance.tokens[p] == "[MASK]" for p in labels),
                 "kept": sum(instance.tokens[p] == labels[p] for p in labels),
                 "original": [labels.get(i, t) for i, t in enumerate(instance.tokens)]})
  return rows, tokenizer


def statistics_of_original(rows, max_seq_length):
  lengths = np.array([r["length"] for r in rows])
  masked = sum(r["masked"] for r in rows)
  return {"instances": len(rows), "mean_length": lengths.mean(),
          "full_length": np.mean(lengths == max_seq_length),
          "short": np.mean(lengths < max_seq_length // 2),
          "random_next": np.mean([r["random_next"] for r in rows]),
          "mask_rate": masked / sum(r["length"] - 3 for r in rows),
          "as_mask": sum(r["as_mask"] for r in rows) / masked,
          "kept": sum(r["kept"] for r in rows) / masked}


def statistics_of_ours(records, max_seq_length, mask_id):
  lengths = records["input_mask"].sum(axis=1)
  weights = records["masked_lm_weights"] > 0
  rows = np.repeat(np.arange(len(lengths)), weights.shape[1]).reshape(weights.shape)
  now = records["input_ids"][rows[weights], records["masked_lm_positions"][weights]]
  labels = records["masked_lm_ids"][weights]
  masked = weights.sum()
  return {"instances": len(lengths), "mean_length": lengths.mean(),
          "full_length": np.mean(lengths == max_seq_length),
          "short": np.mean(lengths < max_seq_length // 2),
          "random_next": records["next_sentence_labels"].mean(),
          "mask_rate": masked / (lengths - 3).sum(),
          "as_mask": np.mean(now == mask_id), "kept": np.mean(now == labels)}


# Instance counts, lengths and the next-sentence rate vary a lot from seed to seed (whole
# documents' chunkings move together): the standard deviation over 8 seeds of the original
# algorithm (either variant), measured once, per corpus. The tests compare the means over SEEDS
# within 3 standard errors of a difference of two such means; the masking rates, which hardly
# vary, within fixed bounds.
SEEDS = (1, 2, 3, 4)
SEED_STD = {
    "wikitext2": {"instances": 200, "mean_length": 3.2, "full_length": 0.054, "short": 0.02,
                  "random_next": 0.019},
    "clue_small": {"instances": 160, "mean_length": 1.3, "full_length": 0.016, "short": 0.014,
                   "random_next": 0.01},
}
MASKING_TOLERANCE = {"mask_rate": 0.002, "as_mask": 0.006, "kept": 0.005}
# The share of padding in our records at length 128 (docs/pretraining.md quotes it).
PADDING_SHARE = {"wikitext2": (0.04, 0.08), "clue_small": (0.17, 0.21)}

CORPORA = {
    "wikitext2": ("english_corpus/wikitext-2_valid_sentences.txt", "vocab/uncased_vocab.txt", 2),
    "clue_small": ("chinese_corpus/CLUECorpusSmall_bert_sampled.txt", "vocab/chinese_vocab.txt",
                   1),
}


def our_records(tmp_path, path, vocab, dupe_factor, seed, **options):
  options = GenerationOptions(vocab_file=vocab, do_lower_case=True, random_seed=seed,
                              max_seq_length=128, dupe_factor=dupe_factor, **options)
  out = tmp_path / f"out{seed}.tfrecord"
  local_runner.run(options, path, str(out), num_shards=1, num_workers=1, show_progress=False)
  return original_decode([str(out)], 128, 20)


def compare(corpus, ours, theirs):
  """Mean of each statistic over the seeds, ours against the original: a list of failures."""
  failures, lines = [], []
  k = len(SEEDS)
  for key in list(SEED_STD[corpus]) + list(MASKING_TOLERANCE):
    mine, reference = np.mean([o[key] for o in ours]), np.mean([t[key] for t in theirs])
    tolerance = (3 * SEED_STD[corpus][key] * np.sqrt(2 / k) if key in SEED_STD[corpus]
                 else MASKING_TOLERANCE[key])
    lines.append(f"{key} {mine:.4g} vs {reference:.4g} (tolerance {tolerance:.3g})")
    if abs(mine - reference) > tolerance:
      failures.append((key, mine, reference, tolerance))
  return failures, "; ".join(lines)


@pytest.mark.slow
@pytest.mark.parametrize("corpus", sorted(CORPORA))
def test_statistics_equal_the_unmodified_original(tmp_path, corpus, monkeypatch, capsys):
  """Means over 4 seeds of our program's records and of the unmodified original's instances.
  Mutations caught (each tried through GenerationOptions or the masking code): masked_lm_prob
  0.2 (mask_rate); 70% [MASK] / 20% kept in masking.py (as_mask, kept); short_seq_prob 0.3
  (instances, mean_length, on both corpora)."""
  relative, vocab, dupe_factor = CORPORA[corpus]
  path, vocab = str(shared_path(relative)), str(shared_path(vocab))
  ours, theirs = [], []
  for seed in SEEDS:
    reference, tokenizer = unmodified_original(path, vocab, True, 128, dupe_factor, seed,
                                               monkeypatch)
    theirs.append(statistics_of_original(reference, 128))
    records = our_records(tmp_path, path, vocab, dupe_factor, seed)
    ours.append(statistics_of_ours(records, 128, tokenizer.vocab["[MASK]"]))
  failures, report = compare(corpus, ours, theirs)
  with capsys.disabled():
    print(f"\n{corpus}, means over seeds {SEEDS}: {report}")
  assert not failures, failures
  assert abs(np.mean([o["as_mask"] for o in ours]) - 0.8) < 0.01
  assert abs(np.mean([o["kept"] for o in ours]) - 0.1) < 0.01
  low, high = PADDING_SHARE[corpus]
  assert low < 1 - np.mean([o["mean_length"] for o in ours]) / 128 < high
  # Not the same instances (seed 4): the original's masking moved its random stream.
  lengths = records["input_mask"].sum(axis=1)
  ours_first = []
  for i in range(50):
    ids = records["input_ids"][i].copy()
    weights = records["masked_lm_weights"][i] > 0
    ids[records["masked_lm_positions"][i][weights]] = records["masked_lm_ids"][i][weights]
    ours_first.append(tokenizer.convert_ids_to_tokens(ids[:lengths[i]].tolist()))
  assert sum(a != r["original"] for a, r in zip(ours_first, reference)) > 25


@pytest.mark.slow
def test_sample_text_instance_counts(monkeypatch, capsys):
  """The figure docs/pretraining_data.md quotes: on google-research/bert's sample_text.txt
  (max_seq_length 128, dupe_factor 10, seed 12345) the unmodified original writes a different
  number of instances than ours, which equal the original's with its masking stubbed out."""
  from original_reference import reference_instances  # pylint: disable=import-outside-toplevel
  path = str(shared_path("pretrain_corpus/sample_text.txt"))
  vocab = str(shared_path("vocab/uncased_vocab.txt"))
  stubbed = len(reference_instances(path, vocab, True, 128, 10, 0.1, 12345, monkeypatch))
  monkeypatch.undo()
  unmodified = len(unmodified_original(path, vocab, True, 128, 10, 12345, monkeypatch)[0])
  with capsys.disabled():
    print(f"\nsample_text: unmodified original {unmodified}, ours (= masking stubbed) {stubbed}")
  assert unmodified != stubbed
