"""Task-specific distillation: the soft-target losses against numpy, masks, and the frozen teacher in
the one fine-tuning model_fn for every kind (zero loss when student = teacher, the teacher never
moves, the student trains)."""

import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from finetune.classification import head as classification_head
from finetune.classification import regression_head
from finetune.core import model as model_lib
from finetune.core import task_distillation, task_teacher
from finetune.core.distillation_settings import TaskDistillation
from finetune.core.task_distillation import DistillTarget, LossWeights
from finetune.span import head as span_head
from finetune.tagging import model as tagging_model
from mobilebert import cli
from mobilebert.config import BertConfig
from pretrain.pretraining_model import TEACHER_SCOPE

from conftest import CONFIG_DIR, REFERENCE, ROOT

GOLDEN = REFERENCE / "golden"
BATCH, SEQ, LABELS = 3, 8, 3


def _evaluate(fn):
  with tf.Graph().as_default(), tf.Session() as session:
    return session.run(fn())


def _log_softmax(x):
  x = x - x.max(axis=-1, keepdims=True)
  return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def _kl(teacher, student, temperature):
  """T^2 * KL per row in numpy, over the last axis."""
  t, s = _log_softmax(teacher / temperature), _log_softmax(student / temperature)
  return (np.exp(t) * (t - s)).sum(axis=-1) * temperature ** 2


def test_soft_target_kl_matches_numpy_and_is_zero_for_equal_logits():
  rng = np.random.RandomState(0)
  teacher, student = rng.randn(4, 5).astype(np.float32), rng.randn(4, 5).astype(np.float32)
  for temperature in (1.0, 3.0):
    got = _evaluate(lambda: task_distillation.soft_target_kl(
        tf.constant(teacher), tf.constant(student), temperature))
    np.testing.assert_allclose(got, _kl(teacher, student, temperature).mean(), rtol=1e-5)
    assert got > 0
  same = _evaluate(lambda: task_distillation.soft_target_kl(tf.constant(teacher),
                                                            tf.constant(teacher), 2.0))
  assert abs(same) < 1e-6


def test_span_kl_ignores_padding_positions():
  """Span logits [B, T]: padding is no answer, so neither model's scores there count."""
  rng = np.random.RandomState(1)
  teacher, student = rng.randn(2, 6).astype(np.float32), rng.randn(2, 6).astype(np.float32)
  mask = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], np.int32)
  changed_student, changed_teacher = student.copy(), teacher.copy()
  changed_student[0, 4:] = [50.0, -50.0]
  changed_teacher[0, 4:] = [80.0, 3.0]
  loss = lambda t, s: _evaluate(lambda: task_distillation.soft_target_kl(
      tf.constant(t), tf.constant(s), 2.0, class_mask=tf.constant(mask)))
  expected = np.mean([_kl(teacher[0, :4], student[0, :4], 2.0), _kl(teacher[1], student[1], 2.0)])
  np.testing.assert_allclose(loss(teacher, student), expected, rtol=1e-5)
  np.testing.assert_allclose(loss(changed_teacher, changed_student), expected, rtol=1e-5)
  # without the mask the padding would count
  unmasked = _evaluate(lambda: task_distillation.soft_target_kl(
      tf.constant(changed_teacher), tf.constant(changed_student), 2.0))
  assert not np.isclose(unmasked, expected, rtol=0.1)


def test_tagging_kl_averages_over_real_tokens_only():
  rng = np.random.RandomState(2)
  teacher, student = rng.randn(2, 4, 3).astype(np.float32), rng.randn(2, 4, 3).astype(np.float32)
  tokens = np.array([[1, 1, 0, 0], [1, 1, 1, 0]], np.float32)
  got = _evaluate(lambda: task_distillation.soft_target_kl(
      tf.constant(teacher), tf.constant(student), 1.0, row_weights=tf.constant(tokens)))
  per_token = _kl(teacher, student, 1.0)
  np.testing.assert_allclose(got, (per_token * tokens).sum() / tokens.sum(), rtol=1e-4)


