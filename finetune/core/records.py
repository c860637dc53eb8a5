"""TFRecords of featurized examples, for every kind: the schema declared once, a cache keyed by every
input that changes the records, and the Estimator input_fn with static-shape padding.

A kind declares its records as a `feature_spec` (an ordered dict of tf.io.FixedLenFeature, int64 or
float32); the same spec serializes them and parses them back. Padding records (eval/predict) are all
zeros, so a kind marks its real records with a field that is never 0 for them (`is_real_example`,
`unique_ids`).
"""

import hashlib
import json
import os
from typing import NamedTuple

import tensorflow.compat.v1 as tf
from absl import logging

from mobilebert import atomic_io
from mobilebert import input_pipeline

RECORD_SUFFIX = ".tf_record"
META_SUFFIX = ".json"


class CachedRecords(NamedTuple):
  """Records on disk and the meta file written after them (its "key" first)."""
  path: str
  meta: dict


def file_sha256(path):
  digest = hashlib.sha256()
  with tf.io.gfile.GFile(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 22), b""):
      digest.update(chunk)
  return digest.hexdigest()


def digest(parts):
  """Hex SHA-256 of a JSON-able dict: the cache key of everything the records depend on."""
  return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()


def serialize(spec, values):
  """values {name: int or list} following `spec` -> a serialized tf.train.Example."""
  feature = {}
  for name, value in values.items():
    value = list(value) if isinstance(value, (list, tuple)) else [value]
    if spec[name].dtype == tf.float32:
      feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=value))
    else:
      feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=value))
  return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def cached_records(stem, key, make_records):
  """Reuses `stem`.tf_record when `stem`.json holds `key`; else writes what `make_records()` returns.

  make_records() -> (serialized records, an iterable; meta, a dict), called only on a cache miss. The
  meta file is written last, after the records are in place, so an interrupted run leaves nothing that
  a later run would take for a complete cache.
  """
  record_path, meta_path = stem + RECORD_SUFFIX, stem + META_SUFFIX
  if tf.io.gfile.exists(meta_path) and tf.io.gfile.exists(record_path):
    with tf.io.gfile.GFile(meta_path, "r") as f:
      meta = json.loads(f.read())
    if meta.get("key") == key:
      logging.info("reusing cached features %s", record_path)
      return CachedRecords(record_path, meta)
  records, meta = make_records()
  tf.io.gfile.makedirs(os.path.dirname(stem) or ".")

  def write(path):
    with tf.io.TFRecordWriter(path) as writer:
      for record in records:
        writer.write(record)

  atomic_io.write_atomically(record_path, write)
  meta = dict({"key": key}, **meta)
  atomic_io.write_text(meta_path, json.dumps(meta, ensure_ascii=False))
  return CachedRecords(record_path, meta)


def num_padding(num_records, batch_size):
  """How many padding records make num_records a whole number of batches."""
  return -num_records % batch_size


def _in_graph_dtype(dtype):
  # tf.Example stores int64; TPUs want int32.
  return tf.int32 if dtype == tf.int64 else dtype


def input_fn_builder(input_file, spec, is_training, num_records, pad_to_batch_size=None, seed=None,
                     start_example=0):
  """An Estimator/TPUEstimator input_fn over cached records following `spec`.

  Training repeats and shuffles in an order fixed by `seed`, from example `start_example`
  (global_step * batch_size when resuming), and drops the last partial batch. Eval and predict read
  the file once, in order; with `pad_to_batch_size` (the global batch size) they append all-zero
  padding records so every batch is full and shapes stay static on TPU, while each real record is
  still read exactly once.
  """

  def decode(record):
    example = tf.io.parse_single_example(record, spec)
    return {name: tf.cast(tensor, _in_graph_dtype(tensor.dtype)) for name, tensor in example.items()}

  input_pipeline.check_record_count(input_file, num_records)

  def input_fn(params):
    if is_training:
      # The order depends on (seed, epoch) only, and a resumed run starts where it stopped.
      dataset = input_pipeline.training_records([input_file], [num_records], seed, start_example,
                                                shuffle_buffer_size=min(num_records, 20000))
    else:
      dataset = tf.data.TFRecordDataset(input_file)
    dataset = dataset.map(decode, num_parallel_calls=tf.data.experimental.AUTOTUNE)
    if not is_training and pad_to_batch_size:
      padding = tf.data.Dataset.from_tensors({
          name: tf.zeros(feature.shape, _in_graph_dtype(feature.dtype))
          for name, feature in spec.items()})
      dataset = dataset.concatenate(padding.repeat(num_padding(num_records, pad_to_batch_size)))
    return dataset.batch(params["batch_size"],
                         drop_remainder=is_training or bool(pad_to_batch_size))

  return input_fn
