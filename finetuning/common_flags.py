"""Flags shared by the fine-tuning programs (run_classifier, run_squad, run_ner, ...), with the
original names and defaults, and the few helpers that turn them into objects. Only programs
import this module; library code takes plain arguments.
"""
import os
import re

from absl import flags
from absl import logging

from bert_tf import errors, files

FLAGS = flags.FLAGS


def define_model_flags():
  flags.DEFINE_string("bert_config_file", None, "bert_config.json of the pretrained model.")
  flags.DEFINE_string("vocab_file", None, "vocab.txt of the pretrained model.")
  flags.DEFINE_string("init_checkpoint", None, "Original checkpoint (Google's BERT, BERT-wwm, ...) "
                      "or one of ours to start from.")
  flags.DEFINE_string("model_dir", None, "A released model folder (bert_config.json, vocab.txt, "
                      "bert_model.ckpt) in place of the three flags above, or a Hugging Face "
                      "one (config.json, model.safetensors, vocab.txt).")
  flags.DEFINE_bool("do_lower_case", True, "Lower-case the input (uncased and Chinese models).")


def define_run_flags(train_batch_size=32, learning_rate=5e-5, num_train_epochs=3.0):
  flags.DEFINE_string("output_dir", None, "Checkpoints, summaries, results and exports.")
  flags.DEFINE_bool("do_train", False, "Fine-tune.")
  flags.DEFINE_bool("do_predict", False, "Predict.")
  flags.DEFINE_integer("train_batch_size", train_batch_size, "Global training batch size.")
  flags.DEFINE_integer("predict_batch_size", 8, "Global batch size for prediction.")
  flags.DEFINE_float("learning_rate", learning_rate, "Peak learning rate (AdamWeightDecay).")
  flags.DEFINE_float("num_train_epochs", num_train_epochs, "Training epochs.")
  flags.DEFINE_float("warmup_proportion", 0.1, "Share of the steps with linear warmup.")
  flags.DEFINE_integer("save_checkpoints_steps", 1000, "Checkpoint every this many steps.")
  flags.DEFINE_integer("iterations_per_loop", 1000, "Steps per host call (one compiled loop).")
  # Cloud TPU, as the original.
  flags.DEFINE_bool("use_tpu", False, "Run on Cloud TPU (needs --tpu_name).")
  flags.DEFINE_string("tpu_name", None, "Cloud TPU name or grpc:// address.")
  flags.DEFINE_string("tpu_zone", None, "Zone of the TPU.")
  flags.DEFINE_string("gcp_project", None, "Project of the TPU.")
  flags.DEFINE_string("master", None, "Unused (TF1 TPU master); --tpu_name resolves the TPU.")
  flags.DEFINE_integer("num_tpu_cores", 8, "TPU cores (informational: TPUStrategy finds them).")
  # New: distribution, precision, optimizer.
  flags.DEFINE_integer("num_gpus", 0, "GPUs to mirror over (>1: MirroredStrategy). With a "
                       "multi-worker TF_CONFIG every worker mirrors over its own GPUs.")
  flags.DEFINE_integer("num_cpu_replicas", 0, "Rehearse a multi-replica run on one machine: "
                       "MirroredStrategy over this many logical CPU devices.")
  flags.DEFINE_bool("skip_padding", None, "Train, evaluate and predict on the real tokens only "
                    "(dynamic shapes; never with --use_xla or on TPU; bert_tf.kernels). Default: "
                    "on CPUs, where it was measured faster; off on GPUs.")
  flags.DEFINE_enum("precision", "float32", ["float32", "mixed_bfloat16", "mixed_float16"],
                    "Compute precision; mixed_float16 uses dynamic loss scaling.")
  flags.DEFINE_bool("use_xla", False, "Compile the training step (forward, backward and the "
                    "optimizer update) with XLA (always on TPU).")
  flags.DEFINE_bool("xla_kernels", True, "Run the element-wise parts of the training step as "
                    "XLA-fused kernels where measured faster (CPUs; bert_tf.kernels); "
                    "--noxla_kernels: plain TensorFlow ops everywhere.")
  flags.DEFINE_enum("optimizer", "adamw", ["adamw", "lamb"], "adamw: the original "
                    "AdamWeightDecay; lamb: LAMB.")
  flags.DEFINE_float("weight_decay", 0.01, "Decoupled weight decay (not on LayerNorm and biases).")
  flags.DEFINE_float("clip_norm", 1.0, "Global-norm gradient clipping (0: none).")
  flags.DEFINE_integer("gradient_accumulation_steps", 1, "Micro-batches per optimizer step.")
  flags.DEFINE_integer("keep_checkpoint_max", 5, "Checkpoints kept.")
  flags.DEFINE_integer("seed", 12345, "Seed of the input shuffling and the head's initializer.")
  flags.DEFINE_string("cache_dir", None, "Where converted features are cached (default: "
                      "output_dir/features); share it between runs to convert once.")


