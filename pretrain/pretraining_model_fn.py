"""The TPUEstimator model_fn of a pretraining phase: model, initialization, optimizer, summaries, specs.

Everything specific to the graph is in `PretrainingModel`; this module only wires it. Summaries are
host calls on TPU (the TPU cannot write files) and plain `tf.summary` scalars elsewhere. Under a
MirroredStrategy each replica reports its own mean loss, and in training the Estimator sums what the
replicas report, so the training loss is divided by the number of replicas to show the global mean.
"""

import dataclasses
from typing import Optional

import tensorflow.compat.v1 as tf

from mobilebert import optimization
from pretrain import initialization
from pretrain.pretraining_model import PretrainingModel

# `learning_rate_schedule` decays linearly over this many steps: a constant rate in practice
# (step / 2**62 rounds to 0 in float32 for any reachable step). The warm-up's rate is constant, as in
# the original; its per-layer shape comes from the progressive schedule.
CONSTANT_RATE_STEPS = 2 ** 62


@dataclasses.dataclass(frozen=True)
class TrainOptions:
  learning_rate: float
  num_train_steps: int
  num_warmup_steps: int = 0
  optimizer: str = "adamw"
  weight_decay_rate: float = 0.01
  use_tpu: bool = False
  loss_scale: Optional[float] = None


@dataclasses.dataclass(frozen=True)
class SummaryOptions:
  use_summary: bool = False
  summary_dir: Optional[str] = None
  use_host_call: bool = False


def model_fn_builder(options, train, init_checkpoint=None, summaries=SummaryOptions(),
                     skip_mismatched=False):
  """Returns a TPUEstimator `model_fn` for one phase.

  Args:
    options: pretraining_model.ModelOptions.
    train: TrainOptions.
    init_checkpoint: checkpoint to initialize from when the run has none yet (see initialization).
    skip_mismatched: leave variables whose checkpoint entry has another shape at their initializer
      instead of stopping (--skip_mismatched_variables).
    summaries: SummaryOptions.
  """

  def model_fn(features, labels, mode, params):  # pylint: disable=unused-argument
    is_training = mode == tf.estimator.ModeKeys.TRAIN
    global_step = tf.train.get_or_create_global_step()
    step = tf.identity(global_step)  # read before this step's increment, like the optimizer
    model = PretrainingModel(options, features, is_training, step)
    student_vars = model.student_variables()
    teacher_vars = model.teacher_variables()
    scaffold_fn = _initializer(init_checkpoint, student_vars, teacher_vars, train.use_tpu,
                               skip_mismatched)
    _log_variables(student_vars, teacher_vars)

    if mode == tf.estimator.ModeKeys.TRAIN:
      replicas = tf.distribute.get_replica_context()
      num_replicas = replicas.num_replicas_in_sync if replicas is not None else 1
      # Training sums what the replicas report; evaluation averages it.
      reported_loss = model.total_loss / float(num_replicas)
      schedule = options.schedule if options.kind == "progressive" else None
      result = build_phase_train_op(model.total_loss, step, train, student_vars, teacher_vars,
                                    schedule)
      host_call = None
      if summaries.use_summary:
        scalars = dict(model.scalars, learning_rate=result.learning_rate)
        host_call = _summaries(scalars, global_step, summaries)
      return tf.estimator.tpu.TPUEstimatorSpec(mode=mode, loss=reported_loss,
                                               train_op=result.train_op, host_call=host_call,
                                               scaffold_fn=scaffold_fn)
    if mode == tf.estimator.ModeKeys.EVAL:
      names = sorted(model.eval_inputs)
      return tf.estimator.tpu.TPUEstimatorSpec(
          mode=mode, loss=model.total_loss, scaffold_fn=scaffold_fn,
          eval_metrics=(_metric_fn(names), [model.eval_inputs[n] for n in names]))
    raise ValueError(f"pretraining supports TRAIN and EVAL, not {mode}")

  return model_fn


