# coding=utf-8
"""Span-extraction head: start and end logits over the sequence, cross-entropy averaged over both.

The logits are mobilebert/heads.py's `span_logits` (variables `cls/squad/output_weights` [2, H] and
`cls/squad/output_bias` [2], the names of Google's run_squad, so checkpoints fine-tuned by that code
load; the export graph builds the same head). Dimension letters: B batch, T sequence, H hidden.
"""

from typing import NamedTuple, Optional

import tensorflow.compat.v1 as tf

from finetune.core import model as model_lib
from finetune.core.task_distillation import DistillTarget
from mobilebert import heads as heads_lib
from mobilebert import modeling


class SpanOutputs(NamedTuple):
  """Tensors of the span head; the losses are None without answer positions."""
  logits: tf.Tensor  # [B, T, 2] float32: start and end logits of each position
  start_logits: tf.Tensor  # [B, T] float32
  end_logits: tf.Tensor  # [B, T] float32
  start_loss: Optional[tf.Tensor]  # scalar, mean cross-entropy of the start position
  end_loss: Optional[tf.Tensor]  # scalar
  loss: Optional[tf.Tensor]  # scalar, (start_loss + end_loss) / 2


def position_loss(logits, positions):
  """Mean cross-entropy of logits [B, T] against positions [B] int32 (a scalar)."""
  seq_length = modeling.get_shape_list(logits, expected_rank=2)[1]
  log_probs = tf.nn.log_softmax(logits, axis=-1)
  one_hot = tf.one_hot(positions, depth=seq_length, dtype=tf.float32)
  return -tf.reduce_mean(tf.reduce_sum(one_hot * log_probs, axis=-1))


def span_head(sequence_output, start_positions=None, end_positions=None, initializer_range=0.02):
  """sequence_output [B, T, H]; positions [B] int32 or None -> SpanOutputs."""
  logits, start_logits, end_logits = heads_lib.span_logits(sequence_output, initializer_range)
  start_loss = end_loss = loss = None
  if start_positions is not None:
    start_loss = tf.identity(position_loss(start_logits, start_positions), name="start_loss")
    end_loss = tf.identity(position_loss(end_logits, end_positions), name="end_loss")
    loss = tf.identity((start_loss + end_loss) / 2.0, name="span_loss")
  return SpanOutputs(logits, start_logits, end_logits, start_loss, end_loss, loss)


def _build(initializer_range):
  def build(model, features, is_training):
    del is_training  # the head has no dropout
    return span_head(model.get_sequence_output(), features.get("start_positions"),
                     features.get("end_positions"), initializer_range)
  return build


def _predictions(outputs, features):
  # Answers are chosen and scored on the host (span/postprocess.py, cmrc2018_evaluate.py).
  return {"unique_ids": features["unique_ids"], "start_logits": outputs.start_logits,
          "end_logits": outputs.end_logits}


def _distill_targets(outputs, features):
  """The start and the end distributions over the positions [B, T]; padding is never an answer, so
  it is masked out of both models' distributions."""
  mask = features["input_mask"]
  return (DistillTarget(outputs.start_logits, class_mask=mask),
          DistillTarget(outputs.end_logits, class_mask=mask))


def head(bert_config):
  """The span Head for finetune/core/model.py (training features: start_positions, end_positions [B]).
  No EVAL mode: predictions are scored on the host with the official metric."""
  return model_lib.Head(_build(bert_config.initializer_range), _predictions,
                        distill_targets=_distill_targets)
