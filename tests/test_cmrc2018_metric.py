# coding=utf-8
"""The CMRC 2018 metric (finetune/cmrc2018_evaluate.py) on hand-computed cases, one group per rule."""

import json
import os
import random
import subprocess
import sys

import pytest

from finetune import cmrc2018_evaluate as metric

SCRIPT = metric.__file__


def _f1(answers, prediction):
  return metric.f1_score(answers, prediction)


def _em(answers, prediction):
  return metric.exact_match(answers, prediction)


# --- lower-case and strip ------------------------------------------------------------------------

def test_lowercase_and_strip_both_sides():
  assert _em(["NBA总决赛"], "  nba总决赛\n") == 1.0
  assert _f1(["  NBA总决赛 "], "nba总决赛") == 1.0
  assert metric.segment(" IPhone ") == ["iphone"]


# --- the punctuation set -------------------------------------------------------------------------

@pytest.mark.parametrize("mark", list("-:_*^/\\~`+=，。：？！“”；’《》·、「」（）－～『』"))
def test_every_listed_character_is_ignored_by_em(mark):
  assert _em(["红楼梦"], mark + "红" + mark + "楼梦" + mark) == 1.0


@pytest.mark.parametrize("mark", ["‘", ".", ",", "?", "!", '"', "(", ")", "…"])
def test_unlisted_characters_count_for_em(mark):
  # Not in the official list: ASCII . , ? ! " ( ), the left single quote, and a lone `…` (the list holds
  # `……` as one two-character entry, which a character-by-character scan never matches).
  assert _em(["红楼梦"], "红楼梦" + mark) == 0.0


def test_double_ellipsis_is_not_removed_and_is_one_word():
  # "好……": 好 | run "……" -> one word. tokens [好, ……] vs [好]: lcs 1, P 1/2, R 1 -> F1 2/3.
  assert metric.segment("好……") == ["好", "……"]
  assert _em(["好"], "好……") == 0.0
  assert _f1(["好"], "好……") == pytest.approx(2 / 3)


def test_space_is_not_punctuation_for_em():
  assert _em(["北京大学"], "北京 大学") == 0.0
  # ...but a space is only a run separator for F1, and a Chinese character is a token on its own.
  assert _f1(["北京大学"], "北京 大学") == 1.0


# --- F1 tokens -----------------------------------------------------------------------------------

def test_punctuation_inside_a_word_does_not_split_it():
  assert metric.segment("e-mail") == ["email"]
  assert metric.segment("C++语言") == ["c", "语", "言"]
  assert metric.segment("TCP/IP协议") == ["tcpip", "协", "议"]
  assert _em(["email"], "e-mail") == 1.0
  assert _f1(["email地址"], "e-mail地址") == 1.0


def test_chinese_characters_end_runs_and_are_single_tokens():
  assert metric.segment("iPhone手机2018年") == ["iphone", "手", "机", "2018", "年"]
  assert metric.segment("1998年7月") == ["1998", "年", "7", "月"]


def test_characters_outside_u4e00_u9fa5_join_runs():
  # 〇 (U+3007), extension-A 㐀 (U+3400) and full-width digits are not in U+4E00..U+9FA5.
  assert metric.segment("二〇一八") == ["二", "〇", "一", "八"]
  assert metric.segment("㐀㐁字") == ["㐀㐁", "字"]
  assert metric.segment("２０１８年") == ["２０１８", "年"]
  assert metric.segment("ab〇cd") == ["ab〇cd"]


def test_runs_split_like_english_words():
  assert metric.segment("it's 3,000 dollars.") == ["it", "'s", "3,000", "dollars", "."]
  assert metric.segment("U.S.和") == ["u.s", ".", "和"]
  assert metric.segment('他说"hello"') == ["他", "说", "``", "hello", "''"]
  assert metric.segment("cannot") == ["can", "not"]


def test_f1_uses_the_longest_contiguous_common_sequence():
  # [北 京 大 学] vs [北 京 的 大 学]: all four answer tokens occur in the prediction, but the longest
  # contiguous common run is 2: P = 2/5, R = 2/4, F1 = 2*0.4*0.5/0.9 = 4/9.
  assert _f1(["北京大学"], "北京的大学") == pytest.approx(4 / 9)
  # The order matters too: [学 大] shares runs of length 1 only: P = 1/2, R = 1/4 -> F1 1/3.
  assert _f1(["北京大学"], "学大") == pytest.approx(1 / 3)


def test_precision_over_prediction_recall_over_answer():
  # answer [1998 年], prediction [1998 年 7 月]: lcs 2, P = 2/4, R = 2/2 -> F1 2/3.
  assert _f1(["1998年"], "1998年7月") == pytest.approx(2 / 3)
  # swapped: P = 1, R = 1/2 -> also 2/3; EM 0 either way.
  assert _f1(["1998年7月"], "1998年") == pytest.approx(2 / 3)
  assert _em(["1998年7月"], "1998年") == 0.0


def test_mixed_chinese_and_english_partial_match():
  # answer [steve, jobs, 创, 立] vs prediction [steve, jobs]: lcs 2, P 1, R 1/2 -> 2/3.
  assert _f1(["Steve Jobs创立"], "steve jobs") == pytest.approx(2 / 3)
  # "stevejobs" is one word and matches nothing in [steve, jobs].
  assert _f1(["Steve Jobs"], "SteveJobs") == 0.0


def test_empty_or_punctuation_only_prediction_scores_zero():
  assert _f1(["北京"], "") == 0.0
  assert _f1(["北京"], "《》") == 0.0
  assert _em(["北京"], "") == 0.0


