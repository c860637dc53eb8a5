"""The warm-up's optimizer step against the original's (golden/warmup_optimizer.json), and resuming it.

The golden ran the original `create_optimizer` with the warm-up's arguments on 9 named toy variables
(2 layers, 20 distillation steps, rate 1e-3 with 4 warm-up steps, decay 0.01, clipping 1): its loss is
sum(variable * recorded gradient), so feeding the recorded gradients replays the run exactly. The
train op here is built by `pretraining_model_fn.build_phase_train_op`, the function model_fn uses,
with the schedule `run_pretraining.py` builds from its flags.
"""

import json

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from conftest import REFERENCE
from pretrain import progressive
from pretrain.pretraining_model_fn import TrainOptions, build_phase_train_op

GOLDEN = json.loads((REFERENCE / "golden" / "warmup_optimizer.json").read_text())
TEACHER = "teacher/"


def _graph(schedule_name, optimizer):
  """(train_op, learning_rate, gradient placeholders, variables) of the golden's set-up."""
  variables = {name: tf.get_variable(name, initializer=np.asarray(value, np.float32))
               for name, value in GOLDEN["initial"].items()}
  student = [v for n, v in variables.items() if not n.startswith(TEACHER)]
  teacher = [v for n, v in variables.items() if n.startswith(TEACHER)]
  grads = {progressive.variable_name(v): tf.placeholder(tf.float32, v.shape) for v in student}
  loss = tf.add_n([tf.reduce_sum(v * grads[progressive.variable_name(v)]) for v in student])
  schedule = progressive.make_schedule(schedule_name, optimizer, GOLDEN["num_hidden_layers"],
                                       GOLDEN["num_distill_steps"])
  train = TrainOptions(learning_rate=GOLDEN["learning_rate"],
                       num_train_steps=GOLDEN["num_distill_steps"],
                       num_warmup_steps=GOLDEN["num_warmup_steps"], optimizer=optimizer,
                       weight_decay_rate=GOLDEN["weight_decay_rate"])
  step = tf.identity(tf.train.get_or_create_global_step())
  result = build_phase_train_op(loss, step, train, student, teacher, schedule)
  return result, grads, variables


def _feed(grads, step):
  return {placeholder: np.asarray(GOLDEN["gradients"][step][name], np.float32)
          for name, placeholder in grads.items()}


def _run(schedule_name, optimizer, steps, checkpoint=None, save=None):
  """Variable values after each of `steps` (a range of global steps), optionally resumed/saved."""
  with tf.Graph().as_default():
    result, grads, variables = _graph(schedule_name, optimizer)
    saver = tf.train.Saver()
    after = []
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      if checkpoint:
        saver.restore(session, checkpoint)
      for step in steps:
        assert session.run(tf.train.get_global_step()) == step
        _, rate = session.run([result.train_op, result.learning_rate], _feed(grads, step))
        after.append((rate, session.run(variables)))
      if save:
        saver.save(session, save)
  return after


@pytest.mark.parametrize("optimizer", ["lamb", "adamw"])
def test_original_schedule_replays_the_golden_after_every_step(optimizer):
  steps = GOLDEN["optimizers"][optimizer]
  ours = _run(progressive.ORIGINAL, optimizer, range(len(steps)))
  for step, (golden, (rate, values)) in enumerate(zip(steps, ours)):
    assert golden["global_step_before"] == step
    assert rate == pytest.approx(golden["learning_rate"], abs=1e-9), step
    for name, expected in golden["after"].items():
      np.testing.assert_allclose(values[name], expected, rtol=0, atol=1e-6,
                                 err_msg=f"{optimizer} step {step} {name}")


def test_staged_schedule_differs_from_the_golden_where_it_says():
  """Ours is not the original's: the embedding transformation trains in stage 0 (LAMB)."""
  ours = _run(progressive.STAGED, "lamb", range(3))
  name = "bert/embeddings/embedding_transformation/kernel"
  golden = GOLDEN["optimizers"]["lamb"][2]["after"][name]
  np.testing.assert_array_equal(np.asarray(golden, np.float32), GOLDEN["initial"][name])
  assert np.abs(ours[-1][1][name] - golden).max() > 1e-4


@pytest.mark.parametrize("schedule_name", progressive.SCHEDULES)
@pytest.mark.parametrize("optimizer", ["lamb", "adamw"])
def test_resuming_mid_stage_continues_the_same_run(tmp_path, schedule_name, optimizer):
  """7 steps, a checkpoint, a new graph restored from it, 13 more: the same as 20 in one go."""
  total = GOLDEN["num_distill_steps"]
  straight = _run(schedule_name, optimizer, range(total))
  prefix = str(tmp_path / "model.ckpt")
  first = _run(schedule_name, optimizer, range(7), save=prefix)
  resumed = first + _run(schedule_name, optimizer, range(7, total), checkpoint=prefix)
  for step, ((rate_a, a), (rate_b, b)) in enumerate(zip(straight, resumed)):
    assert rate_a == rate_b
    for name in a:
      np.testing.assert_array_equal(a[name], b[name], err_msg=f"step {step} {name}")


@pytest.mark.parametrize("schedule_name", progressive.SCHEDULES)
@pytest.mark.parametrize("optimizer", ["lamb", "adamw"])
def test_stage_and_rates_are_functions_of_the_step_alone(schedule_name, optimizer):
  """The graph's stage and per-layer scale at any step equal the Python mirror used for resuming."""
  schedule = progressive.make_schedule(schedule_name, optimizer, 2, 21)  # stages of 10, remainder 1
  with tf.Graph().as_default():
    layers = [tf.get_variable(f"bert/encoder/layer_{i}/output/dense/kernel", [1]) for i in range(2)]
    step = tf.placeholder(tf.int64, [])
    tensors = schedule.stage_tensors(step)
    rates = schedule.variable_rates(tensors, layers, [])
    scales = [rates.scale_fn(v) for v in layers] if rates else []
    with tf.Session() as session:
      for s in range(22):
        stage, got = session.run([tensors.stage, scales], {step: s})
        assert stage == schedule.stage_of_step(s), s
        expected = [schedule.scale_of_layer(layer, s) for layer in range(2)]
        if rates is None:
          assert expected == [None, None]
        else:
          np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7, err_msg=str(s))


def test_a_schedule_made_for_another_optimizer_is_refused():
  schedule = progressive.make_schedule(None, "lamb", 2, 20)
  assert schedule.name == progressive.ORIGINAL
  with tf.Graph().as_default():
    variable = tf.get_variable("bert/encoder/layer_0/output/dense/kernel", [2])
    with pytest.raises(ValueError, match="made for lamb, the phase trains with adamw"):
      build_phase_train_op(tf.reduce_sum(variable), tf.constant(0, tf.int64),
                           TrainOptions(1e-3, 20, optimizer="adamw"), [variable], [], schedule)
