"""NER: the CRF against enumerating every path, the entity metric against seqeval, labels
through features and back on real CoNLL-2003 and CLUENER2020 files, run_ner end to end on real
files (formats) and on a synthetic BIO task (learning, with and without the CRF)."""
import itertools
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from bert_tf.training import read_results_file
from conftest import ROOT, TINY_CONFIG, shared_path
from bert_tf.tokenization import FullTokenizer
from finetuning import crf, ner_features as nf, ner_metrics
from finetuning.tasks import ner
from synthetic_tasks import write_bio, write_model


def _path_score(potentials, transitions, path):
  return sum(potentials[t, tag] for t, tag in enumerate(path)) + sum(
      transitions[a, b] for a, b in zip(path[:-1], path[1:]))


@pytest.mark.parametrize("seed", range(4))
def test_crf_equals_enumerating_every_path(seed):
  rng = np.random.default_rng(seed)
  batch, time, tags = 3, 4, 3
  potentials = rng.normal(size=(batch, time, tags)).astype(np.float32)
  transitions = rng.normal(size=(tags, tags)).astype(np.float32)
  lengths = np.array([4, 2, 1])
  gold = rng.integers(0, tags, size=(batch, time))
  likelihood = crf.crf_log_likelihood(potentials, gold, lengths, transitions).numpy()
  decoded = crf.crf_decode(potentials, lengths, transitions).numpy()
  for b, length in enumerate(lengths):
    paths = list(itertools.product(range(tags), repeat=int(length)))
    scores = np.array([_path_score(potentials[b], transitions, p) for p in paths])
    log_z = np.log(np.exp(scores - scores.max()).sum()) + scores.max()
    expected = _path_score(potentials[b], transitions, tuple(gold[b, :length])) - log_z
    assert likelihood[b] == pytest.approx(expected, abs=1e-4)
    assert tuple(decoded[b, :length]) == paths[int(np.argmax(scores))]
    assert not decoded[b, length:].any()


def test_crf_decode_by_hand():
  # Transitions forbid 0 -> 1; unaries alone would say 0, 1, 1.
  potentials = np.array([[[2.0, 0.0], [0.0, 1.0], [0.0, 1.0]]], np.float32)
  transitions = np.array([[0.0, -10.0], [0.0, 0.0]], np.float32)
  assert crf.crf_decode(potentials, [3], transitions).numpy().tolist() == [[0, 0, 0]]
  assert crf.crf_decode(potentials, [3], np.zeros((2, 2), np.float32)).numpy().tolist() == [[0, 1, 1]]


@pytest.mark.parametrize("seed", range(5))
def test_entity_scores_equal_seqeval(seed):
  from seqeval import metrics as seqeval_metrics
  rng = np.random.default_rng(seed)
  tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG"]
  gold = [list(rng.choice(tags, size=rng.integers(1, 15))) for _ in range(60)]
  predicted = [[t if rng.random() < 0.7 else str(rng.choice(tags)) for t in seq] for seq in gold]
  ours = ner_metrics.entity_scores(gold, predicted)
  assert ours["precision"] == pytest.approx(seqeval_metrics.precision_score(gold, predicted))
  assert ours["recall"] == pytest.approx(seqeval_metrics.recall_score(gold, predicted))
  assert ours["f1"] == pytest.approx(seqeval_metrics.f1_score(gold, predicted))
  report = seqeval_metrics.classification_report(gold, predicted, output_dict=True)
  for kind in ("PER", "LOC", "ORG"):
    if kind in report:
      assert ours[f"{kind}_f1"] == pytest.approx(report[kind]["f1-score"])
      assert ours[f"{kind}_support"] == report[kind]["support"]


def test_iob1_converts_to_the_bio_copy():
  iob1 = ner.read_token_lines(str(shared_path("conll2003/eng.testa")), "dev")
  bio = ner.read_token_lines(str(shared_path("conll2003/valid.txt")), "dev")
  assert len(iob1) == len(bio) > 3000
  assert [e.words for e in iob1] == [e.words for e in bio]
  assert [e.tags for e in iob1] == [e.tags for e in bio]


