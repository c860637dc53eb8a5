# coding=utf-8
"""From start/end logits to answers: n-best spans across windows, mapped back to the original text.

For each question, every window proposes the spans made of its `n_best_size` best start and end
positions; a span counts if both ends are context tokens, it starts where this window is the start
token's max-context window, ends no earlier than it starts, and is at most `max_answer_length` tokens.
Spans are ranked by start + end logit; the first `n_best_size` distinct texts form the n-best list, with
probabilities from a softmax over their scores. The answer text is the original context's characters
from the first token's start to the last token's end, so it holds the original script and spacing.
"""

import collections
import json
import math
import os

import numpy as np
import tensorflow.compat.v1 as tf

from mobilebert import atomic_io

RawResult = collections.namedtuple("RawResult", ["unique_id", "start_logits", "end_logits"])
"""Model output for one feature: logits [max_seq_length] each."""

Candidate = collections.namedtuple(
    "Candidate", ["text", "probability", "start_logit", "end_logit", "char_start", "char_end"])
"""One n-best answer: its text, softmax probability within the n-best list, logits, character span."""


def _top_indexes(logits, n):
  order = np.argsort(-np.asarray(logits), kind="stable")
  return [int(i) for i in order[:n]]


def feature_spans(feature, result, n_best_size, max_answer_length):
  """(score, start, end, start_logit, end_logit) of the valid spans a window proposes."""
  spans = []
  for start in _top_indexes(result.start_logits, n_best_size):
    if feature.char_starts[start] < 0 or not feature.is_max_context[start]:
      continue
    for end in _top_indexes(result.end_logits, n_best_size):
      if feature.char_starts[end] < 0 or end < start or end - start + 1 > max_answer_length:
        continue
      start_logit, end_logit = float(result.start_logits[start]), float(result.end_logits[end])
      spans.append((start_logit + end_logit, start, end, start_logit, end_logit))
  return spans


def _softmax(scores):
  if not scores:
    return []
  top = max(scores)
  exps = [math.exp(s - top) for s in scores]
  total = sum(exps)
  return [e / total for e in exps]


def nbest_for_example(example, features, results_by_id, n_best_size, max_answer_length):
  """The n-best Candidates of one example from its features' RawResults, best first (may be empty)."""
  proposals = []
  for feature in features:
    result = results_by_id.get(feature.unique_id)
    if result is None:
      continue
    for score, start, end, start_logit, end_logit in feature_spans(
        feature, result, n_best_size, max_answer_length):
      proposals.append((score, feature.char_starts[start], feature.char_ends[end], start_logit,
                        end_logit))
  proposals.sort(key=lambda p: -p[0])
  chosen, seen = [], set()
  for score, char_start, char_end, start_logit, end_logit in proposals:
    text = example.original_context[char_start:char_end]
    if text in seen:
      continue
    seen.add(text)
    chosen.append((score, text, start_logit, end_logit, char_start, char_end))
    if len(chosen) == n_best_size:
      break
  probabilities = _softmax([c[0] for c in chosen])
  return [Candidate(text, p, sl, el, cs, ce)
          for (_, text, sl, el, cs, ce), p in zip(chosen, probabilities)]


def make_predictions(examples, features, results, n_best_size, max_answer_length):
  """Returns (predictions {id: text}, nbest {id: [Candidate dicts]}) in example order; a question
  with no valid span is answered with the empty string."""
  by_example = collections.defaultdict(list)
  for feature in features:
    by_example[feature.example_index].append(feature)
  results_by_id = {int(r.unique_id): r for r in results}
  predictions, nbest = collections.OrderedDict(), collections.OrderedDict()
  for index, example in enumerate(examples):
    candidates = nbest_for_example(example, by_example[index], results_by_id, n_best_size,
                                   max_answer_length)
    predictions[example.qas_id] = candidates[0].text if candidates else ""
    nbest[example.qas_id] = [c._asdict() for c in candidates]
  return predictions, nbest


def write_json(path, obj):
  """Writes `obj` as UTF-8 JSON (Chinese kept readable) under a temporary name, then renames it."""
  directory = os.path.dirname(path)
  if directory:
    tf.io.gfile.makedirs(directory)
  atomic_io.write_text(path, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def write_predictions(output_dir, predictions, nbest, suffix=""):
  """Writes predictions{suffix}.json and nbest_predictions{suffix}.json to `output_dir` (suffix
  "_tflite": a TFLite model's); returns their paths."""
  paths = (os.path.join(output_dir, f"predictions{suffix}.json"),
           os.path.join(output_dir, f"nbest_predictions{suffix}.json"))
  write_json(paths[0], predictions)
  write_json(paths[1], nbest)
  return paths
