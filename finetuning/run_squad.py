"""Fine-tunes BERT for extractive reading comprehension, as Google's run_squad.py: SQuAD 1.1 and
2.0, and the Chinese SQuAD-layout sets CMRC 2018 (simplified) and DRCD (traditional).

    # SQuAD 1.1 from Google's BERT-Base
    python -m finetuning.run_squad --model_dir=uncased_L-12_H-768_A-12 --do_train --do_predict \
        --train_file=train-v1.1.json --predict_file=dev-v1.1.json --train_batch_size=12 \
        --learning_rate=3e-5 --num_train_epochs=2.0 --max_seq_length=384 --doc_stride=128 \
        --output_dir=out/squad

    # CMRC 2018 from Chinese RoBERTa-wwm-ext (character-level EM/F1 of the official evaluation)
    bert-run-squad --model_dir=chinese_roberta_wwm_ext_L-12_H-768_A-12 --do_train --do_predict \
        --train_file=cmrc2018_train.json --predict_file=cmrc2018_dev.json --output_dir=out/cmrc

Outputs in output_dir: checkpoints (a run resumes), TensorBoard summaries, predictions.json,
nbest_predictions.json, null_odds.json (v2.0), when the predict file carries answers
eval_results.txt (`key = value`, percent: exact_match, f1; for v2.0 the HasAns_/NoAns_ breakdown
and the best thresholds; for Chinese data the CMRC 2018 evaluation), and after training a
SavedModel that takes a raw question and context and returns the answer with its character
offsets (saved_model/ with task.json; docs/serving.md).
"""
import json
import os

from absl import app
from absl import flags
from absl import logging

from bert_tf import errors
from finetuning import common_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("train_file", None, "SQuAD-layout JSON for training.")
flags.DEFINE_string("predict_file", None, "SQuAD-layout JSON to predict (and evaluate when it "
                    "has answers).")
flags.DEFINE_integer("max_seq_length", 384, "Tokens per window after WordPiece.")
flags.DEFINE_integer("doc_stride", 128, "Stride between context windows.")
flags.DEFINE_integer("max_query_length", 64, "Question tokens kept.")
flags.DEFINE_integer("n_best_size", 20, "Candidates per example in nbest_predictions.json.")
flags.DEFINE_integer("max_answer_length", 30, "Longest answer in tokens.")
flags.DEFINE_bool("version_2_with_negative", False, "SQuAD 2.0: some questions have no answer.")
flags.DEFINE_float("null_score_diff_threshold", 0.0, "Predict no answer when score_null - "
                   "best_non_null exceeds this.")
flags.DEFINE_bool("verbose_logging", False, "Log the features of the first examples.")
flags.DEFINE_enum("evaluation", "auto", ["auto", "squad", "cmrc2018"], "Metric definitions: "
                  "auto picks cmrc2018 for Chinese predict files.")
flags.DEFINE_bool("split_cjk_characters", True, "Each CJK character of a context is a doc token "
                  "(needed for Chinese; False is the original's whitespace-only split).")
flags.DEFINE_bool("export_saved_model", True, "After training, export a raw-text SavedModel.")
common_flags.define_model_flags()
common_flags.define_run_flags(train_batch_size=32, learning_rate=5e-5, num_train_epochs=3.0)
flags.mark_flags_as_required(["output_dir"])


def _is_chinese(examples):
  sample = "".join(e.question_text for e in examples[:200])
  return sum("\u4e00" <= c <= "\u9fff" for c in sample) > len(sample) // 4


