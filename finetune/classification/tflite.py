"""Scoring a classification or regression task with a TFLite model: the release's --lite_model_path
and --use_post_quantization, so the accuracy (Spearman) cost of quantization is a measured number.

With --use_post_quantization the checkpoint that --do_eval found best (else the latest) is exported
to a dynamic-range int8 (with --activation_quantization: full-integer int8) TFLite model at
--lite_model_path (default <output_dir>/model.int8.tflite); with --lite_model_path alone an existing
.tflite file is scored. Results go to eval_results_tflite.txt next to eval_results.txt, with the
float checkpoint's beside them. A regression checkpoint exports as a one-output classifier
(regression_head.py): its `logits` [N, 1] are the predicted values (`probabilities`: constant 1).
"""

import os
from typing import Callable, NamedTuple

import numpy as np
from absl import logging

from finetune.classification.tasks import CLASSIFICATION, REGRESSION
from mobilebert import atomic_io
from mobilebert import cli
from mobilebert.export import tflite, tflite_eval

RESULTS_FILE = "eval_results_tflite.txt"
DEFAULT_MODEL_NAME = "model.int8.tflite"


def quantize(bert_config, checkpoint, output_path, max_seq_length, calibration_records=None,
             float_softmax=False):
  """Exports `checkpoint` to int8 TFLite (verified against the TF graph): dynamic-range, or
  full-integer calibrated on `calibration_records` (--activation_quantization; a fake-quantized
  checkpoint brings its learned ranges, see tflite.py), with `float_softmax` the attention's mask and
  softmax in float32 (--float_softmax)."""
  variant = "dynamic_int8"
  if calibration_records:
    variant = "int8_float_softmax" if float_softmax else "full_int8"
  result = tflite.export_tflite(bert_config, checkpoint, output_path, variant,
                                seq_length=max_seq_length, overwrite=True,
                                representative_tfrecords=calibration_records)
  logging.info("wrote %s %s (%d bytes) from %s", variant, output_path, result.size, checkpoint)
  return output_path


def lite_model(config, bert_config, best_kept, featurize):
  """The TFLite model a scored run's --lite_model_path / --use_post_quantization scores: with
  --use_post_quantization the best kept checkpoint exported to int8 first (--activation_quantization:
  calibrated on the train split, `featurize("train")`; --float_softmax). `best_kept` is None when
  only --lite_model_path is scored (no checkpoint is)."""
  lite_path = config.lite_model_path or os.path.join(config.run.output_dir, DEFAULT_MODEL_NAME)
  if config.use_post_quantization:
    calibration = featurize("train").path if config.activation_quantization else None
    quantize(bert_config, best_kept["checkpoint"], lite_path, config.max_seq_length, calibration,
             config.float_softmax)
  return lite_path


class ScoredOutput(NamedTuple):
  """What a task type's scorer reads: the records' gold field, the TFLite output [N, width] and its
  width for a task, and what `scorer.update` takes from that output."""
  gold: str
  output: str
  width: Callable
  scored: Callable


SCORED_OUTPUTS = {
    CLASSIFICATION: ScoredOutput("label_ids", "probabilities", lambda task: len(task.labels),
                                 lambda probabilities: np.log(np.maximum(probabilities, 1e-30))),
    REGRESSION: ScoredOutput("label_values", "logits", lambda task: 1, lambda logits: logits[:, 0]),
}


def score(task, split, lite_model_path, batch_size=32):
  """The task scorer's results for a cached split scored by the TFLite model."""
  scored = SCORED_OUTPUTS[task.task_type]
  features = tflite_eval.read_classifier_tfrecords(split.path)
  if scored.gold not in features:
    raise cli.DataError(f"{split.path}: split has no labels to score the TFLite model with")
  outputs = tflite_eval.TFLiteRunner(lite_model_path).run(features, batch_size)
  width = scored.width(task)
  shape = outputs[scored.output].shape if scored.output in outputs else None
  if shape is None or shape[1:] != (width,):
    raise tflite_eval.TFLiteError(
        f"--lite_model_path {lite_model_path}: task {task.name} scores its output "
        f"`{scored.output}` as [N, {width}], found {shape} (outputs {sorted(outputs)}); export a checkpoint "
        f"fine-tuned on task {task.name}")
  scorer = task.scorer()
  scorer.update(features[scored.gold], scored.scored(outputs[scored.output]))
  return scorer.results()


def write_results(output_dir, lite_model_path, results, float_results=None, metric="accuracy"):
  """eval_results_tflite.txt: the TFLite model's results, the float checkpoint's beside them and the
  change of `metric` (also the tagger's, finetune/tagging/tflite.py)."""
  lines = [f"lite_model_path = {lite_model_path}"]
  lines += [f"{key} = {value}" for key, value in sorted(results.items())]
  if float_results:
    lines += [f"float_{key} = {value}" for key, value in sorted(float_results.items())
              if isinstance(value, float)]
    lines.append(f"{metric}_change = {results[metric] - float_results[metric]:.6f}")
  path = os.path.join(output_dir, RESULTS_FILE)
  atomic_io.write_text(path, "\n".join(lines) + "\n")
  return path
