"""AdamW and LAMB with linear warm-up and linear decay, as BERT and MobileBERT train.

Slots are named `<variable>/adam_m` and `<variable>/adam_v` (both optimizers), so checkpoints match the
released ones. The learning rate of a step is computed from the global step *before* that step's
increment (the original left the read and the increment unordered in one train op, so a step could
see either; its golden, `tests/fixtures/reference/golden/warmup_optimizer.json`, fixes the same order).

Progressive knowledge transfer passes `VariableRates`: a per-variable learning-rate scale, applied by
AdamW and LAMB alike (the original applied one only inside LAMB). A variable whose scale is 0 keeps its
value and gets no weight decay; its moments are either kept (ours) or multiplied by 0 as the
original's LAMB does (`reset_frozen_moments`), which restarts them whenever the scale returns.
"""

import collections
import re

import tensorflow.compat.v1 as tf

from mobilebert import cli

TrainOp = collections.namedtuple("TrainOp", ["train_op", "learning_rate"])
# scale_fn: callable(variable) -> float32 scalar tensor (or None for 1.0) scaling that variable's rate.
# reset_frozen_moments: a variable at scale 0 has its moments zeroed instead of kept.
VariableRates = collections.namedtuple("VariableRates", ["scale_fn", "reset_frozen_moments"])

NO_DECAY_PATTERNS = ("LayerNorm", "layer_norm", "bias")


def learning_rate_schedule(init_lr, num_train_steps, num_warmup_steps, global_step):
  """Linear warm-up from 0 to `init_lr` over `num_warmup_steps`, then linear decay to 0.

  Args:
    global_step: int64 scalar tensor, the step being taken (0 for the first step).
  Returns:
    float32 scalar tensor.
  """
  step = tf.cast(global_step, tf.float32)
  decayed = init_lr * tf.maximum(0.0, 1.0 - step / float(max(num_train_steps, 1)))
  if not num_warmup_steps:
    return decayed
  warmup = init_lr * step / float(num_warmup_steps)
  return tf.where_v2(step < float(num_warmup_steps), warmup, decayed)


def build_train_op(loss, init_lr, num_train_steps, num_warmup_steps, use_tpu=False,
                   optimizer="adamw", weight_decay_rate=0.01, tvars=None, variable_rates=None,
                   clip_norm=1.0, loss_scale=None):
  """Gradients, clipping, the optimizer step and the global-step increment in one op.

  Args:
    loss: scalar loss tensor.
    optimizer: "adamw" or "lamb".
    tvars: variables to train (default: all trainable variables).
    variable_rates: optional VariableRates (per-variable learning-rate scales; 0 freezes).
    clip_norm: global-norm gradient clipping, as BERT.
    loss_scale: optional float; the loss is multiplied by it before differentiation and the
      gradients divided by it after (float16 training).
  Returns:
    TrainOp(train_op, learning_rate).
  """
  global_step = tf.train.get_or_create_global_step()
  step = tf.identity(global_step)  # read before this step's increment (see train_op below)
  learning_rate = learning_rate_schedule(init_lr, num_train_steps, num_warmup_steps, step)
  opt = make_optimizer(optimizer, learning_rate, weight_decay_rate, variable_rates)
  if use_tpu:
    opt = tf.tpu.CrossShardOptimizer(opt)
  tvars = tf.trainable_variables() if tvars is None else tvars
  scaled_loss = loss if loss_scale is None else loss * loss_scale
  grads = tf.gradients(scaled_loss, tvars)
  if loss_scale is not None:
    grads = [None if g is None else g / loss_scale for g in grads]
  present = [(g, v) for g, v in zip(grads, tvars) if g is not None]
  if not present:
    raise ValueError("the loss depends on none of the trainable variables")
  present = _mean_over_replicas(present)
  clipped, _ = tf.clip_by_global_norm([g for g, _ in present], clip_norm=clip_norm)
  apply_op = opt.apply_gradients(list(zip(clipped, [v for _, v in present])))
  # The increment waits for the update, whose learning rate was computed from the earlier read.
  with tf.control_dependencies([apply_op]):
    train_op = global_step.assign_add(1)
  return TrainOp(train_op, learning_rate)


def _mean_over_replicas(grads_and_vars):
  """Averages gradients over the replicas of a Mirrored/MultiWorkerMirrored strategy (else as is).

  The optimizers update variables with plain assigns in each replica; without this every replica
  would apply the gradient of its own share of the batch and the copies of a variable would drift
  apart (the checkpoint keeps replica 0's). With the mean, every replica applies the same update.
  """
  context = tf.distribute.get_replica_context()
  if not tf.distribute.has_strategy() or context is None or context.num_replicas_in_sync == 1:
    return grads_and_vars
  grads = [tf.convert_to_tensor(g) for g, _ in grads_and_vars]  # all-reduce dense IndexedSlices
  reduced = context.all_reduce(tf.distribute.ReduceOp.MEAN, grads)
  return list(zip(reduced, [v for _, v in grads_and_vars]))


