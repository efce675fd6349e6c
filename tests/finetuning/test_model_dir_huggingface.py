"""--model_dir takes a Hugging Face folder (config.json, model.safetensors, vocab.txt) as well as an
original one (finetuning/common_flags.py resolve_model_files): the run converts it to an original
checkpoint in a temporary folder and goes on as usual, with do_lower_case from its
tokenizer_config.json. Shown on run_classifier; every program resolves --model_dir the same way."""
import json
import subprocess
import sys

import numpy as np
import pytest

from bert_tf.checkpoint import huggingface as hfc
from bert_tf.training import read_results_file
from conftest import ROOT, SMALL_VOCAB, TINY_CONFIG, make_original_checkpoint

LABELS = ["no", "yes"]


def _run_classifier(*args):
  return subprocess.run([sys.executable, "-m", "finetuning.run_classifier", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=600)


def _folders(tmp_path):
  """A fine-tuned classifier as an original folder and its Hugging Face conversion (cased:
  tokenizer_config.json says do_lower_case=false), and a small generic CSV task with capitals."""
  orig = tmp_path / "orig"
  orig.mkdir()
  rng = np.random.default_rng(5)
  make_original_checkpoint(orig, TINY_CONFIG, with_heads=False, with_optimizer=False, extra={
      "output_weights": rng.normal(0, 0.5, (2, TINY_CONFIG["hidden_size"])).astype(np.float32),
      "output_bias": rng.normal(0, 0.1, 2).astype(np.float32)})
  vocab = SMALL_VOCAB + ["Want", "Running"]
  vocab += [f"[unused{i}]" for i in range(TINY_CONFIG["vocab_size"] - len(vocab))]
  (orig / "vocab.txt").write_text("\n".join(vocab) + "\n")
  (orig / "bert_config.json").write_text(json.dumps(TINY_CONFIG))
  (orig / "model_info.json").write_text(json.dumps(
      {"architecture": "BertForSequenceClassification", "labels": LABELS}))
  hfc.convert(orig, tmp_path / "hf", "huggingface", do_lower_case=False)
  data = tmp_path / "data"
  data.mkdir()
  rows = "".join(f"{text},{label},{i}\n" for i, (text, label) in
                 enumerate([("Want running", "yes"), ("unwanted", "no"), ("Running lowest", "yes"),
                            ("na ive cafe", "no")] * 4))
  for split in ("train", "dev", "test"):
    (data / f"{split}.csv").write_text("text,answer,key\n" + rows)
  return orig, tmp_path / "hf", data


@pytest.mark.slow   # two fine-tuning runs in subprocesses (~35 s each on a busy 2-core machine)
def test_hugging_face_model_dir_trains_like_the_original_folder(tmp_path):
  """Two short runs (train 4 steps, eval, predict) from the same classifier, one with --model_dir
  at the original folder (--do_lower_case=false given), one at its Hugging Face conversion (the
  casing from tokenizer_config.json): the same eval results and test probabilities, so the same
  initial weights, head included, and the same tokens. Mutation caught: resolve_model_files
  ignoring tokenizer_config.json (the Hugging Face run lower-cases "Want": eval_loss differs)."""
  orig, hf, data = _folders(tmp_path)
  common = ["--task_name=generic", f"--data_dir={data}", "--text_a_column=text",
            "--label_column=answer", "--id_column=key", "--max_seq_length=8",
            "--train_batch_size=4", "--num_train_epochs=1", "--do_train", "--do_eval",
            "--do_predict", "--export_saved_model=false"]
  results = {}
  for name, extra in (("orig", ["--do_lower_case=false"]), ("hf", [])):
    out = tmp_path / f"out_{name}"
    done = _run_classifier(*common, *extra, f"--model_dir={tmp_path / name}", f"--output_dir={out}")
    assert done.returncode == 0, done.stderr[-3000:]
    results[name] = (read_results_file(out / "eval_results.txt"),
                     np.loadtxt(out / "test_results.tsv", delimiter="\t"))
  assert "is a Hugging Face BertForSequenceClassification folder" in done.stderr
  assert results["hf"][0]["global_step"] == 4
  assert results["hf"][0] == results["orig"][0]
  np.testing.assert_array_equal(results["hf"][1], results["orig"][1])


def test_hugging_face_model_dir_errors_are_one_line(tmp_path):
  """An architecture bert_tf has no model for and a --do_lower_case that contradicts
  tokenizer_config.json each end in one line naming the file or flag (a missing file:
  tests/checkpoint/test_huggingface.py test_missing_files_are_named)."""
  _, hf, data = _folders(tmp_path)
  args = ["--task_name=generic", f"--data_dir={data}", "--text_a_column=text",
          "--label_column=answer", "--do_train", f"--output_dir={tmp_path / 'out'}",
          f"--model_dir={hf}"]
  done = _run_classifier(*args, "--do_lower_case=true")
  assert done.returncode == 2 and "Traceback" not in done.stderr
  assert f"--do_lower_case=True but {hf}/tokenizer_config.json says do_lower_case=false" in done.stderr
  config = json.loads((hf / "config.json").read_text())
  (hf / "config.json").write_text(json.dumps(dict(config, architectures=["BertForMultipleChoice"])))
  done = _run_classifier(*args)
  assert done.returncode == 1 and "Traceback" not in done.stderr
  assert [line for line in done.stderr.splitlines() if ": error: " in line] == [
      f"run_classifier: error: {hf / 'config.json'}: architectures=['BertForMultipleChoice']; "
      f"expected one of {', '.join(hfc.HEADS)}"]


def test_extract_features_from_a_pooler_less_hugging_face_folder(tmp_path):
  """extract_features with --model_dir at a Hugging Face BertForQuestionAnswering folder without
  the pooler (as transformers saves one) gives the layer activations of the original folder
  bit for bit, with a warning that the pooler is untrained. Mutation caught: the pooler exception
  in load_variables dropped (the run fails: lacks bert/pooler/dense/kernel)."""
  from safetensors.numpy import load_file, save_file
  orig = tmp_path / "orig"
  orig.mkdir()
  rng = np.random.default_rng(6)
  make_original_checkpoint(orig, TINY_CONFIG, with_heads=False, with_optimizer=False, extra={
      "cls/squad/output_weights": rng.normal(0, 0.5, (2, TINY_CONFIG["hidden_size"])).astype(np.float32),
      "cls/squad/output_bias": rng.normal(0, 0.1, 2).astype(np.float32)})
  vocab = SMALL_VOCAB + [f"[unused{i}]" for i in range(TINY_CONFIG["vocab_size"] - len(SMALL_VOCAB))]
  (orig / "vocab.txt").write_text("\n".join(vocab) + "\n")
  (orig / "bert_config.json").write_text(json.dumps(TINY_CONFIG))
  hf = tmp_path / "hf"
  hfc.convert(orig, hf, "huggingface", do_lower_case=True)
  tensors = load_file(str(hf / "model.safetensors"))
  save_file({n: t for n, t in tensors.items() if ".pooler." not in n}, str(hf / "model.safetensors"),
            metadata={"format": "pt"})
  (tmp_path / "input.txt").write_text("want running\nunwanted ||| low lowest\n", encoding="utf-8")
  layers = {}
  for name in ("orig", "hf"):
    done = subprocess.run([sys.executable, "-m", "finetuning.extract_features",
                           f"--input_file={tmp_path / 'input.txt'}", f"--model_dir={tmp_path / name}",
                           f"--output_file={tmp_path / name}.jsonl", "--max_seq_length=16",
                           "--layers=-1,-2"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    records = [json.loads(line) for line in (tmp_path / f"{name}.jsonl").read_text().splitlines()]
    layers[name] = [[[layer["values"] for layer in f["layers"]] for f in r["features"]]
                    for r in records]
  assert "has no pooler" in done.stderr and "starts untrained" in done.stderr
  assert len(layers["hf"]) == 2 and layers["hf"] == layers["orig"]
