# coding=utf-8
"""End to end: the shell scripts train/predict/evaluate on slices of the real data, and a learning check.

The learning check fine-tunes config/tiny_student_zh.json (hidden 64, 2 layers, the real 21,128-entry
vocab) from a freshly initialized checkpoint. From scratch, such a model barely generalizes to held-out
CMRC questions within a CPU budget (measured on the trial set's held-out paragraphs after 400 steps:
F1 8.9 vs 5.0 for an untrained head with whole paragraphs, 25 vs 22 with 100-character pieces), so the
check is made on the training questions: F1 there must rise far above the untrained head's (measured
85 vs 15). That fails if positions, windows,
the head or the answer read-back disagree, which is what a wiring test needs to catch.
"""

import json
import os
import random
import shutil
import subprocess
import sys

import pytest
import tensorflow.compat.v1 as tf

from finetune import squad_split
from finetune.span import data as span_data
from finetune.span.runner import SpanRunConfig, run
from mobilebert import assets, cli, modeling
from mobilebert.export import tflite_ops
from mobilebert.config import BertConfig
from mobilebert.run_config import RunSettings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRIAL = os.path.join(ROOT, "data", "cmrc2018", "cmrc2018_trial.json")
DRCD = os.path.join(ROOT, "data", "drcd", "DRCD_dev.json")
TINY_CONFIG = os.path.join(ROOT, "config", "tiny_student_zh.json")


def _slice(path, num_paragraphs, output):
  """The first paragraphs of a SQuAD-style file, written to `output`."""
  dataset = span_data.read_squad_json(path)
  data, count = [], 0
  for article in dataset["data"]:
    paragraphs = article["paragraphs"][:num_paragraphs - count]
    if paragraphs:
      data.append(dict(article, paragraphs=paragraphs))
      count += len(paragraphs)
  with open(output, "w", encoding="utf-8") as f:
    json.dump({"version": dataset.get("version"), "data": data}, f, ensure_ascii=False)
  return output


@pytest.fixture(scope="module")
def init_path(tmp_path_factory):
  """A directory laid out like a released model: vocab.txt and a freshly initialized tiny
  mobilebert.ckpt (bert/* only)."""
  path = tmp_path_factory.mktemp("tiny_init")
  shutil.copy(assets.chinese_vocab_file(), path / "vocab.txt")
  with tf.Graph().as_default():
    tf.set_random_seed(20181)
    ids = tf.zeros([1, 8], tf.int32)
    modeling.BertModel(BertConfig.from_json_file(TINY_CONFIG), is_training=False, input_ids=ids)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      tf.train.Saver(tf.global_variables()).save(sess, str(path / "mobilebert.ckpt"),
                                                write_meta_graph=False)
  return path


def _script(name, env, *args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHON=sys.executable, **env)
  done = subprocess.run(["bash", os.path.join(ROOT, "run_scripts", name)] + list(args),
                        capture_output=True, text=True, env=env, timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]
  return done


def _check_outputs(model_dir, dataset_file):
  dataset = span_data.read_squad_json(dataset_file)
  contexts = {qa["id"]: p["context"] for a in dataset["data"] for p in a["paragraphs"]
              for qa in p["qas"]}
  predictions = json.load(open(os.path.join(model_dir, "predictions.json"), encoding="utf-8"))
  nbest = json.load(open(os.path.join(model_dir, "nbest_predictions.json"), encoding="utf-8"))
  assert set(predictions) == set(contexts) == set(nbest)
  for qas_id, text in predictions.items():
    assert text in contexts[qas_id]  # in the file's own script, spacing kept
    if nbest[qas_id]:
      assert nbest[qas_id][0]["text"] == text
      assert abs(sum(c["probability"] for c in nbest[qas_id]) - 1.0) < 1e-6
  scores = json.load(open(os.path.join(model_dir, "eval_results.json")))
  assert list(scores) == ["AVERAGE", "F1", "EM", "TOTAL", "SKIP"]
  assert scores["TOTAL"] == len(contexts) and scores["SKIP"] == 0
  return predictions, scores


