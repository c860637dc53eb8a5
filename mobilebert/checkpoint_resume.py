"""Resuming from a model directory: from the newest readable checkpoint, and only one that fits.

The Estimator resumes from the checkpoint its state file (`<model_dir>/checkpoint`) names. Two things
went wrong there without naming anything:
  - that checkpoint cannot be read (a copy cut short, a full disk, a damaged file): TensorFlow fails
    at session start with `IndexError: Read less bytes than requested` or a checksum error;
  - it belongs to another model (the directory was reused with another config): `Key ... not found`
    and some 340 lines of traceback.
`recover_latest` runs before training: it reads every tensor of the newest checkpoint and, while
one cannot be read, moves that checkpoint's files (never deleting them) into `unreadable_checkpoints/`
beside it, logging which and why, then points the state file (atomically) at the newest readable
checkpoint, so the run resumes from there and says so. When no checkpoint is readable it stops. The
files are moved, not left in place, because the resumed run would write a checkpoint of the same name
over them when it reaches that step. `FitCheckHook` runs once the graph is built, before the session
restores, and stops with one line naming the directory and the first variable that differs.
"""

import itertools
import os
import re

import tensorflow.compat.v1 as tf
from google.protobuf import text_format

from mobilebert import atomic_io
from mobilebert import checkpoint
from mobilebert.checkpoint import CheckpointError

UNREADABLE_DIR = "unreadable_checkpoints"
STATE_FILE = "checkpoint"
_STEP = re.compile(r"-(\d+)$")
_verified = {}  # prefix -> the file sizes and times it was read with (a rerun need not read again)


def step_of(prefix):
  """The step in a checkpoint prefix's name (`model.ckpt-<step>`), -1 without one."""
  match = _STEP.search(prefix)
  return int(match.group(1)) if match else -1


def _candidates(model_dir):
  """Checkpoint prefixes that may be resumed from, newest (highest step) first: those the state file
  lists, and those on disk up to its latest step (with --keep_checkpoint_max=0 it lists only the
  latest). None without a state file: the Estimator starts afresh then, as it always did."""
  state_path = os.path.join(model_dir, STATE_FILE)
  try:
    state = tf.train.get_checkpoint_state(model_dir)
  except (text_format.ParseError, tf.errors.OpError, UnicodeDecodeError):
    state = None
  if state is None and tf.io.gfile.exists(state_path):
    # get_checkpoint_state logs and ignores a damaged state file; the Estimator would then start
    # afresh and, step by step, write over the checkpoints beside it.
    raise CheckpointError(f"{state_path}: cannot parse the checkpoint state file; move it away and "
                          "rerun to resume from the newest readable checkpoint")
  if state is None or not state.model_checkpoint_path:
    return []
  prefixes = {p for p in [state.model_checkpoint_path, *state.all_model_checkpoint_paths] if p}
  on_disk = [p[:-len(".index")] for p in tf.io.gfile.glob(os.path.join(model_dir, "*.index"))]
  prefixes.update(p for p in on_disk if 0 <= step_of(p) <= step_of(state.model_checkpoint_path))
  return sorted(prefixes, key=lambda p: (step_of(p), p), reverse=True)


def _signature(prefix):
  files = sorted(tf.io.gfile.glob(prefix + ".*"))
  return tuple((f, tf.io.gfile.stat(f).length, tf.io.gfile.stat(f).mtime_nsec) for f in files)


def unreadable_reason(prefix):
  """None if every tensor of the checkpoint at `prefix` reads; else one line saying why not."""
  if not tf.io.gfile.exists(prefix + ".index"):
    return f"{prefix}: named in the checkpoint state file but {prefix}.index does not exist"
  signature = _signature(prefix)
  if _verified.get(prefix) == signature:
    return None
  try:
    checkpoint.check_readable(prefix)
  except CheckpointError as e:
    return str(e)
  _verified[prefix] = signature
  return None


