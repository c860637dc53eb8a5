# coding=utf-8
"""TFRecords of span features: the schema (declared once) and the cache key, over the shared cache and
input_fn of finetune/core/records.py.

The cache file names carry a digest of the data file's bytes, the vocab's bytes, casing, the window
settings, script conversion and the record format.
"""

import collections
import os

import tensorflow.compat.v1 as tf

from finetune.core import records
from mobilebert import cli
from mobilebert import text_encoding

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
  values = {"unique_ids": feature.unique_id, "input_ids": feature.input_ids,
            "input_mask": feature.input_mask, "segment_ids": feature.segment_ids}
  if is_training:
    values["start_positions"] = feature.start_position
    values["end_positions"] = feature.end_position
  return records.serialize(feature_spec(len(feature.input_ids), is_training), values)


def cache_key(data_file, vocab_file, do_lower_case, settings, to_simplified, is_training,
              encoding=text_encoding.DEFAULT):
  """Hex digest of everything the records depend on."""
  parts = {
      "version": FEATURE_FORMAT_VERSION, "data_sha256": records.file_sha256(data_file),
      "vocab_sha256": records.file_sha256(vocab_file), "do_lower_case": bool(do_lower_case),
      "settings": list(settings), "to_simplified": bool(to_simplified),
      "is_training": bool(is_training),
  }
  if encoding != text_encoding.DEFAULT:  # keys of UTF-8 data stay as they were
    parts["encoding"] = encoding
  return records.digest(parts)


def cached_records(name, key, cache_dir, make_features, is_training):
  """Writes the features `make_features()` returns to `cache_dir`, or reuses a previous run's records
  for the same key without calling it (finetune/core/records.py). Returns CachedRecords."""
  stem = os.path.join(cache_dir, f"{name}.{'train' if is_training else 'predict'}.{key[:16]}")

  def make_records():
    features = make_features()
    if not features:
      raise cli.DataError(f"{name}: no features to write (no questions, or none with a usable answer)")
    meta = {"name": name, "is_training": is_training, "num_features": len(features)}
    return (serialize(feature, is_training) for feature in features), meta

  cached = records.cached_records(stem, key, make_records)
  return CachedRecords(cached.path, cached.meta["num_features"], key)


def input_fn_builder(input_file, seq_length, is_training, num_features, pad_to_batch_size=None,
                     seed=None, start_example=0):
  """The shared input_fn (finetune/core/records.py) over span records; padding records have
  unique_ids 0 (PADDING_UNIQUE_ID), which the host drops."""
  return records.input_fn_builder(input_file, feature_spec(seq_length, is_training), is_training,
                                  num_features, pad_to_batch_size, seed, start_example)
