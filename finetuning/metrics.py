"""Evaluation metrics as the GLUE / CLUE benchmarks define them, in numpy.

accuracy; F1 of the positive class (MRPC, QQP); Matthews correlation (CoLA); Pearson and
Spearman correlation (STS-B). Written here (a few lines each) so the package does not need
scikit-learn or scipy at run time; tests/finetuning/test_metrics.py checks each against them.
"""
import numpy as np


def accuracy(labels, predictions):
  labels, predictions = np.asarray(labels), np.asarray(predictions)
  return float(np.mean(labels == predictions)) if labels.size else float("nan")


def f1(labels, predictions, positive=1):
  """F1 of the positive class (sklearn.metrics.f1_score(average='binary'); 0 when undefined)."""
  labels, predictions = np.asarray(labels) == positive, np.asarray(predictions) == positive
  true_positives = np.sum(labels & predictions)
  denominator = np.sum(labels) + np.sum(predictions)
  return float(2 * true_positives / denominator) if denominator else 0.0


def matthews_corrcoef(labels, predictions):
  """Multi-class Matthews correlation (Gorodkin's R_K; sklearn's definition, 0 when undefined)."""
  labels, predictions = np.asarray(labels), np.asarray(predictions)
  classes = np.union1d(labels, predictions)
  confusion = np.zeros((len(classes), len(classes)), np.float64)
  np.add.at(confusion, (np.searchsorted(classes, labels), np.searchsorted(classes, predictions)), 1)
  true_counts, predicted_counts = confusion.sum(axis=1), confusion.sum(axis=0)
  correct, total = np.trace(confusion), confusion.sum()
  cov_yp = correct * total - np.dot(true_counts, predicted_counts)
  cov_yy = total * total - np.dot(true_counts, true_counts)
  cov_pp = total * total - np.dot(predicted_counts, predicted_counts)
  denominator = np.sqrt(cov_yy * cov_pp)
  return float(cov_yp / denominator) if denominator else 0.0


def pearson(x, y):
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  x, y = x - x.mean(), y - y.mean()
  denominator = np.sqrt(np.dot(x, x) * np.dot(y, y))
  return float(np.dot(x, y) / denominator) if denominator else float("nan")


def _ranks(x):
  """Ranks from 1, ties sharing their average rank (scipy.stats.rankdata's default)."""
  x = np.asarray(x)
  order = np.argsort(x, kind="mergesort")
  sorted_x = x[order]
  starts = np.r_[True, sorted_x[1:] != sorted_x[:-1]]
  group = np.cumsum(starts) - 1
  first = np.flatnonzero(starts)
  last = np.r_[first[1:], len(x)] - 1
  ranks = np.empty(len(x), np.float64)
  ranks[order] = (first[group] + last[group]) / 2.0 + 1
  return ranks


def spearman(x, y):
  return pearson(_ranks(x), _ranks(y))


def softmax(logits):
  logits = np.asarray(logits, np.float64)
  shifted = logits - logits.max(axis=-1, keepdims=True)
  exp = np.exp(shifted)
  return exp / exp.sum(axis=-1, keepdims=True)


METRICS = {"accuracy": accuracy, "f1": f1, "mcc": matthews_corrcoef, "pearson": pearson,
           "spearman": spearman}


def evaluate(metric_names, logits, labels, is_regression):
  """{"eval_<metric>": value, "eval_loss": value} over all examples, as eval_results.txt lists.

  Args:
    metric_names: names from METRICS (a task's `metrics`).
    logits: float [n, num_classes] ([n, 1] for regression).
    labels: int label ids [n] (float targets for regression).
  """
  logits, labels = np.asarray(logits, np.float64), np.asarray(labels)
  if is_regression:
    predictions = logits[:, 0]
    loss = float(np.mean((predictions - labels) ** 2))
  else:
    predictions = np.argmax(logits, axis=-1)
    log_probs = np.log(softmax(logits))
    loss = float(-np.mean(log_probs[np.arange(len(labels)), labels.astype(np.int64)]))
  results = {f"eval_{name}": METRICS[name](labels, predictions) for name in metric_names}
  results["eval_loss"] = loss
  return results
