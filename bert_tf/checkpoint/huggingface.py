"""Convert between original TF1 BERT folders and Hugging Face folders, both ways, without PyTorch.

An original folder holds bert_config.json, vocab.txt and bert_model.ckpt.{index,data-*} (Google's
and the Chinese BERT-wwm releases, and the `export/` folder of every bert_tf fine-tuning run).
A Hugging Face folder holds config.json, model.safetensors, vocab.txt and tokenizer_config.json.
Tensors go through the safetensors package's NumPy API, so neither direction imports PyTorch.

The layout is Hugging Face's modeling_bert.py (and its convert_bert_original_tf_checkpoint_to_pytorch):
`bert.`-prefixed encoder names, Linear weights stored [out, in] (the transpose of a TF kernel),
LayerNorm `weight`/`bias` for `gamma`/`beta`; the MLM decoder is tied to the word embeddings and is
not stored (as `save_pretrained` leaves it out). The head type and the label names travel in
config.json (`architectures`, `id2label`/`label2id`) and, in an original folder, in
model_info.json, which bert_tf writes next to bert_config.json.
"""
import json
import os
import re
import shutil

import numpy as np
from safetensors.numpy import load_file, save_file

from bert_tf import files
from bert_tf.checkpoint import name_map as nm
from bert_tf.checkpoint import original
from bert_tf.config import RELEASED_EXTRA_FIELDS, BertConfig
from bert_tf.errors import FlagError, InputFileError
from bert_tf.tokenization import (infer_do_lower_case, model_vocab_file, read_json_file,
                                   recorded_do_lower_case)

# The one table: (original name template, Hugging Face name template, transposed). `{i}` is the
# layer index. Rows follow name_map.py's groups; tests/checkpoint/test_huggingface.py checks that
# they cover name_map's original names one to one.
ENCODER = (
    ("bert/embeddings/word_embeddings", "bert.embeddings.word_embeddings.weight", False),
    ("bert/embeddings/token_type_embeddings", "bert.embeddings.token_type_embeddings.weight", False),
    ("bert/embeddings/position_embeddings", "bert.embeddings.position_embeddings.weight", False),
    ("bert/embeddings/LayerNorm/gamma", "bert.embeddings.LayerNorm.weight", False),
    ("bert/embeddings/LayerNorm/beta", "bert.embeddings.LayerNorm.bias", False),
) + tuple(
    (f"bert/encoder/layer_{{i}}/{tf_scope}/{tf_var}", f"bert.encoder.layer.{{i}}.{hf_scope}.{hf_var}",
     tf_var == "kernel")
    for tf_scope, hf_scope in (("attention/self/query", "attention.self.query"),
                               ("attention/self/key", "attention.self.key"),
                               ("attention/self/value", "attention.self.value"),
                               ("attention/output/dense", "attention.output.dense"),
                               ("attention/output/LayerNorm", "attention.output.LayerNorm"),
                               ("intermediate/dense", "intermediate.dense"),
                               ("output/dense", "output.dense"),
                               ("output/LayerNorm", "output.LayerNorm"))
    for tf_var, hf_var in ((("gamma", "weight"), ("beta", "bias")) if "LayerNorm" in tf_scope
                           else (("kernel", "weight"), ("bias", "bias"))))

POOLER = (
    ("bert/pooler/dense/kernel", "bert.pooler.dense.weight", True),
    ("bert/pooler/dense/bias", "bert.pooler.dense.bias", False),
)

MLM_HEAD = (
    ("cls/predictions/transform/dense/kernel", "cls.predictions.transform.dense.weight", True),
    ("cls/predictions/transform/dense/bias", "cls.predictions.transform.dense.bias", False),
    ("cls/predictions/transform/LayerNorm/gamma", "cls.predictions.transform.LayerNorm.weight", False),
    ("cls/predictions/transform/LayerNorm/beta", "cls.predictions.transform.LayerNorm.bias", False),
    ("cls/predictions/output_bias", "cls.predictions.bias", False),
)

# The original `output_weights` are [num_classes, hidden] (logits = x @ W^T + b), already the
# layout of a torch Linear weight: no transpose.
NSP_HEAD = (
    ("cls/seq_relationship/output_weights", "cls.seq_relationship.weight", False),
    ("cls/seq_relationship/output_bias", "cls.seq_relationship.bias", False),
)
CLASSIFIER_HEAD = (
    ("output_weights", "classifier.weight", False),
    ("output_bias", "classifier.bias", False),
)
SQUAD_HEAD = (
    ("cls/squad/output_weights", "qa_outputs.weight", False),
    ("cls/squad/output_bias", "qa_outputs.bias", False),
)

