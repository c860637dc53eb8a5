"""What a fine-tuned output directory keeps so the predict commands can use it without the training flags.

Training writes, beside its checkpoints: `bert_config.json` and `vocab.txt` (copies of the files it was
given, so the directory still works when those move) and, last, `finetune_settings.json`: the kind of
model (classification, regression, span, tagging), how it reads text (max_seq_length, casing) and the kind's own
settings (labels; the span windows). Each file is written atomically and only over an earlier copy the
runner wrote itself, never over a file of the user's.
"""

import json
import os
from typing import NamedTuple

import tensorflow.compat.v1 as tf

from mobilebert import atomic_io, cli

SETTINGS_FILE = "finetune_settings.json"
BERT_CONFIG_FILE = "bert_config.json"
VOCAB_FILE = "vocab.txt"
LABEL_FILE = "label_list.json"  # the labels (or tags) a model was trained with, in head order
# The kinds of fine-tuned model (a classification task declares one of the first two as its task_type).
CLASSIFICATION = "classification"
REGRESSION = "regression"
SPAN = "span"
TAGGING = "tagging"
KINDS = (CLASSIFICATION, REGRESSION, SPAN, TAGGING)
FORMAT_VERSION = 1
_TOOL = "finetune"


class ModelDir(NamedTuple):
  """A fine-tuned model directory as prediction needs it."""
  output_dir: str
  kind: str
  bert_config_file: str
  vocab_file: str
  max_seq_length: int
  do_lower_case: bool
  settings: dict  # the kind's own: labels, is_pair, task; doc_stride, max_query_length, ...


def _copy(source, target):
  # The runners' check_spares_inputs keeps the source out of output_dir, so this never copies onto it.
  with tf.io.gfile.GFile(source, "rb") as f:
    data = f.read()

  def write(path):
    with tf.io.gfile.GFile(path, "wb") as out:
      out.write(data)

  atomic_io.write_atomically(target, write, _TOOL, overwrite=True, flag="--output_dir")


def read_label_file(directory):
  """(path of `directory`'s label_list.json, its contents or None when there is none)."""
  path = os.path.join(directory, LABEL_FILE)
  if not tf.io.gfile.exists(path):
    return path, None
  with tf.io.gfile.GFile(path, "r") as f:
    return path, json.loads(f.read())


def write_model_dir(output_dir, kind, bert_config_file, vocab_file, max_seq_length, do_lower_case,
                    **settings):
  """Copies the config and vocab into output_dir, then writes the settings file (last)."""
  if kind not in KINDS:
    raise ValueError(f"unknown model kind {kind!r}")
  _copy(bert_config_file, os.path.join(output_dir, BERT_CONFIG_FILE))
  _copy(vocab_file, os.path.join(output_dir, VOCAB_FILE))
  record = {"format": FORMAT_VERSION, "kind": kind, "max_seq_length": int(max_seq_length),
            "do_lower_case": bool(do_lower_case), "bert_config_file": BERT_CONFIG_FILE,
            "vocab_file": VOCAB_FILE, "settings": settings}
  atomic_io.write_text(os.path.join(output_dir, SETTINGS_FILE),
                       json.dumps(record, ensure_ascii=False, indent=1) + "\n", _TOOL,
                       flag="--output_dir")


def read_model_dir(output_dir, expected_kinds=KINDS):
  """The ModelDir of a fine-tuned output_dir; cli.DataError naming what is missing or unexpected."""
  path = os.path.join(output_dir, SETTINGS_FILE)
  if not tf.io.gfile.exists(path):
    raise cli.DataError(
        f"{path} not found: --output_dir must be the directory of a fine-tuning run (--do_train) of "
        "this version, which writes it beside the checkpoints")
  with tf.io.gfile.GFile(path, "r") as f:
    try:
      record = json.loads(f.read())
      kind, settings = record["kind"], record["settings"]
      max_seq_length, do_lower_case = int(record["max_seq_length"]), bool(record["do_lower_case"])
      files = [os.path.join(output_dir, record[key]) for key in ("bert_config_file", "vocab_file")]
    except (ValueError, KeyError, TypeError) as e:
      raise cli.DataError(f"{path}: not a settings file of a fine-tuning run ({e!r})") from None
  if kind not in expected_kinds:
    raise cli.DataError(f"{path}: the model in --output_dir is a {kind} model; this command predicts "
                        f"with {' or '.join(expected_kinds)} models")
  for name in files:
    if not tf.io.gfile.exists(name):
      raise cli.DataError(f"{name} not found: {path} names it as the model's "
                          f"{'vocabulary' if name.endswith('.txt') else 'config'}")
  return ModelDir(output_dir, kind, files[0], files[1], max_seq_length, do_lower_case, settings)
