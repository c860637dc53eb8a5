"""The Chinese benchmarks of the release: XNLI, LCQMC, BQ Corpus, ChnSentiCorp, THUCNews, weibo, shopping."""

import os

import tensorflow.compat.v1 as tf

from finetune.classification.tasks.base import DataFileError
from finetune.classification.tasks.formats import DelimitedTask, Layout

BINARY_LABELS = ("0", "1")
NLI_LABELS = ("contradiction", "entailment", "neutral")
# The release's THUCNews labels: the 10 topics of the common `cnews` subset, in the release's order.
THUCNEWS_LABELS = ("体育", "财经", "房产", "家居", "教育", "科技", "时尚", "时政", "游戏", "娱乐")
THUCNEWS_LABEL_FILE = "labels.txt"


def _split_files(*stems_by_split):
  return dict(zip(("train", "dev", "test"), stems_by_split))


class XnliTask(DelimitedTask):
  """XNLI, one language (zh). Files are told apart by their header:

  - `multinli/multinli.train.zh.tsv`: premise, hypo, label (`contradictory` = contradiction);
  - `xnli.dev.tsv` / `xnli.test.tsv`: all 15 languages, `language` first; text_a col 6, text_b col 7,
    label col 1; rows of other languages are left out;
  - the Chinese-only `train/dev/test.tsv` that Chinese toolkits ship: text_a, text_b, label.
  """
  name = "xnli"
  is_pair = True
  split_files = _split_files(
      ("multinli/multinli.train.zh.tsv", "train.tsv"), ("xnli.dev.tsv", "dev.tsv"),
      ("xnli.test.tsv", "test.tsv"))
  label_aliases = {"contradictory": "contradiction"}

  def __init__(self, data_dir, skip_bad_rows=False, language="zh"):
    super().__init__(data_dir, skip_bad_rows)
    self.language = language
    self.split_files = dict(self.split_files, train=(
        f"multinli/multinli.train.{language}.tsv", "train.tsv"))

  @property
  def labels(self):
    return list(NLI_LABELS)

  def signature(self):
    return dict(super().signature(), language=self.language)

  def layout_for(self, split, first_row, path):
    header = [cell.strip().lower() for cell in first_row]
    if header[0] == "language":
      if len(header) < 8:
        raise DataFileError(f"{path}: 15-language XNLI header has {len(header)} columns, expected >= 8")
      return Layout(text_a=6, text_b=7, label=1, header="always", keep=(0, self.language))
    if len(header) == 3 and header[2] in ("label", "gold_label"):
      return Layout(text_a=0, text_b=1, label=2, num_columns=3, header="always")
    raise DataFileError(
        f"{path}: unrecognised XNLI header {first_row[:4]}: expected the 15-language xnli.*.tsv "
        "(first column `language`), multinli.train.*.tsv (premise, hypo, label) or the Chinese-only "
        "files (text_a, text_b, label)")


class LcqmcTask(DelimitedTask):
  """LCQMC question matching: text_a, text_b, label 0/1. The files have no header; one is detected (the
  release skipped the first row of every file, losing an example each)."""
  name = "lcqmc"
  is_pair = True
  split_files = _split_files(*[(f"{s}.tsv", f"{s}.txt", s) for s in ("train", "dev", "test")])
  layout = Layout(text_a=0, text_b=1, label=2, num_columns=3)

  @property
  def labels(self):
    return list(BINARY_LABELS)


class BqTask(LcqmcTask):
  """BQ Corpus (bank question matching): the LCQMC layout."""
  name = "bq"


class ChnSentiCorpTask(DelimitedTask):
  """ChnSentiCorp sentiment: header `label\\ttext_a`, labels 0/1."""
  name = "chnsenticorp"
  split_files = _split_files(*[(f"{s}.tsv",) for s in ("train", "dev", "test")])
  layout = Layout(text_a=1, label=0, num_columns=2)

  @property
  def labels(self):
    return list(BINARY_LABELS)


class ThucnewsTask(DelimitedTask):
  """THUCNews topics: `label\\ttext`, no header (cnews.{train,val,test}.txt, as the release read them).

  Labels are the release's 10 topics unless the data directory has a `labels.txt` (one label a line,
  as finetune/prepare_thucnews.py writes for other subsets).
  """
  name = "thucnews"
  split_files = _split_files(
      ("cnews.train.txt", "train.tsv"), ("cnews.val.txt", "dev.tsv"), ("cnews.test.txt", "test.tsv"))
  layout = Layout(text_a=1, label=0, num_columns=2)

  def __init__(self, data_dir, skip_bad_rows=False):
    super().__init__(data_dir, skip_bad_rows)
    self._labels = None

  @property
  def labels(self):
    if self._labels is None:
      path = os.path.join(self.data_dir, THUCNEWS_LABEL_FILE)
      if tf.io.gfile.exists(path):
        with tf.io.gfile.GFile(path, "r") as f:
          labels = [line.strip() for line in f.read().split("\n") if line.strip()]
        if len(set(labels)) != len(labels) or len(labels) < 2:
          raise DataFileError(f"{path}: expected at least 2 distinct labels, one a line; got {labels}")
        self._labels = labels
      else:
        self._labels = list(THUCNEWS_LABELS)
    return list(self._labels)


class WeiboTask(DelimitedTask):
  """weibo_senti_100k split into train/dev/test.csv: `label,review` (header), comma-separated, not
  quoted; commas inside a review belong to the review."""
  name = "weibo"
  delimiter = ","
  split_files = _split_files(*[(f"{s}.csv",) for s in ("train", "dev", "test")])
  layout = Layout(text_a=1, label=0, num_columns=2, text_takes_rest=True)

  @property
  def labels(self):
    return list(BINARY_LABELS)


class ShoppingTask(WeiboTask):
  """online_shopping_10_cats split into train/dev/test.csv: `cat,label,review` (header), sentiment 0/1."""
  name = "shopping"
  layout = Layout(text_a=2, label=1, num_columns=3, text_takes_rest=True)
