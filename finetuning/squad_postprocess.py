"""Start/end logits -> answer texts, as the original run_squad.py's write_predictions:
n-best spans per example over all its windows (only tokens of the context, each in the window
where it has the most context, end not before start, at most max_answer_length tokens), mapped
back to the original text with get_final_text; for SQuAD 2.0 the null answer competes through
score_null - best_non_null > null_score_diff_threshold.
"""
import collections
import dataclasses
import json
import re

import numpy as np
from absl import logging

from bert_tf.tokenization import BasicTokenizer
from finetuning.tasks.squad import join_tokens


def _strip_spaces(text):
  """Text without spaces, and for each of its characters the position in `text`."""
  kept, positions = [], []
  for i, char in enumerate(text):
    if char != " ":
      kept.append(char)
      positions.append(i)
  return "".join(kept), positions


def get_final_text(pred_text, orig_text, do_lower_case, match_unknown=True):
  """Projects a de-tokenized prediction (lower-cased, punctuation split) onto the original text.

  The original text is normalized the way the tokenizer saw it; where the prediction lies in it
  is found ([UNK] matching any one word), and the character alignment of the two space-free strings (they are equal in length
  when normalization changed no character count) maps that span back to `orig_text`. When the
  alignment fails the whole `orig_text` is returned, as the original does.
  """
  normalized = " ".join(BasicTokenizer(do_lower_case=do_lower_case).tokenize(orig_text))
  start = normalized.find(pred_text)
  length = len(pred_text)
  if start == -1 and match_unknown and "[UNK]" in pred_text:
    # Not in the original: a word the vocabulary lacks comes back as [UNK] (Chinese quotes and
    # rare characters in the Chinese vocabulary), and the plain search then gives up and returns
    # the whole span of doc tokens. [UNK] stands for one whole word of the normalized text.
    pattern = r"(?<![^ ])" + "[^ ]+".join(re.escape(part) for part in pred_text.split("[UNK]"))
    match = re.search(pattern + r"(?![^ ])", normalized)
    if match:
      start, length = match.start(), match.end() - match.start()
  if start == -1:
    return orig_text
  end = start + length - 1
  orig_stripped, orig_positions = _strip_spaces(orig_text)
  tok_stripped, tok_positions = _strip_spaces(normalized)
  if len(orig_stripped) != len(tok_stripped):
    return orig_text
  # tok position -> index among non-space characters -> orig position
  tok_index = {position: i for i, position in enumerate(tok_positions)}
  if start not in tok_index or end not in tok_index:
    return orig_text
  return orig_text[orig_positions[tok_index[start]]:orig_positions[tok_index[end]] + 1]


def _best_indexes(logits, n_best_size):
  """Indexes of the n largest logits, ties in index order (the original's stable sort)."""
  return np.argsort(-np.asarray(logits), kind="stable")[:n_best_size].tolist()


def _softmax(scores):
  scores = np.asarray(scores, np.float64)
  exp = np.exp(scores - scores.max())
  return exp / exp.sum()


@dataclasses.dataclass
class _Span:
  feature: int
  start: int
  end: int
  start_logit: float
  end_logit: float


def predict_answers(examples, features, results, n_best_size=20, max_answer_length=30,
                    do_lower_case=True, version_2_with_negative=False,
                    null_score_diff_threshold=0.0, match_unknown=True):
  """Answers of all examples (match_unknown=False: get_final_text exactly as the original).

  Args:
    examples: SquadExample list; features: SquadFeature list (any order);
    results: {unique_id: (start_logits, end_logits)}.
  Returns:
    (predictions {qas_id: text}, nbest {qas_id: [dict(text, probability, start_logit,
    end_logit)]}, null_odds {qas_id: score_null - best_non_null} (SQuAD 2.0, else empty)).
  """
  by_example = collections.defaultdict(list)
  for feature in features:
    by_example[feature.example_index].append(feature)
  predictions, all_nbest, null_odds = {}, {}, {}
  for example_index, example in enumerate(examples):
    example_features = sorted(by_example[example_index], key=lambda f: f.doc_span_index)
    spans, null = [], None
    for feature_index, feature in enumerate(example_features):
      start_logits, end_logits = results[feature.unique_id]
      if version_2_with_negative:
        score = start_logits[0] + end_logits[0]
        if null is None or score < null[0]:
          null = (score, feature_index, start_logits[0], end_logits[0])
      # Ranked among the real tokens only: the original ranks padding positions too and then
      # drops them, so its candidates depended on the logits at padding, which a model that
      # skips padding at inference does not compute (BertSpanLabeler).
      real = len(feature.tokens)
      for start in _best_indexes(start_logits[:real], n_best_size):
        for end in _best_indexes(end_logits[:real], n_best_size):
          if (start >= len(feature.tokens) or end >= len(feature.tokens) or
              start not in feature.token_to_orig_map or end not in feature.token_to_orig_map or
              not feature.token_is_max_context.get(start, False) or end < start or
              end - start + 1 > max_answer_length):
            continue
          spans.append(_Span(feature_index, start, end, float(start_logits[start]),
                             float(end_logits[end])))
    if version_2_with_negative:
      spans.append(_Span(null[1], 0, 0, float(null[2]), float(null[3])))
    spans.sort(key=lambda s: s.start_logit + s.end_logit, reverse=True)
    nbest, seen = [], set()
    for span in spans:
      if len(nbest) >= n_best_size:
        break
      if span.start > 0:
        text = _span_text(example, example_features[span.feature], span, do_lower_case,
                          match_unknown)
      else:
        text = ""
      if text in seen:
        continue
      seen.add(text)
      nbest.append((text, span.start_logit, span.end_logit))
    if version_2_with_negative and "" not in seen:
      nbest.append(("", float(null[2]), float(null[3])))
    if not nbest:
      nbest.append(("empty", 0.0, 0.0))
    probabilities = _softmax([s + e for _, s, e in nbest])
    entries = [{"text": text, "probability": float(p), "start_logit": s, "end_logit": e}
               for (text, s, e), p in zip(nbest, probabilities)]
    all_nbest[example.qas_id] = entries
    if not version_2_with_negative:
      predictions[example.qas_id] = entries[0]["text"]
    else:
      best = next((e for e in entries if e["text"]), None)
      best_score = best["start_logit"] + best["end_logit"] if best else float("-inf")
      diff = null[0] - best_score
      null_odds[example.qas_id] = float(diff)
      predictions[example.qas_id] = "" if diff > null_score_diff_threshold or best is None \
          else best["text"]
  return predictions, all_nbest, null_odds


def _span_text(example, feature, span, do_lower_case, match_unknown=True):
  pieces = feature.tokens[span.start:span.end + 1]
  orig_start = feature.token_to_orig_map[span.start]
  orig_end = feature.token_to_orig_map[span.end]
  orig_text = join_tokens(example.doc_tokens[orig_start:orig_end + 1],
                          example.spaced[orig_start:orig_end + 1])
  tok_text = " ".join(pieces).replace(" ##", "").replace("##", "")
  tok_text = " ".join(tok_text.strip().split())
  return get_final_text(tok_text, orig_text, do_lower_case, match_unknown)


def write_json(path, value):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  tmp = f"{path}.incomplete"
  with tf.io.gfile.GFile(tmp, "w") as f:
    f.write(json.dumps(value, indent=4, ensure_ascii=False) + "\n")
  tf.io.gfile.rename(tmp, path, overwrite=True)
  logging.info("wrote %s", path)
