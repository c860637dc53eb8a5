"""Fine-tuning runs for token tagging: train, score every checkpoint on dev (or test), predict.

`run(TaggingRunConfig)` is what run_tagging.py calls after parsing flags; it follows the shared runner
skeleton (finetune/core/runner.py). Checkpoints are scored on the host by entity F1 (scoring.py) and
the best one is chosen by it (finetune/core/checkpoint_scoring.py).
"""

import dataclasses
import json
import os
from typing import Tuple

from absl import logging

from finetune.core import checkpoint_scoring, model_dir, runner as runner_lib
from finetune.core.model import model_fn_builder
from finetune.core.run_config import ScoredRunConfig
from finetune.tagging import features as features_lib
from finetune.tagging import model as model_lib
from finetune.tagging import scoring, tflite
from finetune.tagging.task import TaggingTask
from mobilebert import atomic_io, cli
from mobilebert.run_config import Runner

LABEL_FILE = model_dir.LABEL_FILE
PREDICTIONS = "predictions.jsonl"
TEST_RESULTS = "test_results.txt"


@dataclasses.dataclass(kw_only=True)
class TaggingRunConfig(ScoredRunConfig):
  """Everything one tagging run needs; each field is the run_tagging flag of the same name (those
  shared with run_classifier mean the same)."""
  data_dir: str
  data_format: str = "conll"  # conll or jsonl: <data_dir>/{train,dev,test}.<format>
  labels: Tuple[str, ...] = ()  # entity types in model order; default: the training file's, sorted

  def validate(self):
    self.check_scored_run("data_dir")
    if self.max_seq_length < 3:
      raise cli.FlagError(f"--max_seq_length={self.max_seq_length}: needs at least 3 ([CLS] one "
                          "piece [SEP])")


RunReport = checkpoint_scoring.RunReport


def saved_entity_types(output_dir, labels):
  """The entity types a model in output_dir was trained with (None if none was); --labels must agree."""
  path, saved = model_dir.read_label_file(output_dir)
  if saved is None:
    return None
  types = tuple(saved.get("entity_types") or ())
  if labels and tuple(labels) != types:
    raise cli.FlagError(f"{path}: the model in --output_dir was trained with entity types "
                        f"{list(types)}; --labels={','.join(labels)} differs. Use a new --output_dir.")
  return types


def _check_teacher_tags(teacher_dir, task):
  """The teacher's head must score the task's tags in the same order (its label_list.json says)."""
  path, saved = model_dir.read_label_file(teacher_dir)
  if saved is None:
    return
  tags = saved.get("labels")
  if tags != list(task.tag_names):
    raise cli.FlagError(f"{path}: the model in --teacher_init_checkpoint was trained with tags {tags}; "
                        f"the task has {list(task.tag_names)}. Give a teacher fine-tuned with them.")


def write_model_description(config, task):
  """label_list.json (tags and entity types: a later run must agree) and what the predict command
  reads (finetune/core/model_dir.py: config, vocab, finetune_settings.json with the tags)."""
  output_dir = config.run.output_dir
  atomic_io.write_text(os.path.join(output_dir, LABEL_FILE), json.dumps({
      "task": task.name, "labels": task.tag_names, "entity_types": list(task.entity_types)},
      ensure_ascii=False) + "\n")
  model_dir.write_model_dir(output_dir, model_dir.TAGGING, config.bert_config_file, config.vocab_file,
                            config.max_seq_length, config.do_lower_case, labels=task.tag_names,
                            entity_types=list(task.entity_types))


def _predict(config, runner, task, featurize):
  """--do_predict: predictions.jsonl, and test_results.txt when the test file is labelled."""
  output_dir = config.run.output_dir
  split = featurize("test", require_labels=False)
  checkpoint = runner_lib.predict_checkpoint(config, can_select_best=True)
  logging.info("predicting %d test windows with %s", split.num_examples, checkpoint)
  first_piece, probabilities = scoring.predict_windows(runner, split, config.max_seq_length,
                                                       config.predict_batch_size, checkpoint)
  predictions = scoring.sentence_predictions(task, task.sentences("test", require_labels=False),
                                             split.windows, first_piece, probabilities)
  path = os.path.join(output_dir, PREDICTIONS)
  scoring.write_predictions(path, predictions)
  if all(sentence.entities is not None for sentence, _ in predictions):
    # A labelled test file: its score with the checkpoint dev chose, without a second run.
    results = dict(scoring.score(task, predictions), checkpoint=checkpoint)
    atomic_io.write_text(os.path.join(output_dir, TEST_RESULTS),
                         "".join(f"{key} = {value}\n" for key, value in sorted(results.items())))
    logging.info("test: entity f1 %.4f precision %.4f recall %.4f (%s)", results["f1"],
                 results["precision"], results["recall"], checkpoint)
  return path


