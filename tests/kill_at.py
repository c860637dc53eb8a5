"""Runs an entry point (`python kill_at.py POINT module args...`) and SIGKILLs itself at POINT.

POINT is one of
  none        run to the end
  startup:K   when the K-th training input pipeline is built (graph built, no step of it run yet)
  step:N      a few milliseconds into the session run that takes global step N to N+1
  save:N      when checkpoint N has been written but before the `checkpoint` state file names it
  saving:N    a millisecond after the save of checkpoint N starts (wherever that lands)
A kill -9 leaves no chance to clean up: this is what a preempted machine or an OOM kill does.
"""

import os
import runpy
import signal
import sys
import threading
import time

import tensorflow.compat.v1 as tf
from tensorflow.python.checkpoint import checkpoint_management

from mobilebert import input_pipeline, run_config


def _kill(after_seconds=0.0):
  def kill():
    time.sleep(after_seconds)
    os.kill(os.getpid(), signal.SIGKILL)
  if after_seconds:
    threading.Thread(target=kill, daemon=True).start()
  else:
    kill()


def _install(point):
  kind, _, value = point.partition(":")
  value = int(value or 0)
  if kind == "startup":
    original = input_pipeline.training_records
    calls = []

    def training_records(*args, **kwargs):
      calls.append(1)
      if len(calls) == value:
        _kill()
      return original(*args, **kwargs)
    input_pipeline.training_records = training_records
  elif kind == "step":
    original_before = run_config.ProgressHook.before_run

    def before_run(self, run_context):
      if int(run_context.session.run(self._global_step)) == value:
        _kill(0.005)
      return original_before(self, run_context)
    run_config.ProgressHook.before_run = before_run
  elif kind in ("save", "saving"):
    suffix = f"model.ckpt-{value}"
    original_update = checkpoint_management.update_checkpoint_state_internal
    original_save = tf.train.Saver.save

    def update(save_dir, model_checkpoint_path, *args, **kwargs):
      if kind == "save" and model_checkpoint_path.endswith(suffix):
        _kill()
      return original_update(save_dir, model_checkpoint_path, *args, **kwargs)

    def save(self, sess, save_path, global_step=None, *args, **kwargs):
      step = sess.run(global_step) if tf.is_tensor(global_step) else global_step
      if kind == "saving" and step is not None and int(step) == value:
        _kill(0.001)
      return original_save(self, sess, save_path, global_step, *args, **kwargs)
    checkpoint_management.update_checkpoint_state_internal = update
    tf.train.Saver.save = save
  elif kind != "none":
    raise SystemExit(f"kill_at.py: unknown point {point!r}")


if __name__ == "__main__":
  _install(sys.argv[1])
  module = sys.argv[2]
  sys.argv = [module] + sys.argv[3:]
  runpy.run_module(module, run_name="__main__", alter_sys=True)
