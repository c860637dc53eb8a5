# coding=utf-8
"""Fine-tuning runs for span extraction (CMRC 2018, DRCD): train, predict, score with the official metric.

`run(SpanRunConfig)` is what run_cmrc2018.py calls after parsing flags. The model predicts start/end
logits per window; the host picks n-best answers (span_postprocess), writes predictions.json and
nbest_predictions.json, and, when the predict file has answers, scores them with cmrc2018_evaluate and
writes eval_results.json in the official script's format.
"""

import dataclasses
import json
import os
from typing import NamedTuple, Optional

import tensorflow.compat.v1 as tf
from absl import logging

from finetune import cmrc2018_evaluate
from finetune.span import data as span_data
from finetune.span import features as span_features
from finetune.span import postprocess as span_postprocess
from finetune.span import records as span_records
from finetune.span.head import SpanModelSettings, model_fn_builder
from mobilebert import atomic_io, cli
from mobilebert.config import BertConfig
from mobilebert import input_pipeline
from mobilebert.run_config import ProgressHook, Runner, RunSettings, resume_step
from mobilebert.tokenization import FullTokenizer

EVAL_RESULTS = "eval_results.json"


@dataclasses.dataclass
class SpanRunConfig:
  """Everything one run needs (each field is the run_cmrc2018 flag of the same name)."""
  vocab_file: str
  bert_config_file: str
  run: RunSettings
  train_file: Optional[str] = None
  predict_file: Optional[str] = None
  init_checkpoint: Optional[str] = None
  skip_mismatched_variables: bool = False
  do_lower_case: bool = True
  max_seq_length: int = 512
  doc_stride: int = 128
  max_query_length: int = 64
  do_train: bool = False
  do_predict: bool = False
  convert_traditional: bool = False
  train_batch_size: int = 32
  predict_batch_size: int = 8
  learning_rate: float = 3e-5
  num_train_epochs: float = 2.0
  num_train_steps: int = 0  # > 0 overrides num_train_epochs
  warmup_proportion: float = 0.1
  optimizer: str = "adamw"
  weight_decay_rate: float = 0.01
  n_best_size: int = 20
  max_answer_length: int = 30
  use_einsum: bool = True
  tfrecord_dir: Optional[str] = None  # feature cache; default output_dir
  predict_checkpoint: str = "latest"  # "latest" in output_dir, or a checkpoint path
  log_every_n_steps: int = 100
  use_quantized_training: bool = False  # fake-quantized dense layers (mobilebert/quantization.py)

  def validate(self):
    if not (self.do_train or self.do_predict):
      raise cli.FlagError("nothing to do: pass --do_train and/or --do_predict")
    if self.do_train and not self.train_file:
      raise cli.FlagError("--do_train needs --train_file")
    if self.do_predict and not self.predict_file:
      raise cli.FlagError("--do_predict needs --predict_file")
    for name in ("vocab_file", "bert_config_file"):
      if not getattr(self, name):
        raise cli.FlagError(f"--{name} is required")
    for name in ("train_batch_size", "predict_batch_size", "max_seq_length", "doc_stride",
                 "max_query_length", "n_best_size", "max_answer_length"):
      if getattr(self, name) <= 0:
        raise cli.FlagError(f"--{name} must be positive, got {getattr(self, name)}")
    if self.max_seq_length - self.max_query_length - 3 < 1:
      raise cli.FlagError(f"--max_seq_length={self.max_seq_length} leaves no room for context "
                          f"after --max_query_length={self.max_query_length} and [CLS]/[SEP]/[SEP]")
    if self.do_train and self.num_train_steps <= 0 and self.num_train_epochs <= 0:
      raise cli.FlagError("--num_train_epochs (or --num_train_steps) must be positive with --do_train")
    if self.use_quantized_training and self.run.precision != "float32":
      raise cli.FlagError(f"--use_quantized_training fake-quantizes a float32 graph: drop "
                          f"--precision={self.run.precision}")
    if self.learning_rate < 0 or not 0 <= self.warmup_proportion < 1:
      raise cli.FlagError("--learning_rate must be >= 0 and --warmup_proportion in [0, 1)")


class RunReport(NamedTuple):
  """What a run did: steps trained, files written, and the official scores (None without answers)."""
  num_train_steps: int
  predictions_file: Optional[str]
  nbest_file: Optional[str]
  scores: Optional[dict]


def _records_name(path):
  return os.path.splitext(os.path.basename(path))[0]


def _predict_checkpoint(config):
  if config.predict_checkpoint != "latest":
    return config.predict_checkpoint
  latest = tf.train.latest_checkpoint(config.run.output_dir)
  if latest is None:
    raise cli.FlagError(f"--output_dir={config.run.output_dir} holds no fine-tuned checkpoint to "
                        "predict with: run --do_train first or pass --predict_checkpoint")
  return latest


def predict_features(runner, records, features, config, checkpoint):
  """RawResults of every feature, in record order (padding dropped)."""
  input_fn = span_records.input_fn_builder(
      records.path, config.max_seq_length, is_training=False, num_features=records.num_features,
      pad_to_batch_size=config.predict_batch_size)
  results = []
  with input_pipeline.naming_corrupt_records([records.path]):
    for output in runner.predict(input_fn, config.predict_batch_size, checkpoint_path=checkpoint):
      unique_id = int(output["unique_ids"])
      if unique_id != span_records.PADDING_UNIQUE_ID:
        results.append(span_postprocess.RawResult(unique_id, output["start_logits"],
                                                   output["end_logits"]))
  if len(results) != len(features):
    raise RuntimeError(f"predicted {len(results)} of {len(features)} features of {records.path}")
  return results


