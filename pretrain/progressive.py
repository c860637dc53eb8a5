"""Progressive knowledge transfer: which student layer trains when, and at what learning rate.

The warm-up of `num_distill_steps` steps is split into L stages of `num_distill_steps // L` steps (the
last stage also takes the remainder). In stage l only the transfer losses of layer l count, layer l
trains at the full rate (ramped up over the first tenth of the stage, because its Adam moments start
from zero), the layers below l train at `lower_layer_lr_scale` times the rate (0 freezes them), and
the layers above l do not move. The stage is a function of the global step alone, so a run restarted
from any checkpoint continues in the right stage.

Student variables outside the encoder belong to stage 0 (the embedding transformation feeds layer 0),
except those copied from the teacher (same name and shape, e.g. the word embeddings and the MLM head),
which stay frozen through the warm-up as in the paper. The teacher never trains: its variables are not
passed to the optimizer at all.

The original applied this schedule only inside LAMB; its AdamW trained every variable at the full rate
and weight-decayed the layers above l. Here the schedule is a per-variable learning-rate scale that
`mobilebert.optimization.build_train_op` applies to AdamW and LAMB alike, and a scale of 0 leaves a
variable, its weight decay and its moments untouched.
"""

import collections
import re

import tensorflow.compat.v1 as tf

_LAYER_PATTERN = re.compile(r"^bert/encoder/layer_(\d+)/")

# Each stage's newly trained layer ramps its rate up linearly over this fraction of the stage.
STAGE_RAMP_FRACTION = 0.1

StageTensors = collections.namedtuple("StageTensors", ["stage", "ramp"])


class ProgressiveSchedule:
  """Stages of the layer-wise warm-up for a student of `num_layers` layers."""

  def __init__(self, num_layers, num_distill_steps, lower_layer_lr_scale=0.1):
    if num_distill_steps < num_layers:
      raise ValueError(f"--num_distill_steps ({num_distill_steps}) must be at least the number of "
                       f"student layers ({num_layers}): each layer needs a stage of >= 1 step")
    if not 0.0 <= lower_layer_lr_scale <= 1.0:
      raise ValueError(f"--lower_layer_lr_scale must be in [0, 1], got {lower_layer_lr_scale}")
    self.num_layers = num_layers
    self.num_distill_steps = num_distill_steps
    self.lower_layer_lr_scale = lower_layer_lr_scale
    self.steps_per_stage = num_distill_steps // num_layers
    self.ramp_steps = max(1, int(self.steps_per_stage * STAGE_RAMP_FRACTION))

  # -- plain Python (logging, tests, resuming) -------------------------------------------------------
  def stage_of_step(self, step):
    """The stage (0..L-1) that step `step` (0-based, before its increment) trains."""
    return min(int(step) // self.steps_per_stage, self.num_layers - 1)

  def stage_start(self, stage):
    return stage * self.steps_per_stage

  def scale_of_layer(self, layer, stage, step_in_stage):
    """Learning-rate scale of a variable group (`layer`) in `stage`; mirrors `lr_scale_fn`."""
    if layer == stage:
      return min(1.0, (step_in_stage + 1) / self.ramp_steps)
    return self.lower_layer_lr_scale if layer < stage else 0.0

  # -- graph ---------------------------------------------------------------------------------------
  def stage_tensors(self, step):
    """StageTensors(stage int32 scalar, ramp float32 scalar) for an int64 step tensor."""
    step = tf.cast(step, tf.int32)
    stage = tf.minimum(step // self.steps_per_stage, self.num_layers - 1)
    in_stage = step - stage * self.steps_per_stage
    ramp = tf.minimum(1.0, tf.cast(in_stage + 1, tf.float32) / float(self.ramp_steps))
    return StageTensors(stage, ramp)

  def layer_gate(self, stage, layer):
    """float32 scalar: 1 in the stage that trains `layer`, else 0 (multiplies its losses)."""
    return tf.cast(tf.equal(stage, layer), tf.float32)

  def lr_scale_fn(self, stage_tensors, frozen_names=()):
    """Returns fn(variable) -> float32 scale for `build_train_op(lr_scale_fn=...)`.

    Args:
      stage_tensors: StageTensors of the current step (read before its increment).
      frozen_names: student variable names (without ":0") kept frozen through the warm-up.
    """
    frozen = frozenset(frozen_names)

    def scale(variable):
      name = variable_name(variable)
      if name in frozen:
        return tf.constant(0.0)
      layer = layer_group(name)
      current = tf.cast(tf.equal(stage_tensors.stage, layer), tf.float32) * stage_tensors.ramp
      below = tf.cast(tf.less(layer, stage_tensors.stage), tf.float32) * self.lower_layer_lr_scale
      return current + below

    return scale

  def describe(self):
    return (f"{self.num_layers} stages of {self.steps_per_stage} steps (last stage to step "
            f"{self.num_distill_steps}); layers below the current one at "
            f"{self.lower_layer_lr_scale:g} x the rate")


def layer_index(name):
  """Encoder layer of a student variable name, or None outside the encoder."""
  match = _LAYER_PATTERN.match(name)
  return int(match.group(1)) if match else None


def layer_group(name):
  """The stage whose layer a variable belongs to: its encoder layer, 0 for everything else."""
  index = layer_index(name)
  return 0 if index is None else index


def variable_name(variable):
  return variable.name.split(":")[0]


def shared_with_teacher(student_variables, teacher_variables, teacher_scope="teacher/"):
  """Names of the student's non-encoder variables whose teacher twin has the same name and shape.

  These are the variables the release copies from the teacher (embeddings, MLM head); the warm-up
  keeps them frozen.
  """
  teacher_shapes = {variable_name(v)[len(teacher_scope):]: v.shape.as_list()
                    for v in teacher_variables if variable_name(v).startswith(teacher_scope)}
  shared = []
  for var in student_variables:
    name = variable_name(var)
    if layer_index(name) is None and teacher_shapes.get(name) == var.shape.as_list():
      shared.append(name)
  return shared
