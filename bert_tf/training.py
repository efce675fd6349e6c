"""The one training loop: steps_per_loop compiled steps per host call, checkpoints, resume.

    trainer = Trainer(strategy, model, optimizer, task, TrainerConfig(model_dir=..., ...))
    trainer.train(dataset_fn)            # resumes from model_dir when it holds a checkpoint
    results = trainer.evaluate(dataset_fn, steps=100)

The loop, top to bottom:
  1. restore the latest checkpoint of model_dir (model, optimizer with its step and slots, and
     the input iterator's position), or else run `init_fn` (e.g. load an original checkpoint);
  2. repeat: run `train_loop` = one tf.function (XLA optional) that does up to
     steps_per_loop optimizer steps of strategy.run(step) (the TPU idiom: one host call per
     loop); read the metrics; stop on a NaN/Inf loss naming the step; write TensorBoard
     summaries and a progress line; save a checkpoint every save_checkpoints_steps;
  3. save the final checkpoint.

A task (see pretraining.task) supplies each loss as a numerator summed over a micro-batch's
examples (`task.numerators(features, outputs)`, with the metrics as (sum, count) pairs) and a
denominator that depends on the inputs only (`task.denominators(features)`, e.g. the sum of the
masked-LM weights). The loop divides by the denominators summed over all micro-batches of the
step and all replicas, so the gradient is that of the loss of the whole global batch, however it
is split over replicas and accumulation steps. The gradients are summed over replicas before
the global norm is taken, logged and used for clipping, and every replica applies the same
update: one device, N replicas, N workers and N accumulated micro-batches train the same model
(tests/test_replica_invariance.py). Only the chief of a multi-worker run writes files.
"""
import dataclasses
import logging
import math
import os
import signal
import threading
import time

import keras
import tensorflow as tf

from bert_tf import distribute
from bert_tf import fused


@dataclasses.dataclass
class TrainerConfig:
  model_dir: str
  num_train_steps: int
  steps_per_loop: int = 100            # iterations_per_loop
  save_checkpoints_steps: int = 1000
  keep_checkpoint_max: int = 5
  gradient_accumulation_steps: int = 1
  jit_compile: bool = False
  log_every_seconds: float = 30.0
  progress_bar: bool = None            # None: a tqdm bar when stderr is a terminal