# Hugging Face architecture -> its head rows. BertModel's own files carry no `bert.` prefix.
HEADS = {
    "BertModel": (),
    "BertForPreTraining": MLM_HEAD + NSP_HEAD,
    "BertForMaskedLM": MLM_HEAD,
    "BertForSequenceClassification": CLASSIFIER_HEAD,
    "BertForTokenClassification": CLASSIFIER_HEAD,
    "BertForQuestionAnswering": SQUAD_HEAD,
}
# The MLM decoder, tied to the word embeddings and the output bias; left out on save, checked on
# load when present.
TIED = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias"}

# bert_config.json hidden_act -> Hugging Face hidden_act, both exact: our "gelu" is the tanh form
# (Google's modeling.py), Hugging Face's "gelu_new"; Hugging Face's "gelu" is the erf form.
ACTIVATIONS_TO_HF = {"gelu": "gelu_new", "gelu_exact": "gelu", "relu": "relu", "tanh": "tanh",
                     "linear": "linear"}
# Hugging Face's other name of the tanh form (transformers' GELUActivation vs PytorchGELUTanh).
ACTIVATIONS_FROM_HF = {**{hf: ours for ours, hf in ACTIVATIONS_TO_HF.items()},
                       "gelu_pytorch_tanh": "gelu"}

HEAD_FLAG_VALUES = {"classification": "BertForSequenceClassification",
                    "token_classification": "BertForTokenClassification"}

CONFIG_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                 "intermediate_size", "hidden_dropout_prob", "attention_probs_dropout_prob",
                 "max_position_embeddings", "type_vocab_size", "initializer_range")
LAYER_NORM_EPSILON = 1e-12
MODEL_INFO = "model_info.json"
ORIGINAL_FILES = ("bert_config.json", "vocab.txt")
HF_FILES = ("config.json", "model.safetensors", "vocab.txt")   # or tokenizer.json for vocab.txt


class ConversionError(InputFileError):
  """The input cannot be expressed in the other format; the message says what and why."""


def name_table(architecture, num_layers, with_pooler=True):
  """(original name, Hugging Face name, transposed) rows for a model of `num_layers` layers."""
  rows = [r for r in ENCODER if "{i}" not in r[0]]
  rows += [(o.format(i=i), h.format(i=i), t) for i in range(num_layers) for o, h, t in ENCODER
           if "{i}" in o]
  if with_pooler:
    rows += list(POOLER)
  return rows + list(HEADS[architecture])


def hf_activation(hidden_act):
  return ACTIVATIONS_TO_HF[hidden_act.lower()]


def original_activation(hidden_act, source="config.json"):
  if not isinstance(hidden_act, str) or hidden_act.lower() not in ACTIVATIONS_FROM_HF:
    raise ConversionError(f"{source}: hidden_act {hidden_act!r} has no bert_tf equivalent; expected "
                          f"one of {', '.join(sorted(ACTIVATIONS_FROM_HF))}")
  return ACTIVATIONS_FROM_HF[hidden_act.lower()]


def detect_format(model_dir):
  """"huggingface" or "original" from the files present; InputFileError naming what is missing."""
  model_dir = str(model_dir)
  if not os.path.isdir(model_dir):
    raise InputFileError(f"{model_dir}: no such folder")
  if os.path.exists(os.path.join(model_dir, "config.json")):
    missing = [f for f in HF_FILES if not os.path.exists(os.path.join(model_dir, f))]
    if missing == ["vocab.txt"] and os.path.exists(os.path.join(model_dir, "tokenizer.json")):
      missing = []   # transformers 5 saves the vocabulary in tokenizer.json only
    if missing:
      raise InputFileError(f"{model_dir}: a Hugging Face folder (config.json) without "
                           f"{', '.join(missing)}; expected {', '.join(HF_FILES)}")
    return "huggingface"
  if os.path.exists(os.path.join(model_dir, "bert_config.json")):
    missing = [f for f in ORIGINAL_FILES if not os.path.exists(os.path.join(model_dir, f))]
    if not any(f.endswith(".index") for f in os.listdir(model_dir)):
      missing.append("bert_model.ckpt.index")
    if missing:
      raise InputFileError(f"{model_dir}: an original folder (bert_config.json) without "
                           f"{', '.join(missing)}; expected bert_config.json, vocab.txt, "
                           "bert_model.ckpt.{index,data-*}")
    return "original"
  raise InputFileError(f"{model_dir}: neither an original BERT folder (bert_config.json, vocab.txt, "
                       "bert_model.ckpt.*) nor a Hugging Face one (config.json, model.safetensors, "
                       "vocab.txt)")


