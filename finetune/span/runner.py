# coding=utf-8
"""Fine-tuning runs for span extraction (CMRC 2018, DRCD): train, predict, score with the official metric.

`run(SpanRunConfig)` is what run_cmrc2018.py calls after parsing flags. The model predicts start/end
logits per window; the host picks n-best answers (span_postprocess), writes predictions.json and
nbest_predictions.json, and, when the predict file has answers, scores them with cmrc2018_evaluate and
writes eval_results.json in the official script's format. The release's TFLite flags (--export_dir,
--use_post_quantization, --activation_quantization, --lite_model_path) are span/tflite.py's.
"""

import dataclasses
import json
import os
from typing import NamedTuple, Optional

from absl import logging

from finetune import cmrc2018_evaluate
from finetune.core import checkpoint_scoring, model_dir, runner as runner_lib
from finetune.core.model import model_fn_builder
from finetune.core.run_config import TFLiteRunConfig
from finetune.span import data as span_data
from finetune.span import features as span_features
from finetune.span import head as head_lib
from finetune.span import postprocess as span_postprocess
from finetune.span import records as span_records
from finetune.span import tflite as span_tflite
from mobilebert import atomic_io, cli
from mobilebert.run_config import Runner

EVAL_RESULTS = "eval_results.json"
BEST_METRIC = "f1"  # of the CMRC 2018 metric, on predict_file (--do_eval)


@dataclasses.dataclass(kw_only=True)
class SpanRunConfig(TFLiteRunConfig):
  """Everything one run needs (each field is the run_cmrc2018 flag of the same name)."""
  train_file: Optional[str] = None
  predict_file: Optional[str] = None
  max_seq_length: int = 384  # the release's run_squad.py default (run_scripts/ pass 512)
  doc_stride: int = 128
  max_query_length: int = 64
  convert_traditional: bool = False
  learning_rate: float = 3e-5
  num_train_epochs: float = 2.0
  n_best_size: int = 20
  max_answer_length: int = 30
  export_dir: Optional[str] = None  # SavedModel, model_float.tflite (+ model_quant.tflite) written here
  do_eval: bool = False  # score every checkpoint on predict_file (it needs answers): eval_history.json

  def validate(self):
    if not (self.do_train or self.do_predict or self.do_eval or self.export_dir):
      raise cli.FlagError("nothing to do: pass --do_train, --do_predict, --do_eval and/or --export_dir")
    if self.do_train and not self.train_file:
      raise cli.FlagError("--do_train needs --train_file")
    for flag in ("do_predict", "do_eval"):
      if getattr(self, flag) and not self.predict_file:
        raise cli.FlagError(f"--{flag} needs --predict_file")
    self.check_required("vocab_file", "bert_config_file")
    self.check_positive("train_batch_size", "predict_batch_size", "max_seq_length", "doc_stride",
                        "max_query_length", "n_best_size", "max_answer_length")
    if self.max_seq_length - self.max_query_length - 3 < 1:
      raise cli.FlagError(f"--max_seq_length={self.max_seq_length} leaves no room for context "
                          f"after --max_query_length={self.max_query_length} and [CLS]/[SEP]/[SEP]")
    self.check_training()
    self.check_tflite()
    if self.learning_rate < 0 or not 0 <= self.warmup_proportion < 1:
      raise cli.FlagError("--learning_rate must be >= 0 and --warmup_proportion in [0, 1)")


  def check_tflite(self):
    if self.lite_model_path and not (self.do_predict or self.use_post_quantization):
      raise cli.FlagError("--lite_model_path predicts --predict_file with a TFLite model: add "
                          "--do_predict")
    if self.use_post_quantization and not (self.do_predict or self.export_dir):
      raise cli.FlagError("--use_post_quantization exports the predicted checkpoint to int8 TFLite "
                          "and predicts with it: add --do_predict and/or --export_dir")
    self.check_int8_numerics()
    if self.activation_quantization and not self.train_file:
      raise cli.FlagError("--activation_quantization calibrates on the first 100 features of "
                          "--train_file: give it")


