"""tf.data input of pretraining: TFRecords of create_pretraining_data -> batches of int32 features.

One pipeline per input worker (strategy.distribute_datasets_from_function): the files are
sharded by input pipeline, shuffled, read with a parallel interleave, decoded with the
original feature spec (int64 -> int32, as TPUs want), batched with drop_remainder (static
shapes: TPUs compile per shape) and prefetched. No Python runs per example.
"""
import tensorflow as tf

from bert_tf.errors import FlagError
from pretraining import features, fileio


def list_input_files(input_file):
  """Comma-separated globs -> sorted list of files; a pattern matching nothing is an error."""
  files = []
  for pattern in [p.strip() for p in input_file.split(",") if p.strip()]:
    matched = sorted(fileio.glob(pattern))
    if not matched:
      raise FileNotFoundError(f"input_file: no file matches {pattern!r}")
    files.extend(matched)
  return files


def any_file_matches(input_file):
  """Whether some pattern of a comma-separated --input_file matches a file."""
  return any(fileio.glob(p.strip()) for p in input_file.split(",") if p.strip())


def decode(serialized, max_seq_length, max_predictions_per_seq):
  """Batch of serialized records -> dict of int32 / float32 tensors."""
  parsed = features.parse_examples(serialized, max_seq_length, max_predictions_per_seq)
  return {k: tf.cast(v, tf.int32) if v.dtype == tf.int64 else v for k, v in parsed.items()}


def make_dataset(files, batch_size, max_seq_length, max_predictions_per_seq, is_training=True,
                 input_context=None, seed=None, shuffle_buffer=10000, cycle_length=8):
  """Dataset of batches [batch_size, ...] for one input pipeline.

  Args:
    files: list of TFRecord files (all of them; this pipeline takes its share).
    batch_size: per-replica batch size.
    input_context: tf.distribute.InputContext (from distribute_datasets_from_function).
    seed: shuffling seed (file order and examples); None for nondeterministic.
  """
  dataset = tf.data.Dataset.from_tensor_slices(tf.constant(files))
  if input_context is not None and input_context.num_input_pipelines > 1:
    if len(files) < input_context.num_input_pipelines:
      raise FlagError(f"{len(files)} input files for {input_context.num_input_pipelines} input "
                       "pipelines: write at least that many shards (create_pretraining_data "
                       "--num_shards)")
    dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
  if is_training:
    dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
  # Repeated for evaluation too: max_eval_steps batches are read, cycling over a short set.
  dataset = dataset.repeat()
  dataset = dataset.interleave(
      tf.data.TFRecordDataset, cycle_length=min(cycle_length, len(files)),
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=seed is not None or not is_training)
  if is_training:
    dataset = dataset.shuffle(shuffle_buffer, seed=seed)
  dataset = dataset.batch(batch_size, drop_remainder=True)
  dataset = dataset.map(lambda r: decode(r, max_seq_length, max_predictions_per_seq),
                        num_parallel_calls=tf.data.AUTOTUNE)
  return dataset.prefetch(tf.data.AUTOTUNE)


def check_record_lengths(files, max_seq_length, max_predictions_per_seq):
  """Preflight: the records' feature lengths must equal the run's flags. Raises ValueError
  naming the file, the feature and both lengths."""
  from pretraining import record_stats  # pylint: disable=import-outside-toplevel
  seq, predictions = record_stats.feature_lengths_of(files[0])
  problems = []
  if seq != max_seq_length:
    problems.append(f"input_ids has length {seq} but max_seq_length={max_seq_length}")
  if predictions != max_predictions_per_seq:
    problems.append(f"masked_lm_ids has length {predictions} but "
                    f"max_predictions_per_seq={max_predictions_per_seq}")
  if problems:
    raise FlagError(f"{files[0]}: {'; '.join(problems)}. Set the flags to the values used by "
                     "create_pretraining_data, or regenerate the data.")
