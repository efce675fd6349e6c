"""The distribution strategy of a run: Cloud TPU, several GPUs, several workers, or one device.

    strategy = get_strategy(tpu="my-tpu")              # TPUStrategy (TPUClusterResolver)
    strategy = get_strategy(num_gpus=8)                # MirroredStrategy over 8 GPUs
    strategy = get_strategy()                          # TF_CONFIG set: MultiWorkerMirrored;
                                                       # else the default (one device)
Library code takes the strategy as an argument; only programs call this.
"""
import json
import os

import tensorflow as tf


def get_strategy(tpu=None, tpu_zone=None, gcp_project=None, num_gpus=0, devices=None):
  """Picks the strategy.

  Args:
    tpu: TPU name or grpc:// address ("local" for a TPU VM); None for no TPU.
    tpu_zone, gcp_project: where the named TPU lives (optional on a TPU VM / in GCE metadata).
    num_gpus: >1 mirrors over that many GPUs.
    devices: explicit device list for MirroredStrategy (e.g. two logical CPUs in tests).
  """
  if tpu:
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
        tpu=tpu, zone=tpu_zone, project=gcp_project)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)
  if devices:
    return tf.distribute.MirroredStrategy(devices)
  if num_gpus > 1:
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) < num_gpus:
      raise ValueError(f"num_gpus={num_gpus} but only {len(gpus)} GPU(s) are visible")
    return tf.distribute.MirroredStrategy([g.name for g in gpus[:num_gpus]])
  if _multi_worker():
    return tf.distribute.MultiWorkerMirroredStrategy()
  return tf.distribute.get_strategy()


def _multi_worker():
  config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
  workers = config.get("cluster", {}).get("worker", [])
  return len(workers) > 1


def is_tpu(strategy):
  return isinstance(strategy, (tf.distribute.TPUStrategy,))
