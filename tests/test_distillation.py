"""Transfer and distillation losses: zero exactly when the student matches, soft labels, temperature."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from pretrain import distillation


def _run(tensors):
  with tf.Session() as session:
    return session.run(tensors)


@pytest.fixture(name="hidden")
def fixture_hidden():
  rng = np.random.RandomState(0)
  return rng.normal(size=(2, 5, 8)).astype(np.float32), rng.normal(size=(2, 5, 8)).astype(np.float32)


@pytest.fixture(name="scores")
def fixture_scores():
  rng = np.random.RandomState(1)
  teacher = rng.normal(size=(2, 3, 5, 5)).astype(np.float32)
  student = rng.normal(size=(2, 3, 5, 5)).astype(np.float32)
  mask_adder = np.array([0, 0, 0, -10000, -10000], np.float32)  # the last two keys are padding
  return teacher + mask_adder, student + mask_adder


def test_feature_map_transfer_is_zero_for_equal_states_and_positive_otherwise(hidden):
  teacher, student = hidden
  with tf.Graph().as_default():
    same, affine, other = _run([
        distillation.feature_map_transfer(tf.constant(teacher), tf.constant(teacher)),
        # Parameter-free layer norm: a per-position scale and shift of the student changes nothing.
        distillation.feature_map_transfer(tf.constant(teacher), tf.constant(3.0 * teacher + 2.0)),
        distillation.feature_map_transfer(tf.constant(teacher), tf.constant(student))])
  assert same == pytest.approx(0.0, abs=1e-10)
  assert affine == pytest.approx(0.0, abs=1e-6)
  normalize = lambda x: (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-12)
  assert other == pytest.approx(np.mean((normalize(teacher) - normalize(student)) ** 2), rel=1e-5)


def test_attention_transfer_is_the_kl_divergence_per_head(scores):
  teacher, student = scores
  with tf.Graph().as_default():
    same, other = _run([distillation.attention_transfer(tf.constant(teacher), tf.constant(teacher)),
                        distillation.attention_transfer(tf.constant(teacher), tf.constant(student))])
  softmax = lambda x: np.exp(x - x.max(-1, keepdims=True)) / np.exp(
      x - x.max(-1, keepdims=True)).sum(-1, keepdims=True)
  p, q = softmax(teacher.astype(np.float64)), softmax(student.astype(np.float64))
  real = slice(0, 3)  # padded keys have probability 0 and contribute nothing
  expected = np.mean(np.sum(p[..., real] * np.log(p[..., real] / q[..., real]), axis=-1))
  assert same == pytest.approx(0.0, abs=1e-6)
  assert other > 0.01 and other == pytest.approx(expected, rel=1e-4)


def test_mean_variance_transfer_is_zero_for_equal_states_and_positive_otherwise(hidden):
  teacher, student = hidden
  with tf.Graph().as_default():
    (same_mean, same_var), (mean, var) = _run([
        distillation.mean_variance_transfer(tf.constant(teacher), tf.constant(teacher)),
        distillation.mean_variance_transfer(tf.constant(teacher), tf.constant(student + 0.5))])
  assert same_mean == pytest.approx(0.0, abs=1e-12) and same_var == pytest.approx(0.0, abs=1e-12)
  expected_mean = np.mean((teacher.mean(-1) - (student + 0.5).mean(-1)) ** 2)
  expected_var = np.mean(np.abs(teacher.var(-1) - student.var(-1)))
  assert mean == pytest.approx(expected_mean, rel=1e-4) and var == pytest.approx(expected_var, rel=1e-4)


def test_each_factor_works_alone_and_zero_skips_a_loss(hidden, scores):
  teacher, student = hidden
  t_scores, s_scores = scores
  with tf.Graph().as_default():
    def losses(factors):
      return distillation.layer_transfer_losses(
          tf.constant(teacher), tf.constant(student), tf.constant(t_scores), tf.constant(s_scores),
          distillation.TransferLosses(*factors))
    only_mean, only_variance, all_on = _run([losses((0, 0, 2.0, 0)), losses((0, 0, 0, 3.0)),
                                              losses((1.0, 1.0, 1.0, 1.0))])
  # The original needed both the beta and the gamma factor to be non-zero for either to work.
  assert only_mean.mean == pytest.approx(2.0 * all_on.mean, rel=1e-5) and only_mean.variance == 0.0
  assert only_variance.variance == pytest.approx(3.0 * all_on.variance, rel=1e-5)
  assert only_variance.mean == 0.0 and only_mean.feature_map == 0.0 and only_mean.attention == 0.0
  assert all(value > 0 for value in all_on)


def test_soft_labels_mix_teacher_probabilities_at_temperature_with_the_true_token():
  logits = np.array([[2.0, 1.0, 0.0, -1.0], [0.0, 0.0, 3.0, 0.0]], np.float32)
  labels = np.array([1, 3], np.int32)
  with tf.Graph().as_default():
    teacher_logits = tf.constant(logits)
    half, pure_teacher, hot, hot_t = _run([
        distillation.soft_labels(teacher_logits, labels, 0.5, temperature=2.0),
        distillation.soft_labels(teacher_logits, labels, 0.0, temperature=1.0),
        distillation.soft_labels(teacher_logits, labels, 1.0, temperature=1.0),
        distillation.soft_labels(teacher_logits, labels, 1.0, temperature=5.0)])
    gradient = tf.gradients(distillation.soft_labels(teacher_logits, labels, 0.3), teacher_logits)
  softmax = lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True)
  one_hot = np.eye(4)[labels]
  np.testing.assert_allclose(half, 0.5 * softmax(logits / 2.0) + 0.5 * one_hot, atol=1e-6)
  np.testing.assert_allclose(pure_teacher, softmax(logits), atol=1e-6)
  np.testing.assert_array_equal(hot, one_hot)
  np.testing.assert_array_equal(hot_t, one_hot)  # ratio 1 ignores the teacher entirely
  np.testing.assert_allclose(half.sum(-1), 1.0, atol=1e-6)
  # A higher temperature flattens the teacher: the top class loses probability.
  assert softmax(logits / 2.0)[0, 0] < pure_teacher[0, 0]
  assert gradient == [None]  # no gradient reaches the teacher through its labels


def test_masked_lm_loss_ignores_padding_positions():
  log_probs = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]], np.float32))
  targets = np.array([[1.0, 0.0, 0.0], [0.5, 0.0, 0.5], [0.0, 1.0, 0.0]], np.float32)
  weights = np.array([[1.0, 1.0, 0.0]], np.float32)
  with tf.Graph().as_default():
    result = _run(distillation.masked_lm_loss(tf.constant(log_probs), tf.constant(targets),
                                              tf.constant(weights)))
  per_position = -(log_probs * targets).sum(-1)
  np.testing.assert_allclose(result.per_position_loss, per_position, rtol=1e-6)
  assert result.loss == pytest.approx(per_position[:2].sum() / (2 + 1e-5), rel=1e-6)


def test_losses_refuse_teacher_student_pairs_of_different_width():
  with tf.Graph().as_default():
    with pytest.raises(ValueError, match="same hidden size"):
      distillation.feature_map_transfer(tf.zeros([1, 2, 8]), tf.zeros([1, 2, 4]))
    with pytest.raises(ValueError, match="same heads"):
      distillation.attention_transfer(tf.zeros([1, 4, 2, 2]), tf.zeros([1, 2, 2, 2]))
