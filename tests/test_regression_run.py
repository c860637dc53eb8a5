"""A few-step regression fine-tuning run end to end (float targets in the records, MSE, checkpoints picked
by dev Spearman, predictions), the files prediction needs, the regression flag errors, and the best
checkpoint scored as dynamic-range and integer-only int8 TFLite."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from conftest import CONFIG_DIR, ROOT
from finetune.classification import features as classifier_features
from finetune.classification.runner import ClassifierRunConfig
from finetune.classification.runner import run as run_classifier
from finetune.classification.tasks import GenericOptions, pearson, spearman
from finetune.classification.tasks.regression_scoring import average_ranks
from finetune.core import model_dir
from mobilebert import assets
from mobilebert.config import BertConfig
from mobilebert.export import graph, tflite_eval
from mobilebert.run_config import RunSettings

TINY = str(CONFIG_DIR / "tiny_student_zh.json")
STSB = ROOT / "data" / "stsb_zh"


@pytest.fixture(scope="module")
def stsb_slice(tmp_path_factory):
  """The first rows of the shipped STS-B splits: 32 train, 12 dev, 10 test pairs."""
  data = tmp_path_factory.mktemp("stsb")
  for split, rows in (("train", 32), ("dev", 12), ("test", 10)):
    lines = (STSB / f"{split}.tsv").read_text(encoding="utf-8").splitlines(keepends=True)[:rows]
    (data / f"{split}.tsv").write_text("".join(lines), encoding="utf-8")
  return data


def _config(data, output, **kwargs):
  settings = dict(task_name="stsb_zh", data_dir=str(data), vocab_file=assets.chinese_vocab_file(),
                  bert_config_file=TINY, max_seq_length=32, train_batch_size=8, eval_batch_size=5,
                  predict_batch_size=4, learning_rate=1e-3,
                  run=RunSettings(output_dir=str(output), save_checkpoints_steps=15))
  settings.update(kwargs)
  return ClassifierRunConfig(**settings)


@pytest.fixture(scope="module")
def trained(stsb_slice, tmp_path_factory):
  output = tmp_path_factory.mktemp("run") / "model"
  report = run_classifier(_config(stsb_slice, output, do_train=True, do_eval=True, do_predict=True,
                                  num_train_steps=30, predict_checkpoint="best"))
  return output, report


def _targets(data, split):
  return [float(line.split("\t")[2]) for line in
          (data / f"{split}.tsv").read_text(encoding="utf-8").splitlines()]


def test_records_hold_the_float_targets(trained, stsb_slice):
  output, _ = trained
  record = next(iter(output.glob("stsb_zh.dev.*.tf_record")))
  spec = classifier_features.feature_spec(32, "regression")
  values = [tf.io.parse_single_example(r, spec)["label_values"].numpy()
            for r in tf.data.TFRecordDataset(str(record))]
  assert values == _targets(stsb_slice, "dev")


def test_every_checkpoint_is_scored_with_correlations_and_the_best_is_by_spearman(trained, stsb_slice):
  output, report = trained
  history = json.loads((output / "eval_history.json").read_text())
  assert history["selected_by"] == report.selected_by == "spearman"
  entries = history["checkpoints"]
  assert [e["global_step"] for e in entries] == [0, 15, 30]
  for entry in entries:
    assert entry["num_examples"] == 12 and entry["mse"] == entry["loss"]
    assert {"pearson", "spearman"} <= set(entry)
  assert history["best"] == max(entries, key=lambda e: (e["spearman"], -e["global_step"]))
  # Predictions start near 0 for 0-5 targets; training moves them towards the targets.
  assert entries[-1]["mse"] < entries[0]["mse"] / 2, entries
  results = dict(line.split(" = ", 1) for line in (output / "eval_results.txt").read_text().splitlines())
  assert {"pearson", "spearman", "mse", "best_spearman", "best_pearson"} <= set(results)


def test_predictions_are_one_value_per_test_pair_and_rescore_to_the_eval_numbers(trained, stsb_slice):
  output, report = trained
  lines = (output / "test_results.tsv").read_text(encoding="utf-8").splitlines()
  assert lines[0] == "guid\tprediction"
  assert [line.split("\t")[0] for line in lines[1:]] == [f"test-{i}" for i in range(1, 11)]
  predicted = np.array([float(line.split("\t")[1]) for line in lines[1:]])
  assert np.isfinite(predicted).all() and np.ptp(predicted) > 0
  # Scoring the best checkpoint on test (--do_eval --do_test) gives the correlations of these rows.
  again = run_classifier(_config(stsb_slice, output, do_eval=True, do_test=True))
  best_step = report.best["global_step"]
  entry = next(e for e in again.eval_history if e["global_step"] == best_step)
  targets = _targets(stsb_slice, "test")
  assert entry["pearson"] == pytest.approx(pearson(predicted, targets), abs=1e-4)
  assert entry["spearman"] == pytest.approx(spearman(predicted, targets), abs=1e-4)


def test_the_output_dir_keeps_what_prediction_needs(trained):
  output, _ = trained
  saved = model_dir.read_model_dir(str(output))
  assert saved.kind == "regression" and saved.max_seq_length == 32 and saved.do_lower_case
  assert saved.settings["task"] == "stsb_zh" and saved.settings["is_pair"]
  assert (output / "vocab.txt").read_bytes() == open(assets.chinese_vocab_file(), "rb").read()
  assert json.loads((output / "bert_config.json").read_text()) == json.loads(open(TINY).read())
  label_file = json.loads((output / "label_list.json").read_text())
  assert label_file == {"task": "stsb_zh", "labels": [], "task_type": "regression"}


def test_a_classification_output_dir_is_refused_for_regression(stsb_slice, tmp_path):
  (tmp_path / "label_list.json").write_text(json.dumps({"task": "lcqmc", "labels": ["0", "1"]}))
  with pytest.raises(ValueError, match="trained with labels"):
    run_classifier(_config(stsb_slice, tmp_path, do_eval=True))


@pytest.fixture(scope="module")
def fitted(stsb_slice, tmp_path_factory):
  """100 steps at 3e-3 and --use_post_quantization (dynamic int8) in one run: unlike the 30-step model
  above, whose dev predictions all lie within 0.33 of each other and half within 0.002, these spread
  over 2.5, so rank correlations are not decided by rounding."""
  output = tmp_path_factory.mktemp("fitted") / "model"
  run_classifier(_config(stsb_slice, output, do_train=True, do_eval=True, num_train_steps=100,
                         learning_rate=3e-3, use_post_quantization=True,
                         run=RunSettings(output_dir=str(output), save_checkpoints_steps=100)))
  return output


def _lite_results(output):
  lines = (output / "eval_results_tflite.txt").read_text().splitlines()
  return {k: v if k == "lite_model_path" else float(v) for k, v in (l.split(" = ", 1) for l in lines)}


def _correlation_tolerances(float_predictions, errors):
  """How far int8 `errors` [N] on `float_predictions` [N] can move Pearson and Spearman against any
  targets. A correlation is the cosine of the angle between centred vectors; adding e turns p by at
  most arcsin(|e|/|p|), and a cosine moves no more than its angle. For Spearman the vector is the
  ranks: the rank of i moves by at most the number of j whose gap to i is within |e_i| + |e_j|."""
  def turn(change_norm, vector):
    ratio = change_norm / np.linalg.norm(vector - vector.mean())
    return float(np.arcsin(ratio)) if ratio < 1 else 2.0  # 2: no bound
  gaps = np.abs(float_predictions[:, None] - float_predictions[None, :])
  # 1e-5: the checkpoint's float predictions in the Estimator and in this graph agree to about 1e-6.
  reach = np.abs(errors)[:, None] + np.abs(errors)[None, :] + 1e-5
  rank_moves = (gaps <= reach).sum(axis=1) - 1.0  # ranks keep their sum: the change is centred
  return (turn(np.linalg.norm(errors - errors.mean()), float_predictions),
          turn(np.linalg.norm(rank_moves), average_ranks(float_predictions)))


def _check_tflite_scores(output, lite_path, max_relative_error):
  """eval_results_tflite.txt: finite correlations of the model at `lite_path`, which match its own
  predictions and lie within the tolerances its int8 error allows of the float checkpoint's."""
  lite = _lite_results(output)
  assert lite["lite_model_path"] == str(lite_path) and lite["num_examples"] == 12
  assert all(np.isfinite(lite[k]) for k in ("pearson", "spearman", "mse", "float_pearson",
                                            "float_spearman", "spearman_change")), lite
  best = json.loads((output / "eval_history.json").read_text())["best_kept"]
  record = next(iter(output.glob("stsb_zh.dev.*.tf_record")))
  features = tflite_eval.read_classifier_tfrecords(str(record))
  targets = features["label_values"]
  model = graph.TFModel(BertConfig.from_json_file(TINY), best["checkpoint"])
  inputs = [features[n] for n in graph.INPUT_NAMES]
  float_predictions = model.run(*inputs, names=["logits"])["logits"][:, 0]
  model.close()
  lite_predictions = tflite_eval.TFLiteRunner(str(lite_path)).run(features)["logits"][:, 0]
  # The file's numbers are those of the best checkpoint and of the TFLite model on these 12 pairs.
  assert lite["float_pearson"] == pytest.approx(pearson(float_predictions, targets), abs=1e-4)
  assert lite["pearson"] == pytest.approx(pearson(lite_predictions, targets), abs=1e-6)
  assert lite["spearman"] == pytest.approx(spearman(lite_predictions, targets), abs=1e-6)
  errors = lite_predictions - float_predictions
  assert np.abs(errors).max() <= max_relative_error * np.ptp(float_predictions), errors
  pearson_tolerance, spearman_tolerance = _correlation_tolerances(float_predictions, errors)
  assert abs(lite["pearson"] - lite["float_pearson"]) <= pearson_tolerance + 1e-6, lite
  assert abs(lite["spearman_change"]) <= spearman_tolerance + 1e-6, (lite, spearman_tolerance)


