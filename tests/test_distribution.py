"""The models build and run under MirroredStrategy over two logical CPU devices (the GPU path).

Logical devices must be configured before TensorFlow initialises, so this runs in a subprocess.
"""
import subprocess
import sys

from conftest import ROOT

SCRIPT = r"""
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import sys
sys.path.insert(0, "tests")
from conftest import TINY_CONFIG, random_inputs
from bert_tf import BertConfig, BertPretrainer

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2
with strategy.scope():
  model = BertPretrainer(BertConfig(**TINY_CONFIG))
inputs = random_inputs(TINY_CONFIG, batch_size=8, num_predictions=3)
dataset = tf.data.Dataset.from_tensor_slices(inputs).batch(8)
dist_batch = next(iter(strategy.experimental_distribute_dataset(dataset)))

@tf.function
def step(batch):
  def replica_fn(x):
    with tf.GradientTape() as tape:
      out = model(x, training=False)
      loss = tf.reduce_sum(out["mlm_logits"]) + tf.reduce_sum(out["nsp_logits"])
    grads = tape.gradient(loss, model.trainable_variables)
    return out["nsp_logits"], grads
  return strategy.run(replica_fn, args=(batch,))

nsp, grads = step(dist_batch)
got = np.concatenate([t.numpy() for t in strategy.experimental_local_results(nsp)])
expected = model(inputs, training=False)["nsp_logits"].numpy()
np.testing.assert_allclose(got, expected, atol=1e-5)
assert all(g is not None for g in grads)

# Training calls skip padding tokens (bert_tf.layers.token_rows, dynamic shapes per replica):
# without dropout, the replicas' summed gradients equal one device's over the whole batch.
config = BertConfig(**dict(TINY_CONFIG, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
with strategy.scope():
  model = BertPretrainer(config)

def training_grads(x):
  with tf.GradientTape() as tape:
    out = model(x, training=True)
    loss = tf.reduce_sum(out["mlm_logits"]) + tf.reduce_sum(out["nsp_logits"])
  return tape.gradient(loss, model.trainable_variables)

replica_grads = tf.function(lambda b: strategy.run(training_grads, args=(b,)))(dist_batch)
single = tf.function(training_grads)({k: tf.constant(v) for k, v in inputs.items()})
for per_replica, expected in zip(replica_grads, single):
  summed = sum(tf.convert_to_tensor(g) for g in strategy.experimental_local_results(per_replica))
  np.testing.assert_allclose(summed, tf.convert_to_tensor(expected), rtol=1e-5, atol=1e-4)
print("MIRRORED OK", got.shape)
"""


def test_mirrored_strategy_two_logical_cpus():
  proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "MIRRORED OK (8, 2)" in proc.stdout
