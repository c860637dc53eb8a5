r"""Chooses the quick start's fine-tuning settings on dev: a grid of runs on a finished quick start.

  python -m quickstart.sweep --output_dir=output/quickstart --task=thucnews \
      --learning_rates=2.5e-4,5e-4,1e-3,2e-3
  python -m quickstart.sweep --output_dir=output/quickstart --task=thucnews --models=task_distilled \
      --distill_settings=0.5:1,0:1,0.5:4

Each run starts from the quick start's pretraining checkpoint of its model (the task-distilled student
from the distilled student, taught by the quick start's fine-tuned teacher of the same seed) and is
scored on dev at its last checkpoint, as the report scores the quick start's own runs. Test is never
read. Runs go to <output_dir>/sweep/<task>/<model>/<setting>/seed<seed> and resume like the quick
start's stages; the dev scores of every sweep run of the task so far go to
<output_dir>/sweep/<task>.json and .md, the best setting of each model (highest mean) marked.
"""

import argparse
import dataclasses
import glob
import json
import os
import statistics
import sys

from mobilebert import atomic_io
from quickstart import finetuning, recipe, report, sizes
from quickstart.stages import Stage, StageError, StageRunner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class Setting:
  """One point of the grid: the fine-tuning settings a run differs in."""
  learning_rate: float
  num_train_steps: int
  distill: tuple = ()  # (ground-truth ratio, temperature) for the task-distilled model

  @property
  def name(self):
    text = f"lr{self.learning_rate:g}_steps{self.num_train_steps}"
    return text + (f"_ratio{self.distill[0]:g}_T{self.distill[1]:g}" if self.distill else "")


def _floats(text, flag):
  try:
    return [float(x) for x in text.split(",") if x]
  except ValueError:
    raise ValueError(f"{flag}={text}: expected comma-separated numbers") from None


def _distill_pairs(text):
  pairs = []
  for item in text.split(","):
    parts = item.split(":")
    if len(parts) != 2:
      raise ValueError(f"--distill_settings={text}: expected ratio:temperature pairs, e.g. 0.5:1,0:2")
    pairs.append(tuple(_floats(item.replace(":", ","), "--distill_settings")))
  return pairs


def parse_args(argv):
  parser = argparse.ArgumentParser(prog="quickstart.sweep", description=__doc__.splitlines()[0])
  parser.add_argument("--output_dir", required=True, help="a finished quick start's output directory")
  parser.add_argument("--task", required=True, help="a downstream task of the quick start's size")
  parser.add_argument("--models", default=",".join(finetuning.PRETRAINED),
                      help="comma-separated: teacher, student, control, task_distilled")
  parser.add_argument("--learning_rates", default="", help="default: the size's")
  parser.add_argument("--num_train_steps", default="", help="default: the size's")
  parser.add_argument("--distill_settings", default="",
                      help="task_distilled only: ratio:temperature pairs (default: the quick start's)")
  parser.add_argument("--seeds", type=int, default=1, help="runs per setting (seeds 12345, ...)")
  return parser.parse_args(argv)


def grid(task, model, args):
  """The settings `model` is run with on `task` (a sizes.Finetuning)."""
  rates = _floats(args.learning_rates, "--learning_rates") or [task.learning_rate_for(model)]
  steps = [int(n) for n in _floats(args.num_train_steps, "--num_train_steps")] or [
      task.num_train_steps]
  distill = [()]
  if model == finetuning.TASK_DISTILLED:
    distill = (_distill_pairs(args.distill_settings) if args.distill_settings
               else [finetuning.TASK_DISTILL])
  return [Setting(rate, n, pair) for rate in rates for n in steps for pair in distill]


def run_dir(paths, task, model, setting, seed):
  return os.path.join(paths.output_dir, "sweep", task.task_name, model, setting.name, f"seed{seed}")


def sweep_stages(size, paths, vocab_file, task, models, args):
  step_seconds = recipe.step_seconds(size)
  stages = []
  for model in models:
    for setting in grid(task, model, args):
      run_task = dataclasses.replace(task, learning_rate=setting.learning_rate,
                                     num_train_steps=setting.num_train_steps, model_learning_rates=())
      for seed in finetuning.seeds(args.seeds):
        out = run_dir(paths, task, model, setting, seed)
        train, _ = finetuning.run_commands(
            size, paths, vocab_file, run_task, model, seed, out,
            teacher_dir=paths.finetuned(task.task_name, "teacher", seed),
            distill=setting.distill or finetuning.TASK_DISTILL)
        stages.append(Stage(f"sweep_{task.task_name}_{model}_{setting.name}_seed{seed}",
                            f"{model} on {task.task_name}, {setting.name}, seed {seed}: dev only",
                            [train], cost=finetuning.run_cost(run_task, model, step_seconds,
                                                              recipe.START_SECONDS, processes=1)))
  return stages


