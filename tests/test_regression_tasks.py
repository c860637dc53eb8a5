"""Regression scoring (Pearson, Spearman with ties), the shipped Chinese STS-B split, the generic reader's
--task_type=regression and --data_format=csv, and their bad-input errors."""

import math
from pathlib import Path

import numpy as np
import pytest

from finetune import prepare_stsb_zh
from finetune.classification.tasks import (REGRESSION, BadRowError, DataFileError, GenericOptions,
                                           RegressionScorer, create_task, pearson, spearman)
from finetune.classification.tasks.regression_scoring import average_ranks
from finetune.core.checkpoint_scoring import score_order

ROOT = Path(__file__).resolve().parents[1]
STSB = ROOT / "data" / "stsb_zh"
SHARED_STSB = ROOT.parent / "shared" / "data" / "stsb_zh"


def test_average_ranks_share_the_mean_rank_of_a_tie():
  assert average_ranks([3, 1, 3, 2, 3]).tolist() == [4, 1, 4, 2, 4]
  assert average_ranks([0.5, 0.5]).tolist() == [1.5, 1.5]
  assert average_ranks([2, 1]).tolist() == [2, 1]


def test_pearson_and_spearman_by_hand():
  # x ranks (1, 2.5, 2.5, 4), y ranks (1, 3, 2, 4): centred (-1.5, 0, 0, 1.5), (-1.5, .5, -.5, 1.5);
  # dot 4.5, squared norms 4.5 and 5, so rho = 4.5 / sqrt(22.5).
  assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(4.5 / math.sqrt(22.5))
  # Spearman ignores the scale: any increasing map of a side leaves it at 1, Pearson below 1.
  x = np.array([0.1, 0.4, 0.2, 3.0, 1.0])
  assert spearman(x, np.exp(x)) == pytest.approx(1.0)
  assert pearson(x, np.exp(x)) < 0.99
  assert pearson(x, 2 * x + 1) == pytest.approx(1.0)
  assert pearson(x, -x) == pytest.approx(-1.0)
  # centred (-1, 0, 1) and (-3, 0, 3)... plus noise: (1, 2, 3) vs (2, 4, 7) by hand.
  # dx (-1, 0, 1), dy (-7/3, -1/3, 8/3): dot 5, |dx|^2 2, |dy|^2 (49 + 1 + 64) / 9 = 114/9.
  assert pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(5 / math.sqrt(2 * 114 / 9))


def test_constant_input_gives_nan_and_ranks_last():
  assert math.isnan(pearson([1, 1, 1], [1, 2, 3]))
  assert math.isnan(spearman([1, 2, 3], [2, 2, 2]))
  assert math.isnan(pearson([1], [1]))
  assert score_order(math.nan) < score_order(-1.0)
  with pytest.raises(ValueError, match="3 values against 2"):
    pearson([1, 2, 3], [1, 2])


def test_regression_scorer_accumulates_batches():
  scorer = RegressionScorer()
  scorer.update([0.0, 1.0], [0.5, 1.0])
  scorer.update([2.0, 3.0], [2.0, 2.0])
  results = scorer.results()
  assert results["num_examples"] == 4
  assert results["mse"] == pytest.approx((0.25 + 0 + 0 + 1) / 4) == results["loss"]
  assert results["pearson"] == pytest.approx(pearson([0.5, 1, 2, 2], [0, 1, 2, 3]))
  assert results["spearman"] == pytest.approx(spearman([0.5, 1, 2, 2], [0, 1, 2, 3]))
  with pytest.raises(ValueError, match="2 predictions for 3 targets"):
    scorer.update([1, 2, 3], [1, 2])


def test_shipped_stsb_zh_reads_completely():
  task = create_task("stsb_zh", str(STSB))
  assert task.task_type == REGRESSION and task.is_pair and task.labels == []
  sizes = {split: len(task.get_examples(split)) for split in ("train", "dev", "test")}
  assert sizes == {"train": 4725, "dev": 506, "test": 1458}
  test = task.get_examples("test")
  assert (test[0].text_a, test[0].text_b, test[0].label) == (
      "一个戴着安全帽的男人在跳舞。", "一个戴着安全帽的男人在跳舞。", "5")
  assert {float(e.label) for e in test} == {0, 1, 2, 3, 4, 5}


def test_shipped_stsb_zh_dev_follows_the_group_rule_and_shares_no_sentence_with_train():
  lines, pairs, sides = [], [], []
  for side in ("train", "dev"):
    side_lines, side_pairs = prepare_stsb_zh.read_rows(str(STSB / f"{side}.tsv"))
    lines += side_lines
    pairs += side_pairs
    sides += [side] * len(side_lines)
  groups = prepare_stsb_zh.sentence_groups(pairs)
  assert all(prepare_stsb_zh.in_dev(g) == (side == "dev") for g, side in zip(groups, sides))
  train_sentences = {s for (a, b), side in zip(pairs, sides) if side == "train" for s in (a, b)}
  assert not {s for (a, b), side in zip(pairs, sides) if side == "dev" for s in (a, b)} & train_sentences


@pytest.mark.skipif(not SHARED_STSB.is_dir(), reason="../shared/data/stsb_zh is not beside this clone")
def test_prepare_reproduces_the_shipped_files_from_the_release(tmp_path):
  counts = prepare_stsb_zh.prepare(str(SHARED_STSB), str(tmp_path))
  assert counts == {"train.tsv": 4725, "dev.tsv": 506, "test.tsv": 1458}
  for name in counts:
    assert (tmp_path / name).read_bytes() == (STSB / name).read_bytes(), name