def test_regression_target_is_mse_and_loss_mix_follows_the_ratio():
  teacher, student = np.array([1.0, 2.0, 4.0], np.float32), np.array([1.5, 2.0, 3.0], np.float32)

  def losses():
    task_loss = tf.constant(7.0)
    return task_distillation.distillation_losses(
        task_loss, (DistillTarget(tf.constant(teacher), regression=True),),
        (DistillTarget(tf.constant(student), regression=True),), LossWeights(0.25, 4.0))

  got = _evaluate(losses)
  mse = np.mean((teacher - student) ** 2)
  np.testing.assert_allclose(got.soft_target, mse, rtol=1e-6)  # no T^2: values, not distributions
  np.testing.assert_allclose(got.total, 0.25 * 7.0 + 0.75 * mse, rtol=1e-6)
  assert got.feature_map_transfer == 0 and got.attention_transfer == 0


def test_layer_map_is_uniform_and_ends_on_the_last_teacher_layer():
  assert task_distillation.layer_map(4, 4) == [0, 1, 2, 3]
  assert task_distillation.layer_map(2, 4) == [1, 3]
  assert task_distillation.layer_map(3, 12) == [3, 7, 11]


# -- the teacher in the one model_fn's training graph ------------------------------------------------
HEADS = {"classification": lambda config: classification_head.head(LABELS, config, dropout_prob=0.0),
         "regression": lambda config: regression_head.head(config, dropout_prob=0.0),
         "span": span_head.head,
         "tagging": lambda config: tagging_model.head(LABELS, config)}


@pytest.fixture(autouse=True)
def no_tagging_dropout(monkeypatch):
  """The tagging head's dropout is a constant; without it the student can equal the teacher."""
  monkeypatch.setattr(tagging_model, "DROPOUT", 0.0)


