"""Fine-tunes BERT for named-entity recognition: CoNLL-2003, CLUENER2020, or any BIO file.

    # CoNLL-2003 English from Google's BERT-Base, cased
    python -m finetuning.run_ner --task_name=conll2003 --data_dir=conll2003 \
        --model_dir=cased_L-12_H-768_A-12 --do_lower_case=false --do_train --do_eval \
        --do_predict --max_seq_length=128 --learning_rate=5e-5 --num_train_epochs=3 \
        --output_dir=out/conll

    # CLUENER2020 from Chinese RoBERTa-wwm-ext, with a CRF layer
    bert-run-ner --task_name=cluener --data_dir=cluener --use_crf \
        --model_dir=chinese_roberta_wwm_ext_L-12_H-768_A-12 --do_train --do_eval \
        --output_dir=out/cluener

Outputs in output_dir: checkpoints (a run resumes), TensorBoard summaries, eval_results.txt
(`key = value`: precision, recall, f1 over entities with conlleval's definition, then per type,
and global_step), eval_predictions.txt / .json and test_predictions.txt / .json in the input's
format (CoNLL columns: word, gold, predicted; CLUENER JSON Lines with label spans), a SavedModel
that takes raw text and returns entities with character offsets (saved_model/, with task.json;
docs/serving.md), and the fine-tuned model as an original checkpoint (export/).
"""
import json
import os

from absl import app
from absl import flags
from absl import logging

from bert_tf import errors
from finetuning import common_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("task_name", None, "conll2003, cluener or bio.")
flags.DEFINE_string("data_dir", None, "Folder with the dataset's files as distributed.")
flags.DEFINE_integer("max_seq_length", 128, "Tokens per window after WordPiece.")
flags.DEFINE_bool("do_eval", False, "Evaluate on the dev set.")
flags.DEFINE_integer("eval_batch_size", 8, "Global batch size for evaluation.")
flags.DEFINE_bool("use_crf", False, "A CRF layer on top of the per-token scores.")
flags.DEFINE_bool("export_saved_model", True, "After training, export a raw-text SavedModel.")
flags.DEFINE_list("labels", None, "bio task: the BIO tags (default: those of the train file).")
common_flags.define_model_flags()
common_flags.define_run_flags()
flags.mark_flags_as_required(["task_name", "data_dir", "output_dir"])


