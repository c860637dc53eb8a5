"""Task-specific distillation losses (TinyBERT's second stage, TextBrewer's recipe), on tensors.

A fine-tuned teacher teaches a student on the task's own data:

  total = (1 - a) * task_loss + a * soft_target_loss + layer-wise transfer
  soft_target_loss = T^2 * KL(softmax(teacher / T) || softmax(student / T))    (scores over classes)
                   = MSE(student, teacher)                                        (regression values)

with a = 1 - distill_ground_truth_ratio (the pretraining flag's meaning: the weight of the ground
truth). T^2 keeps the gradient's size independent of T (Hinton et al. 2015). The layer-wise transfer
is pretrain/distillation.py's feature-map and attention transfer, each student layer against the
teacher layer the uniform mapping gives it (TinyBERT: student layer l -> teacher layer
(l + 1) * Lt / Ls - 1), so a shallower student can learn from a deeper teacher of the same width.

A kind (classification, span, tagging, regression) says what its head predicts as DistillTargets:
  classification  logits [B, C]
  span            start and end logits [B, T], class_mask = input_mask (padding is no answer)
  tagging         logits [B, T, C], row_weights = the token mask
  regression      values [B], regression=True
Dimension letters: B batch, T sequence, C classes, H hidden, N heads.
"""

import collections
from typing import NamedTuple, Optional

import tensorflow.compat.v1 as tf

from pretrain import distillation

# Logits of masked classes: exp() of it is exactly 0 in float32 after any temperature >= 1e-3.
_MASKED_LOGIT = -1e9

DistillationLosses = collections.namedtuple("DistillationLosses", [
    "total", "task", "soft_target", "feature_map_transfer", "attention_transfer"])


class DistillTarget(NamedTuple):
  """One prediction of a head that the student learns from the teacher's same prediction."""
  logits: tf.Tensor  # [..., C] scores over the last axis; regression: [...] values
  class_mask: Optional[tf.Tensor] = None  # [..., C] 1 for classes that exist (span: not padding)
  row_weights: Optional[tf.Tensor] = None  # [...] weight of each row in the mean (tagging: tokens)
  regression: bool = False


class LossWeights(NamedTuple):
  """The run's distillation numbers (DistillationSettings resolves them from the flags)."""
  ground_truth_ratio: float  # 1 - a: weight of the task loss
  temperature: float = 1.0
  hidden: float = 0.0  # feature-map transfer factor (hidden_distill_factor)
  attention: float = 0.0  # attention transfer factor (attention_distill_factor)


def soft_target_kl(teacher_logits, student_logits, temperature=1.0, class_mask=None,
                   row_weights=None):
  """T^2 * KL(softmax(teacher / T) || softmax(student / T)) over the last axis, averaged over rows.

  Args:
    teacher_logits: [..., C] float (no gradient flows into it).
    student_logits: [..., C] float, the same shape.
    temperature: T > 0.
    class_mask: optional [..., C] (0/1, any dtype); masked classes get probability 0 in both
      distributions and add nothing.
    row_weights: optional [...] float; the mean over rows is sum(w * kl) / sum(w).
  Returns:
    float32 scalar.
  """
  teacher_logits.shape.assert_is_compatible_with(student_logits.shape)
  teacher = tf.stop_gradient(tf.cast(teacher_logits, tf.float32)) / temperature
  student = tf.cast(student_logits, tf.float32) / temperature
  keep = None
  if class_mask is not None:
    keep = tf.cast(class_mask, tf.bool)
    teacher = tf.where(keep, teacher, tf.fill(tf.shape(teacher), _MASKED_LOGIT))
    student = tf.where(keep, student, tf.fill(tf.shape(student), _MASKED_LOGIT))
  teacher_log_probs = tf.nn.log_softmax(teacher, axis=-1)
  student_log_probs = tf.nn.log_softmax(student, axis=-1)
  terms = tf.exp(teacher_log_probs) * (teacher_log_probs - student_log_probs)
  if keep is not None:  # 0 * (a - b) of two huge negatives is 0, but say so exactly
    terms = tf.where(keep, terms, tf.zeros_like(terms))
  per_row = tf.reduce_sum(terms, axis=-1) * (temperature ** 2)
  return _weighted_mean(per_row, row_weights)


