"""The quick start's sizes: the same recipe at three scales (`--size`), all on real Chinese data.

Every size trains the teacher, the distilled student and the control student with the same batch,
sequence length and data; the student and the control get the same number of steps (the student's
progressive transfer counts towards them), and every model is fine-tuned on each downstream task
(`finetuning`) with the same steps, length and batch, and the learning rate dev chose for it, once per
seed. `--steps_scale` multiplies every training step count, to run a size longer or shorter.

The student is a compression of the teacher as MobileBERT is of IB-BERT: the same inter-block width
(feature-map transfer compares them), a bottleneck inside each block, stacked FFNs, and a factorized
embedding (`embedding_size` a quarter of the hidden size, the trigram input restoring the width), so
the 21,128-entry vocabulary costs the student a quarter of what it costs the teacher.

  tiny   config/tiny_bert_zh.json teacher, config/quickstart/tiny_student.json (hidden 64, 2 layers),
         a slice of the corpus; a few minutes. For the tests.
  small  config/quickstart/small_*.json (hidden 128, 4 layers); about an hour on 2 CPU cores with the
         task-distilled row (the teacher 18-21 minutes of it, the 24 fine-tuning runs about 30;
         --finetune_seeds=1 brings it to about 35 minutes).
  base   config/quickstart/base_*.json (hidden 256, 6 layers); a few hours on CPU, minutes on a GPU.

The small size's fine-tuning learning rates (per model) and task-distillation settings were chosen on
dev by `python -m quickstart.sweep` on a finished run (README, "How the fine-tuning settings were
chosen"); test scores are only reported (quickstart/report.py), never used to choose.
"""

import dataclasses
from typing import Tuple

# Fine-tuning runs per model and task (`--finetune_seeds`); seed i is FINETUNE_SEED + i.
DEFAULT_FINETUNE_SEEDS = 3


@dataclasses.dataclass(frozen=True)
class Finetuning:
  """One downstream task's fine-tuning settings (field names follow the fine-tuning flags)."""
  task_name: str                # run_classifier --task_name, or the tagging data set's name
  max_seq_length: int
  num_train_steps: int
  learning_rate: float
  kind: str = "classification"  # "regression" (Spearman), or "tagging": run_tagging.py, entity F1
  # Per-model learning rates where dev chose another than `learning_rate`: ((model, rate), ...); the
  # task-distilled student takes the student's unless named.
  model_learning_rates: Tuple[Tuple[str, float], ...] = ()

  def learning_rate_for(self, model):
    rates = dict(self.model_learning_rates)
    if model not in rates and model == "task_distilled":
      model = "student"
    return rates.get(model, self.learning_rate)


@dataclasses.dataclass(frozen=True)
class Size:
  """One scale of the recipe (field names follow the flags they become)."""
  name: str
  teacher_config: str           # relative to the repository root
  student_config: str
  max_lines: int                # People's Daily lines read (0: all of January 1998)
  dupe_factor: int              # masking passes over the training text
  max_seq_length: int
  max_predictions_per_seq: int
  train_batch_size: int
  teacher_steps: int
  teacher_learning_rate: float
  distill_steps: int            # progressive knowledge transfer, split evenly over the layers
  student_steps: int            # total student steps: transfer + distillation; the control's too
  student_learning_rate: float
  eval_batch_size: int
  finetuning: Tuple[Finetuning, ...]  # the downstream tasks, in report order
  finetune_batch_size: int
  latency_runs: int             # batch-1 inferences timed per model
  teacher_step_seconds: float   # one teacher pretraining step on 2 CPU cores: sets the time estimates
                                # (recipe.STEP_COST; the runner logs the total at the start)

  def config_for(self, model):
    """The config file (relative to the repository root) of "teacher", "student" or "control"."""
    return self.teacher_config if model == "teacher" else self.student_config

  def scaled(self, factor):
    """The same size with every training step count multiplied by `factor` (at least 1 step)."""
    if factor <= 0:
      raise ValueError(f"--steps_scale must be positive, got {factor}")
    scale = lambda n: max(1, int(round(n * factor)))
    distill_steps = scale(self.distill_steps)
    return dataclasses.replace(
        self, teacher_steps=scale(self.teacher_steps), distill_steps=distill_steps,
        student_steps=max(scale(self.student_steps), distill_steps + 1),
        finetuning=tuple(dataclasses.replace(task, num_train_steps=scale(task.num_train_steps))
                         for task in self.finetuning))


SIZES = {
    "tiny": Size(
        name="tiny", teacher_config="config/tiny_bert_zh.json",
        student_config="config/quickstart/tiny_student.json", max_lines=4000, dupe_factor=1,
        max_seq_length=64, max_predictions_per_seq=10, train_batch_size=16, teacher_steps=60,
        teacher_learning_rate=2e-3, distill_steps=20, student_steps=40, student_learning_rate=2e-3,
        eval_batch_size=32, finetuning=(Finetuning("thucnews", 32, 30, 1e-3),
                                        Finetuning("peoples_daily_ner", 32, 30, 1e-3, "tagging")),
        finetune_batch_size=16, latency_runs=5, teacher_step_seconds=0.05),
    "small": Size(
        name="small", teacher_config="config/quickstart/small_teacher.json",
        student_config="config/quickstart/small_student.json", max_lines=0, dupe_factor=2,
        max_seq_length=64, max_predictions_per_seq=10, train_batch_size=32, teacher_steps=3600,
        teacher_learning_rate=1e-3, distill_steps=200, student_steps=600,
        student_learning_rate=1e-3, eval_batch_size=64,
        # Learning rates: the best dev score of each model over 2.5e-4 (teacher), 5e-4 ... 4e-3 (8e-3:
        # control); the task-distilled row's on THUCNews is the rate its ratio and T were chosen at.
        finetuning=(Finetuning("thucnews", 48, 750, 5e-4, model_learning_rates=(
                        ("student", 1e-3), ("control", 4e-3), ("task_distilled", 5e-4))),
                    Finetuning("peoples_daily_ner", 64, 400, 5e-4, "tagging", model_learning_rates=(
                        ("student", 4e-3), ("control", 2e-3)))),
        finetune_batch_size=32, latency_runs=50, teacher_step_seconds=0.3),
    "base": Size(
        name="base", teacher_config="config/quickstart/base_teacher.json",
        student_config="config/quickstart/base_student.json", max_lines=0, dupe_factor=5,
        max_seq_length=128, max_predictions_per_seq=20, train_batch_size=128, teacher_steps=10000,
        teacher_learning_rate=1e-3, distill_steps=3000, student_steps=10000,
        student_learning_rate=1e-3, eval_batch_size=64,
        finetuning=(Finetuning("thucnews", 64, 1500, 1e-4),
                    Finetuning("peoples_daily_ner", 128, 1500, 1e-4, "tagging"),
                    Finetuning("chnsenticorp", 128, 1500, 1e-4)),
        finetune_batch_size=32, latency_runs=50, teacher_step_seconds=4.0),
}


def get(name, steps_scale=1.0):
  if name not in SIZES:
    raise ValueError(f"--size={name}: expected one of {', '.join(SIZES)}")
  size = SIZES[name]
  return size if steps_scale == 1 else size.scaled(steps_scale)