class Trainer:
  """Runs a task's training and evaluation under a strategy (see module doc).

  Args:
    strategy: tf.distribute.Strategy; model and optimizer must be created in its scope.
    model: keras.Model returning a dict.
    optimizer: keras optimizer (its `iterations` is the global step).
    task: object with numerators(features, outputs) -> (numerators dict, metrics dict of
      (sum, count)), denominators(features) -> dict, `loss_names` (summed into the training
      loss) and `metric_names`.
    config: TrainerConfig.
  """

  def __init__(self, strategy, model, optimizer, task, config):
    self.strategy, self.model, self.optimizer, self.task, self.config = (
        strategy, model, optimizer, task, config)
    with strategy.scope():
      self._sums = {name: self._accumulator(name) for name in self._all_metric_names()}
      self._counts = {name: self._accumulator(name + "_count") for name in self._all_metric_names()}
      self._grad_norm = self._accumulator("grad_norm")
    self.checkpoint = None
    self.manager = None
    # Our optimizers take the summed gradient (bert_tf.optimization.apply_summed_gradients);
    # any other Keras optimizer gets Keras' apply_gradients.
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    self._owns_update = hasattr(inner, "apply_summed_gradients")
    # jit_compile: the forward/backward and the optimizer update each compile into one XLA
    # computation per replica; the cross-replica sums between them stay outside, since on CPUs
    # and GPUs MirroredStrategy reduces through a merge_call that XLA cannot hold. On TPUs the
    # whole loop is compiled anyway.
    compile_parts = config.jit_compile and not distribute.is_tpu(strategy)
    self._gradients_fn = (tf.function(self._gradients, jit_compile=True) if compile_parts
                          else self._gradients)
    self._apply_fn = tf.function(self._apply, jit_compile=True) if compile_parts else self._apply
    self.is_chief = distribute.is_chief(strategy)

  @staticmethod
  def _accumulator(name):
    return tf.Variable(0.0, trainable=False, name=name, dtype=tf.float32,
                       synchronization=tf.VariableSynchronization.ON_READ,
                       aggregation=tf.VariableAggregation.SUM)

  def _all_metric_names(self):
    return ["loss"] + list(self.task.loss_names) + list(self.task.metric_names)

  # -- one step ------------------------------------------------------------------------------

  def _global_denominators(self, batches):
    """Each loss's denominator over all micro-batches of the step and all replicas."""
    context = tf.distribute.get_replica_context()
    totals = {}
    for features in batches:
      for name, value in self.task.denominators(features).items():
        totals[name] = totals.get(name, 0.0) + tf.cast(value, tf.float32)
    return {name: context.all_reduce(tf.distribute.ReduceOp.SUM, value)
            for name, value in totals.items()}

  def _micro_batch(self, features, denominators, training):
    """This replica's share of the step's loss on one micro-batch, and its metrics."""
    outputs = self.model(features, training=training)
    numerators, metrics = self.task.numerators(features, outputs)
    # divide_no_nan: a loss with no examples in this step (a multi-task batch from another task)
    # contributes 0, not NaN.
    losses = {name: tf.math.divide_no_nan(numerators[name], denominators[name])
              for name in self.task.loss_names}
    return tf.add_n(list(losses.values())), losses, metrics

  def _accumulate(self, losses, metrics, total):
    # Shares summed over replicas and micro-batches give the step's loss.
    self._sums["loss"].assign_add(tf.cast(total, tf.float32))
    for name, value in losses.items():
      self._sums[name].assign_add(tf.cast(value, tf.float32))
    for name, (total_value, count) in metrics.items():
      self._sums[name].assign_add(tf.cast(total_value, tf.float32))
      self._counts[name].assign_add(tf.cast(count, tf.float32))

  def _count_step(self):
    share = 1.0 / self.strategy.num_replicas_in_sync   # one step in total over the replicas
    for name in ("loss", *self.task.loss_names):
      self._counts[name].assign_add(share)

  def _gradients(self, batches, denominators):
    """Forward and backward over the step's micro-batches on this replica: summed gradients,
    dense (an embedding's IndexedSlices become one row per id, duplicates summed, so the norm is
    the same however the batch is split; TPUs compute the embedding gradient densely too).
    Compiled with XLA when asked (jit_compile); the cross-replica sum stays outside."""
    variables = self.model.trainable_variables
    grads = None
    for features in batches:
      with tf.GradientTape() as tape:
        total, losses, metrics = self._micro_batch(features, denominators, training=True)
        scaled = total
        if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
          scaled = self.optimizer.scale_loss(scaled)
      step_grads = [None if g is None else tf.convert_to_tensor(g)
                    for g in tape.gradient(scaled, variables)]
      grads = step_grads if grads is None else [
          b if a is None else a if b is None else a + b for a, b in zip(grads, step_grads)]
      self._accumulate(losses, metrics, total)
    return grads

  def _apply(self, grads):
    """The optimizer step from the step's whole gradient (summed over replicas): clipping by its
    global norm and the update, on every replica alike. Compiled with XLA when asked (it holds
    no collective). Returns the global norm before clipping."""
    optimizer, variables = self.optimizer, self.model.trainable_variables
    if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
      return optimizer.apply_summed_gradients(grads, variables)
    # Dynamic loss scaling (float16): unscale; skip the update and halve the scale when the
    # summed gradient is not finite (the same decision on every replica), as Keras' own
    # LossScaleOptimizer does; iterations still advance (as in Keras 2).
    scale = tf.cast(optimizer.dynamic_scale, tf.float32)
    grads = [None if g is None else g / tf.cast(scale, g.dtype) for g in grads]
    finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads if g is not None])

    def apply():
      norm = optimizer.inner_optimizer.apply_summed_gradients(grads, variables)
      grow = tf.equal(optimizer.step_counter, optimizer.dynamic_growth_steps - 1)
      optimizer.step_counter.assign(tf.where(grow, tf.zeros_like(optimizer.step_counter),
                                             optimizer.step_counter + 1))
      optimizer.dynamic_scale.assign(tf.where(grow, optimizer.dynamic_scale * 2.0,
                                              optimizer.dynamic_scale))
      return norm

    def skip():
      optimizer.step_counter.assign(tf.zeros_like(optimizer.step_counter))
      optimizer.dynamic_scale.assign(optimizer.dynamic_scale * 0.5)
      return fused.global_norm([g for g in grads if g is not None])

    return tf.cond(finite, apply, skip)

  def _replica_step(self, batches):
    """One optimizer step on this replica: its micro-batches' gradients, summed over replicas,
    then clipped by the global norm of that sum and applied. Losses are divided by the global
    denominators, so the step's gradient is that of the whole global batch, however it is split
    (tests/test_replica_invariance.py)."""
    denominators = self._global_denominators(batches)
    grads = self._gradients_fn(batches, denominators)
    self._count_step()
    replicas = self.strategy.num_replicas_in_sync
    if not self._owns_update:
      # A foreign Keras optimizer sums (and clips) in apply_gradients itself; the logged norm is
      # still that of the summed gradient.
      summed = [g for g in distribute.sum_over_replicas(grads) if g is not None]
      self._grad_norm.assign_add(fused.global_norm(summed) / replicas)
      self.optimizer.apply_gradients(
          [(g, v) for g, v in zip(grads, self.model.trainable_variables) if g is not None])
      return
    norm = self._apply_fn(distribute.sum_over_replicas(grads))
    self._grad_norm.assign_add(norm / replicas)   # summed over replicas on read: the norm
    self.optimizer.iterations.assign_add(1)

  def _train_step(self, iterator):
    batches = [next(iterator) for _ in range(self.config.gradient_accumulation_steps)]
    self.strategy.run(self._replica_step, args=(batches,))

  # -- checkpoints ---------------------------------------------------------------------------

  def _checkpointing(self, iterator=None):
    items = {"model_weights": weights_by_path(self.model),
             "optimizer_variables": {f"{i:05d}": v for i, v in enumerate(self.optimizer.variables)},
             # The dropout layers' seed states, so a resumed run draws the masks the
             # uninterrupted one would have (their paths depend on creation order in the
             # process, their order in the model does not).
             "random_states": {f"{i:05d}": v for i, v in enumerate(random_states(self.model))}}
    if iterator is not None:
      items["iterator"] = iterator
    self.checkpoint = tf.train.Checkpoint(**items)
    # Only the chief writes into model_dir. Other workers still take part in every save (it may
    # hold collectives), into a directory of their own that is removed after each save, as
    # TensorFlow's multi-worker guide prescribes.
    directory = self.config.model_dir if self.is_chief else distribute.worker_scratch_dir(
        self.strategy)
    self.manager = tf.train.CheckpointManager(
        self.checkpoint, directory, max_to_keep=self.config.keep_checkpoint_max)
    return self.manager

  def _save(self):
    self.manager.save(checkpoint_number=self.step)
    self._saved_step = self.step
    if not self.is_chief:
      tf.io.gfile.rmtree(self.manager.directory)

  def latest_checkpoint(self):
    """The newest complete checkpoint of model_dir: the checkpoint state file's, or a newer
    ckpt-N that was fully written (its index and data read back) when the run was killed before
    the state file listed it. None when there is none."""
    listed = tf.train.latest_checkpoint(self.config.model_dir)
    newest, newest_step = listed, checkpoint_step(listed) if listed else -1
    for index in tf.io.gfile.glob(os.path.join(self.config.model_dir, "ckpt-*.index")):
      prefix = index[:-len(".index")]
      step = checkpoint_step(prefix)
      if step is None or step <= newest_step:
        continue
      try:   # verified before it is trusted: every tensor's bytes are read
        reader = tf.train.load_checkpoint(prefix)
        for name, dtype in reader.get_variable_to_dtype_map().items():
          if dtype != tf.variant:   # the input iterator's state cannot be read as an array
            reader.get_tensor(name)
      except (tf.errors.OpError, ValueError, IndexError) as error:  # IndexError: data cut short
        logging.warning("ignoring incomplete checkpoint %s (%s)", prefix, error)
        continue
      newest, newest_step = prefix, step
    if newest != listed:
      logging.warning("%s is complete but not yet listed in the checkpoint state file (the run "
                      "was stopped while saving it): resuming from it", newest)
    return newest

  def _restore_for_training(self, path):
    try:
      self.checkpoint.restore(path).assert_existing_objects_matched()
    except (ValueError, AssertionError, tf.errors.OpError) as error:
      first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
      raise ValueError(
          f"cannot resume from {path}: the checkpoint in {self.config.model_dir} belongs to "
          f"another model or optimizer configuration ({first[:300]}); use a fresh output "
          "directory, or the flags of the run that wrote it") from error

  def restore(self, path=None):
    """Restores model and optimizer (so the step too) from `path` or the latest checkpoint of
    model_dir, e.g. to evaluate or predict after training. Returns the path, or None."""
    path = path or tf.train.latest_checkpoint(self.config.model_dir)
    if path:
      with self.strategy.scope():
        self.optimizer.build(self.model.trainable_variables)
      self._checkpointing()
      self.checkpoint.restore(path).expect_partial()   # the input position is not needed
    return path

  @property
  def step(self):
    return int(self.optimizer.iterations.numpy())

  # -- public -------------------------------------------------------------------------------

  def train(self, dataset_fn, init_fn=None, on_loop_end=None):
    """Trains to config.num_train_steps; returns the last loop's metrics."""
    config = self.config
    dataset = self.strategy.distribute_datasets_from_function(dataset_fn)
    iterator = iter(dataset)
    # A single device's iterator is checkpointable (the input resumes exactly where it was);
    # multi-device iterators are not in this TensorFlow, so there the input restarts with a
    # shuffle seeded by the step (dataset_fn.start_step).
    trackable = isinstance(iterator, tf.__internal__.tracking.Trackable)
    with self.strategy.scope():
      self.optimizer.build(self.model.trainable_variables)
    self._checkpointing(iterator if trackable else None)
    latest = self.latest_checkpoint()
    if latest:
      self._restore_for_training(latest)
      logging.info("resumed from %s at step %d", latest, self.step)
      if self.step > config.num_train_steps:
        raise ValueError(
            f"{config.model_dir} holds a checkpoint at step {self.step}, past num_train_steps="
            f"{config.num_train_steps}: this directory belongs to a longer run. To start a new "
            "phase (e.g. phase 2), pass that checkpoint as --init_checkpoint and use a fresh "
            "--output_dir")
      if not trackable:
        logging.warning("%s cannot save the input position: the input restarts, reshuffled",
                        type(self.strategy).__name__)
        dataset_fn.start_step = self.step
        iterator = iter(self.strategy.distribute_datasets_from_function(dataset_fn))
    elif init_fn is not None:
      init_fn(self.model)
    self._saved_step = self.step if latest else None
    train_loop = self._compile_loop()
    stop = _StopOnInterrupt()
    writer = (tf.summary.create_file_writer(os.path.join(config.model_dir, "train"))
              if self.is_chief else tf.summary.create_noop_writer())
    bar = _progress_bar(config, self.step)
    with stop:
      results = self._train_loops(train_loop, iterator, dataset_fn, writer, bar, stop,
                                  on_loop_end)
    if self._saved_step != self.step:   # the same decision on every worker
      self._save()
    writer.flush()
    if bar is not None:
      bar.close()
    if stop.requested:
      raise KeyboardInterrupt(f"stopped at step {self.step} of {config.num_train_steps}; "
                              f"checkpoint {self.manager.directory}/ckpt-{self.step} is saved: "
                              "run the same command again to resume")
    return results

  def _train_loops(self, train_loop, iterator, dataset_fn, writer, bar, stop, on_loop_end):
    config = self.config
    start_step, start_time, last_log = self.step, time.time(), 0.0
    results = {}
    while self.step < config.num_train_steps and not stop.requested:
      steps = min(config.steps_per_loop, config.num_train_steps - self.step)
      if config.save_checkpoints_steps:
        to_save = config.save_checkpoints_steps - self.step % config.save_checkpoints_steps
        steps = min(steps, to_save)
      self._reset()
      loop_start = time.time()
      train_loop(iterator, tf.constant(steps, tf.int32))
      results = self._read(steps)
      seconds = time.time() - loop_start
      if not math.isfinite(results["loss"]):
        raise FloatingPointError(
            f"training loss became {results['loss']} in the loop ending at step {self.step}; "
            f"the last checkpoint is {self.latest_checkpoint()}. Lower the learning rate, check "
            "the data, or use loss scaling with float16.")
      results["learning_rate"] = float(self._learning_rate())
      results["examples_per_second"] = steps * self._global_batch(dataset_fn) / max(seconds, 1e-9)
      with writer.as_default(step=self.step):
        for name, value in results.items():
          tf.summary.scalar(name, value)
      now = time.time()
      if now - last_log >= config.log_every_seconds or self.step >= config.num_train_steps:
        last_log = now
        done = self.step - start_step
        eta = (now - start_time) / max(done, 1) * (config.num_train_steps - self.step)
        logging.info("step %d/%d  loss %.4f  %s  %.1f examples/s  ETA %.0f s", self.step,
                     config.num_train_steps, results["loss"],
                     "  ".join(f"{k} {v:.4f}" for k, v in results.items()
                               if k not in ("loss", "examples_per_second")),
                     results["examples_per_second"], eta)
      if bar is not None:
        bar.update(self.step - bar.n)
        bar.set_postfix(loss=f"{results['loss']:.4f}", refresh=False)
      every = config.save_checkpoints_steps
      if every and self.step % every == 0 and self.step < config.num_train_steps:
        self._save()
      if on_loop_end is not None:
        on_loop_end(self.step, results)
    return results

  def evaluate(self, dataset_fn, steps, restore=True):
    """Metrics over `steps` batches (no dropout); restores the latest checkpoint first."""
    if restore:
      latest = tf.train.latest_checkpoint(self.config.model_dir)
      if latest:
        model_checkpoint(self.model).restore(latest).expect_partial()
    dataset = self.strategy.distribute_datasets_from_function(dataset_fn)
    iterator = iter(dataset)

    def eval_fn(features):
      denominators = self._global_denominators([features])
      total, losses, metrics = self._micro_batch(features, denominators, training=False)
      self._accumulate(losses, metrics, total)
      self._count_step()

    @tf.function
    def eval_loop(iterator, steps):
      for _ in tf.range(steps):
        self.strategy.run(eval_fn, args=(next(iterator),))

    self._reset()
    eval_loop(iterator, tf.constant(steps, tf.int32))
    results = self._read(steps)
    results.pop("grad_norm", None)
    return results

  # -- helpers --------------------------------------------------------------------------------

  def _compile_loop(self):
    def loop(iterator, steps):
      for _ in tf.range(steps):
        self._train_step(iterator)
    return tf.function(loop)

  def _reset(self):
    for variable in [*self._sums.values(), *self._counts.values(), self._grad_norm]:
      variable.assign(0.0)

  def _read(self, steps):
    results = {}
    for name in self._all_metric_names():
      count = float(self._counts[name].numpy())
      results[name] = float(self._sums[name].numpy()) / count if count else float("nan")
    results["grad_norm"] = float(self._grad_norm.numpy()) / max(steps, 1)
    return results

  def _learning_rate(self):
    rate = self.optimizer.learning_rate
    value = rate(self.optimizer.iterations) if callable(rate) else rate
    return tf.convert_to_tensor(getattr(value, "value", value)).numpy()

  def _global_batch(self, dataset_fn):
    return getattr(dataset_fn, "global_batch_size", 0) * self.config.gradient_accumulation_steps


