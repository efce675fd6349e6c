"""Multi-task fine-tuning: task lists, sampling weights, per-task losses over their own examples,
run_multitask end to end on real ChnSentiCorp and CLUENER2020 subsets (formats) and on two
synthetic tasks (learning)."""
import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from bert_tf.training import read_results_file
from conftest import ROOT, TINY_CONFIG, shared_path
from finetuning import multitask
from synthetic_tasks import write_bio, write_model, write_sentiment


def test_sampling_weights_by_hand():
  assert multitask.sampling_weights([100, 300], "proportional", 2.0) == pytest.approx([0.25, 0.75])
  # size^(1/2): 10 and 17.32 -> 0.366, 0.634
  assert multitask.sampling_weights([100, 300], "temperature", 2.0) == pytest.approx(
      [10 / (10 + 300 ** 0.5), 300 ** 0.5 / (10 + 300 ** 0.5)])


@pytest.mark.parametrize("tasks,message", [
    ([{"name": "a", "kind": "classification", "task_name": "mrpc"}], "needs data_dir"),
    ([{"name": "a", "kind": "ranking", "task_name": "x", "data_dir": "d"}], "not one of"),
    ([{"name": "a", "kind": "tagging", "task_name": "x", "data_dir": "d"}] * 2, "unique"),
    ([], "no tasks")])
def test_task_list_errors_are_named(tmp_path, tasks, message):
  path = tmp_path / "tasks.json"
  path.write_text(json.dumps({"tasks": tasks}))
  with pytest.raises(ValueError, match=message):
    multitask.load_task_list(str(path))


def test_each_loss_covers_only_its_tasks_examples():
  rng = np.random.default_rng(0)
  batch, seq = 6, 5
  features = {"task_id": tf.constant([0, 1, 0, 1, 1, 0]),
              "class_label": tf.constant(rng.integers(0, 3, batch), tf.int32),
              "token_labels": tf.constant(rng.integers(0, 4, (batch, seq)), tf.int32),
              "token_mask": tf.constant(rng.integers(0, 2, (batch, seq)), tf.int32)}
  outputs = {"a_logits": tf.constant(rng.normal(size=(batch, 3)), tf.float32),
             "b_logits": tf.constant(rng.normal(size=(batch, seq, 4)), tf.float32)}
  objective = multitask.MultiTaskObjective([("a", "classification", 1.0), ("b", "tagging", 2.0)])
  numerators, metrics = objective.numerators(features, outputs)
  denominators = objective.denominators(features)

  def ce(logits, label):
    logits = np.asarray(logits, np.float64)
    return np.log(np.exp(logits).sum()) - logits[label]
  rows_a = [0, 2, 5]
  expected_a = np.mean([ce(outputs["a_logits"][i], features["class_label"][i]) for i in rows_a])
  mask = features["token_mask"].numpy()
  terms_b = [ce(outputs["b_logits"][i, t], features["token_labels"][i, t])
             for i in (1, 3, 4) for t in range(seq) if mask[i, t]]
  assert float(numerators["a_loss"] / denominators["a_loss"]) == pytest.approx(expected_a, rel=1e-5)
  assert float(numerators["b_loss"] / denominators["b_loss"]) == pytest.approx(
      2.0 * np.mean(terms_b), rel=1e-5)
  assert float(metrics["a_accuracy"][1]) == 3


@pytest.mark.slow
def test_run_multitask_end_to_end(tmp_path, tiny_chinese_model):
  senti, cluener = tmp_path / "senti", tmp_path / "cluener"
  senti.mkdir()
  cluener.mkdir()
  for split, count in (("train", 300), ("dev", 100), ("test", 50)):
    lines = shared_path(f"chnsenticorp/{split}.tsv").read_text(encoding="utf-8").splitlines()
    (senti / f"{split}.tsv").write_text("\n".join(lines[:count + 1]) + "\n", encoding="utf-8")
    rows = shared_path(f"cluener2020/{split}.json").read_text(encoding="utf-8").splitlines()
    (cluener / f"{split}.json").write_text("\n".join(rows[:count]) + "\n", encoding="utf-8")
  task_list = tmp_path / "tasks.json"
  task_list.write_text(json.dumps({"sampling": "temperature", "temperature": 2.0, "tasks": [
      {"name": "senti", "kind": "classification", "task_name": "chnsenticorp",
       "data_dir": str(senti)},
      {"name": "ner", "kind": "tagging", "task_name": "cluener", "data_dir": str(cluener),
       "loss_weight": 2.0}]}))
  out = tmp_path / "out"
  result = subprocess.run([sys.executable, "-m", "finetuning.run_multitask",
                           f"--task_list={task_list}", f"--model_dir={tiny_chinese_model}",
                           f"--output_dir={out}", "--do_train", "--do_eval", "--do_predict",
                           "--max_seq_length=64", "--train_batch_size=16", "--num_train_epochs=1",
                           "--learning_rate=1e-3", "--iterations_per_loop=10"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  results = read_results_file(out / "eval_results.txt")
  assert results["global_step"] == int(600 / 16)
  assert {"senti_eval_accuracy", "senti_eval_loss", "ner_f1", "ner_precision"} <= set(results)
  probabilities = np.loadtxt(out / "senti" / "test_results.tsv", delimiter="\t")
  assert probabilities.shape == (50, 2)
  assert len((out / "ner" / "test_predictions.json").read_text(encoding="utf-8").splitlines()) == 50
  assert (out / "ner" / "eval_predictions.json").exists()
  names = dict(tf.train.list_variables(str(out / "export" / "bert_model.ckpt")))
  assert names["senti/output_weights"] == [2, 64] and names["ner/output_weights"] == [21, 64]


@pytest.mark.slow
def test_run_multitask_learns_two_synthetic_tasks(tmp_path):
  """One tiny encoder from scratch, a sentiment head and a BIO tagging head whose labels follow
  from the words (tests/finetuning/synthetic_tasks.py), three epochs: dev accuracy and entity F1
  above 0.9 (both reach 1.0 here; chance is 0.5 and near 0). Mutation caught: every feature
  given task id 0 in multitask.shared_layout (sentiment accuracy 0.56)."""
  task_list = tmp_path / "tasks.json"
  task_list.write_text(json.dumps({"tasks": [
      {"name": "senti", "kind": "classification", "task_name": "chnsenticorp",
       "data_dir": str(write_sentiment(tmp_path / "senti", (300, 100, 20)))},
      {"name": "ner", "kind": "tagging", "task_name": "bio",
       "data_dir": str(write_bio(tmp_path / "bio", (300, 100, 20)))}]}))
  out = tmp_path / "out"
  result = subprocess.run([sys.executable, "-m", "finetuning.run_multitask",
                           f"--task_list={task_list}",
                           f"--model_dir={write_model(tmp_path / 'model', TINY_CONFIG)}",
                           f"--output_dir={out}", "--do_train", "--do_eval",
                           "--max_seq_length=24", "--train_batch_size=16", "--num_train_epochs=3",
                           "--learning_rate=5e-3", "--iterations_per_loop=10"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  results = read_results_file(out / "eval_results.txt")
  assert results["senti_eval_accuracy"] > 0.9 and results["ner_f1"] > 0.9, results
