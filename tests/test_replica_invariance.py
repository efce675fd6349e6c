"""One replica or a pod: the same training step (tests/replica_runs.py runs the topologies).

The same global batches of real pretraining records, dropout off, 20 steps of LAMB (and AdamW,
and the classifier objective) with global-norm clipping engaged give the same weights, optimizer
slots, logged loss and logged global grad_norm on one device, MirroredStrategy over 4 logical
CPUs, 4 accumulated micro-batches on one device, and MultiWorkerMirroredStrategy with 2 worker
processes on localhost. Clipping each replica's gradient before the cross-replica sum, counting
an embedding's duplicate rows separately, or sharing a loss denominator wrongly each break it.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, real_pretraining_records, start_local_workers

SCRIPT = str(ROOT / "tests" / "replica_runs.py")
OBJECTIVES = ("pretraining-lamb", "pretraining-adamw", "classifier-lamb")
CLIP_NORM = 0.1   # replica_runs.CLIP_NORM
# The attention key bias has a zero gradient in exact arithmetic (softmax is invariant to a shift
# shared by all keys): its values and slots are float rounding noise (|w| ~ 1e-11), compared as
# being zero in every run rather than relative to each other.
ZERO_GRADIENT = ("attention/self/key/bias", "attention_self_key_bias")


def _env():
  return dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")


@pytest.fixture(scope="module")
def replica_records(tmp_path_factory):
  """Real English text (the first 400 lines of WikiText-2 valid) as seq-64 records."""
  return real_pretraining_records(tmp_path_factory.mktemp("replica_records"), 400, 64, 10,
                                  num_shards=2)[0]


@pytest.fixture(scope="module")
def runs(replica_records, tmp_path_factory):
  """Runs every topology once: one local process and two worker processes, side by side."""
  out = tmp_path_factory.mktemp("replica_runs")
  # The one-device/4-replica group runs while the two workers train (about a core each); the
  # 2-replica group (XLA, dropout) after it, in a process of its own (its own logical devices).
  def group(mode):
    return [sys.executable, SCRIPT, mode, replica_records, str(out)]
  local = subprocess.Popen(group("local"), cwd=ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, env=_env())
  try:
    workers = start_local_workers(group("worker"))
    local_output = local.communicate(timeout=1800)[0]
  finally:
    local.kill()
    local.wait()
  assert local.returncode == 0, local_output[-4000:]
  for worker, output in workers:
    assert worker.returncode == 0, output[-4000:]
  pairs = subprocess.run(group("pairs"), cwd=ROOT, capture_output=True, text=True, timeout=1800,
                         env=_env())
  assert pairs.returncode == 0, pairs.stderr[-4000:]
  return out


def _load(out, name):
  with np.load(out / f"{name}.npz") as data:
    return dict(data)


def assert_same_run(reference, other, rtol=1e-5):
  """Every model and optimizer variable, the step, and the logged loss and grad_norm."""
  assert int(other["step"]) == int(reference["step"])
  variables = [k for k in reference if k.startswith(("model/", "optimizer/"))]
  assert len(variables) > 50 and set(variables) == {k for k in other if
                                                    k.startswith(("model/", "optimizer/"))}
  for name in variables:
    expected, actual = reference[name], other[name]
    if any(marker in name for marker in ZERO_GRADIENT):
      assert np.abs(expected).max() < 1e-9 and np.abs(actual).max() < 1e-9, name
      continue
    scale = np.abs(expected).max()
    assert np.abs(actual - expected).max() <= rtol * scale, (
        f"{name}: max difference {np.abs(actual - expected).max():.3g} at scale {scale:.3g}")
  np.testing.assert_allclose(other["logged/loss"], reference["logged/loss"], rtol=rtol)
  np.testing.assert_allclose(other["logged/grad_norm"], reference["logged/grad_norm"], rtol=rtol)


@pytest.mark.slow
@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("topology", ["4replicas", "accumulate4", "2workers"])
def test_every_topology_trains_the_same_model(runs, objective, topology):
  reference = _load(runs, f"{objective}-1device")
  # Clipping is engaged: the pre-clip global norm exceeds the threshold on most steps.
  assert np.mean(reference["logged/grad_norm"] > CLIP_NORM) > 0.75
  assert reference["logged/loss"][-1] < reference["logged/loss"][0]   # it trains
  assert_same_run(reference, _load(runs, f"{objective}-{topology}"))


@pytest.mark.slow
def test_dropout_masks_differ_per_replica_and_repeat_per_seed(runs):
  results = json.loads((runs / "pairs_results.json").read_text())
  assert not results["dropout_masks_equal"]
  for rate in results["dropout_drop_rates"]:
    assert abs(rate - 0.5) < 0.1
  first, second = results["dropout_loss_curves"]
  assert first == second   # same seed and replica count: the same curve, bit for bit


@pytest.mark.slow
@pytest.mark.parametrize("precision,rtol,atol", [("float32", 2e-5, 0.0),
                                                 ("mixed_bfloat16", 2e-2, 1e-3)])
def test_compiled_replicated_step_equals_the_plain_step(runs, precision, rtol, atol):
  """jit_compile=True (forward/backward and the optimizer update each one XLA computation per
  replica) under a 2-replica MirroredStrategy equals the uncompiled step: float32 to 2e-5 of
  every variable's scale. In mixed_bfloat16 XLA fuses the bfloat16 arithmetic differently, and
  Adam-type updates turn those differences in near-zero bias gradients into sign flips of
  lr-sized steps: there the loss agrees to 1e-4 and the global norm to 2e-3 (relative), and every
  weight to 2% of its scale or 1e-3 absolute (a fifth of the most 5 steps at lr 1e-3 can move
  a weight)."""
  plain = _load(runs, f"pretraining-lamb-{precision}-xla0")
  compiled = _load(runs, f"pretraining-lamb-{precision}-xla1")
  assert int(compiled["step"]) == int(plain["step"]) == 5
  np.testing.assert_allclose(compiled["logged/loss"], plain["logged/loss"],
                             rtol=1e-4 if atol else rtol)
  np.testing.assert_allclose(compiled["logged/grad_norm"], plain["logged/grad_norm"],
                             rtol=2e-3 if atol else rtol)
  for name in [k for k in plain if k.startswith("model/")]:
    if any(marker in name for marker in ZERO_GRADIENT):
      continue
    scale = np.abs(plain[name]).max()
    assert np.abs(compiled[name] - plain[name]).max() <= max(rtol * scale, atol), name
