"""Classification tasks as objects: each reads its files, knows its labels and how it is scored.

Adding a dataset is adding one small class and one entry in TASKS.
"""

from finetune.classification.tasks.base import (SPLITS, BadRowError, ClassificationTask, DataFileError, InputExample,
                                 ReadStats)
from finetune.classification.tasks.chinese import (BqTask, ChnSentiCorpTask, LcqmcTask, ShoppingTask, ThucnewsTask,
                                    WeiboTask, XnliTask)
from finetune.classification.tasks.clue import AfqmcTask, CmnliTask, IflytekTask, OcnliTask, TnewsTask
from finetune.classification.tasks.generic import GenericOptions, GenericTask, read_label_file
from finetune.classification.tasks.glue import ColaTask, MnliTask, MrpcTask, QnliTask, Sst2Task
from finetune.classification.tasks.scoring import ClassificationScorer, macro_f1
from mobilebert import cli

TASKS = {task.name: task for task in (
    XnliTask, LcqmcTask, BqTask, ChnSentiCorpTask, ThucnewsTask, WeiboTask, ShoppingTask,
    AfqmcTask, TnewsTask, IflytekTask, OcnliTask, CmnliTask,
    MnliTask, MrpcTask, ColaTask, Sst2Task, QnliTask, GenericTask)}
# Names the release's run_classifier used.
ALIASES = {"bqcorpus": "bq", "sst-2": "sst2"}


def create_task(name, data_dir, skip_bad_rows=False, generic_options=None):
  """The task called `name` (case-insensitive) reading from data_dir."""
  key = ALIASES.get(name.lower(), name.lower())
  if key not in TASKS:
    raise cli.FlagError(f"--task_name={name!r} is not a known task; choose one of {sorted(TASKS)}")
  if key == GenericTask.name:
    return GenericTask(data_dir, skip_bad_rows, generic_options or GenericOptions())
  return TASKS[key](data_dir, skip_bad_rows)

