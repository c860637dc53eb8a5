"""The quick start's results: results.json, results.md and curves.png from what the stages wrote.

Numbers are read from the runs' own outputs: held-out masked-LM accuracy from each pretraining
directory's eval_results.txt, fine-tuning accuracy from each run's dev/test histories, latency from
latency.json, and the training curves from the TensorBoard event files. A fine-tuning run's score is
its last checkpoint's, dev and test at the same step: no checkpoint is selected, and test is never
used to choose anything. Each row is the mean and sample standard deviation over the seeds.
"""

import dataclasses
import glob
import json
import os
import platform
import statistics

from mobilebert import atomic_io
from mobilebert import summary as summary_lib
from mobilebert.config import BertConfig
from quickstart import finetuning, stages

LABELS = {"teacher": "BERT teacher", "student": "MobileBERT student, distilled",
          "control": "MobileBERT student, control (MLM only)",
          finetuning.TASK_DISTILLED: "MobileBERT student, distilled + task distillation"}
TASK_LABELS = {"thucnews": "THUCNews", "chnsenticorp": "ChnSentiCorp",
               "peoples_daily_ner": "People's Daily NER", "stsb_zh": "STS-B (zh)"}
METRIC_LABELS = {"accuracy": "accuracy", "f1": "entity F1", "spearman": "Spearman"}
TRANSFER_LOSSES = ("feature_map_transfer_loss", "attention_transfer_loss", "mean_transfer_loss",
                   "variance_transfer_loss")
# The bar for a real compression: the student keeps this share of the teacher's test accuracy
# and beats the control by this many points.
KEEPS_TEACHER = 0.95
BEATS_CONTROL_POINTS = 2.0


def read_key_values(path):
  """`key = value` lines (eval_results.txt) -> {key: float or str}."""
  values = {}
  with open(path, encoding="utf-8") as f:
    for line in f:
      if " = " in line:
        key, value = line.rstrip("\n").split(" = ", 1)
        try:
          values[key] = float(value)
        except ValueError:
          values[key] = value
  return values


def last_checkpoint_result(history_file, global_step=None):
  """The newest checkpoint's entry of a run_classifier eval_history.json (or `global_step`'s)."""
  with open(history_file, encoding="utf-8") as f:
    history = json.load(f)
  if global_step is None:
    return max(history["checkpoints"], key=lambda entry: entry["global_step"])
  for entry in history["checkpoints"]:
    if entry["global_step"] == global_step:
      return entry
  raise ValueError(f"{history_file}: no score at step {global_step}, the checkpoint dev was read at")


def mean_std(values):
  """{"mean", "std"} of a list; std is the sample standard deviation (None for one value)."""
  return {"mean": statistics.mean(values),
          "std": statistics.stdev(values) if len(values) > 1 else None}


def finetuned_results(paths, task, name, seeds):
  """Dev and test score of each seed's run at its last checkpoint, and their mean and std: keys
  `dev_<metric>` and `test_<metric>`, the metric being the task kind's (accuracy, or entity f1)."""
  metric = finetuning.METRICS[task.kind]
  per_seed = []
  for seed in seeds:
    run_dir = paths.finetuned(task.task_name, name, seed)
    dev = last_checkpoint_result(os.path.join(run_dir, "dev_history.json"))
    test = last_checkpoint_result(os.path.join(run_dir, "test_history.json"), dev["global_step"])
    per_seed.append({"seed": seed, "global_step": dev["global_step"],
                     f"dev_{metric}": dev[metric], f"test_{metric}": test[metric]})
  return {"metric": metric,
          **{key: mean_std([r[key] for r in per_seed]) for key in (f"dev_{metric}", f"test_{metric}")},
          "per_seed": per_seed}


def scalars(directory, tags=None):
  """{tag: [(step, value)]} from the event files directly in `directory` (not its eval/)."""
  import tensorflow.compat.v1 as tf
  series = {}
  for path in sorted(glob.glob(os.path.join(directory, "events.out.tfevents.*"))):
    for event in tf.train.summary_iterator(path):
      for value in event.summary.value:
        if tags is None or value.tag in tags:
          series.setdefault(value.tag, {})[event.step] = value.simple_value
  return {tag: sorted(points.items()) for tag, points in series.items()}


def collect(paths, size, num_seeds):
  """Everything results.md shows, as one JSON-able dict."""
  models = {}
  latency = {}
  latency_file = os.path.join(paths.output_dir, "latency.json")
  if os.path.exists(latency_file):
    with open(latency_file, encoding="utf-8") as f:
      latency = json.load(f)["milliseconds"]
  seeds = finetuning.seeds(num_seeds)
  for name in finetuning.models():
    config_file = paths.config(size.config_for(name))
    params = summary_lib.summarize(BertConfig.from_json_file(config_file))
    # The task-distilled row starts from the distilled student: same pretraining, same graph.
    pretrained = finetuning.pretrained_model(name)
    heldout = read_key_values(os.path.join(paths.model(pretrained), "eval_results.txt"))
    models[name] = {
        "label": LABELS[name], "config": size.config_for(name),
        "backbone_params": params["backbone_params"], "total_params": params["total_params"],
        "heldout_mlm_accuracy": heldout["masked_lm_accuracy"],
        "heldout_mlm_loss": heldout["masked_lm_loss"],
        "latency_ms": latency.get(pretrained),
        "tasks": {task.task_name: finetuned_results(paths, task, name, seeds)
                  for task in size.finetuning}}
  teacher = models["teacher"]["backbone_params"]
  for model in models.values():
    model["params_vs_teacher"] = model["backbone_params"] / teacher
  return {"size": size.name, "finetune_seeds": seeds, "models": models, "settings": _settings(size),
          "machine": f"{_cpu_name()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"}


