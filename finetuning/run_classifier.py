"""Fine-tunes BERT for sentence (pair) classification or regression, as Google's run_classifier.py.

    # GLUE MRPC from Google's BERT-Base
    python -m finetuning.run_classifier --task_name=MRPC --do_train --do_eval \
        --data_dir=glue_data/MRPC --model_dir=uncased_L-12_H-768_A-12 \
        --max_seq_length=128 --train_batch_size=32 --learning_rate=2e-5 --num_train_epochs=3 \
        --output_dir=out/mrpc

    # ChnSentiCorp from Chinese RoBERTa-wwm-ext, on a Cloud TPU
    bert-run-classifier --task_name=chnsenticorp --do_train --do_eval --do_predict \
        --data_dir=gs://b/chnsenticorp --model_dir=gs://b/chinese_roberta_wwm_ext_L-12_H-768_A-12 \
        --output_dir=gs://b/out/chnsenticorp --use_tpu --tpu_name=my-tpu

Outputs in output_dir: checkpoints (a run resumes from them), TensorBoard summaries,
eval_results.txt (`key = value`: eval_accuracy and the task's metrics, eval_loss, global_step,
loss), test_results.tsv (class probabilities per line, as the original) with a submission file
in the GLUE / CLUE format, a SavedModel that takes raw text (saved_model/), and the fine-tuned
model as an original-format checkpoint (export/).
"""
import json
import os

from absl import app
from absl import flags
from absl import logging

from bert_tf import errors
from finetuning import common_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("task_name", None, "Task (cola, sst-2, mrpc, sts-b, qqp, mnli, mnli-mm, qnli, "
                    "rte, wnli, xnli, chnsenticorp, lcqmc, bq, thucnews, tnews, iflytek, afqmc, "
                    "cmnli, ocnli, generic); case-insensitive.")
flags.DEFINE_string("data_dir", None, "Folder with the task's files as distributed.")
flags.DEFINE_integer("max_seq_length", 128, "Tokens per example after WordPiece, [CLS] and [SEP].")
flags.DEFINE_bool("do_eval", False, "Evaluate on the dev set.")
flags.DEFINE_integer("eval_batch_size", 8, "Global batch size for evaluation.")
flags.DEFINE_string("xnli_language", "zh", "XNLI language (original layout: filters by it).")
flags.DEFINE_string("text_a_column", "text_a", "generic task: column of the first text.")
flags.DEFINE_string("text_b_column", None, "generic task: column of the second text, if any.")
flags.DEFINE_string("label_column", "label", "generic task: column of the label.")
flags.DEFINE_list("labels", None, "generic task: labels in id order (default: sorted distinct "
                  "labels of the train file).")
flags.DEFINE_string("id_column", None, "generic task: id column used in the predictions.")
flags.DEFINE_bool("is_regression", False, "generic task: the label is a number.")
flags.DEFINE_bool("export_saved_model", True, "After training, export a raw-text SavedModel.")
common_flags.define_model_flags()
common_flags.define_run_flags()
flags.mark_flags_as_required(["task_name", "data_dir", "output_dir"])


def make_task():
  from finetuning.tasks.classification import get_task  # pylint: disable=import-outside-toplevel
  name = FLAGS.task_name.lower()
  if name == "xnli":
    return get_task(name, language=FLAGS.xnli_language)
  if name != "generic":
    return get_task(name)
  task = get_task(name, text_a_column=FLAGS.text_a_column, text_b_column=FLAGS.text_b_column,
                  label_column=FLAGS.label_column, labels=FLAGS.labels, id_column=FLAGS.id_column,
                  is_regression=FLAGS.is_regression)
  labels_file = os.path.join(FLAGS.output_dir, "labels.json")
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  if not task.labels and not task.is_regression:
    if tf.io.gfile.exists(labels_file):          # a predict-only run after training
      with tf.io.gfile.GFile(labels_file) as f:
        task.labels = tuple(json.load(f))
    else:
      task.infer_labels(FLAGS.data_dir)
      tf.io.gfile.makedirs(FLAGS.output_dir)
      with tf.io.gfile.GFile(labels_file, "w") as f:
        json.dump(list(task.labels), f)
  logging.info("generic task labels: %s", list(task.labels))
  return task


def check_flags():
  if not (FLAGS.do_train or FLAGS.do_eval or FLAGS.do_predict):
    raise app.UsageError("at least one of --do_train, --do_eval or --do_predict must be set")
  if FLAGS.max_seq_length < 3:
    raise app.UsageError("--max_seq_length must be at least 3")
  common_flags.check_run_flags("eval_batch_size")


def check_input_files(task):
  """Reads the splits the run reads after training, so that a bad dev or test row fails now
  rather than after the training time is spent (each row error names its file and line)."""
  if FLAGS.do_eval:
    task.read_examples(FLAGS.data_dir, "dev")
  if FLAGS.do_predict:
    task.read_examples(FLAGS.data_dir, "test")


