"""Pretrains BERT on TFRecords of create_pretraining_data: Cloud TPU, GPUs or CPU, one code path.

    # Cloud TPU v3-8, BERT-base phase 1 (see tpu_configs/ for ready recipes)
    python -m pretraining.run_pretraining --flagfile=tpu_configs/bert_base_phase1_v3-8.flags \
        --input_file='gs://b/records/wiki.tfrecord*' --output_dir=gs://b/bert_base \
        --tpu_name=my-tpu

    # Continued pretraining from Google's Chinese BERT, LAMB (BERT-wwm style), 8 GPUs, bf16
    bert-run-pretraining --bert_config_file=chinese_L-12_H-768_A-12/bert_config.json \
        --init_checkpoint=chinese_L-12_H-768_A-12/bert_model.ckpt \
        --vocab_file=chinese_L-12_H-768_A-12/vocab.txt --input_file='zh.tfrecord*' \
        --output_dir=out/wwm --optimizer=lamb --learning_rate=1e-4 --train_batch_size=2560 \
        --num_gpus=8 --precision=mixed_bfloat16

A run resumes from the latest checkpoint in output_dir (model, optimizer, step, input
position). At the end the model is also exported to output_dir/export as an original-format
checkpoint with bert_config.json and vocab.txt. --do_eval writes output_dir/eval_results.txt as
the original does. max_seq_length and max_predictions_per_seq must equal the values used by
create_pretraining_data (checked before training starts).
"""
import json
import os

from absl import app
from absl import flags
from absl import logging

from bert_tf import errors

FLAGS = flags.FLAGS
# The original's flags.
flags.DEFINE_string("bert_config_file", None, "bert_config.json of the model to pretrain.")
flags.DEFINE_string("input_file", None, "TFRecord files or globs, comma-separated.")
flags.DEFINE_string("output_dir", None, "Checkpoints, summaries, eval_results.txt and the export.")
flags.DEFINE_string("init_checkpoint", None, "Original TF1 checkpoint (e.g. Google's BERT) or one "
                    "of ours to start from.")
flags.DEFINE_integer("max_seq_length", 128, "Must equal create_pretraining_data's value.")
flags.DEFINE_integer("max_predictions_per_seq", 20, "Must equal create_pretraining_data's value.")
flags.DEFINE_bool("do_train", False, "Train.")
flags.DEFINE_bool("do_eval", False, "Evaluate over max_eval_steps batches.")
flags.DEFINE_integer("train_batch_size", 32, "Global batch size for training.")
flags.DEFINE_integer("eval_batch_size", 8, "Global batch size for evaluation.")
flags.DEFINE_float("learning_rate", 5e-5, "Peak learning rate.")
flags.DEFINE_integer("num_train_steps", 100000, "Optimizer steps.")
flags.DEFINE_integer("num_warmup_steps", 10000, "Linear warmup steps.")
flags.DEFINE_integer("save_checkpoints_steps", 1000, "Checkpoint every this many steps.")
flags.DEFINE_integer("iterations_per_loop", 1000, "Steps per host call (one compiled loop).")
flags.DEFINE_integer("max_eval_steps", 100, "Evaluation batches.")
flags.DEFINE_bool("use_tpu", False, "Run on Cloud TPU (needs --tpu_name).")
flags.DEFINE_string("tpu_name", None, "Cloud TPU name or grpc:// address.")
flags.DEFINE_string("tpu_zone", None, "Zone of the TPU.")
flags.DEFINE_string("gcp_project", None, "Project of the TPU.")
flags.DEFINE_integer("num_tpu_cores", 8, "TPU cores; checked against the replicas TPUStrategy "
                     "finds.")
# New flags.
flags.DEFINE_string("vocab_file", None, "vocab.txt: checked against vocab_size and copied to the export.")
flags.DEFINE_enum("optimizer", "adamw", ["adamw", "lamb"], "adamw: the original AdamWeightDecay; "
                  "lamb: LAMB (large batches; BERT-wwm).")
