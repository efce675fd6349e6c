"""Original <-> Hugging Face conversion (bert_tf/checkpoint/huggingface.py, bert-convert).

The Hugging Face layout is checked against names and shapes written out by hand below from
transformers' modeling_bert.py (BertModel, BertForPreTraining, BertFor*Classification,
BertForQuestionAnswering), independently of transformers; test_huggingface_transformers.py
runs transformers itself (when installed) and compares outputs.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import ROOT, TINY_CONFIG, make_original_checkpoint, original_variable_shapes
from bert_tf.checkpoint import huggingface as hfc
from bert_tf.checkpoint import name_map as nm
from bert_tf.errors import FlagError, InputFileError

LABELS = ["negative", "neutral", "positive"]
# 11 tags, so that id2label's keys sort differently as strings ("10" < "2") and as numbers.
TAGS = ["O"] + [f"{b}-{t}" for t in ("LOC", "PER", "ORG", "GPE", "MISC") for b in "BI"]
H, I, V = TINY_CONFIG["hidden_size"], TINY_CONFIG["intermediate_size"], TINY_CONFIG["vocab_size"]


def _hf_expected(architecture):
  """Hugging Face's tensor names and shapes for the tiny 2-layer model, by hand from
  modeling_bert.py: nn.Linear(in, out).weight is [out, in]; nn.Embedding is [num, dim]."""
  prefix = "" if architecture == "BertModel" else "bert."
  shapes = {
      "embeddings.word_embeddings.weight": (V, H),
      "embeddings.position_embeddings.weight": (TINY_CONFIG["max_position_embeddings"], H),
      "embeddings.token_type_embeddings.weight": (TINY_CONFIG["type_vocab_size"], H),
      "embeddings.LayerNorm.weight": (H,), "embeddings.LayerNorm.bias": (H,),
      "pooler.dense.weight": (H, H), "pooler.dense.bias": (H,),
  }
  for n in (0, 1):
    layer = f"encoder.layer.{n}."
    for linear, (out_dim, in_dim) in (("attention.self.query", (H, H)), ("attention.self.key", (H, H)),
                                      ("attention.self.value", (H, H)),
                                      ("attention.output.dense", (H, H)),
                                      ("intermediate.dense", (I, H)), ("output.dense", (H, I))):
      shapes[layer + linear + ".weight"] = (out_dim, in_dim)
      shapes[layer + linear + ".bias"] = (out_dim,)
    for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
      shapes[layer + norm + ".weight"] = (H,)
      shapes[layer + norm + ".bias"] = (H,)
  shapes = {prefix + k: v for k, v in shapes.items()}
  if architecture in ("BertForPreTraining", "BertForMaskedLM"):
    shapes.update({"cls.predictions.transform.dense.weight": (H, H),
                   "cls.predictions.transform.dense.bias": (H,),
                   "cls.predictions.transform.LayerNorm.weight": (H,),
                   "cls.predictions.transform.LayerNorm.bias": (H,),
                   "cls.predictions.bias": (V,)})
  if architecture == "BertForPreTraining":
    shapes.update({"cls.seq_relationship.weight": (2, H), "cls.seq_relationship.bias": (2,)})
  elif architecture == "BertForSequenceClassification":
    shapes.update({"classifier.weight": (len(LABELS), H), "classifier.bias": (len(LABELS),)})
  elif architecture == "BertForTokenClassification":
    shapes.update({"classifier.weight": (len(TAGS), H), "classifier.bias": (len(TAGS),)})
  elif architecture == "BertForQuestionAnswering":
    shapes.update({"qa_outputs.weight": (2, H), "qa_outputs.bias": (2,)})
  return shapes


def _head_variables(architecture, rng):
  """The task head variables bert_tf's fine-tuning programs write (finetuning/models.py)."""
  if architecture == "BertForMaskedLM":
    shapes = original_variable_shapes(TINY_CONFIG, with_heads=True)
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()
            if name.startswith("cls/predictions/")}
  n = {"BertForSequenceClassification": len(LABELS), "BertForTokenClassification": len(TAGS),
       "BertForQuestionAnswering": 2}.get(architecture)
  if n is None:
    return {}
  scope = "cls/squad/" if architecture == "BertForQuestionAnswering" else ""
  return {scope + "output_weights": rng.standard_normal((n, H)).astype(np.float32),
          scope + "output_bias": rng.standard_normal(n).astype(np.float32)}


