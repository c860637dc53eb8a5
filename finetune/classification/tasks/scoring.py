"""Host-side scoring of classification predictions (accuracy, cross-entropy loss, macro-F1)."""

import numpy as np


class ClassificationScorer:
  """Accumulates (gold label id, log-probabilities) of real examples and reports the task's metrics.

  Example:
    scorer = ClassificationScorer(task.labels, report_macro_f1=task.is_pair)
    scorer.update(label_ids, log_probs)      # [B] int, [B, C] float
    scorer.results()  # {"accuracy": ..., "loss": ..., "macro_f1": ..., "num_examples": ...}
  """
  best_metric = "accuracy"  # what picks the best checkpoint

  def __init__(self, labels, report_macro_f1=False):
    self.labels = list(labels)
    self.report_macro_f1 = report_macro_f1
    self._gold, self._log_probs = [], []

  def update(self, label_ids, log_probs):
    label_ids = np.asarray(label_ids, dtype=np.int64).reshape(-1)
    log_probs = np.asarray(log_probs, dtype=np.float64).reshape(len(label_ids), -1)
    if log_probs.shape[1] != len(self.labels):
      raise ValueError(f"predictions have {log_probs.shape[1]} classes, the task has {len(self.labels)}")
    self._gold.append(label_ids)
    self._log_probs.append(log_probs)

  def results(self):
    if not self._gold:
      raise ValueError("no examples were scored")
    gold = np.concatenate(self._gold)
    log_probs = np.concatenate(self._log_probs)
    predicted = log_probs.argmax(axis=1)
    results = {
        "accuracy": float((predicted == gold).mean()),
        "loss": float(-log_probs[np.arange(len(gold)), gold].mean()),
        "num_examples": int(len(gold)),
    }
    if self.report_macro_f1:
      results["macro_f1"] = macro_f1(gold, predicted)
    return results


def macro_f1(gold, predicted):
  """Unweighted mean of per-class F1 over the classes that occur in gold or predictions."""
  gold, predicted = np.asarray(gold), np.asarray(predicted)
  scores = []
  for label in np.union1d(gold, predicted):
    true_positive = np.sum((predicted == label) & (gold == label))
    precision_denominator = np.sum(predicted == label)
    recall_denominator = np.sum(gold == label)
    precision = true_positive / precision_denominator if precision_denominator else 0.0
    recall = true_positive / recall_denominator if recall_denominator else 0.0
    scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
  return float(np.mean(scores))
