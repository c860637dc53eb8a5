"""Run-time pieces of pretraining: checkpoints that are never rewritten, a steps/s and examples/s log
line, and the eval results file."""

import os
import time

import tensorflow.compat.v1 as tf


class KeepingCheckpointSaverHook(tf.train.CheckpointSaverHook):
  """The Estimator's checkpoint saver, except that it never rewrites an existing checkpoint.

  A resumed run would otherwise save again, at start-up, the step it restored, replacing the files
  the previous run wrote (same values, new files). Given to `train(hooks=...)`, it replaces the
  saver the Estimator would add.
  """

  def _save(self, session, step):
    prefix = os.path.join(self._checkpoint_dir, f"model.ckpt-{int(step)}")
    if tf.io.gfile.exists(prefix + ".index"):
      tf.logging.info("Checkpoint for step %d exists; kept as written", step)
      return False
    return super()._save(session, step)


class ThroughputHook(tf.train.SessionRunHook):
  """Logs `<name> step S: X steps/s, Y examples/s` every `every_n_steps` global steps.

  Rates are measured from the global step, so they hold on TPU too, where one session run is a loop
  of iterations_per_loop steps. The first interval includes graph warm-up and reads slower.
  """

  def __init__(self, batch_size, every_n_steps=100, name="train"):
    self._batch_size = batch_size
    self._every_n_steps = max(1, every_n_steps)
    self._name = name
    self.rates = []  # (step, steps/s, examples/s) of every line logged, for tests and tools

  def begin(self):
    self._step_tensor = tf.train.get_global_step()

  def after_create_session(self, session, coord):
    self._last_step = int(session.run(self._step_tensor))
    self._last_time = time.time()

  def before_run(self, run_context):
    return tf.train.SessionRunArgs(self._step_tensor)

  def after_run(self, run_context, run_values):
    # The fetched value may be read before or after this run's increment; +1 would be as wrong as 0
    # half the time, and the difference vanishes over an interval.
    self._maybe_log(int(run_values.results), force=False)

  def end(self, session):
    self._maybe_log(int(session.run(self._step_tensor)), force=True)

  def _maybe_log(self, step, force):
    steps = step - self._last_step
    if steps <= 0 or (steps < self._every_n_steps and not force):
      return
    now = time.time()
    seconds = max(now - self._last_time, 1e-9)
    steps_per_sec = steps / seconds
    examples_per_sec = steps_per_sec * self._batch_size
    self.rates.append((step, steps_per_sec, examples_per_sec))
    tf.logging.info("%s step %d: %.3f steps/s, %.1f examples/s", self._name, step, steps_per_sec,
                    examples_per_sec)
    self._last_step, self._last_time = step, now


def write_results(path, result):
  """Writes `key = value` lines, sorted, to `path` atomically (temporary name, then rename)."""
  lines = [f"{key} = {result[key]}\n" for key in sorted(result)]
  for line in lines:
    tf.logging.info("  %s", line.rstrip())
  temp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
  with tf.io.gfile.GFile(temp, "w") as writer:
    writer.write("".join(lines))
  tf.io.gfile.rename(temp, path, overwrite=True)
