"""A task for users' own data: tab-separated, comma-separated or JSON-lines files, single texts or pairs.

Files are `train`, `dev`, `test` with extension .tsv/.txt (tsv), .csv (csv, quoted fields allowed) or
.jsonl/.json (jsonl) in data_dir. Columns (tsv, csv) are 0-based indexes or header names; fields (jsonl)
are keys. With task_type "regression" the label column holds a number (tasks/regression.py). Labels
come from, in order: the `labels` option; the label file written next to a trained model (so prediction
keeps the training order); the distinct labels of the training file (numeric order if all are
integers, else sorted).
"""

import json
from typing import NamedTuple, Optional, Tuple

import tensorflow.compat.v1 as tf

from finetune.classification.tasks.base import (CLASSIFICATION, TASK_TYPES, ClassificationTask,
                                                DataFileError, InputExample)
from finetune.classification.tasks.csv_format import iter_csv_records
from finetune.classification.tasks.formats import DelimitedTask, JsonLinesTask, Layout
from mobilebert import cli

EXTENSIONS = {"tsv": (".tsv", ".txt"), "csv": (".csv",), "jsonl": (".jsonl", ".json")}


class GenericOptions(NamedTuple):
  """How to read the user's files (each field is a run_classifier flag of the same name)."""
  data_format: str = "tsv"  # "tsv", "csv" or "jsonl"
  text_a_column: str = "text_a"
  text_b_column: str = ""  # empty: single-sentence task
  label_column: str = "label"
  has_header: str = "auto"  # "auto", "true", "false" (tsv and csv)
  labels: Tuple[str, ...] = ()  # explicit label order; empty: from label_file or the training file
  label_file: Optional[str] = None  # label list written beside a trained model (JSON)
  task_type: str = CLASSIFICATION  # or REGRESSION: the label column holds a number


def read_label_file(path):
  """The `labels` list of a label file written by the classifier runner, or None if absent."""
  if not path or not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path, "r") as f:
    try:
      labels = json.loads(f.read())["labels"]
    except (ValueError, KeyError, TypeError) as e:
      raise DataFileError(f"{path}: expected JSON with a 'labels' list ({e})") from None
  return [str(label) for label in labels]


def _sorted_labels(labels):
  if all(label.lstrip("-").isdigit() for label in labels):
    return sorted(labels, key=int)
  return sorted(labels)


class GenericTask(ClassificationTask):
  """The user's own classification data, described by GenericOptions."""
  name = "generic"

  def __init__(self, data_dir, skip_bad_rows=False, options=GenericOptions()):
    super().__init__(data_dir, skip_bad_rows)
    if options.data_format not in EXTENSIONS:
      raise cli.FlagError(f"--data_format must be one of {sorted(EXTENSIONS)}, got {options.data_format!r}")
    if options.has_header not in ("auto", "true", "false"):
      raise cli.FlagError(f"--has_header must be auto, true or false, got {options.has_header!r}")
    if options.task_type not in TASK_TYPES:
      raise cli.FlagError(f"--task_type must be one of {list(TASK_TYPES)}, got {options.task_type!r}")
    if not options.text_a_column or not options.label_column:
      raise cli.FlagError("--text_a_column and --label_column must name a column")
    self.options = options
    self.is_pair = bool(options.text_b_column)
    self.split_files = {split: tuple(split + ext for ext in EXTENSIONS[options.data_format])
                        for split in ("train", "dev", "test")}
    self._labels = None
    reader_class = {"tsv": _TsvReader, "csv": _CsvReader, "jsonl": _JsonReader}[options.data_format]
    self._reader = reader_class(self)

  @property
  def labels(self):
    if self._labels is None:
      self._labels = self._resolve_labels()
    return list(self._labels)

  def _resolve_labels(self):
    if self.options.labels:
      labels = [str(label) for label in self.options.labels]
      if len(set(labels)) != len(labels):
        raise cli.FlagError(f"--labels has duplicates: {labels}")
      return labels
    saved = read_label_file(self.options.label_file)
    if saved is not None:
      return saved
    found = set()
    for _, item in self._reader.rows(self.data_file("train"), "train"):
      if isinstance(item, InputExample) and item.label is not None:
        found.add(item.label)
    if len(found) < 2:
      raise DataFileError(f"{self.data_file('train')}: found {len(found)} distinct label(s) in the "
                          f"label column {self.options.label_column!r}; a classifier needs at least 2")
    return _sorted_labels(found)

  def signature(self):
    options = self.options._replace(labels=tuple(self.labels), label_file=None)
    return dict(super().signature(), options=options._asdict())

  def _rows(self, path, split, require_labels):
    del require_labels
    return self._reader.rows(path, split)


class _ReadsForTask:
  """A reader of the generic task's files, made by the task: it reads its data directory and, in the
  task's encoding, which create_task sets after the task (and so its reader) was made; `rows` are
  all of a file's rows, labelled or not (the task decides)."""

  def __init__(self, task):
    super().__init__(task.data_dir, task.skip_bad_rows)
    self._task = task

  @property
  def encoding(self):
    return self._task.encoding

  def rows(self, path, split):
    return super()._rows(path, split, require_labels=False)


class _TsvReader(_ReadsForTask, DelimitedTask):
  """Reads the generic task's tab-separated files; names in the column options need a header row."""

  def __init__(self, task):
    super().__init__(task)
    self.options = task.options

  def layout_for(self, split, first_row, path):
    options = self.options
    columns = [options.text_a_column, options.text_b_column or None, options.label_column]
    named = [c for c in columns if c is not None and not c.isdigit()]
    if named:
      if options.has_header == "false":
        raise DataFileError(f"{path}: columns {named} are names but --has_header=false; "
                            "give 0-based column indexes instead")
      # A test file may leave out the label column; the texts must be there.
      missing = [c for c in named if c not in first_row and c != options.label_column]
      if missing:
        raise DataFileError(f"{path}: header row {first_row} has no column(s) {missing} "
                            "(--text_a_column / --text_b_column / --label_column)")
      header = "always"
    else:
      header = {"auto": "auto", "true": "always", "false": "never"}[options.has_header]
    index = [None if c is None or (not c.isdigit() and c not in first_row)
             else int(c) if c.isdigit() else first_row.index(c) for c in columns]
    too_far = [i for i in index if i is not None and i >= len(first_row)]
    if too_far:
      raise DataFileError(f"{path}: column index {too_far[0]} is past the {len(first_row)} columns of "
                          "the first row (indexes are 0-based)")
    return Layout(text_a=index[0], text_b=index[1], label=index[2], header=header)


class _CsvReader(_TsvReader):
  """Reads the generic task's comma-separated files: quoted fields may hold commas, quotes, newlines."""
  delimiter = ","

  def _records(self, path):
    return iter_csv_records(path, self.encoding)


class _JsonReader(_ReadsForTask, JsonLinesTask):
  """Reads the generic task's JSON-lines files with the field names of the options."""

  def __init__(self, task):
    super().__init__(task)
    self.text_a_field = task.options.text_a_column
    self.text_b_field = task.options.text_b_column or None
    self.label_field = task.options.label_column

