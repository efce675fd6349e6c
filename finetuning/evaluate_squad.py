"""Scores a predictions file ({question id: answer text}) against a SQuAD-layout dataset as the
official evaluation scripts do, and prints the JSON object the official script prints.

    # SQuAD v1.1 (evaluate-v1.1.py): {"exact_match": ..., "f1": ...}
    python -m finetuning.evaluate_squad dev-v1.1.json predictions.json
    # SQuAD v2.0 (evaluate-v2.0.py): exact, f1, total, HasAns_*, NoAns_*, best_* with null odds
    bert-evaluate-squad dev-v2.0.json predictions.json --na_prob_file=null_odds.json
    # CMRC 2018 and DRCD (cmrc2018_evaluate.py): {"AVERAGE": "...", "F1": ..., "EM", "TOTAL",
    # "SKIP", "FILE"}
    bert-evaluate-squad cmrc2018_dev.json predictions.json

--metric defaults from the data: squad_v2 when some question has no answer or `is_impossible`
(or the version is v2.0), cmrc2018 when the contexts are Chinese, else squad_v1. A question
without a prediction scores 0 for squad_v1 and cmrc2018 (CMRC counts it in SKIP), as the
official scripts do, and a warning says how many; the official v2.0 script stops on such a
file, and so does this one, with the count.
"""
import collections
import json
import sys

from absl import app
from absl import flags

from bert_tf import errors
from finetuning import squad_metrics

FLAGS = flags.FLAGS
flags.DEFINE_enum("metric", None, ["squad_v1", "squad_v2", "cmrc2018"],
                  "Official evaluation to run (DRCD uses cmrc2018); default from the data.")
flags.DEFINE_string("na_prob_file", None, "SQuAD v2.0: JSON {question id: null odds} "
                    "(run_squad's null_odds.json); adds best_exact/best_f1 and thresholds.")
flags.DEFINE_float("na_prob_thresh", 1.0, "SQuAD v2.0: predict no answer when the null odds "
                   "exceed this (the official default 1.0).")


class InputError(errors.InputFileError):
  """A dataset or predictions file that cannot be scored; the message names the file."""


def _load(path, what):
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except OSError as e:
    raise InputError(f"{path}: cannot read the {what} ({e.strerror})") from e
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise InputError(f"{path}: the {what} is not UTF-8 JSON ({e})") from e


def default_metric(dataset):
  """squad_v2 / cmrc2018 / squad_v1 from the dataset itself (see the module docstring)."""
  questions = [qa for article in dataset["data"] for paragraph in article["paragraphs"]
               for qa in paragraph["qas"]]
  if str(dataset.get("version", "")).lstrip("v").startswith("2.") or any(
      qa.get("is_impossible") or not qa.get("answers") for qa in questions):
    return "squad_v2"
  sample = "".join(p["context"] for article in dataset["data"][:20]
                   for p in article["paragraphs"])
  if sum("\u4e00" <= c <= "\u9fa5" for c in sample) > len(sample) // 4:
    return "cmrc2018"
  return "squad_v1"


def evaluate(gold, predictions, metric, prediction_file="", na_probs=None, na_prob_thresh=1.0):
  """The official output of `metric` for `gold` ({id: [answer texts]}, in the dataset's order)."""
  if metric == "squad_v1":
    return squad_metrics.squad_v1(gold, predictions)
  if metric == "squad_v2":
    return squad_metrics.squad_v2(gold, predictions, na_probs, na_prob_thresh)
  results = squad_metrics.cmrc(gold, predictions)
  # cmrc2018_evaluate.py's own output: scores as strings with three decimals, and the file.
  return collections.OrderedDict([
      ("AVERAGE", "%.3f" % results["average"]), ("F1", "%.3f" % results["f1"]),
      ("EM", "%.3f" % results["exact_match"]), ("TOTAL", results["total"]),
      ("SKIP", results["skip"]), ("FILE", prediction_file)])


def _unanswered(gold, mapping, metric):
  # cmrc2018_evaluate.py looks questions up by their stripped id.
  return [q for q in gold if (q.strip() if metric == "cmrc2018" else q) not in mapping]


def _score(dataset_file, prediction_file):
  dataset = _load(dataset_file, "dataset")
  if not isinstance(dataset, dict) or not isinstance(dataset.get("data"), list):
    raise InputError(f"{dataset_file}: expected a SQuAD-layout dataset "
                     '({"data": [{"paragraphs": [{"context", "qas"}]}]})')
  predictions = _load(prediction_file, "predictions")
  if not isinstance(predictions, dict):
    raise InputError(f"{prediction_file}: expected a JSON object {{question id: answer text}}")
  try:
    gold = squad_metrics.answers_by_id(dataset)
    metric = FLAGS.metric or default_metric(dataset)
  except (KeyError, TypeError) as e:
    raise InputError(f"{dataset_file}: not SQuAD layout (an article, paragraph or question "
                     f"lacks {e})") from e
  if FLAGS.na_prob_file and metric != "squad_v2":
    raise app.UsageError(f"--na_prob_file is for --metric=squad_v2 (this is {metric})",
                         exitcode=2)
  na_probs = _load(FLAGS.na_prob_file, "null odds") if FLAGS.na_prob_file else None
  if metric != "cmrc2018":        # cmrc2018_evaluate.py scores str() of any value
    not_text = [q for q, v in predictions.items() if not isinstance(v, str)]
    if not_text:
      raise InputError(f"{prediction_file}: the prediction of {not_text[0]} is not a string "
                       f"({len(not_text)} such)")
  missing = _unanswered(gold, predictions, metric)
  if metric == "squad_v2":        # the official v2.0 script stops with a KeyError here
    for mapping, path, what in ((predictions, prediction_file, "prediction"),
                                (na_probs, FLAGS.na_prob_file, "null odds")):
      absent = [] if mapping is None else _unanswered(gold, mapping, metric)
      if absent:
        raise InputError(f"{path}: {len(absent)} of {len(gold)} questions have no {what} "
                         f"(first: {absent[0]}); SQuAD v2.0 scores need one for every question")
  elif missing:
    print(f"evaluate_squad: warning: {len(missing)} of {len(gold)} questions have no prediction "
          f"in {prediction_file} (first: {missing[0]}); they score 0", file=sys.stderr)
  try:
    results = evaluate(gold, predictions, metric, prediction_file, na_probs, FLAGS.na_prob_thresh)
  except ValueError as e:         # a question without gold answers under squad_v1 / cmrc2018
    raise InputError(f"{dataset_file}: {e}") from e
  return json.dumps(results, indent=2) if metric == "squad_v2" else json.dumps(results)


def main(argv):
  if len(argv) != 3:
    raise app.UsageError("expected two arguments: DATASET_FILE PREDICTION_FILE", exitcode=2)
  print(_score(argv[1], argv[2]))


def run():
  errors.run_program(main)   # one line and exit 1 for a bad file, 2 for bad flags


if __name__ == "__main__":
  run()
