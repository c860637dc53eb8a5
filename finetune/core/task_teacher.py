"""The fine-tuned teacher of task-specific distillation, frozen inside the student's training graph.

The teacher is built by the kind's own model function (encoder and head) under TEACHER_SCOPE, the
scope pretraining uses, without dropout. Every variable it creates is made non-trainable as it is
created, so it is outside tf.trainable_variables(): the optimizer, weight decay, gradient clipping and
the student's --init_checkpoint (which matches trainable variables) never see it. Its values come from
--teacher_init_checkpoint, the teacher's fine-tuning output: graph `teacher/X` <- checkpoint `X`, head
included, every variable required. The teacher is saved in the student's checkpoints (the Saver keeps
all global variables), so a resumed run restores the same teacher without reading the teacher's
directory again; evaluation and prediction graphs do not build it and ignore those entries.
"""

from typing import NamedTuple

import tensorflow.compat.v1 as tf

from finetune.core import task_distillation
from mobilebert import checkpoint
from pretrain.pretraining_model import TEACHER_SCOPE

TEACHER_INIT_CAUSE = ("--bert_teacher_config_file (or the task's labels) does not describe the model "
                      "in --teacher_init_checkpoint")


class Teacher(NamedTuple):
  """What the kind's build function returned for the teacher, and the variables it created."""
  outputs: object
  variables: list


def _frozen(getter, *args, **kwargs):
  kwargs["trainable"] = False
  return getter(*args, **kwargs)


def build_teacher(build_fn):
  """Runs `build_fn()` under TEACHER_SCOPE with every variable it creates frozen; returns a Teacher."""
  before = {v.op.name for v in tf.global_variables()}
  with tf.variable_scope(TEACHER_SCOPE, custom_getter=_frozen):
    outputs = build_fn()
  created = [v for v in tf.global_variables() if v.op.name not in before]
  return Teacher(outputs, created)


def initialize_teacher(teacher_init_checkpoint, variables):
  """Overrides the teacher variables' initializers with the checkpoint's values (none may be missing).

  Raises checkpoint.CheckpointError naming --teacher_init_checkpoint.
  """
  prefix = TEACHER_SCOPE + "/"
  try:
    result = checkpoint.init_from_checkpoint(teacher_init_checkpoint, variables, graph_prefix=prefix,
                                             cause=TEACHER_INIT_CAUSE)
  except checkpoint.CheckpointError as e:
    raise checkpoint.CheckpointError(f"--teacher_init_checkpoint: {e}") from None
  if result.not_in_checkpoint:
    name = result.not_in_checkpoint[0][len(prefix):]
    raise checkpoint.CheckpointError(
        f"--teacher_init_checkpoint={teacher_init_checkpoint} does not hold the whole teacher: "
        f"{len(result.not_in_checkpoint)} variables missing, e.g. {name}; likely cause: "
        f"{TEACHER_INIT_CAUSE}")
  return result


def scaffold_fn(student_scaffold_fn, teacher_init_checkpoint, variables, use_tpu):
  """The student's scaffold_fn (or None) extended with the teacher's initialization.

  Off TPU the initializers are overridden now; on TPU it must happen on the host graph the scaffold
  builds, as checkpoint.scaffold_fn does for the student.
  """
  if not use_tpu:
    initialize_teacher(teacher_init_checkpoint, variables)
    return student_scaffold_fn

  def tpu_scaffold():
    if student_scaffold_fn is not None:
      student_scaffold_fn()
    initialize_teacher(teacher_init_checkpoint, variables)
    return tf.train.Scaffold()

  return tpu_scaffold


def distill(distillation, build, task_loss, student_model, student_targets, student_scaffold_fn,
            use_tpu=False):
  """Adds the frozen teacher and the distillation losses to a kind's training graph.

  Args:
    distillation: distillation_settings.TaskDistillation.
    build: function(bert_config) -> (modeling.BertModel, tuple of DistillTarget), the kind's encoder
      and head without dropout and without labels; called once, under TEACHER_SCOPE.
    task_loss: float32 scalar, the student's loss against the true labels.
    student_model: the student's modeling.BertModel.
    student_targets: the student's tuple of DistillTarget.
    student_scaffold_fn: what checkpoint.scaffold_fn returned for the student (or None).
    use_tpu: initialize the teacher in a TPU scaffold.
  Returns:
    (task_distillation.DistillationLosses, scaffold_fn). Each loss is also a scalar summary of its
    name (written off TPU, where the Estimator saves summaries).
  """
  teacher = build_teacher(lambda: build(distillation.teacher_config))
  teacher_model, teacher_targets = teacher.outputs
  losses = task_distillation.distillation_losses(task_loss, teacher_targets, student_targets,
                                                 distillation.weights, teacher_model, student_model)
  if not use_tpu:
    for name, value in losses._asdict().items():
      tf.summary.scalar(f"{name}_loss", value)
  tf.logging.info("Teacher: %d frozen variables, %d parameters, from %s", len(teacher.variables),
                  sum(v.shape.num_elements() for v in teacher.variables),
                  distillation.teacher_init_checkpoint)
  return losses, scaffold_fn(student_scaffold_fn, distillation.teacher_init_checkpoint,
                             teacher.variables, use_tpu)
