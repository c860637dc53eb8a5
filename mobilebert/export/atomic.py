"""Export outputs through mobilebert.atomic_io: written under a temporary name, verified, then renamed;
--overwrite replaces only an earlier export."""

import json

import tensorflow.compat.v1 as tf

from mobilebert import atomic_io

TOOL = "mobilebert.export"
OutputExistsError = atomic_io.OutputExistsError


def check_output(paths, overwrite, flag="--output"):
  """Raises unless every existing path of `paths` is an earlier export and `overwrite` is set."""
  paths = [paths] if isinstance(paths, str) else list(paths)
  if not all(paths):
    raise OutputExistsError(f"{flag} is required")
  atomic_io.check_replaceable(paths, TOOL, overwrite, flag)


def staged(path, overwrite):
  """atomic_io.staged for an export: yields the temporary path to write the file or directory at."""
  return atomic_io.staged(path, TOOL, overwrite, "--output")


def write_json(path, obj):
  """A JSON file inside a staged (temporary) directory."""
  if "/" in path:
    tf.io.gfile.makedirs(path.rsplit("/", 1)[0])
  with tf.io.gfile.GFile(path, "w") as f:
    f.write(json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True) + "\n")


def write_json_beside(path, obj, overwrite):
  """A JSON record beside an export (e.g. model.tflite.json), atomically, as an export output."""
  atomic_io.write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True) + "\n",
                       TOOL, overwrite, "--output")
