"""Outputs that appear whole or not at all: written under a temporary name beside the target, then
renamed over it (tf.io.gfile, so local paths and gs:// alike)."""

import os

import tensorflow.compat.v1 as tf


def write_atomically(path, write_fn):
  """Calls write_fn(temporary path), then renames the result to `path`."""
  tmp = f"{path}.tmp-{os.getpid()}"
  write_fn(tmp)
  tf.io.gfile.rename(tmp, path, overwrite=True)


def write_text(path, text):
  """Writes `text` to `path` atomically."""
  def write(tmp):
    with tf.io.gfile.GFile(tmp, "w") as f:
      f.write(text)
  write_atomically(path, write)
