# coding=utf-8
"""Task-specific distillation of the span kind: zero loss when the student is the teacher, and a
few-step run_cmrc2018.py with a fine-tuned teacher on a slice of the CMRC 2018 trial set."""

import json
import os
import subprocess
import sys

import numpy as np
import tensorflow.compat.v1 as tf

from conftest import CONFIG_DIR, ROOT
from finetune import squad_data, squad_model
from finetune.distillation_settings import TaskDistillation
from finetune.squad_runner import SquadRunConfig, run
from finetune.task_distillation import LossWeights
from mobilebert import assets
from mobilebert.config import BertConfig
from mobilebert.run_config import RunSettings
from pretrain.pretraining_model import TEACHER_SCOPE

TINY = str(CONFIG_DIR / "tiny_student_zh.json")
TRIAL = ROOT / "data" / "cmrc2018" / "cmrc2018_trial.json"
BATCH, SEQ = 2, 16


def _features():
  rng = np.random.RandomState(0)
  mask = np.ones([BATCH, SEQ], np.int32)
  mask[1, 9:] = 0  # the second window is padded: its last positions must not count
  return {"input_ids": tf.constant(rng.randint(5, 1000, [BATCH, SEQ]).astype(np.int32) * mask),
          "input_mask": tf.constant(mask), "segment_ids": tf.zeros([BATCH, SEQ], tf.int32),
          "start_positions": tf.constant([3, 4]), "end_positions": tf.constant([5, 6]),
          "unique_ids": tf.constant([1, 2])}


def test_span_loss_is_zero_when_the_student_is_the_teacher(tmp_path):
  config = BertConfig.from_json_file(TINY).copy(hidden_dropout_prob=0.0,
                                                attention_probs_dropout_prob=0.0)
  settings = squad_model.SpanModelSettings(bert_config=config)
  with tf.Graph().as_default():
    features = _features()
    squad_model.create_model(settings, False, features["input_ids"], features["input_mask"],
                             features["segment_ids"])
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      checkpoint = tf.train.Saver().save(session, str(tmp_path / "teacher.ckpt"))
  with tf.Graph().as_default():
    tf.train.get_or_create_global_step()
    student = squad_model.SpanModelSettings(
        bert_config=config, init_checkpoint=checkpoint, num_train_steps=10,
        distillation=TaskDistillation(config, checkpoint, LossWeights(0.0, 2.0, 1.0, 1.0)))
    squad_model.model_fn_builder(student)(_features(), None, tf.estimator.ModeKeys.TRAIN, {})
    graph = tf.get_default_graph()
    names = ("soft_target", "feature_map_transfer", "attention_transfer", "total")
    tensors = {n: graph.get_tensor_by_name(f"distillation/{n}_loss:0") for n in names}
    assert [v for v in tf.global_variables() if v.op.name == f"{TEACHER_SCOPE}/cls/squad/output_weights"]
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      values = session.run(tensors)
  for name, value in values.items():
    assert abs(value) < 1e-5, (name, value)


def test_run_cmrc2018_distills_from_a_fine_tuned_teacher(tmp_path):
  dataset = squad_data.read_squad_json(str(TRIAL))
  article = dict(dataset["data"][0], paragraphs=dataset["data"][0]["paragraphs"][:1])
  train_file = tmp_path / "train.json"
  train_file.write_text(json.dumps({"version": dataset.get("version"), "data": [article]},
                                   ensure_ascii=False), encoding="utf-8")
  common = dict(vocab_file=assets.chinese_vocab_file(), bert_config_file=TINY,
                train_file=str(train_file), max_seq_length=64, doc_stride=32, max_query_length=16,
                do_train=True, train_batch_size=2, num_train_steps=2, learning_rate=1e-3)
  teacher_dir = tmp_path / "teacher"
  run(SquadRunConfig(run=RunSettings(output_dir=str(teacher_dir)), **common))
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