def run(config):
  """Runs what the config asks for and returns a RunReport."""
  config.validate()
  output_dir = config.run.output_dir
  quantized = config.lite_model_path if config.use_post_quantization else None
  bert_config, tokenizer = runner_lib.prepare(config, {"--lite_model_path": quantized},
                                              {"--data_dir": config.data_dir})
  types = saved_entity_types(output_dir, config.labels) or config.labels
  task = TaggingTask(config.data_dir, config.data_format, types, config.input_encoding)
  if config.distillation.enabled:
    _check_teacher_tags(config.distillation.teacher_dir(), task)

  def featurize(split, require_labels=True, key=None):
    return features_lib.cached_features(task, split, tokenizer, config.vocab_file,
                                        config.do_lower_case, config.max_seq_length,
                                        config.cache_dir, require_labels, key)

  num_train_steps, num_warmup_steps, train_split = 0, 0, None
  if config.do_train:
    train_key = features_lib.cache_key(task, "train", True, config.vocab_file, config.do_lower_case,
                                       config.max_seq_length)
    runner_lib.check_resume_before_featurizing(config, train_key)
    train_split = featurize("train", key=train_key)
    num_train_steps, num_warmup_steps = config.train_steps(train_split.num_examples)
    runner_lib.check_resume(config, train_split.key, num_train_steps)
  split_name = "test" if config.do_test else "dev"
  eval_split = featurize(split_name) if config.do_eval else None  # a bad dev file stops us early
  scores_checkpoints = config.do_eval and not (config.lite_model_path and
                                               not config.use_post_quantization)
  runner = Runner(config.run, model_fn_builder(
      config.encoder_settings(bert_config), model_lib.head(len(task.tag_names), bert_config),
      config.train_settings(num_train_steps, num_warmup_steps)))

  def score(path):
    return scoring.score_checkpoint(runner, task, eval_split, task.sentences(split_name), config,
                                    split_name, path)

  scorer = None  # each checkpoint scored as it is written (not on TPU: see classification/runner.py)
  if scores_checkpoints and config.do_train and not config.run.use_tpu:
    scorer = checkpoint_scoring.ScoreEachCheckpoint(output_dir, score)
  if config.do_train:
    write_model_description(config, task)
    logging.info("training the tagger (%s): %d examples, batch %d, %d steps (%d warm-up)",
                 ", ".join(task.tag_names), train_split.num_examples, config.train_batch_size,
                 num_train_steps, num_warmup_steps)
    runner_lib.train(runner, config, train_split.path, features_lib.feature_spec(config.max_seq_length),
                     train_split.num_examples, num_train_steps, [scorer] if scorer else None)

  history, best, best_kept = [], None, None
  if config.do_eval:
    if scores_checkpoints:
      history, best, best_kept = checkpoint_scoring.evaluate_checkpoints(
          score, output_dir, eval_split.path, scoring.BEST_METRIC, scorer.scored if scorer else ())
      checkpoint_scoring.write_eval_results(output_dir, history, best, best_kept, scoring.BEST_METRIC)
      logging.info("best %s checkpoint of %d scored: %s (entity f1 %.4f)", split_name, len(history),
                   best["checkpoint"], best["f1"])
    if config.lite_model_path or config.use_post_quantization:
      tflite.quantize_and_score(config, task, bert_config, eval_split, task.sentences(split_name),
                                best_kept, featurize)
  predictions_file = _predict(config, runner, task, featurize) if config.do_predict else None
  return RunReport(num_train_steps, history, best, predictions_file, scoring.BEST_METRIC)
