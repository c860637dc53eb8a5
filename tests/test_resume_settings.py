"""A run resumed in its --output_dir with other training settings stops in one line naming the file and
each changed flag, before it writes anything there; --allow_changed_settings continues and records the
change (mobilebert/resume_settings.py). Without this, the Estimator continued the checkpoints under the
new flags without a word, and a changed --init_checkpoint was silently ignored.
"""

import json
import os
import shutil

import pytest

from mobilebert import resume_settings
from pretraining_testlib import (STUDENT_CONFIG, TEACHER_CHECKPOINT, TEACHER_CONFIG, random_instances,
                                 write_tfrecord)
from test_resume_after_kill import _run  # kill_at.py runs an entry point (or kills it at a point)
from test_user_errors import assert_one_line_error

from conftest import write_tiny_pair_task

SETTINGS = {"--learning_rate": 1e-3, "--train_batch_size": 4, "--bert_config_file": {"hidden_size": 8}}


def _fake_checkpoint(directory, step):
  """A state file naming model.ckpt-<step> and its index: what tf.train.latest_checkpoint finds."""
  os.makedirs(directory, exist_ok=True)
  open(os.path.join(directory, f"model.ckpt-{step}.index"), "wb").close()
  with open(os.path.join(directory, "checkpoint"), "w", encoding="utf-8") as f:
    f.write(f'model_checkpoint_path: "model.ckpt-{step}"\n')


def _record(directory):
  with open(os.path.join(directory, resume_settings.FILE_NAME), encoding="utf-8") as f:
    return json.load(f)


# -- the mechanism -------------------------------------------------------------------------------------
def test_a_new_run_records_its_settings_and_resumes_with_the_same(tmp_path):
  assert resume_settings.check_or_record(str(tmp_path), SETTINGS) == {}
  assert _record(tmp_path) == {"settings": SETTINGS, "changes": []}
  _fake_checkpoint(tmp_path, 2)
  assert resume_settings.check_or_record(str(tmp_path), dict(SETTINGS)) == {}


def test_other_settings_stop_the_resumed_run_naming_each_flag(tmp_path):
  resume_settings.check_or_record(str(tmp_path), SETTINGS)
  _fake_checkpoint(tmp_path, 2)
  changed = dict(SETTINGS, **{"--learning_rate": 2e-3, "--bert_config_file": {"hidden_size": 16}})
  with pytest.raises(resume_settings.ChangedSettingsError) as error:
    resume_settings.check_or_record(str(tmp_path), changed)
  message = str(error.value)
  assert message.startswith(os.path.join(str(tmp_path), "run_settings.json") + ": ")
  assert "--learning_rate 0.001 -> 0.002" in message
  assert "--bert_config_file (hidden_size 8 -> 16)" in message
  assert "--train_batch_size" not in message and "--allow_changed_settings" in message
  assert _record(tmp_path)["settings"] == SETTINGS  # the record is left as it was


def test_the_check_before_featurizing_compares_what_it_is_given_and_writes_nothing(tmp_path):
  resume_settings.check_unchanged(str(tmp_path), SETTINGS)  # no run yet: nothing to compare
  assert not os.listdir(tmp_path)
  resume_settings.check_or_record(str(tmp_path), SETTINGS)
  _fake_checkpoint(tmp_path, 2)
  before = _record(tmp_path)
  partial = {"--learning_rate": 1e-3}  # the settings known before the data is featurized
  resume_settings.check_unchanged(str(tmp_path), partial)
  with pytest.raises(resume_settings.ChangedSettingsError, match=r"--learning_rate 0.001 -> 0.002"):
    resume_settings.check_unchanged(str(tmp_path), {"--learning_rate": 2e-3})
  resume_settings.check_unchanged(str(tmp_path), {"--learning_rate": 2e-3}, allow_changes=True)
  assert _record(tmp_path) == before


