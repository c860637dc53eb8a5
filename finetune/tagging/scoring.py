"""Host-side scoring and prediction files of the tagger: window outputs -> unit tags -> entities.

The same functions serve the float checkpoint (Estimator predictions) and a TFLite model (arrays), so
the two are scored identically.
"""

import json

import numpy as np
from absl import logging

from finetune.core import checkpoint_scoring, runner as runner_lib
from finetune.tagging import alignment
from finetune.tagging import features as features_lib
from mobilebert import atomic_io

BEST_METRIC = "f1"


def predict_windows(runner, split, max_seq_length, batch_size, checkpoint_path):
  """(first_piece [N, T], probabilities [N, T, L]) of the real examples of a cached split, in order."""
  predictions = runner_lib.predict_records(
      runner, split.path, features_lib.feature_spec(max_seq_length), split.num_examples, batch_size,
      checkpoint_path, real_field="is_real_example")
  return (np.array([p["first_piece"] for p in predictions]),
          np.array([p["probabilities"] for p in predictions]))


def sentence_predictions(task, sentences, windows, first_piece, probabilities):
  """[(sentence, [(Entity over characters, probability)])] for every sentence."""
  per_unit = alignment.unit_probabilities(sentences, windows, first_piece, probabilities)
  return [(sentence, alignment.predicted_entities(sentence, unit_probs, task.tag_names))
          for sentence, unit_probs in zip(sentences, per_unit)]


def score(task, predictions):
  """The entity scorer's results for [(labelled sentence, predicted entities)]."""
  scorer = task.scorer()
  for sentence, found in predictions:
    scorer.update(sentence.entities, [entity for entity, _ in found])
  return scorer.results()


def score_checkpoint(runner, task, split, sentences, config, split_name, path):
  """One eval_history entry: entity precision/recall/F1 of checkpoint `path` on the cached split."""
  first_piece, probabilities = predict_windows(runner, split, config.max_seq_length,
                                               config.eval_batch_size, path)
  metrics = score(task, sentence_predictions(task, sentences, split.windows, first_piece,
                                             probabilities))
  results = checkpoint_scoring.history_entry(metrics, path, split_name, split.path)
  logging.info("%s at step %d: f1 %.4f precision %.4f recall %.4f", split_name,
               results["global_step"], results["f1"], results["precision"], results["recall"])
  return results


def entity_records(sentence, found):
  """JSON-ready entities: character offsets into the original text, the surface string, probability."""
  return [{"start": e.start, "end": e.end, "label": e.label, "text": sentence.text[e.start:e.end],
           "probability": round(p, 6)} for e, p in found]


def write_predictions(path, predictions):
  """predictions.jsonl: one line a sentence, {"id", "text", "entities": [...]}, in input order."""
  lines = [json.dumps({"id": sentence.guid, "text": sentence.text,
                       "entities": entity_records(sentence, found)}, ensure_ascii=False)
           for sentence, found in predictions]
  atomic_io.write_text(path, "\n".join(lines) + "\n")
