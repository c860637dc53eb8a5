"""Users' tagging files: CoNLL-style (`char tag` a line, a blank line between sentences) and JSON lines
(`{"text": ..., "entities": [{"start": 0, "end": 2, "label": "PER"}, ...]}`, end exclusive).

Reading is strict: a bad tag, a span out of range or overlapping another, a line that is not
`token tag` stops with the file and 1-based line. One policy is lenient, as conlleval and seqeval are:
an `I-X` that follows `O` or an entity of another type opens a new entity (it is counted and logged,
not an error), so a file scores the same here as under conlleval.
"""

import json

import tensorflow.compat.v1 as tf
from absl import logging

from finetune.tagging import entities as entities_lib
from finetune.tagging.entities import Entity, TaggedSentence
from mobilebert import atomic_io, cli, text_encoding

FORMATS = ("conll", "jsonl")
ENTITIES_KEY = "entities"


class TaggingFileError(cli.DataError):
  """A tagging file that is missing or not in its format; the message names the file and line."""


def _lines(path, encoding):
  """(1-based line number, text without the line end) of a text file in `encoding`
  (mobilebert/text_encoding.py); a leading BOM is dropped."""
  if not tf.io.gfile.exists(path):
    raise TaggingFileError(f"data file not found: {path}")
  return text_encoding.iter_lines(path, encoding, TaggingFileError)


def _sentence(guid, tokens, entities):
  units, offset = [], 0
  for token in tokens:
    units.append((offset, offset + len(token)))
    offset += len(token)
  text = "".join(tokens)
  if entities is None:
    return TaggedSentence(guid, text, tuple(units), None)
  spans = tuple(Entity(units[e.start][0], units[e.end - 1][1], e.label) for e in entities)
  return TaggedSentence(guid, text, tuple(units), spans)


def read_conll(path, require_labels=True, encoding=text_encoding.DEFAULT):
  """TaggedSentences of a CoNLL-style file; units are its tokens (usually characters); a sentence's
  guid is `line N`, the line it starts on.

  A line is `token tag` (whitespace between; extra middle columns are ignored, the tag is last), or
  `token` alone in a file without labels (allowed when require_labels is False). `-DOCSTART-` lines
  are skipped.
  """
  sentences, tokens, tags, first_line = [], [], [], None
  labelled, restarts, start_line = None, 0, None

  def finish():
    nonlocal restarts
    if not tokens:
      return
    entities = None
    if labelled:
      entities = entities_lib.chunks(tags)
      restarts += sum(1 for i, tag in enumerate(tags) if tag.startswith("I-") and
                      (i == 0 or tags[i - 1] == entities_lib.OUTSIDE or tags[i - 1][2:] != tag[2:]))
    sentences.append(_sentence(f"line {start_line}", list(tokens), entities))
    tokens.clear()
    tags.clear()

  for number, line in _lines(path, encoding):
    fields = line.split()
    if not fields:
      finish()
      continue
    if fields[0] == "-DOCSTART-":
      continue
    if not tokens:
      start_line = number
    has_tag = len(fields) >= 2
    if labelled is None:
      labelled, first_line = has_tag, number
    if has_tag != labelled:
      raise TaggingFileError(f"{path}:{number}: expected `token tag` or `token` alone on every line "
                             f"like line {first_line}, found {line!r}")
    if has_tag:
      try:
        entities_lib.parse_tag(fields[-1])
      except ValueError as e:
        raise TaggingFileError(f"{path}:{number}: {e}") from None
      tags.append(fields[-1])
    tokens.append(fields[0])
  finish()
  if require_labels and labelled is False:
    raise TaggingFileError(f"{path}:{first_line}: no tag column (expected `token tag` lines)")
  if restarts:
    logging.warning("%s: %d I- tag(s) after O or another type open a new entity (conlleval's rule)",
                    path, restarts)
  return sentences


def _json_entities(row, text, where):
  spans = row[ENTITIES_KEY]
  if not isinstance(spans, list):
    raise TaggingFileError(f"{where}: `{ENTITIES_KEY}` must be a list of "
                           '{"start", "end", "label"} objects')
  found = []
  for span in spans:
    if not isinstance(span, dict) or not {"start", "end", "label"} <= set(span):
      raise TaggingFileError(f'{where}: entity {span!r} lacks "start", "end" or "label"')
    start, end, label = span["start"], span["end"], span["label"]
    if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
      raise TaggingFileError(f"{where}: entity {span!r} is out of range: need integers 0 <= start < "
                             f"end <= {len(text)} (the text's length; end is exclusive)")
    if not isinstance(label, str) or not label or "-" in label or label.strip() != label:
      raise TaggingFileError(f"{where}: entity label {label!r} must be a non-empty name without '-' "
                             "or spaces")
    found.append(Entity(start, end, label))
  clash = entities_lib.overlapping(found)
  if clash:
    raise TaggingFileError(f"{where}: entities {clash[0]._asdict()} and {clash[1]._asdict()} overlap")
  return tuple(sorted(found))


def read_jsonl(path, require_labels=True, encoding=text_encoding.DEFAULT):
  """TaggedSentences of a JSON-lines file; every character of `text` is a unit; the guid is the row's
  "id" if it has one, else `line N`."""
  sentences = []
  for number, line in _lines(path, encoding):
    if not line.strip():
      continue
    where = f"{path}:{number}"
    try:
      row = json.loads(line)
    except json.JSONDecodeError as e:
      raise TaggingFileError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not row["text"]:
      raise TaggingFileError(f'{where}: expected an object with a non-empty "text" string')
    text = row["text"]
    entities = None
    if ENTITIES_KEY in row:
      entities = _json_entities(row, text, where)
    elif require_labels:
      raise TaggingFileError(f'{where}: no "{ENTITIES_KEY}" (a list, empty for no entity)')
    guid = str(row["id"]) if "id" in row else f"line {number}"
    sentences.append(TaggedSentence(guid, text, tuple((i, i + 1) for i in range(len(text))), entities))
  return sentences


READERS = {"conll": read_conll, "jsonl": read_jsonl}


def read_sentences(path, data_format, require_labels=True, encoding=text_encoding.DEFAULT):
  if data_format not in READERS:
    raise cli.FlagError(f"--data_format={data_format}: expected one of {', '.join(FORMATS)}")
  return READERS[data_format](path, require_labels, encoding)


def format_conll(sentences):
  """CoNLL text of labelled sentences: `unit tag` lines, a blank line after each sentence."""
  blocks = []
  for sentence in sentences:
    unit_entities = entities_lib.char_to_unit_entities(sentence)
    tags = entities_lib.unit_tags(len(sentence.units), unit_entities)
    blocks.append("".join(f"{sentence.text[s:e]} {tag}\n" for (s, e), tag in zip(sentence.units, tags)))
  return "\n".join(blocks)


def write_conll(path, sentences, tool=None, overwrite=True, flag="output"):
  """Writes labelled sentences as CoNLL, atomically."""
  atomic_io.write_text(path, format_conll(sentences), tool, overwrite, flag)
