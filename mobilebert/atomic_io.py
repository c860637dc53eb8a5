"""Safe outputs, the one place for them: nothing a user has is ever written over or lost.

- Atomic: an output is written under a temporary name in its directory (same filesystem), then renamed
  over the target, so it appears whole or not at all (tf.io.gfile: local paths and gs:// alike).
- Temporary names are `.tmp-<host>-<pid>-<random>`, without the target's name, so a glob over the
  outputs (`tf_examples.*`, `*tfrecord*`) cannot match a file still being written or left by a killed
  run; `is_internal` tells the tools' own globbing to skip them, and the next write into the directory
  removes those of dead processes of this host.
- Inputs are never outputs: `check_spares_inputs` refuses an output that is an input, or a directory
  holding one (real paths, so symlinks count; gs:// paths compared as strings).
- Ownership: a tool that replaces existing outputs records what it wrote in the directory's
  `.mobilebert-outputs.json` (with each file's size and modification time); `--overwrite` replaces only
  what that tool recorded, unchanged since, never a foreign file.
"""

import contextlib
import fcntl
import json
import os
import re
import socket
import uuid

from absl import logging
import tensorflow.compat.v1 as tf

from mobilebert import cli

MANIFEST = ".mobilebert-outputs.json"
_HOST = re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname()) or "host"
_TEMP = re.compile(r"^\.tmp-(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)-[0-9a-f]{8}(\..*)?$")
# Temporaries of earlier versions: `.name.tmp-PID` (data tool; cleaned like ours) and `name.tmp-PID`
# (the rest; only skipped by globs, since a user's file could be named so).
_OLD_TEMP = re.compile(r"^(?P<hidden>\.)?.+\.tmp-(?P<pid>\d+)$")
# What an Estimator's (sharded) Saver writes before it merges a checkpoint: `model.ckpt-N_temp/`.
_CHECKPOINT_TEMP = re.compile(r"^model\.ckpt-\d+_temp.*$")


class UnsafeOutputError(cli.UserError, ValueError):
  """An output that would write over or delete an input, or replace a file this tool did not write."""


class OutputExistsError(UnsafeOutputError):
  """The output exists and --overwrite was not given."""


def _split(path):
  path = path.rstrip("/")
  return (path.rsplit("/", 1) if "/" in path else [".", path])


def temporary_path(path):
  """A fresh temporary name in the directory of `path`, which no glob over the outputs matches."""
  directory = _split(path)[0]
  return f"{directory}/.tmp-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def is_internal(path):
  """True for temporary files and the tools' own records (`.mobilebert-*.json`: the manifest, the
  scanned record counts): never an input, whatever a glob matched."""
  name = _split(path)[1]
  return (name.startswith(".mobilebert-") and bool(cli.BOOKKEEPING.match(name))) or \
      bool(_TEMP.match(name) or _OLD_TEMP.match(name))


def _process_is_dead(pid):
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return True
  except OSError:  # exists, owned by someone else
    return False
  return False


def _remove(path):
  try:
    if tf.io.gfile.isdir(path):
      tf.io.gfile.rmtree(path)
    elif tf.io.gfile.exists(path):
      tf.io.gfile.remove(path)
  except (tf.errors.OpError, OSError) as e:  # clean-up must never fail a run
    logging.warning("could not remove %s: %s", path, e)


def remove_stale_temporaries(directory):
  """Removes temporaries of dead processes of this host from a local `directory`.

  On gs:// nothing is removed: whether the writer is still alive cannot be told from here.
  """
  if "://" in directory or not os.path.isdir(directory):
    return
  for name in os.listdir(directory):
    ours, old = _TEMP.match(name), _OLD_TEMP.match(name)
    if ours:
      stale = ours["host"] == _HOST and _process_is_dead(int(ours["pid"]))
    else:
      stale = bool(old and old["hidden"]) and _process_is_dead(int(old["pid"]))
    if stale:
      logging.info("removing %s, left by a run that was killed", os.path.join(directory, name))
      _remove(os.path.join(directory, name))


