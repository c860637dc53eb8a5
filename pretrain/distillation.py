"""The knowledge-transfer and distillation losses of MobileBERT, as functions on tensors.

Layer-wise transfer (one teacher layer l against the same student layer l):
  * feature-map transfer: MSE between the parameter-free layer-normalized hidden states;
  * attention transfer: KL divergence from the teacher's to the student's attention distribution,
    per head, averaged over batch, heads and query positions;
  * mean and variance transfer: squared difference of the per-position means and absolute difference
    of the per-position variances of the hidden states.
Pretraining distillation: the masked-LM cross-entropy against soft labels
  (1 - r) * softmax(teacher_logits / T) + r * one_hot(label).

Differences from the original `run_pretraining.py`, on purpose:
  * mean/variance transfer compares layer l with teacher layer l (the original reduced the stack of all
    teacher layers, so every student layer was compared with the statistics of every teacher layer);
  * attention transfer is the KL divergence, not the cross-entropy: the gradients are the same, but the
    value is 0 when the student matches the teacher, which makes it readable in TensorBoard;
  * the temperature divides the teacher's logits (the original multiplied the teacher's sequence output
    before the MLM transform, where the dense layer, activation and LayerNorm mostly undo it).
Dimension letters: B batch, T sequence, H hidden, N heads, F query positions, P masked positions, V vocab.
"""

import collections

import tensorflow.compat.v1 as tf

# The original normalized with tf.contrib.layers.layer_norm's default epsilon.
LAYER_NORM_EPSILON = 1e-12

TransferLosses = collections.namedtuple(
    "TransferLosses", ["feature_map", "attention", "mean", "variance"])

MaskedLmLoss = collections.namedtuple("MaskedLmLoss", ["loss", "per_position_loss"])


def parameter_free_layer_norm(hidden):
  """(x - mean) / sqrt(var + eps) over the last axis, no scale or offset: [..., H] -> [..., H]."""
  mean, variance = tf.nn.moments(hidden, [-1], keepdims=True)
  return (hidden - mean) * tf.math.rsqrt(variance + LAYER_NORM_EPSILON)


def feature_map_transfer(teacher_hidden, student_hidden):
  """MSE between layer-normalized hidden states of one layer.

  Args:
    teacher_hidden: [B, T, H] float32 (no gradient flows into it).
    student_hidden: [B, T, H] float32, the same H as the teacher.
  Returns:
    float32 scalar, the mean over B, T, H.
  """
  _check_same_width(teacher_hidden, student_hidden, "feature-map transfer")
  teacher = tf.stop_gradient(parameter_free_layer_norm(teacher_hidden))
  return tf.reduce_mean(tf.squared_difference(teacher, parameter_free_layer_norm(student_hidden)))


def attention_transfer(teacher_scores, student_scores):
  """KL(teacher || student) of one layer's attention distributions, per head.

  Args:
    teacher_scores: [B, N, F, T] pre-softmax scores with the mask adder (as BertModel returns them).
    student_scores: [B, N, F, T], the same N as the teacher.
  Returns:
    float32 scalar: sum over key positions T, mean over B, N, F.
  """
  _check_same_width(teacher_scores, student_scores, "attention transfer", axis=1, what="heads")
  teacher_log_probs = tf.stop_gradient(tf.nn.log_softmax(teacher_scores, axis=-1))
  student_log_probs = tf.nn.log_softmax(student_scores, axis=-1)
  # Masked keys have probability exp(-10000) = 0 in float32, so they add exactly 0.
  kl = tf.exp(teacher_log_probs) * (teacher_log_probs - student_log_probs)
  return tf.reduce_mean(tf.reduce_sum(kl, axis=-1))


def mean_variance_transfer(teacher_hidden, student_hidden):
  """Mean and variance transfer of one layer: per-position statistics over the hidden axis.

  Args:
    teacher_hidden: [B, T, H] hidden states of teacher layer l.
    student_hidden: [B, T, H] hidden states of student layer l.
  Returns:
    (mean_loss, variance_loss) float32 scalars: mean over B, T of (mu_t - mu_s)^2 and
    |var_t - var_s|.
  """
  _check_same_width(teacher_hidden, student_hidden, "mean/variance transfer")
  teacher_mean, teacher_variance = tf.nn.moments(teacher_hidden, [-1], keepdims=True)
  student_mean, student_variance = tf.nn.moments(student_hidden, [-1], keepdims=True)
  mean_loss = tf.reduce_mean(tf.squared_difference(tf.stop_gradient(teacher_mean), student_mean))
  variance_loss = tf.reduce_mean(tf.abs(tf.stop_gradient(teacher_variance) - student_variance))
  return mean_loss, variance_loss


