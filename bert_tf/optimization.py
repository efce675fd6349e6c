"""Optimizers and learning-rate schedule of BERT pretraining and fine-tuning (Keras 3).

  WarmupPolynomialDecay  google-research/bert's schedule: linear warmup from 0 to the peak over
                         num_warmup_steps, then polynomial (power 1: linear) decay to
                         end_learning_rate at num_train_steps. As in the original the decay is
                         counted from step 0, so right after warmup the rate is already
                         peak * (1 - num_warmup_steps / num_train_steps).
  Lamb                   LAMB (You et al. 2019) as in tf-models-official and BERT-wwm's
                         pretraining: Adam moments with bias correction, decoupled weight decay
                         added to the update, per-variable trust ratio ||w|| / ||update||;
                         LayerNorm and bias variables take neither weight decay nor the trust
                         ratio.
  AdamWeightDecay        google-research/bert's AdamWeightDecayOptimizer: Adam moments without
                         bias correction, decoupled weight decay added to the update.

Keras 3's own Lamb applies no weight decay inside the trust ratio and has no exclusion lists;
its AdamW applies the decay separately and corrects the bias, so neither reproduces BERT.
Global-norm clipping (1.0 in BERT) is the Keras `global_clipnorm` argument; the norm is that of
the step's whole gradient, after the cross-replica sum (apply_summed_gradients).
"""
import re

import keras
import tensorflow as tf
from keras import ops

from bert_tf import distribute
from bert_tf import fused

# Variables matching any of these (re.search on the variable path) get no weight decay and no
# LAMB trust ratio, as in the original and tf-models-official.
DEFAULT_EXCLUDE = ("LayerNorm", "layer_norm", "bias")


@keras.saving.register_keras_serializable(package="bert_tf")
class WarmupPolynomialDecay(keras.optimizers.schedules.LearningRateSchedule):
  """Linear warmup to initial_learning_rate, then polynomial decay (see module doc)."""

  def __init__(self, initial_learning_rate, num_train_steps, num_warmup_steps=0,
               end_learning_rate=0.0, power=1.0):
    if num_train_steps <= 0:
      raise ValueError(f"num_train_steps must be positive, got {num_train_steps}")
    self.initial_learning_rate = float(initial_learning_rate)
    self.num_train_steps = int(num_train_steps)
    self.num_warmup_steps = int(num_warmup_steps)
    self.end_learning_rate = float(end_learning_rate)
    self.power = float(power)

  def __call__(self, step):
    step = ops.cast(step, "float32")
    # Phase 2 (the original's polynomial_decay over num_train_steps, from step 0).
    progress = ops.minimum(step, float(self.num_train_steps)) / float(self.num_train_steps)
    decayed = ((self.initial_learning_rate - self.end_learning_rate) *
               ops.power(1.0 - progress, self.power) + self.end_learning_rate)
    if not self.num_warmup_steps:
      return decayed
    # Phase 1: linear warmup while step < num_warmup_steps.
    warmup = self.initial_learning_rate * step / float(self.num_warmup_steps)
    return ops.where(step < float(self.num_warmup_steps), warmup, decayed)

  def get_config(self):
    return {"initial_learning_rate": self.initial_learning_rate,
            "num_train_steps": self.num_train_steps, "num_warmup_steps": self.num_warmup_steps,
            "end_learning_rate": self.end_learning_rate, "power": self.power}