def prediction_mse(teacher_values, student_values, row_weights=None):
  """Mean squared difference to the teacher's predictions (regression has no distribution).

  Args:
    teacher_values, student_values: [...] float, the same shape.
    row_weights: optional [...] float.
  Returns:
    float32 scalar.
  """
  teacher_values.shape.assert_is_compatible_with(student_values.shape)
  squared = tf.squared_difference(tf.cast(student_values, tf.float32),
                                  tf.stop_gradient(tf.cast(teacher_values, tf.float32)))
  return _weighted_mean(squared, row_weights)


def soft_target_loss(teacher_targets, student_targets, temperature=1.0):
  """The mean of the per-target losses (span: start and end) of two tuples of DistillTargets."""
  if len(teacher_targets) != len(student_targets) or not student_targets:
    raise ValueError(f"{len(teacher_targets)} teacher targets against {len(student_targets)} "
                     "student targets")
  losses = []
  for teacher, student in zip(teacher_targets, student_targets):
    if student.regression:
      losses.append(prediction_mse(teacher.logits, student.logits, student.row_weights))
    else:
      losses.append(soft_target_kl(teacher.logits, student.logits, temperature,
                                   student.class_mask, student.row_weights))
  return tf.add_n(losses) / float(len(losses))


def layer_map(student_layers, teacher_layers):
  """Teacher layer index of each student layer: the uniform mapping of TinyBERT (last to last)."""
  return [(layer + 1) * teacher_layers // student_layers - 1 for layer in range(student_layers)]


def layer_transfer(teacher_model, student_model, weights):
  """Feature-map and attention transfer over the mapped layers, each weighted by its factor.

  Args:
    teacher_model, student_model: modeling.BertModel (the same hidden size for feature maps, the
      same number of heads for attention; the settings check both).
    weights: LossWeights.
  Returns:
    (feature_map, attention) float32 scalars, means over the student's layers (0 when off).
  """
  zero = tf.constant(0.0)
  if not (weights.hidden or weights.attention):
    return zero, zero
  factors = distillation.TransferLosses(weights.hidden, weights.attention, 0.0, 0.0)
  teacher_hidden = teacher_model.get_all_encoder_layers()[1:]
  student_hidden = student_model.get_all_encoder_layers()[1:]
  teacher_maps = teacher_model.get_all_attention_maps()
  student_maps = student_model.get_all_attention_maps()
  feature_map, attention = zero, zero
  mapping = layer_map(len(student_hidden), len(teacher_hidden))
  for layer, teacher_layer in enumerate(mapping):
    with tf.name_scope(f"transfer_layer_{layer}"):
      losses = distillation.layer_transfer_losses(
          teacher_hidden[teacher_layer], student_hidden[layer], teacher_maps[teacher_layer],
          student_maps[layer], factors)
    feature_map += losses.feature_map
    attention += losses.attention
  return feature_map / float(len(mapping)), attention / float(len(mapping))


def distillation_losses(task_loss, teacher_targets, student_targets, weights, teacher_model=None,
                        student_model=None):
  """Combines the task loss, the soft-target loss and the layer-wise transfer into named losses.

  Args:
    task_loss: float32 scalar, the kind's loss against the true labels.
    teacher_targets, student_targets: tuples of DistillTarget of the same head.
    weights: LossWeights.
    teacher_model, student_model: modeling.BertModel, needed when a transfer factor is set.
  Returns:
    DistillationLosses; `total` is what the optimizer minimizes.
  """
  soft = soft_target_loss(teacher_targets, student_targets, weights.temperature)
  feature_map, attention = layer_transfer(teacher_model, student_model, weights)
  ratio = weights.ground_truth_ratio
  total = ratio * task_loss + (1.0 - ratio) * soft + feature_map + attention
  losses = DistillationLosses(total, task_loss, soft, feature_map, attention)
  # Named tensors distillation/<name>_loss; the summaries take the plain names as their tags.
  with tf.name_scope("distillation"):
    return DistillationLosses(*[tf.identity(value, name=f"{name}_loss")
                                for name, value in losses._asdict().items()])


def _weighted_mean(values, weights):
  if weights is None:
    return tf.reduce_mean(values)
  weights = tf.cast(weights, tf.float32)
  # The 1e-5 keeps a batch without any real row finite, as masked_lm_loss does.
  return tf.reduce_sum(weights * values) / (tf.reduce_sum(weights) + 1e-5)
