"""Schedule and optimizers against the references: tf-models-official's LAMB step by step, and
google-research/bert's AdamWeightDecayOptimizer and learning-rate formula transcribed."""
import numpy as np
import pytest
import keras

from bert_tf import optimization

NAMES = ["layer_0_attention_output_LayerNorm_gamma", "layer_0_attention_output_dense_bias",
         "layer_0_attention_output_dense_kernel", "word_embeddings"]
SHAPES = [(8,), (8,), (6, 8), (11, 8)]


def variables_and_gradients(seed=0, steps=6):
  rng = np.random.default_rng(seed)
  values = [rng.normal(size=s).astype(np.float32) for s in SHAPES]
  values[0] = 1.0 + 0.1 * values[0]
  grads = [[rng.normal(scale=0.5, size=s).astype(np.float32) for s in SHAPES] for _ in range(steps)]
  if steps > 2:
    grads[2][1][:] = 0.0    # a zero gradient somewhere
  return values, grads


def run_ours(optimizer, values, grads):
  variables = [keras.Variable(v, name=n) for v, n in zip(values, NAMES)]
  for step_grads in grads:
    optimizer.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in step_grads], variables))
  return [np.array(v.numpy()) for v in variables]


@pytest.mark.parametrize("weight_decay,clip_norm", [(0.01, None), (0.0, None), (0.01, 1.0)])
def test_lamb_matches_tf_models_step_by_step(weight_decay, clip_norm):
  tf = pytest.importorskip("tensorflow")
  lamb = pytest.importorskip("official.modeling.optimization.lamb")
  values, grads = variables_and_gradients()
  if clip_norm:  # global norms about 14: every step is clipped (our update kernel scales them)
    grads = [[g * 2.0 for g in step_grads] for step_grads in grads]
  exclude = ["LayerNorm", "layer_norm", "bias"]
  reference = lamb.LAMB(learning_rate=0.01, weight_decay_rate=weight_decay,
                        exclude_from_weight_decay=exclude, global_clipnorm=clip_norm)
  ref_vars = [tf.Variable(v, name=n) for v, n in zip(values, NAMES)]
  ours = optimization.Lamb(learning_rate=0.01, weight_decay_rate=weight_decay,
                           global_clipnorm=clip_norm)
  variables = [keras.Variable(v, name=n) for v, n in zip(values, NAMES)]
  for step_grads in grads:
    reference.apply_gradients(zip([tf.constant(g) for g in step_grads], ref_vars))
    ours.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in step_grads], variables))
    for r, o, name in zip(ref_vars, variables, NAMES):
      np.testing.assert_allclose(o.numpy(), r.numpy(), rtol=2e-5, atol=2e-6, err_msg=name)


def original_adam_weight_decay(values, grads, lr, wd=0.01, b1=0.9, b2=0.999, eps=1e-6):
  """google-research/bert optimization.py AdamWeightDecayOptimizer.apply_gradients, in numpy."""
  params = [v.astype(np.float64) for v in values]
  m = [np.zeros_like(p) for p in params]
  v = [np.zeros_like(p) for p in params]
  for step_grads in grads:
    for i, (g, name) in enumerate(zip(step_grads, NAMES)):
      m[i] = b1 * m[i] + (1.0 - b1) * g
      v[i] = b2 * v[i] + (1.0 - b2) * np.square(g)
      update = m[i] / (np.sqrt(v[i]) + eps)
      if not any(k in name for k in ("LayerNorm", "layer_norm", "bias")):
        update += wd * params[i]
      params[i] = params[i] - lr * update
  return params


def test_adam_weight_decay_matches_the_original():
  values, grads = variables_and_gradients(seed=1)
  ours = run_ours(optimization.AdamWeightDecay(learning_rate=0.01), values, grads)
  for o, e, name in zip(ours, original_adam_weight_decay(values, grads, 0.01), NAMES):
    np.testing.assert_allclose(o, e, rtol=1e-5, atol=1e-6, err_msg=name)


def test_exclusions_cover_layer_norm_and_bias_only():
  opt = optimization.Lamb()
  flags = [opt.use_weight_decay(keras.Variable(np.zeros(2, np.float32), name=n)) for n in NAMES]
  assert flags == [False, False, True, True]


def original_learning_rate(step, init_lr, num_train_steps, num_warmup_steps):
  """The original create_optimizer's learning rate at global_step (polynomial_decay, power 1,
  end 0, then linear warmup)."""
  decayed = init_lr * (1.0 - min(step, num_train_steps) / num_train_steps)
  if step < num_warmup_steps:
    return init_lr * step / num_warmup_steps
  return decayed


def test_schedule_hand_checked_points():
  schedule = optimization.WarmupPolynomialDecay(1e-4, num_train_steps=1000, num_warmup_steps=100)
  for step in (0, 1, 50, 99, 100, 101, 500, 999, 1000, 1500):
    expected = original_learning_rate(step, 1e-4, 1000, 100)
    # float32 arithmetic, as on device: 1 - 999/1000 keeps ~4 significant digits.
    assert float(schedule(step)) == pytest.approx(expected, rel=2e-4, abs=1e-12), step
  assert float(schedule(50)) == pytest.approx(5e-5)
  assert float(schedule(100)) == pytest.approx(9e-5)     # decay counted from step 0
  no_warmup = optimization.WarmupPolynomialDecay(2e-5, num_train_steps=10)
  assert float(no_warmup(0)) == pytest.approx(2e-5) and float(no_warmup(5)) == pytest.approx(1e-5)


def test_global_norm_clipping():
  values, grads = variables_and_gradients(seed=2, steps=1)
  big = [[g * 100.0 for g in grads[0]]]
  norm = np.sqrt(sum(np.sum(np.square(g)) for g in big[0]))
  clipped = [[g / norm for g in big[0]]]
  with_clip = run_ours(optimization.AdamWeightDecay(0.01, global_clipnorm=1.0), values, big)
  by_hand = run_ours(optimization.AdamWeightDecay(0.01), values, clipped)
  for a, b in zip(with_clip, by_hand):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_create_optimizer_and_config_round_trip():
  opt = optimization.create_optimizer("lamb", 1e-3, 1000, 10, weight_decay_rate=0.02)
  assert isinstance(opt, optimization.Lamb) and opt.global_clipnorm == 1.0
  again = optimization.Lamb.from_config(opt.get_config())
  assert again.weight_decay_rate == 0.02 and again.exclude_from_layer_adaptation == list(
      optimization.DEFAULT_EXCLUDE)
  with pytest.raises(ValueError, match="optimizer must be one of"):
    optimization.create_optimizer("sgd", 1e-3, 10, 1)
