"""The phases of a pretraining run, and running them so that a rerun resumes where the last one stopped.

  warmup       progressive knowledge transfer, `output_dir/warmup`, global steps [0, num_distill_steps)
  first_round  optional, `output_dir`, steps [0, first_num_train_steps), first_* data/length/batch
  main_round   `output_dir`, steps [first_num_train_steps, num_train_steps)
The directories and step counts are the original's, so its checkpoints continue here. Each phase trains
its model directory until the phase's cumulative end step; a phase whose directory already holds a
checkpoint at (or past) that step is skipped, and the Estimator restores the newest checkpoint of a
phase in progress. Killing the process at any point and rerunning the same command therefore continues
in the right phase and stage and ends at the same final step. The main round starts from the last
warm-up checkpoint (student and teacher) when it has no checkpoint of its own yet.
"""

import collections
import dataclasses
import os

import tensorflow.compat.v1 as tf

from mobilebert import checkpoint_resume
from mobilebert import cli
from mobilebert import input_pipeline
from mobilebert import resume_settings
from mobilebert import run_config
from mobilebert.run_config import Runner
from pretrain import distillation
from pretrain import pretraining_input
from pretrain import progressive
from pretrain import run_hooks
from pretrain.pretraining_model import ModelOptions
from pretrain.pretraining_model_fn import SummaryOptions, TrainOptions, model_fn_builder

Phase = collections.namedtuple("Phase", ["name", "kind", "model_dir", "end_step", "input_files",
                                         "max_seq_length", "batch_size"])

WARMUP_SUBDIR = "warmup"
EVAL_RESULTS = "eval_results.txt"


class ResumeError(cli.UserError, ValueError):
  """Checkpoints in output_dir that the current flags cannot continue."""


def plan_phases(settings):
  """The training phases of `settings`, in order."""
  output_dir = settings.run.output_dir
  main_kind = "distill" if settings.distills_in_main_round else "mlm"
  phases = []
  if settings.layer_wise_warmup:
    phases.append(Phase("warmup", "progressive", os.path.join(output_dir, WARMUP_SUBDIR),
                        settings.num_distill_steps, settings.input_files, settings.max_seq_length,
                        settings.train_batch_size))
  if settings.first_num_train_steps:
    phases.append(Phase("first_round", main_kind, output_dir, settings.first_num_train_steps,
                        settings.first_input_files, settings.first_max_seq_length,
                        settings.first_batch_size))
  phases.append(Phase("main_round", main_kind, output_dir, settings.num_train_steps,
                      settings.input_files, settings.max_seq_length, settings.train_batch_size))
  return phases


def current_phase(phases):
  """(phase, its directory's latest step) of the first unfinished phase, or (None, None)."""
  for phase in phases:
    step = run_config.latest_step(phase.model_dir)
    if step < phase.end_step:
      return phase, step
  return None, None


def first_step(phases, phase):
  """The global step `phase` starts at: where the phase before it in the same directory ends, else 0.
  Its input stream starts at this step, so that a resumed phase skips (step - first_step) batches."""
  earlier = [p.end_step for p in phases[:phases.index(phase)] if p.model_dir == phase.model_dir]
  return earlier[-1] if earlier else 0


def _scan_unfinished(phases, output_dir):
  """Record counts of every file list an unfinished phase trains on, keyed by the tuple of paths.
  Every record is read (CRC-checked) here, so damaged data stops the run before a phase starts; the
  counts are kept in output_dir, so a restart reads again only files changed since."""
  counts = {}
  for phase in phases:
    files = tuple(phase.input_files)
    if run_config.latest_step(phase.model_dir) < phase.end_step and files not in counts:
      counts[files] = input_pipeline.scan_records(list(files), remember_in=output_dir,
                                                  writes=run_config.is_chief())
  return counts


def check_resumable(settings, phases):
  """Raises ResumeError if output_dir holds checkpoints the phases cannot continue from."""
  if not settings.layer_wise_warmup:
    return
  warmup, main = phases[0], phases[-1]
  warmup_step = run_config.latest_step(warmup.model_dir)
  main_step = run_config.latest_step(main.model_dir)
  if main_step and warmup_step < warmup.end_step:
    raise ResumeError(
        f"{main.model_dir} holds a main-round checkpoint (step {main_step}) but the warm-up in "
        f"{warmup.model_dir} stopped at step {warmup_step} < --num_distill_steps="
        f"{settings.num_distill_steps}; pass the --num_distill_steps the run was started with, or a "
        "new --output_dir")


