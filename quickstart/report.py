"""The quick start's results: results.json, results.md and curves.png from what the stages wrote.

Numbers are read from the runs' own outputs: held-out masked-LM accuracy from each pretraining
directory's eval_results.txt, THUCNews accuracy from the fine-tuning runs' dev/test histories (the last
checkpoint), latency from latency.json, and the training curves from the TensorBoard event files.
"""

import glob
import json
import os
import platform

from mobilebert import atomic_io
from mobilebert import summary as summary_lib
from mobilebert.config import BertConfig
from quickstart import stages

LABELS = {"teacher": "BERT teacher", "student": "MobileBERT student, distilled",
          "control": "MobileBERT student, control (MLM only)"}
TRANSFER_LOSSES = ("feature_map_transfer_loss", "attention_transfer_loss", "mean_transfer_loss",
                   "variance_transfer_loss")


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


def last_checkpoint_result(history_file):
  """The entry for the newest checkpoint of a run_classifier eval_history.json."""
  with open(history_file, encoding="utf-8") as f:
    history = json.load(f)
  return max(history["checkpoints"], key=lambda entry: entry["global_step"])


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


def collect(paths, size):
  """Everything results.md shows, as one JSON-able dict."""
  models = {}
  latency = {}
  latency_file = os.path.join(paths.output_dir, "latency.json")
  if os.path.exists(latency_file):
    with open(latency_file, encoding="utf-8") as f:
      latency = json.load(f)["milliseconds"]
  for name in LABELS:
    config_file = paths.config(size.config_for(name))
    params = summary_lib.summarize(BertConfig.from_json_file(config_file))
    heldout = read_key_values(os.path.join(paths.model(name), "eval_results.txt"))
    finetuned = paths.finetuned(name)
    dev = last_checkpoint_result(os.path.join(finetuned, "dev_history.json"))
    test = last_checkpoint_result(os.path.join(finetuned, "test_history.json"))
    models[name] = {
        "label": LABELS[name], "config": size.config_for(name),
        "backbone_params": params["backbone_params"], "total_params": params["total_params"],
        "heldout_mlm_accuracy": heldout["masked_lm_accuracy"],
        "heldout_mlm_loss": heldout["masked_lm_loss"],
        "thucnews_dev_accuracy": dev["accuracy"], "thucnews_test_accuracy": test["accuracy"],
        "latency_ms": latency.get(name)}
  return {"size": size.name, "models": models, "settings": _settings(size),
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
  return {k: v for k, v in vars(size).items() if k != "expected_minutes"}


def verdict(results):
  student, control = results["models"]["student"], results["models"]["control"]
  test_gap = 100 * (student["thucnews_test_accuracy"] - control["thucnews_test_accuracy"])
  mlm_gap = 100 * (student["heldout_mlm_accuracy"] - control["heldout_mlm_accuracy"])
  beats = test_gap > 0 and mlm_gap > 0
  return beats, (f"The distilled student {'beats' if beats else 'does NOT beat'} the control: "
                 f"{test_gap:+.1f} points of THUCNews test accuracy, {mlm_gap:+.1f} points of "
                 "held-out masked-LM accuracy.")


def markdown(results, command, seconds=None):
  rows = ["| model | parameters (embeddings + encoder) | held-out MLM accuracy | THUCNews dev | "
          "THUCNews test | batch-1 latency, length 128 |", "|---|---|---|---|---|---|"]
  for model in results["models"].values():
    latency = f"{model['latency_ms']:.1f} ms" if model["latency_ms"] is not None else "-"
    rows.append(f"| {model['label']} | {model['backbone_params'] / 1e6:.2f}M | "
                f"{100 * model['heldout_mlm_accuracy']:.1f}% | "
                f"{100 * model['thucnews_dev_accuracy']:.1f}% | "
                f"{100 * model['thucnews_test_accuracy']:.1f}% | {latency} |")
  s = results["settings"]
  lines = [f"# Quick start results (size {results['size']})", "", f"Produced by `{command}` on "
           f"{results['machine']}.", "", *rows, "", verdict(results)[1], "",
           f"Pretraining: batch {s['train_batch_size']}, length {s['max_seq_length']}, teacher "
           f"{s['teacher_steps']} steps; student {s['distill_steps']} steps of progressive transfer "
           f"+ {s['student_steps'] - s['distill_steps']} of distillation; control "
           f"{s['student_steps']} steps of masked LM. Held-out: masked-LM accuracy on documents "
           "none of the models trained on. THUCNews: 10 topics, same split, "
           f"{s['finetune_steps']} steps at batch {s['finetune_batch_size']}, length "
           f"{s['finetune_seq_length']}, learning rate {s['finetune_learning_rate']}, seed 12345; "
           "accuracy of the last checkpoint.", "", "Training curves: `curves.png`."]
  if seconds:
    lines += ["", "Stage times: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in seconds.items())
              + f"; {sum(seconds.values()) / 60:.0f} min in all."]
  return "\n".join(lines) + "\n"


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
  finetuning = []
  for name in LABELS:
    # The Estimator names the training loss `loss`, or `loss_1` when the graph has a `loss` scope.
    series = scalars(paths.finetuned(name))
    finetuning.append((name, series.get("loss", series.get("loss_1")), 0))
  _plot(axes[5], "THUCNews fine-tuning: loss", finetuning)
  figure.tight_layout()
  atomic_io.write_atomically(output_file, lambda tmp: figure.savefig(tmp, format="png", dpi=100))
  plt.close(figure)


def write_report(paths, size, command="bash run_scripts/quickstart.sh"):
  """Writes results.json, results.md and curves.png; returns (results, markdown text)."""
  results = collect(paths, size)
  results["stage_seconds"] = stages.finished_seconds(paths.output_dir)
  text = markdown(results, command, results["stage_seconds"])
  atomic_io.write_text(os.path.join(paths.output_dir, "results.json"),
                       json.dumps(results, indent=2) + "\n")
  atomic_io.write_text(os.path.join(paths.output_dir, "results.md"), text)
  plot_curves(paths, size, os.path.join(paths.output_dir, "curves.png"))
  return results, text
