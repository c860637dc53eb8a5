"""Progressive knowledge transfer: which student layer trains when, and at what learning rate.

The warm-up of N = `num_distill_steps` steps gives each of the student's L layers a stage of
s = N // L steps; in layer l's stage only layer l's transfer losses count. Two schedules
(`--layer_wise_warmup_schedule`, SCHEDULES), the default chosen per optimizer (DEFAULT_SCHEDULE):

original  the original code, step for step (golden-tested). Layer l's stage is steps s*l+1 ... s*l+s
          (its piecewise_constant boundaries: step 0, and the steps after s*L, train no layer).
          Under LAMB layer l trains at 3 x background x {0 before its stage, 1 in it,
          `lower_layer_lr_scale` (0.1) after}, background(t) = min(0.9 + 0.1 sqrt(1 - t/s), 10 t/s),
          t = step mod s: 0 at the first step of every stage, ~1 a tenth in, then down to 0.9. A
          variable whose rate is 0 has its Adam moments zeroed (so they restart with every stage), and
          every variable outside `bert/encoder/layer_*` stays frozen through the warm-up. Under AdamW
          the original applies no layer-wise rate: every student variable trains at the base rate, and
          weight decay shrinks the layers whose gradient is 0.
staged    ours, with AdamW and LAMB alike. Layer l's stage is steps [s*l, s*(l+1)) (the last stage also
          takes the remainder of N / L). Layer l's rate ramps linearly to 1 x the base rate over the first
          tenth of its stage, the layers below train at `lower_layer_lr_scale`, the layers above not at
          all; a variable at rate 0 keeps its value, its weight decay and its moments. Student variables
          outside the encoder train with stage 0 (the embedding transformation feeds layer 0), except
          those copied from the teacher (same name and shape: embeddings, MLM head), which stay frozen.
Both are functions of the global step alone, so a warm-up restarted from any checkpoint continues in
the right stage at the right rates. The teacher never trains: its variables reach no optimizer.
"""

import collections
import math
import re

import tensorflow.compat.v1 as tf

from mobilebert.optimization import VariableRates

ORIGINAL = "original"
STAGED = "staged"
SCHEDULES = (ORIGINAL, STAGED)
# LAMB: the paper authors' recipe, which Google's release trained with. AdamW: the original applied no
# layer-wise rate under AdamW (a defect: layers above the current one decay towards 0 with nothing to
# pull them back), so ours is the default there; `original` reproduces the Chinese release's run.
DEFAULT_SCHEDULE = {"lamb": ORIGINAL, "adamw": STAGED}

_LAYER_PATTERN = re.compile(r"^bert/encoder/layer_(\d+)/")

# Staged: each stage's newly trained layer ramps its rate up linearly over this fraction of the stage.
STAGE_RAMP_FRACTION = 0.1
# Original: the current layer's factor, and the floor the background rate decays to within a stage.
ORIGINAL_CURRENT_LAYER_FACTOR = 3.0
ORIGINAL_BACKGROUND_FLOOR = 0.9

# stage: int32 scalar, the layer whose transfer losses count at `step` (-1: none); step: int32 scalar.
StageTensors = collections.namedtuple("StageTensors", ["stage", "step"])


def schedule_name(requested, optimizer):
  """The schedule a run uses: `requested`, or the optimizer's default when it is None."""
  if requested is None:
    if optimizer not in DEFAULT_SCHEDULE:
      raise ValueError(f"--optimizer must be one of {', '.join(DEFAULT_SCHEDULE)}, got {optimizer!r}")
    return DEFAULT_SCHEDULE[optimizer]
  if requested not in SCHEDULES:
    raise ValueError(f"--layer_wise_warmup_schedule must be one of {', '.join(SCHEDULES)} (or unset "
                     f"for the optimizer's default), got {requested!r}")
  return requested


def make_schedule(requested, optimizer, num_layers, num_distill_steps, lower_layer_lr_scale=0.1):
  """The ProgressiveSchedule of `requested` (None: the optimizer's default) for `optimizer`."""
  cls = {ORIGINAL: OriginalSchedule, STAGED: StagedSchedule}[schedule_name(requested, optimizer)]
  return cls(num_layers, num_distill_steps, optimizer, lower_layer_lr_scale)


class ProgressiveSchedule:
  """Stages and learning-rate scales of the warm-up; `stage_of_step`/`scale_of_layer` mirror the graph."""
  name = None

  def __init__(self, num_layers, num_distill_steps, optimizer, lower_layer_lr_scale=0.1):
    if num_distill_steps < num_layers:
      raise ValueError(f"--num_distill_steps ({num_distill_steps}) must be at least the number of "
                       f"student layers ({num_layers}): each layer needs a stage of >= 1 step")
    if not 0.0 <= lower_layer_lr_scale <= 1.0:
      raise ValueError(f"--lower_layer_lr_scale must be in [0, 1], got {lower_layer_lr_scale}")
    self.num_layers = num_layers
    self.num_distill_steps = num_distill_steps
    self.optimizer = optimizer
    self.lower_layer_lr_scale = lower_layer_lr_scale
    self.steps_per_stage = num_distill_steps // num_layers

  def stage_tensors(self, step):
    """StageTensors for an integer step tensor (read before its increment)."""
    step = tf.cast(step, tf.int32)
    return StageTensors(self._stage(step), step)

  @staticmethod
  def layer_gate(stage, layer):
    """float32 scalar: 1 in the stage that trains `layer`, else 0 (multiplies its losses)."""
    return tf.cast(tf.equal(stage, layer), tf.float32)

  def describe(self):
    return (f"{self.name} schedule, {self.optimizer}: {self.num_layers} stages of "
            f"{self.steps_per_stage} steps; lower layers at {self.lower_layer_lr_scale:g} x")