def create_optimizer(loss, init_lr, num_train_steps, num_warmup_steps, use_tpu=False,
                     optimizer="adamw", weight_decay_rate=0.01, **kwargs):
  """BERT's signature: returns the train op only."""
  return build_train_op(loss, init_lr, num_train_steps, num_warmup_steps, use_tpu, optimizer,
                        weight_decay_rate, **kwargs).train_op


def make_optimizer(name, learning_rate, weight_decay_rate=0.01, variable_rates=None):
  try:
    cls = OPTIMIZERS[name]
  except KeyError:
    raise cli.FlagError(f"--optimizer must be one of {sorted(OPTIMIZERS)}, got {name!r}") from None
  return cls(learning_rate=learning_rate, weight_decay_rate=weight_decay_rate,
             exclude_from_weight_decay=list(NO_DECAY_PATTERNS), variable_rates=variable_rates)


class AdamWeightDecayOptimizer(tf.train.Optimizer):
  """Adam with decoupled weight decay and no bias correction (BERT's AdamW)."""

  def __init__(self, learning_rate, weight_decay_rate=0.0, beta_1=0.9, beta_2=0.999, epsilon=1e-6,
               exclude_from_weight_decay=None, variable_rates=None, name="AdamWeightDecayOptimizer"):
    super().__init__(False, name)
    self.learning_rate = learning_rate
    self.weight_decay_rate = weight_decay_rate
    self.beta_1 = beta_1
    self.beta_2 = beta_2
    self.epsilon = epsilon
    self.exclude_from_weight_decay = exclude_from_weight_decay or []
    self.variable_rates = variable_rates

  def apply_gradients(self, grads_and_vars, global_step=None, name=None):
    assignments = []
    for grad, param in grads_and_vars:
      if grad is None or param is None:
        continue
      # Embedding look-ups give IndexedSlices; the moment updates need dense gradients.
      grad = tf.convert_to_tensor(grad)
      param_name = _variable_name(param)
      m = self._slot_variable(param, param_name, "adam_m")
      v = self._slot_variable(param, param_name, "adam_v")
      next_m = self.beta_1 * m + (1.0 - self.beta_1) * grad
      next_v = self.beta_2 * v + (1.0 - self.beta_2) * tf.square(grad)
      update = next_m / (tf.sqrt(next_v) + self.epsilon)
      if self._do_use_weight_decay(param_name):
        update += self.weight_decay_rate * param
      next_param = param - self._rate(param, param_name, update) * update
      assignments.extend(self._assign(param, m, v, next_param, next_m, next_v))
    return tf.group(*assignments, name=name)

  # -- shared with LAMB ------------------------------------------------------------------------------
  def _slot_variable(self, param, param_name, slot):
    return tf.get_variable(f"{param_name}/{slot}", shape=param.shape.as_list(), dtype=tf.float32,
                           trainable=False, initializer=tf.zeros_initializer())

  def _scale(self, param):
    return None if self.variable_rates is None else self.variable_rates.scale_fn(param)

  def _rate(self, param, param_name, update):
    del param_name, update
    scale = self._scale(param)
    return self.learning_rate if scale is None else self.learning_rate * scale

  def _assign(self, param, m, v, next_param, next_m, next_v):
    scale = self._scale(param)
    if scale is not None:
      # A frozen variable (scale 0) keeps its value; its moments are kept or zeroed.
      active = scale > 0.0
      next_param = tf.where_v2(active, next_param, param)
      frozen_m, frozen_v = (0.0, 0.0) if self.variable_rates.reset_frozen_moments else (m, v)
      next_m = tf.where_v2(active, next_m, frozen_m)
      next_v = tf.where_v2(active, next_v, frozen_v)
    return [param.assign(next_param), m.assign(next_m), v.assign(next_v)]

  def _do_use_weight_decay(self, param_name):
    return bool(self.weight_decay_rate) and not self._excluded(param_name)

  def _excluded(self, param_name):
    return any(re.search(p, param_name) for p in self.exclude_from_weight_decay)


class LAMBOptimizer(AdamWeightDecayOptimizer):
  """LAMB: the AdamW update rescaled per variable by ||w|| / ||update|| (trust ratio)."""

  def __init__(self, learning_rate, weight_decay_rate=0.0, beta_1=0.9, beta_2=0.999, epsilon=1e-6,
               exclude_from_weight_decay=None, variable_rates=None, name="LAMBOptimizer"):
    super().__init__(learning_rate, weight_decay_rate, beta_1, beta_2, epsilon,
                     exclude_from_weight_decay, variable_rates, name)

  def _rate(self, param, param_name, update):
    rate = super()._rate(param, param_name, update)
    if self._excluded(param_name):
      return rate  # biases and norms take the plain Adam step, as in the original LAMB
    w_norm = tf.norm(param, ord=2)
    g_norm = tf.norm(update, ord=2)
    ratio = tf.where_v2(tf.greater(w_norm, 0.0),
                        tf.where_v2(tf.greater(g_norm, 0.0), w_norm / g_norm, 1.0), 1.0)
    return ratio * rate


OPTIMIZERS = {"adamw": AdamWeightDecayOptimizer, "lamb": LAMBOptimizer}


def _variable_name(param):
  match = re.match(r"^(.*):\d+$", param.name)
  return match.group(1) if match else param.name
