"""Export to TensorFlow Lite: float32, float16, dynamic-range int8, full-integer int8 and int8 with a
float softmax.

Inputs `input_ids`, `input_mask`, `segment_ids` int32 [batch, seq] with seq fixed at export
(--max_seq_length) and batch resizable; outputs as in the SavedModel. Dense layers are exported as 2-D
matmuls (FULLY_CONNECTED) unless --use_einsum. The int8 variants calibrate their activation ranges on a
representative dataset: examples of TFRecords holding `input_ids`/`input_mask`/`segment_ids` (classifier
or pretraining records).

A checkpoint fine-tuned with --use_quantized_training is converted from its fake-quantized graph: the
converter takes the learned ranges of the dense layers and attention scores from its FakeQuant nodes
and calibrates the remaining tensors (norms, residual sums, softmax and context) on the representative
dataset, as the release's run_squad.py did. The int8 variants convert the graph built for them
(quantization.int8_export): the token-type embedding as a gather, and keys and values on symmetric
ranges (zero point 0, for XNNPACK's int8 attention matmuls; from a float checkpoint, their largest
magnitudes on the representative examples).
  full_int8           integer-only (for accelerators that run int8 alone): attention masked without the
                      -10000 adder, which would otherwise set the softmax input's range.
  int8_float_softmax  int8 but for the attention's mask and softmax, float32 between a DEQUANTIZE of the
                      scores and a QUANTIZE of the probabilities (TFLite's selective quantization). On
                      CPUs the fast one: XNNPACK has no int8 softmax, and the builtin kernel runs on one
                      thread. 12-layer base-f2, batch 1, 2 threads, LiteRT, AVX-512 Xeon: 11.0 ms
                      integer-only, 5.0 ms with the float softmax, 14.8 ms float32 (bench/README.md).

Verification runs the .tflite (on the runtime tflite_eval.make_interpreter picks: LiteRT when
installed) and the checkpoint's TF graph on the same inputs (the representative
examples when given, else graph.sample_inputs) and bounds max|tflite - tf| / max|tf| per output.
Measured on the goldens (random weights) and a fine-tuned tiny classifier (tests/test_export_tflite.py):
  float32       <= 7e-7                         tolerance 1e-5
  float16       <= 1.3e-3                       tolerance 1e-2
  dynamic_int8  <= 2.5e-2                       tolerance 0.1
  full_int8     0.014-0.035 (classifier,        tolerance 0.5: catches broken conversions only. The
                seeds 0-2); goldens calibrated  accuracy cost is measured by scoring a task with
                on random ids <= 0.15           tflite_eval (classifier: 0.997 -> 0.997).
  int8_float_softmax  as full_int8 (classifier seed 0: 0.023-0.034 on each output; both 0.034 at
                most), probabilities 1e-4 (full_int8 4e-3); tolerance 0.5.
Before the integer-only graph masked padding from the 0/1 mask (quantization.py) the classifier
reached 0.20-0.29 and, seed 2, 1.08 (refused), the IB-BERT golden 0.64 (refused).
"""

import collections
import contextlib

import numpy as np
import tensorflow.compat.v1 as tf

from mobilebert import quantization
from mobilebert.export import atomic
from mobilebert.export import graph
from mobilebert.export import saved_model
from mobilebert.export import tflite_eval
from mobilebert.export import verify

Variant = collections.namedtuple("Variant", ["configure", "tolerance", "needs_representative_data"])
# What an int8_float_softmax model may compute in float32: the attention's mask and softmax (and the
# classifier's), between the DEQUANTIZE of the scores and the QUANTIZE of the probabilities.
FLOAT_SOFTMAX_OPS = frozenset({"SOFTMAX", "ADD", "SUB", "MUL", "QUANTIZE", "DEQUANTIZE"})


def _float16(converter, _):
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  converter.target_spec.supported_types = [tf.float16]


def _dynamic_int8(converter, _):
  converter.optimizations = [tf.lite.Optimize.DEFAULT]


def _full_int8(converter, representative):
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  converter.representative_dataset = representative
  # Every op in int8; conversion fails rather than silently keeping float kernels.
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]


def _int8_float_softmax(converter, representative):
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  converter.representative_dataset = representative
  # The float ops are chosen by name at quantization (_quantize_all_but); the rest must be int8,
  # which check_float_ops verifies on the converted model.


