# coding=utf-8
"""Task-specific distillation end to end for the span and tagging kinds: a few-step run_cmrc2018.py /
run_tagging.py with a fine-tuned teacher (the graph invariants are in test_task_distillation, the
classifier's run in test_task_distillation_run)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from conftest import CONFIG_DIR, REFERENCE, ROOT
from finetune.core.distillation_settings import DistillationSettings
from finetune.span import data as span_data
from finetune.span.runner import SpanRunConfig
from finetune.span.runner import run as run_span
from finetune.tagging.runner import TaggingRunConfig
from finetune.tagging.runner import run as run_tagging
from mobilebert import assets, cli
from mobilebert.run_config import RunSettings
from pretrain.pretraining_model import TEACHER_SCOPE

TINY = str(CONFIG_DIR / "tiny_student_zh.json")
TRIAL = ROOT / "data" / "cmrc2018" / "cmrc2018_trial.json"

ROWS = [{"text": "张三在北京", "entities": [{"start": 0, "end": 2, "label": "PER"},
                                            {"start": 3, "end": 5, "label": "LOC"}]},
        {"text": "李四去上海", "entities": [{"start": 0, "end": 2, "label": "PER"},
                                            {"start": 3, "end": 5, "label": "LOC"}]},
        {"text": "王五住在南京", "entities": [{"start": 0, "end": 2, "label": "PER"},
                                              {"start": 4, "end": 6, "label": "LOC"}]}]


def run_distilled(argv, teacher_dir, output, head_kernel):
  """Runs an entry point with a teacher in a subprocess; the teacher's head kernel must be unchanged
  in the student's checkpoint (it came from the teacher's and never moved)."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
  result = subprocess.run([sys.executable, *argv, f"--output_dir={output}",
                           f"--teacher_init_checkpoint={teacher_dir}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  teacher = tf.train.latest_checkpoint(str(teacher_dir))
  student = tf.train.latest_checkpoint(str(output))
  np.testing.assert_array_equal(tf.train.load_variable(student, f"{TEACHER_SCOPE}/{head_kernel}"),
                                tf.train.load_variable(teacher, head_kernel))


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
  run_span(SpanRunConfig(run=RunSettings(output_dir=str(teacher_dir)), **common))
  argv = ["-m", "finetune.run_cmrc2018", "--do_train", f"--bert_teacher_config_file={TINY}",
          "--distill_ground_truth_ratio=0.2", "--distill_temperature=3",
          *[f"--{k}={v}" for k, v in common.items() if k != "do_train"]]
  run_distilled(argv, teacher_dir, tmp_path / "student", "cls/squad/output_weights")


def test_run_tagging_distills_from_a_fine_tuned_teacher(tmp_path):
  data = tmp_path / "data"
  data.mkdir()
  (data / "train.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS),
                                    encoding="utf-8")
  chars = sorted({c for row in ROWS for c in row["text"]})
  vocab = tmp_path / "vocab.txt"
  vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars) + "\n",
                   encoding="utf-8")
  configs = {}
  for name in ("tiny_teacher_bert", "tiny_student_f2"):
    config = json.loads((REFERENCE / "golden" / f"{name}.json").read_text())
    config.update(vocab_size=5 + len(chars))
    configs[name] = tmp_path / f"{name}.json"
    configs[name].write_text(json.dumps(config))
  teacher_dir = tmp_path / "teacher"
  run_tagging(TaggingRunConfig(
      data_dir=str(data), data_format="jsonl", vocab_file=str(vocab),
      bert_config_file=str(configs["tiny_teacher_bert"]), max_seq_length=16, train_batch_size=2,
      num_train_steps=2, learning_rate=1e-3, do_train=True,
      run=RunSettings(output_dir=str(teacher_dir))))
  argv = ["-m", "finetune.run_tagging", f"--data_dir={data}", "--data_format=jsonl",
          f"--vocab_file={vocab}", f"--bert_config_file={configs['tiny_student_f2']}", "--do_train",
          "--max_seq_length=16", "--train_batch_size=2", "--num_train_steps=2",
          "--learning_rate=1e-3", f"--bert_teacher_config_file={configs['tiny_teacher_bert']}",
          "--distill_temperature=2", "--hidden_distill_factor=1", "--attention_distill_factor=1"]
  run_distilled(argv, teacher_dir, tmp_path / "student", "tagging/output_weights")
  # a teacher trained with other entity types (so other tags) is refused before training
  (teacher_dir / "label_list.json").write_text(json.dumps({"labels": ["O", "B-PER", "I-PER"]}))
  with pytest.raises(cli.FlagError, match=r"the model in --teacher_init_checkpoint was trained with "
                                          r"tags \['O', 'B-PER', 'I-PER'\]"):
    run_tagging(TaggingRunConfig(
        data_dir=str(data), data_format="jsonl", vocab_file=str(vocab),
        bert_config_file=str(configs["tiny_student_f2"]), max_seq_length=16, do_train=True,
        run=RunSettings(output_dir=str(tmp_path / "again")),
        distillation=DistillationSettings(str(configs["tiny_teacher_bert"]), str(teacher_dir))))
