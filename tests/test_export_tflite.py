"""TFLite export: golden round trip, every variant of a fine-tuned tiny classifier scored with the
interpreter (the accuracy cost of quantization as a measured number), and bad inputs."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from mobilebert.export import graph
from mobilebert.export import tflite
from mobilebert.export import tflite_eval
from mobilebert.export import tflite_ops

sys.path.insert(0, os.path.dirname(__file__))
import export_helpers  # noqa: E402  pylint: disable=g-import-not-at-top

# Accuracy drop allowed against the float32 TF model on 300 held-out examples of the synthetic task
# (measured: TF 0.997; float32, float16, dynamic_int8 0.997; full_int8 0.997, 0.990 before the
# integer-only graph masked padding from the 0/1 mask, quantization.py; int8_float_softmax 0.997).
ACCURACY_MARGIN = {"float32": 0.0, "float16": 0.01, "dynamic_int8": 0.02, "full_int8": 0.03,
                   "int8_float_softmax": 0.03}


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
  return export_helpers.train_tiny_classifier(str(tmp_path_factory.mktemp("classifier")), steps=200)


@pytest.mark.parametrize("runtime", export_helpers.RUNTIMES)
@pytest.mark.parametrize("name", ["tiny_student_f4", "tiny_teacher_bert"])
def test_float32_round_trip_matches_golden(tmp_path, name, runtime):
  config, _, checkpoint, npz = export_helpers.golden(name)
  path = str(tmp_path / "model.tflite")
  result = tflite.export_tflite(config, checkpoint, path, "float32", seq_length=16)
  runner = tflite_eval.TFLiteRunner(path, runtime=runtime)
  assert runner.runtime == runtime
  outputs = runner.run(npz)
  # Measured: <= 2.4e-6 (the TF graph itself matches the golden to 3e-6, reference README).
  for key in ("sequence_output", "pooled_output"):
    np.testing.assert_allclose(outputs[key], npz[key], atol=1e-5, rtol=0)
  if "nsp_logits" in npz:
    np.testing.assert_allclose(outputs["nsp_logits"], npz["nsp_logits"], atol=1e-5, rtol=0)
  assert all(c.value <= 1e-5 for c in result.checks)
  info = json.load(open(path + ".json"))
  assert info["variant"] == "float32" and info["seq_length"] == 16 and info["size_bytes"] == result.size


def test_relu6_student_round_trip(tmp_path):
  """The QAT student's relu6 (TFLite's builtin RELU6), on a golden rescaled so that it clips."""
  config, checkpoint, npz = export_helpers.golden_relu6("tiny_student_f4", str(tmp_path / "r6.ckpt"))
  path = str(tmp_path / "relu6.tflite")
  result = tflite.export_tflite(config, checkpoint, path, "float32", seq_length=16)
  assert result.checks and all(c.value <= 1e-5 for c in result.checks)
  got = tflite_eval.TFLiteRunner(path).run(npz)["sequence_output"]
  reference = graph.TFModel(config, checkpoint)
  want = reference.run(*(npz[n] for n in graph.INPUT_NAMES))["sequence_output"]
  reference.close()
  np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
  # The rescaled golden under relu gives the golden's numbers: relu6 really clipped here.
  assert np.abs(got - npz["sequence_output"]).max() > 0.5


@pytest.mark.parametrize("variant", ["float32", "float16", "dynamic_int8"])
def test_variants_score_like_float(classifier, tmp_path, variant):
  path = str(tmp_path / f"{variant}.tflite")
  result = tflite.export_tflite(classifier.config, classifier.checkpoint, path, variant,
                                seq_length=export_helpers.SEQ_LENGTH)
  assert {"logits", "probabilities", "sequence_output", "pooled_output"} == set(result.outputs)
  scored = {}
  for runtime in tflite_eval.available_runtimes():
    outputs, labels = tflite_eval.predict_classifier(path, [classifier.eval_records],
                                                     runtime=runtime)
    accuracy = tflite_eval.classifier_accuracy(outputs["probabilities"], labels)
    assert accuracy >= classifier.tf_accuracy - ACCURACY_MARGIN[variant] - 1e-9, (runtime, accuracy)
    scored[runtime] = outputs["probabilities"]
  assert result.checks and all(c.value <= tflite.VARIANTS[variant].tolerance for c in result.checks)
  if len(scored) == 2:  # the runtimes' kernels differ (int8 most), their answers hardly
    assert tflite.agreement(scored["litert"], scored["tensorflow"]) >= 0.99


@pytest.mark.parametrize("runtime", export_helpers.RUNTIMES)
def test_op_report_counts_ops_and_what_xnnpack_takes(classifier, tmp_path, runtime):
  path = str(tmp_path / "model.tflite")
  tflite.export_tflite(classifier.config, classifier.checkpoint, path, "float32",
                       seq_length=export_helpers.SEQ_LENGTH)
  report = tflite_ops.file_op_report(path, runtime)
  interpreter, _ = tflite_eval.make_interpreter(open(path, "rb").read(), 1, runtime)
  interpreter.allocate_tensors()
  nodes = [op for op in interpreter._get_ops_details() if op["op_name"] != "DELEGATE"]
  assert sum(r.count for r in report.rows) == len(nodes)
  assert report.runtime == runtime and report.size_bytes == os.path.getsize(path)
  rows = {(r.op, r.operand_types): r for r in report.rows}
  # Every float dense layer is a FULLY_CONNECTED, and XNNPACK takes all of them.
  dense = [r for (op, _), r in rows.items() if op == "FULLY_CONNECTED"]
  assert sum(r.count for r in dense) >= 6 * classifier.config.num_hidden_layers
  assert all(r.delegated == r.count for r in dense), dense
  assert report.partitions >= 1 and 0 < sum(r.delegated for r in report.rows) < len(nodes)
  text = "\n".join(tflite_ops.format_op_report(report, "tiny"))
  assert "| FULLY_CONNECTED |" in text and f"runtime {runtime}" in text


def test_full_int8_command_line_and_accuracy(classifier, tmp_path):
  float_path = str(tmp_path / "float32.tflite")
  tflite.export_tflite(classifier.config, classifier.checkpoint, float_path, "float32",
                       seq_length=export_helpers.SEQ_LENGTH)
  path = str(tmp_path / "int8.tflite")
  done = subprocess.run(
      [sys.executable, "-m", "mobilebert.export", "--format=tflite",
       f"--bert_config_file={classifier.config_file}", f"--init_checkpoint={classifier.checkpoint}",
       f"--output={path}", "--tflite_variant=full_int8", f"--max_seq_length={export_helpers.SEQ_LENGTH}",
       f"--representative_tfrecords={classifier.train_records}", "--num_calibration_examples=64",
       "--op_report"],
      capture_output=True, text=True)
  assert done.returncode == 0, done.stderr[-2000:]
  assert "wrote TFLite full_int8" in done.stdout
  assert "verified against the TensorFlow graph" in done.stdout
  # --op_report: the op table, int8 matmuls included.
  assert re.search(r"^\| FULLY_CONNECTED \| int8,int8,int32 \| \d+ \| \d+ \| \d+ \|$", done.stdout,
                   re.M), done.stdout
  info = json.load(open(path + ".json"))
  assert info["calibration"]["examples"] == 64
  # Keys and values on symmetric ranges (zero point 0): XNNPACK takes the attention matmuls.
  # Measured: 4 of 4; 0 of 4 with the calibrated [min, max] ranges.
  if "litert" in tflite_eval.available_runtimes():
    matmuls = [r for r in tflite_ops.file_op_report(path, "litert").rows if r.op == "BATCH_MATMUL"]
    assert matmuls and all(r.delegated == r.count for r in matmuls), matmuls
  # Much smaller than float32: int8 weights.
  assert os.path.getsize(path) < 0.5 * os.path.getsize(float_path)
  outputs, labels = tflite_eval.predict_classifier(path, [classifier.eval_records])
  accuracy = tflite_eval.classifier_accuracy(outputs["probabilities"], labels)
  assert accuracy >= classifier.tf_accuracy - ACCURACY_MARGIN["full_int8"], accuracy
  float_outputs, _ = tflite_eval.predict_classifier(float_path, [classifier.eval_records])
  assert tflite.agreement(outputs["probabilities"], float_outputs["probabilities"]) >= 0.97


def test_int8_float_softmax_scores_like_float_and_runs_on_xnnpack(classifier, tmp_path):
  """The post-training int8_float_softmax export of the float checkpoint: verified, int8-sized,
  scored like float, and (LiteRT) XNNPACK takes the whole attention, float softmax included (the
  integer-only model's int8 softmax is left to the builtin kernel)."""
  path = str(tmp_path / "int8_float_softmax.tflite")
  result = tflite.export_tflite(classifier.config, classifier.checkpoint, path, "int8_float_softmax",
                                seq_length=export_helpers.SEQ_LENGTH,
                                representative_tfrecords=[classifier.train_records],
                                num_calibration_examples=64)
  assert result.checks and all(c.value <= tflite.VARIANTS["int8_float_softmax"].tolerance
                               for c in result.checks)
  assert json.load(open(path + ".json"))["variant"] == "int8_float_softmax"
  float_path = str(tmp_path / "float32.tflite")
  tflite.export_tflite(classifier.config, classifier.checkpoint, float_path, "float32",
                       seq_length=export_helpers.SEQ_LENGTH)
  assert os.path.getsize(path) < 0.5 * os.path.getsize(float_path)
  outputs, labels = tflite_eval.predict_classifier(path, [classifier.eval_records])
  accuracy = tflite_eval.classifier_accuracy(outputs["probabilities"], labels)
  assert accuracy >= classifier.tf_accuracy - ACCURACY_MARGIN["int8_float_softmax"], accuracy
  float_outputs, _ = tflite_eval.predict_classifier(float_path, [classifier.eval_records])
  assert tflite.agreement(outputs["probabilities"], float_outputs["probabilities"]) >= 0.97
  if "litert" in tflite_eval.available_runtimes():
    report = tflite_ops.file_op_report(path, "litert")
    softmax = [r for r in report.rows if r.op == "SOFTMAX"]
    assert [r.operand_types for r in softmax] == ["float32"]
    attention = [r for r in report.rows if r.op in ("BATCH_MATMUL", "DEQUANTIZE", "QUANTIZE")
                 or "float32" in r.operand_types]
    assert all(r.delegated == r.count for r in attention), attention


def test_bad_inputs(classifier, tmp_path):
  config, checkpoint = classifier.config, classifier.checkpoint
  with pytest.raises(graph.ExportError, match="full_int8 calibrates on real inputs"):
    tflite.export_tflite(config, checkpoint, str(tmp_path / "a.tflite"), "full_int8", seq_length=32)
  with pytest.raises(graph.ExportError, match="exceeds the config's max_position_embeddings 64"):
    tflite.export_tflite(config, checkpoint, str(tmp_path / "b.tflite"), seq_length=128)
  with pytest.raises(graph.ExportError, match="sequence length 32 but --max_seq_length is 16"):
    tflite.export_tflite(config, checkpoint, str(tmp_path / "c.tflite"), "full_int8", seq_length=16,
                         representative_tfrecords=[classifier.train_records])
  with pytest.raises(tflite_eval.TFLiteError, match="no TFRecord file matches"):
    tflite_eval.read_classifier_tfrecords([str(tmp_path / "none-*.tf_record")])
  with pytest.raises(tflite_eval.TFLiteError, match="file not found"):
    tflite_eval.TFLiteRunner(str(tmp_path / "missing.tflite"))
  (tmp_path / "junk.tflite").write_bytes(b"not a flatbuffer at all")
  for runtime in tflite_eval.available_runtimes():
    with pytest.raises(tflite_eval.TFLiteError, match=r"junk.tflite: not a TFLite model \([^\n]*\)$"):
      tflite_eval.TFLiteRunner(str(tmp_path / "junk.tflite"), runtime=runtime)
  with pytest.raises(tflite_eval.TFLiteError, match="TFLite runtime 'tflite_runtime': expected one of"):
    tflite_eval.make_interpreter(b"", runtime="tflite_runtime")
  done = subprocess.run([sys.executable, "-m", "mobilebert.export.tflite_ops",
                         str(tmp_path / "missing.tflite")], capture_output=True, text=True)
  assert done.returncode != 0
  assert done.stderr.strip().splitlines()[-1] == (
      f"tflite_ops: error: {tmp_path / 'missing.tflite'}: file not found")
  existing = tmp_path / "exists.tflite"
  existing.write_bytes(b"keep me")
  with pytest.raises(Exception, match="already exists.*--overwrite"):
    tflite.export_tflite(config, checkpoint, str(existing), seq_length=32)
  assert existing.read_bytes() == b"keep me"
  assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]
