# coding=utf-8
"""Reading SQuAD-style span-extraction data (CMRC 2018, DRCD): examples, answer checks, script conversion.

The files are `{"data": [{"paragraphs": [{"context", "qas": [{"id", "question", "answers": [{"text",
"answer_start"}]}]}]}]}`. Each question becomes a `SpanExample` whose answers are checked against the
context: an `answer_start` that does not point at the answer text is reported and the text is looked up;
it is kept if it occurs exactly once, dropped otherwise.

DRCD is traditional Chinese while the vocab and the teachers saw simplified text: with `to_simplified`
the context, question and answers are converted with OpenCC's t2s tables. The conversion keeps every
character in place (one character in, one out), so a span of the converted context is the same span of
the original, and predictions are reported in the original script.
"""

import collections
import json

import tensorflow.compat.v1 as tf
from absl import logging

from mobilebert import cli
from mobilebert import text_encoding


class SpanDataError(cli.DataError):
  """A data file that is missing or not SQuAD-style JSON."""


Answer = collections.namedtuple("Answer", ["text", "start"])
"""An answer as text of the model's context and its character offset there."""

SpanExample = collections.namedtuple(
    "SpanExample", ["qas_id", "question", "context", "answers", "original_context", "original_answers"])
"""One question on one paragraph.

qas_id: the question id. question, context: the text the model reads (simplified when converted).
answers: list of `Answer` in `context` coordinates that passed the check (may be empty).
original_context: the text as published; `original_context[i]` is `context[i]` before conversion.
original_answers: the answer texts as published (what the metric compares against).
"""

AnswerProblem = collections.namedtuple("AnswerProblem", ["qas_id", "expected", "found", "start", "fixed"])
"""An `answer_start` that does not point at its text: what the file says (expected), what is at that
offset (found), and the offset the text was found at by search (fixed; None: dropped, ambiguous or absent).
"""


class SimplifiedConverter:
  """Traditional -> simplified Chinese that keeps every character at its offset.

  OpenCC converts phrase by phrase (計畫 -> 计划 but 畫面 -> 画面), which is better than converting
  characters alone; its t2s tables map every phrase to one of the same length. Should a table entry ever
  change the length, that text is converted character by character instead, keeping any character whose
  conversion is not a single character, so the 1:1 offset map always holds.
  """

  def __init__(self):
    try:
      from opencc import OpenCC  # pylint: disable=import-outside-toplevel
    except ImportError:
      raise ImportError("--convert_traditional needs the PyPI package opencc-python-reimplemented "
                        "(see requirements.txt)") from None
    self._opencc = OpenCC("t2s")
    self._char_cache = {}

  def _convert_char(self, ch):
    if ch not in self._char_cache:
      out = self._opencc.convert(ch)
      self._char_cache[ch] = out if len(out) == 1 else ch
    return self._char_cache[ch]

  def __call__(self, text):
    out = self._opencc.convert(text)
    if len(out) != len(text):
      out = "".join(self._convert_char(ch) for ch in text)
    return out


def _identity(text):
  return text


def read_squad_json(path, encoding=text_encoding.DEFAULT):
  """The parsed JSON of a SQuAD-style file (any tf.io.gfile path) in `encoding`, its structure checked."""
  if not tf.io.gfile.exists(path):
    raise SpanDataError(f"data file not found: {path}")
  text = text_encoding.read_text(path, encoding, SpanDataError)
  try:
    dataset = json.loads(text)
  except ValueError as e:
    raise SpanDataError(f"{path}: not valid JSON ({e})") from None
  if not isinstance(dataset, dict) or not isinstance(dataset.get("data"), list):
    raise SpanDataError(f"{path}: expected a JSON object with a 'data' list (SQuAD-style)")
  return dataset


def locate_answer(context, text, start):
  """The checked offset of answer `text` said to start at `start`: `start` itself when it points at the
  text, else the one offset where the text occurs, else None (absent or ambiguous)."""
  if start is not None and context[start:start + len(text)] == text:
    return start
  first = context.find(text)
  if first < 0 or context.find(text, first + 1) >= 0:
    return None
  return first


