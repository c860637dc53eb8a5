"""A few-step run of the release's recipe on the tiny pair: warm-up, first round, main round, eval,
and a restart in the middle of a warm-up stage.

One run is shared by the tests (module fixture): 6 warm-up steps (2 stages of 3, lower layers frozen),
a first round of 2 steps at length 16, the main round to step 4 at length 32, checkpoints every 2 steps.
"""

import glob
import hashlib
import logging
import os
import shutil

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from mobilebert import checkpoint, modeling
from mobilebert.config import BertConfig
from pretrain import schedule
from conftest import REFERENCE
from pretraining_testlib import (STUDENT_CONFIG, TEACHER_CHECKPOINT, TEACHER_CONFIG, random_instances,
                                 settings_for, write_tfrecord)


def _argv(data_dir, output_dir):
  return [
      f"--bert_config_file={STUDENT_CONFIG}", f"--bert_teacher_config_file={TEACHER_CONFIG}",
      f"--init_checkpoint={TEACHER_CHECKPOINT}", f"--input_file={data_dir}/main-*.tfrecord",
      f"--first_input_file={data_dir}/first.tfrecord", f"--output_dir={output_dir}",
      "--do_train", "--do_eval", "--layer_wise_warmup", "--num_distill_steps=6",
      "--lower_layer_lr_scale=0", "--hidden_distill_factor=100", "--attention_distill_factor=1",
      "--beta_distill_factor=5000", "--gamma_distill_factor=5", "--distill_ground_truth_ratio=0.5",
      "--distill_temperature=2", "--first_num_train_steps=2", "--first_max_seq_length=16",
      "--first_train_batch_size=2", "--num_train_steps=4", "--num_warmup_steps=1",
      "--max_seq_length=32", "--max_predictions_per_seq=4", "--train_batch_size=4",
      "--eval_batch_size=4", "--max_eval_steps=2", "--save_checkpoints_steps=2", "--use_summary",
      "--learning_rate=1e-3", "--optimizer=adamw"]


class _Lines(logging.Handler):
  def __init__(self):
    super().__init__()
    self.lines = []

  def emit(self, record):
    self.lines.append(record.getMessage())


def _run(argv):
  settings = settings_for(argv)
  schedule.train(settings)
  return settings, schedule.evaluate(settings)


@pytest.fixture(name="data_dir", scope="module")
def fixture_data_dir(tmp_path_factory):
  data = tmp_path_factory.mktemp("data")
  write_tfrecord(data / "main-0.tfrecord", random_instances(24, 32, 4, seed=1))
  write_tfrecord(data / "main-1.tfrecord", random_instances(24, 32, 4, seed=2))
  write_tfrecord(data / "first.tfrecord", random_instances(24, 16, 4, seed=3))
  return data


@pytest.fixture(name="run", scope="module")
def fixture_run(data_dir, tmp_path_factory):
  output = tmp_path_factory.mktemp("run") / "out"
  handler = _Lines()
  logger = logging.getLogger("tensorflow")
  level = logger.level
  logger.addHandler(handler)
  logger.setLevel(logging.INFO)
  try:
    settings, result = _run(_argv(data_dir, output))
  finally:
    logger.removeHandler(handler)
    logger.setLevel(level)
  return {"dir": str(output), "settings": settings, "eval": result, "log": handler.lines}


def _steps(directory):
  return sorted(int(p.rsplit("-", 1)[1].split(".")[0])
                for p in glob.glob(os.path.join(directory, "model.ckpt-*.index")))


def _values(path, prefix=""):
  return {name: tf.train.load_variable(path, name) for name, _ in tf.train.list_variables(path)
          if name.startswith(prefix)}


def test_each_phase_writes_its_checkpoints_and_eval_results(run):
  assert _steps(os.path.join(run["dir"], "warmup")) == [0, 2, 4, 6]
  assert _steps(run["dir"]) == [0, 2, 4]
  assert run["eval"]["global_step"] == 4
  results = open(os.path.join(run["dir"], "eval_results.txt")).read()
  assert "masked_lm_accuracy = " in results and "masked_lm_loss = " in results
  assert 0 < run["eval"]["masked_lm_loss"] < 10


def test_teacher_is_never_trained(run):
  golden = _values(TEACHER_CHECKPOINT)
  for path in (os.path.join(run["dir"], "warmup", "model.ckpt-6"),
               os.path.join(run["dir"], "model.ckpt-4")):
    teacher = _values(path, "teacher/")
    assert len(teacher) == 44  # as the release-like checkpoint: pooler included, no NSP head
    for name, value in teacher.items():
      np.testing.assert_array_equal(value, golden[name[len("teacher/"):]], err_msg=name)
    assert not [n for n, _ in tf.train.list_variables(path) if n.startswith("teacher/") and "adam" in n]


def test_main_round_checkpoint_is_laid_out_like_the_release(run):
  """The same variables and shapes as the reference pack's release-like checkpoint: 72 student
  variables, their 144 AdamW slots, 44 teacher variables, global_step."""
  ours = dict(tf.train.list_variables(os.path.join(run["dir"], "model.ckpt-4")))
  release = dict(tf.train.list_variables(str(REFERENCE / "release_like" / "mobilebert.ckpt")))
  assert len(ours) == 261 and ours == release


