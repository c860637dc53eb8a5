"""Initializing graph variables from checkpoints by name, strictly.

Released pretraining checkpoints hold more than a model needs (the teacher under `teacher/`, AdamW
slots, `global_step`); those entries are ignored. A graph variable and a checkpoint entry match when
their names agree after removing `graph_prefix` / `checkpoint_prefix`. A matching entry of another
shape means the config does not describe the checkpoint's model: that is an error (the run would
otherwise train from partly random weights), and so is a checkpoint that initializes nothing. Both are
allowed only with `skip_mismatched` (the --skip_mismatched_variables flag of every entry point that
initializes from a checkpoint). Graph variables the checkpoint lacks (a new classifier head) are left
at their initializer and listed.
"""

import collections
import re

import numpy as np
import tensorflow.compat.v1 as tf

from mobilebert import cli

CheckpointInit = collections.namedtuple(
    "CheckpointInit", ["assignment_map", "initialized", "shape_mismatch", "not_in_checkpoint"])

OPTIMIZER_SLOT_PATTERN = re.compile(r"/(adam_m|adam_v|Adam|Adam_1|Momentum|lamb_m|lamb_v)$")

SKIP_FLAG = "--skip_mismatched_variables"
# The likely cause of a mismatch, named by the flags a user sets.
MODEL_CAUSE = "--bert_config_file does not describe the model in --init_checkpoint"
TEACHER_CAUSE = "--bert_teacher_config_file does not describe the teacher in --init_checkpoint"
# Errors that reading a truncated or corrupt checkpoint raises (IndexError: "Read less bytes than
# requested" from a short .data file).
READ_ERRORS = (tf.errors.OpError, IndexError, ValueError)


class CheckpointError(cli.UserError, ValueError):
  """A checkpoint that cannot be read, or that does not fit the graph; the message is one line."""


def _first_line(error):
  text = str(error).strip()
  return text.splitlines()[0] if text else type(error).__name__


def resolve_checkpoint(path):
  """Returns a checkpoint prefix for `path`: a prefix itself, or a directory's latest checkpoint."""
  if not path:
    raise CheckpointError("no checkpoint path given")
  if tf.io.gfile.isdir(path):
    latest = tf.train.latest_checkpoint(path)
    if latest is None:
      raise CheckpointError(f"{path}: directory holds no checkpoint (no 'checkpoint' state file)")
    return latest
  if not tf.io.gfile.exists(path + ".index"):
    raise CheckpointError(f"{path}: not a checkpoint ({path}.index does not exist); give the prefix, "
                          "e.g. model.ckpt for model.ckpt.index + model.ckpt.data-*")
  return path


def list_checkpoint(path):
  """{name: shape} of every variable in the checkpoint at `path`."""
  prefix = resolve_checkpoint(path)
  try:
    return dict(tf.train.list_variables(prefix))
  except READ_ERRORS as e:
    raise CheckpointError(f"{path}: cannot read checkpoint, its index is truncated or corrupt "
                          f"({_first_line(e)})") from None


def _open_reader(prefix):
  try:
    return tf.train.load_checkpoint(prefix)
  except READ_ERRORS as e:
    raise CheckpointError(f"{prefix}: cannot read checkpoint, it is truncated or corrupt "
                          f"({_first_line(e)})") from None


def _read_tensor(reader, prefix, name):
  try:
    return reader.get_tensor(name)
  except READ_ERRORS as e:
    raise CheckpointError(f"{prefix}: cannot read {name}, the checkpoint is truncated or corrupt "
                          f"({_first_line(e)})") from None


def check_readable(path, names=None):
  """Reads every tensor `names` lists (default: all) once; raises CheckpointError naming the first
  that cannot be read (a truncated .data file, a checksum mismatch)."""
  prefix = resolve_checkpoint(path)
  reader = _open_reader(prefix)
  for name in sorted(reader.get_variable_to_shape_map()) if names is None else names:
    _read_tensor(reader, prefix, name)  # one at a time: memory stays at the largest tensor


