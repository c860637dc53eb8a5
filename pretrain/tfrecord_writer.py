"""The sharded, atomic TFRecord writer (used by the main process only: workers return bytes)."""

import os

import tensorflow.compat.v1 as tf

from mobilebert import atomic_io
from pretrain import data_files


class ShardedRecordWriter:
  """Writes records round-robin over the shard files, under temporary names until `commit()`.

  Use as a context manager: leaving the block without commit() (an error, Ctrl-C) deletes the
  temporary files, so no output ever appears half-written under its final name.
  """

  def __init__(self, paths, overwrite, tool):
    self.paths = list(paths)
    self.overwrite = overwrite
    self.tool = tool
    self.counts = [0] * len(self.paths)
    self._temps = [atomic_io.temporary_path(p) for p in self.paths]
    self._writers = []
    self._next = 0
    self._committed = False

  def __enter__(self):
    data_files.check_not_existing(self.paths, self.overwrite, "output_file", self.tool)
    for directory in sorted({os.path.dirname(p) or "." for p in self.paths}):
      tf.io.gfile.makedirs(directory)
      atomic_io.remove_stale_temporaries(directory)
    try:
      for temp in self._temps:
        self._writers.append(tf.io.TFRecordWriter(temp))
    except BaseException:
      self._abort()
      raise
    return self

  def write(self, record):
    self._writers[self._next].write(record)
    self.counts[self._next] += 1
    self._next = (self._next + 1) % len(self._writers)

  def commit(self):
    """Closes every shard and moves it to its final name."""
    for writer in self._writers:
      writer.close()
    data_files.check_not_existing(self.paths, self.overwrite, "output_file", self.tool)  # again: time passed
    for temp, path in zip(self._temps, self.paths):
      tf.io.gfile.rename(temp, path, overwrite=True)
    self._committed = True
    atomic_io.record_outputs(self.paths, self.tool)

  def _abort(self):
    for writer in self._writers:
      try:
        writer.close()
      except Exception:  # pylint: disable=broad-except
        pass
    for temp in self._temps:
      if tf.io.gfile.exists(temp):
        tf.io.gfile.remove(temp)

  def __exit__(self, exc_type, exc, tb):
    if not self._committed:
      self._abort()
    return False
