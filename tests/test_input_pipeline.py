"""mobilebert.input_pipeline: a training stream fixed by (seed, position), and TFRecord damage reported as
one line naming the file and the record, by every reader (pretraining, classifier and span caches)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow.compat.v1 as tf

from finetune.classification import features as classifier_features
from finetune.span import records as span_records
from mobilebert import input_pipeline
from mobilebert.input_pipeline import RecordError
from pretrain import pretraining_input
from pretraining_testlib import STUDENT_CONFIG, random_instances, write_tfrecord

ROOT = Path(__file__).resolve().parents[1]
RECORD = 100  # payload bytes of each record written by _write


def _write(path, first, count):
  """`count` records whose payload is the 8-digit number first, first+1, ... padded to RECORD bytes."""
  with tf.io.TFRecordWriter(str(path)) as writer:
    for i in range(first, first + count):
      writer.write(f"{i:08d}".encode().ljust(RECORD, b"."))
  return str(path)


def _take(dataset, count):
  with tf.Graph().as_default():
    element = tf.data.make_one_shot_iterator(dataset()).get_next()
    with tf.Session() as session:
      return [int(session.run(element)[:8]) for _ in range(count)]


@pytest.fixture(name="files")
def fixture_files(tmp_path):
  return [_write(tmp_path / "a.tfrecord", 0, 7), _write(tmp_path / "b.tfrecord", 100, 5),
          _write(tmp_path / "c.tfrecord", 200, 3)]


def _stream(files, seed=3, start=0, count=45):
  return _take(lambda: input_pipeline.training_records(files, [7, 5, 3], seed, start,
                                                       shuffle_buffer_size=4), count)


def test_every_epoch_is_a_new_permutation_of_all_records_and_the_same_on_every_run(files):
  stream = _stream(files)
  epochs = [stream[i:i + 15] for i in range(0, 45, 15)]
  every = sorted(list(range(7)) + list(range(100, 105)) + list(range(200, 203)))
  assert all(sorted(epoch) == every for epoch in epochs)
  assert len({tuple(epoch) for epoch in epochs}) == 3
  assert _stream(files) == stream
  assert _stream(files, seed=4) != stream


@pytest.mark.parametrize("start", [1, 15, 22])
def test_a_resumed_stream_continues_the_uninterrupted_one(files, start):
  assert _stream(files, start=start, count=45 - start) == _stream(files)[start:]


def _corrupt(path, offset):
  data = bytearray(open(path, "rb").read())
  data[offset] ^= 0xFF
  open(path, "wb").write(bytes(data))


def _truncate(path, size):
  data = open(path, "rb").read()
  open(path, "wb").write(data[:size])


@pytest.mark.parametrize("damage,message", [
    (lambda p: _corrupt(p, 3 * (RECORD + 16) + 12 + 40), r"a\.tfrecord: record 3 \(0-based\) is damaged"
                                                          r" \(corrupted record at 360\)"),
    (lambda p: _truncate(p, 5 * (RECORD + 16) + 50), r"a\.tfrecord: record 5 \(0-based\) is damaged"
                                                      r" \(truncated record"),
    # A cut inside a record's 12-byte header: tf.data would end the epoch there without a word.
    (lambda p: _truncate(p, 6 * (RECORD + 16) + 5), r"a\.tfrecord: 5 bytes after record 5 \(0-based\) "
                                                     r"are not a whole record"),
])
def test_scan_names_the_file_and_the_damaged_record(files, damage, message):
  damage(files[0])
  with pytest.raises(RecordError, match=message):
    input_pipeline.scan_records(files)


def test_damage_found_during_training_is_one_line_naming_file_and_record(files):
  counts = input_pipeline.scan_records(files)
  _corrupt(files[1], 2 * (RECORD + 16) + 12 + 10)  # damaged after the scan (e.g. a shared disk)
  with pytest.raises(RecordError, match=r"b\.tfrecord: record 2 \(0-based\) is damaged") as error:
    with input_pipeline.naming_corrupt_records(files):
      _take(lambda: input_pipeline.training_records(files, counts, 3), 15)
  assert "\n" not in str(error.value)


def test_a_rerun_reads_again_only_the_files_changed_since_the_last_scan(files, tmp_path,
                                                                        monkeypatch):
  """Pretraining keeps the counts in its output_dir: a restart does not read a large data set
  again, but a file rewritten, cut or damaged since (other size or time) is read and named."""
  output = tmp_path / "out"
  output.mkdir()
  read = []
  count = input_pipeline._count  # pylint: disable=protected-access
  monkeypatch.setattr(input_pipeline, "_count", lambda path: read.append(path) or count(path))
  assert input_pipeline.scan_records(files, remember_in=str(output)) == [7, 5, 3]
  assert read == files
  read.clear()
  assert input_pipeline.scan_records(files, remember_in=str(output)) == [7, 5, 3]
  assert not read
  _write(files[1], 100, 6)  # rewritten with another record count
  os.utime(files[1], ns=(1, 1))  # and another time, whatever the clock's resolution
  assert input_pipeline.scan_records(files, remember_in=str(output)) == [7, 6, 3]
  assert read == [files[1]]
  _truncate(files[2], 2 * (RECORD + 16) + 5)
  with pytest.raises(RecordError, match=r"c\.tfrecord: 5 bytes after record 1"):
    input_pipeline.scan_records(files, remember_in=str(output))
  with pytest.raises(RecordError, match=r"c\.tfrecord: 5 bytes after record 1"):
    input_pipeline.scan_records(files, remember_in=str(output))  # not remembered: read again


def test_only_the_chief_keeps_the_scanned_counts(files, tmp_path):
  assert input_pipeline.scan_records(files, remember_in=str(tmp_path), writes=False) == [7, 5, 3]
  assert not (tmp_path / input_pipeline.SCANNED_RECORDS).exists()
  input_pipeline.scan_records(files, remember_in=str(tmp_path))
  assert (tmp_path / input_pipeline.SCANNED_RECORDS).exists()


def test_fine_tuning_caches_are_checked_whole_before_use(tmp_path):
  path = _write(tmp_path / "cache.tf_record", 0, 6)
  for build in (classifier_features.input_fn_builder, span_records.input_fn_builder):
    with pytest.raises(RecordError, match=r"cache\.tf_record: holds 6 records, expected 8"):
      build(path, 12, True, 8)
  _truncate(path, 4 * (RECORD + 16) + 30)
  for build in (classifier_features.input_fn_builder, span_records.input_fn_builder):
    with pytest.raises(RecordError, match=r"cache\.tf_record: record 4 \(0-based\) is damaged"):
      build(path, 12, False, 6, pad_to_batch_size=4)


def test_pretraining_input_scans_its_files(tmp_path):
  good = write_tfrecord(tmp_path / "good.tfrecord", random_instances(3, 16, 2))
  bad = write_tfrecord(tmp_path / "bad.tfrecord", random_instances(4, 16, 2))
  _corrupt(bad, os.path.getsize(bad) - 3)
  with pytest.raises(RecordError, match=r"bad\.tfrecord: record 3 \(0-based\) is damaged"):
    pretraining_input.input_fn_builder([good, bad], 16, 2, is_training=True)


def test_run_pretraining_stops_on_a_damaged_file_before_writing_anything(tmp_path):
  data = write_tfrecord(tmp_path / "part-0.tfrecord", random_instances(6, 16, 2))
  _truncate(data, os.path.getsize(data) - 20)
  output = tmp_path / "out"
  result = subprocess.run(
      [sys.executable, "-m", "pretrain.run_pretraining", f"--bert_config_file={STUDENT_CONFIG}",
       f"--input_file={data}", f"--output_dir={output}", "--do_train", "--num_train_steps=2",
       "--num_warmup_steps=0", "--max_seq_length=16", "--max_predictions_per_seq=2",
       "--train_batch_size=2"],
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT)), cwd=ROOT,
      capture_output=True, text=True, timeout=120)
  assert result.returncode == 2  # a user error (mobilebert.cli)
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("run_pretraining.py: error: ") and "part-0.tfrecord: record 5 (0-based)" in last
  assert "Traceback" not in result.stderr
  assert not list(output.glob("model.ckpt-*"))
