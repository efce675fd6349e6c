"""run_squad's data path against tf-models-official's squad_lib (the original run_squad code):
features, answer recovery on real SQuAD / CMRC 2018 / DRCD files, post-processing, and the
SQuAD v1.1 / v2.0 evaluations (the CMRC 2018 metric and the official scripts written out are in
test_squad_evaluation.py)."""
import collections
import json

import numpy as np
import pytest

from conftest import shared_path
from bert_tf.tokenization import FullTokenizer
from finetuning import squad_features as sf, squad_metrics, squad_postprocess
from finetuning.tasks.squad import read_squad_examples, split_context

FEATURE_FIELDS = ("unique_id", "example_index", "doc_span_index", "tokens", "token_to_orig_map",
                  "token_is_max_context", "input_ids", "input_mask", "segment_ids")


def first_answers_only(source, target, limit=None):
  """tf-models' reader wants exactly one answer per training question: keep the first."""
  data = json.loads(source.read_text(encoding="utf-8"))
  count = 0
  for article in data["data"]:
    for paragraph in article["paragraphs"]:
      if limit is not None and count >= limit:
        paragraph["qas"] = []
      for qa in paragraph["qas"]:
        qa["answers"] = qa["answers"][:1]
        count += 1
  target.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
  return target


def reference_features(path, vocab, is_training, max_seq_length, doc_stride, max_query_length):
  from official.nlp.data import squad_lib
  from official.nlp.tools import tokenization
  tokenizer = tokenization.FullTokenizer(str(vocab), do_lower_case=True)
  tokenizer.wordpiece_tokenizer.max_input_chars_per_word = 200
  examples = squad_lib.read_squad_examples(str(path), is_training, False)
  features = []
  squad_lib.convert_examples_to_features(
      examples, tokenizer, max_seq_length, doc_stride, max_query_length, is_training,
      lambda f, is_padding=False: None if is_padding else features.append(f), batch_size=1)
  return examples, features


@pytest.mark.slow
@pytest.mark.parametrize("is_training", [True, False])
@pytest.mark.parametrize("lengths", [(384, 128, 64), (128, 32, 24)])
def test_features_equal_the_original_on_squad(tmp_path, is_training, lengths):
  path = first_answers_only(shared_path("squad/expmrc-squad-dev.json"), tmp_path / "squad.json")
  vocab = shared_path("vocab/uncased_vocab.txt")
  _, reference = reference_features(path, vocab, is_training, *lengths)
  examples, _ = read_squad_examples(str(path), is_training, split_cjk=False)
  ours = list(sf.convert_examples_to_features(examples, FullTokenizer(str(vocab)), *lengths,
                                              is_training))
  assert len(ours) == len(reference)
  if lengths[0] == 128:
    assert max(f.doc_span_index for f in ours) >= 3          # several windows per context
  fields = FEATURE_FIELDS + (("start_position", "end_position", "is_impossible")
                             if is_training else ())
  for theirs, mine in zip(reference, ours):
    for field in fields:
      assert getattr(mine, field) == getattr(theirs, field), (field, mine.unique_id)


@pytest.mark.slow
def test_cjk_split_changes_only_the_doc_token_map_on_squad(tmp_path):
  path = first_answers_only(shared_path("squad/expmrc-squad-dev.json"), tmp_path / "squad.json")
  tokenizer = FullTokenizer(str(shared_path("vocab/uncased_vocab.txt")))
  plain = list(sf.convert_examples_to_features(
      read_squad_examples(str(path), True, split_cjk=False)[0], tokenizer, 384, 128, 64, True))
  split = list(sf.convert_examples_to_features(
      read_squad_examples(str(path), True)[0], tokenizer, 384, 128, 64, True))
  assert [f.input_ids for f in split] == [f.input_ids for f in plain]
  assert [(f.start_position, f.end_position) for f in split] == [
      (f.start_position, f.end_position) for f in plain]
  assert sum(f.token_to_orig_map != g.token_to_orig_map for f, g in zip(split, plain)) > 0