def check_run_flags(*batch_flags):
  """Flags every fine-tuning run needs right, checked before any file is read or written:
  positive batch sizes and epochs, and an --output_dir that is (or can be made) a writable
  folder. batch_flags: further batch-size flags of the program (eval_batch_size, ...)."""
  names = ("train_batch_size", "predict_batch_size", *batch_flags)
  errors.check_positive(**{name: getattr(FLAGS, name) for name in names})
  errors.check_positive(num_train_epochs=FLAGS.num_train_epochs,
                        iterations_per_loop=FLAGS.iterations_per_loop,
                        save_checkpoints_steps=FLAGS.save_checkpoints_steps,
                        max_seq_length=FLAGS.max_seq_length)
  files.check_output_dir(FLAGS.output_dir)


def resolve_model_files():
  """(bert_config_file, vocab_file, init_checkpoint) from the flags or --model_dir."""
  config_file, vocab_file, checkpoint = FLAGS.bert_config_file, FLAGS.vocab_file, FLAGS.init_checkpoint
  if FLAGS.model_dir:
    folder = FLAGS.model_dir
    if (not os.path.exists(os.path.join(folder, "bert_config.json")) and
        os.path.exists(os.path.join(folder, "config.json"))):
      folder = _original_from_huggingface(folder)
    config_file = config_file or os.path.join(folder, "bert_config.json")
    vocab_file = vocab_file or os.path.join(folder, "vocab.txt")
    if checkpoint is None:
      import tensorflow as tf  # pylint: disable=import-outside-toplevel
      if tf.io.gfile.exists(os.path.join(folder, "bert_model.ckpt.index")):
        checkpoint = os.path.join(folder, "bert_model.ckpt")
  missing = [name for name, value in (("bert_config_file", config_file), ("vocab_file", vocab_file))
             if not value]
  if missing:
    raise flags.ValidationError(f"set --{' and --'.join(missing)}, or --model_dir to a released "
                                "model folder")
  check_case_matches_checkpoint(checkpoint or FLAGS.model_dir, FLAGS.do_lower_case)
  return config_file, vocab_file, checkpoint


def _original_from_huggingface(model_dir):
  """A Hugging Face --model_dir (config.json, model.safetensors, vocab.txt) converted to an
  original folder in a temporary folder (removed at exit), which the run then reads as usual.
  --do_lower_case follows the folder's tokenizer_config.json unless given on the command line,
  where it must agree."""
  import atexit  # pylint: disable=import-outside-toplevel
  import shutil  # pylint: disable=import-outside-toplevel
  import tempfile  # pylint: disable=import-outside-toplevel
  from bert_tf.checkpoint import huggingface  # pylint: disable=import-outside-toplevel
  from bert_tf.tokenization import model_vocab_file  # pylint: disable=import-outside-toplevel
  huggingface.detect_format(model_dir)   # names a missing model.safetensors or vocab.txt
  model = huggingface.read_huggingface(model_dir)
  if model.do_lower_case is not None:
    if FLAGS["do_lower_case"].present and FLAGS.do_lower_case != model.do_lower_case:
      raise flags.ValidationError(
          f"--do_lower_case={FLAGS.do_lower_case} but {model_dir}/tokenizer_config.json says "
          f"do_lower_case={str(model.do_lower_case).lower()}")
    FLAGS.do_lower_case = model.do_lower_case
  folder = tempfile.mkdtemp(prefix="bert_tf_from_hf_")
  atexit.register(shutil.rmtree, folder, ignore_errors=True)
  huggingface.write_original(model, folder, model_vocab_file(model_dir))
  logging.info("--model_dir=%s is a Hugging Face %s folder: converted to an original checkpoint "
               "in %s", model_dir, model.architecture, folder)
  return folder


# The original's validate_case_matches_checkpoint: the released model names tell their casing.
_LOWER_CASED = ("uncased_L-24_H-1024_A-16", "uncased_L-12_H-768_A-12", "multilingual_L-12_H-768_A-12",
                "chinese_L-12_H-768_A-12")
_CASED = ("cased_L-12_H-768_A-12", "cased_L-24_H-1024_A-16", "multi_cased_L-12_H-768_A-12")


def check_case_matches_checkpoint(path, do_lower_case):
  if not path:
    return
  path = str(path).rstrip("/")
  match = re.match(r"^.*?([A-Za-z0-9_-]+)/bert_model\.ckpt", path)   # the original's pattern
  model_name = match.group(1) if match else os.path.basename(path)
  if model_name in _LOWER_CASED and not do_lower_case:
    raise flags.ValidationError(f"--do_lower_case=False but {model_name} is an uncased model: "
                                "pass --do_lower_case=True")
  if model_name in _CASED and do_lower_case:
    raise flags.ValidationError(f"--do_lower_case=True but {model_name} is a cased model: pass "
                                "--do_lower_case=False")


def strategy_from_flags():
  from bert_tf import distribute  # pylint: disable=import-outside-toplevel
  if FLAGS.use_tpu and not FLAGS.tpu_name:
    raise flags.ValidationError("--use_tpu needs --tpu_name")
  return distribute.get_strategy(tpu=FLAGS.tpu_name if FLAGS.use_tpu else None,
                                 tpu_zone=FLAGS.tpu_zone, gcp_project=FLAGS.gcp_project,
                                 num_gpus=FLAGS.num_gpus, num_cpu_replicas=FLAGS.num_cpu_replicas)


