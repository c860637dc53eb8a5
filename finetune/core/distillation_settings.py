"""Flags of task-specific distillation, shared by every fine-tuning entry point, as one checked object.

The names are the pretraining flags' (run_pretraining.py) with the same meanings, plus the teacher's
own checkpoint (the student keeps --init_checkpoint for its pretrained weights):
  --bert_teacher_config_file     the fine-tuned teacher's config; giving it turns distillation on
  --teacher_init_checkpoint      the teacher's fine-tuning output (a checkpoint or its directory)
  --distill_ground_truth_ratio   weight r of the task loss; the teacher's soft targets get 1 - r.
                                 Unset: GROUND_TRUTH_RATIO_WITH_TEACHER, half and half (pretraining's
                                 default 1 would leave the teacher unused)
  --distill_temperature          T dividing both models' logits; the KL is multiplied by T^2
  --hidden_distill_factor        feature-map transfer weight (0: off), needs one hidden size
  --attention_distill_factor     attention transfer weight (0: off), needs one number of heads
`resolve` turns them into a TaskDistillation (or None without a teacher); every error names a flag.
"""

import dataclasses
import os
from typing import NamedTuple, Optional

import tensorflow.compat.v1 as tf
from absl import flags

from finetune.core.task_distillation import LossWeights
from mobilebert import atomic_io
from mobilebert import checkpoint
from mobilebert import cli
from mobilebert.config import BertConfig

# Half the weight on the true labels when a teacher is given and the ratio is not: the teacher of a
# small fine-tuning set is itself imperfect (TinyBERT and TextBrewer default to 0, pure soft targets;
# pass --distill_ground_truth_ratio=0 for that).
GROUND_TRUTH_RATIO_WITH_TEACHER = 0.5


class TaskDistillation(NamedTuple):
  """What the model_fn needs to distill: the teacher and the loss weights."""
  teacher_config: BertConfig
  teacher_init_checkpoint: str  # a checkpoint prefix (a directory resolved to its latest)
  weights: LossWeights