def test_prepare_refuses_to_write_over_its_input(tmp_path):
  (tmp_path / "train.tsv").write_text("a\tb\t1\n", encoding="utf-8")
  (tmp_path / "valid.tsv").write_text("a\tb\t1\n", encoding="utf-8")
  with pytest.raises(ValueError, match="--output_dir"):
    prepare_stsb_zh.prepare(str(tmp_path), str(tmp_path))


def test_a_non_numeric_target_is_a_bad_row_naming_file_and_line(tmp_path):
  (tmp_path / "train.tsv").write_text("好\t好\t4\n坏\t好\tfive\n", encoding="utf-8")
  task = create_task("stsb_zh", str(tmp_path))
  with pytest.raises(BadRowError, match=r"train\.tsv:2: target 'five' is not a finite number"):
    task.get_examples("train")
  (tmp_path / "test.tsv").write_text("好\t好\t-\n", encoding="utf-8")
  assert task.get_examples("test", require_labels=False)[0].label is None


def _write(path, text):
  path.write_text(text, encoding="utf-8")
  return path


def test_generic_regression_reads_a_header_and_keeps_targets(tmp_path):
  _write(tmp_path / "train.tsv", "text_a\ttext_b\tscore\n很好\t不错\t4.5\n很好\t很差\t0\n")
  options = GenericOptions(text_b_column="text_b", label_column="score", task_type="regression")
  task = create_task("generic", str(tmp_path), generic_options=options)
  assert task.task_type == REGRESSION and task.labels == []
  assert [e.label for e in task.get_examples("train")] == ["4.5", "0"]
  with pytest.raises(ValueError, match="drop --labels"):
    create_task("generic", str(tmp_path), generic_options=options._replace(labels=("0", "1")))
  with pytest.raises(ValueError, match="--task_type must be one of"):
    create_task("generic", str(tmp_path), generic_options=options._replace(task_type="ranking"))


def test_csv_quoted_fields_hold_commas_quotes_and_newlines(tmp_path):
  _write(tmp_path / "train.csv",
         'label,review\n'
         '1,"好吃,量大,送得快"\n'
         '0,"说是""新鲜""的,其实不是"\n'
         '1,"第一行\n第二行"\n'
         '\n'
         '0,plain text\n')
  options = GenericOptions(data_format="csv", text_a_column="review", label_column="label")
  task = create_task("generic", str(tmp_path), generic_options=options)
  examples = task.get_examples("train")
  assert [e.text_a for e in examples] == ["好吃,量大,送得快", '说是"新鲜"的,其实不是', "第一行\n第二行",
                                          "plain text"]
  assert task.labels == ["0", "1"]
  # guids carry the line each record starts on; the two-line record moves the next one to line 7.
  assert [e.guid for e in examples] == ["train-2", "train-3", "train-4", "train-7"]


def test_csv_by_index_without_header_and_a_utf8_bom(tmp_path):
  _write(tmp_path / "train.csv", '\ufeff"怎么改密码","如何修改密码",1\n"今天天气","明天下雨",0\n')
  options = GenericOptions(data_format="csv", text_a_column="0", text_b_column="1", label_column="2",
                           has_header="false")
  examples = create_task("generic", str(tmp_path), generic_options=options).get_examples("train")
  assert [(e.text_a, e.text_b, e.label) for e in examples] == [
      ("怎么改密码", "如何修改密码", "1"), ("今天天气", "明天下雨", "0")]


@pytest.mark.parametrize("content,fragment", [
    ('label,review\n1,"never closed\n0,ok\n', r"train\.csv:2: not valid CSV .*never closed"),
    ('label,review\n1,"bad" quote\n', r"train\.csv:2: not valid CSV .*doubled"),
    ('label,review\n1,ok\n0,too,many\n', r"train\.csv:3: expected 2 ','-separated columns, found 3"),
    ('label,text\n1,ok\n', r"train\.csv: header row \['label', 'text'\] has no column\(s\) \['review'\]"),
])
def test_csv_errors_name_file_and_row(tmp_path, content, fragment):
  _write(tmp_path / "train.csv", content)
  options = GenericOptions(data_format="csv", text_a_column="review", label_column="label",
                           labels=("0", "1"))
  with pytest.raises(DataFileError, match=fragment):
    create_task("generic", str(tmp_path), generic_options=options).get_examples("train")


def test_csv_that_is_not_utf8_names_the_line(tmp_path):
  (tmp_path / "train.csv").write_bytes("label,review\n1,好\n".encode("utf-8") + "0,坏\n".encode("gbk"))
  options = GenericOptions(data_format="csv", text_a_column="review", label_column="label")
  with pytest.raises(BadRowError, match=r"train\.csv:3: not utf-8 text .*; --input_encoding reads"):
    create_task("generic", str(tmp_path), generic_options=options).get_examples("train")


def test_prepare_names_a_malformed_release_row(tmp_path):
  (tmp_path / "train.tsv").write_text("a\tb\t1\nno score here\n", encoding="utf-8")
  (tmp_path / "valid.tsv").write_text("a\tb\t1\n", encoding="utf-8")
  with pytest.raises(ValueError, match=r"train\.tsv:2: expected text_a, text_b, score .* found 1"):
    prepare_stsb_zh.prepare(str(tmp_path), str(tmp_path / "out"))
  assert not (tmp_path / "out").exists()
