"""Comma-separated files with quoting (RFC 4180, as spreadsheets and pandas write them) for the generic task.

A field in double quotes may hold commas, newlines and doubled quotes (`""`); one record can then span
several lines, and errors name the line the record starts on. Unlike the weibo/shopping readers (the
release's unquoted `label,review` files, tasks/chinese.py), a quote here is syntax, not text.
"""

import csv
import io

import tensorflow.compat.v1 as tf

from finetune.classification.tasks.base import BadRowError, DataFileError
from mobilebert import text_encoding


def iter_csv_records(path, encoding=text_encoding.DEFAULT):
  """Yields (line number where the record starts, list of fields) for the non-blank records of a CSV file.

  Raises BadRowError naming the file and line for a quote that is never closed or stray text after a
  closing quote.
  """
  if not tf.io.gfile.exists(path):
    raise DataFileError(f"data file not found: {path}")
  text = text_encoding.read_text(path, encoding, BadRowError)
  reader = csv.reader(io.StringIO(text, newline=""), strict=True)
  next_line = 1
  while True:
    try:
      fields = next(reader)
    except StopIteration:
      return
    except csv.Error as e:
      hint = ("a quoted field is never closed" if "end of data" in str(e)
              else "a quote inside a field must be doubled (\"\") and the field quoted")
      raise BadRowError(f"{path}:{next_line}: not valid CSV in the record starting here ({e}; {hint})"
                        ) from None
    start, next_line = next_line, reader.line_num + 1
    if any(field.strip() for field in fields):
      yield start, fields