def _move_aside(model_dir, prefix):
  """Moves prefix.* into a fresh UNREADABLE_DIR[-N] of model_dir; returns that directory."""
  files = tf.io.gfile.glob(prefix + ".*")
  for n in itertools.count():
    target = os.path.join(model_dir, UNREADABLE_DIR + (f"-{n}" if n else ""))
    if not any(tf.io.gfile.exists(os.path.join(target, os.path.basename(f))) for f in files):
      break
  tf.io.gfile.makedirs(target)
  for f in files:
    tf.io.gfile.rename(f, os.path.join(target, os.path.basename(f)))
  return target


def _point_state_at(model_dir, latest, prefixes):
  """Rewrites the state file: `latest` is resumed from, `prefixes` (oldest first) are kept."""
  state = tf.train.generate_checkpoint_state_proto(model_dir, latest, prefixes)
  atomic_io.write_text(os.path.join(model_dir, STATE_FILE), text_format.MessageToString(state))


def recover_latest(model_dir):
  """Makes the newest readable checkpoint of `model_dir` the one the Estimator resumes from.

  Returns its prefix (None when the directory holds no checkpoint). Raises CheckpointError when there
  are checkpoints but none can be read.
  """
  if not tf.io.gfile.isdir(model_dir):
    return None
  candidates = _candidates(model_dir)
  unreadable = []
  for prefix in candidates:
    reason = unreadable_reason(prefix)
    if reason is None:
      break
    unreadable.append((prefix, reason))
  else:
    if not unreadable:
      return None
    raise CheckpointError(
        f"{model_dir}: no readable checkpoint to resume from ({len(unreadable)} unreadable, newest: "
        f"{unreadable[0][1]}); move them out of the directory to start again from the beginning, or "
        "use a new output dir")
  if unreadable:
    for bad, reason in unreadable:
      tf.logging.error("Unreadable checkpoint: %s", reason)
      if tf.io.gfile.exists(bad + ".index") or tf.io.gfile.glob(bad + ".data-*"):
        tf.logging.error("  moved %s.* to %s/ (kept, not deleted)", bad, _move_aside(model_dir, bad))
    kept = [p for p in reversed(candidates) if p not in dict(unreadable)]
    _point_state_at(model_dir, prefix, kept)
    tf.logging.warning("%s: resuming from %s, the newest readable checkpoint (step %d)", model_dir,
                       prefix, step_of(prefix))
  return prefix


def check_resume_fits(model_dir, variables, checkpoint_path=None):
  """Raises CheckpointError when `checkpoint_path` (default: `model_dir`'s latest checkpoint) lacks
  one of `variables` or holds it with another shape (the Saver would fail to restore it)."""
  latest = checkpoint_path or tf.train.latest_checkpoint(model_dir)
  if latest is None:
    return
  fit = checkpoint.assignment_map(latest, variables)
  if fit.shape_mismatch:
    name, shape, ckpt_shape = fit.shape_mismatch[0]
    detail = f"{name} has shape {ckpt_shape} there but {shape} in the graph"
  elif fit.not_in_checkpoint:
    name = fit.not_in_checkpoint[0]
    shape = next(v.shape.as_list() for v in variables if v.name.split(":")[0] == name)
    detail = f"the graph's {name} {shape} is not in it"
  else:
    return
  differ = len(fit.shape_mismatch) + len(fit.not_in_checkpoint)
  where = (f"{checkpoint_path} is a checkpoint of another model" if checkpoint_path else
           f"{model_dir} holds checkpoints of another model: in {latest}")
  raise CheckpointError(
      f"{where}, {detail} ({differ} of the graph's {len(variables)} variables differ); rerun with the "
      "config and flags that wrote it, or use a new output dir")


class FitCheckHook(tf.train.SessionRunHook):
  """Stops before the session restores a checkpoint of another model from `model_dir` (training,
  evaluation and prediction; `checkpoint_path` when one is given instead of the latest)."""

  def __init__(self, model_dir, checkpoint_path=None):
    self.model_dir = model_dir
    self.checkpoint_path = checkpoint_path

  def begin(self):
    check_resume_fits(self.model_dir, tf.global_variables(), self.checkpoint_path)
