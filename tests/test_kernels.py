"""bert_tf.kernels: the CPU-measured shortcuts run on CPUs only; GPUs and TPUs get plain ops."""
import numpy as np
import pytest
import tensorflow as tf

from bert_tf import fused, kernels
from bert_tf.layers import token_rows


@pytest.fixture(autouse=True)
def restore_policy():
  before = (kernels._STATE["device"], dict(kernels._STATE["overrides"]))  # pylint: disable=protected-access
  yield
  kernels._STATE["device"], kernels._STATE["overrides"] = before[0], before[1]  # pylint: disable=protected-access


def op_types(function, *args):
  """Op types of a traced function and of every function it calls."""
  graph = tf.function(function).get_concrete_function(*args).graph
  types, seen = set(), set()

  def visit(graph_def_functions, ops):
    for op in ops:
      types.add(op.type)
    for definition in graph_def_functions:
      if definition.signature.name not in seen:
        seen.add(definition.signature.name)
        types.update(node.op for node in definition.node_def)

  visit(graph.as_graph_def().library.function, graph.get_operations())
  return types


def compiled_op_types(function, *args):
  return op_types(tf.function(function, jit_compile=True), *args)


@pytest.mark.parametrize("device", ["cpu", "gpu", "tpu"])
def test_dropout_bits_inside_xla(device):
  kernels.set_device(device)
  types = compiled_op_types(lambda: fused.random_bits16([8, 16], tf.constant([1, 2])))
  tensorflow_rng = any(t.startswith("StatelessRandom") for t in types)
  # CPUs: Philox written in integer ops (no RNG op); GPUs and TPUs: TensorFlow's stateless op,
  # which XLA lowers with the device's own algorithm.
  assert tensorflow_rng == (device != "cpu"), sorted(types)


@pytest.mark.parametrize("device", ["cpu", "gpu", "tpu"])
def test_sum_of_squares_inside_xla(device):
  kernels.set_device(device)
  x = tf.random.normal([64, 48])
  types = compiled_op_types(fused.sum_of_squares, x)
  assert any("VariadicReduce" in t for t in types) == (device == "cpu"), sorted(types)
  value = tf.function(fused.sum_of_squares, jit_compile=True)(x)
  np.testing.assert_allclose(value, np.sum(np.square(x.numpy(), dtype=np.float64)), rtol=1e-5)


@pytest.mark.parametrize("device", ["cpu", "gpu", "tpu"])
def test_fused_kernels_are_xla_islands_on_cpus_only(device):
  kernels.set_device(device)
  x = tf.random.normal([4, 8])
  graph = tf.function(fused.gelu).get_concrete_function(x).graph
  islands = [op for op in graph.get_operations()
             if op.type in ("PartitionedCall", "StatefulPartitionedCall")
             and "_XlaMustCompile" in op.node_def.attr and op.get_attr("_XlaMustCompile")]
  assert bool(islands) == (device == "cpu")
  expected = 0.5 * x * (1 + tf.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
  np.testing.assert_allclose(fused.gelu(x), expected, rtol=1e-5, atol=1e-6)


def test_skipping_padding_and_overrides():
  for device, default in (("cpu", True), ("gpu", False), ("tpu", False)):
    kernels.set_device(device)
    assert token_rows.skips_padding(True) == default
    assert not token_rows.skips_padding(False)
    assert token_rows.skips_padding_at_inference(False) == default
    assert not token_rows.skips_padding_at_inference(True)
    token_rows.set_skip_padding(not default)   # both, as the programs' --skip_padding
    assert token_rows.skips_padding(True) == (not default)
    assert token_rows.skips_padding_at_inference(False) == (not default)
    token_rows.set_skip_padding(None)
    assert token_rows.skips_padding(True) == default
    assert token_rows.skips_padding_at_inference(False) == default
  kernels.set_device("cpu")
  fused.set_xla_kernels(False)
  assert not kernels.policy().fused_kernels and kernels.policy().skip_padding
  fused.set_xla_kernels(True)
  assert kernels.policy().fused_kernels
  with pytest.raises(ValueError, match="unknown kernel shortcut"):
    kernels.override(fast_math=True)
  with pytest.raises(ValueError, match="device type"):
    kernels.set_device("npu")


def test_device_type_of_strategies():
  assert kernels.device_type(tf.distribute.get_strategy()) == kernels.detect_device_type()
  assert kernels.device_type(tf.distribute.OneDeviceStrategy("/cpu:0")) == "cpu"
  assert kernels.detect_device_type() == "cpu"   # this machine


def test_portable_traces_plain_ops_and_restores_the_policy():
  """Graphs written to disk (SavedModels) are traced with plain ops on every device. Mutation
  caught: portable() that leaves the overrides as they were (the CPU's islands stay)."""
  kernels.set_device("cpu")
  kernels.override(skip_padding=False)
  before = kernels.policy()
  x = tf.random.normal([4, 8])

  def islands():
    graph = tf.function(fused.gelu).get_concrete_function(x).graph
    return [op for op in graph.get_operations()
            if "_XlaMustCompile" in op.node_def.attr and op.get_attr("_XlaMustCompile")]
  assert islands()
  with kernels.portable() as inside:
    assert not any(v for name, v in vars(inside).items() if name != "skip_padding_at_inference")
    assert inside.skip_padding_at_inference and kernels.policy() == inside  # plain ops: allowed
    assert not islands()
  assert kernels.policy() == before and islands()
  kernels.override(skip_padding_at_inference=False)
  with kernels.portable() as inside:  # the user's "off" holds in exports too
    assert not inside.skip_padding_at_inference
  kernels.override(skip_padding=None, skip_padding_at_inference=None)