def layer_transfer_losses(teacher_hidden, student_hidden, teacher_scores, student_scores,
                          factors):
  """All transfer losses of one layer, each already multiplied by its factor (0 skips it).

  Args:
    teacher_hidden, student_hidden: [B, T, H] outputs of layer l.
    teacher_scores, student_scores: [B, N, F, T] attention scores of layer l.
    factors: TransferLosses of floats (hidden, attention, beta, gamma distill factors).
  Returns:
    TransferLosses of float32 scalars.
  """
  zero = tf.constant(0.0)
  feature_map = attention = mean = variance = zero
  if factors.feature_map:
    feature_map = factors.feature_map * feature_map_transfer(teacher_hidden, student_hidden)
  if factors.attention:
    attention = factors.attention * attention_transfer(teacher_scores, student_scores)
  if factors.mean or factors.variance:
    mean_loss, variance_loss = mean_variance_transfer(teacher_hidden, student_hidden)
    mean = factors.mean * mean_loss if factors.mean else zero
    variance = factors.variance * variance_loss if factors.variance else zero
  return TransferLosses(feature_map, attention, mean, variance)


def soft_labels(teacher_logits, label_ids, ground_truth_ratio, temperature=1.0):
  """Distillation targets: (1 - r) * softmax(teacher_logits / T) + r * one_hot(label_ids).

  Args:
    teacher_logits: [B*P, V] float32 MLM logits of the teacher.
    label_ids: [B*P] int32 true token ids.
    ground_truth_ratio: r in [0, 1]; 1 gives the plain one-hot labels.
    temperature: T > 0; larger T flattens the teacher's distribution.
  Returns:
    [B*P, V] float32 probabilities (rows sum to 1), with no gradient into the teacher.
  """
  vocab_size = teacher_logits.shape[-1]
  one_hot = tf.one_hot(label_ids, depth=vocab_size, dtype=tf.float32)
  if ground_truth_ratio == 1.0:
    return one_hot
  teacher_probs = tf.nn.softmax(tf.cast(teacher_logits, tf.float32) / temperature, axis=-1)
  return tf.stop_gradient((1.0 - ground_truth_ratio) * teacher_probs + ground_truth_ratio * one_hot)


def masked_lm_loss(log_probs, target_probs, label_weights, num_positions=None):
  """Weighted cross-entropy of the masked positions against (soft) targets.

  Args:
    log_probs: [B*P, V] float32 student log-probabilities.
    target_probs: [B*P, V] float32 targets (one-hot or soft labels).
    label_weights: [B, P] or [B*P] float32, 1 for real masked positions and 0 for padding.
    num_positions: optional float32 scalar dividing the summed loss instead of sum(label_weights)
      (replicated training divides by the global batch's count, see `replica_mean_count`).
  Returns:
    MaskedLmLoss(loss scalar, per_position_loss [B*P]).
  """
  weights = tf.reshape(label_weights, [-1])
  per_position = -tf.reduce_sum(log_probs * target_probs, axis=-1)
  if num_positions is None:
    num_positions = tf.reduce_sum(weights)
  # The 1e-5 keeps a batch without any masked position finite, as in BERT.
  loss = tf.reduce_sum(weights * per_position) / (num_positions + 1e-5)
  return MaskedLmLoss(loss, per_position)


def replica_mean_count(label_weights):
  """The number of masked positions per replica, averaged over the replicas of the global batch.

  Replicas average their gradients. Dividing each replica's summed loss by its own count would weight
  the positions of a replica with few masked tokens more; dividing by the global mean count makes the
  average of the replicas' losses the global batch's loss, as on one device. Without replication
  this is just sum(label_weights).
  """
  count = tf.stop_gradient(tf.reduce_sum(label_weights))
  context = tf.distribute.get_replica_context()
  if not tf.distribute.has_strategy() or context is None or context.num_replicas_in_sync == 1:
    return count
  total = context.all_reduce(tf.distribute.ReduceOp.SUM, count)
  return total / float(context.num_replicas_in_sync)


def _check_same_width(teacher, student, loss_name, axis=-1, what="hidden size"):
  t, s = teacher.shape[axis], student.shape[axis]
  if t is not None and s is not None and t != s:
    raise ValueError(f"{loss_name} needs the teacher and student to have the same {what}; "
                     f"teacher {teacher.shape}, student {student.shape}")
