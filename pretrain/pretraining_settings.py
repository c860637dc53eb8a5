"""Typed settings of a pretraining run, checked for contradictions before any graph is built.

Field names are the flags of the original `run_pretraining.py` (plus a few new ones). `validate()`
raises PretrainingFlagError naming the flag for: teacher flags without a teacher config, sequence
lengths beyond a config's `max_position_embeddings`, teacher/student pairs the requested losses cannot
compare, inconsistent step counts, and data files whose features have other lengths than the flags.
"""

import dataclasses
import os
from typing import List, Optional

import tensorflow.compat.v1 as tf

from mobilebert import atomic_io
from mobilebert import cli
from mobilebert.config import BertConfig
from mobilebert.run_config import RunSettings
from pretrain import data_config
from pretrain import pretraining_input
from pretrain import progressive

# Flags that only mean something with a teacher, and their "no teacher" values.
TEACHER_FLAGS = {"layer_wise_warmup": False, "attention_distill_factor": 0.0,
                 "hidden_distill_factor": 0.0, "beta_distill_factor": 0.0,
                 "gamma_distill_factor": 0.0, "distill_ground_truth_ratio": 1.0,
                 "distill_temperature": 1.0}
TRANSFER_FACTOR_FLAGS = ("hidden_distill_factor", "attention_distill_factor", "beta_distill_factor",
                         "gamma_distill_factor")
# Flags whose values define the trained weights, recorded as they are (resume_record adds the rest).
RESUME_FLAGS = ("init_checkpoint", "max_seq_length", "max_predictions_per_seq", "first_max_seq_length",
                "train_batch_size", "first_train_batch_size", "learning_rate", "num_train_steps",
                "num_warmup_steps", "first_num_train_steps", "optimizer", "weight_decay_rate",
                "layer_wise_warmup", "num_distill_steps", "lower_layer_lr_scale", "nsp",
                "distill_ground_truth_ratio", "distill_temperature", "loss_scale",
                *TRANSFER_FACTOR_FLAGS)


class PretrainingFlagError(cli.FlagError):
  """Flags that contradict each other or the data; the message names the flag."""


