# coding=utf-8
"""TFRecords of span features: the schema (declared once), a cache keyed by every input that changes the
records, and the Estimator input_fn.

As in the classifier, the cache file names carry a digest of the data file's bytes, the vocab's bytes,
casing, the window settings, script conversion and the record format; the meta file is written last,
so an interrupted run never leaves something a later run takes for a complete cache.
"""

import collections
import hashlib
import json
import os

import tensorflow.compat.v1 as tf
from absl import logging

from finetune.classification.features import file_sha256

from mobilebert import atomic_io
from mobilebert import cli
from mobilebert import input_pipeline

# Bump when the record layout or the featurization changes, so old caches are never read.
FEATURE_FORMAT_VERSION = 1

# Real features are numbered from span_features.FIRST_UNIQUE_ID; padding records carry this id.
PADDING_UNIQUE_ID = 0

CachedRecords = collections.namedtuple("CachedRecords", ["path", "num_features", "key"])


def feature_spec(seq_length, is_training):
  """The TFRecord schema: model inputs, plus answer positions for training."""
  spec = collections.OrderedDict([
      ("unique_ids", tf.io.FixedLenFeature([], tf.int64)),
      ("input_ids", tf.io.FixedLenFeature([seq_length], tf.int64)),
      ("input_mask", tf.io.FixedLenFeature([seq_length], tf.int64)),
      ("segment_ids", tf.io.FixedLenFeature([seq_length], tf.int64)),
  ])
  if is_training:
    spec["start_positions"] = tf.io.FixedLenFeature([], tf.int64)
    spec["end_positions"] = tf.io.FixedLenFeature([], tf.int64)
  return spec


def serialize(feature, is_training):
  """A SpanFeature as a serialized tf.train.Example following feature_spec."""
  values = {"unique_ids": [feature.unique_id], "input_ids": feature.input_ids,
            "input_mask": feature.input_mask, "segment_ids": feature.segment_ids}
  if is_training:
    values["start_positions"] = [feature.start_position]
    values["end_positions"] = [feature.end_position]
  return tf.train.Example(features=tf.train.Features(feature={
      name: tf.train.Feature(int64_list=tf.train.Int64List(value=list(value)))
      for name, value in values.items()})).SerializeToString()


def cache_key(data_file, vocab_file, do_lower_case, settings, to_simplified, is_training):
  """Hex digest of everything the records depend on."""
  parts = {
      "version": FEATURE_FORMAT_VERSION, "data_sha256": file_sha256(data_file),
      "vocab_sha256": file_sha256(vocab_file), "do_lower_case": bool(do_lower_case),
      "settings": list(settings), "to_simplified": bool(to_simplified),
      "is_training": bool(is_training),
  }
  return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()


def cached_records(name, key, cache_dir, make_features, is_training):
  """Writes the features `make_features()` returns to `cache_dir`, or reuses a previous run's records
  for the same key without calling it. Returns CachedRecords."""
  stem = os.path.join(cache_dir, f"{name}.{'train' if is_training else 'predict'}.{key[:16]}")
  record_path, meta_path = stem + ".tf_record", stem + ".json"
  if tf.io.gfile.exists(meta_path) and tf.io.gfile.exists(record_path):
    with tf.io.gfile.GFile(meta_path, "r") as f:
      meta = json.loads(f.read())
    if meta.get("key") == key:
      logging.info("reusing cached features %s (%d features)", record_path, meta["num_features"])
      return CachedRecords(record_path, meta["num_features"], key)
  features = make_features()
  if not features:
    raise cli.DataError(f"{name}: no features to write (no questions, or none with a usable answer)")
  tf.io.gfile.makedirs(cache_dir)

  def write(path):
    with tf.io.TFRecordWriter(path) as writer:
      for feature in features:
        writer.write(serialize(feature, is_training))

  atomic_io.write_atomically(record_path, write)
  meta = {"key": key, "name": name, "is_training": is_training, "num_features": len(features)}
  atomic_io.write_text(meta_path, json.dumps(meta))
  logging.info("wrote %d features to %s", len(features), record_path)
  return CachedRecords(record_path, len(features), key)


def input_fn_builder(input_file, seq_length, is_training, num_features, pad_to_batch_size=None,
                     seed=None, start_example=0):
  """An Estimator/TPUEstimator input_fn over cached records.

  Training shuffles in an order fixed by `seed`, repeats, starts at example `start_example`
  (global_step * batch_size when resuming) and drops the last partial batch. Prediction reads the
  file once, in order; with `pad_to_batch_size` (the global batch size) it appends padding records
  with unique_ids 0 so every batch is full and shapes stay static on TPU (the host drops them).
  """
  spec = feature_spec(seq_length, is_training)

  def decode(record):
    example = tf.io.parse_single_example(record, spec)
    # tf.Example stores int64; TPUs want int32.
    return {name: tf.cast(tensor, tf.int32) for name, tensor in example.items()}

  input_pipeline.check_record_count(input_file, num_features)

  def input_fn(params):
    if is_training:
      # The order depends on (seed, epoch) only, and a resumed run starts where it stopped.
      dataset = input_pipeline.training_records([input_file], [num_features], seed, start_example,
                                                shuffle_buffer_size=min(num_features, 20000))
    else:
      dataset = tf.data.TFRecordDataset(input_file)
    dataset = dataset.map(decode, num_parallel_calls=tf.data.experimental.AUTOTUNE)
    if not is_training and pad_to_batch_size:
      zeros = tf.zeros([seq_length], tf.int32)
      padding = tf.data.Dataset.from_tensors({"unique_ids": tf.constant(PADDING_UNIQUE_ID, tf.int32),
                                              "input_ids": zeros, "input_mask": zeros,
                                              "segment_ids": zeros})
      dataset = dataset.concatenate(padding.repeat(-num_features % pad_to_batch_size))
    return dataset.batch(params["batch_size"],
                         drop_remainder=is_training or bool(pad_to_batch_size))

  return input_fn