def finished_runs(paths, task):
  """{model: {setting name: {seed: run dir}}} of every sweep run of `task` that scored its last
  checkpoint, from any earlier command too (the table covers them all)."""
  runs = {}
  base = os.path.join(paths.output_dir, "sweep", task.task_name)
  for history in sorted(glob.glob(os.path.join(base, "*", "*", "seed*", "eval_history.json"))):
    run = os.path.dirname(history)
    setting_dir = os.path.dirname(run)
    model = os.path.basename(os.path.dirname(setting_dir))
    seed = int(os.path.basename(run)[len("seed"):])
    runs.setdefault(model, {}).setdefault(os.path.basename(setting_dir), {})[seed] = run
  return runs


def dev_scores(paths, task):
  """{model: [{setting, dev (mean over its seeds), per_seed, seeds, best}]}, from the runs' files, in
  the quick start's model order; the best row of each model is the highest mean."""
  metric = finetuning.METRICS[task.kind]
  runs = finished_runs(paths, task)
  table = {}
  for model in [m for m in finetuning.models() if m in runs]:
    rows = []
    for setting, seeds in sorted(runs[model].items()):
      per_seed = [report.last_checkpoint_result(os.path.join(seeds[seed], "eval_history.json"))[
          metric] for seed in sorted(seeds)]
      rows.append({"setting": setting, "metric": metric, "dev": statistics.mean(per_seed),
                   "seeds": sorted(seeds), "per_seed": per_seed})
    best = max(rows, key=lambda row: row["dev"])
    for row in rows:
      row["best"] = row is best
    table[model] = rows
  return table


def markdown(task, table):
  lines = [f"# Dev-only sweep: {task.task_name}", "",
           f"Dev {finetuning.METRICS[task.kind]} in % at each run's last checkpoint, every run under "
           "this directory (`python -m quickstart.sweep`); test was not read.", "",
           "| model | setting | dev | per seed |", "|---|---|---|---|"]
  for model, rows in table.items():
    for row in rows:
      mark = " **best**" if row["best"] else ""
      seeds = ", ".join(f"{100 * x:.1f}" for x in row["per_seed"])
      lines.append(f"| {model} | {row['setting']}{mark} | {100 * row['dev']:.1f} | {seeds} |")
  return "\n".join(lines) + "\n"


def main(argv=None):
  args = parse_args(argv)
  output_dir = os.path.abspath(args.output_dir)
  try:
    settings_file = os.path.join(output_dir, "quickstart.json")
    if not os.path.exists(settings_file):
      raise ValueError(f"--output_dir={output_dir}: no quickstart.json; run the quick start first")
    with open(settings_file, encoding="utf-8") as f:
      settings = json.load(f)
    size = sizes.get(settings["size"], settings["steps_scale"])
    task = next((t for t in size.finetuning if t.task_name == args.task), None)
    if task is None:
      raise ValueError(f"--task={args.task}: expected one of "
                       f"{', '.join(t.task_name for t in size.finetuning)}")
    models = [m for m in args.models.split(",") if m]
    unknown = sorted(set(models) - set(finetuning.models()))
    if unknown:
      raise ValueError(f"--models: unknown {', '.join(unknown)}; expected "
                       f"{', '.join(finetuning.models())}")
    if args.seeds < 1:
      raise ValueError(f"--seeds must be at least 1, got {args.seeds}")
    for model in models:
      grid(task, model, args)
  except ValueError as error:
    print(f"quickstart.sweep: {error}", file=sys.stderr)
    return 2
  paths = recipe.Paths(output_dir, ROOT)
  runner = StageRunner(os.path.join(output_dir, "sweep"))
  try:
    runner.run(sweep_stages(size, paths, settings["vocab_file"], task, models, args))
  except StageError as error:
    print(f"\nquickstart.sweep: {error}", file=sys.stderr)
    return 1
  table = dev_scores(paths, task)
  base = os.path.join(output_dir, "sweep", task.task_name)
  atomic_io.write_text(base + ".json", json.dumps({"task": task.task_name, "metric":
                                                   finetuning.METRICS[task.kind], "models": table},
                                                  indent=2) + "\n")
  text = markdown(task, table)
  atomic_io.write_text(base + ".md", text)
  print(text)
  return 0


if __name__ == "__main__":
  sys.exit(main())
