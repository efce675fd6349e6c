"""The raw-text reading-comprehension SavedModel (finetuning/squad_serving.py) against the Python
path of run_squad (squad_features -> model -> squad_postprocess) on real CMRC 2018 and SQuAD
questions, served from a fresh process that imports only TensorFlow and tensorflow-text."""
import json

import numpy as np
import pytest

from conftest import TINY_CONFIG, shared_path
from test_run_squad import subset


def python_path(model, vocab, data_file, settings, do_lower_case=True):
  """(examples, predictions, nbest) of run_squad's prediction on `data_file`."""
  from bert_tf import FullTokenizer
  from finetuning import squad_features as sf, squad_postprocess
  from finetuning.tasks.squad import read_squad_examples
  examples, _ = read_squad_examples(str(data_file), False, settings.version_2_with_negative,
                                    settings.split_cjk_characters)
  features = list(sf.convert_examples_to_features(
      examples, FullTokenizer(str(vocab), do_lower_case=do_lower_case), settings.max_seq_length,
      settings.doc_stride, settings.max_query_length, False))
  inputs = {k: np.array([getattr(f, k) for f in features], np.int32)
            for k in ("input_ids", "input_mask", "segment_ids")}
  outputs = model(inputs, training=False)
  results = {f.unique_id: (outputs["start_logits"][i].numpy(), outputs["end_logits"][i].numpy())
             for i, f in enumerate(features)}
  predictions, nbest, null_odds = squad_postprocess.predict_answers(
      examples, features, results, settings.n_best_size, settings.max_answer_length,
      do_lower_case, settings.version_2_with_negative, settings.null_score_diff_threshold)
  return examples, features, predictions, nbest, null_odds


def contexts_and_questions(data_file):
  data = json.loads(data_file.read_text(encoding="utf-8"))
  rows = [(qa["id"], qa["question"], p["context"]) for a in data["data"]
          for p in a["paragraphs"] for qa in p["qas"]]
  return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def random_model(tmp_path, config, seq_length):
  import tensorflow as tf
  from bert_tf import BertConfig
  from finetuning.models import BertSpanLabeler
  tf.keras.utils.set_random_seed(3)
  # Large random weights: logits far apart, so no two candidate spans nearly tie.
  return BertSpanLabeler(BertConfig(**dict(config, initializer_range=1.0)),
                         seq_length=seq_length)


def export_and_serve(tmp_path, model, vocab, settings, questions, contexts, do_lower_case=True):
  from bert_tf import FastTokenizer
  from finetuning.squad_serving import export_reader
  from serving_checks import serve_in_fresh_process
  export = export_reader(tmp_path / "saved_model", model,
                         FastTokenizer(str(vocab), do_lower_case=do_lower_case), settings)
  return export, serve_in_fresh_process(export, {"question": questions, "context": contexts})


def windows_per_question(features):
  return np.bincount([f.example_index for f in features])