class RunReport(NamedTuple):
  """What a run did: steps trained, files written, and the official scores (None without answers or
  when that model did not predict) of the checkpoint and of the TFLite model."""
  num_train_steps: int
  predictions_file: Optional[str]
  nbest_file: Optional[str]
  scores: Optional[dict]
  lite_model_path: Optional[str] = None
  lite_scores: Optional[dict] = None
  eval_history: tuple = ()  # --do_eval: every checkpoint's scores on predict_file, oldest first
  best: Optional[dict] = None  # the entry with the highest F1


def predict_features(runner, records, features, config, checkpoint):
  """RawResults of every feature, in record order (padding dropped)."""
  predictions = runner_lib.predict_records(
      runner, records.path, span_records.feature_spec(config.max_seq_length, is_training=False),
      records.num_features, config.predict_batch_size, checkpoint, real_field="unique_ids")
  if len(predictions) != len(features):
    raise RuntimeError(f"predicted {len(predictions)} of {len(features)} features of {records.path}")
  return [span_postprocess.RawResult(int(p["unique_ids"]), p["start_logits"], p["end_logits"])
          for p in predictions]


def run(config):
  """Runs what the config asks for and returns a RunReport."""
  config.validate()
  output_dir = config.run.output_dir
  bert_config, tokenizer = runner_lib.prepare(
      config, {}, {"--train_file": config.train_file, "--predict_file": config.predict_file})
  settings = span_features.FeatureSettings(config.max_seq_length, config.doc_stride,
                                           config.max_query_length)
  # The predict file is read and checked before training, so a bad question (no id, a duplicate id,
  # answers the metric cannot score) stops the run before hours of training, not after.
  predict_examples = gold = None
  if config.do_predict or config.do_eval:
    predict_examples, _ = span_data.read_examples(config.predict_file, config.convert_traditional,
                                                  encoding=config.input_encoding)
    if span_data.has_answers(predict_examples):
      gold = span_data.read_squad_json(config.predict_file, config.input_encoding)
      cmrc2018_evaluate.gold_answers(gold, config.predict_file)
    elif config.do_eval:
      raise cli.DataError(f"--do_eval scores checkpoints against the answers of --predict_file="
                          f"{config.predict_file}, which has none")

  def key_of(path, is_training):
    return span_records.cache_key(path, config.vocab_file, config.do_lower_case, settings,
                                  config.convert_traditional, is_training, config.input_encoding)

  def records_for(path, is_training, make_features, key=None):
    return span_records.cached_records(runner_lib.records_name(path),
                                       key or key_of(path, is_training), config.cache_dir,
                                       make_features, is_training)

  def make_train_features():
    examples, _ = span_data.read_examples(config.train_file, config.convert_traditional,
                                          require_answers=True, encoding=config.input_encoding)
    return span_features.convert_examples(tokenizer, examples, settings, for_training=True)

  num_train_steps = num_warmup_steps = 0
  train_records = train_key = None
  if config.do_train:
    train_key = key_of(config.train_file, True)
    runner_lib.check_resume_before_featurizing(config, train_key)
  if config.do_train or config.activation_quantization:
    train_records = records_for(config.train_file, True, make_train_features, train_key)
  if config.do_train:
    num_train_steps, num_warmup_steps = config.train_steps(train_records.num_features)
    runner_lib.check_resume(config, train_records.key, num_train_steps)

  runner = Runner(config.run, model_fn_builder(config.encoder_settings(bert_config),
                                               head_lib.head(bert_config),
                                               config.train_settings(num_train_steps,
                                                                     num_warmup_steps)))
  # --lite_model_path alone predicts with that file instead of a checkpoint (the release's meaning).
  predicts_checkpoint = config.do_predict and not (config.lite_model_path and
                                                   not config.use_post_quantization)
  # The host needs the predict file's features (character maps) to read answers back, so they are
  # built whenever it predicts; the records (for a checkpoint) are rewritten only when the cache misses.
  features = predict_records = None
  if config.do_predict or config.do_eval:
    features = span_features.convert_examples(tokenizer, predict_examples, settings,
                                              for_training=False)
  if predicts_checkpoint or config.do_eval:
    predict_records = records_for(config.predict_file, False, lambda: features)

  def answers(checkpoint):
    results = predict_features(runner, predict_records, features, config, checkpoint)
    return span_postprocess.make_predictions(predict_examples, features, results, config.n_best_size,
                                             config.max_answer_length)

  def score(checkpoint):
    result = cmrc2018_evaluate.evaluate(gold, answers(checkpoint)[0], config.predict_file)
    metrics = {BEST_METRIC: result.f1, "em": result.em, "average": (result.em + result.f1) / 2,
               "total": result.total, "skip": result.skip}
    return checkpoint_scoring.history_entry(metrics, checkpoint, "predict_file", predict_records.path)

  # Each checkpoint scored as it is written (not on TPU: see classification/runner.py).
  scorer = None
  if config.do_eval and config.do_train and not config.run.use_tpu:
    scorer = checkpoint_scoring.ScoreEachCheckpoint(output_dir, score)
  if config.do_train:
    model_dir.write_model_dir(
        output_dir, model_dir.SPAN, config.bert_config_file, config.vocab_file, config.max_seq_length,
        config.do_lower_case, doc_stride=config.doc_stride, max_query_length=config.max_query_length,
        n_best_size=config.n_best_size, max_answer_length=config.max_answer_length,
        convert_traditional=config.convert_traditional)
    logging.info("training: %d features, batch %d, %d steps (%d warm-up)", train_records.num_features,
                 config.train_batch_size, num_train_steps, num_warmup_steps)
    runner_lib.train(runner, config, train_records.path,
                     span_records.feature_spec(config.max_seq_length, is_training=True),
                     train_records.num_features, num_train_steps, [scorer] if scorer else None)

  history, best = (), None
  if config.do_eval:
    history, best, best_kept = checkpoint_scoring.evaluate_checkpoints(
        score, output_dir, predict_records.path, BEST_METRIC, scorer.scored if scorer else ())
    checkpoint_scoring.write_eval_results(output_dir, history, best, best_kept, BEST_METRIC)
    logging.info("best checkpoint of %d scored on %s: %s (F1 %.3f, EM %.3f)", len(history),
                 config.predict_file, best["checkpoint"], best[BEST_METRIC], best["em"])

  checkpoint = None
  if predicts_checkpoint or config.export_dir or config.use_post_quantization:
    checkpoint = runner_lib.predict_checkpoint(config, can_select_best=True)
  predictions_file = nbest_file = scores = None
  if predicts_checkpoint:
    logging.info("predicting %d questions (%d features) with %s", len(predict_examples),
                 len(features), checkpoint)
    predictions, nbest = answers(checkpoint)
    predictions_file, nbest_file = span_postprocess.write_predictions(output_dir, predictions, nbest)
    if gold is not None:
      result = cmrc2018_evaluate.evaluate(gold, predictions, config.predict_file)
      scores = cmrc2018_evaluate.result_to_dict(result)
      atomic_io.write_text(os.path.join(output_dir, EVAL_RESULTS), json.dumps(scores) + "\n")
      logging.info("%s: %s", config.predict_file, json.dumps(scores))
  lite_path = None
  if checkpoint and (config.export_dir or config.use_post_quantization):
    lite_path = span_tflite.export(config, bert_config, checkpoint,
                                   train_records.path if train_records else None)
  lite_path = lite_path or config.lite_model_path
  lite_scores = None
  if config.do_predict and lite_path:
    logging.info("predicting %d questions (%d features) with TFLite %s", len(predict_examples),
                 len(features), lite_path)
    lite_scores = span_tflite.predict_and_score(config, lite_path, predict_examples, features, gold,
                                                scores)
  return RunReport(num_train_steps, predictions_file, nbest_file, scores, lite_path, lite_scores,
                   tuple(history), best)
