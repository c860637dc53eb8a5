"""Task-specific distillation through run_classifier.py: a few-step run with a fine-tuned teacher, the
teacher's values unchanged in the student's checkpoint, named losses in TensorBoard, and every bad
flag reported naming the flag."""

import glob
import json
import os
import shutil
import subprocess
import sys

import pytest
import tensorflow.compat.v1 as tf
from absl import flags as absl_flags

from conftest import REFERENCE, ROOT
from finetune.classification.runner import ClassifierRunConfig, run
from finetune.core import distillation_settings
from finetune.core.distillation_settings import GROUND_TRUTH_RATIO_WITH_TEACHER, DistillationSettings
from mobilebert import cli
from mobilebert.config import BertConfig
from mobilebert.run_config import RunSettings
from pretrain.pretraining_model import TEACHER_SCOPE

ROWS = ["我喜欢猫\t我爱猫\t1", "今天下雨\t明天晴天\t0", "他在读书\t他在看书\t1", "苹果很甜\t汽车很快\t0",
        "天气很好\t天气不错\t1"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
COMMON = ["--task_name=lcqmc", "--max_seq_length=16", "--train_batch_size=2", "--eval_batch_size=2",
          "--learning_rate=1e-3", "--rand_seed=7"]


@pytest.fixture(name="task", scope="module")
def fixture_task(tmp_path_factory):
  """LCQMC-shaped data, its vocabulary, tiny teacher/student configs and a fine-tuned teacher."""
  data = tmp_path_factory.mktemp("lcqmc")
  for split in ("train", "dev", "test"):
    (data / f"{split}.tsv").write_text("\n".join(ROWS) + "\n", encoding="utf-8")
  chars = sorted({c for row in ROWS for c in row if "\u4e00" <= c <= "\u9fff"})
  (data / "vocab.txt").write_text("\n".join(SPECIAL + chars) + "\n", encoding="utf-8")
  for name in ("tiny_teacher_bert", "tiny_student_f2"):
    text = (REFERENCE / "golden" / f"{name}.json").read_text()
    (data / f"{name}.json").write_text(text.replace('"vocab_size": 512',
                                                    f'"vocab_size": {len(SPECIAL) + len(chars)}'))
  teacher_dir = data / "teacher"
  run(ClassifierRunConfig(
      task_name="lcqmc", data_dir=str(data), vocab_file=str(data / "vocab.txt"),
      bert_config_file=str(data / "tiny_teacher_bert.json"), max_seq_length=16, do_train=True,
      train_batch_size=2, num_train_steps=4, learning_rate=1e-3,
      run=RunSettings(output_dir=str(teacher_dir), save_checkpoints_steps=4)))
  return data, teacher_dir


def _argv(data, output_dir, *extra):
  return ["-m", "finetune.run_classifier", f"--data_dir={data}", f"--vocab_file={data / 'vocab.txt'}",
          f"--bert_config_file={data / 'tiny_student_f2.json'}", f"--output_dir={output_dir}",
          *COMMON, *extra]


def _run(argv):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
  return subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=600)


def test_run_classifier_distills_from_a_fine_tuned_teacher(task, tmp_path):
  data, teacher_dir = task
  output = tmp_path / "student"
  result = _run(_argv(data, output, "--do_train", "--do_eval", "--num_train_steps=3",
                      "--save_checkpoints_steps=3", "--save_summary_steps=1",
                      f"--bert_teacher_config_file={data / 'tiny_teacher_bert.json'}",
                      f"--teacher_init_checkpoint={teacher_dir}", "--distill_temperature=2",
                      "--hidden_distill_factor=1", "--attention_distill_factor=1"))
  assert result.returncode == 0, result.stderr[-3000:]
  assert (output / "eval_results.txt").exists()
  teacher = tf.train.latest_checkpoint(str(teacher_dir))
  student = tf.train.latest_checkpoint(str(output))
  assert student.endswith("-3")
  teacher_names = [n for n, _ in tf.train.list_variables(teacher)
                   if not n.startswith("global_step") and "adam_" not in n]
  for name in teacher_names:  # the teacher came whole from its checkpoint and never moved
    assert (tf.train.load_variable(student, f"{TEACHER_SCOPE}/{name}")
            == tf.train.load_variable(teacher, name)).all(), name
  assert not [n for n, _ in tf.train.list_variables(student)
              if n.startswith(TEACHER_SCOPE + "/") and "adam_" in n]  # no optimizer slots
  tags = set()
  for events in glob.glob(str(output / "events.out.tfevents.*")):
    for event in tf.train.summary_iterator(events):
      tags.update(value.tag for value in event.summary.value)
  assert {"total_loss", "task_loss", "soft_target_loss", "feature_map_transfer_loss",
          "attention_transfer_loss"} <= tags