def check_same_answers(served, ids, contexts, predictions, nbest):
  """Served span == the Python path's best span for every question."""
  for i, qas_id in enumerate(ids):
    start, end = served["start_char"][i], served["end_char"][i]
    answer = served["answer"][i]
    assert contexts[i][start:end] == answer
    # get_final_text joins doc tokens with one space; the served answer keeps the context's.
    assert " ".join(answer.split()) == predictions[qas_id], (qas_id, answer, predictions[qas_id])
    best = nbest[qas_id][0]
    assert served["score"][i] == pytest.approx(best["start_logit"] + best["end_logit"],
                                               rel=1e-4, abs=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("data_file", ["cmrc2018/cmrc2018_dev.json", "drcd/DRCD_dev.json"])
def test_chinese_served_answers_equal_the_python_path(tmp_path, data_file):
  """40 real CMRC 2018 (simplified) and DRCD (traditional Chinese) dev questions, most contexts
  over several windows (max_seq_length 96, doc_stride 32): the served answer, its character
  offsets and score are the Python path's prediction, and saved_model_cli lists the documented
  signature. Mutations caught (tried in
  squad_serving.py): the max-context test dropped (is_max = in_doc); windows every
  doc_stride + 1 tokens."""
  from finetuning.squad_serving import ReaderSettings
  from serving_checks import saved_model_cli_show, signature_inputs_and_outputs
  vocab = shared_path("vocab/chinese_vocab.txt")
  data = subset(shared_path(data_file), tmp_path / "dev.json", 40)
  settings = ReaderSettings(max_seq_length=96, doc_stride=32, max_query_length=24)
  config = dict(TINY_CONFIG, vocab_size=21128, max_position_embeddings=96)
  model = random_model(tmp_path, config, settings.max_seq_length)
  _, features, predictions, nbest, _ = python_path(model, vocab, data, settings)
  ids, questions, contexts = contexts_and_questions(data)
  export, served = export_and_serve(tmp_path, model, vocab, settings, questions, contexts)
  check_same_answers(served, ids, contexts, predictions, nbest)
  windows = windows_per_question(features)
  assert len(windows) == 40 and (windows > 1).sum() >= 30, windows
  assert signature_inputs_and_outputs(saved_model_cli_show(export)) == (
      {"question", "context"}, {"answer", "start_char", "end_char", "score"})
  task = json.loads((tmp_path / "saved_model" / "task.json").read_text())
  assert task["inputs"] == ["question", "context"] and task["doc_stride"] == 32


@pytest.mark.slow
def test_squad_uncased_served_answers_equal_the_python_path(tmp_path):
  """40 real SQuAD v1.1 dev questions (ExpMRC subset) with Google's uncased vocabulary and the
  original's whitespace-only doc tokens (--nosplit_cjk_characters): the served answers are
  get_final_text's (lower-cased model, cased context; spans inside a doc token such as a word
  and its punctuation), offsets and scores as the Python path. Mutation caught: the piece
  offsets ignored (each span widened to whole doc tokens: answers keep their punctuation)."""
  from finetuning.squad_serving import ReaderSettings
  vocab = shared_path("vocab/uncased_vocab.txt")
  data = subset(shared_path("squad/expmrc-squad-dev.json"), tmp_path / "dev.json", 40)
  config = dict(TINY_CONFIG, vocab_size=30522, max_position_embeddings=96)
  settings = ReaderSettings(max_seq_length=96, doc_stride=32, max_query_length=24,
                            split_cjk_characters=False)
  model = random_model(tmp_path, config, settings.max_seq_length)
  _, features, predictions, nbest, _ = python_path(model, vocab, data, settings)
  ids, questions, contexts = contexts_and_questions(data)
  _, served = export_and_serve(tmp_path, model, vocab, settings, questions, contexts)
  check_same_answers(served, ids, contexts, predictions, nbest)
  assert (windows_per_question(features) > 1).sum() >= 30
  inside_a_word = [a for a, s, e, c in zip(served["answer"], served["start_char"],
                                           served["end_char"], contexts)
                   if c[s - 1:s].strip() or c[e:e + 1].strip()]
  assert len(inside_a_word) >= 3, inside_a_word


@pytest.mark.slow
def test_squad_v2_served_answers_and_null_equal_the_python_path(tmp_path):
  """Real SQuAD v1.1 dev questions (ExpMRC subset) with Google's uncased vocabulary, served by a
  SQuAD 2.0 export: the span as the Python path, and an empty answer exactly where
  predictions.json has one (null score - best span > threshold; the threshold is the median
  null_odds of the Python path, so both outcomes occur). no_answer_score - score is null_odds.
  Mutation caught: the null score the largest [CLS] score over windows instead of the smallest."""
  from finetuning.squad_serving import ReaderSettings
  vocab = shared_path("vocab/uncased_vocab.txt")
  data = subset(shared_path("squad/expmrc-squad-dev.json"), tmp_path / "dev.json", 30)
  config = dict(TINY_CONFIG, vocab_size=30522, max_position_embeddings=128)
  settings = ReaderSettings(max_seq_length=128, doc_stride=48, max_query_length=32,
                            version_2_with_negative=True)
  model = random_model(tmp_path, config, settings.max_seq_length)
  *_, null_odds = python_path(model, vocab, data, settings)
  settings.null_score_diff_threshold = float(np.median(list(null_odds.values())))
  _, features, predictions, nbest, null_odds = python_path(model, vocab, data, settings)
  ids, questions, contexts = contexts_and_questions(data)
  export, served = export_and_serve(tmp_path, model, vocab, settings, questions, contexts)
  empty = [predictions[i] == "" for i in ids]
  assert 0 < sum(empty) < len(ids)
  for i, qas_id in enumerate(ids):
    assert served["score"][i] - served["no_answer_score"][i] == pytest.approx(
        -null_odds[qas_id], rel=1e-4, abs=1e-3)
    if empty[i]:
      assert served["answer"][i] == "" and served["start_char"][i] == served["end_char"][i] == 0
  kept = [i for i, e in enumerate(empty) if not e]
  check_same_answers({k: [v[i] for i in kept] for k, v in served.items()},
                     [ids[i] for i in kept], [contexts[i] for i in kept], predictions, nbest)
  assert (windows_per_question(features) > 1).sum() >= 5
  from serving_checks import saved_model_cli_show, signature_inputs_and_outputs
  assert signature_inputs_and_outputs(saved_model_cli_show(export)) == (
      {"question", "context"}, {"answer", "start_char", "end_char", "score", "no_answer_score"})


def test_no_valid_span_empty_contexts_and_empty_batch():
  """Questions without a valid span (max_answer_length 0, where predictions.json says "empty"),
  among them empty and whitespace-only contexts, and an empty batch: empty answers, offsets 0,
  the lowest float32 as score, in SQuAD 1.1 and 2.0 exports. Mutation caught: `found` taken from
  the segment max of the scores (an all -inf segment's max is the lowest finite float64: the
  span of the padding pair was returned)."""
  import tensorflow as tf
  from bert_tf import FastTokenizer
  from finetuning.squad_serving import ReaderServer, ReaderSettings
  tokenizer = FastTokenizer(shared_path("vocab/uncased_vocab.txt"))
  model = random_model(None, dict(TINY_CONFIG, vocab_size=30522, max_position_embeddings=32), 32)
  lowest = np.finfo(np.float32).min
  for version_2 in (False, True):
    server = ReaderServer(model, tokenizer, ReaderSettings(
        max_seq_length=32, doc_stride=8, max_query_length=8, max_answer_length=0,
        version_2_with_negative=version_2))
    serve = server._serve  # pylint: disable=protected-access  (eagerly: no 10 s tracing)
    out = serve(tf.constant(["who?", "what", "", "x"]),
                tf.constant(["Some context here.", "a b c " * 20, "", " \u3000\n"]))
    assert out["answer"].numpy().tolist() == [b""] * 4
    assert out["start_char"].numpy().tolist() == out["end_char"].numpy().tolist() == [0] * 4
    assert out["score"].numpy().tolist() == [lowest] * 4
    assert serve(tf.constant([], tf.string), tf.constant([], tf.string))["answer"].shape == (0,)
