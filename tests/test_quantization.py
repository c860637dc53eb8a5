"""Quantization-aware training (--use_quantized_training) and its integer-only TFLite export."""

import os
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from finetune.classification import head as classifier_head
from finetune.core import model as model_lib
from finetune.classification.runner import ClassifierRunConfig
from finetune.span.runner import SpanRunConfig
from mobilebert import checkpoint as checkpoint_lib
from mobilebert import quantization
from mobilebert.export import graph
from mobilebert.export import tflite
from mobilebert.export import tflite_eval
from mobilebert.export import tflite_ops
from mobilebert.run_config import RunSettings

sys.path.insert(0, os.path.dirname(__file__))
import export_helpers  # noqa: E402  pylint: disable=g-import-not-at-top

SEQ = export_helpers.SEQ_LENGTH


def _classifier_graph(use_quantized_training, is_training=True):
  config = export_helpers.golden("tiny_student_f2")[0].copy(hidden_act="relu6")
  encoder = model_lib.EncoderSettings(config, use_quantized_training=use_quantized_training)
  g = tf.Graph()
  with g.as_default():
    tf.set_random_seed(0)
    ids = tf.placeholder(tf.int32, [None, SEQ])
    features = dict(input_ids=ids, input_mask=tf.ones_like(ids), segment_ids=tf.zeros_like(ids),
                    label_ids=tf.zeros([tf.shape(ids)[0]], tf.int32))
    outputs = model_lib.create_model(encoder, classifier_head.head(2, config), is_training, features)
  return g, config, ids, outputs


@pytest.mark.parametrize("is_training", [True, False])
def test_fake_quant_nodes_only_with_the_flag(is_training):
  g, config, _, _ = _classifier_graph(True, is_training)
  dense_layers = [v for v in g.get_collection(tf.GraphKeys.GLOBAL_VARIABLES)
                  if v.name.startswith("bert/") and v.name.endswith("/kernel:0")]
  # One node for the weights and one for the output of every dense layer of the encoder, one for
  # the attention scores of every layer.
  assert len(quantization.fake_quant_nodes(g)) == 2 * len(dense_layers) + config.num_hidden_layers
  assert dense_layers
  float_graph = _classifier_graph(False, is_training)[0]
  assert quantization.fake_quant_nodes(float_graph) == []
  assert not [v for v in float_graph.get_collection(tf.GraphKeys.GLOBAL_VARIABLES)
              if "_quant/" in v.name]


def test_ranges_are_learned_during_training():
  g, _, ids, outputs = _classifier_graph(True)
  with g.as_default():
    train_op = tf.train.AdamOptimizer(1e-3).minimize(outputs.loss)
    ranges = {v.name: v for v in tf.global_variables() if "_quant/" in v.name}
    kernel, = [v for v in tf.global_variables()
               if v.name == "bert/encoder/layer_0/intermediate/dense/kernel:0"]
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      before = session.run(ranges)
      rng = np.random.RandomState(0)
      for _ in range(3):
        session.run(train_op, {ids: rng.randint(5, 500, size=(4, SEQ))})
      after, kernel_value = session.run([ranges, kernel])
  prefix = "bert/encoder/layer_0/intermediate/dense/"
  act_min, act_max = (after[f"{prefix}act_quant/{n}:0"] for n in ("min", "max"))
  # relu6 output: the range starts at [-6, 6] and moves to the batch's [0, <= 6].
  assert before[f"{prefix}act_quant/max:0"] == 6.0 and 0.0 < act_max <= 6.0 and act_min == 0.0
  assert after[f"{prefix}act_quant/initialized:0"] == 1.0
  # Weights' ranges: symmetric, the weights' largest magnitude (after the last update's read).
  bound = np.abs(kernel_value).max()
  assert after[f"{prefix}weights_quant/max:0"] == pytest.approx(bound, abs=1e-2)
  assert after[f"{prefix}weights_quant/min:0"] == -after[f"{prefix}weights_quant/max:0"]
  moved = [n for n in ranges if "act_quant/m" in n and after[n] != before[n]]
  assert len(moved) == len([n for n in ranges if "act_quant/m" in n])


@pytest.fixture(scope="module")
def qat_classifier(tmp_path_factory):
  return export_helpers.train_tiny_classifier(
      str(tmp_path_factory.mktemp("qat")), steps=200, quantized_training=True, hidden_act="relu6")


