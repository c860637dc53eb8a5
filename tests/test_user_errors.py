# coding=utf-8
"""User errors are one line `<tool>: error: ...` with exit status 2, a traceback only with --verbose, and
no empty output folder left behind; bugs keep their traceback (mobilebert/cli.py)."""

import json
import os
import subprocess
import sys

import pytest

from conftest import CONFIG_DIR, ROOT
from finetune.span import runner as span_runner
from finetune.classification.runner import ClassifierRunConfig
from finetune.classification.runner import run as run_classifier
from finetune.span.runner import SpanRunConfig
from mobilebert import assets, cli
from mobilebert.run_config import RunSettings

TINY = str(CONFIG_DIR / "tiny_student_zh.json")
CLASSIFIER_DATA = ROOT / "tests" / "fixtures" / "classifier"
METRIC = str(ROOT / "finetune" / "cmrc2018_evaluate.py")


def _tool(args, timeout=180):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
  return subprocess.run([sys.executable] + list(args), capture_output=True, text=True, cwd=ROOT,
                        env=env, timeout=timeout)


def assert_one_line_error(result, tool, *fragments):
  """Exit 2, no traceback, and the last stderr line is the tool's error naming every fragment."""
  assert result.returncode == cli.EXIT_USER_ERROR, result.stderr[-3000:]
  assert "Traceback" not in result.stderr, result.stderr[-3000:]
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith(f"{tool}: error: "), result.stderr[-3000:]
  for fragment in fragments:
    assert fragment in last, (fragment, last)
  return last


# --- the shared mechanism ------------------------------------------------------------------------

def test_a_user_error_is_one_line_and_exit_2(capsys):
  with pytest.raises(SystemExit) as exit_info:
    with cli.reporting_user_errors("tool", verbose=False):
      raise cli.FlagError("--x must be\npositive")
  assert exit_info.value.code == 2
  assert capsys.readouterr().err == "tool: error: --x must be positive\n"


def test_verbose_adds_the_traceback(capsys):
  with pytest.raises(SystemExit):
    with cli.reporting_user_errors("tool", verbose=True):
      raise cli.DataError("bad.json: expected field 'id'")
  err = capsys.readouterr().err
  assert "Traceback" in err and err.endswith("tool: error: bad.json: expected field 'id'\n")


def test_a_bug_is_not_a_user_error():
  with pytest.raises(KeyError):
    with cli.reporting_user_errors("tool", verbose=False):
      raise KeyError("a bug")


def test_only_an_empty_folder_the_run_created_is_removed(tmp_path):
  created = tmp_path / "new" / "out"
  with pytest.raises(RuntimeError):
    with cli.removing_output_dir_left_empty(str(created)):
      (created / "sub").mkdir(parents=True)
      raise RuntimeError("failed early")
  assert not (tmp_path / "new").exists()
  existing = tmp_path / "existing"
  existing.mkdir()
  with pytest.raises(RuntimeError):
    with cli.removing_output_dir_left_empty(str(existing)):
      raise RuntimeError("failed early")
  assert existing.is_dir()  # the user's folder stays
  used = tmp_path / "used"
  with pytest.raises(RuntimeError):
    with cli.removing_output_dir_left_empty(str(used)):
      used.mkdir()
      (used / "cache.tfrecord").write_text("x")
      raise RuntimeError("failed late")
  assert (used / "cache.tfrecord").exists()  # a folder holding a file is kept
  kept_only_bookkeeping = tmp_path / "bookkeeping"
  with pytest.raises(RuntimeError):
    with cli.removing_output_dir_left_empty(str(kept_only_bookkeeping / "out")):
      (kept_only_bookkeeping / "out" / "warmup").mkdir(parents=True)
      for name in ("run_settings.json", ".mobilebert-scanned-records.json"):
        (kept_only_bookkeeping / "out" / name).write_text("{}")
      (kept_only_bookkeeping / "out" / "warmup" / ".mobilebert-outputs.json").write_text("{}")
      raise RuntimeError("failed after the run recorded its settings and data")
  assert not kept_only_bookkeeping.exists()  # the run's records of itself go with its folder


