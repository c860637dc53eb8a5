# coding=utf-8
"""Span-extraction features: question + sliding context windows, answer positions, max-context flags.

Each example becomes one feature per window of context tokens: `[CLS] question [SEP] window [SEP]`,
segment 0 for the question part and 1 for the window, padded to max_seq_length. Windows of at most
`max_seq_length - len(question) - 3` tokens start every `doc_stride` tokens until the context is
covered, so an answer of up to `window - doc_stride + 1` tokens lies whole in at least one window. A
token in several windows is scored only in the one where it has the most context on both sides.
"""

import collections

import numpy as np
from absl import logging

from finetune.span import alignment as span_alignment
from mobilebert import cli

Window = collections.namedtuple("Window", ["start", "length"])
"""Context tokens [start, start + length) of one window."""

SpanFeature = collections.namedtuple("SpanFeature", [
    "unique_id", "example_index", "window_index", "tokens", "input_ids", "input_mask", "segment_ids",
    "char_starts", "char_ends", "is_max_context", "start_position", "end_position"])
"""One model input.

tokens, input_ids, input_mask, segment_ids: [max_seq_length] (tokens unpadded).
char_starts, char_ends: per position the context character span of a context token, -1 elsewhere.
is_max_context: per position, True where this window is the token's best window.
start_position, end_position: the answer's token positions in this window ([CLS] = 0 when it is not
whole inside the window); None when the feature is built without answers.
"""

FeatureSettings = collections.namedtuple(
    "FeatureSettings", ["max_seq_length", "doc_stride", "max_query_length"])

FIRST_UNIQUE_ID = 1000000000


def make_windows(num_tokens, max_tokens, doc_stride):
  """Windows of at most `max_tokens` starting every `doc_stride` tokens, the last one ending at the end."""
  if max_tokens < 1 or doc_stride < 1:
    raise cli.FlagError(f"need max_tokens >= 1 and doc_stride >= 1, got {max_tokens} and {doc_stride} "
                        "(is --max_query_length too large for --max_seq_length?)")
  windows = []
  start = 0
  while True:
    length = min(num_tokens - start, max_tokens)
    windows.append(Window(start, length))
    if start + length >= num_tokens:
      return windows
    start += min(length, doc_stride)


def max_context_windows(windows, num_tokens):
  """For each token, the index of the window where it has the most context: the largest min(left,
  right) context, plus 0.01 x window length so ties go to the longer window (as in Google's SQuAD code),
  then to the first."""
  best = np.full(num_tokens, -1, np.int64)
  best_score = np.full(num_tokens, -np.inf)
  for index, window in enumerate(windows):
    positions = np.arange(window.start, window.start + window.length)
    score = (np.minimum(positions - window.start, window.start + window.length - 1 - positions) +
             0.01 * window.length)
    better = score > best_score[positions]
    best[positions[better]] = index
    best_score[positions[better]] = score[better]
  return best.tolist()


def answer_token_span(context_spans, example):
  """Token span [first, last] of the example's first answer that tokens spell exactly, else of its first
  answer that some tokens cover (a boundary inside a token widens to it), else None."""
  fallback = None
  for answer in example.answers:
    span = span_alignment.char_span_to_token_span(
        context_spans, answer.start, answer.start + len(answer.text))
    if span is None:
      continue
    text = example.context[context_spans.starts[span[0]]:context_spans.ends[span[1]]]
    if text == answer.text.strip():
      return span
    fallback = fallback or span
  return fallback


def example_features(tokenizer, example, example_index, settings, with_answers, unique_id,
                     context_spans=None):
  """The SpanFeatures of one example (see module docstring); `unique_id` numbers the first of them."""
  seq = settings.max_seq_length
  query_tokens = tokenizer.tokenize(example.question)[:settings.max_query_length]
  spans = context_spans or span_alignment.align_tokens(tokenizer, example.context)
  windows = make_windows(len(spans.tokens), seq - len(query_tokens) - 3, settings.doc_stride)
  answer = answer_token_span(spans, example) if with_answers else None
  best_window = max_context_windows(windows, len(spans.tokens))
  context_ids = tokenizer.convert_tokens_to_ids(spans.tokens)
  head = ["[CLS]"] + query_tokens + ["[SEP]"]
  head_ids = tokenizer.convert_tokens_to_ids(head)
  sep_id = tokenizer.convert_tokens_to_ids(["[SEP]"])[0]
  offset = len(head)
  features = []
  for window_index, window in enumerate(windows):
    lo, hi = window.start, window.start + window.length
    used = offset + window.length + 1
    padding = seq - used
    start_position = end_position = None
    if with_answers:
      start_position = end_position = 0
      if answer is not None and lo <= answer[0] and answer[1] < hi:
        start_position = answer[0] - lo + offset
        end_position = answer[1] - lo + offset
    features.append(SpanFeature(
        unique_id=unique_id + window_index, example_index=example_index, window_index=window_index,
        tokens=head + spans.tokens[lo:hi] + ["[SEP]"],
        input_ids=head_ids + context_ids[lo:hi] + [sep_id] + [0] * padding,
        input_mask=[1] * used + [0] * padding,
        segment_ids=[0] * offset + [1] * (window.length + 1) + [0] * padding,
        char_starts=[-1] * offset + spans.starts[lo:hi] + [-1] * (padding + 1),
        char_ends=[-1] * offset + spans.ends[lo:hi] + [-1] * (padding + 1),
        is_max_context=([False] * offset + [best == window_index for best in best_window[lo:hi]] +
                        [False] * (padding + 1)),
        start_position=start_position, end_position=end_position))
  return features


def convert_examples(tokenizer, examples, settings, for_training):
  """SpanFeatures of `examples`. For training, answer positions are filled in and examples without an
  answer the tokens can hold are left out (logged); for prediction positions are None."""
  if settings.max_seq_length - settings.max_query_length - 3 < 1:
    raise cli.FlagError(f"--max_seq_length {settings.max_seq_length} leaves no room for context after a "
                     f"question of --max_query_length {settings.max_query_length}")
  features, skipped = [], 0
  spans_cache = {}
  for index, example in enumerate(examples):
    if example.context not in spans_cache:
      spans_cache = {example.context: span_alignment.align_tokens(tokenizer, example.context)}
    spans = spans_cache[example.context]
    if for_training and answer_token_span(spans, example) is None:
      skipped += 1
      continue
    features.extend(example_features(
        tokenizer, example, index, settings, with_answers=for_training,
        unique_id=FIRST_UNIQUE_ID + len(features), context_spans=spans))
  if skipped:
    logging.warning("%d of %d training questions have no answer the tokens can hold; left out",
                    skipped, len(examples))
  logging.info("%d questions -> %d features (max_seq_length %d, doc_stride %d)", len(examples),
               len(features), settings.max_seq_length, settings.doc_stride)
  return features