def test_split_context_by_hand():
  tokens, spaced, char_to_word = split_context("《红楼梦》作者 曹雪芹, born 1715年")
  assert tokens == ["《", "红", "楼", "梦", "》", "作", "者", "曹", "雪", "芹", ",", "born", "1715",
                    "年"]
  assert spaced[7] and not spaced[8] and spaced[11] and not spaced[13]
  assert char_to_word[0] == 0 and char_to_word[7] == 6 and char_to_word[8] == 7   # space -> 者
  original, _, _ = split_context("《红楼梦》作者 曹雪芹", split_cjk=False)
  assert original == ["《红楼梦》作者", "曹雪芹"]


def _recovered(examples, features, text_of):
  """Questions whose answer text is recovered exactly (up to surrounding whitespace, which some
  gold answers carry) from a window's token span."""
  found = set()
  for feature in features:
    if feature.is_impossible:
      continue
    example = examples[feature.example_index]
    if text_of(example, feature).strip() == example.orig_answer_text.strip():
      found.add(feature.example_index)
  return len(found)


def _reference_recovery(path, vocab, lengths):
  from official.nlp.data import squad_lib
  examples, features = reference_features(path, vocab, True, *lengths)

  def text_of(example, feature):
    s, e = feature.start_position, feature.end_position
    tok_text = " ".join(feature.tokens[s:e + 1]).replace(" ##", "").replace("##", "")
    orig = " ".join(example.doc_tokens[feature.token_to_orig_map[s]:
                                       feature.token_to_orig_map[e] + 1])
    return squad_lib.get_final_text(" ".join(tok_text.strip().split()), orig, True)
  return _recovered(examples, features, text_of)


def _our_recovery(path, vocab, lengths):
  examples, _ = read_squad_examples(str(path), True)
  features = list(sf.convert_examples_to_features(examples, FullTokenizer(str(vocab)), *lengths,
                                                  True))

  def text_of(example, feature):
    span = squad_postprocess._Span(0, feature.start_position, feature.end_position, 0.0, 0.0)  # pylint: disable=protected-access
    return squad_postprocess._span_text(example, feature, span, True)  # pylint: disable=protected-access
  return _recovered(examples, features, text_of)


def _answerable(path):
  return sum(bool(qa["answers"]) for a in json.loads(path.read_text(encoding="utf-8"))["data"]
             for p in a["paragraphs"] for qa in p["qas"])


# (file, vocabulary, questions read, questions also run through the original, floor). The
# original is slow on Chinese (a whole paragraph is one of its doc tokens, and its answer-span
# search is quadratic in it), so it runs on the first questions only.
RECOVERY = [("squad/expmrc-squad-dev.json", "uncased", None, None, 0.99),
            ("cmrc2018/cmrc2018_trial.json", "chinese", None, 250, 0.99),
            ("cmrc2018/cmrc2018_dev.json", "chinese", 1200, 250, 0.99),
            ("drcd/DRCD_dev.json", "chinese", 1200, 250, 0.99)]


@pytest.mark.slow
@pytest.mark.parametrize("relative,vocab,limit,reference_limit,floor", RECOVERY,
                         ids=[r[0].split("/")[1].split(".")[0] for r in RECOVERY])
def test_answer_text_recovered_from_token_spans(tmp_path, relative, vocab, limit,
                                                reference_limit, floor, capsys):
  """Every answerable question's answer, read back from the token span of its features (the
  path predictions take), against the original code on the same questions."""
  vocab_file = shared_path(f"vocab/{vocab}_vocab.txt")
  lengths = (384, 128, 64)
  path = first_answers_only(shared_path(relative), tmp_path / "all.json", limit)
  ours, total = _our_recovery(path, vocab_file, lengths), _answerable(path)
  head = first_answers_only(shared_path(relative), tmp_path / "head.json", reference_limit)
  ours_head, head_total = _our_recovery(head, vocab_file, lengths), _answerable(head)
  theirs = _reference_recovery(head, vocab_file, lengths)
  with capsys.disabled():
    print(f"\n{relative}: answer text recovered from token spans: bert_tf {ours}/{total} "
          f"({ours / total:.2%}); first {head_total}: bert_tf {ours_head} "
          f"({ours_head / head_total:.2%}), original {theirs} ({theirs / head_total:.2%})")
  assert ours_head >= theirs
  assert ours / total >= floor