# Every entry point, by module, and the tool name its errors carry.
ENTRY_POINTS = [
    ("pretrain.run_pretraining", "run_pretraining.py"),
    ("pretrain.create_pretraining_data", "create_pretraining_data"),
    ("pretrain.prepare_peoples_daily", "prepare_peoples_daily"),
    ("finetune.run_classifier", "run_classifier"), ("finetune.run_cmrc2018", "run_cmrc2018"),
    ("finetune.run_tagging", "run_tagging"), ("finetune.prepare_thucnews", "prepare_thucnews"),
    ("finetune.prepare_stsb_zh", "prepare_stsb_zh"),
    ("finetune.tagging.prepare_peoples_daily_ner", "prepare_peoples_daily_ner"),
    ("finetune.classification.predict", "classification.predict"),
    ("finetune.span.predict", "span.predict"), ("finetune.tagging.predict", "tagging.predict"),
    ("mobilebert.export", "export"), ("mobilebert.strip_checkpoint", "strip_checkpoint"),
    ("mobilebert.fill_mask", "fill_mask"), ("mobilebert.summary", "summary"),
]


@pytest.mark.parametrize("module,tool", ENTRY_POINTS)
def test_a_flag_that_does_not_parse_is_a_one_line_error(module, tool):
  """absl alone printed `FATAL Flags parsing error: ...` and exited 1."""
  result = _tool(["-m", module, "--no_such_flag=1"])
  assert_one_line_error(result, tool, "Unknown command line flag 'no_such_flag'", "--helpshort")
  assert "FATAL" not in result.stderr


def test_a_flag_value_of_the_wrong_type_names_the_flag():
  result = _tool(["-m", "finetune.run_classifier", "--max_seq_length=abc"])
  assert_one_line_error(result, "run_classifier", "--max_seq_length=abc",
                        "invalid literal for int()")
  result = _tool(["-m", "pretrain.run_pretraining", "--optimizer=sgd"])
  assert_one_line_error(result, "run_pretraining.py", "--optimizer=sgd", "<adamw|lamb>")


def test_help_still_prints_the_flags():
  result = _tool(["-m", "finetune.run_classifier", "--helpshort"])
  assert result.returncode == 1  # absl's own exit status after help, as before
  assert "--max_seq_length" in result.stdout and "error" not in result.stderr


# --- run_classifier --------------------------------------------------------------------------------

def _classifier_args(output, task="lcqmc", data_dir=CLASSIFIER_DATA / "lcqmc", *extra):
  return ["-m", "finetune.run_classifier", f"--task_name={task}", f"--data_dir={data_dir}", f"--vocab_file={assets.chinese_vocab_file()}",
          f"--bert_config_file={TINY}", f"--output_dir={output}", "--do_train", *extra]


def test_classifier_max_seq_length_too_small_for_a_pair(tmp_path):
  output = tmp_path / "a" / "model"
  result = _tool(_classifier_args(output, "lcqmc", CLASSIFIER_DATA / "lcqmc", "--max_seq_length=2"))
  assert_one_line_error(result, "run_classifier", "--max_seq_length=2", "at least 5",
                        "[CLS] a [SEP] b [SEP]")
  assert not (tmp_path / "a").exists()


def test_classifier_missing_data_dir_with_and_without_verbose(tmp_path):
  output = tmp_path / "model"
  args = _classifier_args(output, "lcqmc", CLASSIFIER_DATA / "missing")
  assert_one_line_error(_tool(args), "run_classifier", str(CLASSIFIER_DATA / "missing"), "train")
  assert not output.exists()
  verbose = _tool(args + ["--verbose"])
  assert verbose.returncode == 2 and "Traceback" in verbose.stderr
  assert verbose.stderr.strip().splitlines()[-1].startswith("run_classifier: error: task 'lcqmc'")
  assert not output.exists()


def test_classifier_missing_required_flag(tmp_path):
  args = [a for a in _classifier_args(tmp_path / "m") if not a.startswith("--task_name")]
  assert_one_line_error(_tool(args), "run_classifier", "--task_name is required")
  assert not (tmp_path / "m").exists()


def test_classifier_single_sentence_minimum_is_3(tmp_path):
  config = ClassifierRunConfig(
      task_name="chnsenticorp", data_dir=str(CLASSIFIER_DATA / "chnsenticorp"),
      vocab_file=assets.chinese_vocab_file(), bert_config_file=TINY, max_seq_length=2,
      run=RunSettings(output_dir=str(tmp_path / "m")), do_train=True)
  with pytest.raises(cli.FlagError, match=r"--max_seq_length=2 .* at least 3 \(\[CLS\] a \[SEP\] "):
    run_classifier(config)
  config.max_seq_length = 3
  config.num_train_steps = 1
  config.train_batch_size = 2
  assert run_classifier(config).num_train_steps == 1  # 3 is enough: trains