def model_options(settings, kind):
  teacher = settings.bert_teacher_config if kind != "mlm" else None
  schedule = None
  if kind == "progressive":
    schedule = progressive.make_schedule(
        settings.layer_wise_warmup_schedule, settings.optimizer,
        settings.bert_config.num_hidden_layers, settings.num_distill_steps,
        settings.lower_layer_lr_scale)
  return ModelOptions(
      bert_config=settings.bert_config, kind=kind, teacher_config=teacher,
      transfer_factors=distillation.TransferLosses(
          settings.hidden_distill_factor, settings.attention_distill_factor,
          settings.beta_distill_factor, settings.gamma_distill_factor),
      ground_truth_ratio=settings.distill_ground_truth_ratio,
      temperature=settings.distill_temperature, schedule=schedule,
      nsp=settings.nsp and kind != "progressive", use_einsum=settings.use_einsum,
      use_one_hot_embeddings=settings.run.use_tpu, compute_type=settings.run.compute_dtype)


def train_options(settings, phase):
  progressive = phase.kind == "progressive"
  return TrainOptions(
      learning_rate=settings.learning_rate,
      num_train_steps=settings.num_distill_steps if progressive else settings.num_train_steps,
      num_warmup_steps=0 if progressive else settings.num_warmup_steps,
      optimizer=settings.optimizer, weight_decay_rate=settings.weight_decay_rate,
      use_tpu=settings.run.use_tpu,
      loss_scale=settings.loss_scale if settings.run.precision == "float16" else None)


def init_checkpoint_for(settings, phase):
  """The warm-up starts from --init_checkpoint; later phases from the warm-up's last checkpoint."""
  if phase.kind == "progressive" or not settings.layer_wise_warmup:
    return settings.init_checkpoint
  warmup_dir = os.path.join(settings.run.output_dir, WARMUP_SUBDIR)
  if run_config.latest_step(warmup_dir) < settings.num_distill_steps:
    raise ResumeError(f"the main round needs the finished warm-up in {warmup_dir}")
  return tf.train.latest_checkpoint(warmup_dir)


def summary_options(settings, phase):
  """Summaries go to the phase's directory; on TPU through a host call (the TPU writes no files)."""
  return SummaryOptions(use_summary=settings.use_summary, summary_dir=phase.model_dir,
                        use_host_call=settings.run.use_tpu)


def runner_for(settings, phase, init_checkpoint=None):
  run = dataclasses.replace(settings.run, output_dir=phase.model_dir)
  model_fn = model_fn_builder(model_options(settings, phase.kind), train_options(settings, phase),
                              init_checkpoint, summary_options(settings, phase),
                              skip_mismatched=settings.skip_mismatched_variables)
  return Runner(run, model_fn)


