"""run_classifier end to end on CPU: a small BERT fine-tuned on real ChnSentiCorp beats the
majority class; the raw-text SavedModel reproduces the Python path's probabilities (also for a
sentence pair and a regression output); a second run evaluates from the checkpoint with cached
features; the generic task; flag errors."""
import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from bert_tf.training import read_results_file
from conftest import ROOT, TINY_CHINESE, shared_path



def run_classifier(*args, timeout=900):
  result = subprocess.run([sys.executable, "-m", "finetuning.run_classifier", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
  return result




@pytest.mark.slow
def test_chnsenticorp_end_to_end(tmp_path, tiny_chinese_model):
  import tensorflow as tf
  data_dir = shared_path("chnsenticorp")
  output_dir = tmp_path / "out"
  common = ["--task_name=ChnSentiCorp", f"--data_dir={data_dir}", f"--model_dir={tiny_chinese_model}",
            f"--output_dir={output_dir}", "--max_seq_length=64", "--eval_batch_size=64",
            "--predict_batch_size=64"]
  result = run_classifier(*common, "--do_train", "--do_eval", "--do_predict",
                          "--num_train_epochs=1", "--learning_rate=1e-3",
                          "--iterations_per_loop=50", "--save_checkpoints_steps=100")
  assert result.returncode == 0, result.stderr[-3000:]
  results = read_results_file(output_dir / "eval_results.txt")
  assert set(results) == {"eval_accuracy", "eval_loss", "global_step", "loss"}
  assert results["global_step"] == 300                        # int(9600 / 32 * 1)
  dev_labels = [row[0] for row in csv.reader(open(data_dir / "dev.tsv", encoding="utf-8"),
                                             delimiter="\t")][1:]
  majority = max(dev_labels.count("0"), dev_labels.count("1")) / len(dev_labels)
  assert results["eval_accuracy"] > majority + 0.1, (results, majority)

  # test_results.tsv: one line of class probabilities per test row, as the original.
  probabilities = np.loadtxt(output_dir / "test_results.tsv", delimiter="\t")
  test_rows = (data_dir / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]
  assert probabilities.shape == (len(test_rows), 2)
  np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-6)
  submission = (output_dir / "chnsenticorp_predictions.tsv").read_text().splitlines()
  assert len(submission) == len(test_rows) + 1
  assert [line.split("\t")[1] for line in submission[1:]] == [
      str(int(p[1] > p[0])) for p in probabilities]

  # The raw-text SavedModel gives the Python path's probabilities (its tokenizer ops come from
  # tensorflow-text, which the loading process imports, as for any TF Text SavedModel).
  import tensorflow_text  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  served = tf.saved_model.load(str(output_dir / "saved_model"))
  texts = [row.split("\t", 1)[1] for row in test_rows[:200]]
  outputs = served.signatures["serving_default"](text_a=tf.constant(texts))
  np.testing.assert_allclose(outputs["probabilities"].numpy(), probabilities[:200], atol=1e-5)
  assert json.loads((output_dir / "saved_model" / "task.json").read_text())["labels"] == ["0", "1"]
  assert (output_dir / "export" / "bert_model.ckpt.index").exists()

  # A second run evaluates the checkpoint, reusing the cached features.
  again = run_classifier(*common, "--do_eval")
  assert again.returncode == 0, again.stderr[-3000:]
  assert "using cached features" in again.stderr and "converting" not in again.stderr
  assert read_results_file(output_dir / "eval_results.txt") == pytest.approx(results, rel=1e-6)


@pytest.mark.parametrize("replicas", [0, 2])
def test_generic_csv_task_trains_and_predicts(tmp_path, small_vocab, replicas):
  """Also as a 2-replica rehearsal (--num_cpu_replicas=2: MirroredStrategy over logical CPUs)."""
  from conftest import TINY_CONFIG
  model_dir = tmp_path / "model"
  model_dir.mkdir()
  vocab = small_vocab.read_text().splitlines()
  (model_dir / "vocab.txt").write_text("\n".join(vocab + [f"[unused{i}]" for i in
                                                           range(TINY_CONFIG["vocab_size"] - len(vocab))]) + "\n")
  (model_dir / "bert_config.json").write_text(json.dumps(TINY_CONFIG))
  data = tmp_path / "data"
  data.mkdir()
  rows = [("want running", "yes", "a"), ("unwanted", "no", "b")] * 8
  for split in ("train", "dev", "test"):
    with open(data / f"{split}.csv", "w", newline="", encoding="utf-8") as f:
      writer = csv.writer(f)
      writer.writerow(["text", "answer", "key"])
      writer.writerows(rows)
  output_dir = tmp_path / "out"
  result = run_classifier("--task_name=generic", f"--data_dir={data}", f"--model_dir={model_dir}",
                          f"--output_dir={output_dir}", "--text_a_column=text",
                          "--label_column=answer", "--id_column=key", "--max_seq_length=8",
                          "--train_batch_size=4", "--num_train_epochs=1", "--do_train",
                          "--do_eval", "--do_predict", "--export_saved_model=false",
                          f"--num_cpu_replicas={replicas}")
  assert result.returncode == 0, result.stderr[-3000:]
  assert json.loads((output_dir / "labels.json").read_text()) == ["no", "yes"]
  assert read_results_file(output_dir / "eval_results.txt")["global_step"] == 4
  predictions = (output_dir / "generic_predictions.tsv").read_text().splitlines()
  assert predictions[0] == "index\tprediction" and predictions[1].split("\t")[0] == "a"
  assert len(predictions) == 17


def test_flag_errors_are_named(tmp_path, tiny_chinese_model):
  result = run_classifier("--task_name=chnsenticorp", f"--data_dir={tmp_path}",
                          f"--model_dir={tiny_chinese_model}", f"--output_dir={tmp_path}/o")
  assert result.returncode != 0
  assert "at least one of --do_train, --do_eval or --do_predict" in result.stderr
  bad_config = dict(TINY_CHINESE, vocab_size=100)
  (tiny_chinese_model / "bert_config.json").write_text(json.dumps(bad_config))
  result = run_classifier("--task_name=chnsenticorp", f"--data_dir={tmp_path}",
                          f"--model_dir={tiny_chinese_model}", f"--output_dir={tmp_path}/o",
                          "--do_train")
  assert result.returncode != 0 and "vocab_size=100" in result.stderr


def test_cased_model_with_lower_casing_is_refused(tmp_path):
  result = run_classifier("--task_name=mrpc", f"--data_dir={tmp_path}", "--do_train",
                          f"--output_dir={tmp_path}/o",
                          f"--init_checkpoint={tmp_path}/cased_L-12_H-768_A-12/bert_model.ckpt",
                          f"--bert_config_file={tmp_path}/c.json", f"--vocab_file={tmp_path}/v.txt")
  assert result.returncode != 0
  assert "cased_L-12_H-768_A-12 is a cased model" in result.stderr


@pytest.mark.parametrize("is_regression", [False, True])
def test_saved_model_pair_signature_and_regression_output(tmp_path, tiny_config, is_regression):
  """The raw-text SavedModel of a sentence-pair task takes text_a and text_b and gives the
  Python path's outputs for the pair in that order (swapping the texts changes them); a
  regression task's signature returns the score (logits[:, 0]) and no probabilities. Mutations
  caught: text_a and text_b swapped in ClassifierServer._serve_pair; the score not logits[:, 0]
  (tried: scaled by 1.5)."""
  import types
  import tensorflow as tf
  import tensorflow_text  # noqa: F401  pylint: disable=unused-import
  from bert_tf import BertConfig, FastTokenizer
  from finetuning.classifier_features import encode_texts
  from finetuning.models import BertClassifier
  from finetuning.serving import export_classifier
  from synthetic_tasks import VOCAB
  vocab = tmp_path / "vocab.txt"
  vocab.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
  tokenizer = FastTokenizer(str(vocab))
  # Large random weights: outputs far apart for different inputs (the default 0.02 leaves a
  # regression output within 1e-5 whatever the text).
  config = BertConfig(**dict(tiny_config.to_dict(), vocab_size=len(VOCAB), initializer_range=1.0))
  model = BertClassifier(config, 1 if is_regression else 3, seq_length=16)
  labels = () if is_regression else ("contradiction", "entailment", "neutral")
  task = types.SimpleNamespace(name="pair", labels=labels, is_pair=True,
                               is_regression=is_regression)
  texts_a = ["john went to paris", "the big city", "mary smith"]
  texts_b = ["alice saw new york", "a small day", "berlin at night with red"]
  python_path = model(encode_texts(tokenizer, texts_a, texts_b, 16), training=False)["logits"]
  swapped = model(encode_texts(tokenizer, texts_b, texts_a, 16), training=False)["logits"]
  assert np.abs(python_path.numpy() - swapped.numpy()).max() > 0.1
  served = tf.saved_model.load(export_classifier(tmp_path / "saved", model, tokenizer, 16, task))
  signature = served.signatures["serving_default"]
  assert sorted(signature.structured_input_signature[1]) == ["text_a", "text_b"]
  outputs = signature(text_a=tf.constant(texts_a), text_b=tf.constant(texts_b))
  np.testing.assert_allclose(outputs["logits"], python_path, rtol=1e-4, atol=1e-4)
  if is_regression:
    assert set(outputs) == {"logits", "score"}
    np.testing.assert_allclose(outputs["score"], python_path[:, 0], rtol=1e-4, atol=1e-4)
  else:
    assert set(outputs) == {"logits", "probabilities", "label"}
    np.testing.assert_allclose(outputs["probabilities"], tf.nn.softmax(python_path), atol=1e-4)
    assert [s.decode() for s in outputs["label"].numpy()] == [
        labels[i] for i in np.argmax(python_path, axis=-1)]
  task_json = json.loads((tmp_path / "saved" / "task.json").read_text())
  assert task_json["inputs"] == ["text_a", "text_b"] and task_json["is_regression"] == is_regression
  # A serving client: a fresh process with TensorFlow and tensorflow-text only, and the
  # signature saved_model_cli lists.
  from serving_checks import (compiled_functions, saved_model_cli_show,
                              serve_in_fresh_process, signature_inputs_and_outputs)
  assert not compiled_functions(tmp_path / "saved")   # plain ops, for any device
  fresh = serve_in_fresh_process(tmp_path / "saved", {"text_a": texts_a, "text_b": texts_b})
  np.testing.assert_allclose(fresh["logits"], python_path, rtol=1e-4, atol=1e-4)
  assert signature_inputs_and_outputs(saved_model_cli_show(tmp_path / "saved")) == (
      {"text_a", "text_b"}, set(outputs))