def test_post_quantization_scores_the_regression_model_as_dynamic_int8(fitted):
  # Measured: int8 error at most 0.0019 of the predictions' spread (0.0047 on 1.94-4.46), Pearson
  # moved 0.001 (bound 0.0026), Spearman unchanged (bound 0: no two predictions that close); 0.01 of
  # the spread leaves 5x.
  _check_tflite_scores(fitted, fitted / "model.int8.tflite", max_relative_error=0.01)


@pytest.mark.parametrize("float_softmax", [False, True], ids=["integer_only", "float_softmax"])
def test_activation_quantization_scores_the_regression_model_as_int8(fitted, stsb_slice, tmp_path,
                                                                     float_softmax):
  """Through run_classifier.py's flags, on the model dir trained above: dev rescored and the best
  checkpoint exported full-integer int8 (calibrated on the train split; --float_softmax: but for the
  attention's mask and softmax) to another path."""
  lite_path = tmp_path / "full.int8.tflite"
  result = subprocess.run(
      [sys.executable, str(ROOT / "finetune" / "run_classifier.py"), "--task_name=stsb_zh",
       f"--data_dir={stsb_slice}", f"--vocab_file={assets.chinese_vocab_file()}",
       f"--bert_config_file={TINY}",
       "--max_seq_length=32", "--eval_batch_size=5", f"--output_dir={fitted}", "--do_eval",
       "--use_post_quantization", "--activation_quantization", f"--lite_model_path={lite_path}",
       f"--float_softmax={float_softmax}"],
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), cwd=ROOT, capture_output=True, text=True)
  assert result.returncode == 0, result.stderr[-3000:]
  assert f"wrote {'int8_float_softmax' if float_softmax else 'full_int8'} " in result.stderr
  # Measured: int8 error at most 0.030 of the spread (0.075), Pearson moved 0.004 (bound 0.033),
  # Spearman unchanged (bound 0); 0.1 of the spread leaves 3x. --float_softmax: error 0.022 of the
  # spread, Pearson moved 0.009 (bound 0.035), Spearman unchanged.
  _check_tflite_scores(fitted, lite_path, max_relative_error=0.1)


