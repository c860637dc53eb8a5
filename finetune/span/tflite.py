# coding=utf-8
"""The release's TFLite path for span extraction: run_squad.py's --export_dir, --use_post_quantization,
--activation_quantization and --lite_model_path, in run_cmrc2018.py.

--export_dir=D writes the checkpoint that --do_predict uses (--predict_checkpoint) as D/saved_model,
D/model_float.tflite and, with --use_post_quantization, D/model_quant.tflite (the release's names); with
--do_predict the int8 model (or --lite_model_path, an existing .tflite file) then predicts the same
questions as the checkpoint did, into predictions_tflite.json and nbest_predictions_tflite.json, scored
into eval_results_tflite.json beside the checkpoint's scores. Every export is verified against the
checkpoint's TF graph (mobilebert/export/tflite.py) before it is written.
"""

import json
import os

import numpy as np
from absl import logging

from finetune import cmrc2018_evaluate
from finetune.classification import tflite as classification_tflite
from finetune.span import postprocess as span_postprocess
from mobilebert import atomic_io
from mobilebert.export import graph
from mobilebert.export import saved_model
from mobilebert.export import tflite
from mobilebert.export import tflite_eval

SAVED_MODEL_DIR = "saved_model"
FLOAT_MODEL = "model_float.tflite"
QUANTIZED_MODEL = "model_quant.tflite"
DEFAULT_MODEL_NAME = "model.int8.tflite"  # --use_post_quantization without --export_dir
RESULTS_FILE = "eval_results_tflite.json"
OUTPUTS = ("start_logits", "end_logits")


def quantized_model_path(config):
  """Where --use_post_quantization writes the int8 model: --lite_model_path, else
  <export_dir>/model_quant.tflite, else <output_dir>/model.int8.tflite."""
  if config.lite_model_path:
    return config.lite_model_path
  if config.export_dir:
    return os.path.join(config.export_dir, QUANTIZED_MODEL)
  return os.path.join(config.run.output_dir, DEFAULT_MODEL_NAME)


def export(config, bert_config, checkpoint, calibration_records=None):
  """The exports the flags ask for (see the module doc); returns the int8 model's path or None.

  `calibration_records`: the train features' TFRecords (--activation_quantization calibrates on the
  first 100, as the release did)."""
  if config.export_dir:
    path = os.path.join(config.export_dir, SAVED_MODEL_DIR)
    saved_model.export_saved_model(bert_config, checkpoint, path, seq_length=config.max_seq_length,
                                   overwrite=True)
    logging.info("wrote SavedModel %s from %s", path, checkpoint)
    path = os.path.join(config.export_dir, FLOAT_MODEL)
    result = tflite.export_tflite(bert_config, checkpoint, path, "float32",
                                  seq_length=config.max_seq_length, overwrite=True)
    logging.info("wrote float32 %s (%d bytes) from %s", path, result.size, checkpoint)
  if not config.use_post_quantization:
    return None
  # The classifier's and tagger's int8 export: dynamic-range, or calibrated with the flags' numerics.
  return classification_tflite.quantize(
      bert_config, checkpoint, quantized_model_path(config), config.max_seq_length,
      calibration_records if config.activation_quantization else None, config.float_softmax)


def predict(lite_model_path, features, batch_size=32):
  """RawResults of span features (finetune/span/features.py) from a TFLite model's start/end logits."""
  runner = tflite_eval.TFLiteRunner(lite_model_path)
  missing = [n for n in OUTPUTS if n not in runner.outputs]
  if missing:
    raise tflite_eval.TFLiteError(
        f"--lite_model_path {lite_model_path}: no {missing} output (outputs {runner.output_names}); "
        "export a checkpoint fine-tuned by run_cmrc2018")
  inputs = {n: np.asarray([getattr(f, n) for f in features], np.int32) for n in graph.INPUT_NAMES}
  outputs = runner.run(inputs, batch_size)
  return [span_postprocess.RawResult(f.unique_id, start, end)
          for f, start, end in zip(features, outputs["start_logits"], outputs["end_logits"])]


def predict_and_score(config, lite_model_path, examples, features, gold, float_scores):
  """Predicts with the TFLite model into the *_tflite.json files; with answers, scores them into
  eval_results_tflite.json (the checkpoint's scores beside, when it was predicted too). Returns the
  TFLite model's scores or None."""
  results = predict(lite_model_path, features, config.predict_batch_size)
  predictions, nbest = span_postprocess.make_predictions(
      examples, features, results, config.n_best_size, config.max_answer_length)
  output_dir = config.run.output_dir
  paths = span_postprocess.write_predictions(output_dir, predictions, nbest, suffix="_tflite")
  if gold is None:
    logging.info("TFLite %s: predictions written to %s", lite_model_path, paths[0])
    return None
  scores = cmrc2018_evaluate.result_to_dict(
      cmrc2018_evaluate.evaluate(gold, predictions, config.predict_file))
  record = {"lite_model_path": lite_model_path, **scores}
  if float_scores:
    record.update({f"float_{k}": v for k, v in float_scores.items()})
    record["F1_change"] = round(float(scores["F1"]) - float(float_scores["F1"]), 3)
  atomic_io.write_text(os.path.join(output_dir, RESULTS_FILE), json.dumps(record) + "\n")
  logging.info("TFLite %s on %s: %s", lite_model_path, config.predict_file, json.dumps(record))
  return scores
