"""Scoring fine-tuned checkpoints on a dev split, for kinds that select the best one: every checkpoint
written, whether or not it is kept. The kind gives a function checkpoint -> metrics.

With --do_train --do_eval each checkpoint is scored the moment it is saved (`ScoreEachCheckpoint`, a
CheckpointSaverListener), before --keep_checkpoint_max can delete it (CPU and GPU; TPU runs score the
kept checkpoints after training). Checkpoints in --output_dir that
this run did not score (--do_eval alone, or those written before a resume) are scored afterwards, and
eval_history.json keeps the entries of earlier runs on the same eval records whose checkpoints are gone.
`best` is the best checkpoint of the whole history; `best_kept` the best one still on disk, which is
what --predict_checkpoint=best and --use_post_quantization use.
"""

import json
import math
import os
from typing import NamedTuple, Optional

import tensorflow.compat.v1 as tf
from absl import logging

from mobilebert import atomic_io, cli

EVAL_RESULTS = "eval_results.txt"
EVAL_HISTORY = "eval_history.json"


class RunReport(NamedTuple):
  """What a scored kind's run did: steps trained, the scored checkpoints (the best is `best`, picked by
  the metric `selected_by`), the predictions file written (None without --do_predict)."""
  num_train_steps: int
  eval_history: list
  best: Optional[dict]
  predictions_file: Optional[str]
  selected_by: str


def checkpoints_on_disk(output_dir):
  """Every checkpoint still listed in output_dir's state file and present, oldest first."""
  state = tf.train.get_checkpoint_state(output_dir)
  if state is None or not state.model_checkpoint_path:
    return []
  paths = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
  return [p for p in paths if tf.io.gfile.exists(p + ".index")]


def history_entry(metrics, checkpoint, split_name, records_path):
  """One eval_history.json entry: the kind's metrics for `checkpoint` and where they come from."""
  return dict(metrics, checkpoint=checkpoint, split=split_name,
              eval_records=os.path.basename(records_path),
              global_step=int(tf.train.load_variable(checkpoint, "global_step")))


class ScoreEachCheckpoint(tf.estimator.CheckpointSaverListener):
  """Scores every checkpoint as soon as the Estimator has written it; `scored` lists the entries."""

  def __init__(self, output_dir, score_fn):
    self.output_dir = output_dir
    self.score_fn = score_fn
    self.scored = []

  def after_save(self, session, global_step_value):
    del session
    # The Estimator saves to <model_dir>/model.ckpt-<step>.
    self.scored.append(self.score_fn(os.path.join(self.output_dir, f"model.ckpt-{global_step_value}")))


def _earlier_entries(output_dir, eval_records):
  """Entries of an existing eval_history.json scored on the same eval records (same data and vocab)."""
  path = os.path.join(output_dir, EVAL_HISTORY)
  if not tf.io.gfile.exists(path):
    return []
  with tf.io.gfile.GFile(path, "r") as f:
    try:
      entries = json.loads(f.read()).get("checkpoints", [])
    except ValueError:
      logging.warning("%s is not JSON; starting a new history", path)
      return []
  return [e for e in entries if isinstance(e, dict) and e.get("eval_records") == eval_records]


def score_order(value):
  """A sort key for a metric where higher is better: NaN (an undefined score, e.g. a correlation of
  constant predictions) ranks below every number."""
  return -math.inf if value is None or math.isnan(value) else value


def _best(history, selected_by):
  # Earliest checkpoint wins ties: fewer steps, same score.
  return (max(history, key=lambda r: (score_order(r[selected_by]), -r["global_step"])) if history
          else None)


def evaluate_checkpoints(score_fn, output_dir, eval_records, selected_by, scored_this_run=()):
  """The history of every checkpoint scored on the `eval_records` file, oldest first, and
  (best, best_kept) by the metric `selected_by` (higher is better).

  score_fn(checkpoint) -> a history entry: the metrics, checkpoint, global_step, eval_records (the
  file's base name). scored_this_run: entries ScoreEachCheckpoint made; on-disk checkpoints not among
  them are scored now.
  """
  # Compared by name: every checkpoint is in output_dir, however the state file spells the path.
  done = {os.path.basename(entry["checkpoint"]) for entry in scored_this_run}
  on_disk = checkpoints_on_disk(output_dir)
  kept = {os.path.basename(path) for path in on_disk}
  fresh = list(scored_this_run) + [score_fn(p) for p in on_disk if os.path.basename(p) not in done]
  if not fresh:
    raise cli.FlagError(f"--output_dir={output_dir} holds no checkpoint to score; run --do_train "
                        "first")
  by_step = {e["global_step"]: e for e in _earlier_entries(output_dir, os.path.basename(eval_records))}
  by_step.update((e["global_step"], e) for e in fresh)
  history = [by_step[step] for step in sorted(by_step)]
  best = _best(history, selected_by)
  best_kept = _best([e for e in history if os.path.basename(e["checkpoint"]) in kept], selected_by)
  if best_kept is not None and best_kept is not best:
    logging.warning("the best checkpoint (step %d, %s %.4f) was deleted by --keep_checkpoint_max; "
                    "the best one kept is step %d", best["global_step"], selected_by,
                    best[selected_by], best_kept["global_step"])
  return history, best, best_kept


def write_eval_results(output_dir, history, best, best_kept, selected_by):
  """eval_results.txt (latest checkpoint, then the best one) and eval_history.json."""
  latest = history[-1]
  lines = [f"{key} = {latest[key]}" for key in sorted(latest)]
  lines += [f"best_checkpoint = {best['checkpoint']}", f"best_global_step = {best['global_step']}"]
  lines += [f"best_{key} = {best[key]}" for key in sorted(best) if isinstance(best[key], float)]
  if best_kept is not best:
    lines += [f"best_kept_checkpoint = {best_kept['checkpoint']}"]
  atomic_io.write_text(os.path.join(output_dir, EVAL_RESULTS), "\n".join(lines) + "\n")
  history_json = {"selected_by": selected_by, "best": best, "best_kept": best_kept,
                  "checkpoints": history}
  atomic_io.write_text(os.path.join(output_dir, EVAL_HISTORY), json.dumps(history_json, indent=1) + "\n")


def best_kept_checkpoint(output_dir):
  """The best checkpoint still on disk, as eval_history.json names it (for --predict_checkpoint=best)."""
  path = os.path.join(output_dir, EVAL_HISTORY)
  if not tf.io.gfile.exists(path):
    raise cli.FlagError(f"--predict_checkpoint=best needs {path}: run --do_eval first")
  with tf.io.gfile.GFile(path, "r") as f:
    history = json.loads(f.read())
  return (history.get("best_kept") or history["best"])["checkpoint"]