def set_precision():
  if FLAGS.precision != "float32":
    import keras  # pylint: disable=import-outside-toplevel
    keras.mixed_precision.set_global_policy(FLAGS.precision)


def training_steps(num_examples):
  """(num_train_steps, num_warmup_steps) as the original: int(n / batch * epochs) and a share."""
  steps = int(num_examples / FLAGS.train_batch_size * FLAGS.num_train_epochs)
  if steps < 1:
    raise flags.ValidationError(f"{num_examples} training examples at train_batch_size="
                                f"{FLAGS.train_batch_size} for {FLAGS.num_train_epochs} epochs "
                                "make no training step")
  return steps, int(steps * FLAGS.warmup_proportion)


def create_optimizer(num_train_steps, num_warmup_steps):
  """Call inside strategy.scope()."""
  import keras  # pylint: disable=import-outside-toplevel
  from bert_tf import optimization  # pylint: disable=import-outside-toplevel
  optimizer = optimization.create_optimizer(
      FLAGS.optimizer, FLAGS.learning_rate, num_train_steps, num_warmup_steps, FLAGS.weight_decay,
      clip_norm=FLAGS.clip_norm)
  if FLAGS.precision == "mixed_float16":
    optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
  return optimizer


def trainer_config(num_train_steps, strategy):
  from bert_tf import distribute, training  # pylint: disable=import-outside-toplevel
  return training.TrainerConfig(
      model_dir=FLAGS.output_dir, num_train_steps=num_train_steps,
      steps_per_loop=FLAGS.iterations_per_loop, save_checkpoints_steps=FLAGS.save_checkpoints_steps,
      keep_checkpoint_max=FLAGS.keep_checkpoint_max,
      gradient_accumulation_steps=FLAGS.gradient_accumulation_steps,
      jit_compile=FLAGS.use_xla or distribute.is_tpu(strategy))


def save_flags():
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from bert_tf import training  # pylint: disable=import-outside-toplevel
  tf.io.gfile.makedirs(FLAGS.output_dir)
  training.write_json_file(os.path.join(FLAGS.output_dir, "flags.json"), FLAGS.flag_values_dict())
  logging.info("flags saved to %s", os.path.join(FLAGS.output_dir, "flags.json"))


def train_or_restore(trainer, model, dataset_fn, init_fn, vocab_file):
  """--do_train: train (resuming from output_dir) and export output_dir/export as an original
  checkpoint. Otherwise restore output_dir's latest checkpoint, or start from init_fn (an
  already fine-tuned checkpoint); with neither there is nothing to evaluate."""
  from bert_tf.checkpoint.original import export_pretrained  # pylint: disable=import-outside-toplevel
  if FLAGS.do_train:
    trainer.train(dataset_fn, init_fn=init_fn)
    if trainer.is_chief:   # only the chief writes
      export_pretrained(model, os.path.join(FLAGS.output_dir, "export"), vocab_file=vocab_file)
  elif trainer.restore():
    logging.info("restored step %d from %s", trainer.step, FLAGS.output_dir)
  elif init_fn is not None:
    init_fn(model)
  else:
    raise flags.ValidationError("nothing to evaluate or predict with: no checkpoint in "
                                "--output_dir and no --init_checkpoint / --model_dir")


def start_run(config_file, vocab_file):
  """What every fine-tuning program does before building its model: reads bert_config.json,
  checks it against --max_seq_length and the vocabulary's line count, saves the flags, picks the
  strategy and the precision policy, and seeds. Returns (BertConfig, strategy)."""
  import keras  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from bert_tf import BertConfig, distribute, kernels  # pylint: disable=import-outside-toplevel
  from bert_tf.config import claim_model_dir  # pylint: disable=import-outside-toplevel
  # The strategy first: --num_cpu_replicas splits the CPU, which must precede any TF device use.
  strategy = strategy_from_flags()
  config = BertConfig.from_json_file(config_file)
  if FLAGS.max_seq_length > config.max_position_embeddings:
    raise flags.ValidationError(f"--max_seq_length={FLAGS.max_seq_length} exceeds "
                                f"max_position_embeddings={config.max_position_embeddings} of "
                                f"{config_file}")
  with tf.io.gfile.GFile(vocab_file, "rb") as f:
    vocab_size = sum(1 for _ in f)
  if vocab_size != config.vocab_size:
    raise errors.InputFileError(f"{config_file} has vocab_size={config.vocab_size} but "
                                f"{vocab_file} has {vocab_size} lines; use the matching pair")
  if distribute.is_chief(strategy):   # only the chief writes
    claim_model_dir(config, FLAGS.output_dir)
    save_flags()
  set_precision()
  kernels.configure(strategy, skip_padding=FLAGS.skip_padding, fused_kernels=FLAGS.xla_kernels)
  keras.utils.set_random_seed(FLAGS.seed)
  return config, strategy
