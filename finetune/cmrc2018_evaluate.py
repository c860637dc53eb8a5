# coding=utf-8
"""CMRC 2018 span-extraction metric: EM and F1 as the official evaluation script scores them.

    python cmrc2018_evaluate.py DATASET.json PREDICTIONS.json [OUTPUT.json] [--verbose]

DATASET.json is SQuAD-style (`data[].paragraphs[].qas[].{id, answers[].text}`); PREDICTIONS.json maps
question id to predicted text. Prints (and writes to OUTPUT.json when given)
`{"AVERAGE", "F1", "EM", "TOTAL", "SKIP"}`, scores as percentage strings with 3 decimals.

An independent implementation of the official rules, standard library only (the official script needs
NLTK and its punkt download for `word_tokenize`; here the Treebank word split is re-implemented):
- both texts are lower-cased and stripped;
- EM: every character of PUNCTUATION is removed from both, then exact string equality;
- F1 tokens: characters are scanned; punctuation is dropped without ending the current run, a character
  in U+4E00..U+9FA5 ends the run and is a token by itself, any other character joins the run; each run is
  split into words as NLTK's Treebank word tokenizer splits English. F1 comes from the longest common
  *contiguous* token sequence;
- EM and F1 take the max over a question's answers; questions without a prediction score 0 and are
  counted in SKIP.
A dataset or predictions file it cannot score is one line naming the file, the question and the field
(`cmrc2018_evaluate: error: ...`, exit 2; --verbose adds the traceback).
"""

import collections
import json
import os
import re
import sys

if not __package__:  # run as a script: make the checkout's packages importable
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from mobilebert import cli  # pylint: disable=wrong-import-position

# The official punctuation list. `……` is one two-character entry: since text is scanned one character
# at a time it never matches, so a lone `…` survives. `‘` and ASCII . , ? ! " ( ) are not in the list.
PUNCTUATION = frozenset([
    "-", ":", "_", "*", "^", "/", "\\", "~", "`", "+", "=",
    "，", "。", "：", "？", "！", "“", "”", "；", "’", "《", "》", "……", "·", "、",
    "「", "」", "（", "）", "－", "～", "『", "』",
])
CJK_FIRST, CJK_LAST = 0x4E00, 0x9FA5

EvalResult = collections.namedtuple("EvalResult", ["f1", "em", "total", "skip"])


class MetricInputError(cli.DataError):
  """A dataset or predictions file the metric cannot score; the message names the file and question."""


def normalize(text):
  """Lower-cases and strips `text` (non-strings, such as numbers, are first turned into strings)."""
  return str(text).lower().strip()


def remove_punctuation(text):
  """The normalized text without any character of PUNCTUATION (what EM compares)."""
  return "".join(ch for ch in normalize(text) if ch not in PUNCTUATION)


