"""run_squad end to end on CPU: a small BERT trained briefly on real CMRC 2018 questions writes
well-formed predictions.json / nbest_predictions.json and the CMRC metrics; SQuAD 2.0 writes
null_odds.json and the v2.0 breakdown; predict-only runs restore the checkpoint."""
import json
import shutil
import subprocess
import sys

import pytest

from bert_tf.training import read_results_file
from conftest import ROOT, TINY_CONFIG, shared_path
from synthetic_tasks import squad_dataset, write_model



def run_squad(*args):
  return subprocess.run([sys.executable, "-m", "finetuning.run_squad", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=900)


def subset(source, target, questions):
  data = json.loads(source.read_text(encoding="utf-8"))
  kept, count = [], 0
  for article in data["data"]:
    for paragraph in article["paragraphs"]:
      if count >= questions:
        break
      paragraph["qas"] = paragraph["qas"][:questions - count]
      count += len(paragraph["qas"])
      kept.append({"paragraphs": [paragraph], "title": article.get("title", "")})
  target.write_text(json.dumps({"data": kept, "version": "subset"}, ensure_ascii=False),
                    encoding="utf-8")
  return target




@pytest.mark.slow
def test_cmrc2018_end_to_end(tmp_path, tiny_chinese_model):
  train = subset(shared_path("cmrc2018/cmrc2018_trial.json"), tmp_path / "train.json", 200)
  dev = subset(shared_path("cmrc2018/cmrc2018_dev.json"), tmp_path / "dev.json", 60)
  out = tmp_path / "out"
  common = [f"--model_dir={tiny_chinese_model}", f"--output_dir={out}", "--max_seq_length=128",
            "--doc_stride=64", "--max_query_length=32", "--predict_batch_size=16"]
  result = run_squad(*common, "--do_train", "--do_predict", f"--train_file={train}",
                     f"--predict_file={dev}", "--train_batch_size=16", "--num_train_epochs=1",
                     "--learning_rate=1e-3", "--iterations_per_loop=5")
  assert result.returncode == 0, result.stderr[-3000:]
  predictions = json.loads((out / "predictions.json").read_text(encoding="utf-8"))
  nbest = json.loads((out / "nbest_predictions.json").read_text(encoding="utf-8"))
  gold = json.loads(dev.read_text(encoding="utf-8"))
  ids = [qa["id"] for a in gold["data"] for p in a["paragraphs"] for qa in p["qas"]]
  contexts = {qa["id"]: p["context"] for a in gold["data"] for p in a["paragraphs"]
              for qa in p["qas"]}
  assert sorted(predictions) == sorted(ids) == sorted(nbest)
  for qas_id, text in predictions.items():
    assert text and text in contexts[qas_id]            # a span of its own context
    entries = nbest[qas_id]
    assert 1 <= len(entries) <= 20 and entries[0]["text"] == text
    assert abs(sum(e["probability"] for e in entries) - 1) < 1e-4
    assert all(set(e) == {"text", "probability", "start_logit", "end_logit"} for e in entries)
  metrics = read_results_file(out / "eval_results.txt")
  assert {"exact_match", "f1", "average", "total", "skip", "global_step"} == set(metrics)
  assert metrics["total"] == 60 and metrics["skip"] == 0      # learning: the synthetic test
  step = metrics["global_step"]
  assert step == int(200 / 16)
  # Predict again from the checkpoint: the same predictions.
  again = run_squad(*common, "--do_predict", f"--predict_file={dev}")
  assert again.returncode == 0, again.stderr[-3000:]
  assert json.loads((out / "predictions.json").read_text(encoding="utf-8")) == predictions
  assert read_results_file(out / "eval_results.txt")["global_step"] == step


@pytest.mark.slow
def test_squad_v2_writes_null_odds_and_the_breakdown(tmp_path):
  from conftest import make_original_checkpoint
  vocab = shared_path("vocab/uncased_vocab.txt")
  model_dir = tmp_path / "model"
  model_dir.mkdir()
  config = dict(TINY_CONFIG, vocab_size=30522, max_position_embeddings=128)
  (model_dir / "bert_config.json").write_text(json.dumps(config))
  shutil.copy(vocab, model_dir / "vocab.txt")
  make_original_checkpoint(model_dir, config, with_heads=False, with_optimizer=False)
  data = json.loads(subset(shared_path("squad/expmrc-squad-dev.json"), tmp_path / "d.json",
                           40).read_text())
  for i, qa in enumerate(qa for a in data["data"] for p in a["paragraphs"] for qa in p["qas"]):
    if i % 3 == 0:
      qa["answers"], qa["is_impossible"] = [], True
  dev = tmp_path / "dev.json"
  dev.write_text(json.dumps(data))
  out = tmp_path / "out"
  result = run_squad(f"--model_dir={model_dir}", f"--output_dir={out}", "--do_predict",
                     f"--predict_file={dev}", "--version_2_with_negative", "--max_seq_length=128",
                     "--doc_stride=64", "--max_query_length=32")
  assert result.returncode == 0, result.stderr[-3000:]
  null_odds = json.loads((out / "null_odds.json").read_text())
  predictions = json.loads((out / "predictions.json").read_text())
  assert sorted(null_odds) == sorted(predictions) and len(predictions) == 40
  metrics = read_results_file(out / "eval_results.txt")
  assert {"exact_match", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1",
          "best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh"} <= set(metrics)
  assert metrics["HasAns_total"] + metrics["NoAns_total"] == 40


@pytest.mark.slow
def test_run_squad_learns_a_synthetic_task(tmp_path):
  """A tiny BERT from scratch, three epochs over 300 SQuAD v1.1-layout questions whose answer is
  the one colour word of the context (tests/finetuning/synthetic_tasks.py): exact match above
  90 on 100 other questions (it reaches 100 here; a random span of these contexts scores near
  5). The official scorer program on the written predictions.json gives the figures of
  eval_results.txt, and the exported raw-text SavedModel gives the answers of predictions.json.
  Mutation caught: end_position one token late in squad_features (EM 19)."""
  (tmp_path / "train.json").write_text(json.dumps(squad_dataset(300, seed=2)))
  (tmp_path / "dev.json").write_text(json.dumps(squad_dataset(100, seed=3)))
  out = tmp_path / "out"
  result = run_squad(f"--model_dir={write_model(tmp_path / 'model', TINY_CONFIG)}",
                     f"--output_dir={out}", "--do_train", "--do_predict",
                     f"--train_file={tmp_path / 'train.json'}",
                     f"--predict_file={tmp_path / 'dev.json'}", "--max_seq_length=32",
                     "--doc_stride=16", "--max_query_length=8", "--train_batch_size=16",
                     "--num_train_epochs=3", "--learning_rate=5e-3", "--iterations_per_loop=10")
  assert result.returncode == 0, result.stderr[-3000:]
  metrics = read_results_file(out / "eval_results.txt")
  assert metrics["exact_match"] > 90, metrics
  scored = subprocess.run([sys.executable, "-m", "finetuning.evaluate_squad",
                           str(tmp_path / "dev.json"), str(out / "predictions.json")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert scored.returncode == 0, scored.stderr
  assert json.loads(scored.stdout) == pytest.approx(
      {k: metrics[k] for k in ("exact_match", "f1")})
  # The raw-text SavedModel written after training answers as predictions.json, from a process
  # with TensorFlow and tensorflow-text only.
  from serving_checks import serve_in_fresh_process
  dev = json.loads((tmp_path / "dev.json").read_text())
  rows = [(qa["id"], qa["question"], p["context"]) for a in dev["data"] for p in a["paragraphs"]
          for qa in p["qas"]]
  served = serve_in_fresh_process(out / "saved_model", {"question": [r[1] for r in rows],
                                                        "context": [r[2] for r in rows]})
  predictions = json.loads((out / "predictions.json").read_text())
  assert served["answer"] == [predictions[r[0]] for r in rows]
  assert json.loads((out / "saved_model" / "task.json").read_text())["max_seq_length"] == 32