def _cpu_name():
  """The CPU's model name where Linux tells it, else the machine type."""
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def _settings(size):
  return dataclasses.asdict(size)


def _points(fraction):
  return 100 * fraction


def verdicts(results):
  """One sentence a task on the issue's bars: [(task, passes, sentence)]."""
  models = results["models"]
  lines = []
  for task, scores in next(iter(models.values()))["tasks"].items():
    key = f"test_{scores['metric']}"
    test = {name: model["tasks"][task][key]["mean"] for name, model in models.items()}
    keeps = test["student"] / test["teacher"] if test["teacher"] else 0.0
    gap = _points(test["student"] - test["control"])
    beats = gap > 0
    passes = keeps >= KEEPS_TEACHER and gap >= BEATS_CONTROL_POINTS
    sentence = (f"{TASK_LABELS.get(task, task)} test: the distilled student keeps {100 * keeps:.0f}% "
                f"of the teacher's {METRIC_LABELS[scores['metric']]} "
                f"(bar {100 * KEEPS_TEACHER:.0f}%) and is {gap:+.1f} points from the control "
                f"(bar +{BEATS_CONTROL_POINTS:.0f}): it "
                f"{'beats' if beats else 'does NOT beat'} the control")
    if finetuning.TASK_DISTILLED in test:
      moved = _points(test[finetuning.TASK_DISTILLED] - test["student"])
      sentence += f"; task distillation moves it {moved:+.1f} points"
    lines.append((task, passes, sentence + "."))
  return lines


def _score(stats):
  text = f"{_points(stats['mean']):.1f}"
  return text + (f" ± {_points(stats['std']):.1f}" if stats["std"] is not None else "")


def markdown(results, command, seconds=None):
  models = results["models"]
  tasks = next(iter(models.values()))["tasks"]
  header = ["model", "parameters (embeddings + encoder)", "held-out MLM accuracy"]
  for task, scores in tasks.items():
    metric = "" if scores["metric"] == "accuracy" else f" {METRIC_LABELS[scores['metric']]}"
    label = TASK_LABELS.get(task, task)
    header += [f"{label} dev{metric}", f"{label} test{metric}"]
  header.append("batch-1 latency, length 128")
  metric_names = list(dict.fromkeys(METRIC_LABELS[scores["metric"]] for scores in tasks.values()))
  rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for name, model in models.items():
    latency = f"{model['latency_ms']:.1f} ms" if model["latency_ms"] is not None else "-"
    cells = [model["label"],
             f"{model['backbone_params'] / 1e6:.2f}M ({100 * model['params_vs_teacher']:.0f}%)",
             f"{_points(model['heldout_mlm_accuracy']):.1f}%"]
    for task, scores in model["tasks"].items():
      cells += [_score(scores[f"{split}_{scores['metric']}"]) for split in ("dev", "test")]
    rows.append("| " + " | ".join(cells + [latency]) + " |")
  s = results["settings"]
  seeds = results["finetune_seeds"]
  student, teacher = models["student"], models["teacher"]
  speed = ""
  if student["latency_ms"] and teacher["latency_ms"]:
    speed = (f", and runs batch-1 inference in {student['latency_ms']:.1f} ms against the teacher's "
             f"{teacher['latency_ms']:.1f} ms")
  finetune_settings = "; ".join(
      f"{TASK_LABELS.get(t['task_name'], t['task_name'])} {t['num_train_steps']} steps, length "
      f"{t['max_seq_length']}, learning rate {_learning_rates(t)}" for t in s["finetuning"])
  lines = [
      f"# Quick start results (size {results['size']})", "",
      f"Produced by `{command}` on {results['machine']}.", "", *rows, "",
      *[sentence for _, _, sentence in verdicts(results)], "",
      f"The student has {student['backbone_params'] / 1e6:.2f}M parameters, "
      f"{100 * student['params_vs_teacher']:.0f}% of the teacher's "
      f"{teacher['backbone_params'] / 1e6:.2f}M "
      f"(embeddings + encoder: what fine-tuning and inference use){speed}.", "",
      f"{metric_names[0].capitalize()}{''.join(f' and {m}' for m in metric_names[1:])} in %: "
      f"mean ± sample standard deviation over {len(seeds)} fine-tuning seed(s) "
      f"({', '.join(str(x) for x in seeds)}); per-seed numbers in results.json. Each run is scored at "
      "its last checkpoint on dev and test; the fine-tuning settings were chosen on dev scores "
      "(python -m quickstart.sweep), and test scores are only reported, never used to choose. The "
      "task-distilled student (if shown) starts from the distilled student and learns from the "
      "fine-tuned teacher of the same seed; its held-out MLM accuracy and latency are the distilled "
      "student's.", "",
      f"Pretraining: batch {s['train_batch_size']}, length {s['max_seq_length']}, teacher "
      f"{s['teacher_steps']} steps; student {s['distill_steps']} steps of progressive transfer "
      f"+ {s['student_steps'] - s['distill_steps']} of distillation; control "
      f"{s['student_steps']} steps of masked LM. Held-out: masked-LM accuracy on documents "
      f"none of the models trained on. Fine-tuning, batch {s['finetune_batch_size']}: "
      f"{finetune_settings}.", "", "Training curves: `curves.png`."]
  if seconds:
    lines += ["", "Stage times: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in seconds.items())
              + f"; {sum(seconds.values()) / 60:.0f} min in all."]
  return "\n".join(lines) + "\n"