@pytest.mark.slow
@pytest.mark.parametrize("task_name,folder,split,vocab,max_seq_length", [
    ("conll2003", "conll2003", "dev", "uncased", 128), ("conll2003", "conll2003", "dev", "uncased", 16),
    ("cluener", "cluener2020", "dev", "chinese", 128), ("cluener", "cluener2020", "dev", "chinese", 24)])
def test_labels_survive_features_and_back(task_name, folder, split, vocab, max_seq_length):
  """Gold tags -> label ids on first pieces -> back to words: the gold entities exactly, also
  when short windows cut sentences."""
  task = ner.get_task(task_name)
  examples = task.read_examples(str(shared_path(folder)), split)
  tokenizer = FullTokenizer(str(shared_path(f"vocab/{vocab}_vocab.txt")))
  features = nf.convert_examples(examples, tokenizer, max_seq_length, task.labels)
  recovered = nf.word_tags(examples, features, [f.arrays["label_ids"] for f in features], task.labels)
  assert [ner.entities(t) for t in recovered] == [ner.entities(e.tags) for e in examples]
  assert sum(len(e.words) for e in examples) == sum(len(f.word_positions) for f in features)
  if max_seq_length < 30:
    assert len(features) > len(examples)        # long sentences became several windows
  if task_name == "cluener":                    # spans round trip to the CLUENER dict
    rows = [json.loads(line) for line in
            shared_path(f"{folder}/{split}.json").read_text(encoding="utf-8").splitlines()]

    def normal(label):
      return {k: {e: sorted(p) for e, p in v.items()} for k, v in label.items()}
    for example, row in zip(examples, rows):
      assert normal(ner.spans_of(example, example.tags)) == normal(row["label"])


def _subset_conll(source, target, sentences):
  blocks = [b for b in source.read_text(encoding="utf-8").split("\n\n") if b.strip()]
  target.write_text("\n\n".join(blocks[:sentences]) + "\n", encoding="utf-8")


@pytest.mark.slow
def _served_entities_match_predictions(out, gold):
  """Asserts that run_ner's raw-text SavedModel (out/saved_model, from a fresh process) finds, on
  the dev sentences (words joined by spaces) whose words its split reproduces, the entities of
  out/eval_predictions.txt (the Python path). Returns (number of sentences compared, entities)."""
  from finetuning.ner_serving import split_words
  from serving_checks import serve_in_fresh_process
  blocks = [b for b in (out / "eval_predictions.txt").read_text().split("\n\n") if b.strip()]
  texts = [" ".join(e.words) for e in gold]
  same = [i for i, text in enumerate(texts)
          if [w for w, _, _ in split_words(text, False)] == gold[i].words]
  served = serve_in_fresh_process(out / "saved_model", {"text": [texts[i] for i in same]})
  for k, i in enumerate(same):
    words = split_words(texts[i], False)
    predicted = [line.split(" ")[2] for line in blocks[i].splitlines()]
    expected = [[kind, words[a][1], words[b][2], texts[i][words[a][1]:words[b][2]]]
                for kind, a, b in ner.entities(predicted)]
    assert [[served[name][k][j] for name in ("entity_type", "start_char", "end_char",
                                             "entity_text")]
            for j in range(served["num_entities"][k])] == expected, texts[i]
  return len(same), sum(served["num_entities"])


