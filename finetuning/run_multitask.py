"""Fine-tunes one BERT on several tasks at once: a shared encoder, a head per task.

    python -m finetuning.run_multitask --task_list=tasks.json --model_dir=chinese_L-12_H-768_A-12 \
        --do_train --do_eval --output_dir=out/multi

tasks.json (YAML works too, with pyyaml):
    {"sampling": "temperature", "temperature": 2.0,
     "tasks": [
       {"name": "senti", "kind": "classification", "task_name": "chnsenticorp",
        "data_dir": "data/chnsenticorp", "loss_weight": 1.0},
       {"name": "ner", "kind": "tagging", "task_name": "cluener", "data_dir": "data/cluener",
        "loss_weight": 2.0},
       {"name": "reviews", "kind": "classification", "task_name": "generic",
        "data_dir": "data/reviews", "text_a_column": "text", "label_column": "label"}]}

Any run_classifier task (kind classification) or run_ner task (kind tagging) can be listed;
extra keys go to the task (generic columns, xnli language). Each training batch comes from one
task, sampled in proportion to the tasks' sizes or, with temperature sampling, to size^(1/T).
Evaluation and prediction run per task: eval_results.txt holds `<name>_<metric> = value` lines
(run_classifier's and run_ner's metrics), predictions go to output_dir/<name>/.
"""
import os

from absl import app
from absl import flags
from absl import logging

from bert_tf import errors
from finetuning import common_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("task_list", None, "JSON or YAML file listing the tasks (see the module doc).")
flags.DEFINE_integer("max_seq_length", 128, "Tokens per example (every task).")
flags.DEFINE_bool("do_eval", False, "Evaluate every task on its dev set.")
flags.DEFINE_integer("eval_batch_size", 8, "Global batch size for evaluation.")
common_flags.define_model_flags()
common_flags.define_run_flags()
flags.mark_flags_as_required(["task_list", "output_dir"])


def build_task(spec):
  if spec.kind == "classification":
    from finetuning.tasks.classification import get_task  # pylint: disable=import-outside-toplevel
    task = get_task(spec.task_name, **spec.options)
    if hasattr(task, "infer_labels"):
      task.infer_labels(spec.data_dir)
    if task.is_regression:
      raise app.UsageError(f"task {spec.name}: regression is not supported in multi-task runs")
    return task
  from finetuning.tasks import ner  # pylint: disable=import-outside-toplevel
  task = ner.get_task(spec.task_name, **spec.options)
  if hasattr(task, "infer_labels"):
    task.infer_labels(spec.data_dir)
  return task


