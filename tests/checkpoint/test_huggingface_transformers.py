"""Hugging Face interchange checked against transformers itself (PyTorch, CPU), both ways.

bert_tf -> transformers: a random original checkpoint (Google's variable names, written by
tests/conftest.py) is converted with bert_tf.checkpoint.huggingface, loaded by transformers'
BertModel / BertForPreTraining / BertFor{SequenceClassification,QuestionAnswering,
TokenClassification}, and run on real MRPC sentence pairs tokenized by our FullTokenizer with
Google's uncased vocabulary; every output equals bert_tf's on the original folder within 1e-5.
transformers -> bert_tf: models made and `save_pretrained` by transformers load into bert_tf's
BertEncoder, BertPretrainer and the fine-tuning models with the same outputs.

Everything is built from configs and local folders (HF_HUB_OFFLINE=1: nothing is downloaded).
The models are 2 layers of 32 units over the real 30522-token vocabulary.
"""
import csv
import json
import os
import shutil

import numpy as np
import pytest

from conftest import TINY_CONFIG, make_original_checkpoint, shared_path
from bert_tf import BertEncoder, BertPretrainer
from bert_tf.checkpoint import huggingface as hfc
from bert_tf.checkpoint.original import from_pretrained
from bert_tf.tokenization import FullTokenizer
from finetuning.models import BertClassifier, BertSpanLabeler, BertTokenTagger

CONFIG = dict(TINY_CONFIG, vocab_size=30522, max_position_embeddings=64)
H, I = CONFIG["hidden_size"], CONFIG["intermediate_size"]
SEQ_LENGTH, NUM_LABELS, NUM_TAGS = 40, 3, 5
TOLERANCE = 1e-5
torch = transformers = None   # imported by the fixture below, not when the suite is collected


@pytest.fixture(scope="module", autouse=True)
def _torch_and_transformers():
  """Skips the module without torch or transformers (dev extras); imports them on first use only,
  so collecting the whole suite does not load PyTorch."""
  global torch, transformers  # pylint: disable=global-statement
  os.environ.setdefault("HF_HUB_OFFLINE", "1")   # nothing is downloaded
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")


