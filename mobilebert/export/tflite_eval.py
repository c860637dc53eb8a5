"""Running a .tflite export on arrays or classifier TFRecords, to measure what quantization costs.

Library side of run_classifier.py's `--lite_model_path` (and `--use_post_quantization`): score a task
with the TFLite interpreter instead of TensorFlow.

  runner = TFLiteRunner("model.int8.tflite")
  features = read_classifier_tfrecords(["eval.tf_record"])
  outputs = runner.run(features)            # {"logits": [N, C], "probabilities": [N, C], ...}
  accuracy = classifier_accuracy(outputs["probabilities"], features["label_ids"])

Runtime: LiteRT (`ai-edge-litert`, the TFLite runtime's current release) when it is installed, else the
interpreter bundled with TensorFlow 2.15. `make_interpreter` is the one place that chooses; both run the
same .tflite files, LiteRT with newer kernels (3x faster float32, 10x faster dynamic int8 on base-f2,
issue 15). Scoring, export verification and the benchmarks all go through it.
"""

import numpy as np
import tensorflow.compat.v1 as tf
from absl import logging

from mobilebert import atomic_io
from mobilebert import cli

INPUT_NAMES = ("input_ids", "input_mask", "segment_ids")
# The label a classifier record may carry (finetune/classification/features.py): {feature: (its
# tf.train.Feature list, the dtype read)}; a class index, or the number a regression task predicts.
LABEL_FIELDS = {"label_ids": ("int64_list", np.int32), "label_values": ("float_list", np.float32)}
RUNTIMES = ("litert", "tensorflow")
_logged_runtimes = set()


class TFLiteError(cli.UserError, ValueError):
  """A .tflite file or input data that cannot be run."""


def _litert_interpreter_class():
  """LiteRT's Interpreter class, or None when `ai-edge-litert` is not installed."""
  try:
    from ai_edge_litert.interpreter import Interpreter  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  return Interpreter


def available_runtimes():
  """The runtimes importable here, preferred first."""
  return [r for r in RUNTIMES if r == "tensorflow" or _litert_interpreter_class() is not None]


def make_interpreter(model_content, num_threads=None, runtime=None):
  """(interpreter, runtime name) for .tflite bytes; `runtime` None picks the first available.

  Raises:
    TFLiteError: `runtime` unknown or not installed.
  """
  if runtime is None:
    runtime = available_runtimes()[0]
  if runtime not in RUNTIMES:
    raise TFLiteError(f"TFLite runtime {runtime!r}: expected one of {list(RUNTIMES)}")
  if runtime == "litert":
    interpreter_class = _litert_interpreter_class()
    if interpreter_class is None:
      raise TFLiteError("TFLite runtime 'litert' is not installed: pip install ai-edge-litert "
                        "(version in requirements.txt)")
  else:
    interpreter_class = tf.lite.Interpreter
  if runtime not in _logged_runtimes:  # once per process: scoring builds one per split
    _logged_runtimes.add(runtime)
    logging.info("TFLite runtime: %s (%s)", runtime, interpreter_class.__module__)
  return interpreter_class(model_content=model_content, num_threads=num_threads), runtime


class TFLiteRunner:
  """A TFLite interpreter over a model with int32 inputs `input_ids`, `input_mask`, `segment_ids`.

  `runtime` is "litert", "tensorflow" or None (LiteRT when installed; see make_interpreter).
  """

  def __init__(self, model_path=None, model_content=None, num_threads=None, runtime=None):
    if model_content is None:
      if not model_path or not tf.io.gfile.exists(model_path):
        raise TFLiteError(f"--lite_model_path {model_path}: file not found")
      with tf.io.gfile.GFile(model_path, "rb") as f:
        model_content = f.read()
    try:
      self.interpreter, self.runtime = make_interpreter(model_content, num_threads, runtime)
    except TFLiteError:
      raise
    except (ValueError, RuntimeError) as e:
      raise TFLiteError(f"{model_path or 'model'}: not a TFLite model ({str(e).strip()})") from None
    self.inputs = {d["name"]: d for d in self.interpreter.get_input_details()}
    self.outputs = {d["name"]: d for d in self.interpreter.get_output_details()}
    missing = [n for n in INPUT_NAMES if n not in self.inputs]
    if missing:
      raise TFLiteError(f"{model_path or 'model'}: inputs {sorted(self.inputs)} lack {missing}; "
                        "export it with `python -m mobilebert.export --format=tflite`")
    self.seq_length = int(self.inputs["input_ids"]["shape_signature"][1])
    self._batch_size = None

  @property
  def output_names(self):
    return sorted(self.outputs)

  def _resize(self, batch_size):
    if batch_size != self._batch_size:
      for name in INPUT_NAMES:
        self.interpreter.resize_tensor_input(self.inputs[name]["index"], [batch_size, self.seq_length])
      self.interpreter.allocate_tensors()
      self._batch_size = batch_size

  def run(self, features, batch_size=32):
    """{output name: float32 array} over all examples of {input name: int [N, T]}, in batches."""
    total = len(features["input_ids"])
    width = np.shape(features["input_ids"])[1]
    if width != self.seq_length and self.seq_length != -1:
      raise TFLiteError(f"inputs have sequence length {width}, the TFLite model takes "
                        f"{self.seq_length}; export it with --max_seq_length={width}")
    results = {name: [] for name in self.outputs}
    for start in range(0, total, batch_size):
      chunk = {n: np.asarray(features[n][start:start + batch_size], np.int32) for n in INPUT_NAMES}
      self._resize(len(chunk["input_ids"]))
      for name in INPUT_NAMES:
        self.interpreter.set_tensor(self.inputs[name]["index"], chunk[name])
      self.interpreter.invoke()
      for name, detail in self.outputs.items():
        results[name].append(_dequantize(self.interpreter.get_tensor(detail["index"]), detail))
    return {name: np.concatenate(parts) for name, parts in results.items()}