def test_allowed_changes_are_recorded_with_the_steps_they_took_effect_at(tmp_path):
  resume_settings.check_or_record(str(tmp_path), SETTINGS)
  _fake_checkpoint(tmp_path, 6)
  changed = dict(SETTINGS, **{"--learning_rate": 2e-3})
  assert resume_settings.check_or_record(str(tmp_path), changed, allow_changes=True) == {
      "--learning_rate": (1e-3, 2e-3)}
  record = _record(tmp_path)
  assert record["settings"] == changed
  assert record["changes"] == [{"at_steps": {".": 6}, "changed": {"--learning_rate": [1e-3, 2e-3]}}]
  assert resume_settings.check_or_record(str(tmp_path), changed) == {}  # the new ones now hold


def test_a_run_with_checkpoints_but_no_record_is_recorded_as_it_is(tmp_path):
  """Directories of runs started before the record existed."""
  _fake_checkpoint(tmp_path, 4)
  assert resume_settings.check_or_record(str(tmp_path), SETTINGS) == {}
  assert _record(tmp_path)["settings"] == SETTINGS


def test_a_directory_without_checkpoints_takes_the_new_settings(tmp_path):
  """A run stopped before its first checkpoint trained nothing to continue."""
  resume_settings.check_or_record(str(tmp_path), SETTINGS)
  changed = dict(SETTINGS, **{"--learning_rate": 2e-3})
  assert resume_settings.check_or_record(str(tmp_path), changed) == {}
  assert _record(tmp_path)["settings"] == changed


def test_checkpoints_of_a_phase_directory_count(tmp_path):
  """Pretraining's warm-up checkpoints are in output_dir/warmup, the record in output_dir."""
  resume_settings.check_or_record(str(tmp_path), SETTINGS, phase_dirs=["warmup"])
  _fake_checkpoint(tmp_path / "warmup", 3)
  with pytest.raises(resume_settings.ChangedSettingsError, match="--train_batch_size 4 -> 8"):
    resume_settings.check_or_record(str(tmp_path), dict(SETTINGS, **{"--train_batch_size": 8}),
                                    phase_dirs=["warmup"])


def test_settings_a_newer_version_adds_are_recorded_not_compared(tmp_path):
  resume_settings.check_or_record(str(tmp_path), SETTINGS)
  _fake_checkpoint(tmp_path, 2)
  extended = dict(SETTINGS, **{"--new_flag": 1})
  assert resume_settings.check_or_record(str(tmp_path), extended) == {}
  assert _record(tmp_path)["settings"] == extended


def test_a_damaged_record_is_named(tmp_path):
  _fake_checkpoint(tmp_path, 2)
  (tmp_path / "run_settings.json").write_text("{not json", encoding="utf-8")
  with pytest.raises(resume_settings.ChangedSettingsError, match="run_settings.json: cannot read"):
    resume_settings.check_or_record(str(tmp_path), SETTINGS)


def test_only_the_chief_writes(tmp_path):
  resume_settings.check_or_record(str(tmp_path), SETTINGS, writes=False)
  assert not (tmp_path / "run_settings.json").exists()


# -- the trainers --------------------------------------------------------------------------------------
def _snapshot(directory):
  """{relative path: bytes} of every file under `directory`."""
  files = {}
  for root, _, names in os.walk(directory):
    for name in names:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        files[os.path.relpath(path, directory)] = f.read()
  return files


@pytest.fixture(name="classifier_argv")
def fixture_classifier_argv(tmp_path):
  data = tmp_path / "lcqmc"
  data.mkdir()
  rows = ["我喜欢猫\t我爱猫\t1", "今天下雨\t明天晴天\t0", "他在读书\t他在看书\t1", "苹果很甜\t汽车很快\t0"]
  vocab, config = write_tiny_pair_task(data, rows, ("train", "dev"))
  return [
      "--task_name=lcqmc", f"--data_dir={data}", f"--vocab_file={vocab}",
      f"--bert_config_file={config}", f"--output_dir={tmp_path / 'out'}", "--do_train",
      "--max_seq_length=16", "--train_batch_size=2", "--num_train_steps=2",
      "--save_checkpoints_steps=2", "--learning_rate=1e-3", "--rand_seed=7"]