# --- English word split: the Penn Treebank conventions as NLTK's word tokenizer applies them to one
# sentence. Each step is (pattern, replacement) applied with re.sub in order; spaces mark token edges.
_CLOSERS = "\\]\\)}>\"'"
_STEPS_OPENING_QUOTES = [
    (r"([«“‘„]|[`]+)", r" \1 "),
    (r'^"', r"``"),
    (r"(``)", r" \1 "),
    (r"([ \(\[{<])(\"|\'{2})", r"\1 `` "),
    # A single quote opening a word, unless it starts a clitic ('re, 've, 's, ...).
    (r"(?i)(?<!\w)(')(?!(?:re|ve|ll|m|t|s|d|n)\b)(?=\w)", r"\1 "),
]
_STEPS_PUNCTUATION = [
    # A sentence-final period, with any closing brackets/quotes after it, is split off (spaced twice:
    # before the period and after the closers).
    (r"([^\.])(\.)([" + _CLOSERS + r"»”’ ]*+)\s*$", r"\1 \2 \3 "),
    (r"([:,])([^\d])", r" \1 \2"),      # , and : split unless a digit follows (3,000 and 10:30 stay)
    (r"([:,])$", r" \1 "),
    (r"\.{2,}", r" \g<0> "),            # ellipses made of periods
    (r"[;@#$%&]", r" \g<0> "),
    (r"[\u2012-\u2015]", r" \g<0> "),   # figure, en and em dashes, horizontal bar
    (r"([^\.])(\.)([" + _CLOSERS + r"]*)\s*$", r"\1 \2\3 "),
    (r"[?!]", r" \g<0> "),
    (r"([^'])' ", r"\1 ' "),
    (r"[*]", r" \g<0> "),
    (r"[\]\[\(\)\{\}\<\>]", r" \g<0> "),  # brackets of every kind
    (r"--", r" -- "),
]
_STEPS_CLOSING_QUOTES = [
    (r"([»”’])", r" \1 "),
    (r"''", r" '' "),
    (r'"', r" '' "),
    (r"\s+", r" "),
    (r"([^' ])('[sS]|'[mM]|'[dD]|') ", r"\1 \2 "),
    (r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", r"\1 \2 "),
]
# Words the Treebank conventions treat as two (cannot -> can not, gonna -> gon na, 'tis -> 't is).
_SPLIT_WORDS = [
    r"(?i)\b(can)(not)\b", r"(?i)\b(d)('ye)\b", r"(?i)\b(gim)(me)\b", r"(?i)\b(gon)(na)\b",
    r"(?i)\b(got)(ta)\b", r"(?i)\b(lem)(me)\b", r"(?i)\b(more)('n)\b", r"(?i)\b(wan)(na)(?=\s)",
    r"(?i) ('t)(is)\b", r"(?i) ('t)(was)\b",
]
_BEFORE_PADDING = [(re.compile(p), r) for p, r in _STEPS_OPENING_QUOTES + _STEPS_PUNCTUATION]
_AFTER_PADDING = ([(re.compile(p), r) for p, r in _STEPS_CLOSING_QUOTES] +
                  [(re.compile(p), r" \1 \2 ") for p in _SPLIT_WORDS])


def split_english(text):
  """Splits a run of non-Chinese text into words (`"it's 3,000."` -> `it 's 3,000 .`)."""
  for pattern, replacement in _BEFORE_PADDING:
    text = pattern.sub(replacement, text)
  # The closing-quote and clitic rules look for a space on both sides of a token.
  text = " " + text + " "
  for pattern, replacement in _AFTER_PADDING:
    text = pattern.sub(replacement, text)
  return text.split()


def is_scored_chinese(ch):
  """True for the characters the metric makes single tokens: CJK Unified Ideographs U+4E00..U+9FA5."""
  return CJK_FIRST <= ord(ch) <= CJK_LAST


def segment(text):
  """F1 tokens of `text`: Chinese characters one by one, other runs split as English, no punctuation."""
  tokens = []
  run = []

  def flush():
    if run:
      tokens.extend(split_english("".join(run)))
      del run[:]

  for ch in normalize(text):
    if ch in PUNCTUATION:
      continue  # dropped without ending the run: "a-b" is the word "ab"
    if is_scored_chinese(ch):
      flush()
      tokens.append(ch)
    else:
      run.append(ch)
  flush()
  return tokens


def longest_common_run(a, b):
  """Length of the longest contiguous sequence that occurs in both token lists."""
  best = 0
  previous = [0] * (len(b) + 1)
  for x in a:
    current = [0] * (len(b) + 1)
    for j, y in enumerate(b):
      if x == y:
        current[j + 1] = previous[j] + 1
        best = max(best, current[j + 1])
    previous = current
  return best


def f1_score(answers, prediction):
  """Best token F1 (0..1) of `prediction` against any of `answers`."""
  pred_tokens = segment(prediction)
  best = 0.0
  for answer in answers:
    answer_tokens = segment(answer)
    common = longest_common_run(answer_tokens, pred_tokens)
    if common == 0:
      continue
    precision = common / len(pred_tokens)
    recall = common / len(answer_tokens)
    best = max(best, 2 * precision * recall / (precision + recall))
  return best


def exact_match(answers, prediction):
  """1.0 if `prediction` equals one of `answers` once normalized and stripped of punctuation."""
  pred = remove_punctuation(prediction)
  return float(any(remove_punctuation(answer) == pred for answer in answers))


def _list_field(obj, key, where):
  value = obj.get(key) if isinstance(obj, dict) else None
  if not isinstance(value, list):
    raise MetricInputError(f"{where}: expected field '{key}' (a list)")
  return value


def gold_answers(dataset, source="the dataset"):
  """[(question id, [answer texts])] of a SQuAD-style dict, in file order.

  Raises MetricInputError naming `source`, the question (position and id) and the missing field.
  """
  questions = []
  for a, article in enumerate(_list_field(dataset, "data", source)):
    for p, paragraph in enumerate(_list_field(article, "paragraphs", f"{source}: data[{a}]")):
      for q, qa in enumerate(_list_field(paragraph, "qas", f"{source}: data[{a}].paragraphs[{p}]")):
        where = f"{source}: data[{a}].paragraphs[{p}].qas[{q}]"
        if not isinstance(qa, dict) or "id" not in qa:
          raise MetricInputError(f"{where}: expected field 'id'")
        qas_id = str(qa["id"]).strip()
        where = f"{where} (id {qas_id!r})"
        answers = _list_field(qa, "answers", where)
        for k, answer in enumerate(answers):
          if not isinstance(answer, dict) or "text" not in answer:
            raise MetricInputError(f"{where}.answers[{k}]: expected field 'text'")
        questions.append((qas_id, [answer["text"] for answer in answers]))
  if not questions:
    raise MetricInputError(f"{source}: the dataset has no questions (expected "
                           "data[].paragraphs[].qas[])")
  return questions


def check_predictions(predictions, source="the predictions"):
  """Raises MetricInputError unless `predictions` is {question id: answer text}."""
  if not isinstance(predictions, dict):
    raise MetricInputError(f"{source}: expected a JSON object {{id: text}}, got a "
                           f"{type(predictions).__name__}")
  for qas_id, text in predictions.items():
    if not isinstance(text, (str, int, float)) or isinstance(text, bool):
      raise MetricInputError(f"{source}: the prediction for question {qas_id!r} is a "
                             f"{type(text).__name__}; expected the answer text")


def evaluate(dataset, predictions, source="the dataset"):
  """Scores `predictions` ({id: text}) on a SQuAD-style `dataset` dict; percentages in an EvalResult."""
  f1 = em = 0.0
  skip = 0
  questions = gold_answers(dataset, source)
  for qas_id, answers in questions:
    if qas_id not in predictions:
      sys.stderr.write("Unanswered question: %s\n" % qas_id)
      skip += 1
      continue
    prediction = str(predictions[qas_id])
    f1 += f1_score(answers, prediction)
    em += exact_match(answers, prediction)
  total = len(questions)
  return EvalResult(f1=100.0 * f1 / total, em=100.0 * em / total, total=total, skip=skip)


def result_to_dict(result):
  """The official output: scores as strings with 3 decimals, AVERAGE being the mean of EM and F1."""
  return collections.OrderedDict([
      ("AVERAGE", "%.3f" % ((result.em + result.f1) / 2)),
      ("F1", "%.3f" % result.f1),
      ("EM", "%.3f" % result.em),
      ("TOTAL", result.total),
      ("SKIP", result.skip),
  ])


def _read_json(path, what):
  try:
    with open(path, "rb") as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise MetricInputError(f"cannot read the {what} file {path}: {e}") from None


def _write_output(path, obj, dataset_path, predictions_path):
  """Writes OUTPUT.json atomically; never over an input, nor over a file this script did not write."""
  # Imported here: scoring needs the standard library only; writing goes through the project's one
  # safe-output module.
  from mobilebert import atomic_io  # pylint: disable=g-import-not-at-top
  atomic_io.check_spares_inputs({"OUTPUT.json": path},
                                {"DATASET.json": dataset_path, "PREDICTIONS.json": predictions_path})
  atomic_io.write_text(path, json.dumps(obj), "finetune.cmrc2018_evaluate", True, "OUTPUT.json")


def main(argv):
  verbose = cli.VERBOSE_FLAG in argv
  args = [arg for arg in argv[1:] if arg != cli.VERBOSE_FLAG]
  if len(args) not in (2, 3):
    sys.stderr.write("usage: %s DATASET.json PREDICTIONS.json [OUTPUT.json] [%s]\n"
                     % (argv[0], cli.VERBOSE_FLAG))
    return cli.EXIT_USER_ERROR
  with cli.reporting_user_errors("cmrc2018_evaluate", verbose):
    dataset = _read_json(args[0], "dataset")
    predictions = _read_json(args[1], "predictions")
    check_predictions(predictions, args[1])
    output = result_to_dict(evaluate(dataset, predictions, args[0]))
    print(json.dumps(output))
    if len(args) == 3:
      _write_output(args[2], output, args[0], args[1])
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