VARIANTS = {
    "float32": Variant(lambda converter, _: None, 1e-5, False),
    "float16": Variant(_float16, 1e-2, False),
    "dynamic_int8": Variant(_dynamic_int8, 0.1, False),
    "full_int8": Variant(_full_int8, 0.5, True),
    "int8_float_softmax": Variant(_int8_float_softmax, 0.5, True),
}
INT8_VARIANTS = ("full_int8", "int8_float_softmax")  # int8 activations: built under int8_export

ExportResult = collections.namedtuple("ExportResult", ["path", "variant", "size", "outputs", "checks"])


def representative_features(input_files, num_examples, seq_length=None):
  """The first `num_examples` examples of TFRecords, as {input name: int32 [N, T]}."""
  features = tflite_eval.read_classifier_tfrecords(input_files, max_examples=num_examples)
  width = features["input_ids"].shape[1]
  if seq_length and width != seq_length:
    raise graph.ExportError(f"--representative_tfrecords have sequence length {width} but "
                            f"--max_seq_length is {seq_length}")
  return features


def check_trained_ranges(init_checkpoint):
  """Refuses a QAT checkpoint whose activation ranges were never updated.

  A checkpoint saved before the first --use_quantized_training step (the step-0 checkpoint that
  --do_eval scores) still holds the initial ranges; converted to an integer-only model, it made both
  TFLite runtimes abort the process while allocating tensors instead of raising.
  """
  reader = tf.train.load_checkpoint(init_checkpoint)
  suffix = f"/{quantization.ACTIVATION_SCOPE}/initialized"
  marks = sorted(n for n in reader.get_variable_to_shape_map() if n.endswith(suffix))
  untrained = [n for n in marks if float(reader.get_tensor(n)) < 0.5]
  if untrained:
    raise graph.ExportError(
        f"{init_checkpoint}: {len(untrained)} of {len(marks)} activation ranges of its "
        f"fake-quantization nodes were never updated (e.g. {untrained[0]}): it was saved before the first "
        "--use_quantized_training step; export a checkpoint written after training")


def symmetric_bounds(config, init_checkpoint, seq_length, representative, use_einsum=False,
                     batch_size=32):
  """{scope: largest magnitude on the representative examples} of the float graph's activations
  that the integer-only model holds with zero point 0 (keys and values, quantization.py)."""
  with quantization.int8_export() as export:
    serving_graph, session, inputs, _, _ = saved_model.build_serving_graph(
        config, init_checkpoint, seq_length, use_einsum)
  bounds = dict.fromkeys(export.tensors, 0.0)
  try:
    with serving_graph.as_default():
      for start in range(0, len(representative["input_ids"]), batch_size):
        feed = {inputs[n]: representative[n][start:start + batch_size] for n in graph.INPUT_NAMES}
        values = session.run(export.tensors, feed)
        bounds = {k: max(bounds[k], float(np.abs(v).max())) for k, v in values.items()}
  finally:
    session.close()
  return bounds


def convert(config, init_checkpoint, variant, seq_length, representative=None, use_einsum=False):
  """The .tflite bytes of the checkpoint's serving graph in `variant`, and the output names."""
  if variant not in VARIANTS:
    raise graph.ExportError(f"--tflite_variant={variant}: expected one of {sorted(VARIANTS)}")
  spec = VARIANTS[variant]
  int8 = variant in INT8_VARIANTS
  if int8:
    check_trained_ranges(init_checkpoint)
  if spec.needs_representative_data and representative is None:
    raise graph.ExportError(f"--tflite_variant={variant} calibrates on real inputs: give "
                            "--representative_tfrecords")
  bounds = None
  if int8 and not graph.detect_heads(init_checkpoint).fake_quantized:
    bounds = symmetric_bounds(config, init_checkpoint, seq_length, representative, use_einsum)
  float_softmax = variant == "int8_float_softmax"
  with (quantization.int8_export(bounds, float_softmax) if int8
        else contextlib.nullcontext()) as export:
    serving_graph, session, inputs, outputs, _ = saved_model.build_serving_graph(
        config, init_checkpoint, seq_length, use_einsum)

  def dataset():
    for i in range(len(representative["input_ids"])):
      yield [representative[n][i:i + 1] for n in graph.INPUT_NAMES]

  try:
    with serving_graph.as_default():
      converter = tf.lite.TFLiteConverter.from_session(
          session, [inputs[n] for n in graph.INPUT_NAMES], list(outputs.values()))
      spec.configure(converter, dataset)
      if not float_softmax:
        return converter.convert(), list(outputs)
      content = _quantize_all_but(converter, dataset, ["SOFTMAX"], export.float_nodes)
  finally:
    session.close()
  check_float_ops(content)
  return content, list(outputs)


