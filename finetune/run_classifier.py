r"""Fine-tunes a MobileBERT student or BERT teacher for sentence(-pair) classification.

Flags keep the release's names (run.xnli.sh runs unchanged, and its --rand_seed now works). Example:

  python -m finetune.run_classifier --task_name=xnli --data_dir=$DATA --vocab_file=$INIT/vocab.txt \
      --bert_config_file=config/student_base_f2.json --init_checkpoint=$INIT/mobilebert.ckpt \
      --do_train --do_eval --max_seq_length=128 --train_batch_size=64 --learning_rate=6e-5 \
      --num_train_epochs=2 --output_dir=/tmp/xnli

Tasks: see finetune/classification/tasks (`--task_name=generic` reads your own tsv/jsonl files). Writes to --output_dir:
checkpoints, label_list.json, eval_results.txt and eval_history.json (every checkpoint scored, the best
named), test_results.tsv (--do_predict).
"""

import dataclasses

from absl import app, flags, logging

from finetune.classification.runner import ClassifierRunConfig, run
from finetune.classification.tasks import TASKS, GenericOptions
from mobilebert import cli
from mobilebert import flags as shared_flags
from mobilebert.run_config import RunSettings

shared_flags.define_model_flags()
shared_flags.define_run_flags()
cli.define_verbose_flag()
shared_flags.define_quantization_flags()

flags.DEFINE_string("task_name", None, f"Task: one of {', '.join(sorted(TASKS))} (bqcorpus = bq).")
flags.DEFINE_string("data_dir", None, "Directory with the task's data files.")
flags.DEFINE_string("tfrecord_dir", None,
                    "Where featurized TFRecords are cached (default --output_dir). Caches are keyed by "
                    "task, split, data and vocab contents, casing and max_seq_length.")
flags.DEFINE_bool("do_train", False, "Fine-tune on the train split.")
flags.DEFINE_bool("do_eval", False,
                  "Score every checkpoint on the dev split (with --do_train each one as it is written, "
                  "before --keep_checkpoint_max can delete it) into eval_history.json.")
flags.DEFINE_bool("do_test", False, "With --do_eval: score the (labelled) test split instead of dev.")
flags.DEFINE_bool("do_predict", False, "Write predictions for the test split to test_results.tsv.")
flags.DEFINE_integer("train_batch_size", 32, "Total batch size for training.")
flags.DEFINE_integer("eval_batch_size", 8, "Total batch size for scoring.")
flags.DEFINE_integer("predict_batch_size", 8, "Total batch size for prediction.")
flags.DEFINE_float("learning_rate", 5e-5, "Peak learning rate.")
flags.DEFINE_float("num_train_epochs", 3.0, "Training epochs.")
flags.DEFINE_integer("num_train_steps", 0, "If > 0, train this many steps instead of epochs.")
flags.DEFINE_float("warmup_proportion", 0.1, "Fraction of training with linear learning-rate warm-up.")
flags.DEFINE_enum("optimizer", "adamw", ["adamw", "lamb"], "Optimizer.")
flags.DEFINE_float("weight_decay_rate", 0.01, "Decoupled weight decay (not on biases or norms).")
flags.DEFINE_bool("skip_bad_rows", False,
                  "Skip and count malformed rows instead of stopping at the first one.")
flags.DEFINE_string("predict_checkpoint", "latest",
                    "Checkpoint for --do_predict: latest, best (by dev accuracy, needs --do_eval) or a "
                    "path.")
flags.DEFINE_string("lite_model_path", None,
                    "With --do_eval: score the eval split with this TFLite model (with "
                    "--use_post_quantization: where the int8 export is written; default "
                    "<output_dir>/model.int8.tflite). Results: eval_results_tflite.txt.")
flags.DEFINE_bool("use_post_quantization", False,
                  "With --do_eval: export the best checkpoint to dynamic-range int8 TFLite and score "
                  "it beside the float checkpoint, so the accuracy cost of quantization is measured.")
flags.DEFINE_bool("activation_quantization", False,
                  "With --use_post_quantization: a full-integer int8 model (int8 activations too) "
                  "instead of dynamic-range int8; ranges from a --use_quantized_training checkpoint's "
                  "fake-quant nodes where it has them, the rest calibrated on 100 train examples.")
flags.DEFINE_integer("log_every_n_steps", 100, "Log examples/s and ETA every this many steps.")
# --task_name=generic: the user's own files.
flags.DEFINE_enum("data_format", "tsv", ["tsv", "jsonl"], "generic: train/dev/test .tsv or .jsonl.")
flags.DEFINE_string("text_a_column", "text_a", "generic: first text column (0-based index or name).")
flags.DEFINE_string("text_b_column", "", "generic: second text column for pair tasks; empty: single.")
flags.DEFINE_string("label_column", "label", "generic: label column (0-based index or name).")
flags.DEFINE_enum("has_header", "auto", ["auto", "true", "false"], "generic: tsv header row.")
flags.DEFINE_list("labels", [], "generic: label order; default: the training file's labels, sorted.")

FLAGS = flags.FLAGS


def config_from_flags(flag_values):
  """The one typed config the library receives."""
  fields = {f.name for f in dataclasses.fields(ClassifierRunConfig)} - {"run", "generic"}
  generic = GenericOptions(
      data_format=flag_values.data_format, text_a_column=flag_values.text_a_column,
      text_b_column=flag_values.text_b_column, label_column=flag_values.label_column,
      has_header=flag_values.has_header, labels=tuple(flag_values.labels))
  return ClassifierRunConfig(run=RunSettings.from_flags(flag_values), generic=generic,
                             **{name: getattr(flag_values, name) for name in fields})


def main(argv):
  del argv
  with cli.reporting_user_errors("run_classifier"):
    config = config_from_flags(FLAGS)
    with cli.removing_output_dir_left_empty(config.run.output_dir), \
         cli.removing_output_dir_left_empty(config.tfrecord_dir):
      report = run(config)
  if report.best:
    logging.info("best checkpoint %s: accuracy %.4f", report.best["checkpoint"],
                 report.best["accuracy"])


if __name__ == "__main__":
  # Required flags are checked by ClassifierRunConfig.validate, so a missing one is reported as one
  # line like every other user error.
  app.run(main)
