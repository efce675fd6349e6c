"""The metrics against scikit-learn and scipy on random predictions."""
import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from finetuning import metrics


@pytest.mark.parametrize("seed", range(5))
def test_classification_metrics_equal_sklearn(seed):
  rng = np.random.default_rng(seed)
  n = int(rng.integers(5, 400))
  labels = rng.integers(0, 2, n)
  predictions = np.where(rng.random(n) < 0.7, labels, 1 - labels)
  assert metrics.accuracy(labels, predictions) == pytest.approx(skm.accuracy_score(labels, predictions))
  assert metrics.f1(labels, predictions) == pytest.approx(skm.f1_score(labels, predictions))
  assert metrics.matthews_corrcoef(labels, predictions) == pytest.approx(
      skm.matthews_corrcoef(labels, predictions))
  multi_labels, multi_predictions = rng.integers(0, 4, n), rng.integers(0, 4, n)
  assert metrics.matthews_corrcoef(multi_labels, multi_predictions) == pytest.approx(
      skm.matthews_corrcoef(multi_labels, multi_predictions))


def test_degenerate_cases_match_sklearn():
  for labels, predictions in [([0, 0, 0], [0, 0, 0]), ([1, 1], [0, 0]), ([0, 1], [0, 0])]:
    assert metrics.f1(labels, predictions) == pytest.approx(
        skm.f1_score(labels, predictions, zero_division=0))
    assert metrics.matthews_corrcoef(labels, predictions) == pytest.approx(
        skm.matthews_corrcoef(labels, predictions))


@pytest.mark.parametrize("seed", range(5))
def test_correlations_equal_scipy_with_ties(seed):
  rng = np.random.default_rng(seed)
  gold = np.round(rng.uniform(0, 5, 300) * 4) / 4          # STS-B-like scores with many ties
  predicted = gold + rng.normal(0, 1.0, 300)
  predicted[:40] = np.round(predicted[:40])
  assert metrics.pearson(predicted, gold) == pytest.approx(stats.pearsonr(predicted, gold)[0])
  assert metrics.spearman(predicted, gold) == pytest.approx(stats.spearmanr(predicted, gold)[0])


def test_evaluate_reports_loss_as_mean_cross_entropy():
  rng = np.random.default_rng(0)
  logits, labels = rng.normal(size=(50, 3)), rng.integers(0, 3, 50)
  results = metrics.evaluate(("accuracy",), logits, labels, is_regression=False)
  assert results["eval_loss"] == pytest.approx(skm.log_loss(labels, metrics.softmax(logits),
                                                            labels=[0, 1, 2]))
  assert results["eval_accuracy"] == pytest.approx(np.mean(logits.argmax(-1) == labels))
  regression = metrics.evaluate(("pearson", "spearman"), logits[:, :1], logits[:, 1], True)
  assert regression["eval_loss"] == pytest.approx(np.mean((logits[:, 0] - logits[:, 1]) ** 2))