flags.DEFINE_float("weight_decay", 0.01, "Decoupled weight decay (not on LayerNorm and biases).")
flags.DEFINE_float("beta_1", 0.9, "Adam/LAMB beta_1.")
flags.DEFINE_float("beta_2", 0.999, "Adam/LAMB beta_2.")
flags.DEFINE_float("epsilon", 1e-6, "Adam/LAMB epsilon.")
flags.DEFINE_float("clip_norm", 1.0, "Global-norm gradient clipping (0: none).")
flags.DEFINE_enum("precision", "float32", ["float32", "mixed_bfloat16", "mixed_float16"],
                  "Compute precision; mixed_float16 uses dynamic loss scaling.")
flags.DEFINE_integer("gradient_accumulation_steps", 1, "Micro-batches per optimizer step "
                     "(train_batch_size is per micro-batch).")
flags.DEFINE_bool("use_xla", False, "Compile the training step (forward, backward and the "
                  "optimizer update) with XLA (always on TPU). Shapes are then static, so "
                  "padding tokens are computed.")
flags.DEFINE_bool("xla_kernels", True, "Run the element-wise parts of the training step as "
                  "XLA-fused kernels where measured faster (CPUs; bert_tf.kernels); "
                  "--noxla_kernels: plain TensorFlow ops everywhere (a device without XLA).")
flags.DEFINE_bool("skip_padding", None, "Train on the real tokens only (dynamic shapes; never "
                  "with --use_xla or on TPU). Default: on CPUs, where it was measured faster; off "
                  "on GPUs (a device-to-host copy per step).")
flags.DEFINE_integer("num_cpu_replicas", 0, "Rehearse a multi-replica run on one machine: "
                     "MirroredStrategy over this many logical CPU devices (batch splitting, "
                     "cross-replica clipping, checkpoints, resume), as on a pod or GPU host.")
flags.DEFINE_integer("keep_checkpoint_max", 5, "Checkpoints kept.")
flags.DEFINE_integer("num_gpus", 0, "GPUs to mirror over (>1: MirroredStrategy). With a "
                     "multi-worker TF_CONFIG every worker mirrors over its own GPUs.")
flags.DEFINE_bool("next_sentence_prediction", True, "False for records made without the "
                  "next-sentence task (RoBERTa style): no NSP loss.")
flags.DEFINE_integer("seed", 12345, "Seed of the initial weights, dropout and input shuffling.")
flags.DEFINE_bool("dry_run", False, "Check the flags for consistency (and, when the config and "
                  "input files exist, run the preflight on them), print them and stop (no "
                  "devices or TPU are touched).")
flags.mark_flags_as_required(["bert_config_file", "input_file", "output_dir"])


