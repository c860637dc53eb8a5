"""The pretraining scripts run: the release's recipe (flags and data checked with --dry_run) and the
tiny CPU pipeline (data, plain MLM teacher, warm-up and distillation of a student) with few steps."""

import os
import subprocess

from conftest import ROOT
from pretraining_testlib import random_instances, write_tfrecord

DATA_SLICE = ROOT / "tests" / "fixtures" / "pretraining_data" / "199801_head.txt"


def run_script(name, env, *args, timeout=300):
  return subprocess.run(["bash", str(ROOT / "run_scripts" / name), *args], capture_output=True,
                        text=True, cwd=ROOT, timeout=timeout, env=dict(os.environ, **env))


def test_release_script_flags_and_data_check_pass_unchanged(tmp_path):
  # The release's data: max_seq_length 512, max_predictions_per_seq 75.
  for shard in range(2):
    write_tfrecord(tmp_path / f"tf_examples.{shard}", random_instances(2, 512, 75, seed=shard))
  env = {"DATA_DIR": f"{tmp_path}/tf_examples.*", "TEACHER_CHECKPOINT": str(tmp_path / "teacher"),
         "OUTPUT_DIR": str(tmp_path / "out")}
  # By default the warm-up runs as the release trained it; WARMUP_SCHEDULE switches to ours.
  for use_tpu, schedule_env, schedule in (("true", {}, "original"),
                                          ("false", {"WARMUP_SCHEDULE": "staged"}, "staged")):
    result = run_script("run_pretraining.sh", dict(env, USE_TPU=use_tpu, **schedule_env),
                        "--dry_run", timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"warmup: progressive ({schedule} schedule, adamw), until step "
                               "500000, batch 384, length 512, 2 input file(s)")
    assert lines[0].endswith("(to do)")
    assert lines[1].startswith("main_round: distill, until step 2000000, batch 384, length 512")
  assert not (tmp_path / "out").exists()


def test_tiny_cpu_pipeline_trains_teacher_then_student(tmp_path):
  env = {"WORK_DIR": str(tmp_path), "RAW_FILE": str(DATA_SLICE), "TEACHER_STEPS": "4",
         "NUM_DISTILL_STEPS": "2", "NUM_TRAIN_STEPS": "4", "SAVE_CHECKPOINTS_STEPS": "2",
         "EVAL_STEPS": "1", "TRAIN_BATCH_SIZE": "8"}
  result = run_script("tiny_pretraining_cpu.sh", env)
  assert result.returncode == 0, result.stderr[-3000:]
  for model in ("teacher", "student"):
    results = dict(line.split(" = ") for line in
                   (tmp_path / model / "eval_results.txt").read_text().splitlines())
    assert results["global_step"] == "4" and "masked_lm_accuracy" in results
  assert (tmp_path / "student" / "warmup" / "model.ckpt-2.index").exists()