def train(settings):
  """Runs every unfinished phase; returns the final global step of the main round."""
  phases = plan_phases(settings)
  for directory in sorted({phase.model_dir for phase in phases}):
    # Before any step is read from a directory: an unreadable newest checkpoint is moved aside.
    checkpoint_resume.recover_latest(directory)
  check_resumable(settings, phases)
  resume_settings.check_or_record(
      settings.run.output_dir, settings.resume_record(),
      allow_changes=settings.run.allow_changed_settings, writes=run_config.is_chief(),
      phase_dirs=_phase_dirs(settings))
  if current_phase(phases)[0] is None:
    tf.logging.info("All phases finished already (main round at step %d)", settings.num_train_steps)
  record_counts = _scan_unfinished(phases, settings.run.output_dir)
  for phase in phases:
    step = run_config.latest_step(phase.model_dir)
    if step >= phase.end_step:
      tf.logging.info("Phase %s: done (step %d >= %d), skipped", phase.name, step, phase.end_step)
      continue
    _log_phase_start(settings, phase, step)
    # A directory with a checkpoint resumes from it; initializing would be ignored anyway.
    fresh = tf.train.latest_checkpoint(phase.model_dir) is None
    runner = runner_for(settings, phase,
                        init_checkpoint=init_checkpoint_for(settings, phase) if fresh else None)
    input_fn = pretraining_input.input_fn_builder(
        phase.input_files, phase.max_seq_length, settings.max_predictions_per_seq, is_training=True,
        seed=settings.run.rand_seed, record_counts=record_counts[tuple(phase.input_files)],
        start_example=input_pipeline.start_example(step, first_step(phases, phase),
                                                   phase.batch_size))
    every = settings.run.iterations_per_loop if settings.run.use_tpu else 100
    hooks = [run_config.ProgressHook(phase.batch_size, phase.end_step, every_n_steps=every,
                                     name=phase.name)]
    if run_config.multi_worker_count() <= 1:
      # Multi-worker sessions save on the chief with their own hook; a worker hook would save on all.
      hooks.append(run_hooks.KeepingCheckpointSaverHook(
          phase.model_dir, save_steps=settings.run.save_checkpoints_steps))
    with input_pipeline.naming_corrupt_records(phase.input_files):
      runner.train(input_fn, max_steps=phase.end_step, batch_size=phase.batch_size, hooks=hooks)
  return run_config.latest_step(phases[-1].model_dir)


def evaluate(settings):
  """Masked-LM accuracy and loss of the newest main-round checkpoint; writes eval_results.txt."""
  phase = plan_phases(settings)[-1]
  if tf.train.latest_checkpoint(phase.model_dir) is None:
    raise ResumeError(f"--do_eval: {phase.model_dir} holds no checkpoint to evaluate; train first "
                      "(--do_train)")
  runner = runner_for(settings, phase)
  files = settings.eval_input_files or settings.input_files
  input_fn = pretraining_input.input_fn_builder(files, settings.max_seq_length,
                                                settings.max_predictions_per_seq, is_training=False)
  with input_pipeline.naming_corrupt_records(files):
    result = runner.evaluate(input_fn, steps=settings.max_eval_steps,
                             batch_size=settings.eval_batch_size)
  run_hooks.write_results(os.path.join(settings.run.output_dir, EVAL_RESULTS), result)
  return result


def describe(settings):
  """One line per phase: what it trains, where, and how far it has got (for --dry_run and logs)."""
  lines = []
  for phase in plan_phases(settings):
    step = run_config.latest_step(phase.model_dir)
    state = "done" if step >= phase.end_step else (f"resumes at step {step}" if step else "to do")
    kind = phase.kind
    if kind == "progressive":
      name = progressive.schedule_name(settings.layer_wise_warmup_schedule, settings.optimizer)
      kind = f"{kind} ({name} schedule, {settings.optimizer})"
    lines.append(f"{phase.name}: {kind}, until step {phase.end_step}, batch {phase.batch_size}, "
                 f"length {phase.max_seq_length}, {len(phase.input_files)} input file(s), "
                 f"{phase.model_dir} ({state})")
  changed = resume_settings.pending_changes(settings.run.output_dir, settings.resume_record(),
                                           _phase_dirs(settings))
  if changed:
    lines.append(f"settings changed since the run started ({resume_settings.FILE_NAME}): "
                 f"{', '.join(changed)}; training stops unless {resume_settings.ALLOW_FLAG}")
  return lines


def _phase_dirs(settings):
  """Subdirectories of output_dir with checkpoints of their own (resume_settings)."""
  return [WARMUP_SUBDIR] if settings.layer_wise_warmup else []


def _log_phase_start(settings, phase, step):
  verb = "Resuming" if step else "Starting"
  tf.logging.info("%s phase %s (%s) at step %d of %d in %s", verb, phase.name, phase.kind, step,
                  phase.end_step, phase.model_dir)
  if phase.kind == "progressive":
    schedule = model_options(settings, phase.kind).schedule
    stage = schedule.stage_of_step(step)
    tf.logging.info("  progressive transfer: %s; step %d %s", schedule.describe(), step,
                    f"trains layer {stage}" if stage >= 0 else "trains no layer (outside every stage)")