@dataclasses.dataclass
class PretrainingSettings:
  """Everything a pretraining run needs, resolved from flags once."""
  bert_config: BertConfig
  bert_config_file: str
  input_files: List[str]
  run: RunSettings
  bert_teacher_config: Optional[BertConfig] = None
  bert_teacher_config_file: Optional[str] = None
  init_checkpoint: Optional[str] = None
  skip_mismatched_variables: bool = False
  first_input_files: Optional[List[str]] = None
  eval_input_files: Optional[List[str]] = None
  do_train: bool = False
  do_eval: bool = False
  max_seq_length: int = 128
  max_predictions_per_seq: int = 20
  first_max_seq_length: int = 128
  train_batch_size: int = 32
  first_train_batch_size: Optional[int] = None
  eval_batch_size: int = 8
  max_eval_steps: int = 100
  learning_rate: float = 5e-5
  num_train_steps: int = 100000
  num_warmup_steps: int = 10000
  first_num_train_steps: int = 0
  optimizer: str = "adamw"
  weight_decay_rate: float = 0.01
  layer_wise_warmup: bool = False
  num_distill_steps: int = 100000
  layer_wise_warmup_schedule: Optional[str] = None  # None: progressive.DEFAULT_SCHEDULE[optimizer]
  lower_layer_lr_scale: float = 0.1
  hidden_distill_factor: float = 0.0
  attention_distill_factor: float = 0.0
  beta_distill_factor: float = 0.0
  gamma_distill_factor: float = 0.0
  distill_ground_truth_ratio: float = 1.0
  distill_temperature: float = 1.0
  nsp: bool = False
  use_einsum: bool = True
  use_summary: bool = False
  loss_scale: float = 1024.0

  @property
  def first_batch_size(self):
    return self.first_train_batch_size or self.train_batch_size

  @property
  def distills_in_main_round(self):
    """The main round uses the teacher's soft labels (the original drops the teacher at ratio 1)."""
    return self.bert_teacher_config is not None and self.distill_ground_truth_ratio != 1.0

  def resume_record(self):
    """What defines the trained weights, keyed by flag (mobilebert/resume_settings.py): a rerun in the
    same --output_dir must give the same, or it would continue the checkpoints under other settings.
    Data files by name (a moved data directory is the same data); configs by their contents."""
    def names(files):
      return [os.path.basename(f) for f in files] if files else None
    record = {f"--{name}": getattr(self, name) for name in RESUME_FLAGS}
    record.update({
        "--bert_config_file": self.bert_config.to_dict(),
        "--bert_teacher_config_file": (self.bert_teacher_config.to_dict()
                                       if self.bert_teacher_config else None),
        "--input_file": names(self.input_files),
        "--first_input_file": names(self.first_input_files),
        "--layer_wise_warmup_schedule": progressive.schedule_name(self.layer_wise_warmup_schedule,
                                                                  self.optimizer),
        "--rand_seed": self.run.rand_seed,
        "--precision": self.run.precision,
    })
    if self.run.precision != "float16":
      del record["--loss_scale"]  # only float16 scales the loss
    return record

  # -- checks ----------------------------------------------------------------------------------------
  def validate(self):
    """Raises PretrainingFlagError on the first contradiction found; returns self."""
    if not self.do_train and not self.do_eval:
      raise PretrainingFlagError("nothing to do: pass --do_train and/or --do_eval")
    self._check_teacher_flags()
    self._check_numbers()
    self._check_lengths()
    self._check_run()
    self._check_outputs()
    self._check_data()
    return self

  def _check_outputs(self):
    """--output_dir (checkpoints, summaries, eval results) must not be or hold a data or config file.

    --init_checkpoint is not checked: a checkpoint of this run in --output_dir is how it resumes.
    """
    atomic_io.check_spares_inputs(
        {"--output_dir": self.run.output_dir},
        {"--input_file": self.input_files, "--first_input_file": self.first_input_files,
         "--eval_input_file": self.eval_input_files, "--bert_config_file": self.bert_config_file,
         "--bert_teacher_config_file": self.bert_teacher_config_file})

  def _check_teacher_flags(self):
    if self.bert_teacher_config is None:
      for flag, neutral in TEACHER_FLAGS.items():
        if getattr(self, flag) != neutral:
          raise PretrainingFlagError(
              f"--{flag}={getattr(self, flag)} needs a teacher: pass --bert_teacher_config_file "
              f"(and the teacher's --init_checkpoint), or leave --{flag} at {neutral}")
      return
    student, teacher = self.bert_config, self.bert_teacher_config
    pair = f"--bert_config_file={self.bert_config_file} and " \
           f"--bert_teacher_config_file={self.bert_teacher_config_file}"
    if not self.layer_wise_warmup and not self.distills_in_main_round:
      tf.logging.warning("the teacher is not used: no --layer_wise_warmup and "
                         "--distill_ground_truth_ratio=1")
      return
    if not self.init_checkpoint:
      raise PretrainingFlagError("a teacher (--bert_teacher_config_file) needs --init_checkpoint: "
                                 "the teacher's weights (or a pretraining checkpoint holding them)")
    if self.distills_in_main_round and student.vocab_size != teacher.vocab_size:
      raise PretrainingFlagError(f"--distill_ground_truth_ratio < 1 needs one vocabulary: {pair} "
                                 f"have vocab_size {student.vocab_size} and {teacher.vocab_size}")
    if not self.layer_wise_warmup:
      return
    factors = {f: getattr(self, f) for f in TRANSFER_FACTOR_FLAGS}
    if not any(factors.values()):
      raise PretrainingFlagError("--layer_wise_warmup needs at least one non-zero factor among "
                                 + ", ".join(f"--{f}" for f in TRANSFER_FACTOR_FLAGS))
    needs = [("num_hidden_layers", True)]
    needs.append(("hidden_size", bool(self.hidden_distill_factor or self.beta_distill_factor
                                      or self.gamma_distill_factor)))
    needs.append(("num_attention_heads", bool(self.attention_distill_factor)))
    for key, needed in needs:
      if needed and getattr(student, key) != getattr(teacher, key):
        raise PretrainingFlagError(
            f"--layer_wise_warmup compares student layer l with teacher layer l: {pair} must agree "
            f"on '{key}' ({getattr(student, key)} vs {getattr(teacher, key)})")

  def _check_numbers(self):
    positive = ["train_batch_size", "eval_batch_size", "max_seq_length", "max_predictions_per_seq",
                "num_train_steps"]
    if self.layer_wise_warmup:
      positive.append("num_distill_steps")
    for flag in positive:
      if getattr(self, flag) <= 0:
        raise PretrainingFlagError(f"--{flag} must be positive, got {getattr(self, flag)}")
    for flag in ("num_warmup_steps", "first_num_train_steps", "weight_decay_rate") + \
        TRANSFER_FACTOR_FLAGS:
      if getattr(self, flag) < 0:
        raise PretrainingFlagError(f"--{flag} must not be negative, got {getattr(self, flag)}")
    if self.learning_rate <= 0:
      raise PretrainingFlagError(f"--learning_rate must be positive, got {self.learning_rate}")
    if self.num_warmup_steps > self.num_train_steps:
      raise PretrainingFlagError(f"--num_warmup_steps ({self.num_warmup_steps}) exceeds "
                                 f"--num_train_steps ({self.num_train_steps})")
    if self.first_num_train_steps > self.num_train_steps:
      raise PretrainingFlagError(
          f"--first_num_train_steps ({self.first_num_train_steps}) exceeds --num_train_steps "
          f"({self.num_train_steps}): the first round is part of the main round's count")
    if self.first_num_train_steps and not self.first_input_files:
      raise PretrainingFlagError("--first_num_train_steps > 0 needs --first_input_file")
    if not 0.0 <= self.distill_ground_truth_ratio <= 1.0:
      raise PretrainingFlagError("--distill_ground_truth_ratio must be in [0, 1], got "
                                 f"{self.distill_ground_truth_ratio}")
    if self.distill_temperature <= 0:
      raise PretrainingFlagError(f"--distill_temperature must be positive, got "
                                 f"{self.distill_temperature}")
    if not 0.0 <= self.lower_layer_lr_scale <= 1.0:
      raise PretrainingFlagError(f"--lower_layer_lr_scale must be in [0, 1], got "
                                 f"{self.lower_layer_lr_scale}")
    try:
      schedule = progressive.schedule_name(self.layer_wise_warmup_schedule, self.optimizer)
    except ValueError as e:
      raise PretrainingFlagError(str(e)) from None
    default_scale = PretrainingSettings.__dataclass_fields__["lower_layer_lr_scale"].default
    if (self.layer_wise_warmup and schedule == progressive.ORIGINAL and self.optimizer == "adamw"
        and self.lower_layer_lr_scale != default_scale):
      raise PretrainingFlagError(
          f"--lower_layer_lr_scale={self.lower_layer_lr_scale} has no effect: under --optimizer=adamw "
          "the original warm-up schedule applies no layer-wise rate; pass "
          "--layer_wise_warmup_schedule=staged to scale the lower layers")
    if self.layer_wise_warmup and self.num_distill_steps < self.bert_config.num_hidden_layers:
      raise PretrainingFlagError(
          f"--num_distill_steps ({self.num_distill_steps}) must be at least the student's "
          f"num_hidden_layers ({self.bert_config.num_hidden_layers}): one stage per layer")

  def _check_lengths(self):
    lengths = [("max_seq_length", self.max_seq_length)]
    if self.first_num_train_steps:
      lengths.append(("first_max_seq_length", self.first_max_seq_length))
    configs = [("--bert_config_file", self.bert_config_file, self.bert_config)]
    if self.bert_teacher_config is not None:
      configs.append(("--bert_teacher_config_file", self.bert_teacher_config_file,
                      self.bert_teacher_config))
    for flag, length in lengths:
      if length < data_config.MIN_SEQ_LENGTH:
        raise PretrainingFlagError(
            f"--{flag}={length} holds no text: pretraining data has at least "
            f"{data_config.MIN_SEQ_LENGTH} tokens ([CLS] A [SEP] B [SEP])")
      for config_flag, path, config in configs:
        if length > config.max_position_embeddings:
          raise PretrainingFlagError(
              f"--{flag}={length} exceeds max_position_embeddings={config.max_position_embeddings} "
              f"of {config_flag}={path}")
      if self.max_predictions_per_seq > length:
        raise PretrainingFlagError(f"--max_predictions_per_seq ({self.max_predictions_per_seq}) "
                                   f"exceeds --{flag} ({length})")

  def _check_run(self):
    run = self.run
    if run.use_tpu and run.precision == "float16":
      raise PretrainingFlagError("--precision=float16 is for GPUs; TPUs train in bfloat16")
    if run.use_tpu and run.num_gpus > 1:
      raise PretrainingFlagError("--num_gpus and --use_tpu exclude each other")
    if self.run.use_tpu:
      batch_flags = ["train_batch_size", "eval_batch_size"]
      if self.first_num_train_steps and self.first_train_batch_size:
        batch_flags.append("first_train_batch_size")
      for flag in batch_flags:
        if getattr(self, flag) % run.num_tpu_cores:
          raise PretrainingFlagError(f"--{flag} ({getattr(self, flag)}) must be divisible by "
                                     f"--num_tpu_cores ({run.num_tpu_cores})")

  def _check_data(self):
    checks = [("input_file", self.input_files, self.max_seq_length)]
    if self.first_num_train_steps:
      checks.append(("first_input_file", self.first_input_files, self.first_max_seq_length))
    if self.do_eval and self.eval_input_files:
      checks.append(("eval_input_file", self.eval_input_files, self.max_seq_length))
    for flag, files, length in checks:
      try:
        pretraining_input.check_feature_lengths(files, length, self.max_predictions_per_seq,
                                                nsp=self.nsp)
      except pretraining_input.PretrainingDataError as e:
        message = str(e)
        if flag == "first_input_file":  # the reader names the length max_seq_length
          message = message.replace("max_seq_length", "first_max_seq_length")
        raise PretrainingFlagError(f"--{flag}: {message}") from None
    if self.nsp and not _has_next_sentence_labels(self.input_files[0]):
      raise PretrainingFlagError(
          f"--nsp: next_sentence_labels of {self.input_files[0]} are all 0 in its first records; "
          "the data was made without random next sentences (e.g. the contiguous instance mode)")


def _has_next_sentence_labels(path, records=200):
  """True if any of the first `records` examples of `path` has a non-zero NSP label."""
  for index, record in enumerate(tf.io.tf_record_iterator(path)):
    if index >= records:
      break
    labels = tf.train.Example.FromString(record).features.feature["next_sentence_labels"]
    if any(labels.int64_list.value):
      return True
  return False
