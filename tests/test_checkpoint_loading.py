"""Every path that loads weights refuses what does not fit, and broken checkpoints are named.

Faults fed: a checkpoint of another architecture (config/tiny_student_zh.json's checkpoint under
config/tiny_bert_zh.json, or the golden tiny student under the golden tiny teacher's config) to
pretraining, both fine-tuning runners, export and fill-mask; an output dir holding another model's
checkpoints; a truncated or corrupted newest checkpoint; a truncated --init_checkpoint.
"""

import json
import logging
import os
import shutil
import subprocess
import sys

import pytest
import tensorflow.compat.v1 as tf

from conftest import CONFIG_DIR, ROOT
from finetune.span import data as span_data
from finetune.classification.runner import ClassifierRunConfig
from finetune.classification.runner import run as run_classifier
from finetune.span.runner import SpanRunConfig
from finetune.span.runner import run as run_squad
from mobilebert import assets, checkpoint, checkpoint_resume, modeling, resume_settings
from mobilebert.config import BertConfig
from mobilebert.run_config import RunSettings
from pretrain import schedule
from pretraining_testlib import (GOLDEN, STUDENT_CONFIG, TEACHER_CONFIG, random_instances,
                                 settings_for, write_tfrecord)

STUDENT_ZH = str(CONFIG_DIR / "tiny_student_zh.json")
BERT_ZH = str(CONFIG_DIR / "tiny_bert_zh.json")
STUDENT_CKPT = str(GOLDEN / "tiny_student_f2.ckpt")
CAUSE = "likely cause: --bert_config_file does not describe the model in --init_checkpoint"
# The first variable of tiny_bert_zh that tiny_student_zh's checkpoint holds with another shape.
ZH_MISMATCH = ("bert/encoder/layer_0/attention/self/query/kernel has shape [32, 32] in the checkpoint "
               "but [64, 64] in the graph")


def _one_line_error(error):
  message = str(error.value)
  assert "\n" not in message
  return message


def _checkpoints(directory):
  return sorted(os.path.basename(p) for p in tf.io.gfile.glob(os.path.join(directory, "*.index")))


