# coding=utf-8
"""Windows, max-context flags, answer positions and the TFRecord schema of span features."""

import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from finetune.span import alignment as span_alignment
from finetune.span import data as span_data
from finetune.span import features as span_features
from finetune.span import records as span_records
from mobilebert import assets, tokenization

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRIAL = os.path.join(ROOT, "data", "cmrc2018", "cmrc2018_trial.json")


@pytest.fixture(scope="module")
def tokenizer():
  return tokenization.FullTokenizer(assets.chinese_vocab_file(), do_lower_case=True)


@pytest.fixture(scope="module")
def trial_examples():
  return span_data.read_examples(TRIAL)[0]


def test_windows_cover_the_context_with_the_stride():
  windows = span_features.make_windows(10, 4, 3)
  assert windows == [(0, 4), (3, 4), (6, 4)]
  assert span_features.make_windows(3, 4, 3) == [(0, 3)]
  assert span_features.make_windows(0, 4, 3) == [(0, 0)]
  with pytest.raises(ValueError, match="max_query_length"):
    span_features.make_windows(10, 0, 3)


def test_max_context_prefers_the_most_centred_window():
  windows = span_features.make_windows(10, 6, 2)  # [0..5], [2..7], [4..9]
  # Token 4 has min(left, right) context 1, 2, 0 in the three windows -> window 1; token 3: 2, 1 -> 0;
  # token 6: 1, 2 -> window 2.
  assert span_features.max_context_windows(windows, 10) == [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
  # Ties on context go to the longer window, then to the first: [0..3], [3..6], [6..8].
  windows = span_features.make_windows(9, 4, 3)
  assert windows == [(0, 4), (3, 4), (6, 3)]
  # token 3: context 0 in both 4-token windows -> the first; token 6: context 0 in [3..6] and in the
  # 3-token [6..8] -> the longer one.
  assert span_features.max_context_windows(windows, 9) == [0, 0, 0, 0, 1, 1, 1, 2, 2]


def test_feature_layout(tokenizer):
  example = span_data.SpanExample("q1", "谁创立了苹果？", "苹果公司由Steve Jobs创立。",
                                    [span_data.Answer("Steve Jobs", 5)],
                                    "苹果公司由Steve Jobs创立。", ["Steve Jobs"])
  settings = span_features.FeatureSettings(max_seq_length=24, doc_stride=4, max_query_length=4)
  features = span_features.example_features(tokenizer, example, 0, settings, True, unique_id=7)
  # question cut to 4 tokens; 24 - 4 - 3 = 17 context tokens per window: the 10 tokens fit in one.
  assert len(features) == 1
  f = features[0]
  assert f.tokens[:6] == ["[CLS]", "谁", "创", "立", "了", "[SEP]"]
  assert f.tokens[6:] == ["苹", "果", "公", "司", "由", "steve", "jobs", "创", "立", "。", "[SEP]"]
  assert f.segment_ids == [0] * 6 + [1] * 11 + [0] * 7
  assert f.input_mask == [1] * 17 + [0] * 7
  assert f.input_ids[:17] == tokenizer.convert_tokens_to_ids(f.tokens) and f.input_ids[17:] == [0] * 7
  assert f.tokens[f.start_position:f.end_position + 1] == ["steve", "jobs"]
  assert example.context[f.char_starts[f.start_position]:f.char_ends[f.end_position]] == "Steve Jobs"
  assert f.char_starts[:6] == [-1] * 6 and f.char_starts[16:] == [-1] * 8
  assert all(f.is_max_context[6:16]) and not any(f.is_max_context[:6] + f.is_max_context[16:])
  assert f.unique_id == 7


def test_answer_outside_a_window_points_at_cls(tokenizer):
  context = "一二三四五六七八九十甲乙丙丁"
  example = span_data.SpanExample("q", "问", context, [span_data.Answer("丙丁", 12)], context, ["丙丁"])
  settings = span_features.FeatureSettings(max_seq_length=10, doc_stride=3, max_query_length=4)
  features = span_features.example_features(tokenizer, example, 0, settings, True, unique_id=0)
  # 10 - 1 - 3 = 6 tokens a window: [0..5], [3..8], [6..11], [9..14)
  assert len(features) == 4
  assert [(f.start_position, f.end_position) for f in features] == [(0, 0), (0, 0), (0, 0), (6, 7)]


def test_training_prefers_an_answer_the_tokens_spell_exactly(tokenizer):
  # "8" lies inside the token "80"; the second answer "80%" is spelt exactly by tokens and is used.
  context = "有80%的恒星"
  example = span_data.SpanExample(
      "q", "多少？", context, [span_data.Answer("8", 1), span_data.Answer("80%", 1)], context,
      ["8", "80%"])
  spans = span_alignment.align_tokens(tokenizer, context)
  first, last = span_features.answer_token_span(spans, example)
  assert span_alignment.token_span_text(context, spans, first, last) == "80%"
  only_inexact = example._replace(answers=example.answers[:1])
  first, last = span_features.answer_token_span(spans, only_inexact)
  assert span_alignment.token_span_text(context, spans, first, last) == "80"


@pytest.mark.parametrize("max_seq_length,doc_stride", [(512, 128), (96, 24)])
def test_every_trial_answer_is_whole_in_some_window(tokenizer, trial_examples, max_seq_length,
                                                    doc_stride):
  settings = span_features.FeatureSettings(max_seq_length, doc_stride, max_query_length=32)
  features = span_features.convert_examples(tokenizer, trial_examples, settings, for_training=True)
  covered = {f.example_index for f in features if f.start_position > 0}
  window = max_seq_length - 32 - 3
  missing = []
  spans_of = {}
  for index, example in enumerate(trial_examples):
    if example.context not in spans_of:
      spans_of[example.context] = span_alignment.align_tokens(tokenizer, example.context)
    spans = spans_of[example.context]
    first, last = span_features.answer_token_span(spans, example)
    # Guaranteed for answers of at most window - stride + 1 tokens (a few trial answers are longer
    # than 96-token windows allow).
    if last - first + 1 <= window - doc_stride + 1 and index not in covered:
      missing.append(example.qas_id)
  assert not missing
  if max_seq_length == 512:
    assert len(covered) == len(trial_examples)
  # Each window's positions point inside its own context part.
  for f in features:
    assert f.start_position == 0 or (f.char_starts[f.start_position] >= 0 and
                                     f.start_position <= f.end_position)
    assert sum(f.input_mask) <= max_seq_length and len(f.input_ids) == max_seq_length


def test_records_round_trip(tmp_path, tokenizer, trial_examples):
  settings = span_features.FeatureSettings(64, 32, 16)
  features = span_features.convert_examples(tokenizer, trial_examples[:5], settings, True)
  calls = []

  def make():
    calls.append(1)
    return features

  cache = str(tmp_path / "cache")
  records = span_records.cached_records("trial", "k" * 64, cache, make, is_training=True)
  assert records.num_features == len(features) and calls == [1]
  again = span_records.cached_records("trial", "k" * 64, cache, make, is_training=True)
  assert again.path == records.path and calls == [1]  # reused, not recomputed
  other = span_records.cached_records("trial", "j" * 64, cache, make, is_training=True)
  assert other.path != records.path and calls == [1, 1]

  # Read with the prediction schema (no positions) and padded to whole batches of 4.
  input_fn = span_records.input_fn_builder(records.path, 64, is_training=False,
                                            num_features=len(features), pad_to_batch_size=4)
  with tf.Graph().as_default():
    batch = tf.data.make_one_shot_iterator(input_fn({"batch_size": 4})).get_next()
    rows = {"unique_ids": [], "input_ids": []}
    with tf.Session() as sess:
      while True:
        try:
          values = sess.run(batch)
        except tf.errors.OutOfRangeError:
          break
        assert values["input_ids"].dtype == np.int32 and len(values["unique_ids"]) == 4
        for name in rows:
          rows[name] += values[name].tolist()
  padding = -len(features) % 4
  assert rows["unique_ids"] == [f.unique_id for f in features] + [0] * padding
  assert rows["input_ids"][:len(features)] == [f.input_ids for f in features]
  assert rows["input_ids"][len(features):] == [[0] * 64] * padding
  train_fn = span_records.input_fn_builder(records.path, 64, True, len(features), seed=1)
  with tf.Graph().as_default():
    batch = tf.data.make_one_shot_iterator(train_fn({"batch_size": 4})).get_next()
    with tf.Session() as sess:
      values = sess.run(batch)
  by_id = {f.unique_id: f for f in features}
  for uid, start, end in zip(values["unique_ids"], values["start_positions"], values["end_positions"]):
    assert (start, end) == (by_id[uid].start_position, by_id[uid].end_position)
