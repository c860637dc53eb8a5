"""TFLite worker models of the benchmarks: batch-1 inference of a .tflite file, or of an export of a
freshly initialized encoder in any numeric format.

The numeric formats (FORMATS) are the export's variants plus `qat_int8` and `qat_int8_float_softmax`:
the int8 exports of a checkpoint with fake-quantization ranges (mobilebert/quantization.py), as
`--use_quantized_training` writes them. For speed the weights' values do not matter, so the random-weight exports are converted
without the export's verification (a random-weight model calibrated on random ids can miss the
full_int8 tolerance; the exports of trained models are verified, bench/bench_quantization.py).

The norms' scales and offsets are moved off their initial 1 and 0 (NORM_SPREAD), as training moves
them. At their initial values the converter drops each multiply by a scale of ones, and XNNPACK
refuses an int8 ADD of an all-zero offset (its quantization scale, ~4e-9, is out of range) and leaves
it to the builtin kernel: the integer-only exports of the 12-layer base-f2 measured 15.4 ms that way
and 11.0 ms with trained-like norms (float32 15.3 ms either way; LiteRT, 2 threads, AVX-512 Xeon).
"""

import atexit
import os
import shutil
import tempfile

import compare

# QAT format: the export variant of its fake-quantized checkpoint.
QAT_FORMATS = {"qat_int8": "full_int8", "qat_int8_float_softmax": "int8_float_softmax"}
FORMATS = ("float32", "float16", "dynamic_int8", "full_int8", "int8_float_softmax", *QAT_FORMATS)
INT8_FORMATS = FORMATS[2:]
CALIBRATION_EXAMPLES = 8  # random-id batches the full-integer formats calibrate on
NORM_SPREAD = 0.1  # standard deviation of the norms' scales around 1 and offsets around 0


def export_variant(fmt):
  """The export's --tflite_variant of a numeric format (qat_int8 is full_int8 of a QAT checkpoint)."""
  if fmt not in FORMATS:
    raise ValueError(f"TFLite format {fmt!r}: expected one of {list(FORMATS)}")
  return QAT_FORMATS.get(fmt, fmt)


class TFLiteFile:
  """A .tflite file with inputs input_ids / input_mask / segment_ids, run on batch 1."""

  def __init__(self, path, threads=None, runtime=None, seed=0):
    from mobilebert.export import tflite_eval  # pylint: disable=g-import-not-at-top
    self.path = path
    self.runner = tflite_eval.TFLiteRunner(path, num_threads=threads or os.cpu_count(),
                                           runtime=runtime)
    vocab_size = 100  # any valid ids: the latency does not depend on them
    ids, mask, _ = compare.batch_of(vocab_size, 1, self.runner.seq_length, seed)
    self.features = {"input_ids": ids, "input_mask": mask, "segment_ids": 0 * ids}
    self.info = {"size_bytes": os.path.getsize(path), "runtime": self.runner.runtime,
                 "seq_length": self.runner.seq_length}

  def step(self):
    self.runner.run(self.features, batch_size=1)


def random_checkpoint(config, seq, prefix, fake_quantized=False, threads=None):
  """Saves a freshly initialized encoder at `prefix`; returns its variables [(name, shape)].

  fake_quantized: built with fake-quant nodes whose ranges one forward pass on random ids sets, as a
  --use_quantized_training checkpoint has them.
  """
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  from mobilebert import modeling, quantization  # pylint: disable=g-import-not-at-top
  ids, mask, _ = compare.batch_of(config.vocab_size, 2, seq)
  with tf.Graph().as_default() as graph:
    tf.set_random_seed(0)
    with quantization.fake_quantization(is_training=True, enabled=fake_quantized):
      model = modeling.BertModel(config, False, tf.constant(ids), tf.constant(mask))
    with tf.Session(config=compare.session_config(threads)) as session:
      session.run(tf.global_variables_initializer())
      spread_norms(session, tf.global_variables())
      if fake_quantized:
        session.run(model.get_pooled_output())  # the range variables' assign ops run here
      tf.train.Saver().save(session, prefix)
  return compare.graph_variables(graph)


def spread_norms(session, variables, seed=0):
  """Sets each norm's gamma to 1 + N(0, NORM_SPREAD) and beta to N(0, NORM_SPREAD), elementwise."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  for variable in variables:
    if variable.op.name.endswith(("/gamma", "/beta")):
      shape = variable.shape.as_list()
      base = 1.0 if variable.op.name.endswith("/gamma") else 0.0
      variable.load(base + NORM_SPREAD * rng.standard_normal(shape).astype(np.float32), session)


class TFLite(TFLiteFile):
  """Our TFLite export of a freshly initialized encoder in numeric format `fmt`, batch 1."""

  def __init__(self, config_file, seq, fmt, threads=None, runtime=None):
    from mobilebert.config import BertConfig  # pylint: disable=g-import-not-at-top
    from mobilebert.export import tflite  # pylint: disable=g-import-not-at-top
    config = BertConfig.from_json_file(config_file)
    variant = export_variant(fmt)
    work_dir = tempfile.mkdtemp(prefix="bench_tflite_")
    atexit.register(shutil.rmtree, work_dir, ignore_errors=True)
    prefix = os.path.join(work_dir, "model.ckpt")
    variables = random_checkpoint(config, seq, prefix, fmt in QAT_FORMATS, threads)
    representative = None
    if tflite.VARIANTS[variant].needs_representative_data:
      ids, mask, _ = compare.batch_of(config.vocab_size, CALIBRATION_EXAMPLES, seq, seed=1)
      representative = {"input_ids": ids, "input_mask": mask, "segment_ids": 0 * ids}
    content, _ = tflite.convert(config, prefix, variant, seq, representative)
    path = os.path.join(work_dir, f"model.{fmt}.tflite")
    with open(path, "wb") as f:
      f.write(content)
    super().__init__(path, threads, runtime)
    self.info["flops_per_step"] = compare.forward_flops_per_sequence(config, seq, variables)