def _truncate(path):
  with open(path, "rb") as f:
    data = f.read()
  with open(path, "wb") as f:
    f.write(data[:len(data) // 2])


@pytest.fixture(name="logs")
def fixture_logs(caplog):
  caplog.set_level(logging.INFO, logger="tensorflow")
  return caplog


@pytest.fixture(name="zh_init", scope="module")
def fixture_zh_init(tmp_path_factory):
  """A freshly initialized checkpoint of config/tiny_student_zh.json (bert/* only)."""
  path = tmp_path_factory.mktemp("zh_init") / "mobilebert.ckpt"
  with tf.Graph().as_default():
    modeling.BertModel(BertConfig.from_json_file(STUDENT_ZH), False, tf.zeros([1, 8], tf.int32))
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      tf.train.Saver().save(session, str(path), write_meta_graph=False)
  return str(path)


# Pretraining (in-process through the schedule run_pretraining.py calls; one run of the script).

@pytest.fixture(name="data", scope="module")
def fixture_data(tmp_path_factory):
  return write_tfrecord(tmp_path_factory.mktemp("data") / "main.tfrecord",
                        random_instances(16, 16, 4, seed=1))


def _pretrain_argv(data, output_dir, config, *extra):
  return [f"--bert_config_file={config}", f"--input_file={data}", f"--output_dir={output_dir}",
          "--do_train", "--num_train_steps=1", "--num_warmup_steps=0", "--max_seq_length=16",
          "--max_predictions_per_seq=4", "--train_batch_size=2", "--save_checkpoints_steps=1",
          "--learning_rate=1e-3", *extra]


def test_run_pretraining_refuses_a_checkpoint_of_another_architecture_in_one_line(data, tmp_path):
  argv = _pretrain_argv(data, tmp_path / "out", TEACHER_CONFIG, f"--init_checkpoint={STUDENT_CKPT}")
  done = subprocess.run([sys.executable, str(ROOT / "pretrain" / "run_pretraining.py"), *argv],
                        capture_output=True, text=True, cwd=ROOT, timeout=300,
                        env=dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2"))
  last = done.stderr.strip().splitlines()[-1]
  assert done.returncode == 2 and "Traceback" not in done.stderr
  assert last.startswith(f"run_pretraining.py: error: {STUDENT_CKPT}: bert/encoder/layer_0/")
  assert "in the checkpoint but" in last and CAUSE in last and "--skip_mismatched_variables" in last
  assert not _checkpoints(tmp_path / "out")


def test_pretraining_skips_mismatched_variables_only_with_the_flag(data, tmp_path, logs):
  settings = settings_for(_pretrain_argv(data, tmp_path / "out", TEACHER_CONFIG,
                                         f"--init_checkpoint={STUDENT_CKPT}",
                                         "--skip_mismatched_variables"))
  assert schedule.train(settings) == 1
  assert "left at their initializer (not in the checkpoint), 24 skipped (shape mismatch)" in logs.text
  assert "left at initializer (shape mismatch" in logs.text


def test_pretraining_into_an_output_dir_of_another_model_stops_before_training(data, tmp_path):
  out = tmp_path / "out"
  assert schedule.train(settings_for(_pretrain_argv(data, out, STUDENT_CONFIG))) == 1
  before = _checkpoints(out)
  # The run's record of its settings stops it first (test_resume_settings.py); past that, or in a
  # directory without a record, the checkpoint itself is checked against the graph.
  with pytest.raises(resume_settings.ChangedSettingsError, match="--bert_config_file \\("):
    schedule.train(settings_for(_pretrain_argv(data, out, TEACHER_CONFIG, "--num_train_steps=2")))
  with pytest.raises(checkpoint.CheckpointError) as error:
    schedule.train(settings_for(_pretrain_argv(data, out, TEACHER_CONFIG, "--num_train_steps=2",
                                               "--allow_changed_settings")))
  message = _one_line_error(error)
  assert message.startswith(f"{out} holds checkpoints of another model: in {out}/model.ckpt-1, ")
  assert "has shape [32, 32] there but [64, 64] in the graph" in message
  assert _checkpoints(out) == before


def test_pretraining_resumes_from_the_newest_readable_checkpoint(data, tmp_path, logs):
  out = tmp_path / "out"
  assert schedule.train(settings_for(_pretrain_argv(data, out, STUDENT_CONFIG,
                                                    "--num_train_steps=2"))) == 2
  _truncate(out / "model.ckpt-2.data-00000-of-00001")
  broken = (out / "model.ckpt-2.data-00000-of-00001").read_bytes()
  assert schedule.train(settings_for(_pretrain_argv(data, out, STUDENT_CONFIG,
                                                    "--num_train_steps=2"))) == 2
  assert f"{out}/model.ckpt-2: cannot read" in logs.text and "Read less bytes than requested" in logs.text
  assert f"resuming from {out}/model.ckpt-1, the newest readable checkpoint" in logs.text
  # The broken files are kept, under a name no tool reads as a checkpoint of the run.
  moved = out / checkpoint_resume.UNREADABLE_DIR
  assert (moved / "model.ckpt-2.data-00000-of-00001").read_bytes() == broken
  assert tf.train.latest_checkpoint(str(out)) == f"{out}/model.ckpt-2"
  checkpoint.check_readable(str(out / "model.ckpt-2"))  # written again by the resumed run


def _copy_golden(directory, step, state_names=None):
  """model.ckpt-<step> in `directory` (a copy of the golden student); state file listing state_names."""
  directory.mkdir(exist_ok=True)
  for suffix in (".index", ".data-00000-of-00001"):
    shutil.copy(STUDENT_CKPT + suffix, directory / f"model.ckpt-{step}{suffix}")
  if state_names:
    lines = [f'model_checkpoint_path: "{state_names[-1]}"']
    lines += [f'all_model_checkpoint_paths: "{name}"' for name in state_names]
    (directory / "checkpoint").write_text("\n".join(lines) + "\n")


def test_a_directory_with_no_readable_checkpoint_stops(tmp_path):
  out = tmp_path / "out"
  _copy_golden(out, 5, ["model.ckpt-5"])
  index = bytearray((out / "model.ckpt-5.index").read_bytes())
  index[len(index) // 2] ^= 0xFF
  (out / "model.ckpt-5.index").write_bytes(bytes(index))
  with pytest.raises(checkpoint.CheckpointError) as error:
    checkpoint_resume.recover_latest(str(out))
  message = _one_line_error(error)
  assert message.startswith(f"{out}: no readable checkpoint to resume from (1 unreadable, newest: "
                            f"{out}/model.ckpt-5: cannot read checkpoint, it is truncated or corrupt")
  assert _checkpoints(out) == ["model.ckpt-5.index"]  # nothing moved when nothing can be resumed


def test_a_damaged_state_file_is_named_instead_of_starting_afresh(tmp_path):
  out = tmp_path / "out"
  _copy_golden(out, 1, ["model.ckpt-1"])
  (out / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-1\nall_model_chec')
  with pytest.raises(checkpoint.CheckpointError, match=(
      rf"^{out}/checkpoint: cannot parse the checkpoint state file; move it away")):
    checkpoint_resume.recover_latest(str(out))


def test_resume_falls_back_past_a_missing_or_unlisted_broken_checkpoint(tmp_path):
  # The state file names a checkpoint whose files are gone (the Estimator would start afresh).
  out = tmp_path / "missing"
  _copy_golden(out, 1, ["model.ckpt-1", "model.ckpt-2"])
  assert checkpoint_resume.recover_latest(str(out)) == f"{out}/model.ckpt-1"
  assert tf.train.latest_checkpoint(str(out)) == f"{out}/model.ckpt-1"
  # --keep_checkpoint_max=0: the state file lists only the (broken) latest; the older one on disk
  # is found. A checkpoint newer than the state's latest is not the run's to resume from.
  out = tmp_path / "keep_all"
  _copy_golden(out, 1)
  _copy_golden(out, 2, ["model.ckpt-2"])
  _copy_golden(out, 3)
  _truncate(out / "model.ckpt-2.data-00000-of-00001")
  assert checkpoint_resume.recover_latest(str(out)) == f"{out}/model.ckpt-1"
  assert _checkpoints(out) == ["model.ckpt-1.index", "model.ckpt-3.index"]
  assert _checkpoints(out / checkpoint_resume.UNREADABLE_DIR) == ["model.ckpt-2.index"]
  # Without a state file nothing is resumed (nor moved), as before.
  out = tmp_path / "no_state"
  _copy_golden(out, 1)
  assert checkpoint_resume.recover_latest(str(out)) is None


# Fine-tuning: run_classifier and run_cmrc2018 (in-process through the runners they call).

def _classifier(tmp_path, config, init=None, steps=1, do_train=True, allow_changed_settings=False,
                **kwargs):
  return ClassifierRunConfig(
      task_name="chnsenticorp", data_dir=str(ROOT / "tests" / "fixtures" / "classifier" /
                                             "chnsenticorp"),
      vocab_file=assets.chinese_vocab_file(), bert_config_file=config, init_checkpoint=init,
      max_seq_length=16, do_train=do_train, train_batch_size=2, num_train_steps=steps,
      run=RunSettings(output_dir=str(tmp_path / "out"), save_checkpoints_steps=1,
                      iterations_per_loop=1, allow_changed_settings=allow_changed_settings),
      **kwargs)


def test_classifier_refuses_a_checkpoint_of_another_architecture(tmp_path, zh_init, logs):
  with pytest.raises(checkpoint.CheckpointError) as error:
    run_classifier(_classifier(tmp_path, BERT_ZH, zh_init))
  message = _one_line_error(error)
  assert message.startswith(f"{zh_init}: {ZH_MISMATCH}") and CAUSE in message
  assert not _checkpoints(tmp_path / "out")
  report = run_classifier(_classifier(tmp_path, BERT_ZH, zh_init, skip_mismatched_variables=True))
  assert report.num_train_steps == 1 and "skipped (shape mismatch)" in logs.text


def test_classifier_from_a_truncated_init_checkpoint_names_it(tmp_path, zh_init):
  broken = tmp_path / "broken.ckpt"
  for suffix in (".index", ".data-00000-of-00001"):
    shutil.copy(zh_init + suffix, f"{broken}{suffix}")
  _truncate(f"{broken}.data-00000-of-00001")
  with pytest.raises(checkpoint.CheckpointError, match=(
      rf"^{broken}: cannot read .*, the checkpoint is truncated or corrupt \(Read less bytes")):
    run_classifier(_classifier(tmp_path, STUDENT_ZH, str(broken)))


def test_classifier_into_an_output_dir_of_another_model_stops_before_training(tmp_path, zh_init):
  run_classifier(_classifier(tmp_path, STUDENT_ZH, zh_init))
  before = _checkpoints(tmp_path / "out")
  with pytest.raises(resume_settings.ChangedSettingsError, match="--bert_config_file \\("):
    run_classifier(_classifier(tmp_path, BERT_ZH, steps=2))
  with pytest.raises(checkpoint.CheckpointError) as error:
    run_classifier(_classifier(tmp_path, BERT_ZH, steps=2, allow_changed_settings=True))
  message = _one_line_error(error)
  assert message.startswith(f"{tmp_path}/out holds checkpoints of another model: ")
  assert _checkpoints(tmp_path / "out") == before
  # Scoring alone restores each checkpoint: the same check, naming the checkpoint.
  with pytest.raises(checkpoint.CheckpointError, match=(
      rf"^{tmp_path}/out/model.ckpt-\d+ is a checkpoint of another model, .* in the graph")):
    run_classifier(_classifier(tmp_path, BERT_ZH, do_train=False, do_eval=True))


def test_classifier_resumes_past_a_truncated_latest_checkpoint(tmp_path, zh_init, logs):
  run_classifier(_classifier(tmp_path, STUDENT_ZH, zh_init, steps=2))
  out = tmp_path / "out"
  _truncate(out / "model.ckpt-2.data-00000-of-00001")
  assert run_classifier(_classifier(tmp_path, STUDENT_ZH, zh_init, steps=2)).num_train_steps == 2
  assert f"resuming from {out}/model.ckpt-1" in logs.text
  assert (out / checkpoint_resume.UNREADABLE_DIR / "model.ckpt-2.index").exists()
  assert tf.train.latest_checkpoint(str(out)) == f"{out}/model.ckpt-2"
  checkpoint.check_readable(str(out / "model.ckpt-2"))  # written again by the resumed run


@pytest.fixture(name="cmrc_file", scope="module")
def fixture_cmrc_file(tmp_path_factory):
  dataset = span_data.read_squad_json(str(ROOT / "data" / "cmrc2018" / "cmrc2018_trial.json"))
  article = dict(dataset["data"][0], paragraphs=dataset["data"][0]["paragraphs"][:1])
  path = tmp_path_factory.mktemp("cmrc") / "train.json"
  path.write_text(json.dumps({"version": dataset.get("version"), "data": [article]},
                             ensure_ascii=False), encoding="utf-8")
  return str(path)


def _squad(tmp_path, train_file, config, init=None, steps=1, allow_changed_settings=False):
  return SpanRunConfig(
      vocab_file=assets.chinese_vocab_file(), bert_config_file=config, init_checkpoint=init,
      train_file=train_file, do_train=True, max_seq_length=64, max_query_length=16, doc_stride=32,
      train_batch_size=2, num_train_steps=steps,
      run=RunSettings(output_dir=str(tmp_path / "out"), save_checkpoints_steps=1,
                      iterations_per_loop=1, allow_changed_settings=allow_changed_settings))


def test_cmrc2018_refuses_a_checkpoint_of_another_architecture(tmp_path, cmrc_file, zh_init):
  with pytest.raises(checkpoint.CheckpointError) as error:
    run_squad(_squad(tmp_path, cmrc_file, BERT_ZH, zh_init))
  message = _one_line_error(error)
  assert message.startswith(f"{zh_init}: {ZH_MISMATCH}") and CAUSE in message


def test_cmrc2018_into_an_output_dir_of_another_model_stops_before_training(tmp_path, cmrc_file,
                                                                            zh_init):
  run_squad(_squad(tmp_path, cmrc_file, STUDENT_ZH, zh_init))
  with pytest.raises(resume_settings.ChangedSettingsError, match="--bert_config_file \\("):
    run_squad(_squad(tmp_path, cmrc_file, BERT_ZH, steps=2))
  with pytest.raises(checkpoint.CheckpointError, match=(
      rf"^{tmp_path}/out holds checkpoints of another model: in {tmp_path}/out/model.ckpt-1, ")):
    run_squad(_squad(tmp_path, cmrc_file, BERT_ZH, steps=2, allow_changed_settings=True))


# Export and fill-mask (their command lines; both load strictly, with no skipping).

def _cli(module, *args):
  return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                        cwd=ROOT, timeout=300,
                        env=dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2"))


def test_export_refuses_a_checkpoint_of_another_architecture_and_names_a_truncated_one(tmp_path,
                                                                                     zh_init):
  args = ["--format=saved_model", f"--output={tmp_path / 'exported'}"]
  done = _cli("mobilebert.export", f"--bert_config_file={BERT_ZH}", f"--init_checkpoint={zh_init}",
              *args)
  assert done.returncode == 2 and "Traceback" not in done.stderr
  assert done.stderr.strip().splitlines()[-1] == (
      f"export: error: {zh_init}: {ZH_MISMATCH}, and 23 more variables differ; {CAUSE}")
  broken = tmp_path / "broken.ckpt"
  for suffix in (".index", ".data-00000-of-00001"):
    shutil.copy(zh_init + suffix, f"{broken}{suffix}")
  _truncate(f"{broken}.data-00000-of-00001")
  done = _cli("mobilebert.export", f"--bert_config_file={STUDENT_ZH}", f"--init_checkpoint={broken}",
              *args)
  last = done.stderr.strip().splitlines()[-1]
  assert done.returncode == 2 and "Traceback" not in done.stderr
  assert last.startswith(f"export: error: {broken}: cannot read ")
  assert last.endswith("the checkpoint is truncated or corrupt (Read less bytes than requested)")
  assert not (tmp_path / "exported").exists()


def test_fill_mask_refuses_a_checkpoint_of_another_architecture(tmp_path):
  vocab = tmp_path / "vocab.txt"
  vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] +
                             [f"[unused{i}]" for i in range(507)]) + "\n")
  done = _cli("mobilebert.fill_mask", f"--bert_config_file={TEACHER_CONFIG}", f"--vocab_file={vocab}",
              f"--init_checkpoint={STUDENT_CKPT}", "--text=[MASK]")
  last = done.stderr.strip().splitlines()[-1]
  assert done.returncode == 2 and "Traceback" not in done.stderr
  assert last.startswith(f"fill_mask: error: {STUDENT_CKPT}: bert/encoder/layer_0/") and CAUSE in last
