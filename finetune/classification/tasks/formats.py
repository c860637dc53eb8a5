"""The two file formats the tasks use: delimited text (tab or comma, no quoting) and JSON lines."""

from typing import NamedTuple, Optional

from finetune.classification.tasks.base import (ClassificationTask, InputExample, RowError, iter_lines,
                                 looks_like_header, parse_json_row)


class Layout(NamedTuple):
  """Where a delimited file keeps its fields (0-based column indexes).

  header: "auto" (a first row whose label column reads like `label` is a header), "always", "never".
  num_columns: rows must have exactly this many columns; None means "as many as the header or first
    row". With `text_takes_rest` the last text column absorbs extra delimiters (comma-separated
    reviews that contain commas), so rows need at least this many.
  keep: (column, value): rows whose column differs are left out (XNLI's language column).
  """
  text_a: int
  text_b: Optional[int] = None
  label: Optional[int] = None
  num_columns: Optional[int] = None
  header: str = "auto"
  text_takes_rest: bool = False
  keep: Optional[tuple] = None


class DelimitedTask(ClassificationTask):
  """A task whose files are delimited text read without quoting (the release's `csv` with quotechar None).

  Subclasses set `layout` or override `layout_for(split, first_row, path)`.
  """
  delimiter = "\t"
  layout = None

  def layout_for(self, split, first_row, path):
    del split, first_row, path
    return self.layout

  def signature(self):
    return dict(super().signature(), delimiter=self.delimiter)

  def _rows(self, path, split, require_labels):
    layout, num_columns = None, None
    for line_no, fields in self._records(path):
      if layout is None:
        layout = self.layout_for(split, fields, path)
        is_header = layout.header == "always" or (
            layout.header == "auto" and looks_like_header(fields, layout.label))
        num_columns = layout.num_columns or len(fields)
        if is_header:
          continue
      yield line_no, self._parse(fields, layout, num_columns, f"{split}-{line_no}", require_labels)

  def _records(self, path):
    """Yields (line number, fields) per row; a format with quoting overrides this (csv_format.py)."""
    for line_no, text in iter_lines(path, self.encoding):
      yield line_no, text.split(self.delimiter)

  def _parse(self, fields, layout, num_columns, guid, require_labels):
    label_column = layout.label
    found = len(fields)
    what = "tab" if self.delimiter == "\t" else repr(self.delimiter)
    if layout.text_takes_rest:
      if found < num_columns:
        return RowError(f"expected at least {num_columns} {what}-separated columns, found {found}")
      fields = fields[:num_columns - 1] + [self.delimiter.join(fields[num_columns - 1:])]
    elif found != num_columns:
      # Test files without labels (GLUE, Qianyan) drop a trailing label column; prediction accepts that.
      unlabeled_test_row = (not require_labels and label_column == num_columns - 1
                            and found == num_columns - 1)
      if not unlabeled_test_row:
        return RowError(f"expected {num_columns} {what}-separated columns, found {found}")
      label_column = None
    if layout.keep is not None and fields[layout.keep[0]] != layout.keep[1]:
      return None
    label = fields[label_column].strip() if label_column is not None else None
    return InputExample(
        guid=guid,
        text_a=fields[layout.text_a],
        text_b=fields[layout.text_b] if layout.text_b is not None else None,
        label=label or None)


class JsonLinesTask(ClassificationTask):
  """A task whose files hold one JSON object per line (CLUE). `skip_labels` marks rows to leave out."""
  text_a_field = "sentence1"
  text_b_field = None
  label_field = "label"
  skip_labels = frozenset()

  def signature(self):
    return dict(super().signature(), fields=[self.text_a_field, self.text_b_field, self.label_field])

  def _rows(self, path, split, require_labels):
    del require_labels  # rows without a label field get label None; the base class decides
    for line_no, text in iter_lines(path, self.encoding):
      try:
        yield line_no, self._example(parse_json_row(text), split, line_no)
      except RowError as e:
        yield line_no, e

  def _example(self, row, split, line_no):
    texts = []
    for field in (self.text_a_field, self.text_b_field):
      if field is None:
        texts.append(None)
        continue
      if field not in row:
        raise RowError(f"missing field {field!r} (has {sorted(row)})")
      if not isinstance(row[field], str):
        raise RowError(f"field {field!r} is {type(row[field]).__name__}, expected a string")
      texts.append(row[field])
    label = row.get(self.label_field)
    if label is not None:
      if isinstance(label, bool) or not isinstance(label, (str, int)):
        raise RowError(f"field {self.label_field!r} is {label!r}, expected a string or integer")
      label = str(label).strip() or None
    if label in self.skip_labels:
      return None
    # CLUE test files carry the ids their submissions are keyed by.
    row_id = row.get("id", row.get("idx"))
    guid = f"{split}-{row_id}" if row_id is not None else f"{split}-{line_no}"
    return InputExample(guid=guid, text_a=texts[0], text_b=texts[1], label=label)
