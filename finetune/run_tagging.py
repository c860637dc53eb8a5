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

from absl import flags, logging

from finetune.core import flags as finetune_flags
from finetune.core import run_config, runner as runner_lib
from finetune.tagging.formats import FORMATS
from finetune.tagging.runner import TaggingRunConfig, run
from mobilebert import cli

# Flag defaults are the config's field defaults (written once, in TaggingRunConfig).
_DEFAULT = functools.partial(run_config.default, TaggingRunConfig)
_define = finetune_flags.define
finetune_flags.define_common_flags(TaggingRunConfig, "Fine-tune on the train split.")
finetune_flags.define_prediction_flags(
    TaggingRunConfig, predicted="the test split",
    predictions_file="predictions.jsonl (entities with character offsets)",
    keyed_by="data and vocab contents, casing, tags and max_seq_length", best_by="entity F1")
finetune_flags.define_scoring_flags(TaggingRunConfig, "entity F1")

_define("string", "data_dir", None, "Directory with train/dev/test.conll (or .jsonl).")
flags.DEFINE_enum("data_format", _DEFAULT("data_format"), list(FORMATS),
                  "conll: `char tag` lines; jsonl: text and entity spans.")
_define("list", "labels", list(_DEFAULT("labels")),
        "Entity types in model order (e.g. PER,LOC,ORG); default: the training file's, sorted.")

FLAGS = flags.FLAGS

# --helpshort lists the flags defined through finetune/core/flags.py as this tool's own.
flags.adopt_module_key_flags(finetune_flags)


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
  cli.run_main(main, "run_tagging")
