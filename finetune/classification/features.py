"""Classification features: `[CLS] a [SEP] b [SEP]`, longest-first truncation, a TFRecord cache whose key
covers every input that changes the records, and input_fns that pad eval/predict to whole batches.
"""

import collections
import hashlib
import json
import os
import time
from typing import NamedTuple, Tuple

import numpy as np
import tensorflow.compat.v1 as tf
from absl import logging

from mobilebert import atomic_io
from mobilebert import cli
from mobilebert import input_pipeline

# Bump when the record layout or the featurization changes, so old caches are never read.
FEATURE_FORMAT_VERSION = 1
_LOGGED_EXAMPLES = 3


class InputFeatures(NamedTuple):
  """One example as model input; lists of length max_seq_length. Padding examples have
  is_real_example 0 and are never scored."""
  input_ids: list
  input_mask: list
  segment_ids: list
  label_id: int
  is_real_example: int = 1


class CachedSplit(NamedTuple):
  """A featurized split on disk: `num_examples` real records in `path`; `guids` in record order (empty
  for the training split, which can be large)."""
  path: str
  num_examples: int
  guids: Tuple[str, ...]
  key: str


def truncate_seq_pair(tokens_a, tokens_b, max_length):
  """Returns copies of the two token lists cut to at most max_length tokens together.

  Longest first: one token at a time from the end of whichever is longer (b on ties, as BERT does),
  since a token cut from a short sentence carries more of its meaning than one cut from a long one.
  """
  tokens_a, tokens_b = list(tokens_a), list(tokens_b)
  while len(tokens_a) + len(tokens_b) > max_length:
    if len(tokens_a) > len(tokens_b):
      tokens_a.pop()
    else:
      tokens_b.pop()
  return tokens_a, tokens_b


def min_seq_length(is_pair):
  """The shortest max_seq_length that holds one token of each text: `[CLS] a [SEP]` (`b [SEP]`)."""
  return 5 if is_pair else 3


def convert_example(example, label_map, max_seq_length, tokenizer):
  """InputExample -> InputFeatures: `[CLS] a [SEP]` (segment 0) `b [SEP]` (segment 1), zero-padded.

  An example without a label (prediction) gets label_id 0; its label is never used.
  """
  tokens_a = tokenizer.tokenize(example.text_a)
  tokens_b = tokenizer.tokenize(example.text_b) if example.text_b is not None else []
  if example.text_b is not None:
    tokens_a, tokens_b = truncate_seq_pair(tokens_a, tokens_b, max_seq_length - 3)
  else:
    tokens_a = tokens_a[:max_seq_length - 2]
  tokens = ["[CLS]"] + tokens_a + ["[SEP]"]
  segment_ids = [0] * len(tokens)
  if example.text_b is not None:
    tokens += tokens_b + ["[SEP]"]
    segment_ids += [1] * (len(tokens_b) + 1)
  input_ids = tokenizer.convert_tokens_to_ids(tokens)
  padding = [0] * (max_seq_length - len(input_ids))
  return InputFeatures(
      input_ids=input_ids + padding,
      input_mask=[1] * len(input_ids) + padding,
      segment_ids=segment_ids + padding,
      label_id=label_map[example.label] if example.label is not None else 0)


def padding_features(max_seq_length):
  """A fake example that fills the last eval/predict batch (TPUs need every batch full)."""
  zeros = [0] * max_seq_length
  return InputFeatures(zeros, zeros, zeros, 0, is_real_example=0)


def feature_spec(seq_length):
  """The TFRecord schema, declared once for writing and reading."""
  return collections.OrderedDict([
      ("input_ids", tf.io.FixedLenFeature([seq_length], tf.int64)),
      ("input_mask", tf.io.FixedLenFeature([seq_length], tf.int64)),
      ("segment_ids", tf.io.FixedLenFeature([seq_length], tf.int64)),
      ("label_ids", tf.io.FixedLenFeature([], tf.int64)),
      ("is_real_example", tf.io.FixedLenFeature([], tf.int64)),
  ])


def _serialize(features):
  values = {"input_ids": features.input_ids, "input_mask": features.input_mask,
            "segment_ids": features.segment_ids, "label_ids": [features.label_id],
            "is_real_example": [features.is_real_example]}
  feature = {name: tf.train.Feature(int64_list=tf.train.Int64List(value=list(value)))
             for name, value in values.items()}
  return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def file_sha256(path):
  digest = hashlib.sha256()
  with tf.io.gfile.GFile(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 22), b""):
      digest.update(chunk)
  return digest.hexdigest()


def cache_key(task, split, require_labels, vocab_file, do_lower_case, max_seq_length):
  """Hex digest of everything the records depend on: the task's options and labels, the split, the bytes
  of its data file and of the vocab, casing, max_seq_length and the record format."""
  parts = {
      "version": FEATURE_FORMAT_VERSION, "task": task.signature(), "split": split,
      "require_labels": bool(require_labels), "data_sha256": file_sha256(task.data_file(split)),
      "vocab_sha256": file_sha256(vocab_file), "do_lower_case": bool(do_lower_case),
      "max_seq_length": int(max_seq_length),
  }
  return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()


