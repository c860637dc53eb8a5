# coding=utf-8
"""Task-specific distillation of the span kind end to end: a few-step run_cmrc2018.py with a fine-tuned
teacher on a slice of the CMRC 2018 trial set (the graph invariants are in test_task_distillation)."""

import json
import os
import subprocess
import sys

import numpy as np
import tensorflow.compat.v1 as tf

from conftest import CONFIG_DIR, ROOT
from finetune.span import data as span_data
from finetune.span.runner import SpanRunConfig, run
from mobilebert import assets
from mobilebert.run_config import RunSettings
from pretrain.pretraining_model import TEACHER_SCOPE

TINY = str(CONFIG_DIR / "tiny_student_zh.json")
TRIAL = ROOT / "data" / "cmrc2018" / "cmrc2018_trial.json"


def test_run_cmrc2018_distills_from_a_fine_tuned_teacher(tmp_path):
  dataset = span_data.read_squad_json(str(TRIAL))
  article = dict(dataset["data"][0], paragraphs=dataset["data"][0]["paragraphs"][:1])
  train_file = tmp_path / "train.json"
  train_file.write_text(json.dumps({"version": dataset.get("version"), "data": [article]},
                                   ensure_ascii=False), encoding="utf-8")
  common = dict(vocab_file=assets.chinese_vocab_file(), bert_config_file=TINY,
                train_file=str(train_file), max_seq_length=64, doc_stride=32, max_query_length=16,
                do_train=True, train_batch_size=2, num_train_steps=2, learning_rate=1e-3)
  teacher_dir = tmp_path / "teacher"
  run(SpanRunConfig(run=RunSettings(output_dir=str(teacher_dir)), **common))
  output = tmp_path / "student"
  argv = ["-m", "finetune.run_cmrc2018", f"--output_dir={output}", "--do_train",
          f"--bert_teacher_config_file={TINY}", f"--teacher_init_checkpoint={teacher_dir}",
          "--distill_ground_truth_ratio=0.2", "--distill_temperature=3",
          *[f"--{k}={v}" for k, v in common.items() if k != "do_train"]]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
  result = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  teacher = tf.train.latest_checkpoint(str(teacher_dir))
  student = tf.train.latest_checkpoint(str(output))
  kernel = "cls/squad/output_weights"
  np.testing.assert_array_equal(tf.train.load_variable(student, f"{TEACHER_SCOPE}/{kernel}"),
                                tf.train.load_variable(teacher, kernel))