def run(config):
  """Runs what the config asks for and returns a RunReport."""
  config.validate()
  output_dir = config.run.output_dir
  atomic_io.check_spares_inputs(
      {"--output_dir": output_dir, "--tfrecord_dir": config.tfrecord_dir},
      {"--train_file": config.train_file, "--predict_file": config.predict_file,
       "--vocab_file": config.vocab_file, "--bert_config_file": config.bert_config_file,
       "--init_checkpoint": atomic_io.checkpoint_inputs(config.init_checkpoint)})
  bert_config = BertConfig.from_json_file(config.bert_config_file)
  bert_config.check_seq_length(config.max_seq_length, source=config.bert_config_file)
  tf.io.gfile.makedirs(output_dir)
  tokenizer = FullTokenizer(config.vocab_file, do_lower_case=config.do_lower_case)
  settings = span_features.FeatureSettings(config.max_seq_length, config.doc_stride,
                                            config.max_query_length)
  cache_dir = config.tfrecord_dir or output_dir
  # The predict file is read and checked before training, so a bad question (no id, a duplicate id,
  # answers the metric cannot score) stops the run before hours of training, not after.
  predict_examples = gold = None
  if config.do_predict:
    predict_examples, _ = span_data.read_examples(config.predict_file, config.convert_traditional)
    if span_data.has_answers(predict_examples):
      gold = span_data.read_squad_json(config.predict_file)
      cmrc2018_evaluate.gold_answers(gold, config.predict_file)

  def records_for(path, is_training, make_features):
    key = span_records.cache_key(path, config.vocab_file, config.do_lower_case, settings,
                                  config.convert_traditional, is_training)
    return span_records.cached_records(_records_name(path), key, cache_dir, make_features,
                                        is_training)

  num_train_steps = num_warmup_steps = 0
  if config.do_train:
    def make_train_features():
      examples, _ = span_data.read_examples(config.train_file, config.convert_traditional,
                                             require_answers=True)
      return span_features.convert_examples(tokenizer, examples, settings, for_training=True)

    train_records = records_for(config.train_file, True, make_train_features)
    num_train_steps = config.num_train_steps or int(
        train_records.num_features / config.train_batch_size * config.num_train_epochs)
    num_train_steps = max(num_train_steps, 1)
    num_warmup_steps = int(num_train_steps * config.warmup_proportion)

  model_settings = SpanModelSettings(
      bert_config=bert_config, init_checkpoint=config.init_checkpoint,
      skip_mismatched_variables=config.skip_mismatched_variables,
      learning_rate=config.learning_rate, num_train_steps=num_train_steps,
      num_warmup_steps=num_warmup_steps, optimizer=config.optimizer,
      weight_decay_rate=config.weight_decay_rate, use_tpu=config.run.use_tpu,
      use_one_hot_embeddings=config.run.use_tpu, use_einsum=config.use_einsum,
      compute_type=config.run.compute_dtype, use_quantized_training=config.use_quantized_training)
  runner = Runner(config.run, model_fn_builder(model_settings))

  if config.do_train:
    logging.info("training: %d features, batch %d, %d steps (%d warm-up)", train_records.num_features,
                 config.train_batch_size, num_train_steps, num_warmup_steps)
    input_fn = span_records.input_fn_builder(train_records.path, config.max_seq_length,
                                              is_training=True,
                                              num_features=train_records.num_features,
                                              seed=config.run.rand_seed,
                                              start_example=input_pipeline.start_example(
                                                  resume_step(output_dir), 0,
                                                  config.train_batch_size))
    with input_pipeline.naming_corrupt_records([train_records.path]):
      runner.train(input_fn, max_steps=num_train_steps, batch_size=config.train_batch_size,
                   hooks=[ProgressHook(config.train_batch_size, num_train_steps,
                                       config.log_every_n_steps)])

  if not config.do_predict:
    return RunReport(num_train_steps, None, None, None)
  examples = predict_examples
  # The host needs the features (character maps) to read answers back, so they are always built;
  # the records are rewritten only when the cache misses.
  features = span_features.convert_examples(tokenizer, examples, settings, for_training=False)
  records = records_for(config.predict_file, False, lambda: features)
  checkpoint = _predict_checkpoint(config)
  logging.info("predicting %d questions (%d features) with %s", len(examples), len(features),
               checkpoint)
  results = predict_features(runner, records, features, config, checkpoint)
  predictions, nbest = span_postprocess.make_predictions(
      examples, features, results, config.n_best_size, config.max_answer_length)
  predictions_file, nbest_file = span_postprocess.write_predictions(output_dir, predictions, nbest)
  scores = None
  if gold is not None:
    result = cmrc2018_evaluate.evaluate(gold, predictions, config.predict_file)
    scores = cmrc2018_evaluate.result_to_dict(result)
    atomic_io.write_text(os.path.join(output_dir, EVAL_RESULTS), json.dumps(scores) + "\n")
    logging.info("%s: %s", config.predict_file, json.dumps(scores))
  return RunReport(num_train_steps, predictions_file, nbest_file, scores)
