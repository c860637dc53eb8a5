# coding=utf-8
r"""Fine-tunes a MobileBERT student or BERT teacher for span extraction: CMRC 2018 and DRCD.

  python -m finetune.run_cmrc2018 --vocab_file=$INIT/vocab.txt \
      --bert_config_file=config/student_base_f2.json --init_checkpoint=$INIT/mobilebert.ckpt \
      --do_train --train_file=$DATA/cmrc2018_train.json \
      --do_predict --predict_file=$DATA/cmrc2018_dev.json \
      --max_seq_length=512 --doc_stride=128 --train_batch_size=32 --learning_rate=3e-5 \
      --num_train_epochs=2 --output_dir=/tmp/cmrc2018

DRCD (traditional Chinese): add --convert_traditional; the model reads simplified text and the
predictions are written in the original traditional characters. Writes to --output_dir: checkpoints,
predictions.json ({id: text}), nbest_predictions.json, and eval_results.json (the official metric's
AVERAGE/F1/EM/TOTAL/SKIP) when the predict file has answers. Score any predictions file with
`python finetune/cmrc2018_evaluate.py DATASET.json predictions.json`.
"""

from absl import app, flags, logging

import functools

from finetune.core import flags as finetune_flags
from finetune.core import run_config
from finetune.core import runner as runner_lib
from finetune.span.runner import SpanRunConfig, run

FLAGS = flags.FLAGS
# Flag defaults are the config's field defaults (written once, in SpanRunConfig).
_DEFAULT = functools.partial(run_config.default, SpanRunConfig)
_define = finetune_flags.define
finetune_flags.define_common_flags(SpanRunConfig, "Fine-tune on --train_file.")
finetune_flags.define_prediction_flags(
    SpanRunConfig, predicted="--predict_file",
    predictions_file=("predictions.json and nbest_predictions.json, scored into eval_results.json "
                      "when it has answers"),
    keyed_by="the data and vocab contents, casing, window settings and --convert_traditional")

_define("string", "train_file", _DEFAULT("train_file"),
        "SQuAD-style JSON for training (CMRC 2018 / DRCD train).")
_define("string", "predict_file", _DEFAULT("predict_file"),
        "SQuAD-style JSON to predict (and score, if it has answers).")
_define("bool", "convert_traditional", _DEFAULT("convert_traditional"),
        "Convert traditional Chinese to simplified (OpenCC t2s) before tokenizing (DRCD); "
        "predictions are reported in the original characters.")
_define("integer", "doc_stride", _DEFAULT("doc_stride"),
        "Tokens between the starts of consecutive context windows.")
_define("integer", "max_query_length", _DEFAULT("max_query_length"),
        "Question tokens kept (the rest is cut).")
_define("integer", "n_best_size", _DEFAULT("n_best_size"),
        "Start and end candidates per window, and answers in the n-best.")
_define("integer", "max_answer_length", _DEFAULT("max_answer_length"), "Longest answer in tokens.")

# --helpshort lists the flags defined through finetune/core/flags.py as this tool's own.
flags.adopt_module_key_flags(finetune_flags)


def config_from_flags(flag_values):
  """The one typed config the library receives."""
  return run_config.config_from_flags(SpanRunConfig, flag_values)


def main(argv):
  del argv
  report = runner_lib.run_entry_point("run_cmrc2018", lambda: config_from_flags(FLAGS), run)
  if report.scores:
    logging.info("EM %s  F1 %s  (%d questions)", report.scores["EM"], report.scores["F1"],
                 report.scores["TOTAL"])


if __name__ == "__main__":
  # Required flags are checked by SpanRunConfig.validate (one line, like every other user error).
  app.run(main)