def _no_dropout(name):
  return BertConfig.from_json_file(str(GOLDEN / f"{name}.json")).copy(
      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def _features():
  """A batch for either kind; the first sequence is padded (span: its last positions never count)."""
  rng = np.random.RandomState(3)
  mask = np.ones([BATCH, SEQ], np.int32)
  mask[0, 5:] = 0
  return {"input_ids": tf.constant(rng.randint(5, 512, [BATCH, SEQ]).astype(np.int32) * mask),
          "input_mask": tf.constant(mask), "segment_ids": tf.zeros([BATCH, SEQ], tf.int32),
          "label_ids": tf.constant([0, 2, 1]), "is_real_example": tf.ones([BATCH], tf.int32),
          "label_values": tf.constant([0.5, 4.0, 2.5]),
          "tag_ids": tf.constant(rng.randint(0, LABELS, [BATCH, SEQ]).astype(np.int32)),
          "first_piece": tf.constant((rng.rand(BATCH, SEQ) < 0.7).astype(np.int32) * mask),
          "start_positions": tf.constant([1, 2, 3]), "end_positions": tf.constant([2, 4, 3])}


def _save_model(kind, config, path):
  """A randomly initialized checkpoint of the kind, as a fine-tuned teacher's output would hold."""
  with tf.Graph().as_default():
    tf.set_random_seed(5)
    model_lib.create_model(model_lib.EncoderSettings(config), HEADS[kind](config), False,
                           _features())
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      return tf.train.Saver().save(session, str(path))


def _train_settings(checkpoint, distillation, init_student=True):
  return model_lib.TrainSettings(
      init_checkpoint=checkpoint if init_student else None, skip_mismatched_variables=False,
      learning_rate=1e-3, num_train_steps=10, num_warmup_steps=0, optimizer="adamw",
      weight_decay_rate=0.01, use_tpu=False, distillation=distillation)


def _train_graph(kind, student, teacher, checkpoint, weights, init_student=True):
  tf.set_random_seed(7)  # the student's initialization, so the learning check below is repeatable
  tf.train.get_or_create_global_step()
  train = _train_settings(checkpoint, TaskDistillation(teacher, checkpoint, weights), init_student)
  model_fn = model_lib.model_fn_builder(model_lib.EncoderSettings(student), HEADS[kind](student),
                                        train)
  spec = model_fn(_features(), None, tf.estimator.ModeKeys.TRAIN, {})
  graph = tf.get_default_graph()
  names = ("soft_target_loss", "feature_map_transfer_loss", "attention_transfer_loss", "total_loss")
  return spec, {n: graph.get_tensor_by_name(f"distillation/{n}:0") for n in names}


@pytest.mark.parametrize("kind", sorted(HEADS))
def test_loss_is_zero_when_the_student_is_the_teacher(kind, tmp_path):
  config = _no_dropout("tiny_teacher_bert")
  checkpoint = _save_model(kind, config, tmp_path / "teacher.ckpt")
  with tf.Graph().as_default():
    _, losses = _train_graph(kind, config, config, checkpoint, LossWeights(0.0, 2.0, 1.0, 1.0))
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      values = session.run(losses)
  for name, value in values.items():
    assert abs(value) < 1e-5, (name, value)


@pytest.mark.parametrize("kind", sorted(HEADS))
def test_teacher_is_frozen_and_the_student_trains(kind, tmp_path):
  teacher = _no_dropout("tiny_teacher_bert")
  checkpoint = _save_model(kind, teacher, tmp_path / "teacher.ckpt")
  stored = {name: tf.train.load_variable(checkpoint, name)
            for name, _ in tf.train.list_variables(checkpoint)}
  with tf.Graph().as_default():
    spec, losses = _train_graph(kind, _no_dropout("tiny_student_f2"), teacher, checkpoint,
                                LossWeights(0.5, 2.0, 1.0, 1.0), init_student=False)
    trainable = {v.op.name for v in tf.trainable_variables()}
    teacher_vars = [v for v in tf.global_variables() if v.op.name.startswith(TEACHER_SCOPE + "/")]
    assert len(teacher_vars) == len(stored)  # the whole teacher, head included, from the checkpoint
    assert not trainable & {v.op.name for v in teacher_vars}
    assert trainable and all(not n.startswith(TEACHER_SCOPE) for n in trainable)
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      before = session.run(tf.trainable_variables())
      first = session.run(losses["total_loss"])
      for _ in range(10):  # 3 steps once left a randomly initialized regression student above its start
        session.run(spec.train_op)
      after = session.run(teacher_vars)
      assert session.run(losses["total_loss"]) < first
      moved = [not np.allclose(a, b) for a, b in zip(session.run(tf.trainable_variables()), before)]
      assert sum(moved) > len(moved) // 2
  for var, value in zip(teacher_vars, after):
    np.testing.assert_array_equal(value, stored[var.op.name[len(TEACHER_SCOPE) + 1:]])


def test_on_tpu_the_teacher_is_initialized_by_the_scaffold(tmp_path):
  config = _no_dropout("tiny_teacher_bert")
  checkpoint = _save_model("classification", config, tmp_path / "teacher.ckpt")
  with tf.Graph().as_default():
    teacher = task_teacher.build_teacher(lambda: model_lib.create_model(
        model_lib.EncoderSettings(config), HEADS["classification"](config), False, _features()))
    scaffold_fn = task_teacher.scaffold_fn(None, checkpoint, teacher.variables, use_tpu=True)
    assert isinstance(scaffold_fn(), tf.train.Scaffold)  # the host graph's initialization
    kernel = next(v for v in teacher.variables if v.op.name == f"{TEACHER_SCOPE}/output_weights")
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      np.testing.assert_array_equal(session.run(kernel),
                                    tf.train.load_variable(checkpoint, "output_weights"))
    assert not tf.trainable_variables()


def test_a_kind_without_distillation_targets_refuses_a_teacher():
  config = _no_dropout("tiny_teacher_bert")
  head = HEADS["span"](config)._replace(distill_targets=None)
  train = _train_settings(None, TaskDistillation(config, "unused", LossWeights(0.5)))
  with pytest.raises(cli.FlagError, match="--bert_teacher_config_file"):
    model_lib.model_fn_builder(model_lib.EncoderSettings(config), head, train)


def test_bench_times_every_way_of_paying_for_the_teacher():
  sys.path.insert(0, str(ROOT / "bench"))
  import bench_task_distillation  # pylint: disable=g-import-not-at-top
  rows = bench_task_distillation.main([
      "--student_config", str(CONFIG_DIR / "tiny_student_zh.json"),
      "--teacher_config", str(CONFIG_DIR / "tiny_bert_zh.json"), "--seq", "8", "--batch", "2",
      "--steps", "1", "--rounds", "1"])
  assert set(rows) == {"student", "student+teacher", "+transfer", "teacher forward"}
  assert all(seconds > 0 for seconds in rows.values())
