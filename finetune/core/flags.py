"""The flags every fine-tuning entry point shares, each defined here once.

Help text lives here; defaults come from the kind's run config (`run_config.default`), so a default
is still written once, in the dataclass. An entry point calls `define_common_flags` with its config
class, `define_prediction_flags` with the words that differ per tool, then `define_scoring_flags` if
its kind scores every checkpoint on dev, then its own flags.
"""

import functools

from absl import flags

from finetune.core import distillation_settings, run_config
from mobilebert import cli
from mobilebert import flags as shared_flags


def define(kind, name, default, help_text, **kwargs):
  """Defines a flag unless an earlier entry point in this process already did.

  A process that imports several entry points (the test suite) keeps the first definition instead of
  failing with absl's duplicate-flag error.
  """
  if name in flags.FLAGS:
    return
  if kind == "enum":  # DEFINE_enum takes the allowed values before the help text
    flags.DEFINE_enum(name, default, kwargs.pop("enum_values"), help_text, **kwargs)
  else:
    getattr(flags, f"DEFINE_{kind}")(name, default, help_text, **kwargs)


def define_common_flags(config_class, do_train_help):
  """Model, run, quantization and teacher flags, and the training schedule of every kind."""
  shared_flags.define_model_flags()
  # The kind's config holds the default of the shared --max_seq_length (span QA: longer).
  flags.FLAGS.set_default("max_seq_length", run_config.default(config_class, "max_seq_length"))
  shared_flags.define_run_flags()
  cli.define_verbose_flag()
  shared_flags.define_quantization_flags()
  distillation_settings.define_flags()
  default = functools.partial(run_config.default, config_class)
  define("bool", "do_train", default("do_train"), do_train_help)
  define("integer", "train_batch_size", default("train_batch_size"),
         "Total batch size for training.")
  define("integer", "predict_batch_size", default("predict_batch_size"),
         "Total batch size for prediction.")
  define("float", "learning_rate", default("learning_rate"), "Peak learning rate.")
  define("float", "num_train_epochs", default("num_train_epochs"), "Training epochs.")
  define("integer", "num_train_steps", default("num_train_steps"),
         "If > 0, train this many steps instead of epochs.")
  define("float", "warmup_proportion", default("warmup_proportion"),
         "Fraction of training with linear learning-rate warm-up.")
  define("enum", "optimizer", default("optimizer"), "Optimizer.", enum_values=["adamw", "lamb"])
  define("float", "weight_decay_rate", default("weight_decay_rate"),
         "Decoupled weight decay (not on biases or norms).")
  define("integer", "log_every_n_steps", default("log_every_n_steps"),
         "Log examples/s and ETA every this many steps.")
  define("string", "input_encoding", default("input_encoding"),
         "Encoding of the data files (train, dev, test, predict), e.g. gbk, gb18030 or big5 for data "
         "that is not UTF-8.")


def define_prediction_flags(config_class, predicted, predictions_file, keyed_by, best_by=None):
  """--do_predict, --predict_checkpoint and --tfrecord_dir. The help says what the tool predicts
  (`predicted`) into which file(s), what its feature cache is keyed by, and, for a kind that scores
  checkpoints, the dev metric `best_by` that picks --predict_checkpoint=best."""
  default = functools.partial(run_config.default, config_class)
  define("bool", "do_predict", default("do_predict"),
         f"Write predictions for {predicted} to {predictions_file}.")
  best = f", best (by dev {best_by}; needs --do_eval)" if best_by else ""
  define("string", "predict_checkpoint", default("predict_checkpoint"),
         f"Checkpoint for --do_predict: latest (in --output_dir){best} or a checkpoint path.")
  define("string", "tfrecord_dir", default("tfrecord_dir"),
         f"Where featurized TFRecords are cached (default --output_dir). Caches are keyed by "
         f"{keyed_by}.")


def define_scoring_flags(config_class, metric):
  """Dev scoring of every checkpoint and the TFLite export scored beside it; `metric` names the
  score in the help text."""
  default = functools.partial(run_config.default, config_class)
  define("bool", "do_eval", default("do_eval"),
         f"Score every checkpoint on the dev split ({metric}; with --do_train each one as it is "
         "written, before --keep_checkpoint_max can delete it) into eval_history.json.")
  define("bool", "do_test", default("do_test"),
         "With --do_eval: score the (labelled) test split instead of dev.")
  define("integer", "eval_batch_size", default("eval_batch_size"), "Total batch size for scoring.")
  define("string", "lite_model_path", default("lite_model_path"),
         "With --do_eval: score the eval split with this TFLite model (with "
         "--use_post_quantization: where the int8 export is written; default "
         "<output_dir>/model.int8.tflite). Results: eval_results_tflite.txt.")
  define("bool", "use_post_quantization", default("use_post_quantization"),
         "With --do_eval: export the best checkpoint to dynamic-range int8 TFLite and score it "
         "beside the float checkpoint, so the accuracy cost of quantization is measured.")
  define_int8_numerics_flags(config_class, "100 train examples")


def define_int8_numerics_flags(config_class, calibration_data):
  """--activation_quantization and --float_softmax: the numerics of a --use_post_quantization
  export (run_config.TFLiteRunConfig), whose calibration examples are `calibration_data`."""
  default = functools.partial(run_config.default, config_class)
  define("bool", "activation_quantization", default("activation_quantization"),
         "With --use_post_quantization: a full-integer int8 model (int8 activations too) instead "
         "of dynamic-range int8; ranges from a --use_quantized_training checkpoint's fake-quant "
         f"nodes where it has them, the rest calibrated on {calibration_data}.")
  define("bool", "float_softmax", default("float_softmax"),
         "With --activation_quantization: keep the attention's mask and softmax in float32 "
         "(int8_float_softmax, no longer integer-only): on CPUs, where XNNPACK has no int8 "
         "softmax, about twice as fast as the integer-only model.")
