r"""Fine-tunes a MobileBERT student or BERT teacher for sentence(-pair) classification.

Flags keep the release's names (run.xnli.sh runs unchanged, and its --rand_seed now works). Example:

  python -m finetune.run_classifier --task_name=xnli --data_dir=$DATA --vocab_file=$INIT/vocab.txt \
      --bert_config_file=config/student_base_f2.json --init_checkpoint=$INIT/mobilebert.ckpt \
      --do_train --do_eval --max_seq_length=128 --train_batch_size=64 --learning_rate=6e-5 \
      --num_train_epochs=2 --output_dir=/tmp/xnli

Tasks: see finetune/classification/tasks (`--task_name=generic` reads your own tsv/csv/jsonl files, with
`--task_type=regression` a number per example; stsb_zh is a regression task). Writes to --output_dir:
checkpoints, label_list.json, eval_results.txt and eval_history.json (every checkpoint scored, the best
named), test_results.tsv (--do_predict), and what `python -m finetune.classification.predict` needs
(finetune/core/model_dir.py).
"""

import functools

from absl import app, flags, logging

from finetune.classification.runner import ClassifierRunConfig, run
from finetune.classification.tasks import TASK_TYPES, TASKS, GenericOptions
from finetune.core import distillation_settings, run_config
from finetune.core import runner as runner_lib
from mobilebert import cli
from mobilebert import flags as shared_flags

# Flag defaults are the config's field defaults (written once, in ClassifierRunConfig).
_DEFAULT = functools.partial(run_config.default, ClassifierRunConfig)

shared_flags.define_model_flags()
shared_flags.define_run_flags()
cli.define_verbose_flag()
shared_flags.define_quantization_flags()
distillation_settings.define_flags()

flags.DEFINE_string("task_name", None, f"Task: one of {', '.join(sorted(TASKS))} (bqcorpus = bq).")
flags.DEFINE_string("data_dir", None, "Directory with the task's data files.")
flags.DEFINE_string("tfrecord_dir", _DEFAULT("tfrecord_dir"),
                    "Where featurized TFRecords are cached (default --output_dir). Caches are keyed by "
                    "task, split, data and vocab contents, casing and max_seq_length.")
flags.DEFINE_bool("do_train", _DEFAULT("do_train"), "Fine-tune on the train split.")
flags.DEFINE_bool("do_eval", _DEFAULT("do_eval"),
                  "Score every checkpoint on the dev split (with --do_train each one as it is written, "
                  "before --keep_checkpoint_max can delete it) into eval_history.json.")
flags.DEFINE_bool("do_test", _DEFAULT("do_test"),
                  "With --do_eval: score the (labelled) test split instead of dev.")
flags.DEFINE_bool("do_predict", _DEFAULT("do_predict"),
                  "Write predictions for the test split to test_results.tsv.")
flags.DEFINE_integer("train_batch_size", _DEFAULT("train_batch_size"),
                     "Total batch size for training.")
flags.DEFINE_integer("eval_batch_size", _DEFAULT("eval_batch_size"),
                     "Total batch size for scoring.")
flags.DEFINE_integer("predict_batch_size", _DEFAULT("predict_batch_size"),
                     "Total batch size for prediction.")
flags.DEFINE_float("learning_rate", _DEFAULT("learning_rate"), "Peak learning rate.")
flags.DEFINE_float("num_train_epochs", _DEFAULT("num_train_epochs"), "Training epochs.")
flags.DEFINE_integer("num_train_steps", _DEFAULT("num_train_steps"),
                     "If > 0, train this many steps instead of epochs.")
flags.DEFINE_float("warmup_proportion", _DEFAULT("warmup_proportion"),
                   "Fraction of training with linear learning-rate warm-up.")
flags.DEFINE_enum("optimizer", _DEFAULT("optimizer"), ["adamw", "lamb"], "Optimizer.")
flags.DEFINE_float("weight_decay_rate", _DEFAULT("weight_decay_rate"),
                   "Decoupled weight decay (not on biases or norms).")
flags.DEFINE_bool("skip_bad_rows", _DEFAULT("skip_bad_rows"),
                  "Skip and count malformed rows instead of stopping at the first one.")
flags.DEFINE_string("predict_checkpoint", _DEFAULT("predict_checkpoint"),
                    "Checkpoint for --do_predict: latest, best (by dev accuracy, or Spearman for a "
                    "regression task; needs --do_eval) or a path.")
flags.DEFINE_string("lite_model_path", _DEFAULT("lite_model_path"),
                    "With --do_eval: score the eval split with this TFLite model (with "
                    "--use_post_quantization: where the int8 export is written; default "
                    "<output_dir>/model.int8.tflite). Results: eval_results_tflite.txt.")
flags.DEFINE_bool("use_post_quantization", _DEFAULT("use_post_quantization"),
                  "With --do_eval: export the best checkpoint to dynamic-range int8 TFLite and score "
                  "it beside the float checkpoint, so the accuracy cost of quantization is measured.")
flags.DEFINE_bool("activation_quantization", _DEFAULT("activation_quantization"),
                  "With --use_post_quantization: a full-integer int8 model (int8 activations too) "
                  "instead of dynamic-range int8; ranges from a --use_quantized_training checkpoint's "
                  "fake-quant nodes where it has them, the rest calibrated on 100 train examples.")
flags.DEFINE_integer("log_every_n_steps", _DEFAULT("log_every_n_steps"),
                     "Log examples/s and ETA every this many steps.")
# --task_name=generic: the user's own files.
flags.DEFINE_enum("data_format", "tsv", ["tsv", "csv", "jsonl"],
                  "generic: train/dev/test .tsv, .csv (quoted fields may hold commas and newlines) or "
                  ".jsonl.")
flags.DEFINE_enum("task_type", GenericOptions._field_defaults["task_type"], list(TASK_TYPES),
                  "generic: classification (a label per example) or regression (a number per "
                  "example: MSE loss, Pearson and Spearman correlation, best checkpoint by Spearman).")
flags.DEFINE_string("text_a_column", "text_a", "generic: first text column (0-based index or name).")
flags.DEFINE_string("text_b_column", "", "generic: second text column for pair tasks; empty: single.")
flags.DEFINE_string("label_column", "label", "generic: label column (0-based index or name).")
flags.DEFINE_enum("has_header", "auto", ["auto", "true", "false"], "generic: tsv header row.")
flags.DEFINE_list("labels", [], "generic: label order; default: the training file's labels, sorted.")

FLAGS = flags.FLAGS


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
  app.run(main)