@dataclasses.dataclass(frozen=True)
class DistillationSettings:
  """The distillation flags as given (each field is the flag of the same name)."""
  bert_teacher_config_file: Optional[str] = None
  teacher_init_checkpoint: Optional[str] = None
  distill_ground_truth_ratio: Optional[float] = None  # None: see GROUND_TRUTH_RATIO_WITH_TEACHER
  distill_temperature: float = 1.0
  hidden_distill_factor: float = 0.0
  attention_distill_factor: float = 0.0

  @property
  def enabled(self):
    return bool(self.bert_teacher_config_file)

  def teacher_dir(self):
    """The teacher's output directory (where its label list is): the flag's, or its checkpoint's."""
    path = self.teacher_init_checkpoint
    return path if tf.io.gfile.isdir(path) else os.path.dirname(path)

  def input_paths(self):
    """{flag: path} of the files the run reads for the teacher (never to be written over)."""
    return {"--bert_teacher_config_file": self.bert_teacher_config_file,
            "--teacher_init_checkpoint": atomic_io.checkpoint_inputs(self.teacher_init_checkpoint)}

  def resolve(self, student_config, max_seq_length):
    """Checks the flags against each other and the student; returns TaskDistillation or None.

    Raises cli.FlagError (or the config's / checkpoint's UserError) naming the flag.
    """
    defaults = DistillationSettings()
    if not self.enabled:
      for field in dataclasses.fields(self):
        value = getattr(self, field.name)
        if value != getattr(defaults, field.name):
          raise cli.FlagError(f"--{field.name}={value} needs a teacher: pass "
                              "--bert_teacher_config_file and --teacher_init_checkpoint")
      return None
    if not self.teacher_init_checkpoint:
      raise cli.FlagError("--bert_teacher_config_file needs --teacher_init_checkpoint: the fine-tuned "
                          "teacher's checkpoint or output directory")
    weights = self._weights()
    teacher = BertConfig.from_json_file(self.bert_teacher_config_file)
    teacher.check_seq_length(max_seq_length, source=self.bert_teacher_config_file)
    pair = "the student's --bert_config_file and --bert_teacher_config_file"
    needs = [("vocab_size", "the teacher reads the student's input ids", True),
             ("hidden_size", "--hidden_distill_factor compares hidden states",
              weights.hidden > 0),
             ("num_attention_heads", "--attention_distill_factor compares attention maps",
              weights.attention > 0)]
    for key, why, needed in needs:
      if needed and getattr(student_config, key) != getattr(teacher, key):
        raise cli.FlagError(f"{why}: {pair} must agree on '{key}' ({getattr(student_config, key)} vs "
                            f"{getattr(teacher, key)})")
    try:
      prefix = checkpoint.resolve_checkpoint(self.teacher_init_checkpoint)
    except checkpoint.CheckpointError as e:
      raise cli.FlagError(f"--teacher_init_checkpoint: {e}") from None
    return TaskDistillation(teacher, prefix, weights)

  def _weights(self):
    ratio = self.distill_ground_truth_ratio
    if ratio is None:
      ratio = GROUND_TRUTH_RATIO_WITH_TEACHER
    if not 0.0 <= ratio <= 1.0:
      raise cli.FlagError(f"--distill_ground_truth_ratio must be in [0, 1], got {ratio}")
    if self.distill_temperature <= 0:
      raise cli.FlagError(f"--distill_temperature must be positive, got {self.distill_temperature}")
    for name in ("hidden_distill_factor", "attention_distill_factor"):
      if getattr(self, name) < 0:
        raise cli.FlagError(f"--{name} must not be negative, got {getattr(self, name)}")
    if ratio == 1.0 and not (self.hidden_distill_factor or self.attention_distill_factor):
      raise cli.FlagError("--distill_ground_truth_ratio=1 with no --hidden_distill_factor or "
                          "--attention_distill_factor leaves the teacher unused: lower the ratio, "
                          "or drop --bert_teacher_config_file")
    return LossWeights(ratio, self.distill_temperature, self.hidden_distill_factor,
                       self.attention_distill_factor)


_HELP = {
    "bert_teacher_config_file": "Config JSON of the fine-tuned teacher: turns on task-specific "
                                "distillation (the teacher is built frozen under teacher/).",
    "teacher_init_checkpoint": "The fine-tuned teacher's checkpoint, or its output directory (latest "
                               "checkpoint); its head is the task's.",
    "distill_ground_truth_ratio": "Weight r of the task loss; the teacher's soft targets get 1 - r. "
                                  f"Default with a teacher: {GROUND_TRUTH_RATIO_WITH_TEACHER}.",
    "distill_temperature": "Temperature T dividing teacher and student logits (the KL is scaled by "
                           "T^2).",
    "hidden_distill_factor": "Feature-map transfer weight (0: off); needs the teacher's hidden size.",
    "attention_distill_factor": "Attention transfer weight (0: off); needs the teacher's head count.",
}


def define_flags(flag_values=flags.FLAGS):
  """Defines the flags (once: run_pretraining defines some of the same names)."""
  for field in dataclasses.fields(DistillationSettings):
    if field.name in flag_values:
      continue
    kind = "string" if field.name in ("bert_teacher_config_file", "teacher_init_checkpoint") \
        else "float"
    getattr(flags, f"DEFINE_{kind}")(field.name, field.default, _HELP[field.name],
                                     flag_values=flag_values)


def from_flags(flag_values):
  """DistillationSettings of the parsed flags (defaults for an entry point without them); an unset
  ratio stays None whatever its flag default (run_pretraining's is 1)."""
  if "teacher_init_checkpoint" not in flag_values:
    return DistillationSettings()
  values = {f.name: getattr(flag_values, f.name) for f in dataclasses.fields(DistillationSettings)}
  if not flag_values["distill_ground_truth_ratio"].present:
    values["distill_ground_truth_ratio"] = None
  return DistillationSettings(**values)
