"""Pretraining: plain masked-LM, progressive knowledge transfer, and pretraining distillation.

  python pretrain/run_pretraining.py --bert_config_file=config/student_base_f2.json \
    --bert_teacher_config_file=config/roberta_wwm_ext.json --init_checkpoint=roberta/bert_model.ckpt \
    --input_file='data/tf_examples.*' --output_dir=out --do_train --layer_wise_warmup ...

The flags are those of the original script (run_scripts/run_pretraining.sh passes the release's),
plus --nsp, --layer_wise_warmup_schedule, --lower_layer_lr_scale, --eval_input_file, --num_gpus,
--precision, --loss_scale and --allow_changed_settings.
This module only turns flags into a checked PretrainingSettings; pretrain/schedule.py runs it.
See pretrain/README.md.
"""

from absl import flags
import tensorflow.compat.v1 as tf

from mobilebert import cli
from mobilebert import flags as shared_flags
from mobilebert.config import BertConfig
from mobilebert.run_config import RunSettings
from pretrain import data_files
from pretrain import progressive
from pretrain import schedule
from pretrain.pretraining_settings import PretrainingFlagError, PretrainingSettings

FLAGS = flags.FLAGS


def _define(kind, name, default, *args):
  if name not in FLAGS:  # another entry point imported in the same process may have defined it
    getattr(flags, f"DEFINE_{kind}")(name, default, *args)


def define_flags():
  shared_flags.define_model_flags()
  shared_flags.define_run_flags()
  cli.define_verbose_flag()
  # The original kept every checkpoint (keep_checkpoint_max=0); pretraining checkpoints are the
  # run's history, so keep that default here.
  FLAGS.set_default("keep_checkpoint_max", 0)
  _define("string", "input_file", None, "Input TFRecord files (comma-separated, globs allowed).")
  _define("string", "first_input_file", None, "First-round input files (comma-separated, globs).")
  _define("string", "eval_input_file", None, "Evaluation files (default: --input_file, as the "
          "original evaluated on its training data).")
  _define("string", "bert_teacher_config_file", None, "Teacher config JSON: enables the layer-wise "
          "warm-up and distillation; the teacher is built under teacher/.")
  _define("integer", "max_predictions_per_seq", 20, "Masked positions per sequence; must match "
          "the data.")
  _define("integer", "first_max_seq_length", 128, "Sequence length of the first-round data.")
  _define("bool", "do_train", False, "Train (warm-up, first round, main round).")
  _define("bool", "do_eval", False, "Evaluate the newest main-round checkpoint; writes "
          "eval_results.txt.")
  _define("integer", "train_batch_size", 32, "Global training batch size.")
  _define("integer", "first_train_batch_size", None, "First-round batch (default "
          "--train_batch_size).")
  _define("integer", "eval_batch_size", 8, "Global evaluation batch size.")
  _define("integer", "max_eval_steps", 100, "Evaluation batches.")
  _define("float", "learning_rate", 5e-5, "Peak learning rate (the warm-up's constant rate).")
  _define("integer", "num_train_steps", 100000, "Main-round steps, first round included.")
  _define("integer", "num_warmup_steps", 10000, "Linear learning-rate warm-up steps of the main "
          "round (not the layer-wise warm-up).")
  _define("integer", "first_num_train_steps", 0, "Steps of the first round (0: none).")
  _define("enum", "optimizer", "adamw", ["adamw", "lamb"], "Optimizer.")
  _define("float", "weight_decay_rate", 0.01, "Decoupled weight decay (the original hard-wired "
          "0.01 whatever this said).")
  _define("bool", "layer_wise_warmup", False, "Progressive knowledge transfer before the main "
          "round, in output_dir/warmup.")
  _define("integer", "num_distill_steps", 100000, "Steps of the layer-wise warm-up (all stages).")
  defaults = ", ".join(f"{schedule} under {optimizer}"
                       for optimizer, schedule in progressive.DEFAULT_SCHEDULE.items())
  _define("string", "layer_wise_warmup_schedule", None, "How the layer-wise warm-up trains: "
          "'original' = the original code step for step (stage l is steps s*l+1..s*l+s; LAMB: 3x "
          "rate with a periodic background, moments restarted each stage, non-encoder variables "
          "frozen; AdamW: no layer-wise rate at all, as the Chinese release trained); 'staged' = "
          "ours (stage l is steps [s*l, s*(l+1)), ramped 1x rate, moments kept, the same schedule "
          f"under both optimizers). Default: {defaults} (the authors' LAMB design; the original "
          "AdamW decays the layers it does not train). See pretrain/README.md.")
  _define("float", "lower_layer_lr_scale", 0.1, "Learning-rate scale of the layers below the "
          "current stage (0 freezes them); the original's 0.1. Refused with --optimizer=adamw and "
          "the original schedule, which has no layer-wise rate to scale.")
  _define("float", "distill_temperature", 1.0, "Temperature dividing the teacher's MLM logits.")
  _define("float", "distill_ground_truth_ratio", 1.0, "Weight r of the true token in the MLM "
          "targets (1 - r) * teacher + r * one_hot; 1 trains without the teacher.")
  _define("float", "hidden_distill_factor", 0.0, "Feature-map transfer weight.")
  _define("float", "attention_distill_factor", 0.0, "Attention transfer weight.")
  _define("float", "beta_distill_factor", 0.0, "Mean transfer weight.")
  _define("float", "gamma_distill_factor", 0.0, "Variance transfer weight.")
  _define("bool", "nsp", False, "Add the next-sentence loss (data with real NSP labels).")
  _define("bool", "use_summary", False, "Write every named loss, accuracy and the learning rate "
          "to TensorBoard.")
  _define("float", "loss_scale", 1024.0, "Static loss scale of --precision=float16 (lower it if the "
          "loss turns NaN).")
  _define("bool", "dry_run", False, "Check the flags and the data, print the phases and how far "
          "each has got, and exit without building a graph.")


