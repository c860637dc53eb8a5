"""Resume that equals an uninterrupted run: a subprocess is SIGKILLed at start-up, inside a step and
inside a save, the same command is rerun, and every variable of the final checkpoint must be bit for bit
that of a run never stopped (and of a second uninterrupted run: same seed, same data, same weights).

Pretraining: progressive warm-up (4 steps, 2 stages) then a plain-MLM main round with dropout
(4 steps), checkpoints every 2 steps, on the tiny student/teacher pair. Classification: 6 steps of
batch 2 over 5 examples (so the input wraps into a second, reshuffled epoch), checkpoints every 2.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from conftest import write_tiny_pair_task
from pretraining_testlib import (STUDENT_CONFIG, TEACHER_CHECKPOINT, TEACHER_CONFIG, random_instances,
                                 write_tfrecord)

ROOT = Path(__file__).resolve().parents[1]
KILL_AT = str(ROOT / "tests" / "kill_at.py")


def _run(point, module, argv):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
             PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
  return subprocess.run([sys.executable, KILL_AT, point, module, *argv], env=env, cwd=ROOT,
                        capture_output=True, text=True, timeout=240)


def _final_values(output_dir):
  path = tf.train.latest_checkpoint(str(output_dir))
  assert path is not None, f"no checkpoint in {output_dir}"
  return path, {name: tf.train.load_variable(path, name) for name, _ in tf.train.list_variables(path)}


def _assert_same(expected_dir, actual_dir):
  expected_path, expected = _final_values(expected_dir)
  actual_path, actual = _final_values(actual_dir)
  assert os.path.basename(actual_path) == os.path.basename(expected_path)
  assert sorted(actual) == sorted(expected)
  differing = [name for name in expected if not np.array_equal(expected[name], actual[name])]
  assert not differing, f"{len(differing)} of {len(expected)} variables differ: {differing[:5]}"


def _kill_then_resume(point, module, argv_for, tmp_path):
  output = tmp_path / point.replace(":", "_")
  killed = _run(point, module, argv_for(output))
  assert killed.returncode == -9, (point, killed.returncode, killed.stderr[-2000:])
  resumed = _run("none", module, argv_for(output))
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  return output


# -- pretraining ---------------------------------------------------------------------------------------
def _pretraining_argv(data_dir):
  def argv_for(output_dir):
    return [
        f"--bert_config_file={STUDENT_CONFIG}", f"--bert_teacher_config_file={TEACHER_CONFIG}",
        f"--init_checkpoint={TEACHER_CHECKPOINT}", f"--input_file={data_dir}/part-*.tfrecord",
        f"--output_dir={output_dir}", "--do_train", "--layer_wise_warmup", "--num_distill_steps=4",
        "--hidden_distill_factor=100", "--attention_distill_factor=1",
        "--distill_ground_truth_ratio=1", "--num_train_steps=4", "--num_warmup_steps=1",
        "--max_seq_length=32", "--max_predictions_per_seq=4", "--train_batch_size=4",
        "--save_checkpoints_steps=2", "--learning_rate=1e-3", "--optimizer=adamw"]
  return argv_for


@pytest.fixture(name="pretraining", scope="module")
def fixture_pretraining(tmp_path_factory):
  data = tmp_path_factory.mktemp("data")
  # 14 + 9 records: 23 a epoch, so the 4 x 4 = 16 examples of a round end inside the second file
  # and a resumed run has to skip part of an epoch.
  write_tfrecord(data / "part-0.tfrecord", random_instances(14, 32, 4, seed=1))
  write_tfrecord(data / "part-1.tfrecord", random_instances(9, 32, 4, seed=2))
  argv_for = _pretraining_argv(data)
  reference = tmp_path_factory.mktemp("reference") / "out"
  result = _run("none", "pretrain.run_pretraining", argv_for(reference))
  assert result.returncode == 0, result.stderr[-3000:]
  return argv_for, reference


@pytest.mark.parametrize("point", ["step:1", "saving:2", "save:4", "startup:2"])
def test_pretraining_killed_and_rerun_ends_as_if_never_stopped(pretraining, point, tmp_path):
  """step:1 and saving:2 fall in the warm-up; save:4 is its last save (files written, not yet
  recorded in the `checkpoint` state file); startup:2 is the start of the main round (the warm-up
  done; the main round then runs whole in the rerun, so this also shows that two runs give the same
  weights)."""
  argv_for, reference = pretraining
  output = _kill_then_resume(point, "pretrain.run_pretraining", argv_for, tmp_path)
  _assert_same(reference / "warmup", output / "warmup")
  _assert_same(reference, output)


# -- classification ------------------------------------------------------------------------------------
def _classifier_argv(data_dir, vocab, config):
  def argv_for(output_dir):
    return [
        "--task_name=lcqmc", f"--data_dir={data_dir}", f"--vocab_file={vocab}",
        f"--bert_config_file={config}", f"--output_dir={output_dir}", "--do_train",
        "--max_seq_length=16", "--train_batch_size=2", "--num_train_steps=6",
        "--save_checkpoints_steps=2", "--learning_rate=1e-3", "--rand_seed=7"]
  return argv_for


@pytest.fixture(name="classifier", scope="module")
def fixture_classifier(tmp_path_factory):
  data = tmp_path_factory.mktemp("lcqmc")
  rows = ["我喜欢猫\t我爱猫\t1", "今天下雨\t明天晴天\t0", "他在读书\t他在看书\t1", "苹果很甜\t汽车很快\t0",
          "天气很好\t天气不错\t1"]
  vocab, config = write_tiny_pair_task(data, rows, ("train", "dev", "test"))
  argv_for = _classifier_argv(data, vocab, config)
  reference = tmp_path_factory.mktemp("reference") / "out"
  result = _run("none", "finetune.run_classifier", argv_for(reference))
  assert result.returncode == 0, result.stderr[-3000:]
  return argv_for, reference


def test_classifier_twice_with_the_same_seed_gives_the_same_weights(classifier, tmp_path):
  argv_for, reference = classifier
  assert _run("none", "finetune.run_classifier", argv_for(tmp_path / "again")).returncode == 0
  _assert_same(reference, tmp_path / "again")


@pytest.mark.parametrize("point", ["startup:1", "step:3", "save:4"])
def test_classifier_killed_and_rerun_ends_as_if_never_stopped(classifier, point, tmp_path):
  argv_for, reference = classifier
  _assert_same(reference, _kill_then_resume(point, "finetune.run_classifier", argv_for, tmp_path))
