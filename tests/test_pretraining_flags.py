"""Contradictory flag combinations fail before any graph is built, naming the flag."""

import json
import re
import subprocess
import sys

import pytest
import tensorflow.compat.v1 as tf

from mobilebert import atomic_io
from pretrain import schedule
from pretrain.pretraining_settings import PretrainingFlagError
from pretraining_testlib import (STUDENT_CONFIG, TEACHER_CHECKPOINT, TEACHER_CONFIG, random_instances,
                                 settings_for, write_tfrecord)
from conftest import ROOT


@pytest.fixture(name="data", scope="module")
def fixture_data(tmp_path_factory):
  directory = tmp_path_factory.mktemp("flags")
  three_layers = json.loads(open(TEACHER_CONFIG).read())
  three_layers["num_hidden_layers"] = 3
  (directory / "teacher3.json").write_text(json.dumps(three_layers))
  return {
      "dir": directory,
      "len32": write_tfrecord(directory / "len32.tfrecord", random_instances(4, 32, 4)),
      "len16": write_tfrecord(directory / "len16.tfrecord", random_instances(4, 16, 4)),
      "nsp": write_tfrecord(directory / "nsp.tfrecord", random_instances(8, 32, 4, nsp=True)),
      "no_nsp": write_tfrecord(directory / "no_nsp.tfrecord", [
          {k: v for k, v in i.items() if k != "next_sentence_labels"}
          for i in random_instances(4, 32, 4)]),
      "teacher3": str(directory / "teacher3.json"),
  }


def _base(data, *extra):
  return [f"--bert_config_file={STUDENT_CONFIG}", f"--input_file={data['len32']}",
          f"--output_dir={data['dir']}/out", "--do_train", "--max_seq_length=32",
          "--max_predictions_per_seq=4", "--num_train_steps=10", "--num_warmup_steps=1", *extra]


def _teacher(*extra):
  return [f"--bert_teacher_config_file={TEACHER_CONFIG}", f"--init_checkpoint={TEACHER_CHECKPOINT}",
          *extra]


def test_the_release_recipe_parses(data):
  settings = settings_for(_base(data, *_teacher(
      "--layer_wise_warmup", "--num_distill_steps=4", "--hidden_distill_factor=100",
      "--attention_distill_factor=1", "--beta_distill_factor=5000", "--gamma_distill_factor=5",
      "--distill_ground_truth_ratio=0.5", "--weight_decay_rate=0.02")))
  assert settings.distills_in_main_round
  assert settings.run.keep_checkpoint_max == 0  # every checkpoint kept, as the original
  phases = schedule.plan_phases(settings)
  assert [(p.name, p.kind, p.end_step) for p in phases] == [
      ("warmup", "progressive", 4), ("main_round", "distill", 10)]
  # The original defined --weight_decay_rate but hard-wired 0.01.
  assert all(schedule.train_options(settings, p).weight_decay_rate == 0.02 for p in phases)


@pytest.mark.parametrize("flag", [
    "--layer_wise_warmup", "--distill_ground_truth_ratio=0.5", "--hidden_distill_factor=1",
    "--attention_distill_factor=1", "--beta_distill_factor=1", "--gamma_distill_factor=1",
    "--distill_temperature=2"])
def test_teacher_flags_without_a_teacher_config(data, flag):
  name = flag.split("=")[0]
  with pytest.raises(PretrainingFlagError, match=f"{name}.*needs a teacher.*--bert_teacher_config"):
    settings_for(_base(data, flag))


@pytest.mark.parametrize("extra, message", [
    (["--max_seq_length=128"], "--max_seq_length=128 exceeds max_position_embeddings=64 of "
                               "--bert_config_file"),
    (["--first_num_train_steps=2", "--first_max_seq_length=100", "--first_input_file={len16}"],
     "--first_max_seq_length=100 exceeds max_position_embeddings=64"),
    (["--max_predictions_per_seq=40"], "--max_predictions_per_seq \\(40\\) exceeds --max_seq_length"),
    (["--max_seq_length=2", "--max_predictions_per_seq=1"],
     "--max_seq_length=2 holds no text: pretraining data has at least 5 tokens"),
    (["--first_num_train_steps=11", "--first_input_file={len16}"],
     "--first_num_train_steps \\(11\\) exceeds --num_train_steps"),
    (["--first_num_train_steps=2"], "--first_num_train_steps > 0 needs --first_input_file"),
    (["--num_warmup_steps=20"], "--num_warmup_steps \\(20\\) exceeds --num_train_steps"),
])
def test_inconsistent_lengths_and_steps(data, extra, message):
  extra = [e.format(**data) for e in extra]
  with pytest.raises(PretrainingFlagError, match=message):
    settings_for(_base(data, *extra))


