"""Entity-level precision, recall and F1 as conlleval (and seqeval's default mode) compute them.

An entity counts as correct only if the prediction has one with the same start, end and type. Precision
is correct / predicted, recall correct / gold, F1 their harmonic mean (0 when both are 0), each over all
types together (micro average, conlleval's "overall") and per type.
"""

import collections

from finetune.tagging import entities as entities_lib


def _prf(correct, predicted, gold):
  precision = correct / predicted if predicted else 0.0
  recall = correct / gold if gold else 0.0
  f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
  return precision, recall, f1


class EntityScorer:
  """Accumulates gold and predicted entities sentence by sentence.

  Example:
    scorer = EntityScorer()
    scorer.update_tags(["B-PER", "I-PER", "O"], ["B-PER", "I-PER", "O"])   # or update(gold, predicted)
    scorer.results()  # {"f1": 1.0, "precision": 1.0, "recall": 1.0, "PER_f1": 1.0, ...}
  """

  def __init__(self, entity_types=()):
    """entity_types: reported even when no gold or predicted entity has them (scores 0)."""
    self._counts = collections.defaultdict(lambda: [0, 0, 0])  # type -> [correct, predicted, gold]
    for entity_type in entity_types:
      self._counts[entity_type] = [0, 0, 0]
    self.num_sentences = 0

  def update(self, gold, predicted):
    """Entities of one sentence (any hashable (start, end, type) triples)."""
    gold, predicted = set(map(tuple, gold)), set(map(tuple, predicted))
    for entity in gold & predicted:
      self._counts[entity[2]][0] += 1
    for entity in predicted:
      self._counts[entity[2]][1] += 1
    for entity in gold:
      self._counts[entity[2]][2] += 1
    self.num_sentences += 1

  def update_tags(self, gold_tags, predicted_tags):
    """Tag sequences of one sentence (same length), chunked by conlleval's rules."""
    if len(gold_tags) != len(predicted_tags):
      raise ValueError(f"{len(gold_tags)} gold tags but {len(predicted_tags)} predicted")
    self.update(entities_lib.chunks(gold_tags), entities_lib.chunks(predicted_tags))

  def results(self):
    """Overall precision/recall/f1 and per type `<type>_precision` ... plus the counts."""
    totals = [sum(c[i] for c in self._counts.values()) for i in range(3)]
    precision, recall, f1 = _prf(*totals)
    results = {"precision": precision, "recall": recall, "f1": f1,
               "num_sentences": self.num_sentences, "num_gold_entities": totals[2],
               "num_predicted_entities": totals[1], "num_correct_entities": totals[0]}
    for entity_type in sorted(self._counts):
      type_p, type_r, type_f1 = _prf(*self._counts[entity_type])
      results.update({f"{entity_type}_precision": type_p, f"{entity_type}_recall": type_r,
                      f"{entity_type}_f1": type_f1})
    return results