def _learning_rates(task):
  """`5e-4`, or `5e-4 (teacher 2.5e-4)` where dev chose another rate for a model."""
  others = ", ".join(f"{model} {rate:g}" for model, rate in task["model_learning_rates"])
  return f"{task['learning_rate']:g}" + (f" ({others})" if others else "")


def _plot(axis, title, series_list):
  """series_list: [(label, [(step, value)], step offset)]; empty series are skipped."""
  for label, points, offset in series_list:
    if points:
      steps, values = zip(*points)
      axis.plot([step + offset for step in steps], values, label=label)
  axis.set_title(title, fontsize=9)
  axis.set_xlabel("step")
  if any(points for _, points, _ in series_list):
    axis.legend(fontsize=7)


def plot_curves(paths, size, output_file):
  """Each named loss of each phase against the step, and the models' MLM accuracy side by side."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  teacher = scalars(paths.model("teacher"))
  warmup = scalars(os.path.join(paths.model("student"), "warmup"))
  student = scalars(paths.model("student"))
  control = scalars(paths.model("control"))
  offset = size.distill_steps  # the student's distillation follows its progressive transfer
  figure, grid = plt.subplots(2, 3, figsize=(13, 7))
  axes = grid.flat
  _plot(axes[0], "teacher: masked LM", [("masked_lm", teacher.get("masked_lm_loss"), 0)])
  _plot(axes[1], "student: progressive transfer (one stage per layer)",
        [(tag.replace("_loss", ""), warmup.get(tag), 0) for tag in TRANSFER_LOSSES])
  axes[1].set_yscale("log")
  layers = BertConfig.from_json_file(paths.config(size.student_config)).num_hidden_layers
  for stage in range(1, layers):
    axes[1].axvline(stage * (size.distill_steps // layers), color="grey", lw=0.5)
  _plot(axes[2], "student: distillation (after the transfer)",
        [("distillation", student.get("distillation_loss"), offset),
         ("masked_lm (soft labels)", student.get("masked_lm_loss"), offset)])
  _plot(axes[3], "control: masked LM", [("masked_lm", control.get("masked_lm_loss"), 0)])
  _plot(axes[4], "masked-LM accuracy on training batches",
        [("teacher", teacher.get("masked_lm_accuracy"), 0),
         ("student (distillation)", student.get("masked_lm_accuracy"), offset),
         ("control", control.get("masked_lm_accuracy"), 0)])
  curves = []
  task = size.finetuning[0].task_name
  for name in finetuning.models():
    # The Estimator names the training loss `loss`, or `loss_1` when the graph has a `loss` scope.
    series = scalars(paths.finetuned(task, name, finetuning.FINETUNE_SEED))
    curves.append((name, series.get("loss", series.get("loss_1")), 0))
  _plot(axes[5], f"{TASK_LABELS.get(task, task)} fine-tuning, seed {finetuning.FINETUNE_SEED}: loss",
        curves)
  figure.tight_layout()
  atomic_io.write_atomically(output_file, lambda tmp: figure.savefig(tmp, format="png", dpi=100))
  plt.close(figure)


def write_report(paths, size, num_seeds, command="bash run_scripts/quickstart.sh"):
  """Writes results.json, results.md and curves.png; returns (results, markdown text)."""
  results = collect(paths, size, num_seeds)
  results["stage_seconds"] = stages.finished_seconds(paths.output_dir)
  results["verdicts"] = [{"task": task, "meets_bars": passes, "text": text}
                         for task, passes, text in verdicts(results)]
  text = markdown(results, command, results["stage_seconds"])
  atomic_io.write_text(os.path.join(paths.output_dir, "results.json"),
                       json.dumps(results, indent=2) + "\n")
  atomic_io.write_text(os.path.join(paths.output_dir, "results.md"), text)
  plot_curves(paths, size, os.path.join(paths.output_dir, "curves.png"))
  return results, text
