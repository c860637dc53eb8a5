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

On the device, with the release's flags: --use_quantized_training fine-tunes through fake quantization;
--export_dir=DIR --use_post_quantization [--activation_quantization] writes DIR/model_float.tflite and
DIR/model_quant.tflite (and DIR/saved_model), and with --do_predict the int8 model predicts the same
questions into predictions_tflite.json, scored beside the checkpoint in eval_results_tflite.json;
--lite_model_path=F --do_predict predicts with an existing TFLite model.
"""

from absl import flags, logging

import functools

from finetune.core import flags as finetune_flags
from finetune.core import run_config
from finetune.core import runner as runner_lib
from finetune.span.runner import SpanRunConfig, run
from mobilebert import cli

FLAGS = flags.FLAGS
# Flag defaults are the config's field defaults (written once, in SpanRunConfig).
_DEFAULT = functools.partial(run_config.default, SpanRunConfig)
_define = finetune_flags.define
finetune_flags.define_common_flags(SpanRunConfig, "Fine-tune on --train_file.")
finetune_flags.define_prediction_flags(
    SpanRunConfig, predicted="--predict_file",
    predictions_file=("predictions.json and nbest_predictions.json, scored into eval_results.json "
                      "when it has answers"),
    keyed_by="the data and vocab contents, casing, window settings and --convert_traditional",
    best_by="F1 on --predict_file")
_define("bool", "do_eval", _DEFAULT("do_eval"),
        "Score every checkpoint on --predict_file (which must have answers) with the CMRC 2018 metric "
        "(with --do_train each one as it is written, before --keep_checkpoint_max can delete it) into "
        "eval_history.json and eval_results.txt; --predict_checkpoint=best then predicts and exports "
        "with the best one by F1.")

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
# The release's run_squad.py TFLite flags (finetune/span/tflite.py).
_define("string", "export_dir", _DEFAULT("export_dir"),
        "Export the --predict_checkpoint checkpoint here: saved_model/, model_float.tflite and, with "
        "--use_post_quantization, model_quant.tflite.")
_define("string", "lite_model_path", _DEFAULT("lite_model_path"),
        "With --do_predict: predict with this TFLite model (with --use_post_quantization: where the "
        "int8 export is written; default <export_dir>/model_quant.tflite, else "
        "<output_dir>/model.int8.tflite), into predictions_tflite.json.")
_define("bool", "use_post_quantization", _DEFAULT("use_post_quantization"),
        "Export the predicted checkpoint to dynamic-range int8 TFLite; with --do_predict predict with "
        "it too, scored beside the checkpoint (eval_results_tflite.json).")
finetune_flags.define_int8_numerics_flags(SpanRunConfig, "the first 100 --train_file features")

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
  if report.lite_scores:
    logging.info("TFLite %s: EM %s  F1 %s", report.lite_model_path, report.lite_scores["EM"],
                 report.lite_scores["F1"])


if __name__ == "__main__":
  # Required flags are checked by SpanRunConfig.validate (one line, like every other user error).
  cli.run_main(main, "run_cmrc2018")
