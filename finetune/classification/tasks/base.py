"""What every classification task shares: examples, row reading with file:line errors, the Task contract.

A task is an object that knows its data files, its labels and how one row of its files becomes an
`InputExample`. Reading is strict: a row with the wrong number of columns or an unknown label stops the
run with the file and line number, unless the task was built with `skip_bad_rows`, in which case such
rows are skipped and counted (`task.read_stats[split]`).
"""

import json
import os
from typing import NamedTuple, Optional

import tensorflow.compat.v1 as tf
from absl import logging

from finetune.classification.tasks.scoring import ClassificationScorer
from finetune.core.model_dir import CLASSIFICATION, REGRESSION
from mobilebert import cli
from mobilebert import text_encoding

SPLITS = ("train", "dev", "test")
# What a task predicts: one of its labels, or a real number (regression; tasks/regression.py).
TASK_TYPES = (CLASSIFICATION, REGRESSION)

# Values that, found in the label column of a file's first row, mark that row as a header. Anything else
# that is not a valid label stays a bad row: a header must not hide a corrupt first example.
HEADER_LABEL_NAMES = frozenset({
    "label", "labels", "gold_label", "y", "target", "class", "category", "tag", "sentiment", "类别",
    "标签", "score", "similarity", "相似度",
})

_MAX_LOGGED_BAD_ROWS = 5


class InputExample(NamedTuple):
  """One example: `text_b` is None for single-sentence tasks, `label` None where a file has no labels."""
  guid: str
  text_a: str
  text_b: Optional[str] = None
  label: Optional[str] = None


class DataFileError(cli.DataError):
  """A task's data file is missing, unreadable, or not in the expected format."""


class BadRowError(DataFileError):
  """A row that cannot become an example; the message names the file and the 1-based line."""


class RowError(ValueError):
  """Raised by a task's row parser; the reader adds the file and line."""


class ReadStats(NamedTuple):
  """What reading one split did: `bad` rows were skipped (--skip_bad_rows), `skipped` rows are ones the
  format says to leave out (other languages in XNLI, OCNLI's `-` labels)."""
  path: str
  examples: int
  bad: int
  skipped: int


def iter_lines(path, encoding=text_encoding.DEFAULT):
  """Yields (1-based line number, text) for the non-blank lines of a text file (any tf.io.gfile path)
  in `encoding` (mobilebert/text_encoding.py: split on "\\n" only, a byte-order mark dropped)."""
  if not tf.io.gfile.exists(path):
    raise DataFileError(f"data file not found: {path}")
  for line_no, text in text_encoding.iter_lines(path, encoding, BadRowError):
    if text.strip():
      yield line_no, text


def parse_json_row(text):
  """One JSON-lines row as a dict, or RowError."""
  try:
    row = json.loads(text)
  except json.JSONDecodeError as e:
    raise RowError(f"not valid JSON ({e.msg} at column {e.colno})") from None
  if not isinstance(row, dict):
    raise RowError(f"expected a JSON object, found {type(row).__name__}")
  return row


def looks_like_header(fields, label_index):
  """True if a first row is a header: its label column holds a column name such as `label`."""
  if label_index is None or not -len(fields) <= label_index < len(fields):
    return False
  return fields[label_index].strip().lower() in HEADER_LABEL_NAMES


def find_data_file(data_dir, candidates, task_name, split):
  """The first of `candidates` (paths relative to data_dir) that exists, else a DataFileError."""
  for name in candidates:
    path = os.path.join(data_dir, name)
    if tf.io.gfile.exists(path):
      return path
  raise DataFileError(
      f"task '{task_name}': no {split} file in {data_dir} (looked for {', '.join(candidates)})")


class ClassificationTask:
  """Base class: subclasses set `name`, `is_pair`, `split_files` and implement `labels` and `_rows`.

  `_rows(path, split, require_labels)` yields (line_no, InputExample | None | RowError); None means a row
  the format says to skip. Labels are checked here so each task only extracts fields.
  """
  name = ""
  task_type = CLASSIFICATION
  is_pair = False
  split_files = {}  # split -> candidate file names relative to data_dir, first existing one wins
  label_aliases = {}  # spelling in the files -> label (XNLI's `contradictory`)
  encoding = text_encoding.DEFAULT  # of the data files (--input_encoding; create_task sets it)

  def __init__(self, data_dir, skip_bad_rows=False):
    self.data_dir = data_dir
    self.skip_bad_rows = skip_bad_rows
    self.read_stats = {}

  @property
  def labels(self):
    """The label strings in model output order."""
    raise NotImplementedError

  def label_display_names(self):
    """label -> human-readable name for prediction files (e.g. TNEWS codes); default the labels."""
    return {label: label for label in self.labels}

  def scorer(self):
    """A fresh scorer: accuracy and loss, plus macro-F1 for sentence-pair tasks."""
    return ClassificationScorer(self.labels, report_macro_f1=self.is_pair)

  def data_file(self, split):
    if split not in self.split_files:
      raise DataFileError(f"task '{self.name}' has no '{split}' split (it has {sorted(self.split_files)})")
    return find_data_file(self.data_dir, self.split_files[split], self.name, split)

  def signature(self):
    """Everything besides the data file's bytes that changes the examples (for feature-cache keys)."""
    signature = {"task": self.name, "labels": list(self.labels), "skip_bad_rows": self.skip_bad_rows,
                 "class": type(self).__name__}
    if self.encoding != text_encoding.DEFAULT:  # keys of UTF-8 data stay as they were
      signature["encoding"] = self.encoding
    return signature

  def get_examples(self, split, require_labels=True):
    """Reads one split completely.

    Args:
      split: "train", "dev" or "test".
      require_labels: False for prediction: rows without a label are kept with label None.
    Returns:
      list of InputExample, in file order.
    """
    path = self.data_file(split)
    label_set = set(self.labels)
    examples, bad, skipped = [], 0, 0
    for line_no, item in self._rows(path, split, require_labels):
      try:
        if isinstance(item, RowError):
          raise item
        if item is None:
          skipped += 1
          continue
        if item.label is not None:
          item = item._replace(label=self.checked_label(item.label, label_set, require_labels))
        elif require_labels:
          raise RowError("row has no label")
        examples.append(item)
      except RowError as e:
        where = f"{path}:{line_no}"
        if not self.skip_bad_rows:
          raise BadRowError(f"{where}: {e} (pass --skip_bad_rows to skip and count such rows)") from None
        bad += 1
        if bad <= _MAX_LOGGED_BAD_ROWS:
          logging.warning("skipping bad row %s: %s", where, e)
    if bad:
      logging.warning("%s: skipped %d bad row(s) (--skip_bad_rows)", path, bad)
    self.read_stats[split] = ReadStats(path, len(examples), bad, skipped)
    return examples

  def checked_label(self, label, label_set, require_labels):
    """The label a row gives, as the task stores it; None for an unknown one in prediction, else RowError."""
    label = self.label_aliases.get(label, label)
    if label not in label_set:
      if require_labels:
        raise RowError(f"unknown label {label!r} (expected one of {sorted(label_set)})")
      return None  # prediction needs no label; test files often carry placeholders
    return label

  def _rows(self, path, split, require_labels):
    raise NotImplementedError