def _original_folder(path, architecture, labels=None, with_info=True):
  path.mkdir(parents=True, exist_ok=True)
  extra = _head_variables(architecture, np.random.default_rng(7))
  _, values = make_original_checkpoint(path, TINY_CONFIG, extra=extra,
                                       with_heads=architecture == "BertForPreTraining")
  (path / "bert_config.json").write_text(json.dumps(TINY_CONFIG))
  (path / "vocab.txt").write_text("".join(f"tok{i}\n" for i in range(V)))
  if with_info:
    info = {"architecture": architecture}
    if labels is not None:
      info["labels"] = labels
    (path / "model_info.json").write_text(json.dumps(info))
  return values


def _read_checkpoint(folder):
  reader = tf.train.load_checkpoint(str(folder / "bert_model.ckpt"))
  return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()}


ARCHITECTURES = [("BertModel", None), ("BertForPreTraining", None), ("BertForMaskedLM", None),
                 ("BertForSequenceClassification", LABELS), ("BertForTokenClassification", TAGS),
                 ("BertForQuestionAnswering", None)]


@pytest.mark.parametrize("architecture,labels", ARCHITECTURES, ids=[a for a, _ in ARCHITECTURES])
def test_round_trip_is_bit_identical(tmp_path, architecture, labels):
  """original -> Hugging Face -> original gives every variable back bit for bit, with the config,
  the head type and the labels. Mutations caught: a transpose dropped or added in one direction
  (values differ), labels dropped from config.json, id2label read in string order (10 > 2)."""
  values = _original_folder(tmp_path / "orig", architecture, labels)
  hfc.convert(tmp_path / "orig", tmp_path / "hf", "huggingface")
  hf_config = json.loads((tmp_path / "hf" / "config.json").read_text())
  assert hf_config["architectures"] == [architecture]
  if labels is not None:
    assert hf_config["id2label"] == {str(i): label for i, label in enumerate(labels)}
    assert hf_config["label2id"] == {label: i for i, label in enumerate(labels)}
  hfc.convert(tmp_path / "hf", tmp_path / "back", "original")
  back = _read_checkpoint(tmp_path / "back")
  assert sorted(back) == sorted(values)   # optimizer slots and global_step are dropped
  for name, value in values.items():
    assert back[name].dtype == np.float32 and back[name].tobytes() == value.tobytes(), name
  assert json.loads((tmp_path / "back" / "bert_config.json").read_text()) == TINY_CONFIG
  info = json.loads((tmp_path / "back" / "model_info.json").read_text())
  assert info["architecture"] == architecture and info.get("labels") == labels
  assert (tmp_path / "back" / "vocab.txt").read_text() == (tmp_path / "orig" / "vocab.txt").read_text()


@pytest.mark.parametrize("architecture,labels", ARCHITECTURES, ids=[a for a, _ in ARCHITECTURES])
def test_safetensors_layout_is_hugging_faces(tmp_path, architecture, labels):
  """Tensor names and shapes equal the hand-written list; Linear weights are the TF kernels
  transposed, embeddings and the [n, hidden] output_weights are not. Mutation caught: a kernel row
  with transposed=False (the shape of intermediate.dense.weight would be [32, 37])."""
  from safetensors.numpy import load_file
  values = _original_folder(tmp_path / "orig", architecture, labels)
  hfc.convert(tmp_path / "orig", tmp_path / "hf", "huggingface")
  tensors = load_file(str(tmp_path / "hf" / "model.safetensors"))
  assert {n: t.shape for n, t in tensors.items()} == _hf_expected(architecture)
  p = "" if architecture == "BertModel" else "bert."
  np.testing.assert_array_equal(tensors[p + "encoder.layer.1.intermediate.dense.weight"],
                                values["bert/encoder/layer_1/intermediate/dense/kernel"].T)
  np.testing.assert_array_equal(tensors[p + "embeddings.word_embeddings.weight"],
                                values["bert/embeddings/word_embeddings"])
  np.testing.assert_array_equal(tensors[p + "encoder.layer.0.output.LayerNorm.weight"],
                                values["bert/encoder/layer_0/output/LayerNorm/gamma"])
  head = {"BertForSequenceClassification": ("classifier.weight", "output_weights"),
          "BertForTokenClassification": ("classifier.weight", "output_weights"),
          "BertForQuestionAnswering": ("qa_outputs.weight", "cls/squad/output_weights"),
          "BertForPreTraining": ("cls.seq_relationship.weight",
                                 "cls/seq_relationship/output_weights")}.get(architecture)
  if head:
    np.testing.assert_array_equal(tensors[head[0]], values[head[1]])
  hf_config = json.loads((tmp_path / "hf" / "config.json").read_text())
  assert hf_config["hidden_act"] == "gelu_new" and hf_config["layer_norm_eps"] == 1e-12
  assert hf_config["model_type"] == "bert"
  assert json.loads((tmp_path / "hf" / "tokenizer_config.json").read_text())["do_lower_case"] is True


