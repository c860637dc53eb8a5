"""Sentence(-pair) classifier: BertModel's pooled output, dropout, a dense softmax layer, cross-entropy.

The head's variables are `output_weights` [C, H] (stored [out, in]) and `output_bias` [C] at the top
level, as in Google's and the release's run_classifier, so checkpoints fine-tuned by the original code
load. Dimension letters: B batch, T sequence, H hidden, C classes.
"""

import dataclasses
from typing import NamedTuple, Optional

import tensorflow.compat.v1 as tf

from mobilebert import checkpoint as checkpoint_lib
from mobilebert import modeling, optimization, quantization
from mobilebert.config import BertConfig

# Static loss scale for float16 training: keeps small gradients representable; BERT-sized gradients
# stay far from float16's maximum at this scale.
FLOAT16_LOSS_SCALE = 1024.0


class ClassifierOutputs(NamedTuple):
  """Tensors of the classifier; the losses are None when no labels are given."""
  logits: tf.Tensor  # [B, C] float32
  log_probs: tf.Tensor  # [B, C]
  probabilities: tf.Tensor  # [B, C]
  per_example_loss: Optional[tf.Tensor]  # [B]
  loss: Optional[tf.Tensor]  # scalar, mean cross-entropy


@dataclasses.dataclass
class ClassifierModelSettings:
  """What model_fn_builder needs; built once from the run's flags."""
  bert_config: BertConfig
  num_labels: int
  init_checkpoint: Optional[str] = None
  skip_mismatched_variables: bool = False
  learning_rate: float = 5e-5
  num_train_steps: int = 0
  num_warmup_steps: int = 0
  optimizer: str = "adamw"
  weight_decay_rate: float = 0.01
  use_tpu: bool = False
  use_one_hot_embeddings: bool = False
  use_einsum: bool = True
  compute_type: tf.DType = tf.float32
  classifier_dropout: float = 0.1  # the original's fixed keep_prob 0.9
  use_quantized_training: bool = False  # fake-quantized dense layers in every mode


def classifier_head(pooled_output, labels, num_labels, is_training, dropout_prob=0.1,
                    initializer_range=0.02):
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


def create_model(settings, is_training, input_ids, input_mask, segment_ids, labels):
  """Builds BertModel under `bert/` and the head at the top level.

  Args:
    input_ids, input_mask, segment_ids: int32 [B, T].
    labels: int32 [B] or None.
  """
  with quantization.fake_quantization(is_training, enabled=settings.use_quantized_training):
    model = modeling.BertModel(
        config=settings.bert_config, is_training=is_training, input_ids=input_ids,
        input_mask=input_mask, token_type_ids=segment_ids,
        use_one_hot_embeddings=settings.use_one_hot_embeddings, use_einsum=settings.use_einsum,
        compute_type=settings.compute_type)
  # The students have no pooler (classifier_activation false): this is the first token's vector.
  return classifier_head(model.get_pooled_output(), labels, settings.num_labels, is_training,
                         settings.classifier_dropout, settings.bert_config.initializer_range)


def model_fn_builder(settings):
  """Returns a TPUEstimator model_fn for the classifier.

  Features: input_ids, input_mask, segment_ids [B, T]; label_ids, is_real_example [B] (int32).
  PREDICT yields log_probs, probabilities, label_ids and is_real_example per example, so the host can
  score padded batches (run_classifier scores eval sets this way, see classifier_runner).
  """

  def model_fn(features, labels, mode, params):
    del labels, params  # labels travel in `features` (TPUEstimator input_fns return one dict)
    is_training = mode == tf.estimator.ModeKeys.TRAIN
    label_ids = features["label_ids"]
    outputs = create_model(settings, is_training, features["input_ids"], features["input_mask"],
                           features["segment_ids"], label_ids)
    if is_training:
      # Eval and predict restore the fine-tuned checkpoint itself; only training starts from init.
      scaffold_fn = checkpoint_lib.scaffold_fn(settings.init_checkpoint, settings.use_tpu,
                                               settings.skip_mismatched_variables)
      train_op = optimization.create_optimizer(
          outputs.loss, settings.learning_rate, settings.num_train_steps, settings.num_warmup_steps,
          settings.use_tpu, optimizer=settings.optimizer,
          weight_decay_rate=settings.weight_decay_rate,
          loss_scale=FLOAT16_LOSS_SCALE if settings.compute_type == tf.float16 else None)
      return tf.estimator.tpu.TPUEstimatorSpec(mode=mode, loss=outputs.loss, train_op=train_op,
                                               scaffold_fn=scaffold_fn)
    is_real = tf.cast(features["is_real_example"], tf.float32)
    if mode == tf.estimator.ModeKeys.EVAL:
      def metric_fn(per_example_loss, label_ids, logits, is_real):
        predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return {"eval_accuracy": tf.metrics.accuracy(label_ids, predictions, weights=is_real),
                "eval_loss": tf.metrics.mean(per_example_loss, weights=is_real)}
      return tf.estimator.tpu.TPUEstimatorSpec(
          mode=mode, loss=outputs.loss,
          eval_metrics=(metric_fn, [outputs.per_example_loss, label_ids, outputs.logits, is_real]))
    predictions = {"log_probs": outputs.log_probs,
                   "probabilities": tf.identity(outputs.probabilities, name="probabilities"),
                   "label_ids": label_ids, "is_real_example": features["is_real_example"]}
    return tf.estimator.tpu.TPUEstimatorSpec(mode=mode, predictions=predictions)

  return model_fn
