"""The pretraining graph: a student, optionally a frozen teacher, heads and named losses.

`PretrainingModel` builds the graph of one phase and exposes `losses` (a PretrainingLosses of named
scalars), `total_loss`, `scalars` (what TensorBoard shows) and `eval_inputs` (batch-major tensors for
the metrics). `pretraining_model_fn.model_fn_builder` wires it to the optimizer, checkpoint
initialization, summaries and the TPUEstimatorSpec.

Kinds of phase:
  mlm          the model alone, masked-LM loss against the true tokens (plain pretraining of a
               teacher such as BERT / IB-BERT, or the main round with distill_ground_truth_ratio 1);
  progressive  student and teacher; the layer-wise transfer losses of the current stage only;
  distill      student and teacher; masked-LM loss against the teacher's soft labels mixed with the
               true tokens.
The teacher lives under `teacher/`, runs without dropout, and no gradient reaches it (stop_gradient
on everything taken from it; its variables are never given to the optimizer). As in the original, the
student runs without dropout too whenever a teacher is in the graph.
Dimension letters: B batch, T sequence, P masked positions per sequence, V vocab, H hidden.
"""

import collections
import dataclasses
from typing import Optional

import tensorflow.compat.v1 as tf

from mobilebert import heads
from mobilebert import modeling
from mobilebert.config import BertConfig
from pretrain import distillation
from pretrain.progressive import ProgressiveSchedule, variable_name

KINDS = ("mlm", "progressive", "distill")
TEACHER_SCOPE = "teacher"

PretrainingLosses = collections.namedtuple("PretrainingLosses", [
    "total", "masked_lm", "distillation", "next_sentence", "feature_map_transfer",
    "attention_transfer", "mean_transfer", "variance_transfer"])


@dataclasses.dataclass(frozen=True)
class ModelOptions:
  """What the graph of one phase contains (library code gets this, never flags)."""
  bert_config: BertConfig
  kind: str = "mlm"
  teacher_config: Optional[BertConfig] = None
  # Transfer factors (hidden, attention, beta, gamma distill factors of the original flags).
  transfer_factors: distillation.TransferLosses = distillation.TransferLosses(0.0, 0.0, 0.0, 0.0)
  ground_truth_ratio: float = 1.0
  temperature: float = 1.0
  schedule: Optional[ProgressiveSchedule] = None
  nsp: bool = False
  use_einsum: bool = True
  use_one_hot_embeddings: bool = False
  compute_type: tf.DType = tf.float32

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
    if self.kind != "mlm" and self.teacher_config is None:
      raise ValueError(f"a '{self.kind}' phase needs a teacher config")
    if self.kind == "progressive" and self.schedule is None:
      raise ValueError("a 'progressive' phase needs a ProgressiveSchedule")

  @property
  def has_teacher(self):
    return self.kind != "mlm"