def cached_features(task, split, tokenizer, vocab_file, do_lower_case, max_seq_length, cache_dir,
                    require_labels=True):
  """Featurizes one split into `cache_dir`, or reuses the records a previous run wrote for the same key.

  The meta file is written last, after the records are in place, so an interrupted run leaves nothing
  that a later run would take for a complete cache.
  """
  key = cache_key(task, split, require_labels, vocab_file, do_lower_case, max_seq_length)
  stem = os.path.join(cache_dir, f"{task.name}.{split}.len{max_seq_length}.{key[:16]}")
  record_path, meta_path = stem + ".tf_record", stem + ".json"
  if tf.io.gfile.exists(meta_path) and tf.io.gfile.exists(record_path):
    with tf.io.gfile.GFile(meta_path, "r") as f:
      meta = json.loads(f.read())
    if meta.get("key") == key:
      logging.info("%s %s: reusing cached features %s (%d examples)", task.name, split, record_path,
                   meta["num_examples"])
      return CachedSplit(record_path, meta["num_examples"], tuple(meta["guids"]), key)

  examples = task.get_examples(split, require_labels=require_labels)
  if not examples:
    raise cli.DataError(f"{task.data_file(split)}: no {split} examples for task '{task.name}'")
  label_map = {label: i for i, label in enumerate(task.labels)}
  tf.io.gfile.makedirs(cache_dir)
  start = time.time()

  def write(path):
    with tf.io.TFRecordWriter(path) as writer:
      for index, example in enumerate(examples):
        features = convert_example(example, label_map, max_seq_length, tokenizer)
        if index < _LOGGED_EXAMPLES:
          logging.info("%s example %s: label=%s ids=%s", split, example.guid, example.label,
                       features.input_ids[:sum(features.input_mask)])
        if index and index % 20000 == 0:
          logging.info("featurized %d/%d %s examples (%.0f examples/s)", index, len(examples), split,
                       index / (time.time() - start))
        writer.write(_serialize(features))

  atomic_io.write_atomically(record_path, write)
  stats = task.read_stats.get(split)
  meta = {"key": key, "task": task.name, "split": split, "num_examples": len(examples),
          "max_seq_length": max_seq_length, "data_file": task.data_file(split),
          "bad_rows": stats.bad if stats else 0, "skipped_rows": stats.skipped if stats else 0,
          "guids": [] if split == "train" else [e.guid for e in examples]}
  atomic_io.write_text(meta_path, json.dumps(meta, ensure_ascii=False))
  logging.info("%s %s: wrote %d examples to %s in %.1fs", task.name, split, len(examples), record_path,
               time.time() - start)
  return CachedSplit(record_path, len(examples), tuple(meta["guids"]), key)


def num_padding(num_examples, batch_size):
  """How many padding examples make num_examples a whole number of batches."""
  return -num_examples % batch_size


def input_fn_builder(input_file, seq_length, is_training, num_examples, pad_to_batch_size=None,
                     seed=None, start_example=0):
  """An Estimator/TPUEstimator input_fn over a cached split.

  Training repeats and shuffles, in an order fixed by `seed`, from example `start_example`
  (global_step * batch_size when resuming). Eval and predict read the file once, in order; with
  `pad_to_batch_size` (the global batch size) they append padding examples so every batch is full and
  shapes stay static on TPU, while each real example is still scored exactly once.
  """
  spec = feature_spec(seq_length)

  def decode(record):
    example = tf.io.parse_single_example(record, spec)
    # tf.Example stores int64; TPUs want int32.
    return {name: tf.cast(tensor, tf.int32) for name, tensor in example.items()}

  input_pipeline.check_record_count(input_file, num_examples)

  def input_fn(params):
    batch_size = params["batch_size"]
    if is_training:
      # The order depends on (seed, epoch) only, and a resumed run starts where it stopped.
      dataset = input_pipeline.training_records([input_file], [num_examples], seed, start_example,
                                                shuffle_buffer_size=min(num_examples, 20000))
    else:
      dataset = tf.data.TFRecordDataset(input_file)
    dataset = dataset.map(decode, num_parallel_calls=tf.data.experimental.AUTOTUNE)
    if not is_training and pad_to_batch_size:
      pad = padding_features(seq_length)
      padding = tf.data.Dataset.from_tensors({
          "input_ids": tf.constant(pad.input_ids, tf.int32),
          "input_mask": tf.constant(pad.input_mask, tf.int32),
          "segment_ids": tf.constant(pad.segment_ids, tf.int32),
          "label_ids": tf.constant(0, tf.int32), "is_real_example": tf.constant(0, tf.int32)})
      dataset = dataset.concatenate(padding.repeat(num_padding(num_examples, pad_to_batch_size)))
    return dataset.batch(batch_size, drop_remainder=is_training or bool(pad_to_batch_size))

  return input_fn


def score_with_predict_fn(task, examples, tokenizer, max_seq_length, predict_fn, scorer,
                          batch_size=1):
  """Scores examples with any model given as a function (the hook for TFLite evaluation).

  Args:
    predict_fn: dict of int32 arrays input_ids/input_mask/segment_ids [batch_size, max_seq_length]
      -> probabilities [batch_size, num_labels]. Every call gets a full batch (padded at the end).
    scorer: a ClassificationScorer for the task.
  Returns:
    scorer.results().
  """
  label_map = {label: i for i, label in enumerate(task.labels)}
  features = [convert_example(e, label_map, max_seq_length, tokenizer) for e in examples]
  features += [padding_features(max_seq_length)] * num_padding(len(features), batch_size)
  for start in range(0, len(features), batch_size):
    batch = features[start:start + batch_size]
    arrays = {name: np.array([getattr(f, name) for f in batch], np.int32)
              for name in ("input_ids", "input_mask", "segment_ids")}
    probabilities = np.asarray(predict_fn(arrays), np.float64)
    real = np.array([f.is_real_example for f in batch], bool)
    scorer.update(np.array([f.label_id for f in batch])[real],
                  np.log(np.maximum(probabilities[real], 1e-30)))
  return scorer.results()
