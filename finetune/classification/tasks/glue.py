"""The English GLUE tasks the original supported, for the English configs: MNLI, MRPC, CoLA, SST-2, QNLI.

Layouts are those of the GLUE distribution; test files have no labels (prediction only). Each file's
first row decides between the labelled and the test layout.
"""

from finetune.classification.tasks.base import DataFileError
from finetune.classification.tasks.chinese import BINARY_LABELS, NLI_LABELS
from finetune.classification.tasks.formats import DelimitedTask, Layout


def _glue_splits(dev="dev.tsv", test="test.tsv"):
  return {"train": ("train.tsv",), "dev": (dev,), "test": (test,)}


def _expect(path, task, first_row, wanted):
  raise DataFileError(f"{path}: unrecognised {task} header {first_row[:4]}; expected {wanted}")


class MnliTask(DelimitedTask):
  """MultiNLI (matched): sentence1 col 8, sentence2 col 9, gold_label last (absent in test)."""
  name = "mnli"
  is_pair = True
  split_files = _glue_splits(dev="dev_matched.tsv", test="test_matched.tsv")

  @property
  def labels(self):
    return list(NLI_LABELS)

  def layout_for(self, split, first_row, path):
    if len(first_row) < 10 or first_row[8:10] != ["sentence1", "sentence2"]:
      _expect(path, "MNLI", first_row, "index ... sentence1 (col 8), sentence2 (col 9) ...")
    label = len(first_row) - 1 if first_row[-1] == "gold_label" else None
    return Layout(text_a=8, text_b=9, label=label, header="always")


class MrpcTask(DelimitedTask):
  """MRPC: Quality (label), #1 ID, #2 ID, #1 String, #2 String; the test file has `index` for Quality."""
  name = "mrpc"
  is_pair = True
  split_files = _glue_splits()

  @property
  def labels(self):
    return list(BINARY_LABELS)

  def layout_for(self, split, first_row, path):
    if len(first_row) != 5 or first_row[0] not in ("Quality", "index"):
      _expect(path, "MRPC", first_row, "Quality|index, #1 ID, #2 ID, #1 String, #2 String")
    label = 0 if first_row[0] == "Quality" else None
    return Layout(text_a=3, text_b=4, label=label, num_columns=5, header="always")


class ColaTask(DelimitedTask):
  """CoLA: train/dev have no header (source, label, original mark, sentence); test has `index, sentence`."""
  name = "cola"
  split_files = _glue_splits()

  @property
  def labels(self):
    return list(BINARY_LABELS)

  def layout_for(self, split, first_row, path):
    if first_row == ["index", "sentence"]:
      return Layout(text_a=1, num_columns=2, header="always")
    return Layout(text_a=3, label=1, num_columns=4, header="never")


class Sst2Task(DelimitedTask):
  """SST-2: `sentence, label`; test `index, sentence`."""
  name = "sst2"
  split_files = _glue_splits()

  @property
  def labels(self):
    return list(BINARY_LABELS)

  def layout_for(self, split, first_row, path):
    if first_row == ["sentence", "label"]:
      return Layout(text_a=0, label=1, num_columns=2, header="always")
    if first_row == ["index", "sentence"]:
      return Layout(text_a=1, num_columns=2, header="always")
    return _expect(path, "SST-2", first_row, "sentence, label (train/dev) or index, sentence (test)")


class QnliTask(DelimitedTask):
  """QNLI: `index, question, sentence, label`; test without `label`."""
  name = "qnli"
  is_pair = True
  split_files = _glue_splits()

  @property
  def labels(self):
    return ["entailment", "not_entailment"]

  def layout_for(self, split, first_row, path):
    if first_row[:3] != ["index", "question", "sentence"] or len(first_row) not in (3, 4):
      _expect(path, "QNLI", first_row, "index, question, sentence[, label]")
    label = 3 if len(first_row) == 4 else None
    return Layout(text_a=1, text_b=2, label=label, num_columns=len(first_row), header="always")
