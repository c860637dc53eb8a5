"""Task-specific distillation of the tagging kind end to end: a few-step run_tagging.py with a
fine-tuned teacher (the graph invariants are in test_task_distillation)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from conftest import REFERENCE, ROOT
from finetune.core.distillation_settings import DistillationSettings
from finetune.tagging.runner import TaggingRunConfig, run
from mobilebert import cli
from mobilebert.run_config import RunSettings
from pretrain.pretraining_model import TEACHER_SCOPE

ROWS = [{"text": "张三在北京", "entities": [{"start": 0, "end": 2, "label": "PER"},
                                            {"start": 3, "end": 5, "label": "LOC"}]},
        {"text": "李四去上海", "entities": [{"start": 0, "end": 2, "label": "PER"},
                                            {"start": 3, "end": 5, "label": "LOC"}]},
        {"text": "王五住在南京", "entities": [{"start": 0, "end": 2, "label": "PER"},
                                              {"start": 4, "end": 6, "label": "LOC"}]}]


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
  run(TaggingRunConfig(data_dir=str(data), data_format="jsonl", vocab_file=str(vocab),
                       bert_config_file=str(configs["tiny_teacher_bert"]), max_seq_length=16,
                       train_batch_size=2, num_train_steps=2, learning_rate=1e-3, do_train=True,
                       run=RunSettings(output_dir=str(teacher_dir))))
  output = tmp_path / "student"
  argv = ["-m", "finetune.run_tagging", f"--data_dir={data}", "--data_format=jsonl",
          f"--vocab_file={vocab}", f"--bert_config_file={configs['tiny_student_f2']}",
          f"--output_dir={output}", "--do_train", "--max_seq_length=16", "--train_batch_size=2",
          "--num_train_steps=2", "--learning_rate=1e-3",
          f"--bert_teacher_config_file={configs['tiny_teacher_bert']}",
          f"--teacher_init_checkpoint={teacher_dir}", "--distill_temperature=2",
          "--hidden_distill_factor=1", "--attention_distill_factor=1"]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
  result = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  teacher = tf.train.latest_checkpoint(str(teacher_dir))
  student = tf.train.latest_checkpoint(str(output))
  kernel = "tagging/output_weights"
  np.testing.assert_array_equal(tf.train.load_variable(student, f"{TEACHER_SCOPE}/{kernel}"),
                                tf.train.load_variable(teacher, kernel))
  # a teacher trained with other entity types (so other tags) is refused before training
  (teacher_dir / "label_list.json").write_text(json.dumps({"labels": ["O", "B-PER", "I-PER"]}))
  with pytest.raises(cli.FlagError, match=r"the model in --teacher_init_checkpoint was trained with "
                                          r"tags \['O', 'B-PER', 'I-PER'\]"):
    run(TaggingRunConfig(data_dir=str(data), data_format="jsonl", vocab_file=str(vocab),
                         bert_config_file=str(configs["tiny_student_f2"]), max_seq_length=16,
                         do_train=True, run=RunSettings(output_dir=str(tmp_path / "again")),
                         distillation=DistillationSettings(str(configs["tiny_teacher_bert"]),
                                                           str(teacher_dir))))
