"""Scoring the tagger as a TFLite model, as classification does (--lite_model_path,
--use_post_quantization, --activation_quantization): the entity F1 that int8 costs is measured.

The export is classification's (finetune/classification/tflite.quantize: the checkpoint's serving graph,
which carries the tagging head as `tag_probabilities` [B, T, L], verified against TensorFlow); the
TFLite outputs are read back into entities by the same host code as the float checkpoint's.
"""

import numpy as np
import tensorflow.compat.v1 as tf
from absl import logging

from finetune.classification import tflite as classification_tflite
from finetune.tagging import scoring
from mobilebert import cli
from mobilebert.export import graph, tflite_eval

OUTPUT = "tag_probabilities"


def read_windows(path):
  """{input name: int32 [N, T]} and `first_piece` [N, T] of a cached split's records, in order."""
  columns = {name: [] for name in graph.INPUT_NAMES + ("first_piece",)}
  for record in tf.io.tf_record_iterator(path):
    feature = tf.train.Example.FromString(record).features.feature
    for name, values in columns.items():
      values.append(list(feature[name].int64_list.value))
  return {name: np.asarray(values, np.int32) for name, values in columns.items()}


def score(task, split, sentences, lite_model_path, batch_size=32):
  """Entity precision/recall/F1 of the TFLite model on a cached, labelled split."""
  windows = read_windows(split.path)
  outputs = tflite_eval.TFLiteRunner(lite_model_path).run(windows, batch_size)
  if OUTPUT not in outputs:
    raise cli.DataError(f"{lite_model_path}: no `{OUTPUT}` output (outputs {sorted(outputs)}); export "
                        "a checkpoint fine-tuned by run_tagging")
  return scoring.score(task, scoring.sentence_predictions(task, sentences, split.windows,
                                                          windows["first_piece"], outputs[OUTPUT]))


def quantize_and_score(config, task, bert_config, split, sentences, best_kept, featurize):
  """With --use_post_quantization exports the best kept checkpoint to int8 first; scores the model at
  --lite_model_path (default <output_dir>/model.int8.tflite) and writes eval_results_tflite.txt."""
  lite_path = classification_tflite.lite_model(config, bert_config, best_kept, featurize)
  results = score(task, split, sentences, lite_path, config.eval_batch_size)
  path = classification_tflite.write_results(config.run.output_dir, lite_path, results, best_kept,
                                         metric=scoring.BEST_METRIC)
  logging.info("TFLite %s: entity f1 %.4f (written to %s)", lite_path, results["f1"], path)
  return results
