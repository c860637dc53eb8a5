"""Token tagging end to end: the People's Daily NER demo script for a few steps (train, score every
checkpoint, predict, int8 TFLite), the predict command against the run's predictions, a float TFLite
export scored like the checkpoint, a tagger that learns, and the runner's user errors."""

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from finetune.tagging import entities as entities_lib
from finetune.tagging import features as features_lib
from finetune.tagging import formats, tflite
from finetune.tagging.metric import EntityScorer
from finetune.tagging.predict import Tagger
from finetune.tagging.runner import TaggingRunConfig, run
from finetune.tagging.task import TaggingTask
from mobilebert import cli, resume_settings
from mobilebert.config import BertConfig
from mobilebert.export import tflite as tflite_export
from mobilebert.run_config import RunSettings
from mobilebert.tokenization import FullTokenizer

CORPUS = ROOT / "tests" / "fixtures" / "pretraining_data" / "199801_head.txt"
GOLDEN_TINY = ROOT / "tests" / "fixtures" / "reference" / "golden" / "tiny_student_f2.json"
SEQ = 32


def _env(**extra):
  return dict(os.environ, PYTHON=sys.executable, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2",
              **extra)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
  """The demo script on the shipped 300-line corpus excerpt: 4 steps, a checkpoint every 2."""
  base = tmp_path_factory.mktemp("ner")
  result = subprocess.run(
      ["bash", str(ROOT / "run_scripts" / "demo_peoples_daily_ner_cpu.sh"), "--num_train_steps=4",
       "--save_checkpoints_steps=2"],
      env=_env(CORPUS_FILE=str(CORPUS), DATA_DIR=str(base / "data"), MODEL_DIR=str(base / "model"),
               MAX_SEQ_LENGTH=str(SEQ)), cwd=ROOT, capture_output=True, text=True)
  assert result.returncode == 0, result.stderr[-3000:]
  return base / "data", base / "model", result


def _results(path):
  return dict(line.split(" = ", 1) for line in path.read_text().splitlines())


def test_demo_scores_every_checkpoint_and_writes_predictions(demo):
  data, model, result = demo
  history = json.loads((model / "eval_history.json").read_text())
  assert history["selected_by"] == "f1"
  assert [c["global_step"] for c in history["checkpoints"]] == [0, 2, 4]
  assert all({"f1", "precision", "recall", "PER_f1", "LOC_f1", "ORG_f1"} <= set(c)
             for c in history["checkpoints"])
  labels = json.loads((model / "label_list.json").read_text())
  assert labels["labels"] == entities_lib.tag_names(["PER", "LOC", "ORG"])
  # predictions.jsonl: one line per test sentence, entities as character spans of the original text.
  gold = formats.read_conll(str(data / "test.conll"))
  predicted = [json.loads(line) for line in (model / "predictions.jsonl").read_text().splitlines()]
  assert [p["text"] for p in predicted] == [s.text for s in gold]
  scorer = EntityScorer()
  for sentence, row in zip(gold, predicted):
    for entity in row["entities"]:
      assert row["text"][entity["start"]:entity["end"]] == entity["text"]
      assert 0 < entity["probability"] <= 1
    scorer.update(sentence.entities, [(e["start"], e["end"], e["label"]) for e in row["entities"]])
  test_results = _results(model / "test_results.txt")
  assert float(test_results["f1"]) == pytest.approx(scorer.results()["f1"])
  assert test_results["checkpoint"] == history["best_kept"]["checkpoint"]  # --predict_checkpoint=best
  lite = _results(model / "eval_results_tflite.txt")
  assert lite["lite_model_path"].endswith("model.int8.tflite") and "f1_change" in lite
  assert "== test_results.txt" in result.stdout


def test_predict_command_matches_the_runs_predictions(demo):
  data, model, _ = demo
  predicted = [json.loads(line) for line in (model / "predictions.jsonl").read_text().splitlines()]
  rows = sorted(predicted, key=lambda r: -len(r["text"]))[:3]  # the longest: cut into windows too
  assert len(rows[0]["text"]) > SEQ
  tagger = Tagger(str(model))
  for row, result in zip(rows, tagger.predict([r["text"] for r in rows])):
    assert [(e["start"], e["end"], e["label"]) for e in result["entities"]] == \
        [(e["start"], e["end"], e["label"]) for e in row["entities"]]
    for ours, theirs in zip(result["entities"], row["entities"]):
      assert ours["probability"] == pytest.approx(theirs["probability"], abs=1e-4)
  command = [sys.executable, "-m", "finetune.tagging.predict", f"--output_dir={model}", "--json"]
  by_argument = subprocess.run(command + [rows[0]["text"]], env=_env(), cwd=ROOT, capture_output=True,
                               text=True)
  by_stdin = subprocess.run(command, input=rows[0]["text"] + "\n\n", env=_env(), cwd=ROOT,
                            capture_output=True, text=True)
  for result in (by_argument, by_stdin):
    assert result.returncode == 0, result.stderr[-2000:]
    (line,) = result.stdout.strip().splitlines()
    assert json.loads(line)["entities"] == tagger.predict([rows[0]["text"]])[0]["entities"]
  missing = subprocess.run(command[:3] + [f"--output_dir={data}", "张三"], env=_env(), cwd=ROOT,
                           capture_output=True, text=True)
  assert missing.returncode == cli.EXIT_USER_ERROR and "Traceback" not in missing.stderr
  assert missing.stderr.strip().splitlines()[-1].startswith("tagging.predict: error: ")
  assert "finetune_settings.json not found" in missing.stderr