def _logits_for(features, seed, padding=None):
  """Random logits per feature; `padding` (a float) replaces those at padding positions."""
  rng = np.random.default_rng(seed)
  logits = {}
  for f in features:
    pair = [rng.normal(size=len(f.input_ids)) * 3 for _ in range(2)]
    if padding is not None:
      for values in pair:
        values[np.asarray(f.input_mask) == 0] = padding
    logits[f.unique_id] = tuple(pair)
  return logits


@pytest.mark.slow
@pytest.mark.parametrize("version_2", [False, True])
def test_postprocessing_equals_the_original(tmp_path, version_2):
  """Ours ranks candidates among real tokens only, the original among all positions (dropping
  padding ones afterwards): the original is fed logits far below every real one at padding (the
  padded candidates then never take a slot), ours logits far above (which must change nothing:
  a BertSpanLabeler that skips padding at inference gives its bias there). Mutation caught:
  ranking all positions in ours (test fails on the nbest lists)."""
  from official.nlp.data import squad_lib
  path = shared_path("squad/expmrc-squad-dev.json")
  vocab = shared_path("vocab/uncased_vocab.txt")
  ref_examples, ref_features = reference_features(path, vocab, False, 128, 64, 32)
  examples, _ = read_squad_examples(str(path), False, split_cjk=False)
  features = list(sf.convert_examples_to_features(examples, FullTokenizer(str(vocab)), 128, 64,
                                                  32, False))
  logits = _logits_for(features, 7, padding=100.0)
  raw = collections.namedtuple("RawResult", ["unique_id", "start_logits", "end_logits"])
  ref_predictions, ref_nbest, ref_null = squad_lib.postprocess_output(
      ref_examples, ref_features, [raw(u, s.tolist(), e.tolist()) for u, (s, e) in
                                   _logits_for(features, 7, padding=-1e4).items()],
      20, 30, True, version_2_with_negative=version_2, null_score_diff_threshold=-15.0)
  predictions, nbest, null_odds = squad_postprocess.predict_answers(
      examples, features, logits, 20, 30, True, version_2, -15.0, match_unknown=False)
  assert predictions == dict(ref_predictions)
  # With [UNK] matching on (the default), answers change only where the original fell back to
  # the whole doc-token span: they become a part of it.
  improved, _, _ = squad_postprocess.predict_answers(examples, features, logits, 20, 30, True,
                                                     version_2, -15.0)
  changed = {k for k in improved if improved[k] != predictions[k]}
  assert all(improved[k] and improved[k] in predictions[k] for k in changed)
  assert {k: [e["text"] for e in v] for k, v in nbest.items()} == {
      k: [e["text"] for e in v] for k, v in ref_nbest.items()}
  for key in nbest:
    np.testing.assert_allclose([e["probability"] for e in nbest[key]],
                               [e["probability"] for e in ref_nbest[key]], rtol=1e-6)
  if version_2:
    assert set(null_odds) == set(ref_null)
    np.testing.assert_allclose([null_odds[k] for k in sorted(null_odds)],
                               [ref_null[k] for k in sorted(null_odds)], rtol=1e-6)
    assert "" in predictions.values()


