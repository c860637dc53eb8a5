"""Fine-tuning runs for classification: train, score every checkpoint on dev (or test), predict.

`run(ClassifierRunConfig)` is what run_classifier.py calls after parsing flags. Scoring is host-side:
the model predicts log-probabilities for padded whole batches, padding is dropped, and the task's scorer
reports accuracy, loss and (pair tasks) macro-F1, so the same scorer serves any model given as a
function (features.score_with_predict_fn).
"""

import dataclasses
import json
import os

import numpy as np
from absl import logging

from finetune.classification import features as features_lib
from finetune.classification import head as head_lib
from finetune.classification import regression_head
from finetune.classification import tflite as classification_tflite
from finetune.classification.tasks import CLASSIFICATION, REGRESSION, GenericOptions, create_task
from finetune.core import checkpoint_scoring, model_dir, runner as runner_lib
from finetune.core.model import model_fn_builder
from finetune.core.run_config import ScoredRunConfig
from mobilebert import atomic_io, cli
from mobilebert.run_config import Runner

LABEL_FILE = model_dir.LABEL_FILE
PREDICTIONS = "test_results.tsv"
# Per task type: the PREDICT outputs that hold (gold label, model output) for the scorer.
_SCORED_OUTPUTS = {REGRESSION: ("label_values", "predictions")}


@dataclasses.dataclass(kw_only=True)
class ClassifierRunConfig(ScoredRunConfig):
  """Everything one fine-tuning run needs (each field is the run_classifier flag of the same name)."""
  task_name: str
  data_dir: str
  skip_bad_rows: bool = False
  generic: GenericOptions = GenericOptions()

  def validate(self):
    self.check_scored_run("task_name", "data_dir")
    self.check_positive("max_seq_length")  # the task's minimum is checked once its texts are known


RunReport = checkpoint_scoring.RunReport


def check_label_list(output_dir, task, flag="--output_dir"):
  """Refuses an output_dir (or a teacher's, `flag` --teacher_init_checkpoint) whose model was trained
  with other labels (its head would be misread)."""
  path, saved = model_dir.read_label_file(output_dir)
  if saved is not None and saved.get("labels") != task.labels:
    fix = ("Use a new --output_dir." if flag == "--output_dir" else
           f"Give a {flag} fine-tuned with the task's labels.")
    raise cli.FlagError(f"{path}: the model in {flag} was trained with labels "
                        f"{saved.get('labels')} (task {saved.get('task')}); task {task.name} now has "
                        f"{task.labels}. {fix}")
  return path


def predict_split(runner, split, max_seq_length, batch_size, checkpoint, task_type=CLASSIFICATION):
  """(label_ids [N], log_probs [N, C]) for the real examples of a cached split, in file order; for a
  regression task (targets [N], predictions [N])."""
  spec = features_lib.feature_spec(max_seq_length, task_type)
  predictions = runner_lib.predict_records(runner, split.path, spec, split.num_examples, batch_size,
                                           checkpoint, real_field="is_real_example")
  if task_type in _SCORED_OUTPUTS:
    gold, output = _SCORED_OUTPUTS[task_type]
    return (np.array([float(p[gold]) for p in predictions]),
            np.array([float(p[output]) for p in predictions]))
  return (np.array([int(p["label_ids"]) for p in predictions]),
          np.array([p["log_probs"] for p in predictions]))


def score_checkpoint(runner, task, split, config, split_name, path):
  """One history entry: the task scorer's results for checkpoint `path` on the cached split."""
  label_ids, log_probs = predict_split(runner, split, config.max_seq_length, config.eval_batch_size,
                                       path, task.task_type)
  scorer = task.scorer()
  scorer.update(label_ids, log_probs)
  results = checkpoint_scoring.history_entry(scorer.results(), path, split_name, split.path)
  logging.info("%s %s at step %d: %s", task.name, split_name, results["global_step"],
               {k: v for k, v in results.items() if isinstance(v, float)})
  return results


def write_predictions(path, task, guids, log_probs):
  """test_results.tsv: guid, predicted label, its display name, then one probability column a label;
  for a regression task guid and the predicted value (`log_probs` are then the predictions [N])."""
  if task.task_type == REGRESSION:
    rows = ["guid\tprediction"] + [f"{guid}\t{value:.6f}" for guid, value in zip(guids, log_probs)]
    atomic_io.write_text(path, "\n".join(rows) + "\n")
    return
  names = task.label_display_names()
  rows = ["\t".join(["guid", "prediction", "prediction_name"] + task.labels)]
  for guid, row in zip(guids, np.exp(log_probs)):
    label = task.labels[int(row.argmax())]
    rows.append("\t".join([guid, label, names.get(label, label)] + [f"{p:.6f}" for p in row]))
  atomic_io.write_text(path, "\n".join(rows) + "\n")


def _check_seq_length(config, task):
  minimum = features_lib.min_seq_length(task.is_pair)
  if config.max_seq_length < minimum:
    raise cli.FlagError(
        f"--max_seq_length={config.max_seq_length} holds no text of task {task.name}: it needs at "
        f"least {minimum} ([CLS] a [SEP]{' b [SEP]' if task.is_pair else ''} with one token of "
        f"each text)")