def build_phase_train_op(loss, step, train, student_vars, teacher_vars, schedule=None):
  """The optimizer step of a phase; with a ProgressiveSchedule, the warm-up's per-variable rates.

  Args:
    loss: scalar loss tensor.
    step: int64 scalar, the global step before this step's increment.
    train: TrainOptions.
    student_vars, teacher_vars: lists of variables (only the student's are trained).
    schedule: progressive.ProgressiveSchedule of a warm-up phase, else None.
  Returns:
    optimization.TrainOp.
  """
  variable_rates = None
  num_train_steps = train.num_train_steps
  if schedule is not None:
    if schedule.optimizer != train.optimizer:  # the original's rates depend on the optimizer
      raise ValueError(f"the warm-up schedule was made for {schedule.optimizer}, the phase trains "
                       f"with {train.optimizer}")
    variable_rates = schedule.variable_rates(schedule.stage_tensors(step), student_vars,
                                             teacher_vars)
    num_train_steps = CONSTANT_RATE_STEPS
  return optimization.build_train_op(
      loss, train.learning_rate, num_train_steps, train.num_warmup_steps, train.use_tpu,
      train.optimizer, train.weight_decay_rate, tvars=student_vars, variable_rates=variable_rates,
      loss_scale=train.loss_scale)


def _initializer(init_checkpoint, student_vars, teacher_vars, use_tpu, skip_mismatched):
  """Initializes from the checkpoint now, or (TPU) returns the scaffold_fn that does it."""
  if not init_checkpoint:
    return None
  if not use_tpu:
    initialization.initialize(init_checkpoint, student_vars, teacher_vars,
                              skip_mismatched=skip_mismatched)
    return None

  def tpu_scaffold():
    initialization.initialize(init_checkpoint, student_vars, teacher_vars,
                              skip_mismatched=skip_mismatched)
    return tf.train.Scaffold()

  return tpu_scaffold


def _summaries(scalars, global_step, summaries):
  """Plain scalar summaries, or the TPU host call that writes them; returns the host call or None."""
  if not summaries.use_host_call:
    for name, value in scalars.items():
      tf.summary.scalar(name, value)
    return None
  names = list(scalars)
  # Host-call tensors are concatenated over TPU cores along axis 0, hence [1] and the mean below.
  tensors = [tf.reshape(tf.cast(scalars[n], tf.float32), [1]) for n in names]
  tensors.append(tf.reshape(global_step, [1]))

  def host_call_fn(*args):
    step = args[-1][0]
    writer = tf.compat.v2.summary.create_file_writer(summaries.summary_dir, max_queue=1000)
    with writer.as_default(), tf.compat.v2.summary.record_if(True):
      for name, value in zip(names, args[:-1]):
        tf.compat.v2.summary.scalar(name, tf.reduce_mean(value), step=step)
    return tf.summary.all_v2_summary_ops()

  return host_call_fn, tensors


def _metric_fn(names):
  """Masked-LM accuracy and mean loss (and NSP's) over the evaluation, weighted by real positions."""

  def metric_fn(*tensors):
    t = dict(zip(names, tensors))
    weights = tf.reshape(t["masked_lm_weights"], [-1])
    metrics = {
        "masked_lm_accuracy": tf.metrics.accuracy(
            labels=tf.reshape(t["masked_lm_ids"], [-1]),
            predictions=tf.reshape(t["masked_lm_predictions"], [-1]), weights=weights),
        "masked_lm_loss": tf.metrics.mean(tf.reshape(t["masked_lm_loss"], [-1]), weights=weights),
    }
    if "next_sentence_labels" in t:
      metrics["next_sentence_accuracy"] = tf.metrics.accuracy(
          labels=t["next_sentence_labels"], predictions=t["next_sentence_predictions"])
      metrics["next_sentence_loss"] = tf.metrics.mean(t["next_sentence_loss"])
    return metrics

  return metric_fn


def _log_variables(student_vars, teacher_vars):
  count = lambda variables: sum(v.shape.num_elements() for v in variables)
  tf.logging.info("Student: %d variables, %d parameters (trained)", len(student_vars),
                  count(student_vars))
  if teacher_vars:
    tf.logging.info("Teacher: %d variables, %d parameters (frozen)", len(teacher_vars),
                    count(teacher_vars))