class _StopOnInterrupt:
  """Ctrl-C (SIGINT) during training: the first asks the loop to stop after the host call in
  flight (a compiled loop of steps_per_loop steps cannot be cut short), save a checkpoint and
  say how to resume; a second one kills the process at once (the default action). Only in the
  main thread, where Python delivers signals."""

  def __init__(self):
    self.requested = False
    self._previous = None

  def _handle(self, signum, frame):
    del frame
    self.requested = True
    logging.warning("Ctrl-C: stopping after the current loop and saving a checkpoint (press "
                    "Ctrl-C again to stop at once, losing the steps since the last checkpoint)")
    signal.signal(signum, signal.SIG_DFL)

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGINT, self._handle)
    return self

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGINT, self._previous)
    return False


def _progress_bar(config, start_step):
  import sys  # pylint: disable=import-outside-toplevel
  enabled = config.progress_bar if config.progress_bar is not None else sys.stderr.isatty()
  if not enabled:
    return None
  from tqdm import tqdm  # pylint: disable=import-outside-toplevel
  return tqdm(total=config.num_train_steps, initial=start_step, unit="step", dynamic_ncols=True)


def checkpoint_step(path):
  """The step of a trainer checkpoint prefix `.../ckpt-N` (saved with checkpoint_number=step),
  or None."""
  name = os.path.basename(str(path or ""))
  if name.startswith("ckpt-") and name[5:].isdigit():
    return int(name[5:])
  return None


