"""Fine-tuning runs for classification: train, score every checkpoint on dev (or test), predict.

`run(ClassifierRunConfig)` is what run_classifier.py calls after parsing flags. Scoring is host-side:
the model predicts log-probabilities for padded whole batches, padding is dropped, and the task's scorer
reports accuracy, loss and (pair tasks) macro-F1, so the same scorer serves any model given as a
function (classifier_features.score_with_predict_fn).
"""

import dataclasses
import json
import os
from typing import NamedTuple, Optional

import numpy as np
import tensorflow.compat.v1 as tf
from absl import logging

from finetune.core import checkpoint_scoring as eval_lib
from finetune.classification import features as features_lib
from finetune.classification import tflite as classification_tflite
from finetune.classification.head import ClassifierModelSettings, model_fn_builder
from finetune.classification.tasks import GenericOptions, create_task
from mobilebert import atomic_io, cli
from mobilebert.config import BertConfig
from mobilebert import input_pipeline
from mobilebert.run_config import ProgressHook, Runner, RunSettings, resume_step
from mobilebert.tokenization import FullTokenizer

LABEL_FILE = "label_list.json"
PREDICTIONS = "test_results.tsv"


@dataclasses.dataclass
class ClassifierRunConfig:
  """Everything one fine-tuning run needs (each field is the run_classifier flag of the same name)."""
  task_name: str
  data_dir: str
  vocab_file: str
  bert_config_file: str
  run: RunSettings
  init_checkpoint: Optional[str] = None
  skip_mismatched_variables: bool = False
  do_lower_case: bool = True
  max_seq_length: int = 128
  do_train: bool = False
  do_eval: bool = False
  do_predict: bool = False
  do_test: bool = False  # the release's: --do_eval scores the (labelled) test split instead of dev
  train_batch_size: int = 32
  eval_batch_size: int = 8
  predict_batch_size: int = 8
  learning_rate: float = 5e-5
  num_train_epochs: float = 3.0
  num_train_steps: int = 0  # > 0 overrides num_train_epochs
  warmup_proportion: float = 0.1
  optimizer: str = "adamw"
  weight_decay_rate: float = 0.01
  use_einsum: bool = True
  skip_bad_rows: bool = False
  tfrecord_dir: Optional[str] = None  # feature cache; default output_dir
  predict_checkpoint: str = "latest"  # "latest", "best" (by dev accuracy) or a checkpoint path
  log_every_n_steps: int = 100
  lite_model_path: Optional[str] = None  # score the eval split with this TFLite model
  use_post_quantization: bool = False  # export the scored checkpoint to int8 TFLite and score it
  activation_quantization: bool = False  # that export full-integer (int8 activations), calibrated
  use_quantized_training: bool = False  # fake-quantized dense layers (mobilebert/quantization.py)
  generic: GenericOptions = GenericOptions()

  def validate(self):
    if not (self.do_train or self.do_eval or self.do_predict):
      raise cli.FlagError("nothing to do: pass at least one of --do_train, --do_eval, --do_predict")
    for name in ("task_name", "data_dir", "vocab_file", "bert_config_file"):
      if not getattr(self, name):
        raise cli.FlagError(f"--{name} is required")
    for name in ("train_batch_size", "eval_batch_size", "predict_batch_size", "max_seq_length"):
      if getattr(self, name) <= 0:
        raise cli.FlagError(f"--{name} must be positive, got {getattr(self, name)}")
    if self.do_train and self.num_train_steps <= 0 and self.num_train_epochs <= 0:
      raise cli.FlagError("--num_train_epochs (or --num_train_steps) must be positive with --do_train")
    if (self.lite_model_path or self.use_post_quantization) and not self.do_eval:
      raise cli.FlagError("--lite_model_path / --use_post_quantization score the eval split: add "
                          "--do_eval")
    if not 0 <= self.warmup_proportion < 1:
      raise cli.FlagError(f"--warmup_proportion must be in [0, 1), got {self.warmup_proportion}")
    if self.activation_quantization and not self.use_post_quantization:
      raise cli.FlagError("--activation_quantization selects the numerics of the "
                          "--use_post_quantization export: add --use_post_quantization")
    if self.use_quantized_training and self.run.precision != "float32":
      raise cli.FlagError(f"--use_quantized_training fake-quantizes a float32 graph: drop "
                          f"--precision={self.run.precision}")