def run(config):
  """Runs what the config asks for and returns a RunReport."""
  config.validate()
  output_dir = config.run.output_dir
  quantized = config.lite_model_path if config.use_post_quantization else None
  bert_config, tokenizer = runner_lib.prepare(config, {"--lite_model_path": quantized},
                                              {"--data_dir": config.data_dir})
  label_file = os.path.join(output_dir, LABEL_FILE)
  task = create_task(config.task_name, config.data_dir, config.skip_bad_rows,
                     config.generic._replace(label_file=label_file), config.input_encoding)
  check_label_list(output_dir, task)
  if config.distillation.enabled:  # the teacher's head must score the same classes in the same order
    check_label_list(config.distillation.teacher_dir(), task, "--teacher_init_checkpoint")
  _check_seq_length(config, task)

  def featurize(split, require_labels=True, key=None):
    return features_lib.cached_features(
        task, split, tokenizer, config.vocab_file, config.do_lower_case, config.max_seq_length,
        config.cache_dir, require_labels=require_labels, key=key)

  num_train_steps, num_warmup_steps, train_split = 0, 0, None
  if config.do_train:
    train_key = features_lib.cache_key(task, "train", True, config.vocab_file, config.do_lower_case,
                                       config.max_seq_length)
    runner_lib.check_resume_before_featurizing(config, train_key)
    train_split = featurize("train", key=train_key)
    num_train_steps, num_warmup_steps = config.train_steps(train_split.num_examples)
    runner_lib.check_resume(config, train_split.key, num_train_steps)
  # The eval split is read before training: a bad dev file stops the run before it trains.
  split_name = "test" if config.do_test else "dev"
  eval_split = featurize(split_name) if config.do_eval else None
  scores_checkpoints = config.do_eval and not (config.lite_model_path and
                                               not config.use_post_quantization)
  runner = Runner(config.run, model_fn_builder(config.encoder_settings(bert_config),
                                               _head(task, bert_config),
                                               config.train_settings(num_train_steps,
                                                                     num_warmup_steps)))

  def score(path):
    return score_checkpoint(runner, task, eval_split, config, split_name, path)

  # Each checkpoint is scored as it is written, in the training process. Not on TPU: a second TPU
  # session opened inside the training one is untested there, so TPU runs score after training.
  scorer = None
  if scores_checkpoints and config.do_train and not config.run.use_tpu:
    scorer = checkpoint_scoring.ScoreEachCheckpoint(output_dir, score)
  if config.do_train:
    label_record = {"task": task.name, "labels": task.labels}
    if task.task_type == REGRESSION:  # classification label files stay as they were
      label_record["task_type"] = task.task_type
    atomic_io.write_text(label_file, json.dumps(label_record, ensure_ascii=False) + "\n")
    model_dir.write_model_dir(output_dir, task.task_type, config.bert_config_file, config.vocab_file,
                              config.max_seq_length, config.do_lower_case, task=task.name,
                              labels=task.labels, is_pair=task.is_pair,
                              label_names=task.label_display_names())
    expected = num_train_steps // max(config.run.save_checkpoints_steps, 1) + 1
    if scorer is None and 0 < config.run.keep_checkpoint_max < expected:
      logging.warning("about %d checkpoints will be written but --keep_checkpoint_max=%d keeps only "
                      "the last ones, and only those can be scored after training (on CPU/GPU, "
                      "--do_eval with --do_train scores each as it is written)", expected,
                      config.run.keep_checkpoint_max)
    logging.info("training %s: %d examples, batch %d, %d steps (%d warm-up)", task.name,
                 train_split.num_examples, config.train_batch_size, num_train_steps, num_warmup_steps)
    runner_lib.train(runner, config, train_split.path,
                     features_lib.feature_spec(config.max_seq_length, task.task_type),
                     train_split.num_examples,
                     num_train_steps, [scorer] if scorer else None)

  history, best, best_kept = [], None, None
  metric = task.scorer().best_metric
  if config.do_eval:
    if scores_checkpoints:
      history, best, best_kept = checkpoint_scoring.evaluate_checkpoints(
          score, output_dir, eval_split.path, metric, scorer.scored if scorer else ())
      checkpoint_scoring.write_eval_results(output_dir, history, best, best_kept, metric)
      logging.info("best %s checkpoint of %d scored: %s (%s %.4f)", split_name, len(history),
                   best["checkpoint"], metric, best[metric])
    if config.lite_model_path or config.use_post_quantization:
      _score_tflite(config, bert_config, task, eval_split, split_name, best_kept, featurize, metric)

  predictions_file = None
  if config.do_predict:
    split = featurize("test", require_labels=False)
    checkpoint = runner_lib.predict_checkpoint(config, can_select_best=True)
    logging.info("predicting %d test examples with %s", split.num_examples, checkpoint)
    _, log_probs = predict_split(runner, split, config.max_seq_length, config.predict_batch_size,
                                 checkpoint, task.task_type)
    predictions_file = os.path.join(output_dir, PREDICTIONS)
    write_predictions(predictions_file, task, split.guids, log_probs)
  return RunReport(num_train_steps, history, best, predictions_file, metric)


def _head(task, bert_config):
  if task.task_type == REGRESSION:
    return regression_head.head(bert_config)
  return head_lib.head(len(task.labels), bert_config)


def _score_tflite(config, bert_config, task, eval_split, split_name, best_kept, featurize, metric):
  """--lite_model_path / --use_post_quantization: the eval split scored by a TFLite model."""
  lite_path = classification_tflite.lite_model(config, bert_config, best_kept, featurize)
  lite_results = classification_tflite.score(task, eval_split, lite_path, config.eval_batch_size)
  path = classification_tflite.write_results(config.run.output_dir, lite_path, lite_results,
                                             best_kept, metric)
  logging.info("TFLite %s %s: %s (written to %s)", lite_path, split_name, lite_results, path)