def test_a_classifier_task_refuses_a_regression_tflite_model(fitted, stsb_slice, tmp_path):
  generic = GenericOptions(text_a_column="0", text_b_column="1", label_column="2", has_header="false",
                           labels=tuple("012345"))
  with pytest.raises(ValueError, match=r"^--lite_model_path .*model.int8.tflite: task generic scores "
                                       r"its output `probabilities` as \[N, 6\], found \(12, 1\)"):
    run_classifier(_config(stsb_slice, tmp_path / "m", task_name="generic", generic=generic,
                           do_eval=True, lite_model_path=str(fitted / "model.int8.tflite")))


def test_generic_regression_from_csv_trains(tmp_path):
  data = tmp_path / "data"
  data.mkdir()
  rows = ["sentence,score"] + [f'"{t}，好",{s}' for t, s in
                               (("很好", 4.5), ("不错", 3.0), ("一般", 2.0), ("很差", 0.5))]
  (data / "train.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
  (data / "dev.csv").write_text("\n".join(rows[:3]) + "\n", encoding="utf-8")
  generic = GenericOptions(data_format="csv", text_a_column="sentence", label_column="score",
                           task_type="regression")
  report = run_classifier(_config(data, tmp_path / "m", task_name="generic", generic=generic,
                                  do_train=True, do_eval=True, num_train_steps=2, train_batch_size=2,
                                  eval_batch_size=2))
  assert report.selected_by == "spearman" and report.eval_history[-1]["num_examples"] == 2


def test_demo_script_trains_picks_by_dev_and_scores_test_once(stsb_slice, tmp_path):
  env = dict(os.environ, PYTHON=sys.executable, TF_CPP_MIN_LOG_LEVEL="2", DATA_DIR=str(stsb_slice),
             MODEL_DIR=str(tmp_path / "demo"), MAX_SEQ_LENGTH="24", SAVE_CHECKPOINTS_STEPS="2")
  result = subprocess.run(["bash", str(ROOT / "run_scripts" / "demo_stsb_cpu.sh"),
                           "--num_train_steps=4", "--train_batch_size=8"],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  history = json.loads((tmp_path / "demo" / "eval_history.json").read_text())
  assert [e["global_step"] for e in history["checkpoints"]] == [0, 2, 4]
  assert all(e["split"] == "dev" for e in history["checkpoints"])
  test = json.loads((tmp_path / "demo" / "test_scores" / "eval_history.json").read_text())
  # Only the checkpoint dev chose is scored on test.
  assert [e["checkpoint"] for e in test["checkpoints"]] == [history["best_kept"]["checkpoint"]]
  assert test["checkpoints"][0]["split"] == "test" and test["checkpoints"][0]["num_examples"] == 10
  assert "test (that checkpoint, scored once):" in result.stdout


def test_regression_head_loss_is_the_mean_squared_error_of_its_predictions():
  from finetune.classification import regression_head
  from finetune.core import model as model_lib
  config = BertConfig.from_json_file(TINY)
  with tf.Graph().as_default():
    ids = tf.constant([[2, 5, 6, 3, 0], [2, 7, 3, 0, 0]], tf.int32)
    targets = tf.constant([4.5, 0.5])
    features = {"input_ids": ids, "input_mask": tf.cast(ids > 0, tf.int32),
                "segment_ids": tf.zeros_like(ids), "label_values": targets,
                "is_real_example": tf.ones([2], tf.int32)}
    outputs = model_lib.create_model(model_lib.EncoderSettings(config),
                                     regression_head.head(config), False, features)
    assert outputs.logits.shape.as_list() == [2, 1] and outputs.loss.op.name == "loss/regression_loss"
    names = {v.name.split(":")[0] for v in tf.global_variables()}
    assert {"output_weights", "output_bias"} <= names  # the classifier's names, one output
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      logits, predictions, loss = session.run([outputs.logits, outputs.predictions, outputs.loss])
  np.testing.assert_allclose(predictions, logits[:, 0])
  assert loss == pytest.approx(np.mean((predictions - [4.5, 0.5]) ** 2), rel=1e-6)


def test_the_regression_model_exports_to_transformers_as_regression(fitted, tmp_path):
  from mobilebert.export import hf  # pylint: disable=g-import-not-at-top
  best = json.loads((fitted / "eval_history.json").read_text())["best_kept"]["checkpoint"]
  out = str(tmp_path / "hf")
  result = hf.export_hf(BertConfig.from_json_file(TINY), best, assets.chinese_vocab_file(), out)
  assert result.architecture == "MobileBertForSequenceClassification"
  written = json.loads((tmp_path / "hf" / "config.json").read_text())
  # One output: transformers trains it with MSE (its classification loss would be wrong).
  assert written["problem_type"] == "regression" and written["id2label"] == {"0": "LABEL_0"}
  assert {c.output: c.value for c in result.checks}["logits"] <= 1e-5