class RunReport(NamedTuple):
  """What a run did: steps trained, the scored checkpoints (best first is `best`), files written."""
  num_train_steps: int
  eval_history: list
  best: Optional[dict]
  predictions_file: Optional[str]


def check_label_list(output_dir, task):
  """Refuses an output_dir whose model was trained with other labels (its head would be misread)."""
  path = os.path.join(output_dir, LABEL_FILE)
  if not tf.io.gfile.exists(path):
    return path
  with tf.io.gfile.GFile(path, "r") as f:
    saved = json.loads(f.read())
  if saved.get("labels") != task.labels:
    raise cli.FlagError(f"{path}: the model in --output_dir was trained with labels "
                        f"{saved.get('labels')} (task {saved.get('task')}); task {task.name} now has "
                        f"{task.labels}. Use a new --output_dir.")
  return path


def _predict_checkpoint(config):
  choice = config.predict_checkpoint
  if choice == "latest":
    on_disk = eval_lib.checkpoints_on_disk(config.run.output_dir)
    if not on_disk:
      raise cli.FlagError(f"--output_dir={config.run.output_dir} holds no checkpoint to predict "
                          "with; run --do_train first")
    return on_disk[-1]
  if choice == "best":
    return eval_lib.best_kept_checkpoint(config.run.output_dir)
  return choice


def write_predictions(path, task, guids, log_probs):
  """test_results.tsv: guid, predicted label, its display name, then one probability column a label."""
  names = task.label_display_names()
  rows = ["\t".join(["guid", "prediction", "prediction_name"] + task.labels)]
  for guid, row in zip(guids, np.exp(log_probs)):
    label = task.labels[int(row.argmax())]
    rows.append("\t".join([guid, label, names.get(label, label)] + [f"{p:.6f}" for p in row]))
  atomic_io.write_text(path, "\n".join(rows) + "\n")