def write_predictions(task, examples, logits, output_dir):
  """test_results.tsv (the original's: probabilities per line, tab-separated; the score for
  regression) and the benchmark's submission file."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from finetuning.metrics import softmax  # pylint: disable=import-outside-toplevel
  with tf.io.gfile.GFile(os.path.join(output_dir, "test_results.tsv"), "w") as f:
    rows = logits[:, :1] if task.is_regression else softmax(logits)
    for row in rows:
      f.write("\t".join(str(float(p)) for p in row) + "\n")
  if task.is_regression:
    predicted = [f"{float(v):.3f}" for v in logits[:, 0]]
  else:
    predicted = [task.labels[i] for i in np.argmax(logits, axis=-1)]
  style, name = task.submission or ("tsv", f"{task.name}_predictions.tsv")
  path = os.path.join(output_dir, name)
  with tf.io.gfile.GFile(path, "w") as f:
    if style == "clue":
      for example, label in zip(examples, predicted):
        guid = int(example.guid) if str(example.guid).isdigit() else example.guid
        f.write(json.dumps({"id": guid, "label": label}, ensure_ascii=False) + "\n")
    else:
      f.write("index\tprediction\n")
      for example, label in zip(examples, predicted):
        f.write(f"{example.guid}\t{label}\n")
  logging.info("predictions written to %s and test_results.tsv", path)
  return path


def main(argv):
  del argv
  check_flags()
  config_file, vocab_file, init_checkpoint = common_flags.resolve_model_files()
  from bert_tf import FastTokenizer, training  # pylint: disable=import-outside-toplevel
  from finetuning import classifier_features as cf, input_pipeline, metrics  # pylint: disable=import-outside-toplevel
  from finetuning.models import BertClassifier  # pylint: disable=import-outside-toplevel
  from finetuning.objectives import ClassificationObjective  # pylint: disable=import-outside-toplevel
  from finetuning.serving import export_classifier  # pylint: disable=import-outside-toplevel

  config, strategy = common_flags.start_run(config_file, vocab_file)
  task = make_task()
  check_input_files(task)
  tokenizer = FastTokenizer(vocab_file, do_lower_case=FLAGS.do_lower_case)
  cache_dir = FLAGS.cache_dir or os.path.join(FLAGS.output_dir, "features")
  parse = cf.parse_fn(FLAGS.max_seq_length, task.is_regression)

  num_train_steps, num_warmup_steps = 1, 0
  if FLAGS.do_train:
    train_file, num_train = cf.cached_features(task, FLAGS.data_dir, "train", tokenizer,
                                               FLAGS.max_seq_length, cache_dir)
    num_train_steps, num_warmup_steps = common_flags.training_steps(num_train)
    logging.info("%d training examples: %d steps (%d warmup) at batch size %d", num_train,
                 num_train_steps, num_warmup_steps, FLAGS.train_batch_size)
  with strategy.scope():
    model = BertClassifier(config, task.num_labels(), seq_length=FLAGS.max_seq_length)
    optimizer = common_flags.create_optimizer(num_train_steps, num_warmup_steps)
  trainer = training.Trainer(strategy, model, optimizer, ClassificationObjective(task.is_regression),
                             common_flags.trainer_config(num_train_steps, strategy))
  init_fn = (training.init_fn_from(init_checkpoint, allow_missing=("output_", "cls/"))
             if init_checkpoint else None)

  dataset_fn = (input_pipeline.training_dataset_fn([train_file], parse, FLAGS.train_batch_size,
                                                  FLAGS.seed) if FLAGS.do_train else None)
  common_flags.train_or_restore(trainer, model, dataset_fn, init_fn, vocab_file)
  if FLAGS.do_train and FLAGS.export_saved_model:
    path = export_classifier(os.path.join(FLAGS.output_dir, "saved_model"), model, tokenizer,
                             FLAGS.max_seq_length, task)
    logging.info("raw-text SavedModel exported to %s", path)

  def predict(split, batch_size):
    path, count = cf.cached_features(task, FLAGS.data_dir, split, tokenizer, FLAGS.max_seq_length,
                                     cache_dir)
    dataset = input_pipeline.prediction_dataset([path], parse, batch_size)
    outputs = training.predict(strategy, model, dataset, ["logits"])
    assert len(outputs["logits"]) == count, (len(outputs["logits"]), count)
    return outputs["logits"], path

  if FLAGS.do_eval:
    logits, path = predict("dev", FLAGS.eval_batch_size)
    labels = cf.read_labels(path, FLAGS.max_seq_length, task.is_regression)
    results = metrics.evaluate(task.metrics, logits, labels, task.is_regression)
    results["global_step"] = trainer.step
    results["loss"] = results["eval_loss"]
    training.write_results_file(os.path.join(FLAGS.output_dir, "eval_results.txt"), results)
    logging.info("***** Eval results (%d examples) *****", len(labels))
    for key in sorted(results):
      logging.info("  %s = %s", key, results[key])
  if FLAGS.do_predict:
    logits, _ = predict("test", FLAGS.predict_batch_size)
    examples = task.read_examples(FLAGS.data_dir, "test")
    write_predictions(task, examples, logits, FLAGS.output_dir)


def run():
  errors.run_program(main)


if __name__ == "__main__":
  run()
