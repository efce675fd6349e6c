"""Reading-comprehension metrics by the official definitions, in percent.

SQuAD v1.1 / v2.0: answers normalized (lower case, punctuation and the articles a/an/the
removed, whitespace collapsed); exact match and token F1, each the maximum over the gold
answers; v2.0 adds the HasAns_/NoAns_ breakdown and the best null-odds thresholds
(best_exact / best_f1 with their thresholds), where an unanswerable question's gold is "".

CMRC 2018 / DRCD (the CMRC 2018 official evaluation): text lower-cased and segmented into CJK
characters and non-CJK words, punctuation removed; exact match of the punctuation-free strings
and F1 over the longest common substring of the segments, maxima over the gold answers.
"""
import collections
import re
import string

import numpy as np

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text):
  text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
  return " ".join(_ARTICLES.sub(" ", text).split())


def _token_f1(prediction, gold):
  pred_tokens, gold_tokens = normalize_answer(prediction).split(), normalize_answer(gold).split()
  if not pred_tokens or not gold_tokens:     # v2.0: both empty is a match
    return float(pred_tokens == gold_tokens)
  common = sum((collections.Counter(pred_tokens) & collections.Counter(gold_tokens)).values())
  if common == 0:
    return 0.0
  precision, recall = common / len(pred_tokens), common / len(gold_tokens)
  return 2 * precision * recall / (precision + recall)


def _exact(prediction, gold):
  return float(normalize_answer(prediction) == normalize_answer(gold))


def squad_v1(gold, predictions):
  """{exact_match, f1} over the questions of `gold` ({qas_id: [answers]}); a question without a
  prediction scores 0, as the official script."""
  exact = f1 = 0.0
  for qas_id, answers in gold.items():
    if qas_id not in predictions:
      continue
    prediction = predictions[qas_id]
    exact += max(_exact(prediction, a) for a in answers)
    f1 += max(_token_f1(prediction, a) for a in answers)
  return {"exact_match": 100.0 * exact / len(gold), "f1": 100.0 * f1 / len(gold)}


def _best_threshold(scores, na_probs, has_answer, predictions):
  """The official find_best_thresh: sweep thresholds over the null odds in increasing order."""
  total_no_answer = sum(1 for q in scores if not has_answer[q])
  score = best = float(total_no_answer)
  threshold = 0.0
  for qas_id in sorted(na_probs, key=lambda q: na_probs[q]):
    if qas_id not in scores:
      continue
    if has_answer[qas_id]:
      delta = scores[qas_id]
    else:
      delta = -1.0 if predictions[qas_id] else 0.0
    score += delta
    if score > best:
      best, threshold = score, na_probs[qas_id]
  return 100.0 * best / len(scores), threshold


def squad_v2(gold, predictions, null_odds=None, na_prob_threshold=1.0):
  """The official v2.0 evaluation. `gold` maps ids to answers ([] for unanswerable)."""
  has_answer = {q: bool(answers) for q, answers in gold.items()}
  exact, f1 = {}, {}
  for qas_id, answers in gold.items():
    if qas_id not in predictions:
      continue
    answers = [a for a in answers if normalize_answer(a)] or [""]
    exact[qas_id] = max(_exact(predictions[qas_id], a) for a in answers)
    f1[qas_id] = max(_token_f1(predictions[qas_id], a) for a in answers)
  na_probs = null_odds if null_odds is not None else {q: 0.0 for q in gold}

  def thresholded(scores):
    return {q: (float(not has_answer[q]) if na_probs.get(q, 0.0) > na_prob_threshold else s)
            for q, s in scores.items()}
  exact_t, f1_t = thresholded(exact), thresholded(f1)
  results = {"exact": 100.0 * sum(exact_t.values()) / len(gold),
             "f1": 100.0 * sum(f1_t.values()) / len(gold), "total": len(gold)}
  for prefix, wanted in (("HasAns", True), ("NoAns", False)):
    ids = [q for q in gold if has_answer[q] == wanted]
    if ids:
      results[f"{prefix}_exact"] = 100.0 * sum(exact_t.get(q, 0.0) for q in ids) / len(ids)
      results[f"{prefix}_f1"] = 100.0 * sum(f1_t.get(q, 0.0) for q in ids) / len(ids)
      results[f"{prefix}_total"] = len(ids)
  if null_odds is not None:
    full_exact = {q: exact.get(q, 0.0) for q in gold}
    full_f1 = {q: f1.get(q, 0.0) for q in gold}
    results["best_exact"], results["best_exact_thresh"] = _best_threshold(
        full_exact, na_probs, has_answer, predictions)
    results["best_f1"], results["best_f1_thresh"] = _best_threshold(
        full_f1, na_probs, has_answer, predictions)
  results["exact_match"] = results["exact"]
  return results