def remove_stale_checkpoint_temps(model_dir):
  """Removes `model.ckpt-N_temp*` (a save cut off by a kill) from `model_dir`; call at start-up only."""
  if not tf.io.gfile.isdir(model_dir):
    return
  for name in tf.io.gfile.listdir(model_dir):
    if _CHECKPOINT_TEMP.match(name.rstrip("/")):
      logging.info("removing %s/%s, an unfinished checkpoint save", model_dir, name.rstrip("/"))
      _remove(f"{model_dir.rstrip('/')}/{name.rstrip('/')}")


def _canonical(path):
  if "://" in path:
    return path.rstrip("/")
  return os.path.realpath(os.path.abspath(os.path.expanduser(path)))


def _flatten(named_paths):
  for flag, paths in named_paths.items():
    for path in ([paths] if isinstance(paths, str) else paths or []):
      if path:
        yield flag, path


def check_spares_inputs(outputs, inputs):
  """Raises UnsafeOutputError if writing any of `outputs` could write over or delete an input.

  Args:
    outputs: {flag: path or paths}: files and directories the run writes, replaces or writes into.
    inputs: {flag: path or paths}: files and directories it reads (for a checkpoint, see
      `checkpoint_inputs`).
  """
  for out_flag, out in _flatten(outputs):
    target = _canonical(out)
    for in_flag, given in _flatten(inputs):
      source = _canonical(given)
      if source == target:
        raise UnsafeOutputError(f"{out_flag}={out} is the input {in_flag}={given}; an input is never "
                                "written over: choose another output")
      if source.startswith(target.rstrip("/") + "/"):
        raise UnsafeOutputError(f"{out_flag}={out} holds the input {in_flag}={given}, which writing "
                                "there could replace or delete: choose an output outside it")


def checkpoint_inputs(prefix):
  """The paths a checkpoint prefix stands for: the prefix, its index and its data shards."""
  if not prefix:
    return []
  return [prefix, prefix + ".index"] + tf.io.gfile.glob(prefix + ".data-*")


def _read_manifest(directory):
  path = f"{directory}/{MANIFEST}"
  try:
    with tf.io.gfile.GFile(path, "r") as f:
      manifest = json.loads(f.read())
    return manifest if isinstance(manifest, dict) else {}
  except (tf.errors.NotFoundError, ValueError):
    return {}


def _size(path):
  return None if tf.io.gfile.isdir(path) else tf.io.gfile.stat(path).length


def file_signature(path):
  """[size, modification time in ns] of a file: what tells that it changed, without reading it."""
  stat = tf.io.gfile.stat(path)
  return [stat.length, stat.mtime_nsec]


def _signature(path):
  """file_signature of a file; of a directory, that of every file under it by relative path: any
  change to what the tool wrote, even one that keeps a file's size, changes it."""
  if not tf.io.gfile.isdir(path):
    return file_signature(path)
  return sorted([f"{root}/{name}"[len(path):], *file_signature(f"{root}/{name}")]
                for root, _, names in tf.io.gfile.walk(path) for name in names)


def _not_ours(path, tool):
  """Why `tool` may not replace the existing `path`, or None if it wrote it (as it is now)."""
  if tf.io.gfile.isdir(path) and not tf.io.gfile.listdir(path):
    return None  # an empty directory: replacing it loses nothing
  directory, name = _split(path)
  entry = _read_manifest(directory).get(name)
  if not isinstance(entry, dict):
    return f"was not written by {tool} (not listed in {directory}/{MANIFEST})"
  if entry.get("tool") != tool:
    return f"was written by {entry.get('tool')}, not by {tool}"
  # Entries of earlier versions have the size alone.
  changed = (entry["signature"] != _signature(path)) if "signature" in entry else \
      entry.get("size") != _size(path)
  if changed:
    return f"has changed since {tool} wrote it"
  return None


