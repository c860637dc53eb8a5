"""The sharded, atomic TFRecord writer (used by the main process only: workers return bytes)."""

import tensorflow.compat.v1 as tf

from pretrain import data_files


class ShardedRecordWriter:
  """Writes records round-robin over the shard files, under temporary names until `commit()`.

  Use as a context manager: leaving the block without commit() (an error, Ctrl-C) deletes the
  temporary files, so no output ever appears half-written under its final name.
  """

  def __init__(self, paths, overwrite):
    self.paths = list(paths)
    self.overwrite = overwrite
    self.counts = [0] * len(self.paths)
    self._temps = [data_files.temporary_path(p) for p in self.paths]
    self._writers = []
    self._next = 0
    self._committed = False

  def __enter__(self):
    data_files.check_can_write(self.paths, self.overwrite, flag_name="output_file")
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
    for temp, path in zip(self._temps, self.paths):
      data_files.commit(temp, path, self.overwrite)
    self._committed = True

  def _abort(self):
    for writer in self._writers:
      try:
        writer.close()
      except Exception:  # pylint: disable=broad-except
        pass
    for temp in self._temps:
      data_files.remove_quietly(temp)

  def __exit__(self, exc_type, exc, tb):
    if not self._committed:
      self._abort()
    return False
