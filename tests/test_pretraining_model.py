"""The pretraining graph: phases' losses, initialization of student and teacher, eval metrics,
mixed precision."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from mobilebert import checkpoint
from mobilebert.config import BertConfig
from pretrain import initialization
from pretrain.pretraining_model import ModelOptions, PretrainingModel
from pretrain.pretraining_model_fn import TrainOptions, model_fn_builder
from pretraining_testlib import (GOLDEN, STUDENT_CONFIG, TEACHER_CHECKPOINT, TEACHER_CONFIG,
                                 batch_features, random_instances, variable_values)
from conftest import REFERENCE

RELEASE_LIKE = str(REFERENCE / "release_like" / "mobilebert.ckpt")
STUDENT = BertConfig.from_json_file(STUDENT_CONFIG)
TEACHER = BertConfig.from_json_file(TEACHER_CONFIG)


def _golden(path, prefix=""):
  return {name: tf.train.load_variable(path, name) for name, _ in tf.train.list_variables(path)
          if not name.endswith(("adam_m", "adam_v")) and name != "global_step"
          and name.startswith(prefix)}


def _distill_model(ratio=0.5, temperature=1.0):
  options = ModelOptions(STUDENT, "distill", TEACHER, ground_truth_ratio=ratio,
                         temperature=temperature)
  return PretrainingModel(options, batch_features(random_instances(2, 16, 4)), False)


def test_release_like_checkpoint_initializes_student_and_teacher():
  with tf.Graph().as_default():
    model = _distill_model()
    initialized = initialization.initialize(RELEASE_LIKE, model.student_variables(),
                                            model.teacher_variables())
    assert len(initialized) == 72 + 44
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      values = variable_values(session)
  for name, value in _golden(str(GOLDEN / "tiny_student_f2.ckpt")).items():
    np.testing.assert_array_equal(values[name], value, err_msg=name)
  for name, value in _golden(TEACHER_CHECKPOINT).items():
    if not name.startswith("cls/seq_relationship"):
      np.testing.assert_array_equal(values["teacher/" + name], value, err_msg=name)


def test_plain_teacher_checkpoint_copies_only_the_shared_non_encoder_variables():
  with tf.Graph().as_default():
    model = _distill_model()
    plan = initialization.plan(TEACHER_CHECKPOINT, model.student_variables(),
                               model.teacher_variables())
    copied = sorted(v.name.split(":")[0] for v in plan.student_vars)
  # The student's embedding LayerNorm is a FakeLayerNorm and its transformation has no twin.
  assert copied == sorted([
      "bert/embeddings/position_embeddings", "bert/embeddings/token_type_embeddings",
      "bert/embeddings/word_embeddings", "cls/predictions/output_bias",
      "cls/predictions/transform/LayerNorm/beta", "cls/predictions/transform/LayerNorm/gamma",
      "cls/predictions/transform/dense/bias", "cls/predictions/transform/dense/kernel"])
  assert len(plan.teacher_vars) == 44 and plan.teacher_prefix == ""


def test_a_checkpoint_without_the_teacher_is_refused():
  with tf.Graph().as_default():
    model = _distill_model()
    # The student's own checkpoint as the teacher's: the first teacher variable of another shape is
    # named, with the teacher's config as the likely cause.
    with pytest.raises(checkpoint.CheckpointError, match=(
        r"tiny_student_f2.ckpt: bert/encoder/layer_0/attention/self/query/kernel has shape \[32, 32\] "
        r"in the checkpoint but \[64, 64\] in the graph \(as teacher/bert/.*likely cause: "
        r"--bert_teacher_config_file does not describe the teacher")):
      initialization.initialize(str(GOLDEN / "tiny_student_f2.ckpt"), model.student_variables(),
                                model.teacher_variables())
    # Skipping mismatches does not make a partial teacher acceptable.
    with pytest.raises(checkpoint.CheckpointError, match="does not hold the teacher"):
      initialization.initialize(str(GOLDEN / "tiny_student_f2.ckpt"), model.student_variables(),
                                model.teacher_variables(), skip_mismatched=True)


def test_a_student_checkpoint_of_another_architecture_is_refused():
  """No teacher: the student comes from the checkpoint's names, and a wrong config is an error."""
  with tf.Graph().as_default():
    options = ModelOptions(TEACHER, "mlm")
    model = PretrainingModel(options, batch_features(random_instances(2, 16, 4)), False)
    with pytest.raises(checkpoint.CheckpointError, match=(
        r"likely cause: --bert_config_file does not describe the model in --init_checkpoint")):
      initialization.initialize(str(GOLDEN / "tiny_student_f2.ckpt"), model.student_variables(), [])


def test_distillation_loss_uses_teacher_probabilities_at_temperature():
  with tf.Graph().as_default():
    model = _distill_model(ratio=0.25, temperature=3.0)
    initialization.initialize(RELEASE_LIKE, model.student_variables(), model.teacher_variables())
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      loss, log_probs, logits, ids, weights = session.run(
          [model.losses.distillation, model.log_probs, model.teacher_logits, model.label_ids,
           model.label_weights])
  z = logits / 3.0
  probs = np.exp(z - z.max(-1, keepdims=True))
  probs /= probs.sum(-1, keepdims=True)
  targets = 0.75 * probs + 0.25 * np.eye(512)[ids]
  per_position = -(targets * log_probs).sum(-1)
  w = weights.reshape(-1)
  assert loss == pytest.approx((w * per_position).sum() / (w.sum() + 1e-5), rel=1e-5)