def features_of(spec, task, split, tokenizers):
  """(examples, shared-layout arrays, NER features or None) of one task's split."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from finetuning import classifier_features as cf, multitask, ner_features as nf  # pylint: disable=import-outside-toplevel
  fast, full = tokenizers
  examples = task.read_examples(spec.data_dir, split)
  if spec.kind == "classification":
    arrays, ner_feats = cf.convert_examples(task, examples, fast, FLAGS.max_seq_length), None
  else:
    ner_feats = nf.convert_examples(examples, full, FLAGS.max_seq_length, task.labels)
    arrays = {k: np.stack([f.arrays[k] for f in ner_feats]) for k in nf.FEATURE_NAMES}
  return examples, multitask.shared_layout(arrays, spec.index, spec.kind, FLAGS.max_seq_length), ner_feats


def main(argv):
  del argv
  if not (FLAGS.do_train or FLAGS.do_eval or FLAGS.do_predict):
    raise app.UsageError("at least one of --do_train, --do_eval or --do_predict must be set")
  common_flags.check_run_flags("eval_batch_size")
  config_file, vocab_file, init_checkpoint = common_flags.resolve_model_files()
  import numpy as np  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from bert_tf import FastTokenizer, FullTokenizer, training  # pylint: disable=import-outside-toplevel
  from finetuning import input_pipeline, metrics, multitask, ner_features as nf, ner_metrics  # pylint: disable=import-outside-toplevel
  from finetuning.tasks import ner  # pylint: disable=import-outside-toplevel

  specs, sampling, temperature = multitask.load_task_list(FLAGS.task_list)
  for index, spec in enumerate(specs):
    spec.index = index
  tasks = [build_task(spec) for spec in specs]
  for spec, task in zip(specs, tasks):   # what is read after training is read now
    for split, wanted in (("dev", FLAGS.do_eval), ("test", FLAGS.do_predict)):
      if wanted:
        task.read_examples(spec.data_dir, split)
  tokenizers = (FastTokenizer(vocab_file, do_lower_case=FLAGS.do_lower_case),
                FullTokenizer(vocab_file, do_lower_case=FLAGS.do_lower_case))
  config, strategy = common_flags.start_run(config_file, vocab_file)

  num_train_steps, num_warmup_steps = 1, 0
  if FLAGS.do_train:
    train = [features_of(spec, task, "train", tokenizers)[1] for spec, task in zip(specs, tasks)]
    sizes = [len(a["input_ids"]) for a in train]
    weights = multitask.sampling_weights(sizes, sampling, temperature)
    num_train_steps, num_warmup_steps = common_flags.training_steps(sum(sizes))
    logging.info("tasks %s: %s examples, sampling weights %s, %d steps",
                 [s.name for s in specs], sizes, [round(w, 3) for w in weights], num_train_steps)
  heads = [(spec.name, spec.kind, len(task.labels)) for spec, task in zip(specs, tasks)]
  with strategy.scope():
    model = multitask.BertMultiTask(config, heads, seq_length=FLAGS.max_seq_length)
    optimizer = common_flags.create_optimizer(num_train_steps, num_warmup_steps)
  objective = multitask.MultiTaskObjective([(s.name, s.kind, s.loss_weight) for s in specs])
  trainer = training.Trainer(strategy, model, optimizer, objective,
                             common_flags.trainer_config(num_train_steps, strategy))
  prefixes = tuple(f"{s.name}/" for s in specs) + ("cls/",)
  init_fn = training.init_fn_from(init_checkpoint, allow_missing=prefixes) if init_checkpoint else None

  dataset_fn = None
  if FLAGS.do_train:
    def dataset_fn(input_context):
      batch = input_context.get_per_replica_batch_size(FLAGS.train_batch_size)
      seed = FLAGS.seed + getattr(dataset_fn, "start_step", 0)
      datasets = [tf.data.Dataset.from_tensor_slices(arrays).repeat().shuffle(10000, seed=seed)
                  .batch(batch, drop_remainder=True) for arrays in train]
      return tf.data.Dataset.sample_from_datasets(datasets, weights, seed=seed).prefetch(2)
    dataset_fn.global_batch_size = FLAGS.train_batch_size
  common_flags.train_or_restore(trainer, model, dataset_fn, init_fn, vocab_file)

  def predict(spec, task, split, batch_size):
    examples, arrays, ner_feats = features_of(spec, task, split, tokenizers)
    dataset = input_pipeline.indexed_and_padded(
        tf.data.Dataset.from_tensor_slices(arrays).batch(batch_size), batch_size)
    logits = training.predict(strategy, model, dataset, [f"{spec.name}_logits"])[f"{spec.name}_logits"]
    if spec.kind == "classification":
      return examples, logits, arrays["class_label"], None
    tags = nf.word_tags(examples, ner_feats, np.argmax(logits, axis=-1), task.labels)
    return examples, logits, None, tags

  results = {"global_step": trainer.step}
  for spec, task in zip(specs, tasks):
    folder = os.path.join(FLAGS.output_dir, spec.name)
    os.makedirs(folder, exist_ok=True)
    if FLAGS.do_eval:
      examples, logits, labels, tags = predict(spec, task, "dev", FLAGS.eval_batch_size)
      scores = (metrics.evaluate(task.metrics, logits, labels, False)
                if spec.kind == "classification"
                else ner_metrics.entity_scores([e.tags for e in examples], tags))
      results.update({f"{spec.name}_{k}": v for k, v in scores.items()})
      if tags is not None:
        suffix = "json" if task.output_format == "cluener" else "txt"
        ner.write_predictions(task, examples, tags, os.path.join(folder, f"eval_predictions.{suffix}"),
                              True)
    if FLAGS.do_predict:
      examples, logits, _, tags = predict(spec, task, "test", FLAGS.predict_batch_size)
      if tags is None:
        with open(os.path.join(folder, "test_results.tsv"), "w", encoding="utf-8") as f:
          for row in metrics.softmax(logits):
            f.write("\t".join(str(float(p)) for p in row) + "\n")
      else:
        suffix = "json" if task.output_format == "cluener" else "txt"
        ner.write_predictions(task, examples, tags, os.path.join(folder, f"test_predictions.{suffix}"),
                              False)
  if FLAGS.do_eval:
    training.write_results_file(os.path.join(FLAGS.output_dir, "eval_results.txt"), results)
    logging.info("***** Eval results *****  %s", results)


def run():
  errors.run_program(main)


if __name__ == "__main__":
  run()
