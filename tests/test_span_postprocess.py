# coding=utf-8
"""n-best spans across windows and the predictions files, on hand-built logits."""

import json

import numpy as np
import pytest

from finetune.span import data as span_data
from finetune.span import features as span_features
from finetune.span import postprocess as post
from mobilebert import assets, tokenization

SEQ = 16


@pytest.fixture(scope="module")
def tokenizer():
  return tokenization.FullTokenizer(assets.chinese_vocab_file(), do_lower_case=True)


def _example(context, original=None, qas_id="q"):
  return span_data.SpanExample(qas_id, "问", context, [], original or context, [])


def _features(tokenizer, example, max_seq_length=SEQ, doc_stride=4):
  settings = span_features.FeatureSettings(max_seq_length, doc_stride, max_query_length=4)
  return span_features.example_features(tokenizer, example, 0, settings, False, unique_id=100)


def _result(feature, starts, ends):
  """Logits 0 everywhere but at the given {position: value}."""
  start_logits, end_logits = np.zeros(len(feature.input_ids)), np.zeros(len(feature.input_ids))
  for position, value in starts.items():
    start_logits[position] = value
  for position, value in ends.items():
    end_logits[position] = value
  return post.RawResult(feature.unique_id, start_logits, end_logits)


def _position(feature, context, ch):
  """The position of the context character `ch` in the feature."""
  return next(p for p in range(len(feature.tokens)) if feature.char_starts[p] >= 0 and
              context[feature.char_starts[p]:feature.char_ends[p]] == ch)


def test_best_span_is_reported_in_the_original_script(tokenizer):
  example = _example("北京是中国首都", original="北京是中國首都")
  [feature] = _features(tokenizer, example)
  starts = {_position(feature, example.context, "中"): 5.0}
  ends = {_position(feature, example.context, "国"): 5.0}
  predictions, nbest = post.make_predictions([example], [feature], [_result(feature, starts, ends)],
                                             n_best_size=5, max_answer_length=10)
  assert predictions == {"q": "中國"}
  best = nbest["q"][0]
  assert (best["text"], best["start_logit"], best["end_logit"]) == ("中國", 5.0, 5.0)
  assert (best["char_start"], best["char_end"]) == (3, 5)
  probabilities = [c["probability"] for c in nbest["q"]]
  assert sum(probabilities) == pytest.approx(1.0)
  assert probabilities == sorted(probabilities, reverse=True)
  # Only the 5 best starts and ends are paired, and most of the zero-logit ties fall on [CLS] and the
  # question: fewer than 5 distinct spans remain.
  assert 1 < len(nbest["q"]) <= 5 and len({c["text"] for c in nbest["q"]}) == len(nbest["q"])


def test_invalid_spans_are_never_chosen(tokenizer):
  example = _example("一二三四五六七八")
  [feature] = _features(tokenizer, example)
  p = {ch: _position(feature, example.context, ch) for ch in "一二三四五六七八"}
  cases = [
      ({0: 9.0}, {p["二"]: 1.0}),             # start on [CLS]: not a context token
      ({1: 9.0}, {p["二"]: 1.0}),             # start on a question token
      ({p["五"]: 9.0}, {p["二"]: 9.0}),       # end before start
      ({p["一"]: 9.0}, {p["八"]: 9.0}),       # 8 tokens > max_answer_length 4
      ({p["二"]: 9.0}, {SEQ - 1: 9.0}),       # end on padding
  ]
  for peak_starts, peak_ends in cases:
    # Every context token gets logit 1 so that valid spans exist among the best starts and ends.
    starts = {p[ch]: 1.0 for ch in "一二三四五六七八"}
    ends = dict(starts)
    starts.update(peak_starts)
    ends.update(peak_ends)
    candidates = post.nbest_for_example(example, [feature], {100: _result(feature, starts, ends)},
                                        n_best_size=3, max_answer_length=4)
    best = candidates[0]
    assert best.start_logit + best.end_logit < 18.0
    assert 0 < len(best.text) <= 4


def test_start_must_be_in_its_max_context_window(tokenizer):
  context = "甲乙丙丁戊己庚辛壬癸"
  example = _example(context)
  features = _features(tokenizer, example, max_seq_length=12, doc_stride=3)
  # 12 - 1 - 3 = 8 tokens a window: [0..7], [3..9]. 丁 (3) is first of window 1 and has more context
  # in window 0, so only window 0 may start a span there.
  assert len(features) == 2
  results = {}
  for feature in features:
    starts = {_position(feature, context, "丁"): 5.0}
    ends = {_position(feature, context, "戊"): 5.0}
    if feature.window_index == 1:
      starts[_position(feature, context, "丁")] = 50.0  # would win if it were allowed
    results[feature.unique_id] = _result(feature, starts, ends)
  best = post.nbest_for_example(example, features, results, n_best_size=3, max_answer_length=5)[0]
  assert best.text == "丁戊" and best.start_logit == 5.0


def test_spans_from_several_windows_merge_by_text(tokenizer):
  context = "甲乙丙丁戊己庚辛壬癸"
  example = _example(context)
  features = _features(tokenizer, example, max_seq_length=12, doc_stride=3)
  results = {}
  for feature in features:
    target = "丙" if feature.window_index == 0 else "壬"
    results[feature.unique_id] = _result(
        feature, {_position(feature, context, target): 3.0 + feature.window_index},
        {_position(feature, context, target): 3.0 + feature.window_index})
  candidates = post.nbest_for_example(example, features, results, n_best_size=20, max_answer_length=3)
  assert [c.text for c in candidates[:2]] == ["壬", "丙"]
  assert candidates[0].probability / candidates[1].probability == pytest.approx(np.exp(2.0))
  texts = [c.text for c in candidates]
  assert len(texts) == len(set(texts))


def test_no_valid_span_gives_an_empty_answer(tokenizer, tmp_path):
  example = _example("")
  [feature] = _features(tokenizer, example)
  predictions, nbest = post.make_predictions([example], [feature], [_result(feature, {}, {})], 5, 10)
  assert predictions == {"q": ""} and nbest == {"q": []}
  paths = post.write_predictions(str(tmp_path / "out"), {"q": "中國"}, nbest)
  assert json.loads(open(paths[0], encoding="utf-8").read()) == {"q": "中國"}
  assert "中國" in open(paths[0], encoding="utf-8").read()  # readable, not \\u escapes
  assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
      "nbest_predictions.json", "predictions.json"]
