"""Entity-level precision, recall and F1 with conlleval's definition: an entity counts when its
type and both boundaries match; an I- tag after O or after another type starts an entity.
Written here in a few lines; tests/finetuning/test_ner.py checks it against seqeval.
"""
import collections

from finetuning.tasks.ner import entities


def _prf(correct, predicted, gold):
  precision = correct / predicted if predicted else 0.0
  recall = correct / gold if gold else 0.0
  f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
  return precision, recall, f1


def entity_scores(gold_sequences, predicted_sequences):
  """{"precision", "recall", "f1", "<TYPE>_precision", ...} over all sentences (fractions)."""
  counts = collections.defaultdict(lambda: [0, 0, 0])     # type -> correct, predicted, gold
  for gold_tags, predicted_tags in zip(gold_sequences, predicted_sequences):
    gold = set(entities(gold_tags))
    predicted = set(entities(predicted_tags))
    for kind, *_ in gold:
      counts[kind][2] += 1
    for entity in predicted:
      counts[entity[0]][1] += 1
      counts[entity[0]][0] += entity in gold
  totals = [sum(c[i] for c in counts.values()) for i in range(3)]
  results = dict(zip(("precision", "recall", "f1"), _prf(*totals)))
  for kind in sorted(counts):
    for name, value in zip(("precision", "recall", "f1"), _prf(*counts[kind])):
      results[f"{kind}_{name}"] = value
    results[f"{kind}_support"] = counts[kind][2]
  return results