def test_classifier_bad_dev_file_stops_before_training(tmp_path):
  data = tmp_path / "data"
  data.mkdir()
  for split in ("train", "dev"):
    (data / f"{split}.tsv").write_text(
        (CLASSIFIER_DATA / "chnsenticorp" / "dev.tsv").read_text(encoding="utf-8"), encoding="utf-8")
  with open(data / "dev.tsv", "a", encoding="utf-8") as f:
    f.write("7\t标签不对\n")
  output = tmp_path / "m"
  result = _tool(_classifier_args(output, "chnsenticorp", data, "--do_eval", "--num_train_steps=1",
                                  "--max_seq_length=16"))
  assert_one_line_error(result, "run_classifier", str(data / "dev.tsv"))
  assert not list(output.glob("model.ckpt*"))  # refused before training


# --- every checkpoint written is scored --------------------------------------------------------------

def test_eval_history_scores_every_checkpoint_written_not_only_the_kept_ones(tmp_path):
  output = tmp_path / "m"
  config = ClassifierRunConfig(
      task_name="chnsenticorp", data_dir=str(CLASSIFIER_DATA / "chnsenticorp"),
      vocab_file=assets.chinese_vocab_file(), bert_config_file=TINY, max_seq_length=16,
      run=RunSettings(output_dir=str(output), save_checkpoints_steps=1, keep_checkpoint_max=2),
      do_train=True, do_eval=True, num_train_steps=4, train_batch_size=2, eval_batch_size=2,
      learning_rate=1e-3)
  report = run_classifier(config)
  kept = sorted(int(p.name.split("-")[1].split(".")[0]) for p in output.glob("model.ckpt-*.index"))
  assert kept == [3, 4]
  history = json.loads((output / "eval_history.json").read_text())
  steps = [entry["global_step"] for entry in history["checkpoints"]]
  assert steps == [0, 1, 2, 3, 4] == [entry["global_step"] for entry in report.eval_history]
  assert history["best"] == max(history["checkpoints"],
                                key=lambda e: (e["accuracy"], -e["global_step"]))
  assert history["best_kept"]["global_step"] in kept
  # --do_eval alone later re-scores what is on disk and keeps the entries of deleted checkpoints.
  config.do_train = False
  again = run_classifier(config)
  assert [entry["global_step"] for entry in again.eval_history] == steps
  assert [e["accuracy"] for e in again.eval_history] == [e["accuracy"] for e in report.eval_history]


# --- run_cmrc2018 ----------------------------------------------------------------------------------

def _squad(qas):
  return {"version": "v1", "data": [{"paragraphs": [{"context": "北京是中国的首都。", "qas": qas}]}]}


def _qa(qas_id, answers=True):
  qa = {"id": qas_id, "question": "中国的首都是哪里？"}
  if answers:
    qa["answers"] = [{"text": "北京", "answer_start": 0}]
  return qa


def _write(path, obj):
  path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
  return str(path)


def _squad_config(tmp_path, train, predict, **kwargs):
  return SpanRunConfig(vocab_file=assets.chinese_vocab_file(), bert_config_file=TINY,
                        run=RunSettings(output_dir=str(tmp_path / "out")), train_file=train,
                        predict_file=predict, do_train=True, do_predict=True, max_seq_length=32,
                        max_query_length=8, doc_stride=8, num_train_steps=1, train_batch_size=2,
                        **kwargs)


def test_cmrc_duplicate_id_in_the_predict_file_stops_before_training(tmp_path):
  train = _write(tmp_path / "train.json", _squad([_qa("T1")]))
  predict = _write(tmp_path / "dev.json", _squad([_qa("D1"), _qa("D1")]))
  output = tmp_path / "out"
  result = _tool(["-m", "finetune.run_cmrc2018", f"--vocab_file={assets.chinese_vocab_file()}",
                  f"--bert_config_file={TINY}", f"--output_dir={output}", "--do_train",
                  f"--train_file={train}", "--do_predict", f"--predict_file={predict}",
                  "--max_seq_length=32", "--max_query_length=8", "--doc_stride=8"])
  assert_one_line_error(result, "run_cmrc2018", predict, "qas[1]", "'D1'", "qas[0]", "unique")
  assert not output.exists()  # nothing trained, no empty folder


