"""The runner skeleton every kind shares: checked inputs and outputs, training from cached records
(resumable, with progress), prediction over padded static-shape batches, the checkpoint to predict with.

A kind's runner (classification/runner.py, span/runner.py) calls these in order: `prepare`,
`check_resume_before_featurizing`, featurize through finetune/core/records.py, `check_resume` (before
it writes its own files to --output_dir), `train`, then `predict_records` with `predict_checkpoint`,
and scores and writes its own results.
"""

import os

import tensorflow.compat.v1 as tf

from finetune.core import checkpoint_scoring
from finetune.core import records as records_lib
from mobilebert import atomic_io, cli, input_pipeline, resume_settings
from mobilebert.config import BertConfig
from mobilebert.run_config import ProgressHook, is_chief, resume_step
from mobilebert.tokenization import FullTokenizer


def run_entry_point(tool, make_config, run):
  """What an entry point's main does: the config from flags and the run, a user error reported as one
  line naming `tool`, and no empty --output_dir / --tfrecord_dir left behind. Returns run's report."""
  with cli.reporting_user_errors(tool):
    config = make_config()
    with cli.removing_output_dir_left_empty(config.run.output_dir), \
         cli.removing_output_dir_left_empty(config.tfrecord_dir):
      return run(config)


def prepare(config, outputs, inputs):
  """Checks that no output flag names an input, reads the model config, makes --output_dir.

  Args:
    config: a FinetuneRunConfig.
    outputs, inputs: {flag: path} beyond --output_dir / --tfrecord_dir and --vocab_file,
      --bert_config_file, --init_checkpoint.
  Returns:
    (BertConfig, FullTokenizer). The teacher flags are checked too (resolved again for training).
  """
  atomic_io.check_spares_inputs(
      {"--output_dir": config.run.output_dir, "--tfrecord_dir": config.tfrecord_dir, **outputs},
      {**inputs, "--vocab_file": config.vocab_file, "--bert_config_file": config.bert_config_file,
       "--init_checkpoint": atomic_io.checkpoint_inputs(config.init_checkpoint),
       **config.distillation.input_paths()})
  bert_config = BertConfig.from_json_file(config.bert_config_file)
  bert_config.check_seq_length(config.max_seq_length, source=config.bert_config_file)
  config.distillation.resolve(bert_config, config.max_seq_length)  # bad teacher flags stop it here
  tf.io.gfile.makedirs(config.run.output_dir)
  return bert_config, FullTokenizer(config.vocab_file, do_lower_case=config.do_lower_case)


def check_resume_before_featurizing(config, records_key):
  """check_resume's refusal before the training data is featurized: the feature cache goes to
  --output_dir unless --tfrecord_dir, so a rerun with other data or settings stops before it writes
  one there. `records_key` is the training split's cache key; a step count from --num_train_epochs,
  which needs the features, is compared by check_resume."""
  steps = config.train_steps(0)[0] if config.num_train_steps else None
  resume_settings.check_unchanged(config.run.output_dir, config.resume_record(records_key, steps),
                                  allow_changes=config.run.allow_changed_settings)


def check_resume(config, records_key, num_train_steps):
  """Before a training run writes its files to --output_dir (only the feature caches of the data it
  was started with come first): a run that has checkpoints there resumes only under the settings it
  started with; a new one records them (mobilebert/resume_settings.py)."""
  resume_step(config.run.output_dir)  # an unreadable newest checkpoint is set aside first
  resume_settings.check_or_record(
      config.run.output_dir, config.resume_record(records_key, num_train_steps),
      allow_changes=config.run.allow_changed_settings, writes=is_chief())


def train(runner, config, records_path, spec, num_records, num_train_steps, saving_listeners=None):
  """Trains to `num_train_steps` on cached records (after check_resume); a resumed run continues the
  same data order."""
  start_example = input_pipeline.start_example(resume_step(config.run.output_dir), 0,
                                               config.train_batch_size)
  input_fn = records_lib.input_fn_builder(records_path, spec, is_training=True,
                                          num_records=num_records, seed=config.run.rand_seed,
                                          start_example=start_example)
  with input_pipeline.naming_corrupt_records([records_path]):
    runner.train(input_fn, max_steps=num_train_steps, batch_size=config.train_batch_size,
                 hooks=[ProgressHook(config.train_batch_size, num_train_steps,
                                     config.log_every_n_steps)],
                 saving_listeners=saving_listeners)


def predict_records(runner, records_path, spec, num_records, batch_size, checkpoint, real_field):
  """The predictions of every real record, in file order.

  Batches are padded to `batch_size` with all-zero records (static shapes on TPU); `real_field` is a
  prediction key that is 0 for padding only (is_real_example, unique_ids).
  """
  input_fn = records_lib.input_fn_builder(records_path, spec, is_training=False,
                                          num_records=num_records, pad_to_batch_size=batch_size)
  predictions = []
  with input_pipeline.naming_corrupt_records([records_path]):
    for prediction in runner.predict(input_fn, batch_size, checkpoint_path=checkpoint):
      if int(prediction[real_field]):
        predictions.append(prediction)
  if len(predictions) != num_records:
    raise RuntimeError(f"predicted {len(predictions)} of {num_records} records of {records_path}")
  return predictions


def predict_checkpoint(config, can_select_best=False):
  """The checkpoint --predict_checkpoint names: latest (in --output_dir), best (kinds that score
  checkpoints: eval_history.json's best one still on disk) or a path."""
  choice = config.predict_checkpoint
  if choice == "latest":
    on_disk = checkpoint_scoring.checkpoints_on_disk(config.run.output_dir)
    if not on_disk:
      raise cli.FlagError(f"--output_dir={config.run.output_dir} holds no fine-tuned checkpoint to "
                          "predict with: run --do_train first or pass --predict_checkpoint")
    return on_disk[-1]
  if choice == "best" and can_select_best:
    return checkpoint_scoring.best_kept_checkpoint(config.run.output_dir)
  return choice


def records_name(path):
  """A data file's name without directory and extension (cache file names)."""
  return os.path.splitext(os.path.basename(path))[0]