def check_flag_consistency():
  """Consistency of the flags alone (a recipe in tpu_configs/ must pass); raises FlagError
  (a ValueError)."""
  positive = ("train_batch_size", "eval_batch_size", "num_train_steps", "iterations_per_loop",
              "save_checkpoints_steps", "max_seq_length", "max_predictions_per_seq")
  problems = [f"{name}={getattr(FLAGS, name)} must be positive" for name in positive
              if getattr(FLAGS, name) <= 0]
  if problems:
    raise errors.FlagError("; ".join(problems))
  if not FLAGS.do_train and not FLAGS.do_eval:
    problems.append("at least one of --do_train or --do_eval must be set")
  if FLAGS.num_warmup_steps >= FLAGS.num_train_steps:
    problems.append(f"num_warmup_steps={FLAGS.num_warmup_steps} is not below "
                    f"num_train_steps={FLAGS.num_train_steps}")
  share = FLAGS.max_predictions_per_seq / FLAGS.max_seq_length
  if not 0.1 <= share <= 0.25:
    problems.append(f"max_predictions_per_seq={FLAGS.max_predictions_per_seq} does not fit "
                    f"max_seq_length={FLAGS.max_seq_length} at masked_lm_prob 0.15 "
                    f"(expected about {round(0.15 * FLAGS.max_seq_length)} or a bit more)")
  devices = planned_replicas()
  for name in ("train_batch_size", "eval_batch_size"):
    if getattr(FLAGS, name) % devices:
      problems.append(f"{name}={getattr(FLAGS, name)} is not a multiple of the {devices} devices")
  if FLAGS.save_checkpoints_steps % FLAGS.iterations_per_loop and (
      FLAGS.save_checkpoints_steps > FLAGS.iterations_per_loop):
    problems.append(f"save_checkpoints_steps={FLAGS.save_checkpoints_steps} is not a multiple "
                    f"of iterations_per_loop={FLAGS.iterations_per_loop}")
  if FLAGS.learning_rate <= 0 or FLAGS.gradient_accumulation_steps < 1:
    problems.append("learning_rate must be positive and gradient_accumulation_steps >= 1")
  if os.path.exists(FLAGS.bert_config_file):
    from bert_tf import BertConfig  # pylint: disable=import-outside-toplevel
    config = BertConfig.from_json_file(FLAGS.bert_config_file)
    if FLAGS.max_seq_length > config.max_position_embeddings:
      problems.append(f"max_seq_length={FLAGS.max_seq_length} exceeds max_position_embeddings="
                      f"{config.max_position_embeddings} of {FLAGS.bert_config_file}")
  if problems:
    raise errors.FlagError("inconsistent flags: " + "; ".join(problems))


def preflight(config, files, replicas, tpu):
  """Checks that save hours of a failed run; each message says what to change.

  Args:
    config: BertConfig of --bert_config_file.
    files: the input files.
    replicas: the replica count the run will have (TPU cores, GPUs, ...).
    tpu: whether the run is on Cloud TPU.
  """
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from pretraining import input_pipeline  # pylint: disable=import-outside-toplevel
  from bert_tf import files as files_lib  # pylint: disable=import-outside-toplevel
  from pretraining import record_stats  # pylint: disable=import-outside-toplevel
  files_lib.check_output_dir(FLAGS.output_dir)
  input_pipeline.check_record_lengths(files, FLAGS.max_seq_length, FLAGS.max_predictions_per_seq)
  record_stats.verify_files(files)
  if FLAGS.vocab_file:
    with tf.io.gfile.GFile(FLAGS.vocab_file, "rb") as f:   # gs:// paths too
      size = sum(1 for _ in f)
    if size != config.vocab_size:
      raise errors.InputFileError(f"{FLAGS.bert_config_file} has vocab_size={config.vocab_size} "
                                  f"but {FLAGS.vocab_file} has {size} lines; use the matching pair")
  if tpu and FLAGS.tpu_name != "local":
    # A TPU node reads from its own servers, which cannot see this machine's disk; on a TPU VM
    # (--tpu_name=local) the host that runs this program feeds the TPU and reads its own disk.
    local = [p for p in [FLAGS.output_dir, *files, FLAGS.init_checkpoint or "gs://"]
             if not str(p).startswith("gs://")]
    if local:
      raise errors.FlagError(f"on a Cloud TPU node every path must be on gs:// (the TPU cannot "
                             f"read this machine's disk): {local[:3]}")
  if tpu and FLAGS.num_tpu_cores != replicas:
    raise errors.FlagError(f"--num_tpu_cores={FLAGS.num_tpu_cores} but the TPU has {replicas} "
                           "cores; set --num_tpu_cores to the slice's core count")
  for name in ("train_batch_size", "eval_batch_size"):
    if getattr(FLAGS, name) % replicas:
      raise errors.FlagError(f"--{name}={getattr(FLAGS, name)} must be a multiple of the "
                             f"{replicas} replicas")


