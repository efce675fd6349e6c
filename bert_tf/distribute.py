"""The distribution strategy of a run: Cloud TPU, several workers, several GPUs, or one device.

    strategy = get_strategy(tpu="my-tpu")              # TPUStrategy (TPUClusterResolver)
    strategy = get_strategy()                          # TF_CONFIG with several workers:
                                                       # MultiWorkerMirrored (each worker's GPUs)
    strategy = get_strategy(num_gpus=8)                # MirroredStrategy over 8 GPUs
    strategy = get_strategy(num_cpu_replicas=4)        # MirroredStrategy over 4 logical CPUs: a
                                                       # multi-replica rehearsal on a laptop
    strategy = get_strategy()                          # else the default (one device)
Library code takes the strategy as an argument; only programs call this.
"""
import json
import os
import tempfile

import tensorflow as tf


def get_strategy(tpu=None, tpu_zone=None, gcp_project=None, num_gpus=0, devices=None,
                 num_cpu_replicas=0):
  """Picks the strategy.

  Args:
    tpu: TPU name or grpc:// address ("local" for a TPU VM); None for no TPU.
    tpu_zone, gcp_project: where the named TPU lives (optional on a TPU VM / in GCE metadata).
    num_gpus: >1 mirrors over that many GPUs (on one machine; with TF_CONFIG every worker
      mirrors over its own GPUs).
    devices: explicit device list for MirroredStrategy (e.g. two logical CPUs in tests).
    num_cpu_replicas: >1 splits the CPU into that many logical devices and mirrors over them.
      Must be called before TensorFlow initialises its devices (first op or device query).
  """
  if tpu:
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
        tpu=tpu, zone=tpu_zone, project=gcp_project)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)
  if devices:
    return tf.distribute.MirroredStrategy(devices)
  # TF_CONFIG before the local options: with several workers each would otherwise train a model
  # of its own. MultiWorkerMirroredStrategy uses every GPU of each worker.
  if _multi_worker():
    if num_cpu_replicas > 1:
      raise ValueError("num_cpu_replicas cannot be combined with a multi-worker TF_CONFIG")
    return tf.distribute.MultiWorkerMirroredStrategy()
  if num_cpu_replicas > 1:
    if num_gpus > 1:
      raise ValueError("num_cpu_replicas and num_gpus are exclusive")
    return tf.distribute.MirroredStrategy(logical_cpus(num_cpu_replicas))
  if num_gpus > 1:
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) < num_gpus:
      raise ValueError(f"num_gpus={num_gpus} but only {len(gpus)} GPU(s) are visible")
    return tf.distribute.MirroredStrategy([g.name for g in gpus[:num_gpus]])
  return tf.distribute.get_strategy()


def logical_cpus(count):
  """Splits the first CPU into `count` logical devices (before TensorFlow initialises them) and
  returns their names."""
  cpu = tf.config.list_physical_devices("CPU")[0]
  wanted = [tf.config.LogicalDeviceConfiguration()] * count
  current = tf.config.get_logical_device_configuration(cpu)
  if current is None or len(current) != count:
    try:
      tf.config.set_logical_device_configuration(cpu, wanted)
    except RuntimeError as error:
      raise RuntimeError(f"cannot split the CPU into {count} logical devices after TensorFlow "
                         f"initialised its devices: {error}") from error
  return [f"/cpu:{i}" for i in range(count)]


def _tf_config():
  return json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")


def _multi_worker():
  cluster = _tf_config().get("cluster", {})
  return len(cluster.get("worker", [])) + len(cluster.get("chief", [])) > 1


def sum_over_replicas(tensors):
  """`tensors` (a list; None entries kept as None) summed over the replicas of the current
  replica context, with one all-reduce; unchanged outside one or with a single replica."""
  context = tf.distribute.get_replica_context()
  tensors = list(tensors)
  if context is None or context.num_replicas_in_sync == 1:
    return tensors
  present = [i for i, t in enumerate(tensors) if t is not None]
  for i, summed in zip(present, context.all_reduce(tf.distribute.ReduceOp.SUM,
                                                   [tensors[i] for i in present])):
    tensors[i] = summed
  return tensors


def is_tpu(strategy):
  return isinstance(strategy, (tf.distribute.TPUStrategy,))


def is_chief(strategy):
  """Whether this process writes the run's files: the only process, the `chief` task, or worker
  0 of a cluster without a chief (TensorFlow's multi-worker convention)."""
  resolver = getattr(strategy, "cluster_resolver", None)
  task_type = getattr(resolver, "task_type", None)
  if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or task_type is None:
    return True
  if task_type == "chief":
    return True
  cluster = resolver.cluster_spec().as_dict()
  return task_type == "worker" and resolver.task_id == 0 and "chief" not in cluster


def worker_scratch_dir(strategy):
  """A local directory for a non-chief worker's copy of what the chief writes (e.g. the
  checkpoints every worker must take part in saving); removed after each use."""
  resolver = strategy.cluster_resolver
  return os.path.join(tempfile.gettempdir(),
                      f"bert_tf_{resolver.task_type}{resolver.task_id}_{os.getpid()}")