def test_table_covers_the_original_name_table():
  """Every original name of name_map.py (encoder and pretraining heads) has exactly one row, and
  the Hugging Face names are distinct."""
  rows = hfc.name_table("BertForPreTraining", 3)
  assert sorted(o for o, _, _ in rows) == sorted(o for o, _ in nm.name_map(3, with_heads=True))
  assert len({h for _, h, _ in rows}) == len(rows)


@pytest.mark.parametrize("ours,theirs", [("gelu", "gelu_new"), ("gelu_exact", "gelu"),
                                         ("relu", "relu"), ("tanh", "tanh")])
def test_activation_names_map_both_ways(tmp_path, ours, theirs):
  """bert_config.json "gelu" (tanh form) is Hugging Face's "gelu_new"; their "gelu" (erf) is our
  "gelu_exact". Mutation caught: mapping "gelu" to "gelu" (the erf form, a different function)."""
  _original_folder(tmp_path / "orig", "BertModel")
  config = dict(TINY_CONFIG, hidden_act=ours)
  (tmp_path / "orig" / "bert_config.json").write_text(json.dumps(config))
  hfc.convert(tmp_path / "orig", tmp_path / "hf", "huggingface")
  assert json.loads((tmp_path / "hf" / "config.json").read_text())["hidden_act"] == theirs
  hfc.convert(tmp_path / "hf", tmp_path / "back", "original")
  assert json.loads((tmp_path / "back" / "bert_config.json").read_text())["hidden_act"] == ours


def _hf_folder(tmp_path, **config_changes):
  _original_folder(tmp_path / "orig", "BertModel")
  hfc.convert(tmp_path / "orig", tmp_path / "hf", "huggingface")
  config_file = tmp_path / "hf" / "config.json"
  config = json.loads(config_file.read_text())
  config.update(config_changes)
  config_file.write_text(json.dumps(config))
  return tmp_path / "hf"


@pytest.mark.parametrize("change,words", [
    (dict(hidden_act="silu"), ["hidden_act", "'silu'"]),
    (dict(hidden_act="gelu_fast"), ["hidden_act", "'gelu_fast'"]),
    (dict(layer_norm_eps=1e-5), ["layer_norm_eps=1e-05"]),
    (dict(position_embedding_type="relative_key"), ["position_embedding_type='relative_key'"]),
    (dict(model_type="roberta"), ["model_type='roberta'"]),
    (dict(architectures=["BertForMultipleChoice"]), ["BertForMultipleChoice"]),
])
def test_inexpressible_configs_are_refused(tmp_path, change, words):
  """A config bert_tf cannot compute exactly is refused, naming the field; none is approximated.
  Mutation caught: accepting any layer_norm_eps."""
  folder = _hf_folder(tmp_path, **change)
  with pytest.raises(hfc.ConversionError) as error:
    hfc.convert(folder, tmp_path / "out", "original")
  for word in words:
    assert word in str(error.value)
  assert "config.json" in str(error.value)