def planned_replicas():
  """The replica count the flags ask for (the strategy's, before any device is touched)."""
  return FLAGS.num_tpu_cores if FLAGS.use_tpu else max(FLAGS.num_gpus, FLAGS.num_cpu_replicas, 1)


# What a run's checkpoints depend on: resuming with other values would train another model.
RESUME_FLAGS = ("max_seq_length", "max_predictions_per_seq", "next_sentence_prediction")


def run_record(config):
  """What flags.json keeps of a run: the resolved flags and the model's config."""
  return dict(FLAGS.flag_values_dict(), bert_config=config.to_dict())


def check_resume(config):
  """Before resuming from output_dir: the run there must be this run (same lengths and model)
  and not already past num_train_steps. The classic mistake is starting phase 2 in phase 1's
  directory, which would restore step 900000 of a 100000-step schedule and train nothing."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from bert_tf import training  # pylint: disable=import-outside-toplevel
  latest = tf.train.latest_checkpoint(FLAGS.output_dir)
  if not latest:
    return
  advice = (f"to start a new phase (e.g. phase 2 at another length), pass that run's checkpoint "
            f"as --init_checkpoint={latest} and use a fresh --output_dir")
  step = training.checkpoint_step(latest)
  if step is not None and step > FLAGS.num_train_steps:
    raise errors.FlagError(f"--output_dir={FLAGS.output_dir} holds a run at step {step}, past "
                           f"--num_train_steps={FLAGS.num_train_steps}; {advice}")
  path = os.path.join(FLAGS.output_dir, "flags.json")
  if not tf.io.gfile.exists(path):
    return
  with tf.io.gfile.GFile(path) as f:
    saved = json.load(f)
  wanted = run_record(config)
  differ = [f"{name}={saved[name]} there, {wanted[name]} here" for name in
            (*RESUME_FLAGS, "bert_config") if name in saved and saved[name] != wanted[name]]
  if differ:
    raise errors.FlagError(f"--output_dir={FLAGS.output_dir} holds a run with other settings "
                           f"({'; '.join(differ)}): resuming it would train another model; {advice}")


def dataset_fn_for(files, global_batch_size, is_training):
  from pretraining import input_pipeline  # pylint: disable=import-outside-toplevel

  def dataset_fn(input_context):
    batch = input_context.get_per_replica_batch_size(global_batch_size)
    # start_step: set by the trainer when it resumes without a saved input position.
    seed = FLAGS.seed + getattr(dataset_fn, "start_step", 0)
    return input_pipeline.make_dataset(files, batch, FLAGS.max_seq_length,
                                       FLAGS.max_predictions_per_seq, is_training=is_training,
                                       input_context=input_context, seed=seed)
  dataset_fn.global_batch_size = global_batch_size
  return dataset_fn


def main(argv):
  del argv
  check_flag_consistency()
  if FLAGS.dry_run:
    from pretraining import input_pipeline  # pylint: disable=import-outside-toplevel
    from bert_tf import BertConfig  # pylint: disable=import-outside-toplevel
    if os.path.exists(FLAGS.bert_config_file) and input_pipeline.any_file_matches(FLAGS.input_file):
      # With the run's files at hand, the preflight too (records, vocabulary, paths, batches).
      preflight(BertConfig.from_json_file(FLAGS.bert_config_file),
                input_pipeline.list_input_files(FLAGS.input_file), planned_replicas(),
                FLAGS.use_tpu)
    print(json.dumps(FLAGS.flag_values_dict(), default=str, sort_keys=True))
    return
  if FLAGS.use_tpu and not FLAGS.tpu_name:
    raise app.UsageError("--use_tpu needs --tpu_name")
  import keras  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from bert_tf import BertConfig, BertPretrainer, distribute, kernels, optimization, training  # pylint: disable=import-outside-toplevel
  from bert_tf.checkpoint.original import export_pretrained  # pylint: disable=import-outside-toplevel
  from bert_tf.config import claim_model_dir  # pylint: disable=import-outside-toplevel
  from pretraining import input_pipeline, task as task_lib  # pylint: disable=import-outside-toplevel

  config = BertConfig.from_json_file(FLAGS.bert_config_file)
  # The strategy first: --num_cpu_replicas splits the CPU, which must precede any TF device use.
  strategy = distribute.get_strategy(tpu=FLAGS.tpu_name if FLAGS.use_tpu else None,
                                     tpu_zone=FLAGS.tpu_zone, gcp_project=FLAGS.gcp_project,
                                     num_gpus=FLAGS.num_gpus,
                                     num_cpu_replicas=FLAGS.num_cpu_replicas)
  files = input_pipeline.list_input_files(FLAGS.input_file)
  preflight(config, files, strategy.num_replicas_in_sync, distribute.is_tpu(strategy))
  check_resume(config)
  chief = distribute.is_chief(strategy)
  if chief:   # only the chief writes (test_two_workers_write_one_set_of_files)
    tf.io.gfile.makedirs(FLAGS.output_dir)
    claim_model_dir(config, FLAGS.output_dir)   # refuses checkpoints of other shapes
    training.write_json_file(os.path.join(FLAGS.output_dir, "flags.json"), run_record(config))
  policy = kernels.configure(strategy, skip_padding=FLAGS.skip_padding,
                             fused_kernels=FLAGS.xla_kernels)
  logging.info("%d replica(s) on %s; kernels: %s", strategy.num_replicas_in_sync,
               kernels.current_device(), policy)
  if FLAGS.precision != "float32":
    keras.mixed_precision.set_global_policy(FLAGS.precision)
  keras.utils.set_random_seed(FLAGS.seed)   # the same initial weights and dropout masks per seed
  with strategy.scope():
    model = BertPretrainer(config, seq_length=FLAGS.max_seq_length,
                           max_predictions_per_seq=FLAGS.max_predictions_per_seq)
    optimizer = optimization.create_optimizer(
        FLAGS.optimizer, FLAGS.learning_rate, FLAGS.num_train_steps, FLAGS.num_warmup_steps,
        FLAGS.weight_decay, FLAGS.beta_1, FLAGS.beta_2, FLAGS.epsilon, FLAGS.clip_norm)
    if FLAGS.precision == "mixed_float16":
      optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
  trainer = training.Trainer(
      strategy, model, optimizer, task_lib.PretrainingTask(FLAGS.next_sentence_prediction),
      training.TrainerConfig(
          model_dir=FLAGS.output_dir, num_train_steps=FLAGS.num_train_steps,
          steps_per_loop=FLAGS.iterations_per_loop,
          save_checkpoints_steps=FLAGS.save_checkpoints_steps,
          keep_checkpoint_max=FLAGS.keep_checkpoint_max,
          gradient_accumulation_steps=FLAGS.gradient_accumulation_steps,
          jit_compile=FLAGS.use_xla or distribute.is_tpu(strategy)))
  if FLAGS.do_train:
    trainer.train(dataset_fn_for(files, FLAGS.train_batch_size, True),
                  init_fn=(training.init_fn_from(FLAGS.init_checkpoint) if FLAGS.init_checkpoint
                           else None))
    if chief:
      export_dir = os.path.join(FLAGS.output_dir, "export")
      export_pretrained(model, export_dir, vocab_file=FLAGS.vocab_file)
      logging.info("exported the model as an original checkpoint to %s", export_dir)
  if FLAGS.do_eval:
    results = trainer.evaluate(dataset_fn_for(files, FLAGS.eval_batch_size, False),
                               FLAGS.max_eval_steps, restore=not FLAGS.do_train)
    results["global_step"] = trainer.step
    if chief:
      path = os.path.join(FLAGS.output_dir, "eval_results.txt")
      training.write_results_file(path, results)
      logging.info("eval results (%s): %s", path, results)


def run():
  errors.run_program(main)


if __name__ == "__main__":
  run()
