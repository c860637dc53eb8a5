"""Progressive knowledge transfer: stage gate, and which variables a stage-l step may change."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from mobilebert import checkpoint
from mobilebert.config import BertConfig
from pretrain import distillation
from pretrain.pretraining_model import ModelOptions, PretrainingModel
from pretrain.pretraining_model_fn import TrainOptions, model_fn_builder
from pretrain.progressive import ProgressiveSchedule, layer_index
from pretraining_testlib import (STUDENT_CONFIG, TEACHER_CHECKPOINT, TEACHER_CONFIG, batch_features,
                                 random_instances, variable_values)

FACTORS = distillation.TransferLosses(100.0, 1.0, 5000.0, 5.0)  # the release's factors


def test_stage_of_step_at_boundaries_in_python_and_in_the_graph():
  schedule = ProgressiveSchedule(num_layers=3, num_distill_steps=10)  # stages of 3, last takes 4
  expected = [0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2]
  assert [schedule.stage_of_step(s) for s in range(12)] == expected
  with tf.Graph().as_default(), tf.Session() as session:
    step = tf.placeholder(tf.int64, [])
    tensors = schedule.stage_tensors(step)
    gates = [schedule.layer_gate(tensors.stage, layer) for layer in range(3)]
    for s, stage in enumerate(expected):
      got_stage, got_gates = session.run([tensors.stage, gates], {step: s})
      assert got_stage == stage
      assert list(got_gates) == [1.0 if layer == stage else 0.0 for layer in range(3)]


def test_stage_ramp_and_layer_scales():
  schedule = ProgressiveSchedule(num_layers=2, num_distill_steps=200, lower_layer_lr_scale=0.1)
  assert schedule.steps_per_stage == 100 and schedule.ramp_steps == 10
  with tf.Graph().as_default(), tf.Session() as session:
    step = tf.placeholder(tf.int64, [])
    ramp = schedule.stage_tensors(step).ramp
    ramps = [session.run(ramp, {step: s}) for s in (0, 4, 9, 50, 100, 105, 150)]
  np.testing.assert_allclose(ramps, [0.1, 0.5, 1.0, 1.0, 0.1, 0.6, 1.0], rtol=1e-6)
  assert schedule.scale_of_layer(1, 1, 50) == 1.0
  assert schedule.scale_of_layer(0, 1, 50) == 0.1
  assert schedule.scale_of_layer(1, 0, 50) == 0.0
  with pytest.raises(ValueError, match="num_distill_steps"):
    ProgressiveSchedule(num_layers=4, num_distill_steps=3)


def _train_graph(optimizer, lower_layer_lr_scale):
  """One progressive train step of the tiny pair: (train_op, global_step); stages of 10 steps."""
  student = BertConfig.from_json_file(STUDENT_CONFIG)
  teacher = BertConfig.from_json_file(TEACHER_CONFIG)
  tf.set_random_seed(7)
  options = ModelOptions(student, "progressive", teacher, FACTORS,
                         schedule=ProgressiveSchedule(2, 20, lower_layer_lr_scale))
  model_fn = model_fn_builder(options, TrainOptions(1e-3, 20, optimizer=optimizer),
                              init_checkpoint=TEACHER_CHECKPOINT)
  features = batch_features(random_instances(4, 16, 4, seed=3))
  spec = model_fn(features, None, tf.estimator.ModeKeys.TRAIN, {})
  return spec.train_op, tf.train.get_global_step()


def _step(train_op, global_step, step):
  """Values of every variable before and after one train step taken at `step`.

  A new session per step: it draws the same initial values every time (the graph seed is fixed).
  """
  with tf.Session() as session:
    session.run(tf.global_variables_initializer())
    session.run(global_step.assign(step))
    before = variable_values(session)
    session.run(train_op)
    return before, variable_values(session)


def _moved(before, after, name):
  return float(np.abs(after[name] - before[name]).sum())


@pytest.fixture(name="steps", scope="module", params=["adamw", "lamb"])
def fixture_steps(request):
  """{(lower scale, stage): (before, after)} for one optimizer."""
  results = {}
  for lower in (0.1, 1.0):
    with tf.Graph().as_default():
      train_op, global_step = _train_graph(request.param, lower)
      for stage in ((0, 1) if lower == 0.1 else (1,)):
        results[lower, stage] = _step(train_op, global_step, 10 * stage)
  return results


def _groups(values):
  names = [n for n in values if not n.endswith(("adam_m", "adam_v")) and n != "global_step"]
  return {
      "teacher": [n for n in names if n.startswith("teacher/")],
      "layer_0": [n for n in names if layer_index(n) == 0],
      "layer_1": [n for n in names if layer_index(n) == 1],
      "copied": ["bert/embeddings/word_embeddings", "bert/embeddings/token_type_embeddings",
                 "bert/embeddings/position_embeddings"],
      "embedding_rest": ["bert/embeddings/embedding_transformation/kernel",
                         "bert/embeddings/FakeLayerNorm/gamma"],
      "head": [n for n in names if n.startswith("cls/")],
  }


def test_stage_0_trains_layer_0_and_the_embedding_transformation_only(steps):
  before, after = steps[0.1, 0]
  groups = _groups(before)
  assert all(_moved(before, after, n) > 0 for n in groups["layer_0"] + groups["embedding_rest"])
  for name in groups["layer_1"] + groups["copied"] + groups["head"] + groups["teacher"]:
    assert _moved(before, after, name) == 0, name
  # A frozen layer's moments stay untouched too (the original's AdamW decayed such weights).
  assert all(not after[n + "/adam_m"].any() for n in groups["layer_1"] if n + "/adam_m" in after)


def test_stage_1_trains_layer_1_fully_and_layer_0_at_the_reduced_rate(steps):
  before, after = steps[0.1, 1]
  before_full, after_full = steps[1.0, 1]
  groups = _groups(before)
  assert all(_moved(before, after, n) > 0 for n in groups["layer_1"])
  for name in groups["copied"] + groups["head"] + groups["teacher"]:
    assert _moved(before, after, name) == 0, name
  for name in groups["layer_0"] + groups["embedding_rest"]:
    reduced, full = _moved(before, after, name), _moved(before_full, after_full, name)
    assert full > 0 and reduced == pytest.approx(0.1 * full, rel=1e-3), name
  for name in groups["layer_1"]:  # the current layer does not depend on the lower layers' rate
    np.testing.assert_allclose(after[name], after_full[name], rtol=1e-6, atol=1e-7)


def test_no_optimizer_slot_is_created_for_the_teacher(steps):
  before, _ = steps[0.1, 0]
  assert not [n for n in before if n.startswith("teacher/") and "adam" in n]


def test_transfer_losses_vanish_in_every_stage_when_the_student_is_the_teacher():
  """Per-layer pairing: with the original's all-layer mean/variance the losses would not vanish."""
  config = BertConfig.from_json_file(TEACHER_CONFIG)
  with tf.Graph().as_default():
    step = tf.placeholder(tf.int64, [])
    options = ModelOptions(config, "progressive", config, FACTORS,
                           schedule=ProgressiveSchedule(2, 2))
    model = PretrainingModel(options, batch_features(random_instances(2, 16, 4)), False, step)
    checkpoint.init_from_checkpoint(TEACHER_CHECKPOINT, model.student_variables(), log=False)
    checkpoint.init_from_checkpoint(TEACHER_CHECKPOINT, model.teacher_variables(),
                                    graph_prefix="teacher/", log=False)
    teacher_layers = tf.stack(model.teacher.get_all_encoder_layers()[1:])    # [L, B, T, H]
    student_layer = model.student.get_all_encoder_layers()[1]
    # The original: statistics of the stacked teacher layers against student layer 0.
    original_mean_loss = tf.reduce_mean(tf.squared_difference(
        tf.reduce_mean(teacher_layers, -1), tf.reduce_mean(student_layer, -1)))
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      for stage in (0, 1):
        losses = session.run(model.losses, {step: stage})
        for name in ("feature_map_transfer", "attention_transfer", "mean_transfer",
                     "variance_transfer"):
          assert getattr(losses, name) == pytest.approx(0.0, abs=1e-5), (stage, name)
      assert session.run(original_mean_loss, {step: 0}) > 1e-4