class PretrainingModel:
  """Builds one phase's graph from a batch of pretraining features."""

  def __init__(self, options, features, is_training, step=None):
    """
    Args:
      options: ModelOptions.
      features: dict of int32 [B, T] input_ids, input_mask, segment_ids; [B, P] masked_lm_positions,
        masked_lm_ids, float32 masked_lm_weights; [B, 1] next_sentence_labels.
      is_training: dropout on (only without a teacher, as the original).
      step: int64 scalar, the global step before this step's increment (progressive phases).
    """
    self.options = options
    config = options.bert_config
    inputs = dict(input_ids=features["input_ids"], input_mask=features["input_mask"],
                  token_type_ids=features["segment_ids"],
                  use_one_hot_embeddings=options.use_one_hot_embeddings,
                  use_einsum=options.use_einsum, compute_type=options.compute_type)
    positions = features["masked_lm_positions"]
    self.label_ids = tf.reshape(features["masked_lm_ids"], [-1])           # [B*P]
    self.label_weights = features["masked_lm_weights"]                     # [B, P]
    self.student = modeling.BertModel(config, is_training and not options.has_teacher, **inputs)
    student_logits = self._mlm_logits(config, self.student, positions)     # [B*P, V]
    self.log_probs = tf.nn.log_softmax(student_logits, axis=-1)
    num_positions = distillation.replica_mean_count(self.label_weights)
    true_mlm = distillation.masked_lm_loss(
        self.log_probs, tf.one_hot(self.label_ids, config.vocab_size), self.label_weights,
        num_positions)
    nsp_loss, nsp_per_example, nsp_predictions = self._next_sentence(features)

    self.teacher = self.teacher_logits = None
    zero = tf.constant(0.0)
    transfer = distillation.TransferLosses(zero, zero, zero, zero)
    distill_loss = zero
    self.stage = None
    if options.has_teacher:
      with tf.variable_scope(TEACHER_SCOPE):
        self.teacher = modeling.BertModel(options.teacher_config, False, **inputs)
        self.teacher_logits = self._mlm_logits(options.teacher_config, self.teacher, positions)
    if options.kind == "progressive":
      self.stage = options.schedule.stage_tensors(step)
      transfer = self._progressive_losses()
      total = sum(transfer)
    elif options.kind == "distill":
      targets = distillation.soft_labels(self.teacher_logits, self.label_ids,
                                         options.ground_truth_ratio, options.temperature)
      distill_loss = distillation.masked_lm_loss(self.log_probs, targets, self.label_weights,
                                                 num_positions).loss
      total = distill_loss + nsp_loss
    else:
      total = true_mlm.loss + nsp_loss

    self.total_loss = total
    self.losses = PretrainingLosses(total, true_mlm.loss, distill_loss, nsp_loss, *transfer)
    predictions = tf.argmax(self.log_probs, axis=-1, output_type=tf.int32)
    batch_positions = modeling.get_shape_list(positions)
    self.eval_inputs = {
        "masked_lm_loss": tf.reshape(true_mlm.per_position_loss, batch_positions),
        "masked_lm_predictions": tf.reshape(predictions, batch_positions),
        "masked_lm_ids": features["masked_lm_ids"],
        "masked_lm_weights": self.label_weights,
    }
    if options.nsp:
      self.eval_inputs.update(next_sentence_loss=nsp_per_example,
                              next_sentence_predictions=nsp_predictions,
                              next_sentence_labels=tf.reshape(features["next_sentence_labels"], [-1]))
    self.scalars = self._scalars(predictions)

  # -- pieces --------------------------------------------------------------------------------------
  def _mlm_logits(self, config, model, positions):
    """[B*P, V] float32 logits; the head runs in the compute type like the encoder."""
    sequence = tf.cast(model.get_sequence_output(), self.options.compute_type)
    logits = heads.masked_lm_logits(config, sequence, model.get_embedding_table(), positions)
    return tf.cast(logits, tf.float32)

  def _next_sentence(self, features):
    """(loss, per-example loss [B], predictions [B]); zeros when NSP is off."""
    if not self.options.nsp:
      return tf.constant(0.0), None, None
    pooled = tf.cast(self.student.get_pooled_output(), self.options.compute_type)
    logits = tf.cast(heads.next_sentence_logits(self.options.bert_config, pooled), tf.float32)
    log_probs = tf.nn.log_softmax(logits, axis=-1)
    labels = tf.reshape(features["next_sentence_labels"], [-1])
    per_example = -tf.reduce_sum(tf.one_hot(labels, 2) * log_probs, axis=-1)
    return (tf.reduce_mean(per_example), per_example,
            tf.argmax(log_probs, axis=-1, output_type=tf.int32))

  def _progressive_losses(self):
    """Layer l's transfer losses, gated to stage l and divided by L as in the original.

    Returns:
      TransferLosses of float32 scalars (each already weighted by its factor).
    """
    schedule = self.options.schedule
    teacher_layers = self.teacher.get_all_encoder_layers()[1:]
    student_layers = self.student.get_all_encoder_layers()[1:]
    teacher_maps = self.teacher.get_all_attention_maps()
    student_maps = self.student.get_all_attention_maps()
    totals = [tf.constant(0.0)] * 4
    for layer in range(schedule.num_layers):
      with tf.name_scope(f"transfer_layer_{layer}"):
        losses = distillation.layer_transfer_losses(
            teacher_layers[layer], student_layers[layer], teacher_maps[layer], student_maps[layer],
            self.options.transfer_factors)
        gate = schedule.layer_gate(self.stage.stage, layer)
        totals = [t + gate * loss for t, loss in zip(totals, losses)]
    return distillation.TransferLosses(*[t / float(schedule.num_layers) for t in totals])

  def _scalars(self, predictions):
    """Named scalars for TensorBoard, each computed over this batch."""
    weights = tf.reshape(self.label_weights, [-1])
    correct = tf.cast(tf.equal(predictions, self.label_ids), tf.float32)
    accuracy = tf.reduce_sum(weights * correct) / (tf.reduce_sum(weights) + 1e-5)
    scalars = collections.OrderedDict(loss=self.total_loss, masked_lm_loss=self.losses.masked_lm,
                                      masked_lm_accuracy=accuracy)
    if self.options.kind == "distill":
      scalars["distillation_loss"] = self.losses.distillation
    if self.options.nsp:
      scalars["next_sentence_loss"] = self.losses.next_sentence
    if self.options.kind == "progressive":
      for name in ("feature_map_transfer", "attention_transfer", "mean_transfer",
                   "variance_transfer"):
        scalars[f"{name}_loss"] = getattr(self.losses, name)
      scalars["progressive_stage"] = tf.cast(self.stage.stage, tf.float32)
    return scalars

  # -- variables -----------------------------------------------------------------------------------
  @staticmethod
  def student_variables():
    """Trainable variables outside `teacher/`: the only ones the optimizer may change."""
    return [v for v in tf.trainable_variables()
            if not variable_name(v).startswith(TEACHER_SCOPE + "/")]

  @staticmethod
  def teacher_variables():
    return [v for v in tf.trainable_variables()
            if variable_name(v).startswith(TEACHER_SCOPE + "/")]