class StagedSchedule(ProgressiveSchedule):
  """Ours: stages [s*l, s*(l+1)), a ramped current layer, moments kept; both optimizers."""
  name = STAGED

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self.ramp_steps = max(1, int(self.steps_per_stage * STAGE_RAMP_FRACTION))

  def stage_of_step(self, step):
    return min(int(step) // self.steps_per_stage, self.num_layers - 1)

  def scale_of_layer(self, layer, step):
    stage = self.stage_of_step(step)
    if layer == stage:
      return min(1.0, (step - stage * self.steps_per_stage + 1) / self.ramp_steps)
    return self.lower_layer_lr_scale if layer < stage else 0.0

  def _stage(self, step):
    return tf.minimum(step // self.steps_per_stage, self.num_layers - 1)

  def variable_rates(self, stage_tensors, student_variables, teacher_variables):
    """VariableRates for `build_train_op`: ramped current layer, frozen copies of the teacher."""
    frozen = frozenset(shared_with_teacher(student_variables, teacher_variables))
    stage = stage_tensors.stage
    in_stage = stage_tensors.step - stage * self.steps_per_stage
    ramp = tf.minimum(1.0, tf.cast(in_stage + 1, tf.float32) / float(self.ramp_steps))

    def scale(variable):
      name = variable_name(variable)
      if name in frozen:
        return tf.constant(0.0)
      layer = layer_group(name)
      current = tf.cast(tf.equal(stage, layer), tf.float32) * ramp
      below = tf.cast(tf.less(layer, stage), tf.float32) * self.lower_layer_lr_scale
      return current + below

    return VariableRates(scale, reset_frozen_moments=False)


class OriginalSchedule(ProgressiveSchedule):
  """The original's: stages s*l+1 ... s*l+s; LAMB's periodic background rate; AdamW unscheduled."""
  name = ORIGINAL

  def stage_of_step(self, step):
    step = int(step)
    return (step - 1) // self.steps_per_stage if 1 <= step <= self.num_layers * self.steps_per_stage \
        else -1

  def scale_of_layer(self, layer, step):
    """The rate scale of encoder layer `layer` at `step` (None: the optimizer applies none)."""
    if self.optimizer != "lamb":
      return None
    s = self.steps_per_stage
    t = step % s
    background = 1.0 if s == 1 else min(
        (1.0 - ORIGINAL_BACKGROUND_FLOOR) * math.sqrt(1.0 - t / s) + ORIGINAL_BACKGROUND_FLOOR,
        10.0 * t / s)
    start = s * layer
    piece = 0.0 if step <= start else (1.0 if step <= start + s else self.lower_layer_lr_scale)
    return ORIGINAL_CURRENT_LAYER_FACTOR * background * piece

  def _stage(self, step):
    inside = tf.logical_and(step >= 1, step <= self.num_layers * self.steps_per_stage)
    return tf.where_v2(inside, (step - 1) // self.steps_per_stage, -1)

  def variable_rates(self, stage_tensors, student_variables, teacher_variables):
    """LAMB: the original's layer-wise rates (VariableRates); AdamW: None, every variable at 1."""
    del student_variables, teacher_variables  # the original freezes by name, not by origin
    if self.optimizer != "lamb":
      return None
    s = self.steps_per_stage
    step = stage_tensors.step
    if s > 1:
      t = tf.cast(step % s, tf.float32) / float(s)
      background = tf.minimum(
          (1.0 - ORIGINAL_BACKGROUND_FLOOR) * tf.sqrt(1.0 - t) + ORIGINAL_BACKGROUND_FLOOR, 10.0 * t)
    else:
      background = tf.constant(1.0)

    def scale(variable):
      layer = layer_index(variable_name(variable))
      if layer is None:
        return tf.constant(0.0)
      start = s * layer
      piece = tf.where_v2(step <= start, 0.0,
                          tf.where_v2(step <= start + s, 1.0, self.lower_layer_lr_scale))
      return ORIGINAL_CURRENT_LAYER_FACTOR * (background * piece)

    return VariableRates(scale, reset_frozen_moments=True)


def layer_index(name):
  """Encoder layer of a student variable name, or None outside the encoder."""
  match = _LAYER_PATTERN.match(name)
  return int(match.group(1)) if match else None


def layer_group(name):
  """The stage whose layer a variable belongs to (staged): its encoder layer, 0 for the rest."""
  index = layer_index(name)
  return 0 if index is None else index


def variable_name(variable):
  return variable.name.split(":")[0]


def shared_with_teacher(student_variables, teacher_variables, teacher_scope="teacher/"):
  """Names of the student's non-encoder variables whose teacher twin has the same name and shape.

  These are the variables the release copies from the teacher (embeddings, MLM head); the staged
  warm-up keeps them frozen.
  """
  teacher_shapes = {variable_name(v)[len(teacher_scope):]: v.shape.as_list()
                    for v in teacher_variables if variable_name(v).startswith(teacher_scope)}
  shared = []
  for var in student_variables:
    name = variable_name(var)
    if layer_index(name) is None and teacher_shapes.get(name) == var.shape.as_list():
      shared.append(name)
  return shared
