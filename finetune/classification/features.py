"""Classification features: `[CLS] a [SEP] b [SEP]`, longest-first truncation, a TFRecord cache whose key
covers every input that changes the records, and input_fns that pad eval/predict to whole batches.
"""

import collections
import os
import time
from typing import NamedTuple, Tuple

import numpy as np
import tensorflow.compat.v1 as tf
from absl import logging

from finetune.classification.tasks.base import CLASSIFICATION, REGRESSION
from finetune.core import records
from mobilebert import cli

# Bump when the record layout or the featurization changes, so old caches are never read.
FEATURE_FORMAT_VERSION = 1
_LOGGED_EXAMPLES = 3
# The record's label: a class index, or the number a regression task predicts.
LABEL_FEATURES = {CLASSIFICATION: ("label_ids", tf.int64), REGRESSION: ("label_values", tf.float32)}


class InputFeatures(NamedTuple):
  """One example as model input; lists of length max_seq_length. `label_id` is the class index, or the
  target (float) of a regression task. Padding examples have is_real_example 0 and are never scored."""
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

  An example without a label (prediction) gets label_id 0; its label is never used. label_map is None
  for a regression task: the label is the target number.
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
      label_id=(0 if example.label is None else float(example.label) if label_map is None
                else label_map[example.label]))


def padding_features(max_seq_length):
  """A fake example that fills the last eval/predict batch (TPUs need every batch full)."""
  zeros = [0] * max_seq_length
  return InputFeatures(zeros, zeros, zeros, 0, is_real_example=0)


def feature_spec(seq_length, task_type=CLASSIFICATION):
  """The TFRecord schema, declared once for writing and reading (padding records are all zeros:
  is_real_example 0). The label is `label_ids` (int64), or `label_values` (float32) for regression."""
  label_name, label_dtype = LABEL_FEATURES[task_type]
  return collections.OrderedDict([
      ("input_ids", tf.io.FixedLenFeature([seq_length], tf.int64)),
      ("input_mask", tf.io.FixedLenFeature([seq_length], tf.int64)),
      ("segment_ids", tf.io.FixedLenFeature([seq_length], tf.int64)),
      (label_name, tf.io.FixedLenFeature([], label_dtype)),
      ("is_real_example", tf.io.FixedLenFeature([], tf.int64)),
  ])


def _serialize(spec, features, label_name="label_ids"):
  return records.serialize(spec, {
      "input_ids": features.input_ids, "input_mask": features.input_mask,
      "segment_ids": features.segment_ids, label_name: features.label_id,
      "is_real_example": features.is_real_example})


def cache_key(task, split, require_labels, vocab_file, do_lower_case, max_seq_length):
  """Hex digest of everything the records depend on: the task's options and labels, the split, the bytes
  of its data file and of the vocab, casing, max_seq_length and the record format."""
  return records.digest({
      "version": FEATURE_FORMAT_VERSION, "task": task.signature(), "split": split,
      "require_labels": bool(require_labels), "data_sha256": records.file_sha256(task.data_file(split)),
      "vocab_sha256": records.file_sha256(vocab_file), "do_lower_case": bool(do_lower_case),
      "max_seq_length": int(max_seq_length),
  })


def cached_features(task, split, tokenizer, vocab_file, do_lower_case, max_seq_length, cache_dir,
                    require_labels=True, key=None):
  """Featurizes one split into `cache_dir`, or reuses the records a previous run wrote for the same key
  (finetune/core/records.py); `key` is the split's cache_key when the caller has it already."""
  key = key or cache_key(task, split, require_labels, vocab_file, do_lower_case, max_seq_length)
  stem = os.path.join(cache_dir, f"{task.name}.{split}.len{max_seq_length}.{key[:16]}")

  def make_records():
    examples = task.get_examples(split, require_labels=require_labels)
    if not examples:
      raise cli.DataError(f"{task.data_file(split)}: no {split} examples for task '{task.name}'")
    stats = task.read_stats.get(split)
    meta = {"task": task.name, "split": split, "num_examples": len(examples),
            "max_seq_length": max_seq_length, "data_file": task.data_file(split),
            "bad_rows": stats.bad if stats else 0, "skipped_rows": stats.skipped if stats else 0,
            "guids": [] if split == "train" else [e.guid for e in examples]}
    return _featurize(task, split, examples, tokenizer, max_seq_length), meta

  cached = records.cached_records(stem, key, make_records)
  return CachedSplit(cached.path, cached.meta["num_examples"], tuple(cached.meta["guids"]), key)


def _featurize(task, split, examples, tokenizer, max_seq_length):
  """Serialized records of the examples, logging the first few and the progress."""
  label_map = (None if task.task_type == REGRESSION
               else {label: i for i, label in enumerate(task.labels)})
  spec = feature_spec(max_seq_length, task.task_type)
  start = time.time()
  for index, example in enumerate(examples):
    features = convert_example(example, label_map, max_seq_length, tokenizer)
    if index < _LOGGED_EXAMPLES:
      logging.info("%s example %s: label=%s ids=%s", split, example.guid, example.label,
                   features.input_ids[:sum(features.input_mask)])
    if index and index % 20000 == 0:
      logging.info("featurized %d/%d %s examples (%.0f examples/s)", index, len(examples), split,
                   index / (time.time() - start))
    yield _serialize(spec, features, LABEL_FEATURES[task.task_type][0])
  logging.info("%s %s: featurized %d examples in %.1fs", task.name, split, len(examples),
               time.time() - start)


def input_fn_builder(input_file, seq_length, is_training, num_examples, pad_to_batch_size=None,
                     seed=None, start_example=0, task_type=CLASSIFICATION):
  """The shared input_fn (finetune/core/records.py) over a cached split of this schema."""
  return records.input_fn_builder(input_file, feature_spec(seq_length, task_type), is_training,
                                  num_examples, pad_to_batch_size, seed, start_example)


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
  features += [padding_features(max_seq_length)] * records.num_padding(len(features), batch_size)
  for start in range(0, len(features), batch_size):
    batch = features[start:start + batch_size]
    arrays = {name: np.array([getattr(f, name) for f in batch], np.int32)
              for name in ("input_ids", "input_mask", "segment_ids")}
    probabilities = np.asarray(predict_fn(arrays), np.float64)
    real = np.array([f.is_real_example for f in batch], bool)
    scorer.update(np.array([f.label_id for f in batch])[real],
                  np.log(np.maximum(probabilities[real], 1e-30)))
  return scorer.results()
