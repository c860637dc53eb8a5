"""Persistent benchmark workers: each side of a comparison in its own process, timed on command.

TensorFlow and torch in one process spin their thread pools against each other, so the numbers of
the two were untrustworthy. Here each side lives in a worker subprocess: it builds its model, then
waits on a pipe for "run N steps" and answers with the elapsed seconds. The parent
(`compare.interleaved`) alternates rounds between two workers, so both see the same machine state,
while only one of them computes at a time (the idle one blocks reading its pipe).

Protocol, one JSON object per line on the worker's stdin and (a private copy of) its stdout:
  {"build": "MODULE:FACTORY", "kwargs": {...}}  -> {"ready": true, "info": {...}}
      releases the previous model, imports MODULE from bench/ and calls FACTORY(**kwargs); `info` is
      the model's optional `info` dict (FLOPs per step, file sizes ...);
  {"run": N}        -> {"seconds": wall-clock seconds of N calls of model.step()}
  {"peak_rss": 1}   -> {"peak_rss_mb": the process's peak resident set size so far}
Any exception is answered with {"error": traceback}; end of stdin ends the worker.
"""

import gc
import importlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
_STDERR_TAIL = 3000  # characters of a failed worker's stderr shown in the error


class WorkerError(RuntimeError):
  """A worker failed to build its model or to run; the message holds its traceback / stderr."""


class Worker:
  """Parent side of one worker process; `build` a model in it, then `run` steps.

  `build` only sends the command: call `wait_ready()` before timing (two workers can build at once,
  which is harmless before any timing starts).
  """

  def __init__(self, label):
    self.label = label
    self.info = None
    self._building = None
    self._stderr = tempfile.TemporaryFile(mode="w+")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    self._process = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "workers.py")], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=env)

  def build(self, factory, **kwargs):
    """Starts building `factory(**kwargs)` ("module:function") in place of the current model."""
    self.info = None
    self._building = factory
    self._send({"build": factory, "kwargs": kwargs})
    return self

  def wait_ready(self):
    """Waits for the model being built; returns self (its `info` set)."""
    if self._building is None:
      raise WorkerError(f"{self.label} worker: nothing was built")
    if self.info is None:
      self.info = self._receive(f"building {self._building}")["info"]
    return self

  def run(self, steps):
    """Seconds the worker took for `steps` steps (measured inside the worker)."""
    return self._command({"run": int(steps)}, f"running {self._building}")["seconds"]

  def peak_rss_mb(self):
    return self._command({"peak_rss": 1}, "reading its peak RSS")["peak_rss_mb"]

  def close(self):
    if self._process.poll() is None:
      self._process.stdin.close()
      try:
        self._process.wait(timeout=60)
      except subprocess.TimeoutExpired:
        self._process.kill()
        self._process.wait()
    self._process.stdout.close()
    self._stderr.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  def _command(self, message, doing):
    self.wait_ready()
    self._send(message)
    return self._receive(doing)

  def _send(self, message):
    try:
      self._process.stdin.write(json.dumps(message) + "\n")
      self._process.stdin.flush()
    except BrokenPipeError:
      pass  # the worker died; _receive reports why

  def _receive(self, doing):
    line = self._process.stdout.readline()
    if not line:
      self._process.wait()
      raise WorkerError(f"{self.label} worker exited (code {self._process.returncode}) while "
                        f"{doing}; its stderr ends with:\n{self._stderr_tail()}")
    reply = json.loads(line)
    if "error" in reply:
      raise WorkerError(f"{self.label} worker failed while {doing}:\n{reply['error']}")
    return reply

  def _stderr_tail(self):
    self._stderr.flush()
    self._stderr.seek(0)
    return self._stderr.read()[-_STDERR_TAIL:]


def wait_all(workers):
  """Waits until every worker has built its model."""
  for worker in workers:
    worker.wait_ready()


# -- worker side -----------------------------------------------------------------------------------
def _serve(requests, replies):
  def reply(message):
    replies.write(json.dumps(message) + "\n")
    replies.flush()

  model = None
  for line in requests:
    try:
      command = json.loads(line)
      if "build" in command:
        # Free the previous model (its session, tensors) before the next one is built.
        if hasattr(model, "close"):
          model.close()
        model = None
        gc.collect()
        module_name, function_name = command["build"].split(":")
        model = getattr(importlib.import_module(module_name), function_name)(**command["kwargs"])
        reply({"ready": True, "info": getattr(model, "info", None) or {}})
      elif "run" in command:
        start = time.perf_counter()
        for _ in range(command["run"]):
          model.step()
        reply({"seconds": time.perf_counter() - start})
      elif "peak_rss" in command:
        reply({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
      else:
        reply({"error": f"unknown command {command!r}"})
    except Exception:  # pylint: disable=broad-except
      reply({"error": traceback.format_exc()})


def main():
  # The protocol gets a private copy of stdout; fd 1 then points at stderr, so whatever the libraries
  # print (C++ logging, progress bars) cannot corrupt the replies.
  replies = os.fdopen(os.dup(1), "w")
  os.dup2(2, 1)
  sys.stdout = sys.stderr
  sys.path.insert(0, HERE)
  _serve(sys.stdin, replies)


if __name__ == "__main__":
  main()
