"""Tagging records: the schema, declared once, and the cache of a split's windows (finetune/core/records:
keyed by everything that changes the records, meta written last, padded static-shape input_fns)."""

import collections
from typing import NamedTuple, Tuple

import tensorflow.compat.v1 as tf
from absl import logging

from finetune.core import records as records_lib
from finetune.tagging import alignment

# Bump when the record layout or the featurization changes, so old caches are never read.
FEATURE_FORMAT_VERSION = 1
INT_FEATURES = ("input_ids", "input_mask", "segment_ids", "tag_ids", "first_piece")


class CachedSplit(NamedTuple):
  """A featurized split: `num_examples` windows in `path`; `windows` in record order (empty for train)."""
  path: str
  num_examples: int
  windows: Tuple[alignment.Window, ...]
  key: str
  num_sentences: int


def feature_spec(seq_length):
  """The TFRecord schema; padding records are all zeros (is_real_example 0)."""
  spec = collections.OrderedDict(
      (name, tf.io.FixedLenFeature([seq_length], tf.int64)) for name in INT_FEATURES)
  spec["is_real_example"] = tf.io.FixedLenFeature([], tf.int64)
  return spec


def cache_key(task, split, require_labels, vocab_file, do_lower_case, max_seq_length):
  return records_lib.digest({
      "version": FEATURE_FORMAT_VERSION, "task": task.signature(), "split": split,
      "require_labels": bool(require_labels),
      "data_sha256": records_lib.file_sha256(task.data_file(split)),
      "vocab_sha256": records_lib.file_sha256(vocab_file), "do_lower_case": bool(do_lower_case),
      "max_seq_length": int(max_seq_length)})


def cached_features(task, split, tokenizer, vocab_file, do_lower_case, max_seq_length, cache_dir,
                    require_labels=True, key=None):
  """Featurizes one split into `cache_dir` (one record a window), or reuses an earlier run's records;
  `key` is the split's cache_key when the caller has it already."""
  key = key or cache_key(task, split, require_labels, vocab_file, do_lower_case, max_seq_length)
  spec = feature_spec(max_seq_length)

  def make_records():
    sentences = task.sentences(split, require_labels)
    tag_map = {tag: i for i, tag in enumerate(task.tag_names)}
    windows, records = [], []
    for index, sentence in enumerate(sentences):
      for window, features in alignment.featurize(sentence, index, tokenizer, tag_map,
                                                  max_seq_length):
        windows.append(window)
        records.append(records_lib.serialize(spec, features._asdict()))
    extra = len(windows) - len(sentences)
    if extra:
      logging.info("%s: %d sentence(s) longer than --max_seq_length=%d pieces were cut into %d more "
                   "windows (predictions are joined back)", split,
                   len({w.sentence_index for w in windows if w.first_unit}), max_seq_length, extra)
    logging.info("%s: %d examples of %d sentences", split, len(windows), len(sentences))
    return records, {"split": split, "num_examples": len(windows), "num_sentences": len(sentences),
                     "extra_windows": extra, "max_seq_length": max_seq_length,
                     "data_file": task.data_file(split),
                     "windows": [] if split == "train" else [list(w) for w in windows]}

  stem = f"{cache_dir}/{task.name}.{split}.len{max_seq_length}.{key[:16]}"
  cached = records_lib.cached_records(stem, key, make_records)
  meta = cached.meta
  return CachedSplit(cached.path, meta["num_examples"],
                     tuple(alignment.Window(*w) for w in meta["windows"]), key, meta["num_sentences"])
