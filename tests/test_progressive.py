"""Progressive knowledge transfer: stage gates of both schedules, and which variables a step may change.

The original schedule's optimizer step is golden-tested in test_warmup_optimizer_golden.py; here the
staged schedule's own invariants, and both schedules on the tiny student/teacher pair's real graph.
"""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from mobilebert import checkpoint
from mobilebert.config import BertConfig
from pretrain import distillation
from pretrain.pretraining_model import ModelOptions, PretrainingModel
from pretrain.pretraining_model_fn import TrainOptions, model_fn_builder
from pretrain import progressive
from pretrain.progressive import layer_index
from pretraining_testlib import (STUDENT_CONFIG, TEACHER_CHECKPOINT, TEACHER_CONFIG, batch_features,
                                 random_instances, variable_values)

FACTORS = distillation.TransferLosses(100.0, 1.0, 5000.0, 5.0)  # the release's factors


@pytest.mark.parametrize("name, expected", [
    # Ours: [s*l, s*(l+1)), the last stage takes the remainder.
    (progressive.STAGED, [0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2]),
    # The original's piecewise_constant: s*l+1 ... s*l+s; step 0 and steps after s*L train no layer.
    (progressive.ORIGINAL, [-1, 0, 0, 0, 1, 1, 1, 2, 2, 2, -1, -1]),
])
def test_stage_of_step_at_boundaries_in_python_and_in_the_graph(name, expected):
  schedule = progressive.make_schedule(name, "adamw", num_layers=3, num_distill_steps=10)  # s = 3
  assert [schedule.stage_of_step(s) for s in range(12)] == expected
  with tf.Graph().as_default(), tf.Session() as session:
    step = tf.placeholder(tf.int64, [])
    tensors = schedule.stage_tensors(step)
    gates = [schedule.layer_gate(tensors.stage, layer) for layer in range(3)]
    for s, stage in enumerate(expected):
      got_stage, got_gates = session.run([tensors.stage, gates], {step: s})
      assert got_stage == stage
      assert list(got_gates) == [1.0 if layer == stage else 0.0 for layer in range(3)]