def check_replaceable(paths, tool, overwrite, flag):
  """Raises unless every existing path of `paths` may be replaced: never without `overwrite`, and
  with it only if `tool` wrote it (and nobody changed it since)."""
  for directory in sorted({_split(p)[0] for p in paths}):
    if tf.io.gfile.exists(directory) and not tf.io.gfile.isdir(directory):
      raise UnsafeOutputError(f"{flag}: {directory} is a file, not a directory")
  existing = [p for p in paths if tf.io.gfile.exists(p)]
  if existing and not overwrite:
    shown = ", ".join(existing[:3]) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
    raise OutputExistsError(f"{flag}: output already exists: {shown}; pass --overwrite to replace it")
  for path in existing:
    reason = _not_ours(path, tool)
    if reason:
      raise UnsafeOutputError(f"{flag}: {path} {reason}; --overwrite replaces only what {tool} wrote "
                              "itself: move it away or choose another output")


def record_outputs(paths, tool):
  """Notes in each directory's manifest that `tool` wrote `paths` (as they are now)."""
  by_directory = {}
  for path in paths:
    directory, name = _split(path)
    by_directory.setdefault(directory, []).append((name, path))
  for directory, entries in by_directory.items():
    with _manifest_lock(directory):
      manifest = _read_manifest(directory)
      for name, path in entries:
        manifest[name] = {"tool": tool, "size": _size(path), "signature": _signature(path)}
      write_atomically(f"{directory}/{MANIFEST}", lambda tmp, m=manifest: _write_bytes(
          tmp, json.dumps(m, indent=1, sort_keys=True)))


@contextlib.contextmanager
def _manifest_lock(directory):
  """Holds an exclusive lock on a local `directory` (flock on the directory itself: no lock file is
  left) while its manifest is read, changed and replaced, so that tools writing into one directory at
  the same time (shards made by parallel runs) keep each other's entries. Remote paths (gs://) have no
  such lock: there a concurrent writer can drop an entry, and --overwrite then refuses that file."""
  if "://" in directory:
    yield
    return
  handle = os.open(directory, os.O_RDONLY)
  try:
    fcntl.flock(handle, fcntl.LOCK_EX)
    yield
  finally:
    os.close(handle)  # releases the lock


def _write_bytes(path, text):
  with tf.io.gfile.GFile(path, "wb") as f:
    f.write(text.encode("utf-8"))


@contextlib.contextmanager
def staged(path, tool=None, overwrite=True, flag="output"):
  """Yields a temporary path beside `path` to write a file or directory at; renames it to `path` when
  the block succeeds, removes it otherwise.

  With `tool`, an existing `path` is replaced only if `overwrite` and `tool` wrote it (checked before
  and again after writing), and the result is recorded as written by `tool`. Without `tool`, the
  target is replaced unconditionally (a tool's own caches and reports).
  """
  if tool:
    check_replaceable([path], tool, overwrite, flag)
  tf.io.gfile.makedirs(_split(path)[0])
  remove_stale_temporaries(_split(path)[0])
  temp = temporary_path(path)
  try:
    yield temp
    if tool:
      check_replaceable([path], tool, overwrite, flag)  # it may have appeared meanwhile
    if tf.io.gfile.isdir(path):
      if not tool:  # only a tool's own, recorded output directory is ever replaced
        raise UnsafeOutputError(f"{path} is a directory; not replaced")
      tf.io.gfile.rmtree(path)
    tf.io.gfile.rename(temp, path, overwrite=True)
  finally:
    if tf.io.gfile.exists(temp):
      _remove(temp)
  if tool:
    record_outputs([path], tool)


def write_atomically(path, write_fn, tool=None, overwrite=True, flag="output"):
  """Calls write_fn(temporary path), then renames the result to `path` (see `staged`)."""
  with staged(path, tool, overwrite, flag) as temp:
    write_fn(temp)


def write_text(path, text, tool=None, overwrite=True, flag="output"):
  """Writes `text` (UTF-8) to `path` atomically (see `staged`)."""
  write_atomically(path, lambda tmp: _write_bytes(tmp, text), tool, overwrite, flag)
