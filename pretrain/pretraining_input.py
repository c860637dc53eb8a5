"""Pretraining TFRecords: the schema (declared once), the Estimator input_fn, and a check of the files
against the flags.

The seven features are those of Google's `create_pretraining_data.py`, so files made by the original
tool and by ours are read the same way.
"""

import collections

import tensorflow.compat.v1 as tf
from google.protobuf import message

from mobilebert import cli
from mobilebert import input_pipeline

# name, dtype, length: a flag name (whose value is the length) or a fixed number; needed_by: None for
# a feature every file must have, else the flag (without --) that needs it; absent, it reads as zeros.
FeatureField = collections.namedtuple("FeatureField", ["name", "dtype", "length", "needed_by"],
                                      defaults=(None,))

PRETRAINING_FEATURES = (
    FeatureField("input_ids", "int64", "max_seq_length"),
    FeatureField("input_mask", "int64", "max_seq_length"),
    FeatureField("segment_ids", "int64", "max_seq_length"),
    FeatureField("masked_lm_positions", "int64", "max_predictions_per_seq"),
    FeatureField("masked_lm_ids", "int64", "max_predictions_per_seq"),
    FeatureField("masked_lm_weights", "float32", "max_predictions_per_seq"),
    # Optional, as in the Chinese release's reader: data made for MLM only may leave it out.
    FeatureField("next_sentence_labels", "int64", 1, needed_by="nsp"),
)

_TF_DTYPES = {"int64": tf.int64, "float32": tf.float32}
_PROTO_KINDS = {"int64": "int64_list", "float32": "float_list"}


class PretrainingDataError(cli.DataError):
  """Pretraining TFRecords that do not match the flags they are read with."""


def feature_length(field, max_seq_length, max_predictions_per_seq):
  lengths = {"max_seq_length": max_seq_length, "max_predictions_per_seq": max_predictions_per_seq}
  return lengths.get(field.length, field.length)


def feature_spec(max_seq_length, max_predictions_per_seq):
  """name -> tf.io.FixedLenFeature for tf.io.parse_example (zeros for an absent optional feature)."""
  spec = collections.OrderedDict()
  for f in PRETRAINING_FEATURES:
    length = feature_length(f, max_seq_length, max_predictions_per_seq)
    default = [0] * length if f.needed_by else None
    spec[f.name] = tf.io.FixedLenFeature([length], _TF_DTYPES[f.dtype], default_value=default)
  return spec


def decode_batch(serialized, max_seq_length, max_predictions_per_seq):
  """Parses a batch of serialized tf.train.Examples.

  Args:
    serialized: string Tensor [batch].
  Returns:
    dict name -> Tensor [batch, length]; int64 features cast to int32 (TPUs have no int64 ops),
    masked_lm_weights float32.
  """
  parsed = tf.io.parse_example(serialized, feature_spec(max_seq_length, max_predictions_per_seq))
  return {name: tf.cast(t, tf.int32) if t.dtype == tf.int64 else t for name, t in parsed.items()}


def input_fn_builder(input_files, max_seq_length, max_predictions_per_seq, is_training,
                     num_cpu_threads=4, shuffle_buffer_size=1000, seed=0, start_example=0,
                     record_counts=None):
  """Returns an Estimator/TPUEstimator `input_fn(params)` over `input_files` (a list of paths).

  Training reads mobilebert.input_pipeline.training_records: per epoch, the files in an order drawn
  from (seed, epoch), several interleaved, records shuffled; the same on every run, and starting at
  `start_example` (global_step * batch_size of a resumed run). `record_counts` come from
  input_pipeline.scan_records (scanned here if not given). Evaluation reads the files in order and
  repeats (it runs a fixed number of steps). Batches are `params["batch_size"]` with the remainder
  dropped, since TPUs need static shapes.
  """
  input_files = list(input_files)
  if is_training and record_counts is None:
    record_counts = input_pipeline.scan_records(input_files)

  def input_fn(params):
    batch_size = params["batch_size"]
    if is_training:
      # Consecutive records of a shard come from one chunk of documents (the data tool shuffles
      # within a chunk only), so shuffle more than the original's 100 records.
      d = input_pipeline.training_records(input_files, record_counts, seed, start_example,
                                          shuffle_buffer_size, cycle_length=num_cpu_threads)
    else:
      d = tf.data.TFRecordDataset(input_files)
      d = d.repeat()
    d = d.batch(batch_size, drop_remainder=True)
    d = d.map(lambda records: decode_batch(records, max_seq_length, max_predictions_per_seq),
              num_parallel_calls=num_cpu_threads)
    return d.prefetch(1)

  return input_fn


def check_feature_lengths(input_files, max_seq_length, max_predictions_per_seq, nsp=False):
  """Reads the first record of every file and raises PretrainingDataError, naming the flag, if a
  feature is missing (next_sentence_labels only with `nsp`), of the wrong type, or of a length other
  than the flags say."""
  enabled = {"nsp": nsp}
  if not input_files:
    raise PretrainingDataError("--input_file: no pretraining data files")
  for path in input_files:
    example = _first_example(path)
    features = example.features.feature
    for field in PRETRAINING_FEATURES:
      expected = feature_length(field, max_seq_length, max_predictions_per_seq)
      if field.name not in features:
        if field.needed_by and not enabled[field.needed_by]:
          continue
        if field.needed_by:
          raise PretrainingDataError(
              f"{path}: no feature '{field.name}', which --{field.needed_by} needs: the data was "
              f"made without it; drop --{field.needed_by} or use data that has it")
        raise PretrainingDataError(f"{path}: no feature '{field.name}'; not a pretraining data file?")
      kind = features[field.name].WhichOneof("kind")
      if kind != _PROTO_KINDS[field.dtype]:
        raise PretrainingDataError(
            f"{path}: feature '{field.name}' is {kind}, expected {_PROTO_KINDS[field.dtype]}")
      actual = len(getattr(features[field.name], kind).value)
      if actual != expected:
        flag = (f"--{field.length}={expected}" if isinstance(field.length, str)
                else f"length {expected}")
        raise PretrainingDataError(
            f"{path}: feature '{field.name}' has {actual} values but {flag}: the data was made with "
            f"{field.length}={actual}; pass that value, or regenerate the data")


def _first_example(path):
  try:
    for record in tf.io.tf_record_iterator(path):
      return tf.train.Example.FromString(record)
  except (tf.errors.OpError, message.DecodeError) as e:
    raise PretrainingDataError(f"{path}: not a readable TFRecord file ({e})") from None
  raise PretrainingDataError(f"{path}: contains no records")
