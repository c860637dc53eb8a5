"""Sentence(-pair) classification head: the pooled output, dropout, a dense softmax layer, cross-entropy.

The head's variables are `output_weights` [C, H] (stored [out, in]) and `output_bias` [C] at the top
level, as in Google's and the release's run_classifier, so checkpoints fine-tuned by the original code
load. Dimension letters: B batch, T sequence, H hidden, C classes.
"""

from typing import NamedTuple, Optional

import tensorflow.compat.v1 as tf

from finetune.core import model as model_lib
from finetune.core.task_distillation import DistillTarget
from mobilebert import modeling

CLASSIFIER_DROPOUT = 0.1  # the original's fixed keep_prob 0.9


class ClassifierOutputs(NamedTuple):
  """Tensors of the classifier; the losses are None when no labels are given."""
  logits: tf.Tensor  # [B, C] float32
  log_probs: tf.Tensor  # [B, C]
  probabilities: tf.Tensor  # [B, C]
  per_example_loss: Optional[tf.Tensor]  # [B]
  loss: Optional[tf.Tensor]  # scalar, mean cross-entropy


def classifier_head(pooled_output, labels, num_labels, is_training,
                    dropout_prob=CLASSIFIER_DROPOUT, initializer_range=0.02):
  """pooled_output [B, H] float32, labels [B] int32 or None -> ClassifierOutputs."""
  hidden_size = modeling.get_shape_list(pooled_output, expected_rank=2)[1]
  output_weights = tf.get_variable(
      "output_weights", [num_labels, hidden_size],
      initializer=tf.truncated_normal_initializer(stddev=initializer_range))
  output_bias = tf.get_variable("output_bias", [num_labels], initializer=tf.zeros_initializer())
  with tf.variable_scope("loss"):
    if is_training:
      pooled_output = modeling.dropout(pooled_output, dropout_prob)
    logits = tf.nn.bias_add(tf.matmul(pooled_output, output_weights, transpose_b=True), output_bias)
    log_probs = tf.nn.log_softmax(logits, axis=-1)
    per_example_loss, loss = None, None
    if labels is not None:
      one_hot = tf.one_hot(labels, depth=num_labels, dtype=tf.float32)
      per_example_loss = -tf.reduce_sum(one_hot * log_probs, axis=-1)
      loss = tf.reduce_mean(per_example_loss, name="classification_loss")
  return ClassifierOutputs(logits, log_probs, tf.exp(log_probs), per_example_loss, loss)


def _build(num_labels, initializer_range, dropout_prob):
  def build(model, features, is_training):
    # The students have no pooler (classifier_activation false): this is the first token's vector.
    return classifier_head(model.get_pooled_output(), features["label_ids"], num_labels,
                           is_training, dropout_prob, initializer_range)
  return build


def _predictions(outputs, features):
  # PREDICT yields every padded example with is_real_example, so the host scores whole batches.
  return {"log_probs": outputs.log_probs,
          "probabilities": tf.identity(outputs.probabilities, name="probabilities"),
          "label_ids": features["label_ids"], "is_real_example": features["is_real_example"]}


def _eval_metrics(outputs, features):
  def metric_fn(per_example_loss, label_ids, logits, is_real):
    predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)
    return {"eval_accuracy": tf.metrics.accuracy(label_ids, predictions, weights=is_real),
            "eval_loss": tf.metrics.mean(per_example_loss, weights=is_real)}
  is_real = tf.cast(features["is_real_example"], tf.float32)
  return metric_fn, [outputs.per_example_loss, features["label_ids"], outputs.logits, is_real]


def _distill_targets(outputs, features):
  del features
  return (DistillTarget(outputs.logits),)  # [B, C]: the distribution over the classes


def head(num_labels, bert_config, dropout_prob=CLASSIFIER_DROPOUT):
  """The classification Head for finetune/core/model.py (features: label_ids, is_real_example [B])."""
  return model_lib.Head(_build(num_labels, bert_config.initializer_range, dropout_prob),
                        _predictions, _eval_metrics, _distill_targets)
