"""File names for the pretraining data tools: input patterns, sharded outputs, atomic writes.

Inputs are a comma-separated list whose items may be globs. Outputs are a comma-separated list of file
names or one `path@N` spec naming N shards `path-00000-of-0000N`. Outputs go through
mobilebert.atomic_io: written under a temporary name that no output glob matches (and that input globs
skip), renamed at the end, and replaced by --overwrite only if this tool wrote them.
"""

import os

import tensorflow.compat.v1 as tf

from mobilebert import atomic_io
from mobilebert import cli

_GLOB_CHARS = frozenset("*?[")


class DataFileError(cli.DataError):
  """A file flag that names nothing, too much, or something that must not be overwritten."""


def expand_file_patterns(spec, flag_name):
  """Files named by a comma-separated list of paths and globs, in the given order, without repeats.

  Raises DataFileError naming `--flag_name` for an empty list, a missing file, a directory, or a glob
  that matches nothing.
  """
  patterns = [p.strip() for p in (spec or "").split(",") if p.strip()]
  if not patterns:
    raise DataFileError(f"--{flag_name} is empty: give one or more files (comma-separated, globs allowed)")
  files = []
  for pattern in patterns:
    if _GLOB_CHARS & set(pattern):
      # Temporary files and manifests are never data, whatever the pattern.
      matches = [m for m in sorted(tf.io.gfile.glob(pattern)) if not atomic_io.is_internal(m)]
      if not matches:
        raise DataFileError(f"--{flag_name}: pattern {pattern!r} matches no file")
    else:
      if not tf.io.gfile.exists(pattern):
        raise DataFileError(f"--{flag_name}: file not found: {pattern}")
      matches = [pattern]
    for path in matches:
      if tf.io.gfile.isdir(path):
        raise DataFileError(f"--{flag_name}: {path} is a directory, expected a file")
      if path not in files:
        files.append(path)
  return files


def output_shard_paths(spec, flag_name="output_file"):
  """The output files of `spec`: a comma-separated list, or `path@N` for N numbered shards."""
  items = [p.strip() for p in (spec or "").split(",") if p.strip()]
  if not items:
    raise DataFileError(f"--{flag_name} is empty: give a file, a comma-separated list, or path@N")
  if len(items) == 1 and "@" in os.path.basename(items[0]):
    base, _, count = items[0].rpartition("@")
    if not count.isdigit() or int(count) < 1 or not os.path.basename(base):
      raise DataFileError(f"--{flag_name}={spec}: expected path@N with N a positive shard count")
    num_shards = int(count)
    return [f"{base}-{i:05d}-of-{num_shards:05d}" for i in range(num_shards)]
  if len(set(items)) != len(items):
    raise DataFileError(f"--{flag_name}={spec}: a file is named twice")
  return items


def other_shard_counts(spec):
  """Existing shards of `path@N` made with another N (a glob such as `path-*` would read them too)."""
  first = (spec or "").strip()
  if "," in first or "@" not in os.path.basename(first):
    return []
  base, _, count = first.rpartition("@")
  if not count.isdigit():
    return []
  suffix = f"-of-{int(count):05d}"
  return sorted(p for p in tf.io.gfile.glob(f"{base}-[0-9]*-of-[0-9]*") if not p.endswith(suffix))


def summary_path(spec):
  """Where the run summary goes: `summary.<name>.json` beside the (first) output.

  The name starts with `summary.` so that a glob over the shards (`tf_examples.*`) does not match it.
  """
  first = (spec or "").split(",")[0].strip()
  base = first.rpartition("@")[0] if "@" in os.path.basename(first) else first
  directory, name = os.path.split(base)
  return os.path.join(directory, f"summary.{name}.json")


def check_not_existing(paths, overwrite, flag_name, tool):
  """Raises unless each existing path of `paths` may be replaced: with `overwrite`, and written by
  `tool` (atomic_io.check_replaceable)."""
  try:
    atomic_io.check_replaceable(paths, tool, overwrite, f"--{flag_name}")
  except atomic_io.UnsafeOutputError as e:
    raise DataFileError(str(e)) from None


def check_spares_inputs(outputs, inputs):
  """atomic_io.check_spares_inputs, raising DataFileError."""
  try:
    atomic_io.check_spares_inputs(outputs, inputs)
  except atomic_io.UnsafeOutputError as e:
    raise DataFileError(str(e)) from None


def atomic_write_text(path, text, overwrite, tool, flag_name="output_file"):
  """Writes `text` (UTF-8) to `path` through a temporary file; replaces only a file `tool` wrote."""
  check_not_existing([path], overwrite, flag_name, tool)
  atomic_io.write_text(path, text, tool, overwrite, f"--{flag_name}")