def assignment_map(init_checkpoint, tvars=None, checkpoint_prefix="", graph_prefix=""):
  """Matches graph variables with checkpoint entries.

  Args:
    init_checkpoint: checkpoint prefix or directory.
    tvars: variables to initialize (default: all trainable variables).
    checkpoint_prefix: prefix of the names in the checkpoint (e.g. "teacher/").
    graph_prefix: only graph variables under this prefix take part; it is removed before matching.
  Returns:
    CheckpointInit: assignment_map {checkpoint name: variable}, initialized names (graph names),
    shape_mismatch [(graph name, graph shape, checkpoint shape)], not_in_checkpoint (graph names).
  """
  in_checkpoint = list_checkpoint(init_checkpoint)
  tvars = tf.trainable_variables() if tvars is None else tvars
  amap = collections.OrderedDict()
  initialized, mismatched, missing = [], [], []
  for var in tvars:
    name = var.name.split(":")[0]
    if not name.startswith(graph_prefix):
      continue
    source = checkpoint_prefix + name[len(graph_prefix):]
    if source not in in_checkpoint:
      missing.append(name)
      continue
    shape = var.shape.as_list()
    if list(in_checkpoint[source]) != shape:
      mismatched.append((name, shape, list(in_checkpoint[source])))
      continue
    amap[source] = var
    initialized.append(name)
  return CheckpointInit(amap, initialized, mismatched, missing)


def _and_more(count, singular, plural):
  return f", and {count} more {singular if count == 1 else plural}" if count else ""


def check_fits(prefix, result, cause=MODEL_CAUSE, skip_mismatched=False, checkpoint_prefix="",
               graph_prefix="", require_all=False):
  """Raises CheckpointError (one line: the first variable, both shapes, the likely cause) when
  `result` (a CheckpointInit of `prefix`) has a shape mismatch, or initializes nothing although there
  were variables to initialize; `skip_mismatched` allows both. With `require_all` (export, fill-mask:
  an inference graph must come whole from the checkpoint) every variable must be there, no skipping.
  """
  if skip_mismatched and not require_all:
    return
  hint = "" if require_all else f"; {SKIP_FLAG} leaves such variables at their initializer instead"
  if result.shape_mismatch:
    name, shape, ckpt_shape = result.shape_mismatch[0]
    source = checkpoint_prefix + name[len(graph_prefix):]
    graph_name = "" if source == name else f" (as {name})"
    more = len(result.shape_mismatch) - 1
    raise CheckpointError(
        f"{prefix}: {source} has shape {ckpt_shape} in the checkpoint but {shape} in the graph"
        f"{graph_name}{_and_more(more, 'variable differs', 'variables differ')}; likely cause: "
        f"{cause}{hint}")
  missing = result.not_in_checkpoint
  if missing and (require_all or not result.initialized):
    source = checkpoint_prefix + missing[0][len(graph_prefix):]
    what = (f"the graph's {source} is not in the checkpoint"
            f"{_and_more(len(missing) - 1, 'variable is missing', 'variables are missing')}"
            if result.initialized else
            f"none of the {len(missing)} graph variables is in the checkpoint (e.g. {source})")
    raise CheckpointError(f"{prefix}: {what}; likely cause: {cause}, or it is not a checkpoint of "
                          f"this kind of model{hint}")


def scaffold_fn(init_checkpoint, use_tpu, skip_mismatched=False):
  """What a model_fn does to start from `init_checkpoint` (ignoring entries with no graph variable).

  Off TPU the initializers are overridden right away and None is returned; on TPU they must be
  overridden on the host graph the scaffold builds, so a TPUEstimator scaffold_fn is returned.
  """
  if not init_checkpoint:
    return None
  if not use_tpu:
    init_from_checkpoint(init_checkpoint, skip_mismatched=skip_mismatched)
    return None

  def tpu_scaffold():
    init_from_checkpoint(init_checkpoint, skip_mismatched=skip_mismatched)
    return tf.train.Scaffold()

  return tpu_scaffold