def _quantize_all_but(converter, dataset, float_ops, float_nodes):
  """Calibrated int8 .tflite bytes with the ops of types `float_ops` and the ops named `float_nodes`
  kept in float32 (TFLite's selective quantization, through its QuantizationDebugger)."""
  options = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=float_ops,
                                                         denylisted_nodes=float_nodes)
  debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=dataset,
                                                       debug_options=options)
  return debugger.get_nondebug_quantized_model()


def check_float_ops(content):
  """Refuses an int8_float_softmax model that computes more than its attention softmax in float32."""
  from mobilebert.export import tflite_ops  # pylint: disable=g-import-not-at-top
  report = tflite_ops.op_report(content)
  extra = sorted({r.op for r in report.rows if "float32" in r.operand_types} - FLOAT_SOFTMAX_OPS)
  if extra:
    raise graph.ExportError(f"int8_float_softmax: ops {extra} stayed in float32; only the "
                            f"attention's {sorted(FLOAT_SOFTMAX_OPS)} may")


def export_tflite(config, init_checkpoint, output_path, variant="float32", seq_length=128,
                  representative_tfrecords=None, num_calibration_examples=100, use_einsum=False,
                  overwrite=False):
  """Converts, verifies and writes a .tflite file (plus `<output>.json` describing it).

  Returns:
    ExportResult(path, variant, size in bytes, output names, verification Checks).
  """
  atomic.check_output([output_path, output_path + ".json"], overwrite)
  if seq_length > config.max_position_embeddings:
    raise graph.ExportError(f"--max_seq_length={seq_length} exceeds the config's "
                            f"max_position_embeddings {config.max_position_embeddings}")
  representative = None
  if representative_tfrecords:
    representative = representative_features(representative_tfrecords, num_calibration_examples,
                                             seq_length)
  content, output_names = convert(config, init_checkpoint, variant, seq_length, representative,
                                  use_einsum)
  if representative is not None:
    features = {n: representative[n][:8] for n in graph.INPUT_NAMES}
  else:
    features = graph.sample_inputs(config, seq_length)
  checks = verify_tflite(content, config, init_checkpoint, features, variant, use_einsum)
  with atomic.staged(output_path, overwrite) as temp:
    with tf.io.gfile.GFile(temp, "wb") as f:
      f.write(content)
  atomic.write_json_beside(output_path + ".json", {
      "format": "tflite", "variant": variant, "seq_length": seq_length,
      "source_checkpoint": init_checkpoint, "inputs": list(graph.INPUT_NAMES),
      "outputs": output_names, "size_bytes": len(content),
      "calibration": {"tfrecords": representative_tfrecords,
                      "examples": None if representative is None else len(representative["input_ids"])},
      "verification": [c._asdict() for c in checks], "bert_config": config.to_dict()}, overwrite)
  return ExportResult(output_path, variant, len(content), output_names, checks)


def verify_tflite(content, config, init_checkpoint, features, variant, use_einsum=False):
  """Runs the .tflite bytes and the checkpoint's graph on `features`; raises ExportError on mismatch."""
  reference = graph.TFModel(config, init_checkpoint, use_einsum=use_einsum)
  try:
    want = reference.run(features["input_ids"], features["input_mask"], features["segment_ids"])
  finally:
    reference.close()
  got = tflite_eval.TFLiteRunner(model_content=content).run(features)
  tolerance = VARIANTS[variant].tolerance
  checks = [verify.compare(name, got[name], want[name], tolerance, relative=True)
            for name in sorted(got)]
  return verify.require(checks, f"TFLite {variant} model")


def agreement(probabilities, reference_probabilities):
  """Share of examples on which two classifiers pick the same class."""
  return float(np.mean(np.argmax(probabilities, -1) == np.argmax(reference_probabilities, -1)))
