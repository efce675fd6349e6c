"""Fine-tuning models: original checkpoints in and out (run_classifier / run_squad head names),
Keras serialization, mixed precision, and the prediction loop over two replicas."""
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import ROOT, TINY_CONFIG, make_original_checkpoint, random_inputs
from bert_tf import load_original_checkpoint, save_original_checkpoint
from bert_tf.training import init_fn_from
from finetuning.models import BertClassifier, BertSpanLabeler


def _numpy_inputs(config):
  return {k: np.asarray(v) for k, v in random_inputs(TINY_CONFIG).items()
          if k in ("input_ids", "input_mask", "segment_ids")}


def test_classifier_starts_from_a_pretrained_checkpoint(tmp_path, tiny_config):
  prefix, values = make_original_checkpoint(tmp_path, TINY_CONFIG)
  model = BertClassifier(tiny_config, num_classes=3)
  init_fn_from(prefix, allow_missing=("output_",))(model)
  weights = {w.path: w.numpy() for w in model.weights}
  np.testing.assert_array_equal(weights["encoder/layer_1/output/dense/kernel"],
                                values["bert/encoder/layer_1/output/dense/kernel"])
  assert weights["classifier/output_weights"].shape == (3, tiny_config.hidden_size)


def test_classifier_logits_follow_the_original_output_layer(tmp_path, tiny_config):
  """A run_classifier checkpoint (output_weights [labels, hidden], output_bias) loads fully;
  logits = pooled_output @ output_weights^T + output_bias, as create_model in the original."""
  rng = np.random.default_rng(3)
  head = {"output_weights": rng.normal(size=(3, tiny_config.hidden_size)).astype(np.float32),
          "output_bias": rng.normal(size=(3,)).astype(np.float32)}
  prefix, _ = make_original_checkpoint(tmp_path, TINY_CONFIG, with_heads=False, extra=head)
  model = BertClassifier(tiny_config, num_classes=3)
  report = load_original_checkpoint(model, prefix)
  assert ("output_weights", "classifier/output_weights") in report.loaded
  outputs = model(_numpy_inputs(tiny_config), training=False)
  expected = outputs["pooled_output"].numpy() @ head["output_weights"].T + head["output_bias"]
  np.testing.assert_allclose(outputs["logits"].numpy(), expected, rtol=1e-5, atol=1e-5)
  written = save_original_checkpoint(model, tmp_path / "out" / "model.ckpt")
  assert {"output_weights", "output_bias"} <= set(written)
  reader = tf.train.load_checkpoint(str(tmp_path / "out" / "model.ckpt"))
  np.testing.assert_array_equal(reader.get_tensor("output_weights"), head["output_weights"])


def test_span_labeler_uses_run_squad_names(tmp_path, tiny_config):
  rng = np.random.default_rng(4)
  head = {"cls/squad/output_weights": rng.normal(size=(2, tiny_config.hidden_size)).astype(np.float32),
          "cls/squad/output_bias": rng.normal(size=(2,)).astype(np.float32)}
  prefix, _ = make_original_checkpoint(tmp_path, TINY_CONFIG, with_heads=False, extra=head)
  model = BertSpanLabeler(tiny_config)
  load_original_checkpoint(model, prefix)
  outputs = model(_numpy_inputs(tiny_config), training=False)
  logits = outputs["sequence_output"].numpy() @ head["cls/squad/output_weights"].T
  logits += head["cls/squad/output_bias"]
  np.testing.assert_allclose(outputs["start_logits"].numpy(), logits[..., 0], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(outputs["end_logits"].numpy(), logits[..., 1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("model_class,kwargs", [(BertClassifier, {"num_classes": 2}),
                                                (BertSpanLabeler, {})])
def test_keras_save_and_load(tmp_path, tiny_config, model_class, kwargs):
  model = model_class(tiny_config, **kwargs)
  inputs = _numpy_inputs(tiny_config)
  path = str(tmp_path / "model.keras")
  model.save(path)
  restored = keras.models.load_model(path)
  key = "logits" if "num_classes" in kwargs else "start_logits"
  np.testing.assert_allclose(restored(inputs)[key].numpy(), model(inputs)[key].numpy(), atol=1e-6)


def test_bfloat16_keeps_logits_float32(tiny_config):
  keras.mixed_precision.set_global_policy("mixed_bfloat16")
  try:
    model = BertClassifier(tiny_config, num_classes=2)
    outputs = model(_numpy_inputs(tiny_config))
  finally:
    keras.mixed_precision.set_global_policy("float32")
  assert outputs["sequence_output"].dtype == tf.bfloat16
  assert outputs["logits"].dtype == tf.float32


PREDICT_SCRIPT = r"""
import sys, numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, "tests")
from conftest import TINY_CONFIG
from bert_tf import distribute
from bert_tf.training import predict
from finetuning.input_pipeline import prediction_dataset
from finetuning.models import BertClassifier
rng = np.random.default_rng(0)
n, seq = 21, 8
features = {"input_ids": rng.integers(0, 99, (n, seq)), "input_mask": np.ones((n, seq), np.int64),
            "segment_ids": np.zeros((n, seq), np.int64), "label_ids": np.arange(n)}
path = sys.argv[1]
with tf.io.TFRecordWriter(path) as w:
  for i in range(n):
    f = {k: tf.train.Feature(int64_list=tf.train.Int64List(value=np.atleast_1d(v[i])))
         for k, v in features.items()}
    w.write(tf.train.Example(features=tf.train.Features(feature=f)).SerializeToString())
spec = {k: tf.io.FixedLenFeature([seq], tf.int64) for k in ("input_ids", "input_mask", "segment_ids")}
spec["label_ids"] = tf.io.FixedLenFeature([], tf.int64)
parse = lambda r: {k: tf.cast(v, tf.int32) for k, v in tf.io.parse_example(r, spec).items()}
results = []
for devices in (None, ["/cpu:0", "/cpu:1"]):
  strategy = distribute.get_strategy(devices=devices)
  import keras; keras.utils.set_random_seed(1)
  with strategy.scope():
    model = BertClassifier(TINY_CONFIG, 3, seq_length=seq)
  out = predict(strategy, model, prediction_dataset([path], parse, 4), ["logits"])
  direct = model({k: features[k].astype(np.int32) for k in spec}, training=False)["logits"].numpy()
  assert out["logits"].shape == (n, 3), out["logits"].shape
  np.testing.assert_allclose(out["logits"], direct, atol=1e-5)
  results.append(out["logits"])
print("OK", strategy.num_replicas_in_sync)
"""


def test_predict_keeps_example_order_over_two_replicas_with_padding(tmp_path):
  """21 examples in batches of 4 over two replicas: padding dropped, order kept, same logits
  as calling the model directly."""
  result = subprocess.run([sys.executable, "-c", PREDICT_SCRIPT, str(tmp_path / "f.tfrecord")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "OK 2" in result.stdout