def test_warmup_stages_follow_the_global_step(run):
  warmup = os.path.join(run["dir"], "warmup")
  at = {step: _values(os.path.join(warmup, f"model.ckpt-{step}"), "bert/encoder/") for step in
        (0, 2, 4, 6)}
  layer = lambda values, i: {n: v for n, v in values.items() if f"/layer_{i}/" in n and "adam" not in n}
  changed = lambda a, b: any(not np.array_equal(a[n], b[n]) for n in a)
  assert changed(layer(at[0], 0), layer(at[2], 0)) and not changed(layer(at[0], 1), layer(at[2], 1))
  # Steps 4 and 5 are stage 1: layer 0 is frozen (--lower_layer_lr_scale=0), layer 1 trains.
  assert not changed(layer(at[4], 0), layer(at[6], 0)) and changed(layer(at[4], 1), layer(at[6], 1))


def test_copied_embeddings_start_from_the_teacher_and_stay_through_the_warmup(run):
  warmup_end = os.path.join(run["dir"], "warmup", "model.ckpt-6")
  teacher = _values(TEACHER_CHECKPOINT, "bert/embeddings/")
  for name in ("bert/embeddings/word_embeddings", "bert/embeddings/position_embeddings"):
    np.testing.assert_array_equal(tf.train.load_variable(warmup_end, name), teacher[name])


def test_student_variables_load_into_a_classifier(run):
  config = BertConfig.from_json_file(STUDENT_CONFIG)
  with tf.Graph().as_default():
    model = modeling.BertModel(config, False, tf.ones([2, 8], tf.int32))
    weights = tf.get_variable("output_weights", [3, config.hidden_size])
    logits = tf.matmul(model.get_pooled_output(), weights, transpose_b=True)
    result = checkpoint.init_from_checkpoint(os.path.join(run["dir"], "model.ckpt-4"), log=False)
    # The release-like student has 72 variables, 5 of them the MLM head (cls/predictions/*).
    assert sorted(result.initialized) == sorted(
        v.name.split(":")[0] for v in tf.trainable_variables() if v.name.startswith("bert/"))
    assert len(result.initialized) == 67 and not result.shape_mismatch
    assert result.not_in_checkpoint == ["output_weights"]
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      assert np.isfinite(session.run(logits)).all()


def test_summaries_name_every_loss(run):
  def tags(directory):
    found = set()
    for path in glob.glob(os.path.join(directory, "events.out.tfevents.*")):
      for event in tf.train.summary_iterator(path):
        found.update(value.tag for value in event.summary.value)
    return found
  assert {"feature_map_transfer_loss", "attention_transfer_loss", "mean_transfer_loss",
          "variance_transfer_loss", "masked_lm_loss", "masked_lm_accuracy", "learning_rate",
          "progressive_stage"} <= tags(os.path.join(run["dir"], "warmup"))
  assert {"distillation_loss", "masked_lm_loss", "masked_lm_accuracy", "learning_rate"} <= tags(
      run["dir"])


def test_throughput_is_logged_per_phase(run):
  for phase in ("warmup", "first_round", "main_round"):
    assert any(line.startswith(f"{phase} step ") and "steps/s" in line and "examples/s" in line
               and "ETA" in line for line in run["log"]), phase


def _digests(directory):
  return {p: hashlib.sha256(open(p, "rb").read()).hexdigest()
          for p in glob.glob(os.path.join(directory, "**", "model.ckpt-*"), recursive=True)}


def test_rerunning_a_finished_run_changes_nothing(run, data_dir):
  before = _digests(run["dir"])
  settings = settings_for(_argv(data_dir, run["dir"]))
  assert schedule.train(settings) == 4
  assert _digests(run["dir"]) == before


def test_restart_mid_stage_continues_in_that_stage_and_keeps_old_checkpoints(run, data_dir,
                                                                              tmp_path):
  """A run killed after warm-up step 4 (in stage 1) is rerun with the same command."""
  output = tmp_path / "out"
  warmup = output / "warmup"
  warmup.mkdir(parents=True)
  for path in glob.glob(os.path.join(run["dir"], "warmup", "model.ckpt-4.*")):
    shutil.copy(path, warmup)
  (warmup / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-4"\n')
  before = _digests(str(output))
  settings = settings_for(_argv(data_dir, output))
  assert schedule.train(settings) == 4 and _steps(str(warmup)) == [4, 6]
  assert _steps(str(output)) == [0, 2, 4]
  after = _digests(str(output))
  assert all(after[p] == digest for p, digest in before.items())
  resumed = os.path.join(warmup, "model.ckpt-4")
  finished = os.path.join(warmup, "model.ckpt-6")
  for name, value in _values(resumed, "bert/encoder/layer_0/").items():
    if "adam" not in name:  # stage 1 with frozen lower layers: layer 0 must not move
      np.testing.assert_array_equal(value, tf.train.load_variable(finished, name), err_msg=name)
  assert settings.layer_wise_warmup


def test_same_seed_same_data_gives_bit_identical_weights_in_every_phase(run, data_dir, tmp_path):
  """Warm-up (progressive transfer), first round and main round (distillation) of a second run from
  scratch end with every variable, AdamW slots included, equal bit for bit."""
  output = tmp_path / "again"
  schedule.train(settings_for(_argv(data_dir, output)))
  for step, directory in ((6, "warmup"), (2, ""), (4, "")):
    name = os.path.join(directory, f"model.ckpt-{step}")
    first, second = _values(os.path.join(run["dir"], name)), _values(str(output / name))
    assert sorted(first) == sorted(second)
    differing = [n for n in first if not np.array_equal(first[n], second[n])]
    assert not differing, f"{name}: {len(differing)} of {len(first)} variables differ: {differing[:3]}"
