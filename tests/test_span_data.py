# coding=utf-8
"""Reading SQuAD-style files: answer checks, traditional -> simplified conversion, the paragraph split."""

import json
import os

import pytest

from finetune import squad_split
from finetune.span import data as span_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRIAL = os.path.join(ROOT, "data", "cmrc2018", "cmrc2018_trial.json")
DRCD = os.path.join(ROOT, "data", "drcd", "DRCD_dev.json")


def _dataset(context, qas):
  return {"data": [{"paragraphs": [{"id": "P1", "context": context, "qas": qas}]}]}


def _qa(qas_id, text, start, question="问题？"):
  return {"id": qas_id, "question": question, "answers": [{"text": text, "answer_start": start}]}


def test_trial_set_reads_with_its_five_wrong_offsets_fixed():
  examples, problems = span_data.read_examples(TRIAL)
  assert len(examples) == 1002
  assert len({e.context for e in examples}) == 256
  # As published, the five questions on paragraph TRIAL_210 have answer_start one past the answer.
  assert [p.qas_id for p in problems] == [f"TRIAL_210_QUERY_{i}" for i in range(5)]
  for p in problems:
    assert p.fixed == p.start - 1 and p.found != p.expected
  first = problems[0]
  assert (first.expected, first.found, first.start, first.fixed) == ("俗名龙尖", "名龙尖，", 14, 13)
  fixed = {e.qas_id: e for e in examples}["TRIAL_210_QUERY_0"]
  assert fixed.answers == [span_data.Answer("俗名龙尖", 13)]
  # Every answer of the trial set is usable and points at its text.
  for e in examples:
    assert len(e.answers) == 1 and e.context[e.answers[0].start:].startswith(e.answers[0].text)


def test_wrong_offset_is_searched_and_kept_only_when_unambiguous():
  context = "北京是首都，上海是城市，上海很大。"
  dataset = _dataset(context, [
      _qa("ok", "首都", 3), _qa("unique", "首都", 0), _qa("twice", "上海", 0),
      _qa("absent", "广州", 2), _qa("no_start", "北京", None)])
  examples, problems = span_data.examples_from_dataset(dataset)
  answers = {e.qas_id: e.answers for e in examples}
  assert answers["ok"] == [span_data.Answer("首都", 3)]
  assert answers["unique"] == [span_data.Answer("首都", 3)]
  assert answers["twice"] == [] and answers["absent"] == []
  assert answers["no_start"] == [span_data.Answer("北京", 0)]
  report = {p.qas_id: (p.expected, p.found, p.fixed) for p in problems}
  assert report == {"unique": ("首都", "北京", 3), "twice": ("上海", "北京", None),
                    "absent": ("广州", "是首", None), "no_start": ("北京", None, 0)}
  # The question stays (it is still scored), with its published answers.
  assert {e.qas_id: e.original_answers for e in examples}["twice"] == ["上海"]


def test_structure_errors_name_the_place(tmp_path):
  with pytest.raises(span_data.SpanDataError, match="data file not found"):
    span_data.read_squad_json(str(tmp_path / "missing.json"))
  bad = tmp_path / "bad.json"
  bad.write_text(json.dumps({"version": "1"}), encoding="utf-8")
  with pytest.raises(span_data.SpanDataError, match="'data' list"):
    span_data.read_squad_json(str(bad))
  bad.write_text("{not json", encoding="utf-8")
  with pytest.raises(span_data.SpanDataError, match="bad.json: not valid JSON"):
    span_data.read_squad_json(str(bad))
  with pytest.raises(span_data.SpanDataError, match=r"data\[0\]\.paragraphs\[0\].*'context'"):
    span_data.examples_from_dataset({"data": [{"paragraphs": [{"qas": []}]}]})
  with pytest.raises(span_data.SpanDataError, match=r"qas\[0\].*'id'"):
    span_data.examples_from_dataset(_dataset("文本", [{"question": "q", "answers": []}]))


# --- traditional -> simplified ------------------------------------------------------------------

@pytest.fixture(scope="module")
def converter():
  return span_data.SimplifiedConverter()


