"""Reading the raw text: UTF-8, one sentence per line, a blank line between documents (BERT's format).

Lines that are not valid UTF-8 are reported with their file and line number and skipped; the count is
kept for the run summary. Documents are kept as lists of sentence strings: tokenization and word
segmentation happen later, in parallel.
"""

import collections

import tensorflow.compat.v1 as tf
from absl import logging

from mobilebert import cli

# Report this many undecodable lines per file one by one, then only count them.
_MAX_REPORTED_BAD_LINES = 20

Corpus = collections.namedtuple("Corpus", ["documents", "num_sentences", "num_invalid_lines", "files"])


class CorpusError(cli.DataError):
  """Input text that yields nothing to train on."""


def read_documents(paths):
  """Reads every file in `paths` (in order) into one list of documents.

  Returns:
    Corpus: `documents` is a list of documents, each a non-empty list of non-empty sentence strings
    (stripped); `num_invalid_lines` counts skipped lines that were not UTF-8.
  Raises:
    CorpusError if no file holds any text.
  """
  documents = []
  num_invalid = 0
  for path in paths:
    file_documents, file_invalid = _read_file(path)
    documents.extend(file_documents)
    num_invalid += file_invalid
  if not documents:
    shown = ", ".join(paths[:3]) + (" ..." if len(paths) > 3 else "")
    raise CorpusError(f"--input_file: no documents in {shown} (empty files, or blank lines only"
                      + (f"; {num_invalid} line(s) were not UTF-8" if num_invalid else "") + ")")
  if num_invalid:
    logging.warning("skipped %d line(s) that were not valid UTF-8 in total", num_invalid)
  num_sentences = sum(len(d) for d in documents)
  return Corpus(documents, num_sentences, num_invalid, list(paths))


def _read_file(path):
  """The documents of one file and its number of undecodable lines."""
  with tf.io.gfile.GFile(path, "rb") as f:
    raw = f.read()
  documents = [[]]
  num_invalid = 0
  for line_number, raw_line in enumerate(raw.split(b"\n"), start=1):
    try:
      line = raw_line.decode("utf-8")
    except UnicodeDecodeError as e:
      num_invalid += 1
      if num_invalid <= _MAX_REPORTED_BAD_LINES:
        logging.warning("%s:%d: not valid UTF-8 (%s); line skipped", path, line_number, e.reason)
      elif num_invalid == _MAX_REPORTED_BAD_LINES + 1:
        logging.warning("%s: more lines that are not UTF-8; counting them without reporting each", path)
      continue
    if line_number == 1:
      line = line.lstrip("\ufeff")  # a byte-order mark is not text
    line = line.strip()
    if line:
      documents[-1].append(line)
    elif documents[-1]:
      documents.append([])
  if num_invalid > _MAX_REPORTED_BAD_LINES:
    logging.warning("%s: %d line(s) not valid UTF-8, skipped", path, num_invalid)
  return [d for d in documents if d], num_invalid
