"""The one model_fn of fine-tuning: the encoder, initialization from a checkpoint, the training branch;
a kind's `Head` adds its layers, its named loss, its eval metrics and its prediction tensors.

The head's outputs are a named tuple with at least `logits` (the head's pre-softmax scores) and `loss`
(scalar, None without labels). With a teacher (TrainSettings.distillation), training also builds the
kind's encoder and head a second time, frozen under teacher/ (task_teacher.py), and minimizes the
distillation losses (task_distillation.py) of what the head's `distill_targets` names.
Dimension letters: B batch, T sequence.
"""

import dataclasses
from typing import Callable, NamedTuple, Optional

import tensorflow.compat.v1 as tf

from finetune.core import task_teacher
from finetune.core.distillation_settings import TaskDistillation
from mobilebert import checkpoint as checkpoint_lib
from mobilebert import cli
from mobilebert import modeling, optimization, quantization
from mobilebert.config import BertConfig

# Static loss scale for float16 training: keeps small gradients representable; BERT-sized gradients
# stay far from float16's maximum at this scale.
FLOAT16_LOSS_SCALE = 1024.0


@dataclasses.dataclass
class EncoderSettings:
  """How the encoder is built (in every mode)."""
  bert_config: BertConfig
  use_one_hot_embeddings: bool = False  # TPUs gather faster as a one-hot matmul
  use_einsum: bool = True
  compute_type: tf.DType = tf.float32
  use_quantized_training: bool = False  # fake-quantized dense layers in every mode


class TrainSettings(NamedTuple):
  """How training starts and steps; built from the run config (finetune/core/run_config.py)."""
  init_checkpoint: Optional[str]
  skip_mismatched_variables: bool
  learning_rate: float
  num_train_steps: int
  num_warmup_steps: int
  optimizer: str
  weight_decay_rate: float
  use_tpu: bool
  distillation: Optional[TaskDistillation] = None  # learn from this fine-tuned teacher too


class Head(NamedTuple):
  """What a kind adds on top of the encoder.

  build(model: modeling.BertModel, features: dict, is_training) -> outputs with `logits` and `loss`.
  predictions(outputs, features) -> dict of tensors PREDICT yields per example.
  eval_metrics(outputs, features) -> (metric_fn, tensors) for EVAL; None: the kind scores on the
    host only and EVAL is refused.
  distill_targets(outputs, features) -> tuple of task_distillation.DistillTarget: what a student
    learns from a teacher's same head (classes, span positions with padding masked, ...); None: the
    kind cannot be distilled and the teacher flags are refused.
  """
  build: Callable
  predictions: Callable
  eval_metrics: Optional[Callable] = None
  distill_targets: Optional[Callable] = None


def build_encoder(settings, is_training, input_ids, input_mask, segment_ids):
  """BertModel under `bert/` (input_ids, input_mask, segment_ids: int32 [B, T])."""
  with quantization.fake_quantization(is_training, enabled=settings.use_quantized_training):
    return modeling.BertModel(
        config=settings.bert_config, is_training=is_training, input_ids=input_ids,
        input_mask=input_mask, token_type_ids=segment_ids,
        use_one_hot_embeddings=settings.use_one_hot_embeddings, use_einsum=settings.use_einsum,
        compute_type=settings.compute_type)


def create_model(encoder, head, is_training, features):
  """The encoder and the head on `features` (input_ids, input_mask, segment_ids and the kind's
  labels); returns the head's outputs."""
  return _encoder_and_head(encoder, head, is_training, features)[1]


def _encoder_and_head(encoder, head, is_training, features):
  """(BertModel, the head's outputs) of create_model."""
  model = build_encoder(encoder, is_training, features["input_ids"], features["input_mask"],
                        features["segment_ids"])
  return model, head.build(model, features, is_training)


def _distill(encoder, head, train, features, model, outputs, scaffold_fn):
  """(DistillationLosses, scaffold_fn): the kind's encoder and head again as the frozen teacher."""

  def build_teacher(teacher_config):
    teacher_encoder = dataclasses.replace(encoder, bert_config=teacher_config,
                                          use_quantized_training=False)
    teacher_model, teacher_outputs = _encoder_and_head(teacher_encoder, head, False, features)
    return teacher_model, head.distill_targets(teacher_outputs, features)

  return task_teacher.distill(train.distillation, build_teacher, outputs.loss, model,
                              head.distill_targets(outputs, features), scaffold_fn, train.use_tpu)


def model_fn_builder(encoder, head, train=None):
  """Returns a TPUEstimator model_fn; `train` (TrainSettings) is needed in TRAIN mode only.

  Labels travel in `features` (TPUEstimator input_fns return one dict).
  """
  if train is not None and train.distillation is not None and head.distill_targets is None:
    raise cli.FlagError("this kind of task has no distillation targets: drop "
                        "--bert_teacher_config_file")

  def model_fn(features, labels, mode, params):
    del labels, params
    is_training = mode == tf.estimator.ModeKeys.TRAIN
    if mode == tf.estimator.ModeKeys.EVAL and head.eval_metrics is None:
      raise ValueError(f"this kind supports TRAIN and PREDICT (scored on the host), not {mode}")
    model, outputs = _encoder_and_head(encoder, head, is_training, features)
    if is_training:
      # Eval and predict restore the fine-tuned checkpoint itself; only training starts from init.
      scaffold_fn = checkpoint_lib.scaffold_fn(train.init_checkpoint, train.use_tpu,
                                               train.skip_mismatched_variables)
      loss = outputs.loss
      if train.distillation is not None:
        losses, scaffold_fn = _distill(encoder, head, train, features, model, outputs, scaffold_fn)
        loss = losses.total
      train_op = optimization.create_optimizer(
          loss, train.learning_rate, train.num_train_steps, train.num_warmup_steps,
          train.use_tpu, optimizer=train.optimizer, weight_decay_rate=train.weight_decay_rate,
          loss_scale=FLOAT16_LOSS_SCALE if encoder.compute_type == tf.float16 else None)
      return tf.estimator.tpu.TPUEstimatorSpec(mode=mode, loss=loss, train_op=train_op,
                                               scaffold_fn=scaffold_fn)
    if mode == tf.estimator.ModeKeys.EVAL:
      return tf.estimator.tpu.TPUEstimatorSpec(mode=mode, loss=outputs.loss,
                                               eval_metrics=head.eval_metrics(outputs, features))
    return tf.estimator.tpu.TPUEstimatorSpec(mode=mode,
                                             predictions=head.predictions(outputs, features))

  return model_fn