def test_a_file_saved_by_transformers_bertmodel_reads(tmp_path):
  """BertModel.save_pretrained writes names without `bert.`, older versions a position_ids buffer,
  and BertForPreTraining may carry the tied decoder: all read; an untied decoder is refused."""
  from safetensors.numpy import load_file, save_file
  values = _original_folder(tmp_path / "orig", "BertForPreTraining")
  hfc.convert(tmp_path / "orig", tmp_path / "hf", "huggingface")
  weights = tmp_path / "hf" / "model.safetensors"
  tensors = load_file(str(weights))
  tensors["cls.predictions.decoder.weight"] = tensors["bert.embeddings.word_embeddings.weight"]
  tensors["cls.predictions.decoder.bias"] = tensors["cls.predictions.bias"]
  tensors["bert.embeddings.position_ids"] = np.arange(64, dtype=np.int64)[None]
  save_file(tensors, str(weights))
  model = hfc.read_huggingface(tmp_path / "hf")
  assert sorted(model.variables) == sorted(values)
  tensors["cls.predictions.decoder.bias"] = tensors["cls.predictions.bias"] + 1
  save_file(tensors, str(weights))
  with pytest.raises(hfc.ConversionError, match="cls.predictions.decoder.bias differs"):
    hfc.read_huggingface(tmp_path / "hf")


def test_classifier_head_needs_its_type(tmp_path):
  """run_classifier and run_ner both write output_weights: without model_info.json the user says
  which with --head, and the labels are then unnamed."""
  _original_folder(tmp_path / "orig", "BertForTokenClassification", with_info=False)
  with pytest.raises(FlagError, match="--head=classification or --head=token_classification"):
    hfc.convert(tmp_path / "orig", tmp_path / "hf", "huggingface")
  model = hfc.convert(tmp_path / "orig", tmp_path / "hf", "huggingface", head="token_classification")
  assert model.architecture == "BertForTokenClassification"
  # Hugging Face sizes the classifier from id2label (2 by default): its default names are written
  # and read back as "no names". Mutation caught: writing no id2label for unnamed labels.
  assert json.loads((tmp_path / "hf" / "config.json").read_text())["id2label"] == {
      str(i): f"LABEL_{i}" for i in range(len(TAGS))}
  hfc.convert(tmp_path / "hf", tmp_path / "back", "original")
  assert "labels" not in json.loads((tmp_path / "back" / "model_info.json").read_text())
  # A fine-tuning run's export/ with the run's labels.json (what run_ner writes).
  (tmp_path / "labels.json").write_text(json.dumps(TAGS))
  hfc.convert(tmp_path / "orig", tmp_path / "hf2", "huggingface", head="token_classification",
              labels_file=tmp_path / "labels.json")
  assert json.loads((tmp_path / "hf2" / "config.json").read_text())["label2id"]["I-MISC"] == 10


def test_regression_head_and_label_count(tmp_path):
  """run_classifier's regression head (one output, no label names) is problem_type "regression"
  with one output and comes back with an empty label list; label names that do not fit the head
  are refused."""
  folder = tmp_path / "orig"
  folder.mkdir()
  rng = np.random.default_rng(3)
  make_original_checkpoint(folder, TINY_CONFIG, with_heads=False, extra={
      "output_weights": rng.standard_normal((1, H)).astype(np.float32),
      "output_bias": rng.standard_normal(1).astype(np.float32)})
  (folder / "bert_config.json").write_text(json.dumps(TINY_CONFIG))
  (folder / "vocab.txt").write_text("".join(f"tok{i}\n" for i in range(V)))
  info = {"architecture": "BertForSequenceClassification", "labels": []}
  (folder / "model_info.json").write_text(json.dumps(info))
  hfc.convert(folder, tmp_path / "hf", "huggingface")
  config = json.loads((tmp_path / "hf" / "config.json").read_text())
  assert config["problem_type"] == "regression" and config["id2label"] == {"0": "LABEL_0"}
  hfc.convert(tmp_path / "hf", tmp_path / "back", "original")
  assert json.loads((tmp_path / "back" / "model_info.json").read_text())["labels"] == []
  (folder / "model_info.json").write_text(json.dumps(dict(info, labels=["a", "b"])))
  with pytest.raises(hfc.ConversionError, match="2 label names for a head with 1 outputs"):
    hfc.convert(folder, tmp_path / "hf2", "huggingface")