def _real_inputs(vocab_file, num_pairs=4):
  """The first MRPC dev pairs as [CLS] a [SEP] b [SEP], padded to SEQ_LENGTH, by FullTokenizer."""
  tokenizer = FullTokenizer(vocab_file, do_lower_case=True)
  with open(shared_path("glue/MRPC/dev.tsv"), encoding="utf-8-sig") as f:
    rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:num_pairs + 1]
  ids, mask, segments, pairs = [], [], [], []
  for row in rows:
    a, b = tokenizer.tokenize(row[3]), tokenizer.tokenize(row[4])
    a, b = a[:(SEQ_LENGTH - 3) // 2], b[:(SEQ_LENGTH - 3) // 2]
    tokens = ["[CLS]"] + a + ["[SEP]"] + b + ["[SEP]"]
    pad = SEQ_LENGTH - len(tokens)
    ids.append(tokenizer.convert_tokens_to_ids(tokens) + [0] * pad)
    mask.append([1] * len(tokens) + [0] * pad)
    segments.append([0] * (len(a) + 2) + [1] * (len(b) + 1) + [0] * pad)
    pairs.append((row[3], row[4]))
  inputs = {k: np.array(v, np.int32) for k, v in
            (("input_ids", ids), ("input_mask", mask), ("segment_ids", segments))}
  assert (inputs["input_mask"].sum(1) < SEQ_LENGTH).any()   # real padding in the batch
  assert (inputs["input_ids"] != tokenizer.vocab["[UNK]"]).mean() > 0.9   # real word pieces
  return inputs, pairs


def _torch_inputs(inputs):
  return dict(input_ids=torch.tensor(inputs["input_ids"], dtype=torch.long),
              attention_mask=torch.tensor(inputs["input_mask"], dtype=torch.long),
              token_type_ids=torch.tensor(inputs["segment_ids"], dtype=torch.long))


def _close(ours, theirs, name, mask=None):
  ours = np.asarray(ours, np.float64)
  theirs = theirs.detach().numpy().astype(np.float64) if hasattr(theirs, "detach") else theirs
  assert ours.shape == theirs.shape, name
  if mask is not None:   # padding positions carry no meaning in either model
    ours, theirs = ours[mask.astype(bool)], theirs[mask.astype(bool)]
  diff = np.abs(ours - theirs).max()
  if os.environ.get("BERT_TF_PRINT_DIFFS"):   # the figures quoted in docs/models.md
    print(f"max |diff| {name}: {diff:.2e}")
  assert diff < TOLERANCE, f"{name}: max |bert_tf - transformers| = {diff:.3g}"
  return diff


def _original_folder(folder, hidden_act, architecture, seed=0):
  """Original folder of `architecture` (the variables bert_tf's programs write) with random weights.
  The intermediate kernels are large enough that the tanh and erf forms of GELU differ by more
  than the tolerance at the outputs (checked in test_activation_forms_are_told_apart)."""
  folder.mkdir(parents=True)
  rng = np.random.default_rng(seed + 1)
  extra = {f"bert/encoder/layer_{n}/intermediate/dense/kernel":
           rng.normal(0, 0.5, (H, I)).astype(np.float32) for n in range(CONFIG["num_hidden_layers"])}
  rows = {"BertForSequenceClassification": ("", NUM_LABELS), "BertForTokenClassification": ("", NUM_TAGS),
          "BertForQuestionAnswering": ("cls/squad/", 2)}.get(architecture)
  if rows:
    scope, n = rows
    extra[scope + "output_weights"] = rng.normal(0, 0.3, (n, H)).astype(np.float32)
    extra[scope + "output_bias"] = rng.normal(0, 0.1, n).astype(np.float32)
  config = dict(CONFIG, hidden_act=hidden_act)
  make_original_checkpoint(folder, config, with_heads=architecture == "BertForPreTraining",
                           with_optimizer=False, seed=seed, extra=extra)
  (folder / "bert_config.json").write_text(json.dumps(config))
  shutil.copy(shared_path("vocab/uncased_vocab.txt"), folder / "vocab.txt")
  (folder / "model_info.json").write_text(json.dumps({"architecture": architecture,
                                                      "do_lower_case": True}))
  return folder


@pytest.fixture(scope="module")
def pretraining_pair(tmp_path_factory):
  """(original folder, its Hugging Face conversion, inputs) of a BertForPreTraining model."""
  tmp = tmp_path_factory.mktemp("pretraining")
  orig = _original_folder(tmp / "orig", "gelu", "BertForPreTraining")
  hfc.convert(orig, tmp / "hf", "huggingface")
  inputs, _ = _real_inputs(orig / "vocab.txt")
  return orig, tmp / "hf", inputs


def test_transformers_bert_model_and_pretraining_heads_match(pretraining_pair):
  """Last hidden state, pooled output and MLM/NSP logits of transformers' BertModel and
  BertForPreTraining on the converted folder equal bert_tf's on the original one, on real text.
  Mutation caught: the pooler kernel row with transposed=False (a square kernel, so only the
  values tell: pooled_output off by 0.79)."""
  orig, hf_dir, inputs = pretraining_pair
  encoder = BertEncoder.from_pretrained(orig)
  ours = encoder(inputs, training=False)
  theirs = transformers.BertModel.from_pretrained(hf_dir).eval()
  with torch.no_grad():
    out = theirs(**_torch_inputs(inputs))
  _close(ours["sequence_output"], out.last_hidden_state, "sequence_output", inputs["input_mask"])
  _close(ours["pooled_output"], out.pooler_output, "pooled_output")

  pretrainer = BertPretrainer.from_pretrained(orig)
  positions = np.tile(np.arange(SEQ_LENGTH, dtype=np.int32), (len(inputs["input_ids"]), 1))
  ours = pretrainer(dict(inputs, masked_lm_positions=positions), training=False)
  theirs, info = transformers.BertForPreTraining.from_pretrained(hf_dir, output_loading_info=True)
  assert not info["missing_keys"] and not info["unexpected_keys"], info
  with torch.no_grad():
    out = theirs.eval()(**_torch_inputs(inputs))
  _close(ours["mlm_logits"], out.prediction_logits, "mlm_logits", inputs["input_mask"])
  _close(ours["nsp_logits"], out.seq_relationship_logits, "nsp_logits")
  # The decoder is tied to the word embeddings in transformers too.
  assert theirs.cls.predictions.decoder.weight is theirs.bert.embeddings.word_embeddings.weight


@pytest.mark.parametrize("hidden_act,hf_act", [("gelu", "gelu_new"), ("gelu_exact", "gelu")])
def test_activation_forms_are_told_apart(tmp_path, hidden_act, hf_act):
  """Our "gelu" (tanh form) is transformers' "gelu_new", our "gelu_exact" its "gelu" (erf): each
  pair agrees within 1e-5 and the crossed pair does not (> 1e-4 on these weights), so the check
  can fail. Mutation caught: ACTIVATIONS_TO_HF["gelu"] = "gelu" (by the config.json check; the
  crossed-pair check shows transformers would then compute another function)."""
  orig = _original_folder(tmp_path / "orig", hidden_act, "BertModel")
  hfc.convert(orig, tmp_path / "hf", "huggingface")
  assert json.loads((tmp_path / "hf" / "config.json").read_text())["hidden_act"] == hf_act
  inputs, _ = _real_inputs(orig / "vocab.txt")
  ours = BertEncoder.from_pretrained(orig)(inputs, training=False)["sequence_output"]
  theirs = transformers.BertModel.from_pretrained(tmp_path / "hf").eval()
  with torch.no_grad():
    out = theirs(**_torch_inputs(inputs)).last_hidden_state
  _close(ours, out, f"sequence_output ({hidden_act} vs {hf_act})", inputs["input_mask"])
  crossed = transformers.BertModel.from_pretrained(
      tmp_path / "hf", hidden_act="gelu" if hf_act == "gelu_new" else "gelu_new").eval()
  with torch.no_grad():
    out = crossed(**_torch_inputs(inputs)).last_hidden_state
  mask = inputs["input_mask"].astype(bool)
  assert np.abs(np.asarray(ours)[mask] - out.numpy()[mask]).max() > 1e-4


TASKS = [
    ("BertForSequenceClassification", lambda c: BertClassifier(c, NUM_LABELS), ("logits",)),
    ("BertForTokenClassification", lambda c: BertTokenTagger(c, NUM_TAGS), ("logits",)),
    ("BertForQuestionAnswering", BertSpanLabeler, ("start_logits", "end_logits")),
]


@pytest.mark.parametrize("architecture,make,keys", TASKS, ids=[t[0] for t in TASKS])
def test_task_heads_match_transformers(tmp_path, architecture, make, keys):
  """bert_tf's fine-tuning models on an original folder (run_classifier's output_weights,
  run_ner's, run_squad's cls/squad/) and transformers' task models on its conversion give the
  same logits on real text. Mutation caught: SQUAD_HEAD's weight row with transposed=True
  (transformers refuses the [32, 2] qa_outputs.weight)."""
  orig = _original_folder(tmp_path / "orig", "gelu", architecture)
  hfc.convert(orig, tmp_path / "hf", "huggingface")
  inputs, _ = _real_inputs(orig / "vocab.txt")
  ours = from_pretrained(make, orig)(inputs, training=False)
  theirs = getattr(transformers, architecture).from_pretrained(tmp_path / "hf").eval()
  with torch.no_grad():
    out = theirs(**_torch_inputs(inputs))
  for key in keys:
    _close(ours[key], getattr(out, key), key,
           None if architecture == "BertForSequenceClassification" else inputs["input_mask"])


def test_a_folder_transformers_5_saved_whole_needs_no_vocab_txt(tmp_path):
  """transformers 5 saves a tokenizer as tokenizer.json and tokenizer_config.json, no vocab.txt.
  Such a folder loads: the WordPiece vocabulary comes from tokenizer.json (in id order: the
  vocab.txt it was built from, byte for byte, once converted), FullTokenizer.from_pretrained
  gives transformers' pieces, and the encoder's outputs are transformers'. Mutation caught:
  model_vocab_file returning the absent vocab.txt (detect_format and from_pretrained fail)."""
  folder = tmp_path / "hf"
  theirs = _transformers_folder(folder, "BertModel", "gelu_new")
  (folder / "vocab.txt").unlink()   # what transformers 5 alone leaves
  assert not (folder / "vocab.txt").exists() and (folder / "tokenizer.json").exists()
  vocab = shared_path("vocab/uncased_vocab.txt")
  tokenizer = FullTokenizer.from_pretrained(folder)
  assert tokenizer.do_lower_case is True
  _, pairs = _real_inputs(vocab, num_pairs=5)
  reference = transformers.BertTokenizer(vocab=str(vocab), do_lower_case=True)
  for text in [t for pair in pairs for t in pair]:
    assert tokenizer.tokenize(text) == reference.tokenize(text)
  inputs, _ = _real_inputs(vocab)
  ours = BertEncoder.from_pretrained(folder)(inputs, training=False)
  with torch.no_grad():
    out = theirs(**_torch_inputs(inputs))
  _close(ours["sequence_output"], out.last_hidden_state, "sequence_output", inputs["input_mask"])
  hfc.convert(folder, tmp_path / "orig", "original")
  assert (tmp_path / "orig" / "vocab.txt").read_bytes() == vocab.read_bytes()


def _transformers_folder(folder, architecture, hf_act, seed=0):
  """A model made by transformers (random init, every parameter then moved off its init so that
  biases and LayerNorms are not 0 / 1) and save_pretrained; the tokenizer files as a Hub BERT
  repository has them (vocab.txt, tokenizer_config.json)."""
  torch.manual_seed(seed)
  config = transformers.BertConfig(
      vocab_size=CONFIG["vocab_size"], hidden_size=H, num_hidden_layers=2, num_attention_heads=4,
      intermediate_size=I, hidden_act=hf_act, max_position_embeddings=CONFIG["max_position_embeddings"],
      num_labels={"BertForTokenClassification": NUM_TAGS,
                  "BertForQuestionAnswering": 2}.get(architecture, NUM_LABELS))
  model = getattr(transformers, architecture)(config).eval()
  with torch.no_grad():
    for name, p in model.named_parameters():
      p.add_(torch.randn_like(p) * (0.5 if "intermediate.dense.weight" in name else 0.05))
  model.save_pretrained(folder, safe_serialization=True)
  vocab = shared_path("vocab/uncased_vocab.txt")
  shutil.copy(vocab, folder / "vocab.txt")
  transformers.BertTokenizer(vocab=str(vocab), do_lower_case=True).save_pretrained(folder)
  return model


def test_transformers_tokenizer_agrees_with_ours():
  """transformers' BertTokenizer splits the MRPC sentences into the word pieces FullTokenizer
  gives, so the real inputs above are what a transformers user would feed. Mutation caught:
  FullTokenizer with do_lower_case=False (cased pieces, many [UNK])."""
  vocab = shared_path("vocab/uncased_vocab.txt")
  _, pairs = _real_inputs(vocab, num_pairs=20)
  ours = FullTokenizer(vocab, do_lower_case=True)
  theirs = transformers.BertTokenizer(vocab=str(vocab), do_lower_case=True)
  for a, b in pairs:
    for text in (a, b):
      assert theirs.tokenize(text) == ours.tokenize(text), text


REVERSE = [("BertModel", "gelu_new"), ("BertModel", "gelu"), ("BertForPreTraining", "gelu_new"),
           ("BertForSequenceClassification", "gelu"), ("BertForTokenClassification", "gelu_new"),
           ("BertForQuestionAnswering", "gelu")]


@pytest.mark.parametrize("architecture,hf_act", REVERSE, ids=[f"{a}-{h}" for a, h in REVERSE])
def test_a_transformers_model_loads_into_bert_tf(tmp_path, architecture, hf_act):
  """A model transformers saved loads into bert_tf (from_pretrained on the Hugging Face folder)
  with its outputs within 1e-5, for both GELU forms. transformers' question-answering and
  token-classification models have no pooler: they load with the pooler left at its initial
  values (a warning), and so does their conversion to an original checkpoint. Mutation caught:
  load_variables without the pooler exception (CheckpointMismatchError: lacks bert/pooler/...)."""
  folder = tmp_path / "hf"
  theirs = _transformers_folder(folder, architecture, hf_act)
  inputs, _ = _real_inputs(folder / "vocab.txt")
  with torch.no_grad():
    out = theirs(**_torch_inputs(inputs))
  mask = inputs["input_mask"]
  has_pooler = architecture not in ("BertForQuestionAnswering", "BertForTokenClassification")
  assert has_pooler == any("pooler" in k for k in theirs.state_dict())
  model = hfc.read_huggingface(folder)
  assert model.do_lower_case is True and model.architecture == architecture

  if architecture in ("BertModel", "BertForPreTraining"):
    encoder = BertEncoder.from_pretrained(folder)
    ours = encoder(inputs, training=False)
    hidden = out if architecture == "BertModel" else theirs.bert(**_torch_inputs(inputs))
    _close(ours["sequence_output"], hidden.last_hidden_state, "sequence_output", mask)
    _close(ours["pooled_output"], hidden.pooler_output, "pooled_output")
  if architecture == "BertForPreTraining":
    positions = np.tile(np.arange(SEQ_LENGTH, dtype=np.int32), (len(mask), 1))
    ours = BertPretrainer.from_pretrained(folder)(dict(inputs, masked_lm_positions=positions),
                                                   training=False)
    _close(ours["mlm_logits"], out.prediction_logits, "mlm_logits", mask)
    _close(ours["nsp_logits"], out.seq_relationship_logits, "nsp_logits")
  task = {t[0]: t for t in TASKS}.get(architecture)
  if task:
    _, make, keys = task
    for source in (folder, tmp_path / "orig"):
      if source != folder:
        hfc.convert(folder, source, "original")
      ours = from_pretrained(make, source)(inputs, training=False)
      for key in keys:
        _close(ours[key], getattr(out, key), f"{key} from {source.name}",
               None if architecture == "BertForSequenceClassification" else mask)
  if not has_pooler:
    encoder = BertEncoder.from_pretrained(folder)   # no complaint: the pooler keeps its init
    hidden = theirs.bert(**_torch_inputs(inputs))
    _close(encoder(inputs, training=False)["sequence_output"], hidden.last_hidden_state,
           "sequence_output", mask)
