"""Training input as a function of (seed, position), and TFRecord files that are checked before use.

One place for what the pretraining and fine-tuning input_fns share:
- `scan_records` reads every record of every file once (CRC of length and payload, and that the records
  fill the file exactly), returns the record counts, and raises one line naming the file and the
  record on damage; a run keeps the counts in its output_dir, so a restart reads only changed files.
  tf.data alone would fail mid-training on a corrupted record, and end an epoch early, without a
  word, on a file cut inside a record header.
- `training_records` yields serialized records in an order that depends only on (seed, epoch): epoch
  e reads the files in an order drawn from (seed, e), interleaved deterministically, through a shuffle
  buffer seeded from (seed, e). It starts at any example: a resumed run skips to
  global_step * batch_size within the current epoch instead of starting the data again, so a run
  killed and rerun sees the same batches as one that was never stopped. The skip reads (and drops)
  at most one epoch of records; nothing about the position has to be stored in the checkpoint.
- `naming_corrupt_records` turns a DataLossError raised during training (a file damaged after the
  scan) into the same one line.
"""

import contextlib
import json
import os
import time

import tensorflow.compat.v1 as tf

from mobilebert import atomic_io
from mobilebert import cli

# Record counts of the files scan_records read whole, kept in a run's output_dir (scan_records).
SCANNED_RECORDS = ".mobilebert-scanned-records.json"
_SAVE_EVERY_SECONDS = 30.0
# Per record on disk: 8-byte length, 4-byte CRC of the length, the payload, 4-byte CRC of the payload.
_RECORD_OVERHEAD = 16
_INT32_MAX = 2 ** 31 - 1


class RecordError(cli.DataError):
  """A TFRecord file that cannot be read whole; the message names the file and the record."""


def _count(path):
  """Number of records in `path`; raises RecordError naming the first bad record."""
  count = payload = 0
  try:
    for record in tf.io.tf_record_iterator(path):
      count += 1
      payload += len(record)
  except tf.errors.DataLossError as e:
    raise RecordError(f"{path}: record {count} (0-based) is damaged ({_reason(e)}); the "
                      f"{count} records before it read fine. Regenerate the file") from None
  except tf.errors.OpError as e:
    raise RecordError(f"{path}: not a readable TFRecord file ({_reason(e)})") from None
  size = tf.io.gfile.stat(path).length
  if size != payload + _RECORD_OVERHEAD * count:
    raise RecordError(f"{path}: {size - payload - _RECORD_OVERHEAD * count} bytes after record "
                      f"{count - 1} (0-based) are not a whole record (file cut short?). Regenerate "
                      "the file")
  return count


def _reason(error):
  return str(error.message).strip().splitlines()[-1]


def scan_records(paths, remember_in=None, writes=True):
  """Record count of each file in `paths` (a list), after reading every record of it.

  remember_in: a directory (the run's output_dir) where the counts of the files read whole are kept
    (SCANNED_RECORDS), keyed by path with the file's size and modification time: a rerun reads again
    only the files that are new or changed since, instead of the whole data set at every restart.
  writes: False on the workers of a multi-worker run other than the chief (they only read it).
  Raises:
    RecordError naming the file and the 0-based index of the first record that fails its CRC, is
    cut short, or is followed by bytes that are not a record.
  """
  known = _read_scanned(remember_in) if remember_in else {}
  counts, unsaved, saved_at = [], False, time.monotonic()
  for path in paths:
    signature = atomic_io.file_signature(path)
    entry = known.get(path)
    if entry is not None and entry.get("signature") == signature:
      counts.append(entry["records"])
      continue
    counts.append(_count(path))
    known[path] = {"signature": signature, "records": counts[-1]}
    unsaved = True
    if remember_in and writes and time.monotonic() - saved_at > _SAVE_EVERY_SECONDS:
      _write_scanned(remember_in, known)  # a scan cut short keeps what it has read
      unsaved, saved_at = False, time.monotonic()
  if remember_in and writes and unsaved:
    _write_scanned(remember_in, known)
  return counts