def settings_from_flags(flag_values):
  """Reads and checks the flags; raises PretrainingFlagError (naming the flag) on contradictions."""
  for name in ("bert_config_file", "input_file", "output_dir"):
    if not getattr(flag_values, name):
      raise PretrainingFlagError(f"--{name} is required")
  teacher_file = flag_values.bert_teacher_config_file or None
  first_files = None
  if flag_values.first_num_train_steps:
    if not flag_values.first_input_file:
      raise PretrainingFlagError("--first_num_train_steps > 0 needs --first_input_file")
    first_files = data_files.expand_file_patterns(flag_values.first_input_file, "first_input_file")
  eval_files = None
  if flag_values.eval_input_file:
    eval_files = data_files.expand_file_patterns(flag_values.eval_input_file, "eval_input_file")
  names = [f for f in PretrainingSettings.__dataclass_fields__ if f in flag_values and f not in (
      "bert_config_file", "bert_teacher_config_file")]
  return PretrainingSettings(
      bert_config=BertConfig.from_json_file(flag_values.bert_config_file),
      bert_config_file=flag_values.bert_config_file,
      bert_teacher_config=BertConfig.from_json_file(teacher_file) if teacher_file else None,
      bert_teacher_config_file=teacher_file,
      input_files=data_files.expand_file_patterns(flag_values.input_file, "input_file"),
      first_input_files=first_files, eval_input_files=eval_files,
      run=RunSettings.from_flags(flag_values),
      **{name: getattr(flag_values, name) for name in names}).validate()


def main(_):
  tf.logging.set_verbosity(tf.logging.INFO)
  with cli.reporting_user_errors("run_pretraining.py"):
    settings = settings_from_flags(FLAGS)
    if FLAGS.dry_run:
      print("\n".join(schedule.describe(settings)))
      return
    with cli.removing_output_dir_left_empty(settings.run.output_dir):
      tf.io.gfile.makedirs(settings.run.output_dir)
      if settings.do_train:
        schedule.train(settings)
      if settings.do_eval:
        schedule.evaluate(settings)


if __name__ == "__main__":
  define_flags()
  cli.run_main(main, "run_pretraining.py")