class Model:
  """A model between formats: BertConfig, {original name: float32 ndarray}, architecture (a key
  of HEADS), label names (or None) and do_lower_case (or None when unknown)."""

  def __init__(self, config, variables, architecture, labels=None, do_lower_case=None):
    self.config, self.variables, self.architecture = config, variables, architecture
    self.labels, self.do_lower_case = labels, do_lower_case


def _write_json(path, value):
  files.write_text_atomically(path, json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def _num_layers(names):
  return 1 + max((nm.layer_index(n) for n in names if n.startswith("bert/encoder/")), default=-1)


def _original_architecture(names, head, source):
  """The architecture the original variable names (and --head, for `output_weights`) make."""
  if "crf/transitions" in names:
    raise ConversionError(f"{source}: the model has a CRF (crf/transitions, run_ner --use_crf), "
                          "which Hugging Face's BertForTokenClassification cannot express")
  if "output_weights" in names:
    if head not in HEAD_FLAG_VALUES.values():
      raise FlagError(f"{source} has a run_classifier / run_ner head (output_weights): say which "
                      f"with --head={' or --head='.join(HEAD_FLAG_VALUES)} (or head in {MODEL_INFO})")
    return head
  if "cls/squad/output_weights" in names:
    return "BertForQuestionAnswering"
  if "cls/predictions/output_bias" in names:
    return "BertForPreTraining" if "cls/seq_relationship/output_weights" in names else "BertForMaskedLM"
  return "BertModel"


def read_original(model_dir, head=None):
  """Reads an original folder into a Model. Optimizer state is dropped; any other variable the
  table has no row for is refused (it would be lost).

  Args:
    head: "BertForSequenceClassification" or "BertForTokenClassification" for a checkpoint with
      run_classifier / run_ner's `output_weights` (the names alone do not tell them apart); else
      taken from model_info.json.
  """
  model_dir = str(model_dir)
  config = BertConfig.from_json_file(os.path.join(model_dir, "bert_config.json"))
  info_file = os.path.join(model_dir, MODEL_INFO)
  info = read_json_file(info_file) if os.path.exists(info_file) else {}
  prefix = original.resolve_checkpoint(model_dir)
  reader = original._CheckedReader(prefix)
  names = [n for n in reader.get_variable_to_shape_map() if not nm.is_optimizer_state(n)]
  architecture = _original_architecture(names, head or info.get("architecture"), prefix)
  rows = name_table(architecture, _num_layers(names), with_pooler="bert/pooler/dense/kernel" in names)
  known = {orig for orig, _, _ in rows}
  unknown = sorted(set(names) - known)
  if unknown:
    raise ConversionError(f"{prefix}: variable {unknown[0]} has no place in Hugging Face's "
                          f"{architecture} ({len(unknown)} such); it would be lost")
  missing = sorted(known - set(names))
  if missing:
    raise ConversionError(f"{prefix} lacks {missing[0]}, which {architecture} needs")
  variables = {orig: reader.get_tensor(orig) for orig in known}
  model = Model(config, variables, architecture, labels=info.get("labels"),
                do_lower_case=info.get("do_lower_case"))
  _check_labels(model, info_file)
  return model


def write_original(model, model_dir, vocab_file):
  """Writes bert_config.json, vocab.txt (copied), bert_model.ckpt and model_info.json."""
  os.makedirs(model_dir, exist_ok=True)
  model.config.to_json_file(os.path.join(model_dir, "bert_config.json"))
  shutil.copyfile(vocab_file, os.path.join(model_dir, "vocab.txt"))
  original._write_name_based(os.path.join(model_dir, "bert_model.ckpt"), model.variables)
  info = {"architecture": model.architecture}
  if model.labels is not None:
    info["labels"] = list(model.labels)
  if model.do_lower_case is not None:
    info["do_lower_case"] = model.do_lower_case
  _write_json(os.path.join(model_dir, MODEL_INFO), info)


def hf_config(model):
  """config.json of Hugging Face's BertConfig for `model`."""
  config = model.config
  out = {"architectures": [model.architecture], "model_type": "bert"}
  out.update({field: getattr(config, field) for field in CONFIG_FIELDS})
  out.update(hidden_act=hf_activation(config.hidden_act), layer_norm_eps=LAYER_NORM_EPSILON,
             position_embedding_type="absolute", pad_token_id=0)
  if "output_weights" in model.variables:
    # Hugging Face sizes the classifier from id2label (num_labels defaults to 2): always written,
    # with its default names LABEL_i when the labels are unknown, and LABEL_0 for a regression
    # head (run_classifier's one output, empty label list).
    num_classes = model.variables["output_weights"].shape[0]
    labels = list(model.labels) if model.labels else [f"LABEL_{i}" for i in range(num_classes)]
    if model.labels is not None and len(model.labels) == 0 and num_classes == 1:
      out["problem_type"] = "regression"
    out["id2label"] = {str(i): label for i, label in enumerate(labels)}
    out["label2id"] = {label: i for i, label in enumerate(labels)}
  out.update(config.extra_fields)
  return out


def _check_labels(model, source):
  """The label names fit the head: one per row of output_weights (none for regression)."""
  if model.labels is None or "output_weights" not in model.variables:
    return
  rows = model.variables["output_weights"].shape[0]
  if len(model.labels) != rows and not (rows == 1 and not model.labels):
    raise ConversionError(f"{source}: {len(model.labels)} label names for a head with {rows} "
                          "outputs (output_weights)")


def write_huggingface(model, model_dir, vocab_file):
  """Writes config.json, model.safetensors, vocab.txt (copied) and tokenizer_config.json."""
  os.makedirs(model_dir, exist_ok=True)
  rows = name_table(model.architecture, model.config.num_hidden_layers,
                    with_pooler="bert/pooler/dense/kernel" in model.variables)
  tensors = {}
  for orig, hf, transposed in rows:
    value = np.asarray(model.variables[orig], dtype=np.float32)
    name = hf[len("bert."):] if model.architecture == "BertModel" else hf
    tensors[name] = np.ascontiguousarray(value.T if transposed else value)
  tmp = os.path.join(model_dir, ".model.safetensors.tmp")
  save_file(tensors, tmp, metadata={"format": "pt"})
  os.replace(tmp, os.path.join(model_dir, "model.safetensors"))
  _write_json(os.path.join(model_dir, "config.json"), hf_config(model))
  tokenizer = {"tokenizer_class": "BertTokenizer",
               "model_max_length": model.config.max_position_embeddings}
  if model.do_lower_case is not None:
    tokenizer["do_lower_case"] = model.do_lower_case
  _write_json(os.path.join(model_dir, "tokenizer_config.json"), tokenizer)
  shutil.copyfile(vocab_file, os.path.join(model_dir, "vocab.txt"))


def _check_hf_config(hf, source):
  """Refuses a config.json whose model bert_tf cannot compute exactly."""
  checks = (("model_type", "bert", hf.get("model_type", "bert")),
            ("position_embedding_type", "absolute", hf.get("position_embedding_type", "absolute")),
            ("is_decoder", False, hf.get("is_decoder", False)),
            ("add_cross_attention", False, hf.get("add_cross_attention", False)),
            ("tie_word_embeddings", True, hf.get("tie_word_embeddings", True)))
  for field, expected, value in checks:
    if value != expected:
      raise ConversionError(f"{source}: {field}={value!r}; bert_tf computes only {field}={expected!r}")
  eps = hf.get("layer_norm_eps", LAYER_NORM_EPSILON)
  if eps != LAYER_NORM_EPSILON:
    raise ConversionError(f"{source}: layer_norm_eps={eps!r}; bert_tf's LayerNorm uses "
                          f"{LAYER_NORM_EPSILON} (Google's modeling.py)")
  architectures = hf.get("architectures") or ["BertModel"]
  if len(architectures) != 1 or architectures[0] not in HEADS:
    raise ConversionError(f"{source}: architectures={architectures!r}; expected one of "
                          f"{', '.join(HEADS)}")
  return architectures[0]


def read_huggingface(model_dir):
  """Reads a Hugging Face folder into a Model; refuses what bert_tf cannot express exactly."""
  model_dir = str(model_dir)
  config_file = os.path.join(model_dir, "config.json")
  hf = read_json_file(config_file)
  architecture = _check_hf_config(hf, config_file)
  fields = {field: hf[field] for field in CONFIG_FIELDS if field in hf}
  fields["hidden_act"] = original_activation(hf.get("hidden_act", "gelu"), config_file)
  fields.update({k: hf[k] for k in RELEASED_EXTRA_FIELDS if k in hf})
  config = BertConfig.from_dict(fields, source=config_file)

  weights_file = os.path.join(model_dir, "model.safetensors")
  try:
    tensors = load_file(weights_file)
  except Exception as e:  # pylint: disable=broad-except  (safetensors raises its own error types)
    raise InputFileError(f"{weights_file}: cannot be read as safetensors ({e})") from None
  # BertModel's own files have no `bert.` prefix; a head model's do.
  tensors = {(f"bert.{n}" if re.match(r"(embeddings|encoder|pooler)\.", n) else n): v
             for n, v in tensors.items()}
  tensors.pop("bert.embeddings.position_ids", None)  # a buffer older transformers saved
  for tied, source in TIED.items():
    if tied in tensors:
      if source not in tensors or not np.array_equal(tensors.pop(tied), tensors[source]):
        raise ConversionError(f"{weights_file}: {tied} differs from {source}; bert_tf ties them")
  rows = name_table(architecture, config.num_hidden_layers,
                    with_pooler="bert.pooler.dense.weight" in tensors)
  known = {hf_name for _, hf_name, _ in rows}
  unknown = sorted(set(tensors) - known)
  if unknown:
    raise ConversionError(f"{weights_file}: tensor {unknown[0]} has no place in {architecture} "
                          f"with {config.num_hidden_layers} layers ({len(unknown)} such)")
  missing = sorted(known - set(tensors))
  if missing:
    raise ConversionError(f"{weights_file} lacks {missing[0]}, which {architecture} needs")
  variables = {}
  for orig, hf_name, transposed in rows:
    value = tensors[hf_name]
    if value.dtype not in (np.float32, np.float16):
      raise ConversionError(f"{weights_file}: {hf_name} is {value.dtype}; expected float32 or float16")
    value = value.astype(np.float32)
    variables[orig] = value.T if transposed else value
  labels = None
  if "id2label" in hf and architecture in ("BertForSequenceClassification",
                                           "BertForTokenClassification"):
    id2label = hf["id2label"]
    labels = [id2label[k] for k in sorted(id2label, key=int)]
    if hf.get("problem_type") == "regression":
      labels = []
    elif labels == [f"LABEL_{i}" for i in range(len(labels))]:
      labels = None   # Hugging Face's default names: the labels were never named
  do_lower_case = recorded_do_lower_case(model_dir)
  model = Model(config, variables, architecture, labels=labels, do_lower_case=do_lower_case)
  _check_labels(model, config_file)
  return model


def convert(input_dir, output_dir, output_format, head=None, do_lower_case=None, labels_file=None):
  """Converts a folder between the original and the Hugging Face format.

  Args:
    output_format: "huggingface" or "original".
    head: for an original checkpoint with `output_weights`, "classification" or
      "token_classification" (see read_original).
    do_lower_case: the tokenizer's casing when the input does not record it (an original folder
      without model_info.json); None infers it from the folder name as FullTokenizer.from_pretrained.
    labels_file: the label names of a classifier or tagger head, a JSON list (the labels.json
      run_classifier and run_ner write in their output_dir); overrides those of the input.
  Returns:
    the Model converted.
  """
  if output_format not in ("huggingface", "original"):
    raise FlagError(f"--output_format={output_format}; expected huggingface or original")
  if head is not None and head not in HEAD_FLAG_VALUES:
    raise FlagError(f"--head={head}; expected {' or '.join(HEAD_FLAG_VALUES)}")
  input_format = detect_format(input_dir)
  if input_format == output_format:
    raise FlagError(f"--input_dir={input_dir} is already in the {output_format} format")
  if input_format == "original":
    model = read_original(input_dir, head=HEAD_FLAG_VALUES.get(head))
  else:
    model = read_huggingface(input_dir)
  if labels_file is not None:
    if "output_weights" not in model.variables:
      raise FlagError(f"--labels_file={labels_file}: the model's head ({model.architecture}) has no "
                      "labels")
    labels = read_json_file(labels_file)
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
      raise InputFileError(f"{labels_file}: expected a JSON list of label names")
    model.labels = labels
    _check_labels(model, labels_file)
  if do_lower_case is not None:
    model.do_lower_case = do_lower_case
  elif model.do_lower_case is None:
    model.do_lower_case = infer_do_lower_case(input_dir)
  vocab_file = model_vocab_file(input_dir)
  vocab_size = original._vocab_size_of(vocab_file)
  if vocab_size != model.config.vocab_size:
    raise ConversionError(f"{vocab_file} has {vocab_size} tokens but the config says "
                          f"vocab_size={model.config.vocab_size}")
  writer = write_huggingface if output_format == "huggingface" else write_original
  writer(model, str(output_dir), vocab_file)
  return model
