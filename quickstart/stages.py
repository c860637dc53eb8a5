"""Runs the quick start's stages in order: skips finished ones, logs progress and time left.

A stage is a list of commands: subprocesses, whose output goes to `logs/<stage>.log`, or Python
callables (copying results between runs, writing the report). A stage is finished when its marker `.stages/<name>.done` exists; the
marker is written only after every command succeeded, so an interrupted stage runs again and, because
the trainers resume from their checkpoints, continues where it stopped.

Time left is estimated from each stage's expected share of the work (`cost`, in seconds on the
machine the defaults were tuned on), corrected by how fast the finished stages actually went.
"""

import dataclasses
import json
import os
import re
import subprocess
import sys
import time

# Trainer log lines worth echoing to the console (progress, results); the rest stays in the log file.
PROGRESS_LINE = re.compile(r"step \d+/\d+ .*ETA|masked_lm_accuracy = |test at step|dev at step|"
                           r"latency|ms per sequence")
MARKER_DIR = ".stages"
MIN_COST_TO_CORRECT = 60  # expected seconds of finished stages before their pace corrects the estimate


@dataclasses.dataclass
class Stage:
  name: str                      # file-name safe: the marker and log file are named after it
  description: str
  # Run in order: argv lists (subprocesses) or Python callables; a callable that returns a list runs it
  # as an argv list, a command decided when it runs (e.g. from the size of data an earlier stage wrote).
  commands: list
  cost: float                    # expected seconds (relative weight for the time-left estimate)


class StageError(RuntimeError):
  pass


def _format_minutes(seconds):
  minutes = seconds / 60
  return f"{minutes:.0f} min" if minutes >= 1.5 else f"{seconds:.0f} s"


class StageRunner:
  """Runs stages under `output_dir`; `log` receives one line at a time (default: stdout)."""

  def __init__(self, output_dir, log=None, echo_progress=True):
    self.output_dir = output_dir
    self.log = log or (lambda line: print(line, flush=True))
    self.echo_progress = echo_progress
    os.makedirs(os.path.join(output_dir, MARKER_DIR), exist_ok=True)
    os.makedirs(os.path.join(output_dir, "logs"), exist_ok=True)

  def marker(self, stage):
    return os.path.join(self.output_dir, MARKER_DIR, f"{stage.name}.done")

  def is_done(self, stage):
    return os.path.exists(self.marker(stage))

  def run(self, stages):
    """Runs every unfinished stage; returns {stage name: seconds} of the stages run now."""
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
      raise ValueError(f"stage names must be unique: {names}")
    todo = [s for s in stages if not self.is_done(s)]
    done = len(stages) - len(todo)
    if done:
      self.log(f"{done} of {len(stages)} stages finished earlier, skipped: "
               + ", ".join(s.name for s in stages if self.is_done(s)))
    spent, expected_spent, timings = 0.0, 0.0, {}
    for stage in todo:
      index = stages.index(stage) + 1
      remaining_cost = sum(s.cost for s in todo[todo.index(stage):])
      # Corrected by the finished stages' pace once they weigh a minute: a few-second stage would
      # otherwise rescale the whole estimate.
      speed = spent / expected_spent if expected_spent >= MIN_COST_TO_CORRECT else 1.0
      self.log(f"[{index}/{len(stages)}] {stage.name}: {stage.description} "
               f"(about {_format_minutes(remaining_cost * speed)} left in all)")
      start = time.time()
      self._run_stage(stage)
      seconds = time.time() - start
      timings[stage.name] = seconds
      spent += seconds
      expected_spent += stage.cost
      self.log(f"[{index}/{len(stages)}] {stage.name}: done in {_format_minutes(seconds)}")
    return timings

  def _run_stage(self, stage):
    start = time.time()
    log_path = os.path.join(self.output_dir, "logs", f"{stage.name}.log")
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with open(log_path, "a", encoding="utf-8") as log_file:
      for command in stage.commands:
        if callable(command):
          log_file.write(f"\n# {getattr(command, '__name__', 'step')}\n")
          command = command()
          if not isinstance(command, list):
            continue
        log_file.write(f"\n$ {' '.join(command)}\n")
        log_file.flush()
        self._run_command(command, env, log_file, log_path, stage)
    with open(self.marker(stage), "w", encoding="utf-8") as f:
      json.dump({"finished": time.strftime("%Y-%m-%d %H:%M:%S"), "finished_at": time.time(),
                 "seconds": round(time.time() - start, 1)}, f)

  def _run_command(self, command, env, log_file, log_path, stage):
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                               text=True, encoding="utf-8", errors="replace", bufsize=1)
    try:
      last = None
      for line in process.stdout:
        log_file.write(line)
        log_file.flush()  # so that `tail -f logs/<stage>.log` follows the run
        if self.echo_progress and PROGRESS_LINE.search(line):
          text = _strip_log_prefix(line.rstrip())
          if text != last:  # TensorFlow's and absl's handlers print the same record twice
            self.log(f"    {text}")
          last = text
    except KeyboardInterrupt:
      process.terminate()
      process.wait()
      raise
    if process.wait() != 0:
      tail = _tail(log_path, 15)
      raise StageError(f"stage {stage.name} failed (exit code {process.returncode}) running:\n  "
                       f"{' '.join(command)}\nlast lines of {log_path}:\n{tail}\nFix the cause and "
                       "run the same command again: finished stages are skipped, this one resumes.")


def finished_seconds(output_dir):
  """{stage name: seconds it took} of every finished stage under `output_dir`, in finishing order."""
  markers = []
  marker_dir = os.path.join(output_dir, MARKER_DIR)
  if os.path.isdir(marker_dir):
    for file_name in os.listdir(marker_dir):
      if file_name.endswith(".done"):
        with open(os.path.join(marker_dir, file_name), encoding="utf-8") as f:
          markers.append((json.load(f), file_name[:-len(".done")]))
  return {name: marker["seconds"] for marker, name in sorted(markers, key=lambda m: m[0]["finished_at"])}


def _strip_log_prefix(line):
  """'I1123 14:34:49.749860 1400 run_hooks.py:66] text' -> 'text'; 'INFO:tensorflow:text' -> 'text'."""
  line = re.sub(r"^[IWE]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] ", "", line)
  return re.sub(r"^(INFO|WARNING):tensorflow:", "", line)


def _tail(path, lines):
  with open(path, encoding="utf-8", errors="replace") as f:
    return "".join(f.readlines()[-lines:])


def python_command(module, *args):
  """argv for `python -m module args` with this interpreter."""
  return [sys.executable, "-m", module, *args]