# --- several answers -----------------------------------------------------------------------------

def test_max_over_answers():
  # F1: 0 against 上海, 2*1*(1/2)/(3/2) = 2/3 against 北京大学 (lcs 2 of 4, prediction 2 of 2).
  assert _f1(["上海", "北京大学"], "北京") == pytest.approx(2 / 3)
  assert _em(["北京市", "北京"], "北京") == 1.0
  assert _em(["北京市", "上海"], "北京") == 0.0


# --- whole-dataset scoring, missing predictions, percentages -------------------------------------

def _dataset():
  return {"version": "v1.0", "data": [{"paragraphs": [
      {"context": "北京是中国的首都。1998年7月", "qas": [
          {"id": "Q1", "question": "首都？", "answers": [{"text": "北京", "answer_start": 0}]},
          {"id": "Q2", "question": "何时？", "answers": [{"text": "1998年", "answer_start": 9}]},
      ]},
      {"context": "《红楼梦》", "qas": [
          {"id": "Q3", "question": "书名？", "answers": [{"text": "红楼梦", "answer_start": 1}]},
      ]},
  ]}]}


def test_evaluate_counts_missing_predictions_as_zero_and_skipped():
  # Q1 exact (EM 1, F1 1); Q2 "1998年7月" (EM 0, F1 2/3); Q3 missing (0, 0, skipped).
  result = metric.evaluate(_dataset(), {"Q1": "北京", "Q2": "1998年7月"})
  assert result.total == 3 and result.skip == 1
  assert result.em == pytest.approx(100.0 / 3)
  assert result.f1 == pytest.approx(100.0 * (1 + 2 / 3) / 3)
  out = metric.result_to_dict(result)
  assert list(out) == ["AVERAGE", "F1", "EM", "TOTAL", "SKIP"]
  assert out == {"AVERAGE": "44.444", "F1": "55.556", "EM": "33.333", "TOTAL": 3, "SKIP": 1}


def test_extra_predictions_are_ignored_and_ids_are_stripped():
  dataset = _dataset()
  dataset["data"][0]["paragraphs"][1]["qas"][0]["id"] = " Q3 "
  result = metric.evaluate(dataset, {"Q1": "北京", "Q2": "1998年", "Q3": "《红楼梦》", "Q9": "x"})
  assert (result.em, result.f1, result.skip) == (100.0, 100.0, 0)


# --- command line --------------------------------------------------------------------------------

def _run(*args):
  return subprocess.run([sys.executable, SCRIPT] + list(args), capture_output=True, text=True,
                        timeout=60)


def test_command_line_prints_and_writes_the_official_json(tmp_path):
  dataset, predictions, output = (tmp_path / n for n in ("dev.json", "pred.json", "out.json"))
  dataset.write_text(json.dumps(_dataset(), ensure_ascii=False), encoding="utf-8")
  predictions.write_text(json.dumps({"Q1": "北京", "Q2": "1998年7月"}), encoding="utf-8")
  done = _run(str(dataset), str(predictions), str(output))
  assert done.returncode == 0, done.stderr
  expected = {"AVERAGE": "44.444", "F1": "55.556", "EM": "33.333", "TOTAL": 3, "SKIP": 1}
  assert json.loads(done.stdout) == expected
  assert list(json.loads(done.stdout)) == list(expected)
  assert json.loads(output.read_text(encoding="utf-8")) == expected
  assert "Unanswered question: Q3" in done.stderr
  # Without OUTPUT.json nothing is written.
  os.remove(output)
  assert _run(str(dataset), str(predictions)).returncode == 0
  assert not output.exists()


def test_command_line_rejects_wrong_arguments(tmp_path):
  assert _run().returncode == 2
  missing = _run(str(tmp_path / "nope.json"), str(tmp_path / "nope2.json"))
  assert missing.returncode != 0 and "nope.json" in missing.stderr


def test_metric_module_does_not_need_nltk():
  code = "import sys, finetune.cmrc2018_evaluate; assert 'nltk' not in sys.modules"
  assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


# --- the English split against NLTK --------------------------------------------------------------

# Characters on which Python's `re` and the `regex` engine recent NLTK releases use disagree about
# \w (superscript digits, combining marks, circled letters, ...) are left out: the split follows `re`,
# as NLTK did when the official CMRC 2018 scores were computed.
_PIECES = list("abcXYZ019 .,:;'\"`?!()[]{}<>-*@#$%&«»“”‘’„…\u2013\u2014\t\n") + [
    "n't", "'s", "'re", "'ll", "'S", "cannot", "gonna", "wanna ", "'tis", "d'ye", "more'n", "...",
    "--", "''", "3,000", "10:30", "ａｂ", "é", "Ⅱ", "٣", "ア", "㐀", "％", "\u3000", "°C", "U.S."]


def test_english_split_matches_nltk_treebank_tokenizer():
  nltk_tokenize = pytest.importorskip("nltk.tokenize").NLTKWordTokenizer().tokenize
  rng = random.Random(20181)
  samples = ["Good muffins cost $3.88 (roughly 3,36 euros) in New York.",
             "\"I can't,\" she said -- 'it's gonna rain'...", "A.B.C. (U.S.) isn't it?!"]
  samples += ["".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 12))) for _ in range(3000)]
  mismatches = [(s, metric.split_english(s), nltk_tokenize(s)) for s in samples
                if metric.split_english(s) != nltk_tokenize(s)]
  assert not mismatches, mismatches[:5]
