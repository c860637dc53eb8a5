"""CLUE classification tasks (JSON lines, as CLUEbenchmark publishes them): AFQMC, TNEWS, IFLYTEK,
OCNLI, CMNLI. Test files have an `id` and no label; prediction keeps the id in the guid."""

import json
import os

import tensorflow.compat.v1 as tf

from finetune.classification.tasks.base import DataFileError
from finetune.classification.tasks.chinese import BINARY_LABELS, NLI_LABELS
from finetune.classification.tasks.formats import JsonLinesTask

# TNEWS codes 100-116 without 105 and 111, which CLUE left unused.
TNEWS_LABELS = tuple(str(code) for code in range(100, 117) if code not in (105, 111))
IFLYTEK_LABELS = tuple(str(code) for code in range(119))


def _json_splits(train=("train.json",)):
  return {"train": train, "dev": ("dev.json",), "test": ("test.json",)}


class AfqmcTask(JsonLinesTask):
  """AFQMC (Ant Financial question matching): sentence1, sentence2, label "0"/"1"."""
  name = "afqmc"
  is_pair = True
  text_b_field = "sentence2"
  split_files = _json_splits()

  @property
  def labels(self):
    return list(BINARY_LABELS)


class _LabelFileMixin:
  """CLUE ships `labels.json` (one {"label", <description>} object a line) beside the data."""
  description_field = ""

  def label_display_names(self):
    names = {label: label for label in self.labels}
    path = os.path.join(self.data_dir, "labels.json")
    if not tf.io.gfile.exists(path):
      return names
    with tf.io.gfile.GFile(path, "r") as f:
      for line_no, line in enumerate(f.read().split("\n"), 1):
        if not line.strip():
          continue
        try:
          row = json.loads(line)
          names[str(row["label"])] = f"{row['label']}:{row[self.description_field]}"
        except (ValueError, KeyError, TypeError) as e:
          raise DataFileError(f"{path}:{line_no}: expected {{\"label\", \"{self.description_field}\"}} "
                              f"({e})") from None
    return names


class TnewsTask(_LabelFileMixin, JsonLinesTask):
  """TNEWS (Toutiao news titles, 15 topics): `sentence`, label codes such as "102"."""
  name = "tnews"
  text_a_field = "sentence"
  description_field = "label_desc"
  split_files = _json_splits()

  @property
  def labels(self):
    return list(TNEWS_LABELS)


class IflytekTask(_LabelFileMixin, JsonLinesTask):
  """IFLYTEK (app descriptions, 119 categories): `sentence`, labels "0".."118"."""
  name = "iflytek"
  text_a_field = "sentence"
  description_field = "label_des"
  split_files = _json_splits()

  @property
  def labels(self):
    return list(IFLYTEK_LABELS)


class OcnliTask(JsonLinesTask):
  """OCNLI: sentence1, sentence2, label; rows labelled `-` (no annotator majority) are left out, as CLUE
  does. Training reads train.json (CLUE) or the OCNLI repository's train.50k.json / train.3k.json."""
  name = "ocnli"
  is_pair = True
  text_b_field = "sentence2"
  skip_labels = frozenset({"-"})
  split_files = _json_splits(train=("train.json", "train.50k.json", "train.3k.json"))

  @property
  def labels(self):
    return list(NLI_LABELS)


class CmnliTask(OcnliTask):
  """CMNLI (CLUE's Chinese MNLI + XNLI): the OCNLI format."""
  name = "cmnli"
  split_files = _json_splits()