def _dequantize(value, detail):
  """Float32 values of an output tensor (int8 outputs of a full-integer model carry scale/zero point)."""
  if np.issubdtype(value.dtype, np.floating):
    return value.astype(np.float32)
  scale, zero_point = detail["quantization"]
  return ((value.astype(np.float32) - zero_point) * scale).astype(np.float32)


def read_classifier_tfrecords(input_files, max_examples=None):
  """Reads classifier TFRecords (`input_ids`, `input_mask`, `segment_ids`, optional label).

  Returns {name: int32 array [N, T]} and each of LABEL_FIELDS ([N]: `label_ids` int32, a regression
  task's `label_values` float32) that every record has. Examples with `is_real_example` 0 (TPU batch
  padding) are skipped.
  """
  if isinstance(input_files, str):
    input_files = [input_files]
  paths = [p for pattern in input_files for p in sorted(tf.io.gfile.glob(pattern))
           if not atomic_io.is_internal(p)]
  if not paths:
    raise TFLiteError(f"no TFRecord file matches {list(input_files)}")
  columns = {name: [] for name in INPUT_NAMES + tuple(LABEL_FIELDS)}
  for path in paths:
    for record in tf.io.tf_record_iterator(path):
      feature = tf.train.Example.FromString(record).features.feature
      missing = [n for n in INPUT_NAMES if n not in feature]
      if missing:
        raise TFLiteError(f"{path}: record lacks features {missing}; expected classifier TFRecords")
      if "is_real_example" in feature and not feature["is_real_example"].int64_list.value[0]:
        continue
      for name in INPUT_NAMES:
        columns[name].append(list(feature[name].int64_list.value))
      for name, (kind, _) in LABEL_FIELDS.items():
        if name in feature:
          columns[name].append(getattr(feature[name], kind).value[0])
      if max_examples and len(columns["input_ids"]) >= max_examples:
        break
    if max_examples and len(columns["input_ids"]) >= max_examples:
      break
  lengths = {len(row) for name in INPUT_NAMES for row in columns[name]}
  if len(lengths) > 1:
    raise TFLiteError(f"{paths}: records have different sequence lengths {sorted(lengths)}")
  features = {name: np.asarray(columns[name], np.int32) for name in INPUT_NAMES}
  for name, (_, dtype) in LABEL_FIELDS.items():
    if columns[name] and len(columns[name]) == len(columns["input_ids"]):
      features[name] = np.asarray(columns[name], dtype)
  return features


def classifier_accuracy(probabilities, label_ids):
  """Share of examples whose most probable class is the label."""
  return float(np.mean(np.argmax(probabilities, axis=-1) == np.asarray(label_ids)))


def predict_classifier(lite_model_path, input_files, batch_size=32, runtime=None):
  """Scores classifier TFRecords with a .tflite model: (outputs dict, label_ids or None)."""
  features = read_classifier_tfrecords(input_files)
  outputs = TFLiteRunner(lite_model_path, runtime=runtime).run(features, batch_size)
  if "probabilities" not in outputs:
    raise TFLiteError(f"{lite_model_path}: no `probabilities` output; export a fine-tuned "
                      "classifier checkpoint")
  return outputs, features.get("label_ids")