def test_float_tflite_export_scores_as_the_checkpoint(demo, tmp_path):
  data, model, _ = demo
  history = json.loads((model / "eval_history.json").read_text())
  entry = history["checkpoints"][-1]
  config = BertConfig.from_json_file(str(model / "bert_config.json"))  # the run's copy
  lite_path = str(tmp_path / "float.tflite")
  tflite_export.export_tflite(config, entry["checkpoint"], lite_path, "float32", seq_length=SEQ)
  labels = json.loads((model / "label_list.json").read_text())
  task = TaggingTask(str(data), "conll", labels["entity_types"])
  vocab = str(model / "vocab.txt")  # the run's copy
  split = features_lib.cached_features(task, "dev", FullTokenizer(vocab), vocab, True, SEQ,
                                        str(model))
  results = tflite.score(task, split, task.sentences("dev"), lite_path)
  for key in ("num_predicted_entities", "num_correct_entities", "num_gold_entities"):
    assert results[key] == entry[key], key
  assert results["f1"] == pytest.approx(entry["f1"])


def test_a_tflite_model_alone_is_scored_as_in_the_run_that_exported_it(demo, tmp_path):
  # --lite_model_path without --use_post_quantization scores that file and no checkpoint.
  data, model, _ = demo
  lite_path = str(model / "model.int8.tflite")
  run(TaggingRunConfig(data_dir=str(data), vocab_file=str(model / "vocab.txt"),
                       bert_config_file=str(model / "bert_config.json"),
                       run=RunSettings(output_dir=str(tmp_path / "out")), labels=("PER", "LOC", "ORG"),
                       max_seq_length=SEQ, eval_batch_size=16, do_eval=True,
                       lite_model_path=lite_path))
  alone = _results(tmp_path / "out" / "eval_results_tflite.txt")
  in_run = _results(model / "eval_results_tflite.txt")
  assert alone["lite_model_path"] == lite_path and "f1_change" not in alone
  assert not (tmp_path / "out" / "eval_history.json").exists()
  for key in ("f1", "num_predicted_entities", "num_correct_entities", "num_gold_entities"):
    assert alone[key] == in_run[key], key


def _write_vocab(path, texts):
  chars = sorted({c for t in texts for c in t})
  path.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars) + "\n",
                  encoding="utf-8")
  return 5 + len(chars)


def _config(tmp_path, data_dir, **changes):
  fields = dict(data_dir=str(data_dir), vocab_file=str(tmp_path / "vocab.txt"),
                bert_config_file=str(tmp_path / "bert.json"),
                run=RunSettings(output_dir=str(tmp_path / "out"), save_checkpoints_steps=1000),
                max_seq_length=SEQ, train_batch_size=8, eval_batch_size=8, do_train=True,
                do_eval=True)
  fields.update(changes)
  return TaggingRunConfig(**fields)


