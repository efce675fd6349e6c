"""Raw-text SavedModels on real data: NER (CLUENER2020 per character, CoNLL-2003 text per word,
with and without the CRF, texts longer than a window), feature extraction and the classifier
(ChnSentiCorp single texts, LCQMC pairs). Each is called from a fresh process with TensorFlow and
tensorflow-text only (tests/serving_client.py) and compared with the Python path: run_ner's
convert_examples / decode / word_tags / entities, feature_extraction.extract, and run_classifier's
convert_examples + the Keras model. Tiny random models with large initial weights (outputs
differ from text to text)."""
import json

import numpy as np
import pytest
import tensorflow as tf

from conftest import TINY_CHINESE, TINY_CONFIG, shared_path
from serving_checks import (saved_model_cli_show, serve_in_fresh_process,
                            signature_inputs_and_outputs)

NER_OUTPUTS = {"entity_type", "entity_text", "start_char", "end_char", "num_entities"}


def _config(base, **changes):
  """A tiny config with large initial weights; the next model's weights seeded (repeatable)."""
  import keras
  from bert_tf import BertConfig
  keras.utils.set_random_seed(0)
  return BertConfig(**dict(base, **dict(dict(initializer_range=1.0), **changes)))


def python_entities(model, tokenizer, texts, max_seq_length, labels, use_crf, per_character):
  """run_ner's Python path on raw texts: (type, start_char, end_char, text) per entity, and the
  number of windows per text."""
  from finetuning import ner_features as nf
  from finetuning.ner_serving import split_words
  from finetuning.tasks import ner
  words = [split_words(text, per_character) for text in texts]
  examples = [ner.NerExample(str(i), [w for w, _, _ in ws], where="raw:0")
              for i, ws in enumerate(words)]
  features = nf.convert_examples(examples, tokenizer, max_seq_length, labels)
  arrays = {k: np.stack([f.arrays[k] for f in features]) for k in nf.FEATURE_NAMES}
  outputs = model({k: arrays[k] for k in ("input_ids", "input_mask", "segment_ids")},
                  training=False)
  predictions = nf.decode(outputs["logits"].numpy(),
                          outputs["transitions"].numpy() if use_crf else None,
                          arrays["label_mask"], use_crf)
  tags = nf.word_tags(examples, features, predictions, labels)
  found = [[(kind, ws[start][1], ws[end][2], text[ws[start][1]:ws[end][2]])
            for kind, start, end in ner.entities(row_tags)]
           for text, ws, row_tags in zip(texts, words, tags)]
  windows = np.bincount([f.example_index for f in features], minlength=len(texts))
  return found, windows


def served_entities(outputs):
  return [[(outputs["entity_type"][i][j], outputs["start_char"][i][j], outputs["end_char"][i][j],
            outputs["entity_text"][i][j]) for j in range(n)]
          for i, n in enumerate(outputs["num_entities"])]


def _tagger(config, labels, use_crf, seq_length, favoured):
  """A random BertTokenTagger whose output bias favours some labels (`favoured`: label -> bias) (so entities run over
  several words and the I- continuation is exercised), with random CRF transitions."""
  from finetuning.models import BertTokenTagger
  model = BertTokenTagger(config, len(labels), use_crf=use_crf, seq_length=seq_length)
  kernel, bias = model.get_layer("tagger").weights
  kernel.assign(kernel * 0.1)
  bias.assign([favoured.get(label, 0.0) for label in labels])
  if use_crf:
    transitions = model.get_layer("crf").transitions
    transitions.assign(tf.random.stateless_normal(transitions.shape, [3, 4]) * 2.0)
  return model