class _DecoupledDecayOptimizer(keras.optimizers.Optimizer):
  """Shared parts: moments, weight-decay rate and the exclusion lists."""

  def __init__(self, learning_rate, weight_decay_rate, beta_1, beta_2, epsilon,
               exclude_from_weight_decay, name, **kwargs):
    super().__init__(learning_rate=learning_rate, name=name, **kwargs)
    self.weight_decay_rate = float(weight_decay_rate)
    self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
    self.exclude_from_weight_decay = list(exclude_from_weight_decay or ())
    self._gradient_scale = None  # the clipping factor of the step being applied, or None

  def build(self, var_list):
    if self.built:
      return
    super().build(var_list)
    self._m = [self.add_variable_from_reference(v, "m") for v in var_list]
    self._v = [self.add_variable_from_reference(v, "v") for v in var_list]

  def clip_scale(self, norm):
    """The factor that clips a gradient of global norm `norm` to global_clipnorm (1 without
    clipping). As Keras' clip_by_global_norm, a non-finite norm gives NaN (the training loop
    stops on it)."""
    if not self.global_clipnorm:
      return tf.constant(1.0, tf.float32)
    return (self.global_clipnorm * tf.minimum(1.0 / norm, 1.0 / self.global_clipnorm)
            + (norm - norm))

  def apply_summed_gradients(self, grads, variables):
    """One optimizer step from the step's whole gradient, in replica context or on one device.

    `grads` must already be summed over replicas (and accumulated micro-batches): the global norm
    and the clipping factor are those of that sum, so the step does not depend on how the batch
    was split (as in the Model Garden and NVIDIA's BERT). Every replica then applies the same
    update to its own copy of each variable (their aggregation is NONE), which keeps the copies
    equal without another cross-replica call: this function holds no collective, so it can be
    compiled with XLA on its own. The caller increments `iterations` afterwards.

    Args:
      grads: list of float Tensors (dense or IndexedSlices; densified: duplicate rows summed)
        or None, like `variables`.
      variables: the trainable variables.
    Returns:
      float32 scalar: the global norm of `grads` before clipping.
    """
    if not self.built:
      self.build(variables)
    pairs = [(tf.convert_to_tensor(g), v) for g, v in zip(grads, variables) if g is not None]
    norm = fused.global_norm([g for g, _ in pairs])
    # The update kernel multiplies each gradient by the clipping factor as it reads it, instead of
    # a separate pass writing every scaled gradient (about 3% of a BERT-base step on a CPU).
    self._gradient_scale = self.clip_scale(norm) if self.global_clipnorm else None
    learning_rate = self._get_current_learning_rate()
    for gradient, variable in pairs:
      self.update_step(gradient, variable, tf.cast(learning_rate, variable.dtype))
    self._gradient_scale = None
    return norm

  def apply(self, grads, trainable_variables=None):
    """Keras' apply (e.g. from apply_gradients or model.fit) with the same semantics as the
    training loop: gradients summed over replicas first, then clipped by their global norm.
    (Keras' own order clips each replica's gradient before the sum, so the effective threshold
    would move with the replica count.)"""
    if (self.clipnorm or self.clipvalue or self.use_ema or self.gradient_accumulation_steps or
        self.loss_scale_factor is not None):
      return super().apply(grads, trainable_variables)
    variables = list(trainable_variables) if trainable_variables is not None else (
        self._trainable_variables)
    grads = distribute.sum_over_replicas(
        [None if g is None else tf.convert_to_tensor(g) for g in grads])
    self.apply_summed_gradients(grads, variables)
    self.iterations.assign_add(1)
    return None

  @staticmethod
  def _matches(variable, patterns):
    path = getattr(variable, "path", None) or variable.name
    return any(re.search(p, path) for p in patterns)

  def use_weight_decay(self, variable):
    return bool(self.weight_decay_rate) and not self._matches(variable,
                                                              self.exclude_from_weight_decay)

  def _apply_update(self, gradient, variable, learning_rate, bias_correction, adapt):
    index = self._get_variable_index(variable)
    m, v = self._m[index], self._v[index]
    dtype = variable.dtype
    # One XLA kernel per variable instead of ~15 passes (bert_tf.fused).
    scale = self._gradient_scale  # set by apply_summed_gradients for this step
    new_m, new_v, new_variable = fused.adam_update(
        tf.cast(tf.convert_to_tensor(gradient), dtype),
        tf.constant(1.0, dtype) if scale is None else tf.cast(scale, dtype),
        tf.convert_to_tensor(variable),
        tf.convert_to_tensor(m), tf.convert_to_tensor(v), tf.cast(learning_rate, dtype),
        tf.cast(self.iterations + 1, dtype), self.beta_1, self.beta_2, self.epsilon,
        self.weight_decay_rate, bias_correction, self.use_weight_decay(variable), adapt)
    self.assign(m, new_m)
    self.assign(v, new_v)
    self.assign(variable, new_variable)

  def get_config(self):
    config = super().get_config()
    config.update(weight_decay_rate=self.weight_decay_rate, beta_1=self.beta_1,
                  beta_2=self.beta_2, epsilon=self.epsilon,
                  exclude_from_weight_decay=self.exclude_from_weight_decay)
    return config


