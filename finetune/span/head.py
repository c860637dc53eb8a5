# coding=utf-8
"""Span-extraction head: start and end logits over the sequence, cross-entropy averaged over both.

The head's variables are `cls/squad/output_weights` [2, H] (stored [out, in]) and
`cls/squad/output_bias` [2], the names of Google's run_squad, so checkpoints fine-tuned by that code
load. Dimension letters: B batch, T sequence, H hidden.
"""

import dataclasses
from typing import NamedTuple, Optional

import tensorflow.compat.v1 as tf

from mobilebert import checkpoint as checkpoint_lib
from mobilebert import modeling, optimization, quantization
from mobilebert.config import BertConfig

# Static loss scale for float16 training (as the classifier): keeps small gradients representable.
FLOAT16_LOSS_SCALE = 1024.0


class SpanOutputs(NamedTuple):
  """Tensors of the span head; the losses are None without answer positions."""
  start_logits: tf.Tensor  # [B, T] float32
  end_logits: tf.Tensor  # [B, T] float32
  start_loss: Optional[tf.Tensor]  # scalar, mean cross-entropy of the start position
  end_loss: Optional[tf.Tensor]  # scalar
  loss: Optional[tf.Tensor]  # scalar, (start_loss + end_loss) / 2


@dataclasses.dataclass
class SpanModelSettings:
  """What model_fn_builder needs; built once from the run's flags."""
  bert_config: BertConfig
  init_checkpoint: Optional[str] = None
  skip_mismatched_variables: bool = False
  learning_rate: float = 3e-5
  num_train_steps: int = 0
  num_warmup_steps: int = 0
  optimizer: str = "adamw"
  weight_decay_rate: float = 0.01
  use_tpu: bool = False
  use_one_hot_embeddings: bool = False
  use_einsum: bool = True
  compute_type: tf.DType = tf.float32
  use_quantized_training: bool = False  # fake-quantized dense layers in every mode


def span_logits(sequence_output, initializer_range=0.02):
  """sequence_output [B, T, H] float32 -> (start_logits [B, T], end_logits [B, T])."""
  batch_size, seq_length, hidden_size = modeling.get_shape_list(sequence_output, expected_rank=3)
  with tf.variable_scope("cls/squad"):
    output_weights = tf.get_variable(
        "output_weights", [2, hidden_size],
        initializer=tf.truncated_normal_initializer(stddev=initializer_range))
    output_bias = tf.get_variable("output_bias", [2], initializer=tf.zeros_initializer())
  flat = tf.reshape(sequence_output, [batch_size * seq_length, hidden_size])
  logits = tf.nn.bias_add(tf.matmul(flat, output_weights, transpose_b=True), output_bias)  # [B*T, 2]
  logits = tf.transpose(tf.reshape(logits, [batch_size, seq_length, 2]), [2, 0, 1])  # [2, B, T]
  return logits[0], logits[1]


def position_loss(logits, positions):
  """Mean cross-entropy of logits [B, T] against positions [B] int32 (a scalar)."""
  seq_length = modeling.get_shape_list(logits, expected_rank=2)[1]
  log_probs = tf.nn.log_softmax(logits, axis=-1)
  one_hot = tf.one_hot(positions, depth=seq_length, dtype=tf.float32)
  return -tf.reduce_mean(tf.reduce_sum(one_hot * log_probs, axis=-1))


def span_head(sequence_output, start_positions=None, end_positions=None, initializer_range=0.02):
  """sequence_output [B, T, H]; positions [B] int32 or None -> SpanOutputs."""
  start_logits, end_logits = span_logits(sequence_output, initializer_range)
  start_loss = end_loss = loss = None
  if start_positions is not None:
    start_loss = tf.identity(position_loss(start_logits, start_positions), name="start_loss")
    end_loss = tf.identity(position_loss(end_logits, end_positions), name="end_loss")
    loss = tf.identity((start_loss + end_loss) / 2.0, name="span_loss")
  return SpanOutputs(start_logits, end_logits, start_loss, end_loss, loss)


def create_model(settings, is_training, input_ids, input_mask, segment_ids, start_positions=None,
                 end_positions=None):
  """Builds BertModel under `bert/` and the span head under `cls/squad/`.

  Args:
    input_ids, input_mask, segment_ids: int32 [B, T].
    start_positions, end_positions: int32 [B] or None.
  """
  with quantization.fake_quantization(is_training, enabled=settings.use_quantized_training):
    model = modeling.BertModel(
        config=settings.bert_config, is_training=is_training, input_ids=input_ids,
        input_mask=input_mask, token_type_ids=segment_ids,
        use_one_hot_embeddings=settings.use_one_hot_embeddings, use_einsum=settings.use_einsum,
        compute_type=settings.compute_type)
  return span_head(model.get_sequence_output(), start_positions, end_positions,
                   settings.bert_config.initializer_range)


def model_fn_builder(settings):
  """Returns a TPUEstimator model_fn.

  Features: unique_ids, input_ids, input_mask, segment_ids (int32), plus start_positions and
  end_positions [B] for training. PREDICT yields unique_ids, start_logits and end_logits per feature;
  answers are chosen and scored on the host (span_postprocess, cmrc2018_evaluate).
  """

  def model_fn(features, labels, mode, params):
    del labels, params  # positions travel in `features` (TPUEstimator input_fns return one dict)
    is_training = mode == tf.estimator.ModeKeys.TRAIN
    if mode not in (tf.estimator.ModeKeys.TRAIN, tf.estimator.ModeKeys.PREDICT):
      raise ValueError(f"span extraction supports TRAIN and PREDICT (scored on the host), not {mode}")
    outputs = create_model(
        settings, is_training, features["input_ids"], features["input_mask"],
        features["segment_ids"], features.get("start_positions"), features.get("end_positions"))
    if is_training:
      # Prediction restores the fine-tuned checkpoint itself; only training starts from init.
      scaffold_fn = checkpoint_lib.scaffold_fn(settings.init_checkpoint, settings.use_tpu,
                                               settings.skip_mismatched_variables)
      train_op = optimization.create_optimizer(
          outputs.loss, settings.learning_rate, settings.num_train_steps, settings.num_warmup_steps,
          settings.use_tpu, optimizer=settings.optimizer,
          weight_decay_rate=settings.weight_decay_rate,
          loss_scale=FLOAT16_LOSS_SCALE if settings.compute_type == tf.float16 else None)
      return tf.estimator.tpu.TPUEstimatorSpec(mode=mode, loss=outputs.loss, train_op=train_op,
                                               scaffold_fn=scaffold_fn)
    predictions = {"unique_ids": features["unique_ids"], "start_logits": outputs.start_logits,
                   "end_logits": outputs.end_logits}
    return tf.estimator.tpu.TPUEstimatorSpec(mode=mode, predictions=predictions)

  return model_fn
