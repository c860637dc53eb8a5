"""Export outputs appear whole or not at all: written under a temporary name, verified, then renamed."""

import contextlib
import json
import uuid

import tensorflow.compat.v1 as tf

from mobilebert import cli


class OutputExistsError(cli.UserError, ValueError):
  """The output path exists and --overwrite was not given."""


def check_output(path, overwrite, flag="--output"):
  """Raises OutputExistsError if `path` exists and not `overwrite`; creates the parent directory."""
  if not path:
    raise OutputExistsError(f"{flag} is required")
  if tf.io.gfile.exists(path) and not overwrite:
    raise OutputExistsError(f"{flag}={path} already exists; pass --overwrite to replace it")
  parent = path.rstrip("/").rsplit("/", 1)[0] if "/" in path.rstrip("/") else "."
  if tf.io.gfile.exists(parent) and not tf.io.gfile.isdir(parent):
    raise OutputExistsError(f"{flag}={path}: {parent} is a file, not a directory")
  tf.io.gfile.makedirs(parent)


@contextlib.contextmanager
def staged(path, overwrite):
  """Yields a temporary path beside `path`; on success renames it to `path`, else removes it.

  Works for a file or a directory. An existing `path` is removed only after the new one is complete.
  """
  temp = f"{path.rstrip('/')}.tmp-{uuid.uuid4().hex[:8]}"
  try:
    yield temp
    if tf.io.gfile.exists(path):
      if not overwrite:  # appeared while we were writing
        raise OutputExistsError(f"{path} appeared while exporting; not replaced")
      if tf.io.gfile.isdir(path):
        tf.io.gfile.rmtree(path)
      else:
        tf.io.gfile.remove(path)
    tf.io.gfile.rename(temp, path)
  finally:
    if tf.io.gfile.exists(temp):
      if tf.io.gfile.isdir(temp):
        tf.io.gfile.rmtree(temp)
      else:
        tf.io.gfile.remove(temp)


def write_json(path, obj):
  if "/" in path:
    tf.io.gfile.makedirs(path.rsplit("/", 1)[0])
  with tf.io.gfile.GFile(path, "w") as f:
    f.write(json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
