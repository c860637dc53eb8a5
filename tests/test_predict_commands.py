"""The raw-text predict commands on tiny fine-tuned output dirs: they agree with the runners' own
prediction files for the same checkpoint, read arguments and stdin, print text or JSON, and report a
missing or foreign model dir as one line."""

import io
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import CONFIG_DIR, ROOT
from finetune.classification.predict import ClassifierPredictor
from finetune.classification.runner import ClassifierRunConfig
from finetune.classification.runner import run as run_classifier
from finetune.core import model_dir, predict_cli
from finetune.span import runner as span_runner
from finetune.span.predict import SpanPredictor
from mobilebert import assets, cli
from mobilebert.run_config import RunSettings

TINY = str(CONFIG_DIR / "tiny_student_zh.json")
CLASSIFIER_DATA = ROOT / "tests" / "fixtures" / "classifier"
STSB = ROOT / "data" / "stsb_zh"


def _tool(module, *args, stdin=None):
  env = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
  return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                        cwd=ROOT, env=env, input=stdin, timeout=180)


def _classifier(task, data, output, **kwargs):
  config = ClassifierRunConfig(
      task_name=task, data_dir=str(data), vocab_file=assets.chinese_vocab_file(), bert_config_file=TINY,
      max_seq_length=24, train_batch_size=4, eval_batch_size=2, predict_batch_size=3,
      learning_rate=1e-3, num_train_steps=3, do_train=True, do_predict=True,
      run=RunSettings(output_dir=str(output), save_checkpoints_steps=3), **kwargs)
  run_classifier(config)
  return output


@pytest.fixture(scope="module")
def sentiment_dir(tmp_path_factory):
  return _classifier("chnsenticorp", CLASSIFIER_DATA / "chnsenticorp",
                     tmp_path_factory.mktemp("cls") / "m")


@pytest.fixture(scope="module")
def stsb_dir(tmp_path_factory):
  data = tmp_path_factory.mktemp("stsb")
  for split, rows in (("train", 12), ("test", 5)):
    lines = (STSB / f"{split}.tsv").read_text(encoding="utf-8").splitlines(keepends=True)[:rows]
    (data / f"{split}.tsv").write_text("".join(lines), encoding="utf-8")
  return data, _classifier("stsb_zh", data, tmp_path_factory.mktemp("reg") / "m")


def _rows(path):
  return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()[1:]]


def test_classifier_predictions_match_the_runner_on_the_test_split(sentiment_dir):
  texts = [line.split("\t")[1] for line in
           (CLASSIFIER_DATA / "chnsenticorp" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]]
  predictor = ClassifierPredictor(str(sentiment_dir))
  assert predictor.fields == ("text",) and predictor.checkpoint.endswith("model.ckpt-3")
  results = predictor.predict([(t,) for t in texts], batch_size=2)
  rows = _rows(sentiment_dir / "test_results.tsv")
  assert [r.label for r in results] == [row[1] for row in rows]
  for result, row in zip(results, rows):
    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose([result.probabilities["0"], result.probabilities["1"]],
                               [float(row[3]), float(row[4])], atol=2e-6)


def test_regression_predictions_match_the_runner_and_read_pairs_from_stdin(stsb_dir):
  data, output = stsb_dir
  pairs = [tuple(line.split("\t")[:2]) for line in
           (data / "test.tsv").read_text(encoding="utf-8").splitlines()]
  stdin = "".join(f"{a}\t{b}\n" for a, b in pairs)
  result = _tool("finetune.classification.predict", f"--output_dir={output}", "--json", stdin=stdin)
  assert result.returncode == 0, result.stderr[-3000:]
  printed = [json.loads(line) for line in result.stdout.splitlines()]
  assert [(p["text_a"], p["text_b"]) for p in printed] == pairs
  expected = [float(row[1]) for row in _rows(output / "test_results.tsv")]
  np.testing.assert_allclose([p["value"] for p in printed], expected, atol=2e-6)
  # Arguments two at a time, as text.
  text = _tool("finetune.classification.predict", f"--output_dir={output}", *pairs[0])
  assert text.returncode == 0, text.stderr[-3000:]
  assert text.stdout.splitlines() == [f"{pairs[0][0]} ||| {pairs[0][1]}", f"  -> {expected[0]:.4f}"]


def test_read_inputs_groups_arguments_and_splits_stdin_lines():
  assert predict_cli.read_inputs(["a", "b", "c", "d"], ("x", "y")) == [("a", "b"), ("c", "d")]
  assert predict_cli.read_inputs([], ("text",), io.StringIO("一\t二\n\n三\n")) == [("一\t二",), ("三",)]
  assert predict_cli.read_inputs(["-"], ("q", "c"), io.StringIO("问\t上下文\t有\t制表符\n")) == [
      ("问", "上下文\t有\t制表符")]
  with pytest.raises(cli.FlagError, match="multiple of 2"):
    predict_cli.read_inputs(["a", "b", "c"], ("x", "y"))
  with pytest.raises(cli.FlagError, match="stdin line 2: expected 2 tab-separated"):
    predict_cli.read_inputs([], ("x", "y"), io.StringIO("a\tb\nc\n"))
  with pytest.raises(cli.FlagError, match="no input"):
    predict_cli.read_inputs([], ("text",), io.StringIO("\n"))
  with pytest.raises(cli.FlagError, match="empty y"):
    predict_cli.read_inputs(["a", " "], ("x", "y"))


