"""tf.data input for fine-tuning from the cached TFRecords: training (repeated, shuffled, static
batches, sharded per input pipeline) and prediction (each example once, in order, padded to
whole global batches so shapes stay static for TPUs and evenly split over replicas).
"""
import tensorflow as tf


def training_dataset(files, parse, batch_size, input_context=None, seed=None,
                     shuffle_buffer=100000):
  """Repeated, shuffled, batched (drop_remainder) features.

  Args:
    files: list of TFRecord paths.
    parse: records batch -> feature dict (e.g. classifier_features.parse_fn(...)).
    batch_size: per-replica batch size.
    input_context: tf.distribute.InputContext (distribute_datasets_from_function).
    seed: shuffling seed.
  """
  dataset = tf.data.TFRecordDataset(files)
  if input_context is not None and input_context.num_input_pipelines > 1:
    dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
  dataset = dataset.repeat().shuffle(shuffle_buffer, seed=seed)
  dataset = dataset.batch(batch_size, drop_remainder=True).map(
      parse, num_parallel_calls=tf.data.AUTOTUNE)
  return dataset.prefetch(tf.data.AUTOTUNE)


def training_dataset_fn(files, parse, global_batch_size, seed):
  """The trainer's dataset_fn over training_dataset: per-replica batches of a global batch, and
  a shuffle reseeded by the step when the trainer resumes without a saved input position."""
  def dataset_fn(input_context):
    batch = input_context.get_per_replica_batch_size(global_batch_size)
    return training_dataset(files, parse, batch, input_context,
                            seed + getattr(dataset_fn, "start_step", 0))
  dataset_fn.global_batch_size = global_batch_size
  return dataset_fn


def prediction_dataset(files, parse, global_batch_size):
  """Each example once, in file order, with `example_index` (0..n-1) and padding rows
  (example_index -1, is_real_example 0) up to a whole number of global batches."""
  return indexed_and_padded(tf.data.TFRecordDataset(files).batch(global_batch_size).map(parse),
                            global_batch_size)


def indexed_and_padded(batches, global_batch_size):
  """Adds `example_index` to a dataset of feature batches (in order) and pads its last batch
  with rows of index -1 to `global_batch_size` (static shapes, even split over replicas)."""

  def add_index(batch_number, features):
    size = tf.shape(next(iter(features.values())))[0]
    start = tf.cast(batch_number, tf.int32) * global_batch_size
    features["example_index"] = tf.range(start, start + size)
    return features

  def pad(features):
    size = tf.shape(features["example_index"])[0]
    missing = global_batch_size - size
    padded = {}
    for name, value in features.items():
      fill = -1 if name == "example_index" else 0
      paddings = [[0, missing]] + [[0, 0]] * (len(value.shape) - 1)
      padded[name] = tf.ensure_shape(
          tf.pad(value, paddings, constant_values=tf.cast(fill, value.dtype)),
          [global_batch_size] + value.shape[1:])
    return padded

  return batches.enumerate().map(add_index).map(pad).prefetch(tf.data.AUTOTUNE)