def test_tiny_cpu_script_trains_predicts_and_scores(tmp_path):
  data = _slice(TRIAL, 12, str(tmp_path / "trial12.json"))
  out = tmp_path / "run"
  # 30%: 2 of these 12 paragraphs (9 questions) are held out.
  done = _script("tiny_cmrc2018_cpu.sh", {"DATA_FILE": data, "OUTPUT_DIR": str(out),
                                          "HELD_OUT_PERCENT": "30", "NUM_TRAIN_STEPS": "2",
                                          "MAX_SEQ_LENGTH": "128", "TRAIN_BATCH_SIZE": "4"})
  # The split is the library's, by paragraph; the metric's own printout closes the run.
  _, held_out = squad_split.split_by_paragraph(span_data.read_squad_json(data), 30)
  assert json.load(open(out / "data" / "held_out.json", encoding="utf-8"))["data"] == held_out["data"]
  _, scores = _check_outputs(str(out / "model"), str(out / "data" / "held_out.json"))
  assert json.loads(done.stdout.strip().splitlines()[-1]) == scores
  assert json.load(open(out / "model" / "eval_official.json")) == scores
  assert tf.train.latest_checkpoint(str(out / "model")).endswith("model.ckpt-2")


def test_quantized_training_trains_and_predicts_through_fake_quant_nodes(tmp_path):
  """The release's run_squad.py device flags: --use_quantized_training, then --export_dir with
  --use_post_quantization --activation_quantization write the float and integer-only TFLite models
  (and a SavedModel), and the int8 model predicts the held-out questions beside the checkpoint."""
  data = _slice(TRIAL, 4, str(tmp_path / "trial4.json"))
  out = tmp_path / "run"
  export_dir = tmp_path / "export"
  done = _script("tiny_cmrc2018_cpu.sh", {"DATA_FILE": data, "OUTPUT_DIR": str(out),
                                          "HELD_OUT_PERCENT": "50", "NUM_TRAIN_STEPS": "2",
                                          "MAX_SEQ_LENGTH": "128", "TRAIN_BATCH_SIZE": "4"},
                 "--use_quantized_training=True", f"--export_dir={export_dir}",
                 "--use_post_quantization=True", "--activation_quantization=True")
  checkpoint = tf.train.latest_checkpoint(str(out / "model"))
  values = {n: tf.train.load_variable(checkpoint, n) for n, _ in tf.train.list_variables(checkpoint)
            if "_quant/" in n}
  prefix = "bert/encoder/layer_0/intermediate/dense/"
  assert values[prefix + "act_quant/initialized"] == 1.0  # ranges were learned in training ...
  kernel = tf.train.load_variable(checkpoint, prefix + "kernel")
  assert values[prefix + "weights_quant/max"] == pytest.approx(abs(kernel).max(), abs=1e-2)
  # ... and prediction (a graph that must fit that checkpoint) ran through them.
  held_out = str(out / "data" / "held_out.json")
  predictions, scores = _check_outputs(str(out / "model"), held_out)
  # The exports, each verified against the checkpoint's graph on its start and end logits.
  assert "wrote full_int8" in done.stderr
  assert (export_dir / "saved_model" / "saved_model.pb").exists()
  for name, variant in (("model_float.tflite", "float32"), ("model_quant.tflite", "full_int8")):
    info = json.load(open(export_dir / (name + ".json")))
    assert info["variant"] == variant and info["source_checkpoint"] == checkpoint
    assert {"start_logits", "end_logits"} <= {c["output"] for c in info["verification"]}
  report = tflite_ops.file_op_report(str(export_dir / "model_quant.tflite"))
  compute = [r for r in report.rows if r.op in ("FULLY_CONNECTED", "BATCH_MATMUL", "ADD", "MUL")]
  assert compute and all("float32" not in r.operand_types for r in compute), compute
  lite = json.load(open(out / "model" / "eval_results_tflite.json"))
  assert lite["lite_model_path"] == str(export_dir / "model_quant.tflite")
  assert {k: lite[f"float_{k}"] for k in scores} == scores
  assert lite["F1_change"] == pytest.approx(float(lite["F1"]) - float(scores["F1"]), abs=1e-3)
  lite_predictions = json.load(open(out / "model" / "predictions_tflite.json", encoding="utf-8"))
  assert set(lite_predictions) == set(predictions)
  # The float32 model alone (--lite_model_path, no checkpoint) answers as the checkpoint did.
  alone = tmp_path / "lite_only"
  result = subprocess.run(
      [sys.executable, "-m", "finetune.run_cmrc2018", f"--vocab_file={assets.chinese_vocab_file()}",
       f"--bert_config_file={TINY_CONFIG}", "--do_predict", f"--predict_file={held_out}",
       "--max_seq_length=128", f"--output_dir={alone}",
       f"--lite_model_path={export_dir / 'model_float.tflite'}"],
      capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  assert json.load(open(alone / "predictions_tflite.json", encoding="utf-8")) == predictions
  assert not (alone / "predictions.json").exists()
  lite_alone = json.load(open(alone / "eval_results_tflite.json"))
  assert {k: lite_alone[k] for k in scores} == scores and "F1_change" not in lite_alone


PREDICT = dict(do_predict=True, predict_file="p.json")


@pytest.mark.parametrize("changes,message", [
    (dict(do_train=True, train_file="t.json", lite_model_path="m.tflite"),
     "--lite_model_path predicts --predict_file with a TFLite model: add --do_predict"),
    (dict(do_train=True, train_file="t.json", use_post_quantization=True),
     "--use_post_quantization exports the predicted checkpoint to int8 TFLite and predicts with it: "
     "add --do_predict and/or --export_dir"),
    (dict(PREDICT, activation_quantization=True), "--activation_quantization selects the numerics"),
    (dict(PREDICT, use_post_quantization=True, activation_quantization=True),
     "--activation_quantization calibrates on the first 100 features of --train_file: give it"),
    (dict(export_dir="e", use_post_quantization=True, float_softmax=True),
     "--float_softmax keeps the softmax"),
    (dict(), "nothing to do: pass --do_train, --do_predict, --do_eval and/or --export_dir"),
])
def test_tflite_flags_say_what_they_need(tmp_path, changes, message):
  base = dict(vocab_file="v", bert_config_file="c", run=RunSettings(output_dir=str(tmp_path)))
  with pytest.raises(cli.FlagError, match="^" + message):
    SpanRunConfig(**base, **changes).validate()
  SpanRunConfig(**base, export_dir="e").validate()  # exports an existing run's checkpoint


@pytest.mark.parametrize("script,source,train_name,dev_name", [
    ("run_cmrc2018.sh", TRIAL, "cmrc2018_train.json", "cmrc2018_dev.json"),
    ("run_drcd.sh", DRCD, "DRCD_training.json", "DRCD_dev.json"),
])
def test_release_scripts_run(tmp_path, init_path, script, source, train_name, dev_name):
  data_path = tmp_path / "data"
  data_path.mkdir()
  _slice(source, 4, str(data_path / train_name))
  _slice(source, 4, str(data_path / dev_name))
  model_path = tmp_path / "model"
  done = _script(script, {"INIT_PATH": str(init_path), "BERT_CONFIG": TINY_CONFIG,
                          "DATA_PATH": str(data_path), "MODEL_PATH": str(model_path),
                          "USE_TPU": "False"},
                 # The release's command line, shrunk to CPU size by later flags.
                 "--max_seq_length=128", "--max_query_length=32", "--num_train_steps=2",
                 "--train_batch_size=4", "--predict_batch_size=16")
  # The release-like checkpoint was loaded: every bert/* variable; the span head is new.
  assert "mobilebert.ckpt: loaded" in done.stderr and "0 skipped (shape mismatch)" in done.stderr
  assert "left at initializer (not in checkpoint): cls/squad/output_weights" in done.stderr
  predictions, _ = _check_outputs(str(model_path), str(data_path / dev_name))
  if script == "run_drcd.sh":
    # Converted for the model, reported in traditional characters.
    converted = span_data.SimplifiedConverter()
    assert any(converted(text) != text for text in predictions.values())


def _cropped_questions(path, count, width, seed):
  """`count` questions, each on a `width`-character piece of its paragraph that holds the answer at a
  random offset (so a position prior alone does not answer them)."""
  rng = random.Random(seed)
  examples, _ = span_data.read_examples(path)
  paragraphs = []
  for example in examples[:count]:
    answer = example.answers[0]
    left = rng.randint(0, max(0, width - len(answer.text)))
    start = max(0, answer.start - left)
    paragraphs.append({"id": example.qas_id, "context": example.context[start:start + width],
                       "qas": [{"id": example.qas_id, "question": example.question, "answers": [
                           {"text": answer.text, "answer_start": answer.start - start}]}]})
  return {"version": "cropped", "data": [{"paragraphs": paragraphs}]}


def test_fine_tuning_learns_the_training_questions(tmp_path, init_path):
  train, _ = squad_split.split_by_paragraph(span_data.read_squad_json(TRIAL), 20)
  train_file = str(tmp_path / "train.json")
  squad_split.write_json(train_file, train)
  data = str(tmp_path / "questions.json")
  squad_split.write_json(data, _cropped_questions(train_file, 40, 100, seed=5))

  def fine_tune(name, steps, learning_rate):
    config = SpanRunConfig(
        vocab_file=str(init_path / "vocab.txt"), bert_config_file=TINY_CONFIG,
        run=RunSettings(output_dir=str(tmp_path / name), save_checkpoints_steps=100000),
        init_checkpoint=str(init_path / "mobilebert.ckpt"), train_file=data, predict_file=data,
        do_train=True, do_predict=True, max_seq_length=128, doc_stride=64, max_query_length=32,
        train_batch_size=8, predict_batch_size=64, num_train_steps=steps,
        learning_rate=learning_rate, tfrecord_dir=str(tmp_path / "cache"))
    return {k: float(v) for k, v in run(config).scores.items()}

  # Same encoder, same head initialization; a learning rate of 0 leaves both as initialized.
  untrained = fine_tune("untrained", 1, 0.0)
  trained = fine_tune("trained", 100, 3e-3)
  print("learning check on the training questions: untrained", untrained, "trained", trained)
  assert untrained["TOTAL"] == trained["TOTAL"] == 40
  assert trained["F1"] > untrained["F1"] + 30, (untrained, trained)
  assert trained["EM"] >= 40, (untrained, trained)


def test_do_eval_scores_every_checkpoint_and_best_predicts_with_the_best_kept(tmp_path, init_path):
  """--do_eval scores each checkpoint on --predict_file as it is written, those --keep_checkpoint_max
  deletes included, into eval_history.json; --predict_checkpoint=best predicts with the best one still
  on disk, and its predictions score what its history entry says."""
  data = str(tmp_path / "questions.json")
  squad_split.write_json(data, _cropped_questions(TRIAL, 24, 100, seed=5))
  config = SpanRunConfig(
      vocab_file=str(init_path / "vocab.txt"), bert_config_file=TINY_CONFIG,
      run=RunSettings(output_dir=str(tmp_path / "out"), save_checkpoints_steps=10,
                      keep_checkpoint_max=2),
      init_checkpoint=str(init_path / "mobilebert.ckpt"), train_file=data, predict_file=data,
      do_train=True, do_eval=True, do_predict=True, predict_checkpoint="best", max_seq_length=128,
      doc_stride=64, max_query_length=32, train_batch_size=8, predict_batch_size=64,
      num_train_steps=40, learning_rate=3e-3, tfrecord_dir=str(tmp_path / "cache"))
  report = run(config)
  with open(tmp_path / "out" / "eval_history.json", encoding="utf-8") as f:
    history = json.load(f)
  steps = [entry["global_step"] for entry in history["checkpoints"]]
  assert steps == [0, 10, 20, 30, 40] and len(glob_checkpoints(tmp_path / "out")) == 2
  assert history["selected_by"] == "f1"
  best = max(history["checkpoints"], key=lambda e: (e["f1"], -e["global_step"]))
  assert history["best"] == best == report.best and len(report.eval_history) == len(steps)
  kept = history["best_kept"] or best
  assert float(report.scores["F1"]) == pytest.approx(kept["f1"], abs=5e-4)
  assert float(report.scores["EM"]) == pytest.approx(kept["em"], abs=5e-4)
  assert best["f1"] > history["checkpoints"][0]["f1"]  # it learns the questions it predicts


def glob_checkpoints(directory):
  """The checkpoints on disk in `directory`, by name."""
  return sorted(p.name for p in directory.glob("model.ckpt-*.index"))


@pytest.mark.parametrize("changes,message", [
    ({"predict_file": None}, "--do_eval needs --predict_file"),
])
def test_do_eval_flags_say_what_they_need(tmp_path, changes, message):
  config = dict(vocab_file="v", bert_config_file=TINY_CONFIG, run=RunSettings(output_dir=str(tmp_path)),
                do_eval=True, predict_file="p.json")
  with pytest.raises(cli.FlagError, match=message):
    SpanRunConfig(**dict(config, **changes)).validate()


def test_do_eval_needs_answers_in_the_predict_file(tmp_path, init_path):
  data = _cropped_questions(TRIAL, 2, 60, seed=1)
  for paragraph in data["data"][0]["paragraphs"]:
    for question in paragraph["qas"]:
      del question["answers"]
  squad_split.write_json(str(tmp_path / "questions.json"), data)
  config = SpanRunConfig(
      vocab_file=str(init_path / "vocab.txt"), bert_config_file=TINY_CONFIG,
      run=RunSettings(output_dir=str(tmp_path / "out")), predict_file=str(tmp_path / "questions.json"),
      do_eval=True, max_seq_length=64, doc_stride=32, max_query_length=16)
  with pytest.raises(cli.DataError, match="--do_eval scores checkpoints against the answers of "
                                          "--predict_file=.*questions.json, which has none"):
    run(config)


def test_a_rerun_with_other_windows_or_batch_stops_naming_them(tmp_path, init_path):
  """The span half of test_resume_settings.py: --doc_stride changes the features (the training cache's
  key), --train_batch_size the run; both are named, before the new features are written, and the
  checkpoints are left as they were."""
  data = str(tmp_path / "questions.json")
  squad_split.write_json(data, _cropped_questions(TRIAL, 6, 60, seed=3))

  def config(**changes):
    fields = dict(
        vocab_file=str(init_path / "vocab.txt"), bert_config_file=TINY_CONFIG,
        run=RunSettings(output_dir=str(tmp_path / "out"), save_checkpoints_steps=2),
        init_checkpoint=str(init_path / "mobilebert.ckpt"), train_file=data, do_train=True,
        max_seq_length=64, doc_stride=32, max_query_length=16, train_batch_size=4,
        num_train_steps=2, learning_rate=1e-3, tfrecord_dir=str(tmp_path / "cache"))
    return SpanRunConfig(**dict(fields, **changes))

  run(config())
  before = glob_checkpoints(tmp_path / "out")
  caches = sorted(os.listdir(tmp_path / "cache"))
  with pytest.raises(cli.UserError, match=r"--train_batch_size 4 -> 2; the training data \(its "
                                          r"feature cache key\) \"[0-9a-f]{16}\" -> \"[0-9a-f]{16}\"\. "):
    run(config(doc_stride=16, train_batch_size=2))
  assert glob_checkpoints(tmp_path / "out") == before
  assert sorted(os.listdir(tmp_path / "cache")) == caches  # the other windows were not featurized


def test_same_seed_gives_the_same_weights_and_a_resumed_run_ends_the_same(tmp_path, init_path):
  """Two runs of 4 steps (batch 4 over 6 features: the input wraps into a reshuffled second epoch) end
  with every variable equal bit for bit; so does a third that resumes from the first's step-2
  checkpoint (its input skips the 8 examples already trained on; its dropout masks follow the step)."""
  data = str(tmp_path / "questions.json")
  squad_split.write_json(data, _cropped_questions(TRIAL, 6, 60, seed=3))

  def fine_tune(name):
    config = SpanRunConfig(
        vocab_file=str(init_path / "vocab.txt"), bert_config_file=TINY_CONFIG,
        run=RunSettings(output_dir=str(tmp_path / name), save_checkpoints_steps=2),
        init_checkpoint=str(init_path / "mobilebert.ckpt"), train_file=data, do_train=True,
        max_seq_length=64, doc_stride=32, max_query_length=16, train_batch_size=4,
        num_train_steps=4, learning_rate=1e-3, tfrecord_dir=str(tmp_path / "cache"))
    assert run(config).num_train_steps == 4
    path = os.path.join(tmp_path, name, "model.ckpt-4")
    return {n: tf.train.load_variable(path, n) for n, _ in tf.train.list_variables(path)}

  first = fine_tune("first")
  resumed = tmp_path / "resumed"
  resumed.mkdir()
  for path in (tmp_path / "first").glob("model.ckpt-2.*"):
    shutil.copy(path, resumed)
  (resumed / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-2"\n')
  for other in (fine_tune("second"), fine_tune("resumed")):
    assert sorted(other) == sorted(first)
    assert not [n for n in first if not (first[n] == other[n]).all()]


def test_a_tflite_model_without_span_logits_is_refused_in_one_line(tmp_path):
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  import export_helpers  # pylint: disable=g-import-not-at-top
  from mobilebert.export import tflite  # pylint: disable=g-import-not-at-top
  config, _, checkpoint, _ = export_helpers.golden("tiny_student_f2")  # no span head
  lite_path = str(tmp_path / "encoder.tflite")
  tflite.export_tflite(config, checkpoint, lite_path, "float32", seq_length=64)
  data = _slice(TRIAL, 1, str(tmp_path / "trial1.json"))
  result = subprocess.run(
      [sys.executable, "-m", "finetune.run_cmrc2018", f"--vocab_file={assets.chinese_vocab_file()}",
       f"--bert_config_file={TINY_CONFIG}", "--do_predict", f"--predict_file={data}",
       "--max_seq_length=64", "--max_query_length=16", f"--output_dir={tmp_path / 'out'}",
       f"--lite_model_path={lite_path}"],
      capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), timeout=600)
  assert result.returncode == cli.EXIT_USER_ERROR and "Traceback" not in result.stderr
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("run_cmrc2018: error: --lite_model_path ") and \
      "no ['start_logits', 'end_logits'] output" in last and "fine-tuned by run_cmrc2018" in last