@pytest.mark.slow
@pytest.mark.parametrize("use_crf", [False, True])
def test_ner_export_cluener_matches_python_path(tmp_path, use_crf):
  """CLUENER2020 dev texts (real), per character, max_seq_length 24 so most texts take several
  windows: the SavedModel served from a fresh process gives exactly the Python path's entities
  (type, character offsets, text == text[start:end]); with the CRF too (Viterbi in graph).
  Mutations caught: the window budget max_seq_length - 1 (entities differ); the CRF's rank
  within a window counted from the text's first word; I- continuing an entity of another type;
  end_char inclusive."""
  from bert_tf import FastTokenizer, FullTokenizer
  from finetuning.ner_serving import export_ner
  from finetuning.tasks import ner
  vocab = str(shared_path("vocab/chinese_vocab.txt"))
  task = ner.get_task("cluener")
  lines = shared_path("cluener2020/dev.json").read_text(encoding="utf-8").splitlines()
  texts = [json.loads(line)["text"] for line in lines[:16]] + ["", "  "]
  model = _tagger(_config(TINY_CHINESE), task.labels, use_crf, 24,
                  {"I-name": 2.0, "B-name": 1.0, "O": 1.0, "I-company": 0.5})
  expected, windows = python_entities(model, FullTokenizer(vocab), texts, 24, task.labels,
                                      use_crf, per_character=True)
  assert max(windows) >= 3 and sum(len(e) for e in expected) >= 20
  assert any(end - start > 1 for row in expected for _, start, end, _ in row)
  export = export_ner(tmp_path / "saved", model, FastTokenizer(vocab), 24, task, use_crf)
  outputs = serve_in_fresh_process(export, {"text": texts})
  assert served_entities(outputs) == expected
  assert outputs["num_entities"][-2] == 0       # the empty text
  for i, n in enumerate(outputs["num_entities"]):  # padding beyond num_entities
    assert {*outputs["entity_type"][i][n:], *outputs["entity_text"][i][n:]} <= {""}
    assert {*outputs["start_char"][i][n:], *outputs["end_char"][i][n:]} <= {-1}
  inputs, names = signature_inputs_and_outputs(saved_model_cli_show(export))
  assert inputs == {"text"} and names == NER_OUTPUTS
  description = json.loads((tmp_path / "saved" / "task.json").read_text(encoding="utf-8"))
  assert description["labels"] == list(task.labels) and description["use_crf"] == use_crf


def test_ner_export_english_words_matches_python_path(tmp_path):
  """CoNLL-2003 dev sentences (real words joined by spaces, plus two raw sentences with
  punctuation, capitals and an accent) with the uncased vocabulary, per word: the SavedModel
  gives the Python path's entities; a text takes several windows. Mutations caught: the graph's
  word split keeping punctuation attached to the word before it; a word without pieces given
  none instead of [UNK]."""
  from bert_tf import FastTokenizer, FullTokenizer
  from finetuning.ner_serving import NerServer
  from finetuning.tasks import ner
  vocab = str(shared_path("vocab/uncased_vocab.txt"))
  task = ner.get_task("conll2003")
  sentences = ner.read_token_lines(str(shared_path("conll2003/valid.txt")), "dev")[:10]
  texts = [" ".join(s.words) for s in sentences] + [
      "Mr. O'Neil (of Zürich) met J.R.R. Tolkien's editor, in \u200b New  York\u3000yesterday!",
      "U.N. official Ekeus heads for Baghdad."]
  model = _tagger(_config(TINY_CONFIG, vocab_size=30522), task.labels, False, 16,
                  {"I-PER": 2.0, "B-PER": 1.0, "O": 1.0, "I-ORG": 0.5})
  expected, windows = python_entities(model, FullTokenizer(vocab), texts, 16, task.labels,
                                      False, per_character=False)
  assert max(windows) >= 2 and any(end - start > 3 for row in expected for _, start, end, _ in row)
  served = NerServer(model, FastTokenizer(vocab), 16, task.labels, False, False).serve(
      tf.constant(texts))
  served = {k: v.numpy().tolist() for k, v in served.items()}
  served = {k: [[x.decode() for x in row] for row in v] if k in ("entity_type", "entity_text")
            else v for k, v in served.items()}
  assert served_entities(served) == expected  # in process: the export is checked on CLUENER


@pytest.mark.parametrize("use_crf", [False, True])
def test_ner_server_batches_without_words(small_vocab, use_crf):
  """Empty texts, texts of whitespace only and an empty batch give no entities (outputs
  [batch, 0]; num_entities 0) instead of an error. Mutation caught: no padding step before the
  windows' tf.scan ("Tried to stack elements of an empty list")."""
  from bert_tf import FastTokenizer
  from finetuning.models import BertTokenTagger
  from finetuning.ner_serving import NerServer
  from finetuning.tasks import ner
  labels = ner.get_task("conll2003").labels
  model = BertTokenTagger(_config(TINY_CONFIG), len(labels), use_crf=use_crf, seq_length=8)
  server = NerServer(model, FastTokenizer(str(small_vocab)), 8, labels, False, use_crf)
  for texts in (["", " \t "], []):
    outputs = server.serve(tf.constant(texts, tf.string))
    assert outputs["num_entities"].numpy().tolist() == [0] * len(texts)
    assert outputs["entity_text"].shape == (len(texts), 0)
    assert outputs["start_char"].dtype == tf.int32


def test_ner_export_refuses_tags_it_cannot_read():
  """BIOES-style tags (a bio task given --labels) raise NotBioError, which run_ner turns into a
  warning, instead of an export that would read them as something else. Mutation caught:
  check_bio accepting any prefix."""
  from finetuning.ner_serving import NerServer, NotBioError, check_bio
  check_bio(("O", "B-PER", "I-PER"))
  with pytest.raises(NotBioError, match="S-PER"):
    NerServer(None, None, 8, ("O", "B-PER", "I-PER", "S-PER", "E-PER"), False, False)


