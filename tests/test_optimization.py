"""Optimizers and schedule: BERT's AdamW/LAMB numbers, step ordering, per-variable freezing."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from mobilebert import optimization


def _run_steps(optimizer, steps, lr_scale=None, warmup=0, decay_rate=0.01, reset_moments=False):
  with tf.Graph().as_default():
    tf.set_random_seed(0)
    w = tf.get_variable("layer/dense/kernel", [3, 2], initializer=tf.ones_initializer())
    b = tf.get_variable("layer/dense/bias", [2], initializer=tf.zeros_initializer())
    frozen = tf.get_variable("frozen/kernel", [2], initializer=tf.ones_initializer())
    x = tf.constant([[1.0, -2.0, 0.5]])
    loss = tf.reduce_sum(tf.square(tf.matmul(x, w) + b - 3.0)) + tf.reduce_sum(frozen * 2.0)
    rates = None
    if lr_scale is not None:
      rates = optimization.VariableRates(
          lambda v: tf.constant(lr_scale) if v.name.startswith("frozen") else None, reset_moments)
    result = optimization.build_train_op(loss, 0.1, num_train_steps=10, num_warmup_steps=warmup,
                                         optimizer=optimizer, weight_decay_rate=decay_rate,
                                         variable_rates=rates)
    slots = sorted(v.name for v in tf.global_variables() if "adam" in v.name)
    frozen_m = [v for v in tf.global_variables() if v.name == "frozen/kernel/adam_m:0"][0]
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      session.run(frozen_m.assign([0.5, 0.5]))  # as if it had trained before being frozen
      rates = []
      for _ in range(steps):
        rates.append(session.run([result.train_op, result.learning_rate])[1])
      return session.run({"w": w, "b": b, "frozen": frozen, "frozen_m": frozen_m}), rates, slots


def test_schedule_warms_up_then_decays_linearly():
  with tf.Graph().as_default(), tf.Session() as session:
    rates = [session.run(optimization.learning_rate_schedule(1.0, 100, 10, tf.constant(s)))
             for s in (0, 5, 10, 55, 100, 120)]
  np.testing.assert_allclose(rates, [0.0, 0.5, 0.9, 0.45, 0.0, 0.0], atol=1e-6)


def test_each_step_uses_the_rate_of_the_step_before_its_increment():
  _, rates, _ = _run_steps("adamw", 3, warmup=4)
  np.testing.assert_allclose(rates, [0.0, 0.025, 0.05], atol=1e-7)


@pytest.mark.parametrize("optimizer", ["adamw", "lamb"])
def test_slots_are_named_like_the_release(optimizer):
  _, _, slots = _run_steps(optimizer, 1)
  assert "layer/dense/kernel/adam_m:0" in slots and "layer/dense/kernel/adam_v:0" in slots


def test_adamw_first_step_matches_hand_computation():
  values, _, _ = _run_steps("adamw", 1, decay_rate=0.01)
  # Step 1 has no bias correction: m = 0.1 g, v = 0.001 g^2, update = m/(sqrt(v)+eps) ~ 3.16 sign(g).
  x = np.array([1.0, -2.0, 0.5])
  pred = x.sum() * np.ones(2)           # w = ones, b = 0
  g_w = np.outer(x, 2 * (pred - 3.0))   # d loss / d w
  g_b = 2 * (pred - 3.0)
  norm = np.sqrt((g_w ** 2).sum() + (g_b ** 2).sum() + 4 * 2 ** 2)
  clip = min(1.0, 1.0 / norm)
  g_w = g_w * clip
  update = (0.1 * g_w) / (np.sqrt(0.001 * g_w ** 2) + 1e-6) + 0.01 * np.ones((3, 2))
  np.testing.assert_allclose(values["w"], 1.0 - 0.1 * update, rtol=1e-5)


@pytest.mark.parametrize("optimizer", ["adamw", "lamb"])
def test_scale_zero_freezes_a_variable_and_its_weight_decay(optimizer):
  values, _, _ = _run_steps(optimizer, 3, lr_scale=0.0)
  np.testing.assert_array_equal(values["frozen"], np.ones(2))
  np.testing.assert_array_equal(values["frozen_m"], [0.5, 0.5])  # moments kept
  assert not np.allclose(values["w"], 1.0)


@pytest.mark.parametrize("optimizer", ["adamw", "lamb"])
def test_scale_zero_with_reset_zeroes_the_moments_as_the_original_lamb(optimizer):
  values, _, _ = _run_steps(optimizer, 1, lr_scale=0.0, reset_moments=True)
  np.testing.assert_array_equal(values["frozen"], np.ones(2))
  np.testing.assert_array_equal(values["frozen_m"], [0.0, 0.0])


@pytest.mark.parametrize("optimizer", ["adamw", "lamb"])
def test_scale_reduces_the_step(optimizer):
  full, _, _ = _run_steps(optimizer, 1, lr_scale=1.0)
  tenth, _, _ = _run_steps(optimizer, 1, lr_scale=0.1)
  moved_full = np.abs(1.0 - full["frozen"]).sum()
  moved_tenth = np.abs(1.0 - tenth["frozen"]).sum()
  assert moved_full > 0 and moved_tenth == pytest.approx(moved_full * 0.1, rel=1e-3)


def test_unknown_optimizer_is_rejected():
  with pytest.raises(ValueError, match="--optimizer"):
    optimization.make_optimizer("sgd", 0.1)


def test_sparse_embedding_gradients_are_applied():
  with tf.Graph().as_default():
    table = tf.get_variable("word_embeddings", [5, 2], initializer=tf.ones_initializer())
    loss = tf.reduce_sum(tf.gather(table, [1, 3]))  # gradient is IndexedSlices
    train_op = optimization.create_optimizer(loss, 0.1, 10, 0, weight_decay_rate=0.0)
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      session.run(train_op)
      values = session.run(table)
  assert (values[[1, 3]] < 1).all() and (values[[0, 2, 4]] == 1).all()
