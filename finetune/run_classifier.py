r"""Fine-tunes a MobileBERT student or BERT teacher for sentence(-pair) classification.

Flags keep the release's names (run.xnli.sh runs unchanged, and its --rand_seed now works). Example:

  python -m finetune.run_classifier --task_name=xnli --data_dir=$DATA --vocab_file=$INIT/vocab.txt \
      --bert_config_file=config/student_base_f2.json --init_checkpoint=$INIT/mobilebert.ckpt \
      --do_train --do_eval --max_seq_length=128 --train_batch_size=64 --learning_rate=6e-5 \
      --num_train_epochs=2 --output_dir=/tmp/xnli

Tasks: see finetune/classification/tasks (`--task_name=generic` reads your own tsv/csv/jsonl files, with
`--task_type=regression` a number per example; stsb_zh is a regression task). Writes to --output_dir:
checkpoints, label_list.json, eval_results.txt and eval_history.json (every checkpoint scored, the best
named), test_results.tsv (--do_predict), eval_results_tflite.txt (--use_post_quantization or
--lite_model_path, classification and regression alike), and what `python -m
finetune.classification.predict` needs (finetune/core/model_dir.py).
"""

import functools

from absl import flags, logging

from finetune.classification.runner import ClassifierRunConfig, run
from finetune.classification.tasks import TASK_TYPES, TASKS, GenericOptions
from finetune.classification.tasks.generic import EXTENSIONS
from finetune.core import flags as finetune_flags
from finetune.core import run_config
from finetune.core import runner as runner_lib
from mobilebert import cli

# Flag defaults are the config's field defaults (written once, in ClassifierRunConfig).
_DEFAULT = functools.partial(run_config.default, ClassifierRunConfig)
_GENERIC = GenericOptions._field_defaults  # --task_name=generic: the reader options' defaults
_define = finetune_flags.define

_METRIC = "accuracy, or Spearman for a regression task"  # what picks the best checkpoint
finetune_flags.define_common_flags(ClassifierRunConfig, "Fine-tune on the train split.")
finetune_flags.define_prediction_flags(
    ClassifierRunConfig, predicted="the test split", predictions_file="test_results.tsv",
    keyed_by="task, split, data and vocab contents, casing and max_seq_length", best_by=_METRIC)
finetune_flags.define_scoring_flags(ClassifierRunConfig, _METRIC)

_define("string", "task_name", None, f"Task: one of {', '.join(sorted(TASKS))} (bqcorpus = bq).")
_define("string", "data_dir", None, "Directory with the task's data files.")
_define("bool", "skip_bad_rows", _DEFAULT("skip_bad_rows"),
        "Skip and count malformed rows instead of stopping at the first one.")
# --task_name=generic: the user's own files.
flags.DEFINE_enum("data_format", _GENERIC["data_format"], list(EXTENSIONS),
                  "generic: train/dev/test .tsv, .csv (quoted fields may hold commas and newlines) "
                  "or .jsonl.")
flags.DEFINE_enum("task_type", _GENERIC["task_type"], list(TASK_TYPES),
                  "generic: classification (a label per example) or regression (a number per "
                  "example: MSE loss, Pearson and Spearman correlation, best checkpoint by "
                  "Spearman).")
_define("string", "text_a_column", _GENERIC["text_a_column"],
        "generic: first text column (0-based index or name).")
_define("string", "text_b_column", _GENERIC["text_b_column"],
        "generic: second text column for pair tasks; empty: single.")
_define("string", "label_column", _GENERIC["label_column"],
        "generic: label column (0-based index or name).")
flags.DEFINE_enum("has_header", _GENERIC["has_header"], ["auto", "true", "false"],
                  "generic: tsv header row.")
_define("list", "labels", list(_GENERIC["labels"]),
        "generic: label order; default: the training file's labels, sorted.")

FLAGS = flags.FLAGS

# --helpshort lists the flags defined through finetune/core/flags.py as this tool's own.
flags.adopt_module_key_flags(finetune_flags)


def config_from_flags(flag_values):
  """The one typed config the library receives."""
  generic = GenericOptions(
      data_format=flag_values.data_format, text_a_column=flag_values.text_a_column,
      text_b_column=flag_values.text_b_column, label_column=flag_values.label_column,
      has_header=flag_values.has_header, labels=tuple(flag_values.labels),
      task_type=flag_values.task_type)
  return run_config.config_from_flags(ClassifierRunConfig, flag_values, generic=generic)


def main(argv):
  del argv
  report = runner_lib.run_entry_point("run_classifier", lambda: config_from_flags(FLAGS), run)
  if report.best:
    logging.info("best checkpoint %s: %s %.4f", report.best["checkpoint"], report.selected_by,
                 report.best[report.selected_by])


if __name__ == "__main__":
  # Required flags are checked by ClassifierRunConfig.validate, so a missing one is reported as one
  # line like every other user error.
  cli.run_main(main, "run_classifier")