@pytest.mark.parametrize("extra, message", [
    (["--max_seq_length=16"], "--input_file: .*len32.tfrecord: feature 'input_ids' has 32 values "
                              "but --max_seq_length=16"),
    (["--max_predictions_per_seq=3"], "--input_file: .*'masked_lm_positions' has 4 values but "
                                      "--max_predictions_per_seq=3"),
    (["--first_num_train_steps=2", "--first_input_file={len32}", "--first_max_seq_length=16"],
     "--first_input_file: .*has 32 values but --first_max_seq_length=16"),
    (["--nsp"], "--nsp: next_sentence_labels .* are all 0"),
])
def test_data_that_does_not_match_the_flags(data, extra, message):
  extra = [e.format(**data) for e in extra]
  with pytest.raises(PretrainingFlagError, match=message):
    settings_for(_base(data, *extra))


@pytest.mark.parametrize("flag", ["input_file", "first_input_file"])
def test_data_without_next_sentence_labels_reads_unless_nsp(data, flag):
  extra = ["--first_num_train_steps=2", f"--first_input_file={data['len32']}",
           "--first_max_seq_length=32"]
  argv = _base(data, *extra)
  argv[argv.index(f"--{flag}={data['len32']}")] = f"--{flag}={data['no_nsp']}"
  assert not settings_for(argv).nsp
  with pytest.raises(PretrainingFlagError, match=(
      rf"^--{flag}: {re.escape(data['no_nsp'])}: no feature 'next_sentence_labels', which --nsp "
      "needs")):
    settings_for(argv + ["--nsp"])


def test_nsp_is_accepted_on_data_with_labels(data):
  argv = _base(data, "--nsp")
  argv[1] = f"--input_file={data['nsp']}"
  assert settings_for(argv).nsp


@pytest.mark.parametrize("extra, message", [
    (["--layer_wise_warmup"], "--layer_wise_warmup needs at least one non-zero factor"),
    (["--layer_wise_warmup", "--hidden_distill_factor=1", "--num_distill_steps=1"],
     "--num_distill_steps \\(1\\) must be at least the student's num_hidden_layers \\(2\\)"),
    (["--distill_ground_truth_ratio=1.5"], "--distill_ground_truth_ratio must be in \\[0, 1\\]"),
    (["--distill_ground_truth_ratio=0.5", "--distill_temperature=0"],
     "--distill_temperature must be positive"),
])
def test_bad_teacher_settings(data, extra, message):
  with pytest.raises(PretrainingFlagError, match=message):
    settings_for(_base(data, *_teacher(*extra)))


def test_teacher_with_another_layer_count(data):
  argv = _base(data, f"--bert_teacher_config_file={data['teacher3']}",
               f"--init_checkpoint={TEACHER_CHECKPOINT}", "--layer_wise_warmup",
               "--attention_distill_factor=1")
  with pytest.raises(PretrainingFlagError, match="must agree on 'num_hidden_layers' \\(2 vs 3\\)"):
    settings_for(argv)


def test_teacher_without_init_checkpoint(data):
  argv = _base(data, f"--bert_teacher_config_file={TEACHER_CONFIG}",
               "--distill_ground_truth_ratio=0.5")
  with pytest.raises(PretrainingFlagError, match="needs --init_checkpoint"):
    settings_for(argv)


def test_float16_on_tpu(data):
  with pytest.raises(PretrainingFlagError, match="--precision=float16 is for GPUs"):
    settings_for(_base(data, "--use_tpu", "--precision=float16", "--train_batch_size=8"))


