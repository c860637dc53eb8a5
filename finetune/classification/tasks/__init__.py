"""Classification tasks as objects: each reads its files, knows its labels and how it is scored.

Adding a dataset is adding one small class and one entry in TASKS.
"""

from finetune.classification.tasks.base import (CLASSIFICATION, REGRESSION, SPLITS, TASK_TYPES,
                                                BadRowError, ClassificationTask, DataFileError,
                                                InputExample, ReadStats)
from finetune.classification.tasks.chinese import (BqTask, ChnSentiCorpTask, LcqmcTask, ShoppingTask,
                                                   ThucnewsTask, WeiboTask, XnliTask)
from finetune.classification.tasks.clue import AfqmcTask, CmnliTask, IflytekTask, OcnliTask, TnewsTask
from finetune.classification.tasks.generic import GenericOptions, GenericTask, read_label_file
from finetune.classification.tasks.glue import ColaTask, MnliTask, MrpcTask, QnliTask, Sst2Task
from finetune.classification.tasks.regression import GenericRegressionTask, StsbZhTask
from finetune.classification.tasks.regression_scoring import RegressionScorer, pearson, spearman
from finetune.classification.tasks.scoring import ClassificationScorer, macro_f1
from mobilebert import cli

TASKS = {task.name: task for task in (
    XnliTask, LcqmcTask, BqTask, ChnSentiCorpTask, ThucnewsTask, WeiboTask, ShoppingTask,
    AfqmcTask, TnewsTask, IflytekTask, OcnliTask, CmnliTask,
    MnliTask, MrpcTask, ColaTask, Sst2Task, QnliTask, StsbZhTask, GenericTask)}
# Names the release's run_classifier used.
ALIASES = {"bqcorpus": "bq", "sst-2": "sst2", "sts-b-zh": "stsb_zh"}


def create_task(name, data_dir, skip_bad_rows=False, generic_options=None, encoding=None):
  """The task called `name` (case-insensitive) reading from data_dir; its data files are read in
  `encoding` (default UTF-8; --input_encoding)."""
  key = ALIASES.get(name.lower(), name.lower())
  if key not in TASKS:
    raise cli.FlagError(f"--task_name={name!r} is not a known task; choose one of {sorted(TASKS)}")
  if key == GenericTask.name:
    options = generic_options or GenericOptions()
    generic_class = GenericRegressionTask if options.task_type == REGRESSION else GenericTask
    task = generic_class(data_dir, skip_bad_rows, options)
  else:
    task = TASKS[key](data_dir, skip_bad_rows)
  if encoding:
    task.encoding = encoding
  return task