def test_run_classifier_resumed_with_another_learning_rate_stops_and_writes_nothing(
    classifier_argv, tmp_path):
  first = _run("none", "finetune.run_classifier", classifier_argv)
  assert first.returncode == 0, first.stderr[-3000:]
  output = tmp_path / "out"
  before = _snapshot(output)
  assert json.loads(before["run_settings.json"])["settings"]["--learning_rate"] == 1e-3

  changed = ["--learning_rate=5e-4", "--num_train_steps=4"]
  rerun = _run("none", "finetune.run_classifier", classifier_argv + changed)
  assert_one_line_error(rerun, "run_classifier", str(output / "run_settings.json"),
                        "--learning_rate 0.001 -> 0.0005",
                        "--num_train_steps (or --num_train_epochs) 2 -> 4")
  assert _snapshot(output) == before

  allowed = _run("none", "finetune.run_classifier",
                 classifier_argv + changed + ["--allow_changed_settings"])
  assert allowed.returncode == 0, allowed.stderr[-3000:]
  record = _record(output)
  assert record["settings"]["--learning_rate"] == 5e-4
  assert record["changes"] == [{"at_steps": {".": 2}, "changed": {
      "--learning_rate": [1e-3, 5e-4], "--num_train_steps (or --num_train_epochs)": [2, 4]}}]
  assert os.path.exists(output / "model.ckpt-4.index")


def test_run_classifier_resumed_from_another_init_checkpoint_stops(classifier_argv, tmp_path):
  """The Estimator resumes from output_dir's checkpoint and never reads --init_checkpoint then."""
  first = _run("none", "finetune.run_classifier", classifier_argv)
  assert first.returncode == 0, first.stderr[-3000:]
  (tmp_path / "other").mkdir()
  for path in (tmp_path / "out").glob("model.ckpt-2.*"):
    shutil.copy(path, tmp_path / "other" / path.name)
  other = tmp_path / "other" / "model.ckpt-2"
  rerun = _run("none", "finetune.run_classifier", classifier_argv + [f"--init_checkpoint={other}"])
  assert_one_line_error(rerun, "run_classifier", "--init_checkpoint null -> ")


def test_pretraining_resumed_mid_warm_up_with_another_schedule_stops(tmp_path):
  """The warm-up's checkpoints are in output_dir/warmup; the main round has none yet."""
  data = tmp_path / "data"
  data.mkdir()
  write_tfrecord(data / "part-0.tfrecord", random_instances(16, 32, 4, seed=1))
  argv = [
      f"--bert_config_file={STUDENT_CONFIG}", f"--bert_teacher_config_file={TEACHER_CONFIG}",
      f"--init_checkpoint={TEACHER_CHECKPOINT}", f"--input_file={data}/part-*.tfrecord",
      f"--output_dir={tmp_path / 'out'}", "--do_train", "--layer_wise_warmup",
      "--num_distill_steps=4", "--hidden_distill_factor=100", "--distill_ground_truth_ratio=1",
      "--num_train_steps=2", "--num_warmup_steps=1", "--max_seq_length=32",
      "--max_predictions_per_seq=4", "--train_batch_size=4", "--save_checkpoints_steps=2",
      "--learning_rate=1e-3", "--optimizer=adamw"]
  killed = _run("step:3", "pretrain.run_pretraining", argv)
  assert killed.returncode == -9, killed.stderr[-3000:]
  assert os.path.exists(tmp_path / "out" / "warmup" / "model.ckpt-2.index")
  assert not os.path.exists(tmp_path / "out" / "checkpoint")
  before = _snapshot(tmp_path / "out")

  rerun = _run("none", "pretrain.run_pretraining", argv + ["--layer_wise_warmup_schedule=original"])
  assert_one_line_error(rerun, "run_pretraining.py", "--layer_wise_warmup_schedule \"staged\" -> "
                        "\"original\"")
  assert _snapshot(tmp_path / "out") == before
  dry = _run("none", "pretrain.run_pretraining",
             argv + ["--layer_wise_warmup_schedule=original", "--dry_run"])
  assert dry.returncode == 0, dry.stderr[-3000:]
  assert ("settings changed since the run started (run_settings.json): --layer_wise_warmup_schedule; "
          "training stops unless --allow_changed_settings") in dry.stdout

  resumed = _run("none", "pretrain.run_pretraining", argv)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert _record(tmp_path / "out")["changes"] == []
