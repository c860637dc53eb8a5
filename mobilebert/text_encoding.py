"""Text files in the user's encoding: UTF-8 unless --input_encoding names another codec Python knows
(gbk, gb18030, big5, utf-16, ...), for the pretraining corpus and the fine-tuning data alike.

A byte-order mark at the start of a file is not text. Lines are split on "\\n" only, so a stray "\\r"
or U+2028 inside a field cannot shift later rows. Text that does not decode is an error naming the
file, the 1-based line and the encoding, with the flag that reads other encodings.
"""

import codecs

import tensorflow.compat.v1 as tf

DEFAULT = "utf-8"
FLAG_HINT = "--input_encoding reads other encodings (e.g. gbk, gb18030, big5)"


def known(name):
  """True if Python has a codec called `name`."""
  try:
    codecs.lookup(name)
  except LookupError:
    return False
  return True


def ascii_compatible(encoding):
  """True for encodings (UTF-8, GBK, Big5, ...) that never use the byte of "\\n" inside a character:
  a file can be split into lines before decoding, and one bad line does not spoil the others."""
  return "\n".encode(encoding) == b"\n"


def not_text(path, line_no, encoding, reason):
  """The one-line message for text of `path` that does not decode."""
  return f"{path}:{line_no}: not {encoding} text ({reason}); {FLAG_HINT}"


def read_text(path, encoding, error):
  """The whole text of `path`; raises error(not_text(...)) naming the line of the first bad byte."""
  with tf.io.gfile.GFile(path, "rb") as f:
    raw = f.read()
  try:
    text = raw.decode(encoding)
  except UnicodeDecodeError as e:
    line_no = raw.count(b"\n", 0, e.start) + 1
    raise error(not_text(path, line_no, encoding, f"{e.reason} at byte {e.start}")) from None
  return text.lstrip("\ufeff")


def iter_lines(path, encoding, error):
  """Yields (1-based line number, text without its line end) for every line of `path`, streaming
  for ASCII-compatible encodings; raises error(not_text(...)) at the first line that does not decode."""
  if not ascii_compatible(encoding):
    for line_no, text in enumerate(read_text(path, encoding, error).split("\n"), start=1):
      yield line_no, text.rstrip("\r")
    return
  with tf.io.gfile.GFile(path, "rb") as reader:
    line_no = 0
    while True:
      raw = reader.readline()
      if not raw:
        break
      line_no += 1
      try:
        text = raw.decode(encoding)
      except UnicodeDecodeError as e:
        raise error(not_text(path, line_no, encoding, e.reason)) from None
      if line_no == 1:
        text = text.lstrip("\ufeff")
      yield line_no, text.rstrip("\n").rstrip("\r")
