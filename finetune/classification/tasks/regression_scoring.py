"""Host-side scoring of regression predictions: Pearson and Spearman correlation, mean squared error.

Spearman is Pearson on ranks, with tied values given the mean of the ranks they span (as
scipy.stats.spearmanr does). A correlation with a constant side is undefined: it is reported as NaN, not
0, so a collapsed model cannot pass for an uncorrelated one (checkpoint selection ranks NaN last,
finetune/core/checkpoint_scoring.py).
"""

import math

import numpy as np

# The metric that picks the best checkpoint: STS-B results are usually quoted as Spearman correlation
# (SentEval, CoSENT), and it does not reward a model for matching the score scale.
BEST_METRIC = "spearman"


def average_ranks(values):
  """1-based ranks of `values` [N]; tied values share the mean of the ranks they occupy."""
  values = np.asarray(values, dtype=np.float64).reshape(-1)
  order = np.argsort(values, kind="stable")
  sorted_values = values[order]
  # Start index of each run of equal values in sorted order, and the run each position belongs to.
  starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
  ends = np.r_[starts[1:], len(values)]
  run_of = np.repeat(np.arange(len(starts)), ends - starts)
  mean_rank = (starts + ends + 1) / 2.0  # mean of the ranks starts+1 .. ends
  ranks = np.empty(len(values), dtype=np.float64)
  ranks[order] = mean_rank[run_of]
  return ranks


def pearson(x, y):
  """Pearson correlation of two [N] sequences; NaN if either is constant or N < 2."""
  x = np.asarray(x, dtype=np.float64).reshape(-1)
  y = np.asarray(y, dtype=np.float64).reshape(-1)
  if x.shape != y.shape:
    raise ValueError(f"pearson: {x.shape[0]} values against {y.shape[0]}")
  if len(x) < 2:
    return math.nan
  dx, dy = x - x.mean(), y - y.mean()
  denominator = math.sqrt(float(np.dot(dx, dx)) * float(np.dot(dy, dy)))
  if denominator == 0.0:
    return math.nan
  return float(np.clip(np.dot(dx, dy) / denominator, -1.0, 1.0))


def spearman(x, y):
  """Spearman rank correlation (ties averaged) of two [N] sequences; NaN if either is constant."""
  return pearson(average_ranks(x), average_ranks(y))


class RegressionScorer:
  """Accumulates (gold target, predicted score) of real examples and reports correlation and error.

  Example:
    scorer = RegressionScorer()
    scorer.update(targets, predictions)  # [B] float each
    scorer.results()  # {"pearson", "spearman", "mse", "loss", "num_examples"}
  """
  best_metric = BEST_METRIC

  def __init__(self):
    self._gold, self._predicted = [], []

  def update(self, targets, predictions):
    targets = np.asarray(targets, dtype=np.float64).reshape(-1)
    predictions = np.asarray(predictions, dtype=np.float64).reshape(-1)
    if targets.shape != predictions.shape:
      raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets")
    self._gold.append(targets)
    self._predicted.append(predictions)

  def results(self):
    if not self._gold:
      raise ValueError("no examples were scored")
    gold, predicted = np.concatenate(self._gold), np.concatenate(self._predicted)
    mse = float(np.mean((predicted - gold) ** 2))
    return {"pearson": pearson(predicted, gold), "spearman": spearman(predicted, gold), "mse": mse,
            "loss": mse, "num_examples": int(len(gold))}