def test_conversion_is_phrase_aware_and_keeps_length(converter):
  assert converter("歐洲的語言") == "欧洲的语言"
  # 畫 is 划 in 計畫 (plan) but 画 in 畫面 (picture): phrase tables, not character tables.
  assert converter("計畫") == "计划" and converter("畫面") == "画面"
  assert converter("乾隆皇帝很乾燥") == "乾隆皇帝很干燥"
  text = "ＡＢＣ 1,234 　Latin、「」…"
  assert converter(text) == text  # nothing to convert outside Chinese characters


def test_conversion_falls_back_to_characters_when_a_phrase_changes_length(monkeypatch):
  characters = {"計": "计", "算": "算", "畫": "划画"}

  class LengthChanging:
    """A stand-in for OpenCC whose phrase table maps 計畫 to three characters."""

    def convert(self, text):
      if "計畫" in text:
        return text.replace("計畫", "计划案")
      return "".join(characters.get(c, c) for c in text)

  converter = span_data.SimplifiedConverter()
  monkeypatch.setattr(converter, "_opencc", LengthChanging())
  assert converter("計算") == "计算"  # same length: the phrase-level result is kept
  # Longer as a whole: converted character by character; 畫 alone gives two characters and is kept.
  assert converter("我的計畫") == "我的计畫"


def test_drcd_conversion_keeps_every_offset():
  examples, problems = span_data.read_examples(DRCD, to_simplified=True)
  assert len(examples) == 3524 and problems == []
  dataset = json.load(open(DRCD, encoding="utf-8"))
  originals = {qa["id"]: (p["context"], qa)
               for a in dataset["data"] for p in a["paragraphs"] for qa in p["qas"]}
  changed = 0
  for e in examples:
    context, qa = originals[e.qas_id]
    assert e.original_context == context and len(e.context) == len(context)
    changed += e.context != context
    assert len(e.question) == len(qa["question"])
    assert e.original_answers == [a["text"] for a in qa["answers"]]
    for answer, published in zip(e.answers, qa["answers"]):
      # The 1:1 map: the converted answer sits where the published one does in the original.
      assert answer.start == published["answer_start"]
      assert answer.text == e.context[answer.start:answer.start + len(published["text"])]
      assert context[answer.start:answer.start + len(answer.text)] == published["text"]
  assert changed > 0.9 * len(examples)
  assert examples[0].context.startswith("在欧洲，梵语的学术研究")
  assert examples[0].original_context.startswith("在歐洲，梵語的學術研究")


def test_answers_are_converted_in_their_context():
  # Alone, 畫 would become 画; inside 計畫 it is 划, and the answer must match the converted context.
  examples, _ = span_data.examples_from_dataset(
      _dataset("我們的計畫很好", [_qa("q", "畫", 4)]), to_simplified=True)
  assert examples[0].context == "我们的计划很好"
  assert examples[0].answers == [span_data.Answer("划", 4)]
  assert examples[0].original_answers == ["畫"]


# --- split by paragraph --------------------------------------------------------------------------

def test_split_is_by_paragraph_reproducible_and_complete(tmp_path):
  dataset = span_data.read_squad_json(TRIAL)
  train, held_out = squad_split.split_by_paragraph(dataset, 20)

  def ids(part):
    return [p["id"] for a in part["data"] for p in a["paragraphs"]]

  all_ids = ids(dataset)
  assert sorted(ids(train) + ids(held_out)) == sorted(all_ids)
  assert not set(ids(train)) & set(ids(held_out))
  assert 30 <= len(ids(held_out)) <= 70  # about 20% of 256
  # Order-independent: shuffling the articles changes nothing about where a paragraph goes.
  reversed_data = {"data": list(reversed(dataset["data"]))}
  assert set(ids(squad_split.split_by_paragraph(reversed_data, 20)[1])) == set(ids(held_out))
  # The command line writes files the reader accepts.
  out_train, out_held = tmp_path / "train.json", tmp_path / "held.json"
  assert squad_split.main([TRIAL, str(out_train), str(out_held)]) == 0
  assert ids(span_data.read_squad_json(str(out_held))) == ids(held_out)
  with pytest.raises(ValueError, match="held_out_percent"):
    squad_split.split_by_paragraph(dataset, 0)