def test_run_ner_conll_end_to_end(tmp_path):
  data = tmp_path / "data"
  data.mkdir()
  for name, count in (("train.txt", 400), ("valid.txt", 100), ("test.txt", 50)):
    _subset_conll(shared_path(f"conll2003/{name}"), data / name, count)
  model = tmp_path / "model"
  model.mkdir()
  shutil.copy(shared_path("vocab/uncased_vocab.txt"), model / "vocab.txt")
  (model / "bert_config.json").write_text(json.dumps(dict(TINY_CONFIG, vocab_size=30522,
                                                          max_position_embeddings=64)))
  out = tmp_path / "out"
  result = subprocess.run([sys.executable, "-m", "finetuning.run_ner", "--task_name=conll2003",
                           f"--data_dir={data}", f"--model_dir={model}", f"--output_dir={out}",
                           "--do_train", "--do_eval", "--do_predict", "--max_seq_length=48",
                           "--train_batch_size=16", "--num_train_epochs=3", "--learning_rate=2e-3",
                           "--iterations_per_loop=20"], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  results = read_results_file(out / "eval_results.txt")
  assert {"precision", "recall", "f1", "global_step"} <= set(results)   # learning: synthetic test
  gold = ner.read_token_lines(str(data / "valid.txt"), "dev")
  lines = (out / "eval_predictions.txt").read_text().split("\n\n")
  assert len([b for b in lines if b.strip()]) == len(gold)
  first = [line.split(" ") for line in lines[0].splitlines()]
  assert [w for w, _, _ in first] == gold[0].words and [g for _, g, _ in first] == gold[0].tags
  assert all(p in ner.Conll2003.labels for _, _, p in first)
  assert (out / "test_predictions.txt").exists() and (out / "export" / "bert_model.ckpt.index").exists()
  # The program's raw-text SavedModel agrees with eval_predictions.txt on the 41 of 94 sentences
  # without "U.S.", "1,000" and such. This tiny model predicts no entity yet: the entity-level
  # comparisons are the synthetic task's (below) and test_serving's.
  assert _served_entities_match_predictions(out, gold)[0] >= 30


@pytest.mark.slow
def test_run_ner_cluener_with_crf(tmp_path, tiny_chinese_model):
  data = tmp_path / "data"
  data.mkdir()
  for split, count in (("train", 300), ("dev", 60), ("test", 40)):
    rows = shared_path(f"cluener2020/{split}.json").read_text(encoding="utf-8").splitlines()[:count]
    (data / f"{split}.json").write_text("\n".join(rows) + "\n", encoding="utf-8")
  out = tmp_path / "out"
  result = subprocess.run([sys.executable, "-m", "finetuning.run_ner", "--task_name=cluener",
                           "--use_crf", f"--data_dir={data}", f"--model_dir={tiny_chinese_model}",
                           f"--output_dir={out}", "--do_train", "--do_eval", "--do_predict",
                           "--max_seq_length=64", "--train_batch_size=16", "--num_train_epochs=2",
                           "--learning_rate=2e-3", "--iterations_per_loop=10"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  predictions = [json.loads(line) for line in
                 (out / "test_predictions.json").read_text(encoding="utf-8").splitlines()]
  inputs = [json.loads(line) for line in (data / "test.json").read_text(encoding="utf-8").splitlines()]
  assert [p["id"] for p in predictions] == [r["id"] for r in inputs]
  for prediction in predictions:
    for kind, spans in prediction["label"].items():
      assert kind in ner.Cluener.types
      for entity, positions in spans.items():
        for start, end in positions:
          assert prediction["text"][start:end + 1] == entity
  reader = tf.train.load_checkpoint(str(out / "export" / "bert_model.ckpt"))
  assert reader.get_variable_to_shape_map()["crf/transitions"] == [21, 21]
  # The raw-text SavedModel (CRF in graph), from a fresh process, finds the entities of
  # test_predictions.json (run_ner's Python path) on the same texts. (This tiny model predicts
  # none yet: entity-level equality is tests/finetuning/test_serving.py's.)
  from serving_checks import serve_in_fresh_process
  served = serve_in_fresh_process(out / "saved_model", {"text": [r["text"] for r in inputs]})
  for i, prediction in enumerate(predictions):
    label = {}
    for j in range(served["num_entities"][i]):
      start, end = served["start_char"][i][j], served["end_char"][i][j]
      assert prediction["text"][start:end] == served["entity_text"][i][j]
      label.setdefault(served["entity_type"][i][j], {}).setdefault(
          served["entity_text"][i][j], []).append([start, end - 1])
    assert label == prediction["label"], i
  assert json.loads((out / "saved_model" / "task.json").read_text())["use_crf"] is True


def test_crf_prediction_is_viterbi_over_words():
  """run_ner's decoding (ner_features.decode): with a CRF, the best path over the words' first
  pieces, not each token's argmax. Labels O, B-PER, I-PER; the transitions forbid O -> I-PER and
  the unaries alone say O, I-PER (an invalid sequence); pieces between words are skipped.
  Mutations caught: argmax whatever use_crf says; the CRF run over all tokens."""
  logits = np.zeros((1, 6, 3), np.float32)
  logits[0, 1] = [2.0, 1.5, -5.0]          # word 1: O slightly over B-PER
  logits[0, 2] = [0.0, 0.0, 9.0]           # a ## piece (masked out): would pull I-PER
  logits[0, 3] = [-5.0, -5.0, 3.0]         # word 2: I-PER
  label_mask = np.array([[0, 1, 0, 1, 0, 0]])
  transitions = np.zeros((1, 3, 3), np.float32)
  transitions[0, 0, 2] = -100.0            # O -> I-PER
  assert nf.decode(logits, None, label_mask, False)[0, [1, 3]].tolist() == [0, 2]
  crf_path = nf.decode(logits, transitions, label_mask, True)
  assert crf_path[0].tolist() == [0, 1, 0, 2, 0, 0]          # B-PER I-PER, in place
  transitions[0, 0, 2] = 0.0
  assert nf.decode(logits, transitions, label_mask, True)[0].tolist() == [0, 0, 0, 2, 0, 0]


@pytest.mark.slow
@pytest.mark.parametrize("use_crf", [False, True])
def test_run_ner_learns_a_synthetic_bio_task(tmp_path, use_crf):
  """A tiny BERT from scratch, one epoch over 300 sentences whose tags follow from the words
  (tests/finetuning/synthetic_tasks.py): entity F1 on 100 dev sentences above 0.9 (an untrained
  or wrongly decoded model stays far below). With the CRF, the learned transitions prefer
  B-X -> I-X to O -> I-X. Mutations caught: each word given the next word's tag in
  ner_features.convert_examples (F1 0.29); the transitions kept out of training
  (tf.stop_gradient in TaggingObjective: they stay 0)."""
  data = write_bio(tmp_path / "data", (300, 100, 20))
  model = write_model(tmp_path / "model", TINY_CONFIG)
  out = tmp_path / "out"
  result = subprocess.run([sys.executable, "-m", "finetuning.run_ner", "--task_name=bio",
                           f"--data_dir={data}", f"--model_dir={model}", f"--output_dir={out}",
                           "--do_train", "--do_eval", "--max_seq_length=24",
                           "--train_batch_size=16", "--num_train_epochs=1", "--learning_rate=5e-3",
                           "--iterations_per_loop=10", f"--use_crf={use_crf}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  results = read_results_file(out / "eval_results.txt")
  assert results["f1"] > 0.9, results
  # Its raw-text SavedModel (with the CRF: Viterbi in graph) finds the entities of
  # eval_predictions.txt on every dev sentence.
  compared, entities = _served_entities_match_predictions(
      out, ner.read_token_lines(str(data / "dev.txt"), "dev"))
  assert compared == 100 and entities > 100
  if use_crf:
    labels = json.loads((out / "labels.json").read_text())
    transitions = tf.train.load_checkpoint(str(out / "export" / "bert_model.ckpt")).get_tensor(
        "crf/transitions")
    for kind in ("PER", "LOC"):
      begin, inside, outside = (labels.index(t) for t in (f"B-{kind}", f"I-{kind}", "O"))
      assert transitions[begin, inside] - transitions[outside, inside] > 0.1, transitions
