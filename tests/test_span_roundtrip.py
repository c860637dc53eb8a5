# coding=utf-8
"""Gold answer -> token span -> window positions -> predictions.json -> the official metric, on every
answer of the CMRC 2018 trial set and of DRCD dev (converted to simplified, reported in traditional).

A perfect model is simulated by logits that peak at the gold positions in every window holding the
answer; what the metric then says is what the alignment, windows and post-processing lose.
"""

import json
import os

import numpy as np
import pytest

from finetune import cmrc2018_evaluate as metric
from finetune.span import alignment as span_alignment
from finetune.span import data as span_data
from finetune.span import features as span_features
from finetune.span import postprocess as span_postprocess
from mobilebert import assets, tokenization

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRIAL = os.path.join(ROOT, "data", "cmrc2018", "cmrc2018_trial.json")
DRCD = os.path.join(ROOT, "data", "drcd", "DRCD_dev.json")
RELEASE_SETTINGS = span_features.FeatureSettings(max_seq_length=512, doc_stride=128,
                                                  max_query_length=64)
# The DRCD answers no token span spells: "8" inside the WordPiece "80" of "80%", and inside "81" of
# "81人" (the other annotator's answers, "80%" and "81人", are spelt exactly).
DRCD_UNREPRESENTABLE = {("1180-23-1", "8"), ("1194-6-3", "8")}


@pytest.fixture(scope="module")
def tokenizer():
  return tokenization.FullTokenizer(assets.chinese_vocab_file(), do_lower_case=True)


def _perfect_predictions(tokenizer, examples, output_dir):
  """Writes predictions.json from logits that peak at each example's gold positions."""
  features = span_features.convert_examples(tokenizer, examples, RELEASE_SETTINGS, for_training=True)
  assert len({f.example_index for f in features}) == len(examples)  # nothing left out
  results = []
  for f in features:
    start_logits, end_logits = np.zeros(len(f.input_ids)), np.zeros(len(f.input_ids))
    if f.start_position > 0:
      start_logits[f.start_position] = end_logits[f.end_position] = 10.0
    results.append(span_postprocess.RawResult(f.unique_id, start_logits, end_logits))
  # Answers in these sets run to 170 tokens: allow any length, so only alignment limits are seen.
  predictions, nbest = span_postprocess.make_predictions(examples, features, results, n_best_size=20,
                                                          max_answer_length=512)
  return span_postprocess.write_predictions(output_dir, predictions, nbest)[0]


def _run_metric(dataset_file, predictions_file, tmp_path):
  output = str(tmp_path / "eval.json")
  assert metric.main(["cmrc2018_evaluate.py", dataset_file, predictions_file, output]) == 0
  return json.load(open(output, encoding="utf-8"))


def _answer_level_failures(tokenizer, examples):
  """(qas_id, answer) of every answer whose own token span does not reproduce it under EM."""
  failures = []
  spans_of = {}
  for example in examples:
    if example.context not in spans_of:
      spans_of[example.context] = span_alignment.align_tokens(tokenizer, example.context)
      assert spans_of[example.context].tokens == tokenizer.tokenize(example.context)
    spans = spans_of[example.context]
    for answer, original in zip(example.answers, example.original_answers):
      span = span_alignment.char_span_to_token_span(spans, answer.start,
                                                     answer.start + len(answer.text))
      text = span_alignment.token_span_text(example.original_context, spans, *span)
      if metric.exact_match([original], text) != 1.0:
        failures.append((example.qas_id, original))
  return failures


def test_trial_set_round_trip_is_exact(tokenizer, tmp_path):
  examples, _ = span_data.read_examples(TRIAL)
  assert _answer_level_failures(tokenizer, examples) == []
  predictions = _perfect_predictions(tokenizer, examples, str(tmp_path))
  scores = _run_metric(TRIAL, predictions, tmp_path)
  assert scores == {"AVERAGE": "100.000", "F1": "100.000", "EM": "100.000", "TOTAL": 1002, "SKIP": 0}


def test_drcd_round_trip_through_simplified_is_exact_in_traditional(tokenizer, tmp_path):
  examples, _ = span_data.read_examples(DRCD, to_simplified=True)
  assert sum(len(e.answers) for e in examples) == 7048
  assert set(_answer_level_failures(tokenizer, examples)) == DRCD_UNREPRESENTABLE
  predictions = _perfect_predictions(tokenizer, examples, str(tmp_path))
  written = json.load(open(predictions, encoding="utf-8"))
  by_id = {e.qas_id: e for e in examples}
  # Reported in the original script: every prediction is a substring of the traditional context.
  assert all(text in by_id[qas_id].original_context for qas_id, text in written.items())
  assert written["1147-5-1"] == "歐洲"
  scores = _run_metric(DRCD, predictions, tmp_path)
  # Each question has another answer the tokens spell, so all 3,524 questions score EM 100.
  assert scores == {"AVERAGE": "100.000", "F1": "100.000", "EM": "100.000", "TOTAL": 3524, "SKIP": 0}