def weights_by_path(model):
  """{weight path: variable} of a Keras model. Checkpoints key the weights by path explicitly:
  tf.train.Checkpoint(model=...) on a Keras 3 functional model tracks only the attributes set
  on it, not the layers inside, and would silently save a fraction of the weights."""
  weights = {w.path: w for w in model.weights}
  if len(weights) != len(model.weights):
    raise ValueError(f"{model.name} has weights with the same path; cannot checkpoint by path")
  return weights


def random_states(model):
  """The model's random-generator state variables (Keras seed generators), in model order."""
  weights = {id(w) for w in model.weights}
  return [v for v in model.variables if id(v) not in weights and "seed_generator" in v.path]


def model_checkpoint(model):
  """tf.train.Checkpoint of a model's weights, compatible with the trainer's checkpoints
  (restore(...).expect_partial() reads the model out of a training checkpoint)."""
  return tf.train.Checkpoint(model_weights=weights_by_path(model))


def predict(strategy, model, dataset, output_names):
  """The model's outputs over a finite dataset of global batches, in example order.

  Each batch is split over the replicas (experimental_distribute_dataset), so batches need a
  static size divisible by the replica count; pad the data with rows whose `example_index` is
  negative (see finetuning.input_pipeline.prediction_dataset) and they are dropped here.

  Args:
    strategy: tf.distribute.Strategy the model was built under.
    model: keras.Model returning a dict.
    dataset: tf.data.Dataset of feature dicts holding `example_index` [batch].
    output_names: keys of the model's outputs to collect.
  Returns:
    {name: np.ndarray [num_examples, ...]} ordered by example_index.
  """
  @tf.function
  def step(features):
    def replica_fn(replica_features):
      outputs = model(replica_features, training=False)
      results = {name: outputs[name] for name in output_names}
      results["example_index"] = replica_features["example_index"]
      return results
    return strategy.run(replica_fn, args=(features,))

  collected = {name: [] for name in (*output_names, "example_index")}
  for features in strategy.experimental_distribute_dataset(dataset):
    for name, value in step(features).items():
      collected[name].extend(v.numpy() for v in strategy.experimental_local_results(value))
  import numpy as np  # pylint: disable=import-outside-toplevel
  index = np.concatenate(collected.pop("example_index"))
  keep = np.flatnonzero(index >= 0)
  order = keep[np.argsort(index[keep], kind="stable")]
  return {name: np.concatenate(parts)[order] for name, parts in collected.items()}