def _field(obj, key, where, kind):
  if not isinstance(obj, dict) or key not in obj or not isinstance(obj[key], kind):
    raise SpanDataError(f"{where}: expected field '{key}' of type {kind.__name__}")
  return obj[key]


def examples_from_dataset(dataset, to_simplified=False, source="<data>", require_answers=False):
  """Builds SquadExamples from a parsed SQuAD-style dict.

  Every question needs an id unique in the file (predictions are keyed by it); with `require_answers`
  (training data) every question needs an 'answers' list. Raises SpanDataError naming the question.
  Returns (examples, problems): problems lists an `AnswerProblem` for every answer whose offset was wrong.
  Empty answer texts are dropped silently (they mark unanswerable questions in other datasets).
  """
  convert = SimplifiedConverter() if to_simplified else _identity
  examples, problems = [], []
  first_seen = {}  # question id -> where it first occurs
  for a, article in enumerate(dataset["data"]):
    for p, paragraph in enumerate(_field(article, "paragraphs", f"{source}: data[{a}]", list)):
      where = f"{source}: data[{a}].paragraphs[{p}]"
      original_context = _field(paragraph, "context", where, str)
      context = convert(original_context)
      for q, qa in enumerate(_field(paragraph, "qas", where, list)):
        qa_where = f"{where}.qas[{q}]"
        if not isinstance(qa, dict) or not isinstance(qa.get("id"), (str, int)) or not str(
            qa["id"]).strip():
          raise SpanDataError(f"{qa_where}: expected field 'id' (a non-empty string)")
        qas_id = str(qa["id"]).strip()
        if qas_id in first_seen:
          raise SpanDataError(f"{qa_where}: question id {qas_id!r} is already the id of "
                               f"{first_seen[qas_id]}; ids must be unique (predictions are keyed by id)")
        first_seen[qas_id] = qa_where.split(": ", 1)[-1]
        question = convert(_field(qa, "question", qa_where, str))
        if require_answers or "answers" in qa:
          _field(qa, "answers", f"{qa_where} (id {qas_id!r})", list)
        answers, original_answers = [], []
        for k, answer in enumerate(qa.get("answers", [])):
          text = _field(answer, "text", f"{qa_where}.answers[{k}] (id {qas_id!r})", str)
          if not text:
            continue
          original_answers.append(text)
          start = answer.get("answer_start")
          start = start if isinstance(start, int) else None
          fixed = locate_answer(original_context, text, start)
          if fixed != start:
            found = original_context[start:start + len(text)] if start is not None else None
            problems.append(AnswerProblem(qas_id, text, found, start, fixed))
          if fixed is not None:
            # The converted answer is read from the converted context: converting the answer alone
            # could pick another phrase reading than inside its sentence.
            answers.append(Answer(context[fixed:fixed + len(text)], fixed))
        examples.append(SpanExample(qas_id, question, context, answers, original_context,
                                     original_answers))
  return examples, problems


def read_examples(path, to_simplified=False, require_answers=False, encoding=text_encoding.DEFAULT):
  """Reads a SQuAD-style file into SquadExamples, logging every answer whose offset was wrong."""
  examples, problems = examples_from_dataset(read_squad_json(path, encoding), to_simplified,
                                             source=path, require_answers=require_answers)
  for problem in problems:
    logging.warning(
        "%s: question %s: answer_start %s points at %r, not at the answer %r; %s", path,
        problem.qas_id, problem.start, problem.found, problem.expected,
        f"found it at {problem.fixed}" if problem.fixed is not None else "answer skipped (not found "
        "exactly once)")
  logging.info("%s: %d questions, %d answers with a wrong offset (%d fixed)", path, len(examples),
               len(problems), sum(p.fixed is not None for p in problems))
  return examples, problems


def has_answers(examples):
  """True if any example carries a gold answer (so predictions can be scored)."""
  return any(example.original_answers for example in examples)
