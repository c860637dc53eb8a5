"""Initializing graph variables from checkpoints by name.

Released pretraining checkpoints hold more than a model needs (the teacher under `teacher/`, AdamW
slots, `global_step`); those entries are ignored. A graph variable and a checkpoint entry match when
their names agree after removing `graph_prefix` / `checkpoint_prefix`, and are used when their shapes
agree too.
"""

import collections
import re

import numpy as np
import tensorflow.compat.v1 as tf

from mobilebert import cli

CheckpointInit = collections.namedtuple(
    "CheckpointInit", ["assignment_map", "initialized", "shape_mismatch", "not_in_checkpoint"])

OPTIMIZER_SLOT_PATTERN = re.compile(r"/(adam_m|adam_v|Adam|Adam_1|Momentum|lamb_m|lamb_v)$")


class CheckpointError(cli.UserError, ValueError):
  """A checkpoint path that does not name a readable TensorFlow checkpoint."""


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
  except (tf.errors.OpError, ValueError) as e:
    raise CheckpointError(f"{path}: cannot read checkpoint ({e})") from None


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


def scaffold_fn(init_checkpoint, use_tpu):
  """What a model_fn does to start from `init_checkpoint` (ignoring entries with no graph variable).

  Off TPU the initializers are overridden right away and None is returned; on TPU they must be
  overridden on the host graph the scaffold builds, so a TPUEstimator scaffold_fn is returned.
  """
  if not init_checkpoint:
    return None
  if not use_tpu:
    init_from_checkpoint(init_checkpoint)
    return None

  def tpu_scaffold():
    init_from_checkpoint(init_checkpoint)
    return tf.train.Scaffold()

  return tpu_scaffold


def init_from_checkpoint(init_checkpoint, tvars=None, checkpoint_prefix="", graph_prefix="",
                         log=True):
  """Overrides the initializers of matching variables with the checkpoint's values.

  Returns the CheckpointInit, and logs what was initialized, what was skipped and why.
  """
  prefix = resolve_checkpoint(init_checkpoint)
  result = assignment_map(prefix, tvars, checkpoint_prefix, graph_prefix)
  if result.assignment_map:
    init_from_checkpoint_any_dtype(prefix, result.assignment_map)
  if log:
    tf.logging.info("init_from_checkpoint %s: %d variables initialized%s", prefix,
                    len(result.initialized),
                    f" (graph prefix '{graph_prefix}')" if graph_prefix else "")
    for name in result.initialized:
      tf.logging.info("  initialized %s", name)
    for name, shape, ckpt_shape in result.shape_mismatch:
      tf.logging.warning("  shape mismatch, not initialized: %s graph %s checkpoint %s", name,
                         shape, ckpt_shape)
    for name in result.not_in_checkpoint:
      tf.logging.info("  not in checkpoint (fresh init): %s", name)
  return result


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
  reader = tf.train.load_checkpoint(resolve_checkpoint(init_checkpoint))
  dtypes = reader.get_variable_to_dtype_map()
  values = {}
  for name in (names if names is not None else sorted(dtypes)):
    value = reader.get_tensor(name)
    if dtypes[name] in (tf.bfloat16, tf.float16):
      value = value.astype(np.float32)
    values[name] = value
  return values