def test_plain_mlm_phase_has_no_teacher_and_adds_nsp_on_request():
  with tf.Graph().as_default():
    options = ModelOptions(TEACHER, "mlm", nsp=True)
    features = batch_features(random_instances(2, 16, 4, nsp=True))
    model = PretrainingModel(options, features, is_training=True)
    assert not model.teacher_variables()
    assert {"cls/seq_relationship/output_weights:0", "cls/seq_relationship/output_bias:0"} <= {
        v.name for v in model.student_variables()}
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      losses = session.run(model.losses)
  assert losses.total == pytest.approx(losses.masked_lm + losses.next_sentence, rel=1e-5)
  assert losses.next_sentence > 0 and losses.distillation == 0 and losses.feature_map_transfer == 0


def test_eval_metrics_weight_masked_positions():
  with tf.Graph().as_default():
    options = ModelOptions(STUDENT, "mlm")
    model_fn = model_fn_builder(options, TrainOptions(1e-3, 10))
    spec = model_fn(batch_features(random_instances(4, 16, 4, seed=9)), None,
                    tf.estimator.ModeKeys.EVAL, {})
    metric_fn, tensors = spec.eval_metrics
    metrics = metric_fn(*tensors)
    with tf.Session() as session:
      session.run([tf.global_variables_initializer(), tf.local_variables_initializer()])
      session.run([update for _, update in metrics.values()])
      values = session.run({name: value for name, (value, _) in metrics.items()})
      loss = session.run(spec.loss)
  assert set(values) == {"masked_lm_accuracy", "masked_lm_loss"}
  assert values["masked_lm_loss"] == pytest.approx(loss, rel=1e-4)  # the same weighted mean
  assert 0.0 <= values["masked_lm_accuracy"] <= 1.0


def _first_step_loss(compute_type, features):
  """Loss of the first train step of the distillation phase, and whether the step kept weights finite."""
  with tf.Graph().as_default():
    options = ModelOptions(STUDENT, "distill", TEACHER, ground_truth_ratio=0.5,
                           compute_type=compute_type)
    loss_scale = 1024.0 if compute_type == tf.float16 else None
    model_fn = model_fn_builder(options, TrainOptions(1e-3, 10, loss_scale=loss_scale),
                                init_checkpoint=RELEASE_LIKE)
    spec = model_fn(batch_features(features), None, tf.estimator.ModeKeys.TRAIN, {})
    assert all(v.dtype.base_dtype == tf.float32 for v in tf.global_variables()
               if v.name != "global_step:0")
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      loss, _ = session.run([spec.loss, spec.train_op])
      finite = all(np.isfinite(v).all() for v in variable_values(session, "bert/").values())
  return loss, finite


@pytest.fixture(name="float32_loss", scope="module")
def fixture_float32_loss():
  return _first_step_loss(tf.float32, random_instances(4, 16, 4, seed=4))[0]


@pytest.mark.parametrize("dtype, tolerance", [(tf.bfloat16, 0.05), (tf.float16, 0.01)],
                         ids=["bfloat16", "float16"])
def test_mixed_precision_keeps_float32_variables_and_the_loss(float32_loss, dtype, tolerance):
  loss, finite = _first_step_loss(dtype, random_instances(4, 16, 4, seed=4))
  assert finite and loss == pytest.approx(float32_loss, rel=tolerance)


def test_tpu_host_call_writes_every_named_scalar(tmp_path):
  """The host call that writes summaries on TPU, run on the CPU host as TPUEstimator would."""
  from pretrain import pretraining_model_fn
  with tf.Graph().as_default():
    step = tf.train.get_or_create_global_step()
    scalars = {"feature_map_transfer_loss": tf.constant(1.5), "learning_rate": tf.constant(1e-4)}
    host_call_fn, tensors = pretraining_model_fn._summaries(  # pylint: disable=protected-access
        scalars, step, pretraining_model_fn.SummaryOptions(True, str(tmp_path), True))
    ops = host_call_fn(*tensors)
    # What TPUEstimator's host-call hook runs: the writers' initializers, the ops, a flush.
    from tensorflow.python.ops import summary_ops_v2  # pylint: disable=import-outside-toplevel
    init_ops = summary_ops_v2.summary_writer_initializer_op()
    flush = [summary_ops_v2.legacy_raw_flush(writer=op.inputs[0]) for op in init_ops]
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      session.run(init_ops)
      session.run(ops)
      session.run(flush)
  values = {}
  for path in tmp_path.glob("events.out.tfevents.*"):
    for event in tf.train.summary_iterator(str(path)):
      for value in event.summary.value:
        values[value.tag] = tf.make_ndarray(value.tensor)
  assert values == pytest.approx({"feature_map_transfer_loss": 1.5, "learning_rate": 1e-4})