@keras.saving.register_keras_serializable(package="bert_tf")
class Lamb(_DecoupledDecayOptimizer):
  """LAMB with BERT's weight decay and exclusions (see module doc).

  Args:
    learning_rate: float or schedule.
    weight_decay_rate: decoupled weight decay, added to the update before the trust ratio.
    beta_1, beta_2, epsilon: Adam parameters (tf-models-official's defaults).
    exclude_from_weight_decay: regexes of variable paths without weight decay.
    exclude_from_layer_adaptation: regexes of variable paths without the trust ratio
      (default: the weight-decay exclusions).
    **kwargs: keras.optimizers.Optimizer arguments, e.g. global_clipnorm=1.0.
  """

  def __init__(self, learning_rate=0.001, weight_decay_rate=0.01, beta_1=0.9, beta_2=0.999,
               epsilon=1e-6, exclude_from_weight_decay=DEFAULT_EXCLUDE,
               exclude_from_layer_adaptation=None, name="lamb", **kwargs):
    super().__init__(learning_rate, weight_decay_rate, beta_1, beta_2, epsilon,
                     exclude_from_weight_decay, name, **kwargs)
    self.exclude_from_layer_adaptation = list(exclude_from_layer_adaptation or
                                              self.exclude_from_weight_decay)

  def update_step(self, gradient, variable, learning_rate):
    # m_hat / (sqrt(v_hat) + eps) with bias-corrected moments, plus decay * w; the variable moves
    # by learning_rate * ||w|| / ||update|| * update unless excluded from layer adaptation.
    self._apply_update(gradient, variable, learning_rate, bias_correction=True,
                       adapt=not self._matches(variable, self.exclude_from_layer_adaptation))

  def get_config(self):
    config = super().get_config()
    config["exclude_from_layer_adaptation"] = self.exclude_from_layer_adaptation
    return config


@keras.saving.register_keras_serializable(package="bert_tf")
class AdamWeightDecay(_DecoupledDecayOptimizer):
  """google-research/bert's AdamWeightDecayOptimizer (no bias correction; see module doc)."""

  def __init__(self, learning_rate=0.001, weight_decay_rate=0.01, beta_1=0.9, beta_2=0.999,
               epsilon=1e-6, exclude_from_weight_decay=DEFAULT_EXCLUDE,
               name="adam_weight_decay", **kwargs):
    super().__init__(learning_rate, weight_decay_rate, beta_1, beta_2, epsilon,
                     exclude_from_weight_decay, name, **kwargs)

  def update_step(self, gradient, variable, learning_rate):
    # m / (sqrt(v) + eps) + decay * w, without bias correction, as the original.
    self._apply_update(gradient, variable, learning_rate, bias_correction=False, adapt=False)


def create_optimizer(name, learning_rate, num_train_steps, num_warmup_steps, weight_decay_rate=0.01,
                     beta_1=0.9, beta_2=0.999, epsilon=1e-6, clip_norm=1.0):
  """The optimizer of a BERT run: lamb | adamw, with the warmup/decay schedule and clipping."""
  schedule = WarmupPolynomialDecay(learning_rate, num_train_steps, num_warmup_steps)
  kinds = {"lamb": Lamb, "adamw": AdamWeightDecay}
  if name not in kinds:
    raise ValueError(f"optimizer must be one of {sorted(kinds)}, got {name!r}")
  return kinds[name](learning_rate=schedule, weight_decay_rate=weight_decay_rate, beta_1=beta_1,
                     beta_2=beta_2, epsilon=epsilon, global_clipnorm=clip_norm or None)