def test_qat_checkpoint_converts_to_integer_only_and_agrees_with_the_fake_quant_graph(
    qat_classifier):
  assert graph.detect_heads(qat_classifier.checkpoint).fake_quantized
  assert qat_classifier.tf_accuracy >= 0.95  # the fake-quantized TF graph learned the task
  representative = tflite.representative_features([qat_classifier.train_records], 100, SEQ)
  content, _ = tflite.convert(qat_classifier.config, qat_classifier.checkpoint, "full_int8", SEQ,
                              representative)
  report = tflite_ops.op_report(content)
  compute = [r for r in report.rows
             if r.op in ("FULLY_CONNECTED", "BATCH_MATMUL", "ADD", "MUL", "SOFTMAX")]
  assert compute and all("float32" not in r.operand_types for r in compute), compute  # int8 only
  # Weights with zero point 0 (symmetric ranges): XNNPACK takes every dense layer where it can run.
  dense = [r for r in report.rows if r.op == "FULLY_CONNECTED"]
  # Keys and values with zero point 0 (symmetric ranges): XNNPACK takes the attention matmuls too.
  # Measured: 4 of 4; 1 of 4 with the learned [min, max] ranges (the one whose zero point was 0).
  matmuls = [r for r in report.rows if r.op == "BATCH_MATMUL"]
  if report.runtime == "litert":
    assert all(r.delegated == r.count for r in dense), dense
    assert matmuls and all(r.delegated == r.count for r in matmuls), matmuls
  want = graph.TFModel(qat_classifier.config, qat_classifier.checkpoint)  # with its fake-quant nodes
  try:
    tf_outputs = want.run(*(qat_classifier.eval_features[n] for n in graph.INPUT_NAMES))
  finally:
    want.close()
  for runtime in tflite_eval.available_runtimes():
    outputs = tflite_eval.TFLiteRunner(model_content=content, runtime=runtime).run(
        qat_classifier.eval_features)
    # Stated tolerance: the int8 model picks the fake-quant graph's class on >= 95% of the 300
    # held-out examples. Measured over training seeds 0-8, both runtimes: 0.99-1.0 (0.997 for seed 0).
    # Without the fake-quantized attention scores (quantization.mask_scores): 0.943-1.0, 2 seeds in 9
    # below 0.95 (the -10000 mask made the int8 attention uniform).
    assert tflite.agreement(outputs["probabilities"], tf_outputs["probabilities"]) >= 0.95, runtime
    accuracy = tflite_eval.classifier_accuracy(outputs["probabilities"],
                                               qat_classifier.eval_features["label_ids"])
    assert accuracy >= qat_classifier.tf_accuracy - 0.05, (runtime, accuracy)


def test_int8_float_softmax_keeps_only_the_attention_softmax_in_float(qat_classifier):
  """The QAT checkpoint's int8_float_softmax model: int8 but for the attention's mask and softmax,
  all of which XNNPACK takes, and as close to the fake-quant graph as the integer-only model."""
  representative = tflite.representative_features([qat_classifier.train_records], 100, SEQ)
  content, _ = tflite.convert(qat_classifier.config, qat_classifier.checkpoint,
                              "int8_float_softmax", SEQ, representative)
  report = tflite_ops.op_report(content)
  floats = {r.op for r in report.rows if "float32" in r.operand_types}
  assert "SOFTMAX" in floats and floats <= tflite.FLOAT_SOFTMAX_OPS, report.rows
  softmax = [r for r in report.rows if r.op == "SOFTMAX"]
  layers = qat_classifier.config.num_hidden_layers
  assert [r.operand_types for r in softmax] == ["float32"]
  assert softmax[0].count == layers + 1  # each layer's attention and the classifier's
  assert not [r for r in report.rows if r.op in ("SELECT_V2", "REDUCE_MIN")], report.rows
  assert all("float32" not in r.operand_types
             for r in report.rows if r.op in ("FULLY_CONNECTED", "BATCH_MATMUL")), report.rows
  if report.runtime == "litert":
    left = {r.op for r in report.rows if r.delegated < r.count}
    assert not left & {"SOFTMAX", "ADD", "MUL", "FULLY_CONNECTED", "BATCH_MATMUL"}, report.rows
  want = graph.TFModel(qat_classifier.config, qat_classifier.checkpoint)
  try:
    tf_outputs = want.run(*(qat_classifier.eval_features[n] for n in graph.INPUT_NAMES))
  finally:
    want.close()
  for runtime in tflite_eval.available_runtimes():
    outputs = tflite_eval.TFLiteRunner(model_content=content, runtime=runtime).run(
        qat_classifier.eval_features)
    # The integer-only model's bound (test above). Measured over training seeds 0-2, both runtimes:
    # 1.0, as the integer-only model's.
    assert tflite.agreement(outputs["probabilities"], tf_outputs["probabilities"]) >= 0.95, runtime