def _perturbed_predictions(gold, rng):
  predictions = {}
  for qas_id, answers in gold.items():
    choice = rng.integers(0, 5)
    answer = answers[rng.integers(0, len(answers))] if answers else ""
    words = answer.split()
    predictions[qas_id] = [answer, " ".join(words[:max(1, len(words) // 2)]),
                           "The " + answer.upper() + ".", "something else", ""][choice]
  return predictions


@pytest.mark.slow
def test_squad_metrics_equal_the_official_evaluations():
  from official.nlp.tools import squad_evaluate_v1_1, squad_evaluate_v2_0
  dataset = json.loads(shared_path("squad/expmrc-squad-dev.json").read_text())["data"]
  rng = np.random.default_rng(0)
  gold = {qa["id"]: [a["text"] for a in qa["answers"]] for a in dataset
          for p in a["paragraphs"] for qa in p["qas"]}
  predictions = _perturbed_predictions(gold, rng)
  reference = squad_evaluate_v1_1.evaluate(dataset, predictions)
  ours = squad_metrics.squad_v1(gold, predictions)
  assert ours["exact_match"] == pytest.approx(100 * reference["exact_match"])
  assert ours["f1"] == pytest.approx(100 * reference["final_f1"])
  assert 10 < ours["exact_match"] < 90
  # SQuAD 2.0: a third of the questions made unanswerable, random null odds.
  for article in dataset:
    for paragraph in article["paragraphs"]:
      for qa in paragraph["qas"]:
        if rng.random() < 0.33:
          qa["answers"], qa["is_impossible"] = [], True
  gold = {qa["id"]: [a["text"] for a in qa["answers"]] for a in dataset
          for p in a["paragraphs"] for qa in p["qas"]}
  predictions = _perturbed_predictions(gold, rng)
  null_odds = {k: float(rng.normal()) for k in gold}
  reference = squad_evaluate_v2_0.evaluate(dataset, predictions, null_odds)
  ours = squad_metrics.squad_v2(gold, predictions, null_odds)
  for key in ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1"):
    assert ours[key] == pytest.approx(reference[key]), key
  for key in ("exact", "exact_thresh", "f1", "f1_thresh"):   # tf-models says final_, the
    assert ours[f"best_{key}"] == pytest.approx(reference[f"final_{key}"]), key  # official best_
  assert ours["HasAns_total"] + ours["NoAns_total"] == ours["total"] == len(gold)


def test_get_final_text_by_hand():
  assert squad_postprocess.get_final_text("steve smith", "Steve Smith's", True) == "Steve Smith"
  assert squad_postprocess.get_final_text("1895", "(1895)", True) == "1895"
  assert squad_postprocess.get_final_text("红 楼 梦", "《红楼梦》", True) == "红楼梦"
  assert squad_postprocess.get_final_text("nowhere", "Steve", True) == "Steve"


@pytest.mark.slow
@pytest.mark.parametrize("relative,vocab", [("squad/expmrc-squad-dev.json", "uncased"),
                                            ("cmrc2018/cmrc2018_dev.json", "chinese")])
def test_windows_cover_every_context_token_once_as_max_context(relative, vocab):
  """Every WordPiece token of every context lies in some window, and in exactly one window it
  is marked max-context (so every token can be predicted, once)."""
  tokenizer = FullTokenizer(str(shared_path(f"vocab/{vocab}_vocab.txt")))
  examples, _ = read_squad_examples(str(shared_path(relative)), False)
  examples = examples[:600]
  features = list(sf.convert_examples_to_features(examples, tokenizer, 128, 32, 24, False))
  by_example = collections.defaultdict(list)
  for feature in features:
    by_example[feature.example_index].append(feature)
  assert max(len(v) for v in by_example.values()) >= 4
  for index, example in enumerate(examples):
    pieces = [len(tokenizer.tokenize(t)) for t in example.doc_tokens]
    windows = by_example[index]
    covered = {orig for f in windows for orig in f.token_to_orig_map.values()}
    assert covered == {i for i, n in enumerate(pieces) if n}
    assert sum(sum(f.token_is_max_context.values()) for f in windows) == sum(pieces)
    for f in windows:                      # max-context marks only context tokens
      assert set(f.token_is_max_context) == set(f.token_to_orig_map)