@pytest.mark.parametrize("train_qas, predict_qas, fragments", [
    ([_qa("T1"), {"question": "没有编号？", "answers": []}], [_qa("D1")],
     ["train.json", "qas[1]", "'id'"]),
    ([_qa("T1"), _qa("T2", answers=False)], [_qa("D1")],
     ["train.json", "qas[1]", "'T2'", "'answers'"]),
    ([_qa("T1")], [_qa("D1"), _qa("D2", answers=False)],
     ["dev.json", "qas[1]", "'D2'", "'answers'"]),
    ([_qa("T1")], [_qa("D1"), {"id": "D2", "question": "?", "answers": [{"start": 0}]}],
     ["dev.json", "qas[1]", "'D2'", "'text'"]),
])
def test_cmrc_bad_questions_stop_before_training(tmp_path, train_qas, predict_qas, fragments):
  train = _write(tmp_path / "train.json", _squad(train_qas))
  predict = _write(tmp_path / "dev.json", _squad(predict_qas))
  with pytest.raises(cli.DataError) as error:
    span_runner.run(_squad_config(tmp_path, train, predict))
  for fragment in fragments:
    assert fragment in str(error.value), (fragment, str(error.value))
  assert not list((tmp_path / "out").glob("model.ckpt*"))


def test_cmrc_max_seq_length_2_is_one_line(tmp_path):
  result = _tool(["-m", "finetune.run_cmrc2018", f"--vocab_file={assets.chinese_vocab_file()}",
                  f"--bert_config_file={TINY}", f"--output_dir={tmp_path / 'out'}", "--do_predict",
                  f"--predict_file={tmp_path / 'dev.json'}", "--max_seq_length=2"])
  assert_one_line_error(result, "run_cmrc2018", "--max_seq_length=2", "--max_query_length=64")
  assert not (tmp_path / "out").exists()


# --- cmrc2018_evaluate -----------------------------------------------------------------------------

@pytest.mark.parametrize("dataset, predictions, fragments", [
    (_squad([_qa("Q1"), _qa("Q2", answers=False)]), {"Q1": "北京"},
     ["dataset.json", "qas[1]", "'Q2'", "'answers'"]),
    (_squad([{"question": "?", "answers": []}]), {}, ["dataset.json", "qas[0]", "'id'"]),
    ({"data": [{"title": "no paragraphs"}]}, {}, ["dataset.json", "data[0]", "'paragraphs'"]),
    (_squad([_qa("Q1")]), ["北京"], ["predictions.json", "JSON object", "list"]),
    (_squad([_qa("Q1")]), {"Q1": {"text": "北京"}}, ["predictions.json", "'Q1'", "answer text"]),
])
def test_metric_names_the_file_question_and_field(tmp_path, dataset, predictions, fragments):
  data = _write(tmp_path / "dataset.json", dataset)
  preds = _write(tmp_path / "predictions.json", predictions)
  result = _tool([METRIC, data, preds, str(tmp_path / "scores.json")], timeout=60)
  assert_one_line_error(result, "cmrc2018_evaluate", *fragments)
  assert not (tmp_path / "scores.json").exists()
  verbose = _tool([METRIC, data, preds, "--verbose"], timeout=60)
  assert verbose.returncode == 2 and "Traceback" in verbose.stderr


def test_metric_unreadable_predictions(tmp_path):
  data = _write(tmp_path / "dataset.json", _squad([_qa("Q1")]))
  (tmp_path / "predictions.json").write_text("{not json", encoding="utf-8")
  result = _tool([METRIC, data, str(tmp_path / "predictions.json")], timeout=60)
  assert_one_line_error(result, "cmrc2018_evaluate", "predictions file",
                        str(tmp_path / "predictions.json"))


# --- the other entry points share the mechanism -----------------------------------------------------

def test_strip_checkpoint_missing_input_is_exit_2(tmp_path):
  result = _tool(["-m", "mobilebert.strip_checkpoint", f"--input_checkpoint={tmp_path / 'none'}",
                  f"--output_checkpoint={tmp_path / 'out' / 'x'}"])
  assert_one_line_error(result, "strip_checkpoint", str(tmp_path / "none"))
  assert not (tmp_path / "out").exists()


def test_fill_mask_and_export_report_user_errors_with_exit_2(tmp_path):
  missing = str(tmp_path / "missing.json")
  fill = _tool(["-m", "mobilebert.fill_mask", f"--bert_config_file={missing}", "--vocab_file=v",
                "--init_checkpoint=c", "--text=[MASK]", "--top_k=0"])
  assert_one_line_error(fill, "fill_mask", "--top_k must be at least 1")
  export = _tool(["-m", "mobilebert.export", "--format=saved_model", f"--bert_config_file={missing}",
                  "--init_checkpoint=c", f"--output={tmp_path / 'out'}"])
  assert_one_line_error(export, "export", missing)
  assert not (tmp_path / "out").exists()