def main(argv):
  del argv
  if not (FLAGS.do_train or FLAGS.do_predict):
    raise app.UsageError("at least one of --do_train or --do_predict must be set")
  if FLAGS.do_train and not FLAGS.train_file:
    raise app.UsageError("--do_train needs --train_file")
  if FLAGS.do_predict and not FLAGS.predict_file:
    raise app.UsageError("--do_predict needs --predict_file")
  if FLAGS.max_seq_length <= FLAGS.max_query_length + 3:
    raise app.UsageError(f"--max_seq_length={FLAGS.max_seq_length} leaves no room for the context "
                         f"after --max_query_length={FLAGS.max_query_length} + 3")
  common_flags.check_run_flags()
  config_file, vocab_file, init_checkpoint = common_flags.resolve_model_files()
  import numpy as np  # pylint: disable=import-outside-toplevel
  from bert_tf import FullTokenizer, training  # pylint: disable=import-outside-toplevel
  from finetuning import input_pipeline, squad_features as sf, squad_metrics, squad_postprocess  # pylint: disable=import-outside-toplevel
  from finetuning.models import BertSpanLabeler  # pylint: disable=import-outside-toplevel
  from finetuning.objectives import SpanObjective  # pylint: disable=import-outside-toplevel
  from finetuning.tasks.squad import gold_answers, read_squad_examples  # pylint: disable=import-outside-toplevel

  config, strategy = common_flags.start_run(config_file, vocab_file)
  tokenizer = sf.MemoTokenizer(FullTokenizer(vocab_file, do_lower_case=FLAGS.do_lower_case))

  if FLAGS.do_predict:   # read now: a broken predict file must not wait for the training
    read_squad_examples(FLAGS.predict_file, False, FLAGS.version_2_with_negative,
                        FLAGS.split_cjk_characters)
  num_train_steps, num_warmup_steps = 1, 0
  if FLAGS.do_train:
    examples, report = read_squad_examples(FLAGS.train_file, True, FLAGS.version_2_with_negative,
                                           FLAGS.split_cjk_characters)
    if not examples:
      from bert_tf.errors import InputFileError  # pylint: disable=import-outside-toplevel
      first = f", e.g. {report.unrecoverable[0]}" if report.unrecoverable else ""
      raise InputFileError(f"{FLAGS.train_file}: no usable training question ("
                           f"{len(report.unrecoverable)} answers cannot be found in their "
                           f"context at answer_start{first})")
    np.random.default_rng(FLAGS.seed).shuffle(examples)     # as the original, before windows
    train_record = os.path.join(FLAGS.output_dir, "train.tf_record")
    num_features = sf.write_features(
        train_record, sf.convert_examples_to_features(
            examples, tokenizer, FLAGS.max_seq_length, FLAGS.doc_stride, FLAGS.max_query_length,
            True), True)
    num_train_steps, num_warmup_steps = common_flags.training_steps(len(examples))
    logging.info("%d training examples (%d skipped as unrecoverable), %d windows; %d steps",
                 len(examples), len(report.unrecoverable), num_features, num_train_steps)
  with strategy.scope():
    model = BertSpanLabeler(config, seq_length=FLAGS.max_seq_length)
    optimizer = common_flags.create_optimizer(num_train_steps, num_warmup_steps)
  trainer = training.Trainer(strategy, model, optimizer, SpanObjective(),
                             common_flags.trainer_config(num_train_steps, strategy))
  init_fn = (training.init_fn_from(init_checkpoint, allow_missing=("cls/",))
             if init_checkpoint else None)
  dataset_fn = (input_pipeline.training_dataset_fn(
      [train_record], sf.parse_fn(FLAGS.max_seq_length, True), FLAGS.train_batch_size, FLAGS.seed)
                if FLAGS.do_train else None)
  common_flags.train_or_restore(trainer, model, dataset_fn, init_fn, vocab_file)
  if FLAGS.do_train and FLAGS.export_saved_model:
    from bert_tf import FastTokenizer  # pylint: disable=import-outside-toplevel
    from finetuning.squad_serving import ReaderSettings, export_reader  # pylint: disable=import-outside-toplevel
    settings = ReaderSettings(
        FLAGS.max_seq_length, FLAGS.doc_stride, FLAGS.max_query_length, FLAGS.n_best_size,
        FLAGS.max_answer_length, FLAGS.version_2_with_negative, FLAGS.null_score_diff_threshold,
        FLAGS.split_cjk_characters)
    path = export_reader(os.path.join(FLAGS.output_dir, "saved_model"), model,
                         FastTokenizer(vocab_file, do_lower_case=FLAGS.do_lower_case), settings)
    logging.info("raw-text SavedModel exported to %s", path)

  if FLAGS.do_predict:
    examples, _ = read_squad_examples(FLAGS.predict_file, False, FLAGS.version_2_with_negative,
                                      FLAGS.split_cjk_characters)
    features = list(sf.convert_examples_to_features(
        examples, tokenizer, FLAGS.max_seq_length, FLAGS.doc_stride, FLAGS.max_query_length, False))
    record = os.path.join(FLAGS.output_dir, "eval.tf_record")
    sf.write_features(record, features, False)
    logging.info("predicting %d examples in %d windows", len(examples), len(features))
    dataset = input_pipeline.prediction_dataset(
        [record], sf.parse_fn(FLAGS.max_seq_length, False), FLAGS.predict_batch_size)
    outputs = training.predict(strategy, model, dataset, ["start_logits", "end_logits"])
    results = {f.unique_id: (outputs["start_logits"][i], outputs["end_logits"][i])
               for i, f in enumerate(features)}
    predictions, nbest, null_odds = squad_postprocess.predict_answers(
        examples, features, results, FLAGS.n_best_size, FLAGS.max_answer_length,
        FLAGS.do_lower_case, FLAGS.version_2_with_negative, FLAGS.null_score_diff_threshold)
    out = FLAGS.output_dir
    squad_postprocess.write_json(os.path.join(out, "predictions.json"), predictions)
    squad_postprocess.write_json(os.path.join(out, "nbest_predictions.json"), nbest)
    if FLAGS.version_2_with_negative:
      squad_postprocess.write_json(os.path.join(out, "null_odds.json"), null_odds)
    gold = gold_answers(FLAGS.predict_file)
    if any(gold.values()):
      kind = FLAGS.evaluation
      if kind == "auto":
        kind = "cmrc2018" if _is_chinese(examples) else "squad"
      if kind == "cmrc2018":
        metrics = squad_metrics.cmrc(gold, predictions)
      elif FLAGS.version_2_with_negative:
        metrics = squad_metrics.squad_v2(gold, predictions, null_odds)
        metrics["exact_match"] = metrics["exact"]
      else:
        metrics = squad_metrics.squad_v1(gold, predictions)
      metrics["global_step"] = trainer.step
      training.write_results_file(os.path.join(out, "eval_results.txt"), metrics)
      logging.info("***** Eval results (%s, %d questions) *****  %s", kind, len(gold),
                   json.dumps(metrics, sort_keys=True))


def run():
  errors.run_program(main)


if __name__ == "__main__":
  run()