def _scanned_path(directory):
  return f"{directory.rstrip('/')}/{SCANNED_RECORDS}"


def _read_scanned(directory):
  path = _scanned_path(directory)
  if not tf.io.gfile.exists(path):
    return {}
  try:
    with tf.io.gfile.GFile(path, "r") as f:
      known = json.loads(f.read())
    return known if isinstance(known, dict) else {}
  except (ValueError, UnicodeDecodeError):
    return {}  # read the files again, and write it anew


def _write_scanned(directory, known):
  atomic_io.write_text(_scanned_path(directory), json.dumps(known, indent=0))


def check_record_count(path, expected):
  """Reads every record of `path`; raises RecordError unless it is whole and holds `expected` records."""
  count = _count(path)
  if count != expected:
    raise RecordError(f"{path}: holds {count} records, expected {expected} (its meta file says so); "
                      "the file was changed after it was written: delete it to have it rebuilt")


def start_example(model_dir_step, phase_first_step, batch_size):
  """The index, in the training stream, of the first example a run resumed at `model_dir_step` reads."""
  return max(model_dir_step - phase_first_step, 0) * batch_size


def training_records(files, record_counts, seed, start_example=0, shuffle_buffer_size=1000,
                     cycle_length=4):
  """Endless tf.data.Dataset of serialized records, epoch after epoch, from example `start_example`.

  Args:
    files: list of TFRecord paths.
    record_counts: records of each file (from scan_records): an epoch is their sum.
    seed: int; with the same files, the same seed gives the same stream on every run and machine.
    start_example: examples of the stream to skip (0-based index of the first one returned).
    shuffle_buffer_size: records mixed within an epoch (1 keeps the interleaved file order).
    cycle_length: files read at once, one record from each in turn.
  """
  epoch_size = sum(record_counts)
  if not files or epoch_size == 0:
    raise RecordError(f"no records in {', '.join(files) or 'an empty file list'}")
  first_epoch, skip = divmod(int(start_example), epoch_size)
  names = tf.constant(list(files))
  seed = int(seed or 0)

  def epoch(index):
    # Both seeds come from (seed, epoch) alone, so epoch e is the same whichever epoch a run starts in.
    file_seed = tf.stack([tf.constant(seed, tf.int64), index])
    order = tf.argsort(tf.random.stateless_uniform([len(files)], seed=file_seed))
    records = tf.data.Dataset.from_tensor_slices(tf.gather(names, order)).interleave(
        tf.data.TFRecordDataset, cycle_length=min(cycle_length, len(files)), block_length=1,
        num_parallel_calls=tf.data.experimental.AUTOTUNE, deterministic=True)
    if shuffle_buffer_size > 1:
      buffer_seed = tf.random.stateless_uniform([], seed=file_seed + [0, 1 << 32], minval=0,
                                                maxval=_INT32_MAX, dtype=tf.int64)
      records = records.shuffle(shuffle_buffer_size, seed=buffer_seed,
                                reshuffle_each_iteration=False)
    return records

  dataset = tf.data.Dataset.range(first_epoch, tf.int64.max).flat_map(epoch)
  if skip:
    tf.logging.info("input resumes at example %d: epoch %d, skipping %d records of it",
                    start_example, first_epoch, skip)
  return dataset.skip(skip)


@contextlib.contextmanager
def naming_corrupt_records(paths):
  """Re-raises a DataLossError from the input pipeline as the RecordError of the damaged file."""
  try:
    yield
  except tf.errors.DataLossError as e:
    for path in paths:
      if tf.io.gfile.exists(path):
        _count(path)  # raises RecordError for the damaged file
    raise RecordError(f"reading {', '.join(os.path.basename(p) for p in paths)}: {_reason(e)}") from e