def _two_segments(features):
  """`features` with the second half of each example's real tokens in segment 1."""
  features = dict(features)
  lengths = features["input_mask"].sum(1)
  positions = np.arange(features["input_ids"].shape[1])
  features["segment_ids"] = ((positions >= lengths[:, None] // 2) & (features["input_mask"] > 0))
  features["segment_ids"] = features["segment_ids"].astype(np.int32)
  return features


def _int8_model(classifier, quantized, two_segments=True, variant="full_int8"):
  """`variant` bytes of the QAT checkpoint or (quantized False) of the golden with a random head,
  calibrated on train examples (by default with both segments)."""
  if quantized:
    config, checkpoint = classifier.config, classifier.checkpoint
  else:
    config, checkpoint = export_helpers.golden_with_classifier(
        "tiny_student_f2", os.path.join(os.path.dirname(classifier.checkpoint), "golden.ckpt"))
  representative = tflite.representative_features([classifier.train_records], 100, SEQ)
  if two_segments:
    representative = _two_segments(representative)
  return config, checkpoint, tflite.convert(config, checkpoint, variant, SEQ, representative)[0]


@pytest.mark.parametrize("variant", tflite.INT8_VARIANTS)
@pytest.mark.parametrize("quantized", [True, False], ids=["qat", "post_training"])
def test_int8_model_gives_padding_no_attention(qat_classifier, quantized, variant):
  """Refilling the padding (past the first padding id, which the trigram embedding of the last real
  token reads) leaves the class probabilities as they are. Measured, both runtimes: 0 change; before
  the keys to mask were read from the 0/1 mask (quantization.mask_scores), up to 0.14 (QAT) and
  0.35 (post-training): the integer-only model attended to the padding."""
  config, checkpoint, content = _int8_model(qat_classifier, quantized, variant=variant)
  features = {n: qat_classifier.eval_features[n][:32] for n in graph.INPUT_NAMES}
  refilled = dict(features, input_ids=features["input_ids"].copy())
  beyond = np.roll(features["input_mask"], 1, axis=1) + features["input_mask"] == 0
  beyond[:, 0] = False
  assert beyond.sum() > 100  # the synthetic examples have random lengths
  refilled["input_ids"][beyond] = np.random.RandomState(0).randint(40, 512, size=beyond.sum())
  reference = graph.TFModel(config, checkpoint)
  try:
    want = [reference.run(*(f[n] for n in graph.INPUT_NAMES))["probabilities"]
            for f in (features, refilled)]
  finally:
    reference.close()
  np.testing.assert_allclose(want[0], want[1], atol=1e-6)  # the float graph ignores that padding
  for runtime in tflite_eval.available_runtimes():
    runner = tflite_eval.TFLiteRunner(model_content=content, runtime=runtime)
    got = [runner.run(f)["probabilities"] for f in (features, refilled)]
    np.testing.assert_allclose(got[0], got[1], atol=1e-6, err_msg=runtime)


def test_integer_only_token_type_embeddings_are_the_table_rows(qat_classifier):
  """The op that reads the token-type table (GATHER) returns its rows to int8 rounding, calibrated on
  single-segment examples (as a single-sentence task's). Measured: at most 0.49 of an output step;
  with the original one-hot matmul, which the converter makes an EMBEDDING_LOOKUP whose output gets
  the range of row 0 but holds the table's int8 values unchanged, 13 steps off."""
  _, checkpoint, content = _int8_model(qat_classifier, quantized=True, two_segments=False)
  table = checkpoint_lib.read_checkpoint_float32(checkpoint)["bert/embeddings/token_type_embeddings"]
  features = {n: qat_classifier.eval_features[n][:1] for n in graph.INPUT_NAMES}  # segment 0
  interpreter = tf.lite.Interpreter(
      model_content=content, experimental_preserve_all_tensors=True,
      experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
  interpreter.allocate_tensors()
  for detail in interpreter.get_input_details():
    name, = [n for n in graph.INPUT_NAMES if n in detail["name"]]
    interpreter.set_tensor(detail["index"], features[name])
  interpreter.invoke()
  # pylint: disable=protected-access
  details = lambda index: interpreter._get_tensor_details(index, 0)
  lookups = [op for op in interpreter._get_ops_details()  # the table is GATHER's first input,
             if op["op_name"] in ("GATHER", "EMBEDDING_LOOKUP")  # EMBEDDING_LOOKUP's second
             and any(list(details(i)["shape"]) == list(table.shape) for i in op["inputs"])]
  # pylint: enable=protected-access
  assert len(lookups) == 1, lookups
  output = details(lookups[0]["outputs"][0])
  scale, = output["quantization_parameters"]["scales"]
  zero_point, = output["quantization_parameters"]["zero_points"]
  got = (interpreter.get_tensor(output["index"]).astype(np.float32) - zero_point) * scale
  want = table[features["segment_ids"][0]]
  assert np.abs(got.reshape(want.shape) - want).max() <= 0.5 * scale + 1e-7


@pytest.mark.parametrize("variant", tflite.INT8_VARIANTS)
def test_an_untrained_qat_checkpoint_is_refused_for_int8_export(tmp_path, variant):
  # Step 0 of a QAT run: the activation ranges still hold their initial values. Converted, such a
  # model aborted both TFLite runtimes (SIGABRT in allocate_tensors) instead of raising.
  untrained = export_helpers.train_tiny_classifier(str(tmp_path), steps=0, quantized_training=True,
                                                   hidden_act="relu6")
  representative = tflite.representative_features([untrained.train_records], 10, SEQ)
  with pytest.raises(graph.ExportError, match="never updated.*before the first"):
    tflite.convert(untrained.config, untrained.checkpoint, variant, SEQ, representative)


def test_trained_qat_ranges_pass_the_check(qat_classifier):
  tflite.check_trained_ranges(qat_classifier.checkpoint)  # raises if any range was never updated


def test_flag_errors_are_one_line():
  run = RunSettings(output_dir="/tmp/unused")
  common = dict(task_name="lcqmc", data_dir="d", vocab_file="v", bert_config_file="c", do_eval=True)
  with pytest.raises(ValueError, match="^--activation_quantization selects the numerics of the "
                     "--use_post_quantization export: add --use_post_quantization$"):
    ClassifierRunConfig(run=run, activation_quantization=True, **common).validate()
  with pytest.raises(ValueError, match="^--float_softmax keeps the softmax of the "
                     "--activation_quantization export in float32: add --use_post_quantization "
                     "--activation_quantization$"):
    ClassifierRunConfig(run=run, use_post_quantization=True, float_softmax=True, **common).validate()
  half = RunSettings(output_dir="/tmp/unused", precision="float16")
  message = ("^--use_quantized_training fake-quantizes a float32 graph: drop "
             "--precision=float16$")
  with pytest.raises(ValueError, match=message):
    ClassifierRunConfig(run=half, use_quantized_training=True, **common).validate()
  with pytest.raises(ValueError, match=message):
    SpanRunConfig(vocab_file="v", bert_config_file="c", run=half, do_predict=True,
                   predict_file="p", use_quantized_training=True).validate()


def test_masked_keys_stay_out_of_the_quantized_scores_range():
  scores = np.array([[[[2.0, -1.0, 0.5, 3.0]]]], np.float32)  # [B=1, N=1, F=1, T=4]
  key_mask = np.array([[[[1.0, 1.0, 1.0, 0.0]]]], np.float32)  # the last key is padding
  with tf.Graph().as_default():
    with quantization.fake_quantization(True):
      masked = quantization.mask_scores(tf.constant(scores), tf.constant(key_mask))
    probabilities = tf.nn.softmax(masked)
    act_min, = [v for v in tf.global_variables() if v.name == "scores/act_quant/min:0"]
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      masked_value, probabilities_value = session.run([masked, probabilities])
      learned_min = session.run(act_min)  # after the training step's update
  # The range (which the int8 softmax input inherits) is the real scores', not the mask's -10000.
  assert learned_min == pytest.approx(-1.0, abs=0.02)
  np.testing.assert_allclose(masked_value[..., :3], scores[..., :3], atol=0.02)  # 8-bit steps
  assert masked_value[..., 3] == pytest.approx(masked_value[..., :3].min() - 10.0)
  assert probabilities_value[..., 3] < 1e-4 * probabilities_value[..., :3].min()
  with tf.Graph().as_default() as g, tf.Session() as session:  # post-training int8 export
    with quantization.int8_export():
      masked = quantization.mask_scores(tf.constant(scores), tf.constant(key_mask))
    np.testing.assert_allclose(session.run(masked), np.append(scores[..., :3], -11.0)[None, None, None])
    assert quantization.fake_quant_nodes(g) == []
  with tf.Graph().as_default(), tf.Session() as session:  # float graph: the original's sum
    np.testing.assert_array_equal(
        session.run(quantization.mask_scores(tf.constant(scores), tf.constant(key_mask))),
        scores + (1.0 - key_mask) * -10000.0)
