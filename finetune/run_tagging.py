r"""Fine-tunes a MobileBERT student or BERT teacher for token tagging (BIO named entities).

Flags are run_classifier's where they mean the same. Example (People's Daily 1998 NER):

  python -m finetune.tagging.prepare_peoples_daily_ner --output_dir=$DATA
  python -m finetune.run_tagging --data_dir=$DATA --vocab_file=$INIT/vocab.txt \
      --bert_config_file=config/student_base_f2.json --init_checkpoint=$INIT/mobilebert.ckpt \
      --do_train --do_eval --do_predict --max_seq_length=128 --train_batch_size=32 \
      --learning_rate=5e-5 --num_train_epochs=3 --output_dir=/tmp/ner

Data: <data_dir>/{train,dev,test}.conll (`char tag` lines, blank line between sentences) or .jsonl
(`{"text", "entities": [{"start", "end", "label"}]}`, --data_format=jsonl). Writes to --output_dir:
checkpoints, label_list.json (tags, entity types), bert_config.json, vocab.txt and
finetune_settings.json (what `python -m finetune.tagging.predict` reads), eval_results.txt and eval_history.json (entity precision,
recall and F1 of every checkpoint, overall and per type; the best by F1 named), predictions.jsonl
(--do_predict: entities with character offsets into the original text; test_results.txt when
the test file is labelled), eval_results_tflite.txt.
"""

import functools

from absl import app, flags, logging

from finetune.core import distillation_settings, run_config, runner as runner_lib
from finetune.tagging.formats import FORMATS
from finetune.tagging.runner import TaggingRunConfig, run
from mobilebert import cli
from mobilebert import flags as shared_flags

shared_flags.define_model_flags()
shared_flags.define_run_flags()
cli.define_verbose_flag()
shared_flags.define_quantization_flags()
distillation_settings.define_flags()

# Flag defaults are the config's field defaults (written once, in TaggingRunConfig).
_DEFAULT = functools.partial(run_config.default, TaggingRunConfig)

flags.DEFINE_string("data_dir", None, "Directory with train/dev/test.conll (or .jsonl).")
flags.DEFINE_enum("data_format", _DEFAULT("data_format"), list(FORMATS),
                  "conll: `char tag` lines; jsonl: text and entity spans.")
flags.DEFINE_list("labels", list(_DEFAULT("labels")),
                  "Entity types in model order (e.g. PER,LOC,ORG); default: the training file's, sorted.")
flags.DEFINE_string("tfrecord_dir", _DEFAULT("tfrecord_dir"),
                    "Where featurized TFRecords are cached (default --output_dir); keyed by data and "
                    "vocab contents, casing, tags and max_seq_length.")
flags.DEFINE_bool("do_train", _DEFAULT("do_train"), "Fine-tune on the train split.")
flags.DEFINE_bool("do_eval", _DEFAULT("do_eval"),
                  "Score every checkpoint on the dev split (entity F1) into eval_history.json.")
flags.DEFINE_bool("do_test", _DEFAULT("do_test"), "With --do_eval: score the test split instead.")
flags.DEFINE_bool("do_predict", _DEFAULT("do_predict"),
                  "Write the test split's entities to predictions.jsonl.")
flags.DEFINE_integer("train_batch_size", _DEFAULT("train_batch_size"), "Batch size for training.")
flags.DEFINE_integer("eval_batch_size", _DEFAULT("eval_batch_size"), "Batch size for scoring.")
flags.DEFINE_integer("predict_batch_size", _DEFAULT("predict_batch_size"),
                     "Batch size for prediction.")
flags.DEFINE_float("learning_rate", _DEFAULT("learning_rate"), "Peak learning rate.")
flags.DEFINE_float("num_train_epochs", _DEFAULT("num_train_epochs"), "Training epochs.")
flags.DEFINE_integer("num_train_steps", _DEFAULT("num_train_steps"),
                     "If > 0, train this many steps instead of epochs.")
flags.DEFINE_float("warmup_proportion", _DEFAULT("warmup_proportion"),
                   "Fraction of training with linear learning-rate warm-up.")
flags.DEFINE_enum("optimizer", _DEFAULT("optimizer"), ["adamw", "lamb"], "Optimizer.")
flags.DEFINE_float("weight_decay_rate", _DEFAULT("weight_decay_rate"),
                   "Decoupled weight decay (not on biases or norms).")
flags.DEFINE_string("predict_checkpoint", _DEFAULT("predict_checkpoint"),
                    "Checkpoint for --do_predict: latest, best (by dev entity F1) or a path.")
flags.DEFINE_string("lite_model_path", _DEFAULT("lite_model_path"),
                    "With --do_eval: score the eval split with this TFLite model (with "
                    "--use_post_quantization: where the int8 export is written; default "
                    "<output_dir>/model.int8.tflite). Results: eval_results_tflite.txt.")
flags.DEFINE_bool("use_post_quantization", _DEFAULT("use_post_quantization"),
                  "With --do_eval: export the best checkpoint to dynamic-range int8 TFLite and score "
                  "it beside the float checkpoint.")
flags.DEFINE_bool("activation_quantization", _DEFAULT("activation_quantization"),
                  "With --use_post_quantization: full-integer int8, calibrated on train examples.")
flags.DEFINE_integer("log_every_n_steps", _DEFAULT("log_every_n_steps"),
                     "Log examples/s and ETA every this many steps.")

FLAGS = flags.FLAGS


def config_from_flags(flag_values):
  """The one typed config the library receives."""
  return run_config.config_from_flags(TaggingRunConfig, flag_values,
                                      labels=tuple(flag_values.labels))


def main(argv):
  del argv
  report = runner_lib.run_entry_point("run_tagging", lambda: config_from_flags(FLAGS), run)
  if report.best:
    logging.info("best checkpoint %s: entity f1 %.4f", report.best["checkpoint"], report.best["f1"])


if __name__ == "__main__":
  app.run(main)