def run(config):
  """Runs what the config asks for and returns a RunReport."""
  config.validate()
  output_dir = config.run.output_dir
  quantized = config.lite_model_path if config.use_post_quantization else None
  atomic_io.check_spares_inputs(
      {"--output_dir": output_dir, "--tfrecord_dir": config.tfrecord_dir, "--lite_model_path": quantized},
      {"--data_dir": config.data_dir, "--vocab_file": config.vocab_file,
       "--bert_config_file": config.bert_config_file,
       "--init_checkpoint": atomic_io.checkpoint_inputs(config.init_checkpoint)})
  bert_config = BertConfig.from_json_file(config.bert_config_file)
  bert_config.check_seq_length(config.max_seq_length, source=config.bert_config_file)
  tf.io.gfile.makedirs(output_dir)
  label_file = os.path.join(output_dir, LABEL_FILE)
  task = create_task(config.task_name, config.data_dir, config.skip_bad_rows,
                     config.generic._replace(label_file=label_file))
  check_label_list(output_dir, task)
  minimum = features_lib.min_seq_length(task.is_pair)
  if config.max_seq_length < minimum:
    raise cli.FlagError(
        f"--max_seq_length={config.max_seq_length} holds no text of task {task.name}: it needs at "
        f"least {minimum} ([CLS] a [SEP]{' b [SEP]' if task.is_pair else ''} with one token of "
        f"each text)")
  tokenizer = FullTokenizer(config.vocab_file, do_lower_case=config.do_lower_case)

  def featurize(split, require_labels=True):
    return features_lib.cached_features(
        task, split, tokenizer, config.vocab_file, config.do_lower_case, config.max_seq_length,
        config.tfrecord_dir or output_dir, require_labels=require_labels)

  num_train_steps, num_warmup_steps, train_split = 0, 0, None
  if config.do_train:
    train_split = featurize("train")
    num_train_steps = config.num_train_steps or int(
        train_split.num_examples / config.train_batch_size * config.num_train_epochs)
    num_train_steps = max(num_train_steps, 1)
    num_warmup_steps = int(num_train_steps * config.warmup_proportion)
  # The eval split is read before training: a bad dev file stops the run before it trains.
  split_name = "test" if config.do_test else "dev"
  eval_split = featurize(split_name) if config.do_eval else None
  scores_checkpoints = config.do_eval and not (config.lite_model_path and
                                               not config.use_post_quantization)

  settings = ClassifierModelSettings(
      bert_config=bert_config, num_labels=len(task.labels), init_checkpoint=config.init_checkpoint,
      skip_mismatched_variables=config.skip_mismatched_variables,
      learning_rate=config.learning_rate, num_train_steps=num_train_steps,
      num_warmup_steps=num_warmup_steps, optimizer=config.optimizer,
      weight_decay_rate=config.weight_decay_rate, use_tpu=config.run.use_tpu,
      use_one_hot_embeddings=config.run.use_tpu, use_einsum=config.use_einsum,
      compute_type=config.run.compute_dtype, use_quantized_training=config.use_quantized_training)
  runner = Runner(config.run, model_fn_builder(settings))

  def score(path):
    return eval_lib.score_checkpoint(runner, task, eval_split, config, split_name, path)

  # Each checkpoint is scored as it is written, in the training process. Not on TPU: a second TPU
  # session opened inside the training one is untested there, so TPU runs score after training.
  scorer = None
  if scores_checkpoints and config.do_train and not config.run.use_tpu:
    scorer = eval_lib.ScoreEachCheckpoint(output_dir, score)
  if config.do_train:
    atomic_io.write_text(label_file, json.dumps({"task": task.name, "labels": task.labels},
                                             ensure_ascii=False) + "\n")
    expected = num_train_steps // max(config.run.save_checkpoints_steps, 1) + 1
    if scorer is None and 0 < config.run.keep_checkpoint_max < expected:
      logging.warning("about %d checkpoints will be written but --keep_checkpoint_max=%d keeps only "
                      "the last ones, and only those can be scored after training (on CPU/GPU, "
                      "--do_eval with --do_train scores each as it is written)", expected,
                      config.run.keep_checkpoint_max)
    logging.info("training %s: %d examples, batch %d, %d steps (%d warm-up)", task.name,
                 train_split.num_examples, config.train_batch_size, num_train_steps, num_warmup_steps)
    input_fn = features_lib.input_fn_builder(train_split.path, config.max_seq_length,
                                             is_training=True, num_examples=train_split.num_examples,
                                             seed=config.run.rand_seed,
                                             start_example=input_pipeline.start_example(
                                                 resume_step(output_dir), 0, config.train_batch_size))
    with input_pipeline.naming_corrupt_records([train_split.path]):
      runner.train(input_fn, max_steps=num_train_steps, batch_size=config.train_batch_size,
                   hooks=[ProgressHook(config.train_batch_size, num_train_steps,
                                       config.log_every_n_steps)],
                   saving_listeners=[scorer] if scorer else None)

  history, best, best_kept = [], None, None
  if config.do_eval:
    if scores_checkpoints:
      history, best, best_kept = eval_lib.evaluate_checkpoints(score, output_dir, eval_split,
                                                               scorer.scored if scorer else ())
      eval_lib.write_eval_results(output_dir, history, best, best_kept)
      logging.info("best %s checkpoint of %d scored: %s (%s %.4f)", split_name, len(history),
                   best["checkpoint"], eval_lib.BEST_METRIC, best[eval_lib.BEST_METRIC])
    if config.lite_model_path or config.use_post_quantization:
      lite_path = config.lite_model_path or os.path.join(output_dir, classification_tflite.DEFAULT_MODEL_NAME)
      if config.use_post_quantization:
        calibration = featurize("train").path if config.activation_quantization else None
        classification_tflite.quantize(bert_config, best_kept["checkpoint"], lite_path,
                                   config.max_seq_length, calibration)
      lite_results = classification_tflite.score(task, eval_split, lite_path, config.eval_batch_size)
      path = classification_tflite.write_results(output_dir, lite_path, lite_results, best_kept)
      logging.info("TFLite %s %s: %s (written to %s)", lite_path, split_name, lite_results, path)

  predictions_file = None
  if config.do_predict:
    split = featurize("test", require_labels=False)
    checkpoint = _predict_checkpoint(config)
    logging.info("predicting %d test examples with %s", split.num_examples, checkpoint)
    _, log_probs = eval_lib.predict_split(runner, split, config.max_seq_length,
                                          config.predict_batch_size, checkpoint)
    predictions_file = os.path.join(output_dir, PREDICTIONS)
    write_predictions(predictions_file, task, split.guids, log_probs)
  return RunReport(num_train_steps, history, best, predictions_file)