def test_split_words_by_hand():
  """split_words: whitespace drops, punctuation and CJK characters stand alone, offsets are str
  positions. Mutation caught: CJK characters kept inside the word before them."""
  from finetuning.ner_serving import split_words
  assert split_words("Hi, 北京x  y\u3000z!", False) == [
      ("Hi", 0, 2), (",", 2, 3), ("北", 4, 5), ("京", 5, 6), ("x", 6, 7), ("y", 9, 10),
      ("z", 11, 12), ("!", 12, 13)]
  assert split_words("a b", True) == [("a", 0, 1), (" ", 1, 2), ("b", 2, 3)]


@pytest.mark.slow
def test_feature_extractor_export_matches_encoder(tmp_path):
  """Real ChnSentiCorp texts (serving_default) and LCQMC pairs (`pair`): pooled_output and
  mean_pooled from a fresh process equal feature_extraction.extract's (the encoder called in
  Python) within 1e-5 relative. Mutations caught: the mean taken over all positions (padding
  included); text_a and text_b swapped in the pair signature."""
  from bert_tf import BertEncoder, FastTokenizer
  from finetuning.feature_extraction import extract
  from finetuning.serving import export_feature_extractor
  from finetuning.tasks import classification
  vocab = str(shared_path("vocab/chinese_vocab.txt"))
  tokenizer = FastTokenizer(vocab)
  encoder = BertEncoder(_config(TINY_CHINESE, initializer_range=0.2))
  singles = [e.text_a for e in classification.get_task("chnsenticorp").read_examples(
      str(shared_path("chnsenticorp/dev.tsv").parent), "dev")[:6]]
  pairs = [(e.text_a, e.text_b) for e in classification.get_task("lcqmc").read_examples(
      str(shared_path("lcqmc/dev.txt").parent), "dev")[:6]]
  export = export_feature_extractor(tmp_path / "saved", encoder, tokenizer, 48)
  for signature, inputs, rows in (
      ("serving_default", {"text_a": singles}, [(a, None) for a in singles]),
      ("pair", {"text_a": [a for a, _ in pairs], "text_b": [b for _, b in pairs]}, pairs)):
    expected = list(extract(encoder, tokenizer, rows, [-1], 48, len(rows)))
    outputs = serve_in_fresh_process(export, inputs, signature)
    for name, column in (("pooled_output", 2), ("mean_pooled", 3)):
      want = np.stack([row[column] for row in expected])
      np.testing.assert_allclose(outputs[name], want, rtol=1e-5, atol=1e-5)
    assert np.abs(np.diff(np.array(outputs["mean_pooled"]), axis=0)).max() > 1e-2
  text = saved_model_cli_show(export)
  assert signature_inputs_and_outputs(text) == ({"text_a"}, {"pooled_output", "mean_pooled"})
  assert signature_inputs_and_outputs(text, "pair") == ({"text_a", "text_b"},
                                                         {"pooled_output", "mean_pooled"})


@pytest.mark.slow
@pytest.mark.parametrize("task_name,folder", [("chnsenticorp", "chnsenticorp/dev.tsv"),
                                              ("lcqmc", "lcqmc/dev.txt")])
def test_classifier_export_real_data(tmp_path, task_name, folder):
  """Real ChnSentiCorp texts (long: truncated) and LCQMC pairs through a tiny classifier's
  raw-text export in a fresh process: logits equal run_classifier's Python path
  (classifier_features.convert_examples, then the Keras model) within 1e-5, labels equal.
  Mutation caught (ChnSentiCorp case): the export's max_seq_length one less than the Python
  path's."""
  from bert_tf import FastTokenizer
  from finetuning import classifier_features as cf
  from finetuning.models import BertClassifier
  from finetuning.serving import export_classifier
  from finetuning.tasks import classification
  tokenizer = FastTokenizer(str(shared_path("vocab/chinese_vocab.txt")))
  task = classification.get_task(task_name)
  examples = task.read_examples(str(shared_path(folder).parent), "dev")[:8]
  model = BertClassifier(_config(TINY_CHINESE, initializer_range=0.5), 2, seq_length=64)
  features = cf.convert_examples(task, examples, tokenizer, 64)
  logits = model({k: features[k] for k in cf.FEATURE_NAMES}, training=False)["logits"].numpy()
  assert np.ptp(logits[:, 0]) > 1e-2
  export = export_classifier(tmp_path / "saved", model, tokenizer, 64, task)
  inputs = {"text_a": [e.text_a for e in examples]}
  if task.is_pair:
    inputs["text_b"] = [e.text_b for e in examples]
  outputs = serve_in_fresh_process(export, inputs)
  np.testing.assert_allclose(outputs["logits"], logits, rtol=1e-5, atol=1e-5 * np.abs(logits).max())
  assert outputs["label"] == [task.labels[i] for i in logits.argmax(-1)]