# -- CMRC 2018 / DRCD -------------------------------------------------------------------------

# The official script's punctuation list (ASCII and full-width marks).
_CMRC_PUNCTUATION = set("-:_*^/\\~`+=，。：？！“”；’《》……·、「」（）－～『』") | {
    ",", ".", "?", "!", "'", '"', ";", "(", ")", "<", ">", "[", "]", "{", "}", "@", "#", "$",
    "%", "&", "|"}
_CJK = re.compile("[\u4e00-\u9fa5]")
_WORDS = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def _mixed_segmentation(text, remove_punctuation=True):
  """CJK characters one by one, other runs split into words (the official script uses NLTK's
  word_tokenize there; a regex word split gives the same segments once punctuation is gone,
  except inside English contractions)."""
  segments, run = [], ""
  for char in str(text).lower().strip():
    if remove_punctuation and char in _CMRC_PUNCTUATION:
      continue
    if _CJK.match(char) or char in _CMRC_PUNCTUATION:
      if run:
        segments.extend(_WORDS.findall(run))
        run = ""
      segments.append(char)
    else:
      run += char
  if run:
    segments.extend(_WORDS.findall(run))
  return segments


def _remove_punctuation(text):
  return "".join(c for c in str(text).lower().strip() if c not in _CMRC_PUNCTUATION)


def _longest_common_substring(a, b):
  if not a or not b:
    return 0
  table = np.zeros((len(a) + 1, len(b) + 1), np.int32)
  best = 0
  for i, x in enumerate(a, 1):
    for j, y in enumerate(b, 1):
      if x == y:
        table[i, j] = table[i - 1, j - 1] + 1
        best = max(best, table[i, j])
  return int(best)


def _cmrc_f1(prediction, answers):
  scores = []
  pred_segments = _mixed_segmentation(prediction)
  for answer in answers:
    answer_segments = _mixed_segmentation(answer)
    common = _longest_common_substring(answer_segments, pred_segments)
    if common == 0:
      scores.append(0.0)
      continue
    precision, recall = common / len(pred_segments), common / len(answer_segments)
    scores.append(2 * precision * recall / (precision + recall))
  return max(scores)


def cmrc(gold, predictions):
  """{exact_match, f1, average, total, skip} as the CMRC 2018 evaluation prints them (EM, F1,
  AVERAGE, TOTAL, SKIP); a question without a prediction counts as 0 and is skipped."""
  exact = f1 = 0.0
  skipped = 0
  for qas_id, answers in gold.items():
    if qas_id not in predictions:
      skipped += 1
      continue
    prediction = str(predictions[qas_id])
    exact += max(float(_remove_punctuation(a) == _remove_punctuation(prediction)) for a in answers)
    f1 += _cmrc_f1(prediction, answers)
  total = len(gold)
  results = {"exact_match": 100.0 * exact / total, "f1": 100.0 * f1 / total,
             "total": total, "skip": skipped}
  results["average"] = (results["exact_match"] + results["f1"]) / 2
  return results