def main(argv):
  del argv
  if not (FLAGS.do_train or FLAGS.do_eval or FLAGS.do_predict):
    raise app.UsageError("at least one of --do_train, --do_eval or --do_predict must be set")
  common_flags.check_run_flags("eval_batch_size")
  config_file, vocab_file, init_checkpoint = common_flags.resolve_model_files()
  import numpy as np  # pylint: disable=import-outside-toplevel
  from bert_tf import FastTokenizer, FullTokenizer, training  # pylint: disable=import-outside-toplevel
  from finetuning import input_pipeline, ner_features as nf, ner_metrics  # pylint: disable=import-outside-toplevel
  from finetuning.models import BertTokenTagger  # pylint: disable=import-outside-toplevel
  from finetuning.ner_serving import NotBioError, export_ner  # pylint: disable=import-outside-toplevel
  from finetuning.objectives import TaggingObjective  # pylint: disable=import-outside-toplevel
  from finetuning.tasks import ner  # pylint: disable=import-outside-toplevel

  task = ner.get_task(FLAGS.task_name, **({"labels": FLAGS.labels} if FLAGS.task_name.lower() == "bio" else {}))
  if isinstance(task, ner.BioTask):
    labels_file = os.path.join(FLAGS.output_dir, "labels.json")
    if not task.labels and os.path.exists(labels_file):
      with open(labels_file, encoding="utf-8") as f:
        task.labels = tuple(json.load(f))
    task.infer_labels(FLAGS.data_dir)
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    with open(labels_file, "w", encoding="utf-8") as f:
      json.dump(list(task.labels), f)
  # Every file the run reads, read now: a bad dev tag or test line must not wait for training.
  for split, wanted in (("train", FLAGS.do_train), ("dev", FLAGS.do_eval),
                        ("test", FLAGS.do_predict)):
    if wanted:
      task.read_examples(FLAGS.data_dir, split)
  tokenizer = FullTokenizer(vocab_file, do_lower_case=FLAGS.do_lower_case)
  config, strategy = common_flags.start_run(config_file, vocab_file)
  parse = nf.parse_fn(FLAGS.max_seq_length)

  num_train_steps, num_warmup_steps = 1, 0
  if FLAGS.do_train:
    examples = task.read_examples(FLAGS.data_dir, "train")
    features = nf.convert_examples(examples, tokenizer, FLAGS.max_seq_length, task.labels)
    train_record = os.path.join(FLAGS.output_dir, "train.tf_record")
    nf.write_features(train_record, features)
    num_train_steps, num_warmup_steps = common_flags.training_steps(len(features))
    logging.info("%d sentences in %d windows: %d steps", len(examples), len(features),
                 num_train_steps)
  with strategy.scope():
    model = BertTokenTagger(config, len(task.labels), use_crf=FLAGS.use_crf,
                            seq_length=FLAGS.max_seq_length)
    optimizer = common_flags.create_optimizer(num_train_steps, num_warmup_steps)
  trainer = training.Trainer(strategy, model, optimizer, TaggingObjective(FLAGS.use_crf),
                             common_flags.trainer_config(num_train_steps, strategy))
  init_fn = (training.init_fn_from(init_checkpoint, allow_missing=("output_", "cls/", "crf/"))
             if init_checkpoint else None)
  dataset_fn = (input_pipeline.training_dataset_fn([train_record], parse, FLAGS.train_batch_size,
                                                  FLAGS.seed) if FLAGS.do_train else None)
  common_flags.train_or_restore(trainer, model, dataset_fn, init_fn, vocab_file)
  if FLAGS.do_train and FLAGS.export_saved_model:
    try:
      path = export_ner(os.path.join(FLAGS.output_dir, "saved_model"), model,
                        FastTokenizer(vocab_file, do_lower_case=FLAGS.do_lower_case),
                        FLAGS.max_seq_length, task, FLAGS.use_crf)
      logging.info("raw-text SavedModel exported to %s", path)
    except NotBioError as e:  # a bio task with other tags: the checkpoint is still written
      logging.warning("no raw-text SavedModel: %s", e)

  def predict(split, batch_size):
    examples = task.read_examples(FLAGS.data_dir, split)
    features = nf.convert_examples(examples, tokenizer, FLAGS.max_seq_length, task.labels)
    record = os.path.join(FLAGS.output_dir, f"{split}.tf_record")
    nf.write_features(record, features)
    names = ["logits"] + (["transitions"] if FLAGS.use_crf else [])
    outputs = training.predict(strategy, model,
                               input_pipeline.prediction_dataset([record], parse, batch_size), names)
    label_mask = np.stack([f.arrays["label_mask"] for f in features])
    token_predictions = nf.decode(outputs["logits"], outputs.get("transitions"), label_mask,
                                  FLAGS.use_crf)
    return examples, nf.word_tags(examples, features, token_predictions, task.labels)

  suffix = "json" if task.output_format == "cluener" else "txt"
  if FLAGS.do_eval:
    examples, predicted = predict("dev", FLAGS.eval_batch_size)
    results = ner_metrics.entity_scores([e.tags for e in examples], predicted)
    results["global_step"] = trainer.step
    training.write_results_file(os.path.join(FLAGS.output_dir, "eval_results.txt"), results)
    ner.write_predictions(task, examples, predicted,
                          os.path.join(FLAGS.output_dir, f"eval_predictions.{suffix}"), True)
    logging.info("***** Eval results *****  precision %.4f recall %.4f f1 %.4f",
                 results["precision"], results["recall"], results["f1"])
  if FLAGS.do_predict:
    examples, predicted = predict("test", FLAGS.predict_batch_size)
    ner.write_predictions(task, examples, predicted,
                          os.path.join(FLAGS.output_dir, f"test_predictions.{suffix}"), False)


def run():
  errors.run_program(main)


if __name__ == "__main__":
  run()
