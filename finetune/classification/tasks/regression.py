"""Regression tasks: a real-valued target per text or pair (sentence similarity), MSE loss, correlations.

A regression task is a classification task whose label column holds a number: the same readers, files and
row errors, with `task_type` REGRESSION, no label list, and a scorer reporting Pearson, Spearman and MSE.
"""

import math

from finetune.classification.tasks.base import REGRESSION, RowError
from finetune.classification.tasks.formats import DelimitedTask, Layout
from finetune.classification.tasks.generic import GenericTask
from finetune.classification.tasks.regression_scoring import RegressionScorer
from mobilebert import cli


class RegressionMixin:
  """Turns a task class into a regression task: put it first among the bases."""
  task_type = REGRESSION

  @property
  def labels(self):
    """No label list: the model has one output, the predicted value."""
    return []

  def label_display_names(self):
    return {}

  def scorer(self):
    return RegressionScorer()

  def signature(self):
    return dict(super().signature(), task_type=self.task_type)

  def checked_label(self, label, label_set, require_labels):
    """A target that parses as a finite number, kept as written; None for a placeholder in prediction."""
    del label_set
    try:
      value = float(label)
    except ValueError:
      value = math.nan
    if not math.isfinite(value):
      if require_labels:
        raise RowError(f"target {label!r} is not a finite number (a regression task's label column "
                       "holds the value to predict)")
      return None
    return label.strip()


class StsbZhTask(RegressionMixin, DelimitedTask):
  """Chinese STS-B (machine-translated STS Benchmark): text_a, text_b, similarity 0-5, no header.

  `data/stsb_zh` holds train/dev (split from the released train file by finetune/prepare_stsb_zh.py)
  and test (the released valid file).
  """
  name = "stsb_zh"
  is_pair = True
  split_files = {split: (f"{split}.tsv",) for split in ("train", "dev", "test")}
  layout = Layout(text_a=0, text_b=1, label=2, num_columns=3)


class GenericRegressionTask(RegressionMixin, GenericTask):
  """The user's own files with a numeric label column (--task_name=generic --task_type=regression)."""

  def __init__(self, data_dir, skip_bad_rows=False, options=None):
    super().__init__(data_dir, skip_bad_rows, options)
    if options.labels:
      raise cli.FlagError(f"--labels={','.join(options.labels)} names classes, but "
                          "--task_type=regression predicts a number: drop --labels")