@pytest.fixture(scope="module")
def span_dir(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("span")
  squad = {"version": "v1", "data": [{"paragraphs": [
      {"context": "北京是中国的首都，上海是中国最大的城市。",
       "qas": [{"id": "q1", "question": "中国的首都是哪里？", "answers": [{"text": "北京", "answer_start": 0}]},
               {"id": "q2", "question": "中国最大的城市是哪里？",
                "answers": [{"text": "上海", "answer_start": 9}]}]}]}]}
  data = tmp / "squad.json"
  data.write_text(json.dumps(squad, ensure_ascii=False), encoding="utf-8")
  config = span_runner.SpanRunConfig(
      vocab_file=assets.chinese_vocab_file(), bert_config_file=TINY,
      run=RunSettings(output_dir=str(tmp / "out")), train_file=str(data), predict_file=str(data),
      do_train=True, do_predict=True, max_seq_length=24, max_query_length=12, doc_stride=6,
      num_train_steps=2, train_batch_size=2, predict_batch_size=2, n_best_size=5)
  span_runner.run(config)
  return tmp / "out", squad


def test_span_predictions_match_the_runner_and_point_into_the_context(span_dir):
  output, squad = span_dir
  paragraph = squad["data"][0]["paragraphs"][0]
  inputs = [(qa["question"], paragraph["context"]) for qa in paragraph["qas"]]
  answers = SpanPredictor(str(output)).predict(inputs, batch_size=3, nbest=5)
  runner_predictions = json.loads((output / "predictions.json").read_text(encoding="utf-8"))
  runner_nbest = json.loads((output / "nbest_predictions.json").read_text(encoding="utf-8"))
  for answer, qa in zip(answers, paragraph["qas"]):
    assert answer.answer == runner_predictions[qa["id"]]
    assert answer.context[answer.start:answer.end] == answer.answer
    assert [c["text"] for c in answer.nbest] == [c["text"] for c in runner_nbest[qa["id"]]][:5]
    assert answer.probability == pytest.approx(runner_nbest[qa["id"]][0]["probability"], abs=1e-5)


def test_span_command_prints_json_and_text(span_dir):
  output, _ = span_dir
  args = [f"--output_dir={output}", "中国的首都是哪里？", "北京是中国的首都。"]
  result = _tool("finetune.span.predict", *args, "--json", "--nbest=2")
  assert result.returncode == 0, result.stderr[-3000:]
  answer = json.loads(result.stdout)
  assert set(answer) == {"question", "context", "answer", "start", "end", "probability", "nbest"}
  assert len(answer["nbest"]) <= 2 and answer["context"][answer["start"]:answer["end"]] == answer["answer"]
  text = _tool("finetune.span.predict", *args)
  assert text.returncode == 0 and text.stdout.startswith("Q: 中国的首都是哪里？\n  -> ")


def test_predict_errors_are_one_line(span_dir, sentiment_dir, tmp_path):
  span_output, _ = span_dir
  cases = [
      (("finetune.classification.predict", f"--output_dir={tmp_path}", "好"),
       f"{tmp_path}/{model_dir.SETTINGS_FILE} not found"),
      (("finetune.classification.predict", f"--output_dir={span_output}", "好"),
       "is a span model; this command predicts with classification or regression models"),
      (("finetune.span.predict", f"--output_dir={sentiment_dir}", "问", "文"),
       "is a classification model; this command predicts with span models"),
      (("finetune.classification.predict", "好"), "--output_dir is required"),
  ]
  for args, fragment in cases:
    result = _tool(*args)
    assert result.returncode == cli.EXIT_USER_ERROR, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert fragment in result.stderr.strip().splitlines()[-1], result.stderr[-2000:]


def test_model_dir_settings_errors_name_the_file(tmp_path):
  (tmp_path / model_dir.SETTINGS_FILE).write_text("{not json", encoding="utf-8")
  with pytest.raises(cli.DataError, match="not a settings file of a fine-tuning run"):
    model_dir.read_model_dir(str(tmp_path))
  (tmp_path / model_dir.SETTINGS_FILE).write_text(json.dumps(
      {"kind": "regression", "settings": {}, "max_seq_length": 8, "do_lower_case": True,
       "bert_config_file": "bert_config.json", "vocab_file": "vocab.txt"}), encoding="utf-8")
  with pytest.raises(cli.DataError, match=r"bert_config\.json not found: .* names it as the model's config"):
    model_dir.read_model_dir(str(tmp_path))