@pytest.mark.parametrize("extra,words", [
    ({"crf/transitions": np.zeros((5, 5), np.float32)}, ["crf/transitions", "CRF"]),
    ({"ner/output_weights": np.zeros((5, H), np.float32)}, ["ner/output_weights", "would be lost"]),
])
def test_variables_without_a_place_are_refused(tmp_path, extra, words):
  """Nothing is dropped silently: a CRF or a multitask head cannot be expressed."""
  folder = tmp_path / "orig"
  folder.mkdir()
  make_original_checkpoint(folder, TINY_CONFIG, with_heads=False, extra=extra)
  (folder / "bert_config.json").write_text(json.dumps(TINY_CONFIG))
  (folder / "vocab.txt").write_text("".join(f"tok{i}\n" for i in range(V)))
  with pytest.raises(hfc.ConversionError) as error:
    hfc.convert(folder, tmp_path / "hf", "huggingface")
  for word in words:
    assert word in str(error.value)


def test_missing_files_are_named(tmp_path):
  folder = _hf_folder(tmp_path)
  os.remove(folder / "model.safetensors")
  with pytest.raises(InputFileError, match="without model.safetensors"):
    hfc.convert(folder, tmp_path / "out", "original")
  with pytest.raises(FlagError, match="already in the original format"):
    hfc.convert(tmp_path / "orig", tmp_path / "out", "original")


def test_program_converts_both_ways_and_reports_errors_in_one_line(tmp_path):
  """bert-convert end to end (one subprocess per run), and its one-line error for a folder that is
  neither format (exit status 1)."""
  values = _original_folder(tmp_path / "orig", "BertForSequenceClassification", LABELS)
  env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")

  def run(*argv):
    return subprocess.run([sys.executable, "-m", "pretraining.convert_checkpoint", *argv], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
  done = run(f"--input_dir={tmp_path / 'orig'}", f"--output_dir={tmp_path / 'hf'}",
             "--output_format=huggingface")
  assert done.returncode == 0, done.stderr[-2000:]
  assert "BertForSequenceClassification" in done.stdout and "positive" in done.stdout
  bad = run(f"--input_dir={tmp_path}", f"--output_dir={tmp_path / 'x'}", "--output_format=original")
  assert bad.returncode == 1 and "Traceback" not in bad.stderr
  assert [l for l in bad.stderr.splitlines() if ": error: " in l] == [
      f"convert_checkpoint: error: {tmp_path}: neither an original BERT folder (bert_config.json, "
      "vocab.txt, bert_model.ckpt.*) nor a Hugging Face one (config.json, model.safetensors, "
      "vocab.txt)"]
  hfc.convert(tmp_path / "hf", tmp_path / "back", "original")
  assert _read_checkpoint(tmp_path / "back")["output_weights"].tobytes() == \
      values["output_weights"].tobytes()


def test_from_pretrained_reads_a_hugging_face_folder(tmp_path):
  """BertPretrainer.from_pretrained / BertEncoder.from_pretrained on the Hugging Face folder give
  the weights of the original folder, and FullTokenizer.from_pretrained takes the casing from
  tokenizer_config.json rather than the folder name. Mutation caught: from_pretrained ignoring
  config.json (it raises for a missing bert_config.json)."""
  from bert_tf import BertEncoder, BertPretrainer
  from bert_tf.tokenization import FullTokenizer
  _original_folder(tmp_path / "orig", "BertForPreTraining")
  hf_dir = tmp_path / "model_cased"    # the name alone would say "not lower-cased"
  hfc.convert(tmp_path / "orig", hf_dir, "huggingface", do_lower_case=True)
  for cls in (BertPretrainer, BertEncoder):
    ours = {w.path: w.numpy() for w in cls.from_pretrained(tmp_path / "orig").weights}
    theirs = {w.path: w.numpy() for w in cls.from_pretrained(hf_dir).weights}
    assert sorted(ours) == sorted(theirs)
    for path, value in ours.items():
      assert value.tobytes() == theirs[path].tobytes(), path
  assert FullTokenizer.from_pretrained(hf_dir).do_lower_case is True
  assert FullTokenizer.from_pretrained(hf_dir, do_lower_case=False).do_lower_case is False