def init_fn_from(path, allow_missing=("cls/",)):
  """The trainer's init_fn for a start checkpoint: an original TF1 checkpoint (Google's BERT,
  BERT-wwm, or a run_classifier/run_squad one) through the name table, or else one of ours.

  Args:
    path: checkpoint prefix, file or folder.
    allow_missing: original-name prefixes whose absence is fine (heads the start checkpoint
      does not have: `cls/` for pretraining from an encoder-only release, the task head when
      fine-tuning from a pretrained model).
  """
  from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
  from bert_tf.checkpoint.original import load_original_checkpoint, resolve_checkpoint  # pylint: disable=import-outside-toplevel

  def init_fn(model):
    prefix = resolve_checkpoint(path)
    names = {name for name, _ in tf.train.list_variables(prefix)}
    if "bert/embeddings/word_embeddings" in names:
      report = load_original_checkpoint(model, prefix, allow_missing=allow_missing)
      absl_logging.info("initialized from original checkpoint %s", report.summary())
    else:
      model_checkpoint(model).restore(prefix).assert_existing_objects_matched().expect_partial()
      absl_logging.info("initialized from %s", prefix)
  return init_fn


def write_results_file(path, results):
  """Writes `key = value` lines sorted by key (the original eval_results.txt), atomically."""
  tmp = f"{path}.incomplete"
  with tf.io.gfile.GFile(tmp, "w") as writer:
    for key in sorted(results):
      writer.write(f"{key} = {results[key]}\n")
  tf.io.gfile.rename(tmp, path, overwrite=True)


def write_json_file(path, value):
  """Writes `value` as indented JSON, atomically (a temporary name, then a rename)."""
  import json  # pylint: disable=import-outside-toplevel
  tmp = f"{path}.incomplete"
  with tf.io.gfile.GFile(tmp, "w") as writer:
    json.dump(value, writer, default=str, indent=1, sort_keys=True)
  tf.io.gfile.rename(tmp, path, overwrite=True)


def read_results_file(path):
  """{key: float} of a `key = value` results file (write_results_file's format)."""
  with tf.io.gfile.GFile(str(path)) as reader:
    return {key.strip(): float(value) for key, value in
            (line.split("=", 1) for line in reader if "=" in line)}
