"""A few-step regression fine-tuning run end to end (float targets in the records, MSE, checkpoints picked
by dev Spearman, predictions), the files prediction needs, and the regression flag errors."""

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
from finetune.core import model_dir
from mobilebert import assets
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


def test_tflite_scoring_is_refused_for_regression(stsb_slice, tmp_path):
  with pytest.raises(ValueError, match="regression task"):
    run_classifier(_config(stsb_slice, tmp_path / "m", do_train=True, do_eval=True,
                           use_post_quantization=True, num_train_steps=1))


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
  from mobilebert.config import BertConfig
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