def init_from_checkpoint(init_checkpoint, tvars=None, checkpoint_prefix="", graph_prefix="",
                         log=True, skip_mismatched=False, cause=MODEL_CAUSE):
  """Overrides the initializers of matching variables with the checkpoint's values.

  Raises CheckpointError (see check_fits) on a variable of another shape or when nothing would be
  initialized, and when a tensor to load cannot be read. Returns the CheckpointInit; logs one summary
  line and each name with what happened to it.
  """
  prefix = resolve_checkpoint(init_checkpoint)
  result = assignment_map(prefix, tvars, checkpoint_prefix, graph_prefix)
  check_fits(prefix, result, cause, skip_mismatched, checkpoint_prefix, graph_prefix)
  if result.assignment_map:
    # Reading happens when the session starts, deep in the Estimator: fail here, naming the file.
    check_readable(prefix, list(result.assignment_map))
    init_from_checkpoint_any_dtype(prefix, result.assignment_map)
  if log:
    log_init(prefix, result, graph_prefix)
  return result


def log_init(prefix, result, graph_prefix=""):
  """One summary line, then every name: loaded, left at its initializer, skipped for its shape."""
  scope = f" under {graph_prefix}" if graph_prefix else ""
  total = len(result.initialized) + len(result.not_in_checkpoint) + len(result.shape_mismatch)
  tf.logging.info("init_from_checkpoint %s: loaded %d of %d variables%s; %d left at their initializer "
                  "(not in the checkpoint), %d skipped (shape mismatch)", prefix,
                  len(result.initialized), total, scope, len(result.not_in_checkpoint),
                  len(result.shape_mismatch))
  for name in result.initialized:
    tf.logging.info("  loaded %s", name)
  for name in result.not_in_checkpoint:
    tf.logging.info("  left at initializer (not in checkpoint): %s", name)
  for name, shape, ckpt_shape in result.shape_mismatch:
    tf.logging.warning("  left at initializer (shape mismatch, %s): %s graph %s checkpoint %s",
                       SKIP_FLAG, name, shape, ckpt_shape)


def init_from_checkpoint_any_dtype(init_checkpoint, assignment_map):
  """tf.train.init_from_checkpoint that also reads checkpoints cast to bfloat16/float16.

  Entries whose stored dtype equals the variable's go through tf.train.init_from_checkpoint; others
  are restored in their stored dtype and cast to the variable's (float32 is exact for bfloat16 and
  float16 values), by replacing the variable's initializer as tf.train.init_from_checkpoint does.

  Args:
    init_checkpoint: checkpoint prefix.
    assignment_map: {checkpoint name: tf.Variable}.
  """
  stored = tf.train.load_checkpoint(init_checkpoint).get_variable_to_dtype_map()
  same, cast = {}, {}
  for name, var in assignment_map.items():
    (same if stored[name] == var.dtype.base_dtype else cast)[name] = var
  if same:
    tf.train.init_from_checkpoint(init_checkpoint, same)
  for name, var in cast.items():
    with tf.device("/cpu:0"):
      restored = tf.raw_ops.RestoreV2(prefix=init_checkpoint, tensor_names=[name],
                                      shape_and_slices=[""], dtypes=[stored[name]])[0]
      value = tf.cast(restored, var.dtype.base_dtype)
    value.set_shape(var.shape)
    # pylint: disable=protected-access  (the same two fields tf.train.init_from_checkpoint sets)
    var._initializer_op = tf.assign(var, value).op
    var._initial_value = value


def read_checkpoint_float32(init_checkpoint, names=None):
  """{name: numpy array} of a checkpoint's tensors, 16-bit floats cast up to float32."""
  prefix = resolve_checkpoint(init_checkpoint)
  reader = _open_reader(prefix)
  dtypes = reader.get_variable_to_dtype_map()
  values = {}
  for name in (names if names is not None else sorted(dtypes)):
    value = _read_tensor(reader, prefix, name)
    if dtypes[name] in (tf.bfloat16, tf.float16):
      value = value.astype(np.float32)
    values[name] = value
  return values