def test_a_distillation_flag_without_a_teacher_is_one_line_naming_it(task, tmp_path):
  data, _ = task
  result = _run(_argv(data, tmp_path / "out", "--do_train", "--distill_temperature=2"))
  assert result.returncode == cli.EXIT_USER_ERROR, result.stderr[-3000:]
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("run_classifier: error: --distill_temperature=2.0 needs a teacher"), last
  assert not (tmp_path / "out").exists()


def test_the_teacher_output_dir_is_never_the_students(task):
  data, teacher_dir = task
  result = _run(_argv(data, teacher_dir, "--do_train", "--num_train_steps=1",
                      f"--bert_teacher_config_file={data / 'tiny_teacher_bert.json'}",
                      f"--teacher_init_checkpoint={teacher_dir}"))
  assert result.returncode == cli.EXIT_USER_ERROR
  assert "--teacher_init_checkpoint" in result.stderr.strip().splitlines()[-1]


def test_a_teacher_fine_tuned_with_other_labels_is_refused(task, tmp_path):
  data, teacher_dir = task
  teacher = tmp_path / "teacher"
  shutil.copytree(teacher_dir, teacher)
  (teacher / "label_list.json").write_text(json.dumps({"task": "lcqmc", "labels": ["1", "0"]}))
  config = ClassifierRunConfig(
      task_name="lcqmc", data_dir=str(data), vocab_file=str(data / "vocab.txt"),
      bert_config_file=str(data / "tiny_student_f2.json"), max_seq_length=16, do_train=True,
      run=RunSettings(output_dir=str(tmp_path / "student")),
      distillation=DistillationSettings(str(data / "tiny_teacher_bert.json"), str(teacher)))
  with pytest.raises(cli.FlagError, match=r"the model in --teacher_init_checkpoint was trained with "
                                          r"labels \['1', '0'\]"):
    run(config)


def test_an_unset_ratio_means_the_default_with_a_teacher_even_after_run_pretraining_defined_it():
  flag_values = absl_flags.FlagValues()
  absl_flags.DEFINE_float("distill_ground_truth_ratio", 1.0, "pretraining's", flag_values=flag_values)
  distillation_settings.define_flags(flag_values)
  flag_values(["prog", "--bert_teacher_config_file=t.json"])
  assert distillation_settings.from_flags(flag_values).distill_ground_truth_ratio is None
  flag_values(["prog", "--distill_ground_truth_ratio=1"])
  assert distillation_settings.from_flags(flag_values).distill_ground_truth_ratio == 1.0
  assert distillation_settings.from_flags(absl_flags.FlagValues()) == DistillationSettings()


def _student(data):
  return BertConfig.from_json_file(str(data / "tiny_student_f2.json"))


@pytest.mark.parametrize("changes, fragment", [
    ({"teacher_init_checkpoint": None}, "--bert_teacher_config_file needs --teacher_init_checkpoint"),
    ({"distill_ground_truth_ratio": 1.5}, "--distill_ground_truth_ratio must be in [0, 1]"),
    ({"distill_ground_truth_ratio": 1.0}, "--distill_ground_truth_ratio=1 with no"),
    ({"distill_temperature": 0.0}, "--distill_temperature must be positive"),
    ({"hidden_distill_factor": -1.0}, "--hidden_distill_factor must not be negative"),
    ({"teacher_init_checkpoint": "/nonexistent/model.ckpt"}, "--teacher_init_checkpoint: "),
])
def test_bad_distillation_flags_name_the_flag(task, changes, fragment):
  data, teacher_dir = task
  flags = dict(bert_teacher_config_file=str(data / "tiny_teacher_bert.json"),
               teacher_init_checkpoint=str(teacher_dir), **{})
  flags.update(changes)
  with pytest.raises(cli.UserError) as error:
    DistillationSettings(**flags).resolve(_student(data), 16)
  assert fragment in str(error.value)


def test_transfer_needs_the_widths_it_compares(task, tmp_path):
  data, teacher_dir = task
  wide = BertConfig.from_json_file(str(data / "tiny_teacher_bert.json")).copy(
      hidden_size=128, num_attention_heads=8)
  path = tmp_path / "wide.json"
  path.write_text(wide.to_json_string())
  for flag in ("hidden_distill_factor", "attention_distill_factor"):
    settings = DistillationSettings(str(path), str(teacher_dir), **{flag: 1.0})
    with pytest.raises(cli.FlagError, match=f"--{flag} compares"):
      settings.resolve(_student(data), 16)
  # soft targets alone need only the vocabulary, so a wider teacher is fine
  resolved = DistillationSettings(str(path), str(teacher_dir)).resolve(_student(data), 16)
  assert resolved.weights.ground_truth_ratio == GROUND_TRUTH_RATIO_WITH_TEACHER
  assert resolved.teacher_init_checkpoint == tf.train.latest_checkpoint(str(teacher_dir))
