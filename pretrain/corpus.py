"""Reading the raw text: one sentence per line, a blank line between documents (BERT's format).

Text is UTF-8 unless --input_encoding says otherwise (gbk, gb18030, big5, utf-16, ...). Lines that do
not decode are reported with their file and line number and skipped, up to --max_invalid_line_fraction
of a file's lines; beyond that the file is in another encoding (or is not text) and the run stops,
naming the file and the count. A file with NUL bytes is binary (unless the encoding is UTF-16/32) and is
refused. Documents are kept as lists of sentence strings: tokenization and word segmentation happen
later, in parallel.
"""

import collections

import tensorflow.compat.v1 as tf
from absl import logging

from mobilebert import cli
from mobilebert import text_encoding

# Report this many undecodable lines per file one by one, then only count them.
_MAX_REPORTED_BAD_LINES = 20

Corpus = collections.namedtuple("Corpus", ["documents", "num_sentences", "num_invalid_lines", "files"])


class CorpusError(cli.DataError):
  """Input text that yields nothing to train on, or that is not text in the expected encoding."""


def read_documents(paths, encoding="utf-8", max_invalid_fraction=1.0):
  """Reads every file in `paths` (in order) into one list of documents.

  Returns:
    Corpus: `documents` is a list of documents, each a non-empty list of non-empty sentence strings
    (stripped); `num_invalid_lines` counts skipped lines that did not decode.
  Raises:
    CorpusError if no file holds any text, a file is binary, or more than `max_invalid_fraction` of a
    file's lines do not decode.
  """
  documents = []
  num_invalid = 0
  for path in paths:
    file_documents, file_invalid = _read_file(path, encoding, max_invalid_fraction)
    documents.extend(file_documents)
    num_invalid += file_invalid
  if not documents:
    shown = ", ".join(paths[:3]) + (" ..." if len(paths) > 3 else "")
    raise CorpusError(f"--input_file: no documents in {shown} (empty files, or blank lines only"
                      + (f"; {num_invalid} line(s) were not {encoding}" if num_invalid else "") + ")")
  if num_invalid:
    logging.warning("skipped %d line(s) that were not valid %s in total", num_invalid, encoding)
  num_sentences = sum(len(d) for d in documents)
  return Corpus(documents, num_sentences, num_invalid, list(paths))


def _decoded_lines(path, raw, encoding):
  """Yields (line number, text or None if the line does not decode, reason)."""
  if not text_encoding.ascii_compatible(encoding):
    try:
      text = raw.decode(encoding)
    except UnicodeDecodeError as e:
      raise CorpusError(f"--input_file: {path} is not valid {encoding} (byte {e.start}: {e.reason})")
    for number, line in enumerate(text.split("\n"), start=1):
      yield number, line, None
    return
  for number, raw_line in enumerate(raw.split(b"\n"), start=1):
    try:
      yield number, raw_line.decode(encoding), None
    except UnicodeDecodeError as e:
      yield number, None, e.reason


def _read_file(path, encoding, max_invalid_fraction):
  """The documents of one file and its number of undecodable lines."""
  with tf.io.gfile.GFile(path, "rb") as f:
    raw = f.read()
  nul = raw.find(b"\0") if text_encoding.ascii_compatible(encoding) else -1
  if nul >= 0:
    raise CorpusError(f"--input_file: {path} is a binary file (NUL byte at offset {nul}), not text")
  documents = [[]]
  num_invalid = num_lines = 0
  for line_number, line, reason in _decoded_lines(path, raw, encoding):
    if line is None or line.strip():
      num_lines += 1  # lines with text, the denominator of the share that does not decode
    if line is None:
      num_invalid += 1
      if num_invalid <= _MAX_REPORTED_BAD_LINES:
        logging.warning("%s:%d: not valid %s (%s); line skipped", path, line_number, encoding, reason)
      elif num_invalid == _MAX_REPORTED_BAD_LINES + 1:
        logging.warning("%s: more lines that are not %s; counting them without reporting each", path,
                        encoding)
      continue
    if line_number == 1:
      line = line.lstrip("\ufeff")  # a byte-order mark is not text
    line = line.strip()
    if line:
      documents[-1].append(line)
    elif documents[-1]:
      documents.append([])
  if num_invalid > max_invalid_fraction * num_lines:
    raise CorpusError(
        f"--input_file: {path}: {num_invalid} of {num_lines} text lines are not valid {encoding} (more than "
        f"--max_invalid_line_fraction={max_invalid_fraction}). Another encoding? Read it with "
        "--input_encoding (e.g. gbk, gb18030, big5). No output was written.")
  if num_invalid > _MAX_REPORTED_BAD_LINES:
    logging.warning("%s: %d line(s) not valid %s, skipped", path, num_invalid, encoding)
  return [d for d in documents if d], num_invalid