@pytest.fixture
def small_task(tmp_path):
  """16 sentences of the corpus as train and dev, a vocab of their characters, the tiny config."""
  sentences = [s for s in formats.read_conll(str(_prepared(tmp_path))) if s.entities][:16]
  data = tmp_path / "small"
  data.mkdir()
  for split in ("train", "dev"):
    formats.write_conll(str(data / f"{split}.conll"), sentences)
  size = _write_vocab(tmp_path / "vocab.txt", [s.text for s in sentences])
  config = json.loads(GOLDEN_TINY.read_text())
  config.update(vocab_size=size, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
  (tmp_path / "bert.json").write_text(json.dumps(config))
  return data


def _prepared(tmp_path):
  from finetune.tagging import prepare_peoples_daily_ner as prepare
  prepare.prepare(prepare.PrepareSettings(str(tmp_path / "prepared"), input_file=str(CORPUS)))
  return tmp_path / "prepared" / "train.conll"


def test_the_tagger_learns_its_training_sentences(tmp_path, small_task):
  report = run(_config(tmp_path, small_task, num_train_steps=150, learning_rate=3e-3,
                       warmup_proportion=0.0))
  final = report.eval_history[-1]
  assert report.eval_history[0]["f1"] < 0.2 and final["global_step"] == 150
  assert final["f1"] > 0.8, final


def test_a_rerun_with_another_training_data_stops_before_writing(tmp_path, small_task):
  """The tagger's half of test_resume_settings.py: the feature cache's key stands for the data, and
  the new data's cache is not written into --output_dir (the cache's default place) before the stop."""
  run(_config(tmp_path, small_task, num_train_steps=2, do_eval=False))
  lines = (small_task / "train.conll").read_text(encoding="utf-8").splitlines(keepends=True)
  (small_task / "train.conll").write_text("".join(lines[:-40]), encoding="utf-8")  # a shorter file
  def run_files():
    return {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir() if p.is_file()}

  before = run_files()
  with pytest.raises(resume_settings.ChangedSettingsError,
                     match=r"run_settings.json: .*the training data \(its feature cache key\)"):
    run(_config(tmp_path, small_task, num_train_steps=2, do_eval=False))
  assert run_files() == before


def test_runner_user_errors(tmp_path, small_task):
  (small_task / "dev.conll").write_text("张 B-PER\n三 I-PER\n\n李 B-XYZ\n", encoding="utf-8")
  with pytest.raises(formats.TaggingFileError, match=r"dev.conll: sentence line 4 has entity type\(s\) "
                     r"\['XYZ'\]; the model's types are \['LOC', 'ORG', 'PER'\]"):
    run(_config(tmp_path, small_task, labels=("LOC", "ORG", "PER")))
  with pytest.raises(cli.FlagError, match="nothing to do"):
    run(_config(tmp_path, small_task, do_train=False, do_eval=False))
  with pytest.raises(cli.FlagError, match="--max_seq_length=2: needs at least 3"):
    run(_config(tmp_path, small_task, max_seq_length=2))
  with pytest.raises(formats.TaggingFileError, match=r"no test file: .*test.jsonl not found"):
    run(_config(tmp_path, small_task, data_format="jsonl", labels=("PER",), do_train=False,
                do_eval=False, do_predict=True))
  (tmp_path / "out").mkdir(exist_ok=True)
  (tmp_path / "out" / "label_list.json").write_text(json.dumps({"entity_types": ["PER"]}))
  with pytest.raises(cli.FlagError, match="trained with entity types \\['PER'\\]; --labels=LOC differs"):
    run(_config(tmp_path, small_task, labels=("LOC",)))


def test_run_tagging_reports_a_bad_file_in_one_line(tmp_path):
  data = tmp_path / "data"
  data.mkdir()
  rows = [{"text": "张三在北京", "entities": [{"start": 0, "end": 2, "label": "PER"}]},
          {"text": "李四", "entities": [{"start": 0, "end": 9, "label": "PER"}]}]
  (data / "train.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                    encoding="utf-8")
  _write_vocab(tmp_path / "vocab.txt", ["张三在北京李四"])
  result = subprocess.run(
      [sys.executable, "-m", "finetune.run_tagging", f"--data_dir={data}", "--data_format=jsonl",
       f"--vocab_file={tmp_path / 'vocab.txt'}", f"--bert_config_file={GOLDEN_TINY}",
       f"--output_dir={tmp_path / 'out'}", "--do_train", f"--max_seq_length={SEQ}"],
      env=_env(), cwd=ROOT, capture_output=True, text=True)
  assert result.returncode == cli.EXIT_USER_ERROR and "Traceback" not in result.stderr
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith(f"run_tagging: error: {data / 'train.jsonl'}:2: entity ")
  assert "out of range" in last
  assert not (tmp_path / "out").exists()  # no empty output dir left behind


@pytest.mark.parametrize("float_softmax", [False, True])
def test_quantized_training_exports_an_int8_tagger(tmp_path, small_task, float_softmax):
  """--use_quantized_training for the tagger, then --use_post_quantization --activation_quantization
  [--float_softmax]: the fake-quant checkpoint becomes an int8 TFLite model scored beside it. Before
  the tag head's reshape lost its batch dimension, both exports kept a float32 SHAPE op: the
  "integer-only" model was not, and the float-softmax one was refused. (At learning rate 3e-3 this tiny tagger's logits reached +-1900, where int8 steps of
  15 flip tags: the export's verification refused it, 0.97 off on tag_probabilities.)"""
  from mobilebert.export import tflite_ops  # pylint: disable=g-import-not-at-top
  report = run(_config(tmp_path, small_task, num_train_steps=40, learning_rate=1e-3,
                       warmup_proportion=0.0, use_quantized_training=True,
                       use_post_quantization=True, activation_quantization=True,
                       float_softmax=float_softmax))
  assert report.eval_history[-1]["global_step"] == 40
  lite = _results(tmp_path / "out" / "eval_results_tflite.txt")
  assert lite["lite_model_path"].endswith("model.int8.tflite")
  ops = tflite_ops.file_op_report(lite["lite_model_path"])
  compute = [r for r in ops.rows if r.op in ("FULLY_CONNECTED", "BATCH_MATMUL")]
  assert compute and all("float32" not in r.operand_types for r in compute), compute
  float_ops = {r.op for r in ops.rows if "float32" in r.operand_types}
  if float_softmax:
    assert "SOFTMAX" in float_ops and float_ops <= tflite_export.FLOAT_SOFTMAX_OPS, float_ops
  else:
    assert float_ops <= {"QUANTIZE", "DEQUANTIZE"}, float_ops
  # Measured: f1 1.0 for the checkpoint and both int8 models on these 16 sentences.
  assert abs(float(lite["f1_change"])) <= 0.1, lite
