"""The tagging head on the shared encoder (finetune/core/model.py): dropout, a dense softmax layer per
token, cross-entropy on the first word piece of each unit only. Dimension letters: B batch, T sequence,
H hidden, L tags.

The head's variables are `tagging/output_weights` [L, H] and `tagging/output_bias` [L]
(mobilebert/heads.py), so the export graph and the predict command find the head by name.
"""

from typing import NamedTuple

import tensorflow.compat.v1 as tf

from finetune.core.model import Head
from finetune.core.task_distillation import DistillTarget
from mobilebert import heads, modeling

LOSS_NAME = "tagging_loss"
DROPOUT = 0.1  # on the sequence output while training, as the classifier's fixed keep_prob 0.9


class TaggerOutputs(NamedTuple):
  logits: tf.Tensor  # [B, T, L] float32
  probabilities: tf.Tensor  # [B, T, L]
  loss: tf.Tensor  # scalar: mean cross-entropy over the weighted (first-piece) positions


def tagging_loss(logits, tag_ids, weights):
  """Mean cross-entropy of the positions with weight 1.

  Args:
    logits: [B, T, L] float32.
    tag_ids: [B, T] int32.
    weights: [B, T] float32, 1 on the first piece of each unit, 0 elsewhere (and on padding).
  """
  per_position = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tag_ids, logits=logits)
  return tf.div_no_nan(tf.reduce_sum(per_position * weights), tf.reduce_sum(weights),
                       name=LOSS_NAME)


def head(num_tags, bert_config):
  """The tagging Head. Features: tag_ids, first_piece [B, T]; is_real_example [B]. PREDICT yields tag
  probabilities [T, L], first_piece and is_real_example per example (scored on the host)."""

  def build(model, features, is_training):
    sequence_output = tf.cast(model.get_sequence_output(), tf.float32)  # [B, T, H]
    if is_training:
      sequence_output = modeling.dropout(sequence_output, DROPOUT)
    logits = heads.token_tagging_logits(sequence_output, num_tags, bert_config.initializer_range)
    loss = tagging_loss(logits, features["tag_ids"], tf.cast(features["first_piece"], tf.float32))
    return TaggerOutputs(logits, tf.nn.softmax(logits, axis=-1), loss)

  def predictions(outputs, features):
    return {"probabilities": tf.identity(outputs.probabilities, name="tag_probabilities"),
            "first_piece": features["first_piece"], "is_real_example": features["is_real_example"]}

  def distill_targets(outputs, features):
    # The tag distribution of each position the task loss scores (the first piece of each unit).
    return (DistillTarget(outputs.logits, row_weights=features["first_piece"]),)

  return Head(build, predictions, distill_targets=distill_targets)
