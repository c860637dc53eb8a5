"""Regression head: the pooled output, dropout, one linear output, squared-error loss.

The head keeps the classifier's variable names with one output (`output_weights` [1, H], `output_bias`
[1]), as Google's and Hugging Face's STS-B heads do, so the export, TFLite and predict paths that read a
fine-tuned classifier read it too (`logits` [B, 1] is the predicted value). Dimension letters: B batch,
H hidden.
"""

from typing import NamedTuple, Optional

import tensorflow.compat.v1 as tf

from finetune.classification.head import CLASSIFIER_DROPOUT
from finetune.core import model as model_lib
from finetune.core.task_distillation import DistillTarget
from mobilebert import modeling


class RegressionOutputs(NamedTuple):
  """Tensors of the regression head; the losses are None when no targets are given."""
  logits: tf.Tensor  # [B, 1] float32, the predicted values before squeezing
  predictions: tf.Tensor  # [B] float32
  per_example_loss: Optional[tf.Tensor]  # [B] squared error
  loss: Optional[tf.Tensor]  # scalar, mean squared error


def regression_head(pooled_output, targets, is_training, dropout_prob=CLASSIFIER_DROPOUT,
                    initializer_range=0.02):
  """pooled_output [B, H] float32, targets [B] float32 or None -> RegressionOutputs."""
  hidden_size = modeling.get_shape_list(pooled_output, expected_rank=2)[1]
  output_weights = tf.get_variable(
      "output_weights", [1, hidden_size],
      initializer=tf.truncated_normal_initializer(stddev=initializer_range))
  output_bias = tf.get_variable("output_bias", [1], initializer=tf.zeros_initializer())
  with tf.variable_scope("loss"):
    if is_training:
      pooled_output = modeling.dropout(pooled_output, dropout_prob)
    logits = tf.nn.bias_add(tf.matmul(pooled_output, output_weights, transpose_b=True), output_bias)
    predictions = tf.squeeze(logits, axis=-1)
    per_example_loss, loss = None, None
    if targets is not None:
      per_example_loss = tf.math.squared_difference(predictions, tf.cast(targets, tf.float32))
      loss = tf.reduce_mean(per_example_loss, name="regression_loss")
  return RegressionOutputs(logits, predictions, per_example_loss, loss)


def _build(initializer_range, dropout_prob):
  def build(model, features, is_training):
    return regression_head(model.get_pooled_output(), features["label_values"], is_training,
                           dropout_prob, initializer_range)
  return build


def _predictions(outputs, features):
  # PREDICT yields every padded example with is_real_example, so the host scores whole batches.
  return {"predictions": tf.identity(outputs.predictions, name="predictions"),
          "label_values": features["label_values"], "is_real_example": features["is_real_example"]}


def _eval_metrics(outputs, features):
  # Correlations need every prediction at once: they are scored on the host (RegressionScorer).
  def metric_fn(per_example_loss, is_real):
    return {"eval_loss": tf.metrics.mean(per_example_loss, weights=is_real)}
  return metric_fn, [outputs.per_example_loss, tf.cast(features["is_real_example"], tf.float32)]


def _distill_targets(outputs, features):
  del features
  # A value has no distribution to soften: the student matches the teacher's prediction (MSE).
  return (DistillTarget(outputs.predictions, regression=True),)


def head(bert_config, dropout_prob=CLASSIFIER_DROPOUT):
  """The regression Head for finetune/core/model.py (features: label_values float32, is_real_example)."""
  return model_lib.Head(_build(bert_config.initializer_range, dropout_prob), _predictions,
                        _eval_metrics, _distill_targets)
