"""A training run's settings, recorded when it starts and compared each time it resumes.

The Estimator resumes from the newest checkpoint in its model directory whatever the flags say now. A
rerun with another learning rate, batch size, seed, step count or training data continues the old
weights under the new settings: the result is neither the run that was started nor the one the new
flags describe, and nothing says so (a changed --init_checkpoint is not even read). Same seed and data
give the same weights, and a killed run resumes to the same result, only if the flags stay the same.

Each trainer calls `check_or_record` with what defines its weights, keyed by the flag a user sets it
with, before it trains. A directory without a checkpoint records them in `run_settings.json`; one with
checkpoints compares them with the record (a directory from before this file existed is recorded as it
is now) and stops in one line naming each flag whose value differs, unless --allow_changed_settings:
then the change is logged and appended to the record's `changes`, with the step it took effect at.
Settings added to a trainer later are recorded, not compared, when a record lacks them.
"""

import json
import os

from absl import logging
import tensorflow.compat.v1 as tf

from mobilebert import atomic_io
from mobilebert import checkpoint_resume
from mobilebert import cli

FILE_NAME = "run_settings.json"
ALLOW_FLAG = "--allow_changed_settings"
_SHOWN = 3  # changed flags named in the error line; the rest are counted


class ChangedSettingsError(cli.UserError, ValueError):
  """A run resumed with settings other than those it started with."""


def plain(value):
  """`value` as it reads back from JSON (tuples become lists), so that comparisons are exact."""
  return json.loads(json.dumps(value, sort_keys=True))


def _show(value):
  return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _describe(flag, old, new):
  if isinstance(old, dict) and isinstance(new, dict):
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    parts = [f"{k} {_show(old.get(k))} -> {_show(new.get(k))}" for k in keys[:_SHOWN]]
    more = f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
    return f"{flag} ({', '.join(parts)}{more})"
  return f"{flag} {_show(old)} -> {_show(new)}"


def changes(recorded, current):
  """{flag: (recorded value, current value)} of the flags in both whose values differ."""
  return {flag: (recorded[flag], value) for flag, value in current.items()
          if flag in recorded and recorded[flag] != value}


def pending_changes(model_dir, settings, phase_dirs=()):
  """{flag: (recorded, current)} that check_or_record would stop a training run for (for dry runs);
  empty when the run has no checkpoint yet, no record, or the same settings."""
  if not _checkpoint_steps(model_dir, phase_dirs):
    return {}
  record = read_record(model_dir)
  return changes(record["settings"], plain(settings)) if record else {}


def read_record(model_dir):
  """The record in `model_dir` (a dict), or None without one."""
  path = os.path.join(model_dir, FILE_NAME)
  if not tf.io.gfile.exists(path):
    return None
  try:
    with tf.io.gfile.GFile(path, "r") as f:
      record = json.loads(f.read())
    if not isinstance(record.get("settings"), dict):
      raise ValueError("no 'settings' object")
  except (ValueError, AttributeError, UnicodeDecodeError) as e:
    raise ChangedSettingsError(
        f"{path}: cannot read the run's recorded settings ({e}); move the file away to record the "
        "current ones") from e
  return record


def check_or_record(model_dir, settings, allow_changes=False, writes=True, phase_dirs=()):
  """Compares `settings` {flag: JSON-able value} with the record of the run in `model_dir`.

  Args:
    model_dir: the run's directory, where the record is; the run has started when it, or one of
      `phase_dirs` (subdirectories with checkpoints of their own, e.g. pretraining's warmup/), holds a
      checkpoint.
    settings: what defines the trained weights, keyed by how the user sets it ("--learning_rate").
    allow_changes: --allow_changed_settings: log the changes and record them instead of stopping.
    writes: False on the workers of a multi-worker run other than the chief (they only compare).
  Returns:
    {flag: (recorded, current)} of the changes allowed (empty when nothing changed).
  Raises:
    ChangedSettingsError naming the file and the changed flags.
  """
  path = os.path.join(model_dir, FILE_NAME)
  current = plain(settings)
  steps = _checkpoint_steps(model_dir, phase_dirs)
  record = read_record(model_dir) if steps else None
  if record is None:
    if steps:
      logging.info("%s: %s holds checkpoints but no record of their settings; recording the "
                   "current ones", path, model_dir)
    if writes:
      _write(path, {"settings": current, "changes": []})
    return {}
  changed = changes(record["settings"], current)
  if changed and not allow_changes:
    raise _refusal(path, changed)
  added = {flag: value for flag, value in current.items() if flag not in record["settings"]}
  if not changed and not added:
    return {}
  where = ", ".join(f"{name} step {step}" for name, step in steps.items())
  for flag, (old, new) in changed.items():
    logging.warning("%s: continuing from the checkpoints at %s with %s (%s)", model_dir, where,
                    _describe(flag, old, new), ALLOW_FLAG)
  if writes:
    history = list(record.get("changes", []))
    if changed:
      history.append({"at_steps": steps, "changed": {f: list(v) for f, v in changed.items()}})
    _write(path, {"settings": dict(record["settings"], **current), "changes": history})
  return changed


def check_unchanged(model_dir, settings, allow_changes=False, phase_dirs=()):
  """check_or_record's refusal alone, writing nothing: for a check before the run writes anything to
  `model_dir` (a trainer's feature cache), with the settings known so far. check_or_record follows
  with all of them."""
  changed = {} if allow_changes else pending_changes(model_dir, settings, phase_dirs)
  if changed:
    raise _refusal(os.path.join(model_dir, FILE_NAME), changed)


def _refusal(path, changed):
  described = [_describe(flag, old, new) for flag, (old, new) in changed.items()]
  more = f" and {len(described) - _SHOWN} more" if len(described) > _SHOWN else ""
  return ChangedSettingsError(
      f"{path}: this run started with other settings than these flags give: "
      f"{'; '.join(described[:_SHOWN])}{more}. Resuming would continue its weights under the new "
      f"ones; rerun with the flags it started with, use a new --output_dir, or pass {ALLOW_FLAG} "
      "to continue anyway")


def _checkpoint_steps(model_dir, phase_dirs):
  """{directory relative to model_dir: its newest checkpoint's step} of those holding one."""
  steps = {}
  for name in (".", *phase_dirs):
    directory = model_dir if name == "." else os.path.join(model_dir, name)  # gs:// keeps its "//"
    latest = tf.train.latest_checkpoint(directory) if tf.io.gfile.isdir(directory) else None
    if latest is not None:
      steps[name] = max(checkpoint_resume.step_of(latest), 0)
  return steps


def _write(path, record):
  atomic_io.write_text(path, json.dumps(record, ensure_ascii=False, indent=1, sort_keys=True) + "\n")
