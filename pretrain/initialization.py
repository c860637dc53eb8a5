"""Where the student's and the teacher's starting weights come from.

`--init_checkpoint` is either a plain model checkpoint (`bert/*`, `cls/*`: a teacher such as
RoBERTa-wwm-ext's `bert_model.ckpt`, or a model to continue) or a pretraining checkpoint of this tool
(student `bert/*`, `cls/*` plus the teacher under `teacher/*`, e.g. the last warm-up checkpoint).

  no teacher in the graph     every model variable from the same name;
  teacher, plain checkpoint   the teacher from the plain names; the student's non-encoder variables
                              (embeddings, MLM head) copied from the teacher's where name and shape
                              agree, as the release did; the student's encoder starts fresh;
  teacher, pretraining ckpt   the student from `bert/*`, `cls/*`, the teacher from `teacher/*`.
The original left the teacher uninitialized (random) when distilling from a plain checkpoint without
the layer-wise warm-up; here the teacher always comes from the checkpoint. A variable whose entry has
another shape is an error (checkpoint.check_fits), unless --skip_mismatched_variables.

Initialization only overrides initializers: when `output_dir` already holds a checkpoint, the
Estimator restores that instead, so rerunning a command never re-initializes a run in progress.
"""

import collections

import tensorflow.compat.v1 as tf

from mobilebert import checkpoint
from pretrain import progressive

InitPlan = collections.namedtuple("InitPlan", ["student_vars", "student_prefix", "teacher_vars",
                                               "teacher_prefix", "description"])


def plan(init_checkpoint, student_vars, teacher_vars, teacher_scope="teacher/"):
  """Decides which graph variables come from which checkpoint names (see the module docstring)."""
  names = checkpoint.list_checkpoint(init_checkpoint)
  is_pretraining_checkpoint = any(n.startswith(teacher_scope) for n in names)
  if not teacher_vars:
    return InitPlan(student_vars, "", [], "", "model from the checkpoint's names")
  if is_pretraining_checkpoint:
    return InitPlan(student_vars, "", teacher_vars, teacher_scope,
                    "student from bert/*, cls/*; teacher from teacher/*")
  shared = set(progressive.shared_with_teacher(student_vars, teacher_vars, teacher_scope))
  copied = [v for v in student_vars if progressive.variable_name(v) in shared]
  return InitPlan(copied, "", teacher_vars, "",
                  "teacher from the plain checkpoint; student embeddings/head copied from it")


def initialize(init_checkpoint, student_vars, teacher_vars, teacher_scope="teacher/",
               skip_mismatched=False):
  """Overrides the initializers according to `plan`; returns the set of initialized graph names.

  A variable whose checkpoint entry has another shape is an error (checkpoint.check_fits) unless
  `skip_mismatched`; the teacher must be complete either way.
  """
  init = plan(init_checkpoint, student_vars, teacher_vars, teacher_scope)
  tf.logging.info("Initializing from %s: %s", init_checkpoint, init.description)
  initialized = set()
  # The teacher first: when its config is wrong, the error names --bert_teacher_config_file.
  if init.teacher_vars:
    result = checkpoint.init_from_checkpoint(init_checkpoint, init.teacher_vars,
                                             checkpoint_prefix=init.teacher_prefix,
                                             graph_prefix=teacher_scope,
                                             skip_mismatched=skip_mismatched,
                                             cause=checkpoint.TEACHER_CAUSE)
    initialized.update(result.initialized)
    missing = [v for v in init.teacher_vars if progressive.variable_name(v) not in initialized]
    if missing:
      raise checkpoint.CheckpointError(
          f"--init_checkpoint={init_checkpoint} does not hold the teacher: "
          f"{len(missing)} teacher variables not found or of another shape, e.g. "
          f"{progressive.variable_name(missing[0])} {missing[0].shape.as_list()}; does "
          "--bert_teacher_config_file describe the checkpoint's model?")
  if init.student_vars:
    result = checkpoint.init_from_checkpoint(init_checkpoint, init.student_vars,
                                             checkpoint_prefix=init.student_prefix,
                                             skip_mismatched=skip_mismatched)
    initialized.update(result.initialized)
  return initialized
