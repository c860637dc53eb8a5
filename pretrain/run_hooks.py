"""Run-time pieces of pretraining: checkpoints that are never rewritten and the eval results file.
(The progress line, steps/s, examples/s and time left, is mobilebert.run_config.ProgressHook.)"""

import os

import tensorflow.compat.v1 as tf


class KeepingCheckpointSaverHook(tf.train.CheckpointSaverHook):
  """The Estimator's checkpoint saver, except that it never rewrites an existing checkpoint.

  A resumed run would otherwise save again, at start-up, the step it restored, replacing the files
  the previous run wrote (same values, new files). Given to `train(hooks=...)`, it replaces the
  saver the Estimator would add.
  """

  def _save(self, session, step):
    prefix = os.path.join(self._checkpoint_dir, f"model.ckpt-{int(step)}")
    # Files the `checkpoint` state does not list are from a run killed inside its save: written again.
    state = tf.train.get_checkpoint_state(self._checkpoint_dir)
    recorded = state is not None and any(
        os.path.basename(p) == os.path.basename(prefix)
        for p in [state.model_checkpoint_path, *state.all_model_checkpoint_paths])
    if recorded and tf.io.gfile.exists(prefix + ".index"):
      tf.logging.info("Checkpoint for step %d exists; kept as written", step)
      return False
    return super()._save(session, step)


def write_results(path, result):
  """Writes `key = value` lines, sorted, to `path` atomically (temporary name, then rename)."""
  lines = [f"{key} = {result[key]}\n" for key in sorted(result)]
  for line in lines:
    tf.logging.info("  %s", line.rstrip())
  temp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
  with tf.io.gfile.GFile(temp, "w") as writer:
    writer.write("".join(lines))
  tf.io.gfile.rename(temp, path, overwrite=True)
