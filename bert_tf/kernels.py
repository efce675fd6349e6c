"""Which kernels a training step and inference use, by device type: the one place that decides.

Several parts of the training step (and of inference) have a second implementation that was
measured faster on one device type only. They are listed here, with the device types that use them by default:

  shortcut          what it is                                      cpu  gpu  tpu
  fused_kernels     GELU, LayerNorm, dropout, cross-entropy and the  yes  no   no
                    Adam/LAMB update as XLA-compiled islands with
                    hand-derived backwards (bert_tf.fused)
  philox_in_xla     dropout bits inside an XLA computation from      yes  no   no
                    Philox4x32-10 written in integer ops
  variadic_norm     sums of squares inside XLA as a two-operand      yes  no   no
                    row reduce (fused.sum_of_squares)
  fused_qkv         query/key/value as one matmul inside XLA         yes  no   no
  skip_padding      training on the real tokens only (dynamic        yes  no   no
                    shapes; never inside XLA: token_rows)
  skip_padding_at_  inference on the real tokens only: the batch     yes  no   no
    inference       trimmed to its longest real extent, the dense
                    parts on the real tokens' rows (plain ops,
                    dynamic shapes; never inside XLA: token_rows);
                    a trimmed batch still mostly real runs padded,
                    as an XLA island where fused_kernels is on

Evidence: every "yes" was measured on this project's CPU (docs/pretraining.md,
benchmarks/results/pretraining_step.md, benchmarks/results/inference.md). None was measured on a GPU or a TPU, so there the
plain TensorFlow ops run: on a TPU the whole step is one XLA computation anyway and XLA's own
lowering (ThreeFry rather than Philox for random bits, its reductions) is tuned for it; on a GPU
skipping padding would add a device-to-host copy per step and recompile the fused kernels per
row bucket. Values are the same either way (tests/test_fused.py, tests/layers/test_token_rows.py,
tests/layers/test_inference_rows.py), at the positions the models read: skipping padding gives
zeros at padding positions, so only models and callers that read real positions alone use it.

`portable()` (graphs written to disk: the raw-text SavedModels) turns every shortcut off except
skip_padding_at_inference: with fused_kernels off that one is plain TensorFlow ops (its padded
branch included: no XLA island) whose only demand is
dynamic shapes, which every SavedModel runtime without XLA has (TF Serving on CPUs and GPUs); its
cost on a GPU was not measured. A TPU serving graph would have to be compiled with static shapes
anyway, where the padded path runs (in_xla_context).

The device type is taken from the visible devices on first use, or set by the programs from
their strategy (`set_device(device_type(strategy))`); `override(...)` switches one shortcut for
all devices (the programs' --skip_padding, which sets skip_padding and
skip_padding_at_inference together; --noxla_kernels; tests, benchmarks). Settings apply
to functions traced afterwards.
"""
import contextlib
import dataclasses

import tensorflow as tf
from tensorflow.python.ops import control_flow_util  # pylint: disable=g-direct-tensorflow-import


@dataclasses.dataclass(frozen=True)
class KernelPolicy:
  fused_kernels: bool
  philox_in_xla: bool
  variadic_norm: bool
  fused_qkv: bool
  skip_padding: bool
  skip_padding_at_inference: bool


_MEASURED = KernelPolicy(fused_kernels=True, philox_in_xla=True, variadic_norm=True,
                         fused_qkv=True, skip_padding=True, skip_padding_at_inference=True)
_PLAIN = KernelPolicy(fused_kernels=False, philox_in_xla=False, variadic_norm=False,
                      fused_qkv=False, skip_padding=False, skip_padding_at_inference=False)
# Written-to-disk graphs: plain ops only; skipping padding at inference is plain ops too.
_PORTABLE = dataclasses.replace(_PLAIN, skip_padding_at_inference=True)
POLICIES = {"cpu": _MEASURED, "gpu": _PLAIN, "tpu": _PLAIN}

_STATE = {"device": None, "overrides": {}}


def detect_device_type():
  """'tpu', 'gpu' or 'cpu': the fastest kind of device TensorFlow sees."""
  for kind in ("TPU", "GPU"):
    if tf.config.list_logical_devices(kind):
      return kind.lower()
  return "cpu"


def device_type(strategy):
  """The device type a strategy computes on: 'tpu', 'gpu' or 'cpu'."""
  if isinstance(strategy, tf.distribute.TPUStrategy):
    return "tpu"
  try:
    devices = strategy.extended.worker_devices
  except RuntimeError:   # the default strategy has no device list: whatever TensorFlow sees
    devices = ()
  if any("GPU" in str(d).upper() for d in devices):
    return "gpu"
  if devices:
    return "cpu"
  return detect_device_type()


def set_device(kind):
  """Use the default policy of device type `kind` ('cpu', 'gpu' or 'tpu')."""
  if kind not in POLICIES:
    raise ValueError(f"device type must be one of {sorted(POLICIES)}, got {kind!r}")
  _STATE["device"] = kind


def override(**shortcuts):
  """Switches shortcuts on or off for every device type (None: back to the device's default),
  e.g. override(skip_padding=False)."""
  for name, value in shortcuts.items():
    if name not in KernelPolicy.__dataclass_fields__:
      raise ValueError(f"unknown kernel shortcut {name!r}; known: "
                       f"{sorted(KernelPolicy.__dataclass_fields__)}")
    if value is None:
      _STATE["overrides"].pop(name, None)
    else:
      _STATE["overrides"][name] = bool(value)


@contextlib.contextmanager
def portable():
  """Within it, functions are traced with the plain ops of every device (no XLA island): for
  graphs written to disk (SavedModels) that may run on any device or serving binary, e.g. TF
  Serving without XLA's JIT kernels. Skipping padding at inference stays on (plain ops, see the
  module docstring) unless it was switched off by override(skip_padding_at_inference=False)."""
  saved = dict(_STATE["overrides"])
  _STATE["overrides"] = dataclasses.asdict(_PORTABLE)
  if saved.get("skip_padding_at_inference") is False:
    _STATE["overrides"]["skip_padding_at_inference"] = False
  try:
    yield policy()
  finally:
    _STATE["overrides"] = saved


def current_device():
  if _STATE["device"] is None:
    _STATE["device"] = detect_device_type()
  return _STATE["device"]


def policy():
  """The KernelPolicy in force: the device type's defaults with the overrides applied."""
  return dataclasses.replace(POLICIES[current_device()], **_STATE["overrides"])


def in_xla_context():
  """Whether ops created now are compiled by XLA as one computation (jit_compile, TPUs)."""
  return not tf.executing_eagerly() and control_flow_util.GraphOrParentsInXlaContext(
      tf.compat.v1.get_default_graph())


def configure(strategy, skip_padding=None, fused_kernels=True):
  """The programs' setup: the policy of the strategy's device type, then their flags' overrides
  (skip_padding None: the device's default, else skipping padding in training and at inference
  on or off; fused_kernels False: plain ops everywhere)."""
  set_device(device_type(strategy))
  override(skip_padding=skip_padding, skip_padding_at_inference=skip_padding,
           fused_kernels=None if fused_kernels else False)
  return policy()