def test_staged_ramp_and_layer_scales():
  schedule = progressive.make_schedule(progressive.STAGED, "lamb", 2, 200, lower_layer_lr_scale=0.1)
  assert schedule.steps_per_stage == 100 and schedule.ramp_steps == 10
  ramps = [schedule.scale_of_layer(s // 100, s) for s in (0, 4, 9, 50, 100, 105, 150)]
  np.testing.assert_allclose(ramps, [0.1, 0.5, 1.0, 1.0, 0.1, 0.6, 1.0], rtol=1e-6)
  assert schedule.scale_of_layer(0, 150) == 0.1
  assert schedule.scale_of_layer(1, 50) == 0.0
  with pytest.raises(ValueError, match="num_distill_steps"):
    progressive.make_schedule(progressive.STAGED, "lamb", num_layers=4, num_distill_steps=3)


def test_original_lamb_rates_follow_the_papers_background_schedule():
  schedule = progressive.make_schedule(progressive.ORIGINAL, "lamb", 2, 200)  # s = 100
  background = lambda t: min(0.9 + 0.1 * np.sqrt(1 - t / 100), 10 * t / 100)
  # Step 100 is layer 0's last step, at t = 0: the background is 0 at every stage's first step.
  for step, layer_0, layer_1 in [(0, 0.0, 0.0), (1, 0.3, 0.0), (10, 3 * background(10), 0.0),
                                 (60, 3 * background(60), 0.0), (100, 0.0, 0.0),
                                 (101, 0.1 * 0.3, 0.3), (199, 0.3 * background(99), 3 * background(99)),
                                 (200, 0.0, 0.0)]:
    assert schedule.scale_of_layer(0, step) == pytest.approx(layer_0), step
    assert schedule.scale_of_layer(1, step) == pytest.approx(layer_1), step
  adamw = progressive.make_schedule(progressive.ORIGINAL, "adamw", 2, 200)
  assert adamw.scale_of_layer(0, 50) is None  # the original's AdamW applies no layer-wise rate


def _train_graph(optimizer, lower_layer_lr_scale, schedule_name=progressive.STAGED):
  """One progressive train step of the tiny pair: (train_op, global_step); stages of 10 steps."""
  student = BertConfig.from_json_file(STUDENT_CONFIG)
  teacher = BertConfig.from_json_file(TEACHER_CONFIG)
  tf.set_random_seed(7)
  options = ModelOptions(student, "progressive", teacher, FACTORS,
                         schedule=progressive.make_schedule(schedule_name, optimizer, 2, 20,
                                                            lower_layer_lr_scale))
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
  """{(lower scale, stage): (before, after)} staged, ("original", 5): the original's step 5."""
  results = {"optimizer": request.param}
  for lower in (0.1, 1.0):
    with tf.Graph().as_default():
      train_op, global_step = _train_graph(request.param, lower)
      for stage in ((0, 1) if lower == 0.1 else (1,)):
        results[lower, stage] = _step(train_op, global_step, 10 * stage)
  with tf.Graph().as_default():
    train_op, global_step = _train_graph(request.param, 0.1, progressive.ORIGINAL)
    results["original", 5] = _step(train_op, global_step, 5)
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


def test_original_schedule_on_the_real_graph(steps):
  """Stage 0 of the original: LAMB trains layer 0 only; AdamW trains (decays) every student weight."""
  before, after = steps["original", 5]
  groups = _groups(before)
  for name in groups["teacher"] + groups["head"]:
    if name in groups["teacher"] or steps["optimizer"] == "lamb" or name.endswith("bias"):
      assert _moved(before, after, name) == 0, name
  assert all(_moved(before, after, n) > 0 for n in groups["layer_0"])
  outside = groups["layer_1"] + groups["copied"] + groups["embedding_rest"]
  if steps["optimizer"] == "lamb":
    for name in outside:
      assert _moved(before, after, name) == 0, name
      assert not after[name + "/adam_m"].any() and not after[name + "/adam_v"].any(), name
  else:  # no layer-wise rate: weight decay moves the weights that get no gradient
    decayed = [n for n in outside if n.endswith("kernel") or n.endswith("embeddings")]
    assert decayed and all(_moved(before, after, n) > 0 for n in decayed)
    assert all(not after[n + "/adam_m"].any() for n in groups["layer_1"])


def test_no_optimizer_slot_is_created_for_the_teacher(steps):
  before, _ = steps[0.1, 0]
  assert not [n for n in before if n.startswith("teacher/") and "adam" in n]


def test_transfer_losses_vanish_in_every_stage_when_the_student_is_the_teacher():
  """Per-layer pairing: with the original's all-layer mean/variance the losses would not vanish."""
  config = BertConfig.from_json_file(TEACHER_CONFIG)
  with tf.Graph().as_default():
    step = tf.placeholder(tf.int64, [])
    options = ModelOptions(config, "progressive", config, FACTORS,
                           schedule=progressive.make_schedule(progressive.STAGED, "adamw", 2, 2))
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


def test_original_schedule_gates_the_model_losses_at_its_boundaries():
  """In the model: the original's step 0 and steps after s*L carry no transfer loss, step 1 does."""
  student = BertConfig.from_json_file(STUDENT_CONFIG)
  with tf.Graph().as_default():
    step = tf.placeholder(tf.int64, [])
    options = ModelOptions(student, "progressive", BertConfig.from_json_file(TEACHER_CONFIG),
                           FACTORS, schedule=progressive.make_schedule(
                               progressive.ORIGINAL, "lamb", 2, 5))  # s = 2: stages 1-2, 3-4
    model = PretrainingModel(options, batch_features(random_instances(2, 16, 4)), False, step)
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      totals = [session.run(model.total_loss, {step: s}) for s in range(6)]
  assert totals[0] == 0.0 and totals[5] == 0.0
  assert all(t > 0 for t in totals[1:5])