def test_command_line_reports_the_flag_and_builds_nothing(data, tmp_path):
  output = tmp_path / "out"
  argv = _base(data, "--layer_wise_warmup")
  argv[2] = f"--output_dir={output}"
  result = subprocess.run([sys.executable, str(ROOT / "pretrain" / "run_pretraining.py"), *argv],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
  assert result.returncode == 2 and "Traceback" not in result.stderr
  assert "run_pretraining.py: error: --layer_wise_warmup=True needs a teacher" in result.stderr
  assert not output.exists()


def test_tpu_runs_use_one_hot_embeddings_host_call_summaries_and_bfloat16(data):
  settings = settings_for(_base(data, *_teacher("--distill_ground_truth_ratio=0.5"), "--use_tpu",
                                "--tpu_name=my-tpu", "--precision=bfloat16", "--use_summary",
                                "--train_batch_size=16", "--use_einsum=false"))
  options = schedule.model_options(settings, "distill")
  assert options.use_one_hot_embeddings and not options.use_einsum
  assert options.compute_type == tf.bfloat16
  phase = schedule.plan_phases(settings)[-1]
  assert schedule.summary_options(settings, phase).use_host_call
  runner = schedule.runner_for(settings, phase)
  assert runner.strategy is None and runner.settings.tpu_name == "my-tpu"
  local = settings_for(_base(data, *_teacher("--distill_ground_truth_ratio=0.5")))
  assert not schedule.model_options(local, "distill").use_one_hot_embeddings


def test_tpu_batches_must_split_over_the_cores(data):
  with pytest.raises(PretrainingFlagError, match="--train_batch_size \\(12\\) must be divisible by "
                                                 "--num_tpu_cores \\(8\\)"):
    settings_for(_base(data, "--use_tpu", "--train_batch_size=12", "--eval_batch_size=8"))


@pytest.mark.parametrize("extra, expected", [
    (["--optimizer=lamb"], "original"),   # the authors' LAMB recipe
    (["--optimizer=adamw"], "staged"),    # the original AdamW ignores layer-wise rates
    (["--optimizer=adamw", "--layer_wise_warmup_schedule=original"], "original"),
    (["--optimizer=lamb", "--layer_wise_warmup_schedule=staged"], "staged"),
])
def test_warmup_schedule_default_per_optimizer_and_override(data, extra, expected):
  settings = settings_for(_base(data, *_teacher("--layer_wise_warmup", "--num_distill_steps=4",
                                                "--attention_distill_factor=1", *extra)))
  phase = schedule.plan_phases(settings)[0]
  assert schedule.model_options(settings, phase.kind).schedule.name == expected


def test_bad_warmup_schedule_is_one_line_naming_the_flag(data):
  argv = _base(data, *_teacher("--layer_wise_warmup", "--num_distill_steps=4",
                               "--attention_distill_factor=1", "--layer_wise_warmup_schedule=paper"))
  with pytest.raises(PretrainingFlagError) as error:
    settings_for(argv)
  assert str(error.value) == ("--layer_wise_warmup_schedule must be one of original, staged (or "
                              "unset for the optimizer's default), got 'paper'")


def test_lower_layer_scale_that_the_original_adamw_would_ignore_is_refused(data):
  argv = _base(data, *_teacher("--layer_wise_warmup", "--num_distill_steps=4",
                               "--attention_distill_factor=1", "--optimizer=adamw",
                               "--layer_wise_warmup_schedule=original", "--lower_layer_lr_scale=0"))
  with pytest.raises(PretrainingFlagError, match="^--lower_layer_lr_scale=0.0 has no effect: under "
                     "--optimizer=adamw the original warm-up schedule applies no layer-wise rate"):
    settings_for(argv)


def test_output_dir_holding_the_data_or_a_config_is_refused(data):
  """--output_dir receives checkpoints and summaries: it must not be, or hold, an input file."""
  data_dir = str(data["dir"])
  with pytest.raises(atomic_io.UnsafeOutputError, match=r"--output_dir=.* holds the input --input_file="):
    settings_for(_base(data, f"--output_dir={data_dir}"))
  with pytest.raises(atomic_io.UnsafeOutputError, match=r"--output_dir=.* is the input --input_file="):
    settings_for(_base(data, f"--output_dir={data['len32']}"))
  assert settings_for(_base(data, f"--output_dir={data_dir}/elsewhere")).run.output_dir.endswith("elsewhere")
