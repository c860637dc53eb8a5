"""Units (characters, or CoNLL tokens) to word pieces and back: BERT's NER recipe.

Each unit is tokenized on its own; its tag goes on its first piece and its other pieces are left out of
the loss and of scoring (`first_piece` 0). A unit the tokenizer drops entirely (a space, a control
character) is fed as [UNK], so every unit keeps a position and a prediction. A sentence longer than
max_seq_length - 2 pieces is cut into windows of whole consecutive units (no overlap), each its own
example; predictions of the windows are put back together before entities are read, so an entity cut
by a window edge can still come out whole. A single unit of more pieces than a window holds is cut to
the window (its first piece, which carries the tag, is kept).
"""

from typing import List, NamedTuple

import numpy as np

from finetune.tagging import entities as entities_lib

UNKNOWN = "[UNK]"


class Window(NamedTuple):
  """Units [first_unit, first_unit + num_units) of sentence `sentence_index`, as one example."""
  sentence_index: int
  first_unit: int
  num_units: int


class WindowFeatures(NamedTuple):
  """One example; lists of max_seq_length. tag_ids 0 (`O`) where first_piece is 0."""
  input_ids: list
  input_mask: list
  segment_ids: list
  tag_ids: list
  first_piece: list
  is_real_example: int = 1


def unit_pieces(sentence, tokenizer):
  """Word pieces of each unit of the sentence (at least one each)."""
  return [tokenizer.tokenize(sentence.text[start:end]) or [UNKNOWN] for start, end in sentence.units]


def split_windows(pieces, max_pieces):
  """[(first_unit, num_units)] covering all units in order, each of at most max_pieces pieces."""
  windows, start, used = [], 0, 0
  for index, unit in enumerate(pieces):
    size = min(len(unit), max_pieces)
    if index > start and used + size > max_pieces:
      windows.append((start, index - start))
      start, used = index, 0
    used += size
  windows.append((start, len(pieces) - start))
  return windows


def sentence_tag_ids(sentence, tag_map):
  """Tag id of every unit (all `O` for a sentence without labels)."""
  if sentence.entities is None:
    return [0] * len(sentence.units)
  unit_entities = entities_lib.char_to_unit_entities(sentence)
  return [tag_map[tag] for tag in entities_lib.unit_tags(len(sentence.units), unit_entities)]


def featurize(sentence, sentence_index, tokenizer, tag_map, max_seq_length):
  """[(Window, WindowFeatures)] of one sentence: `[CLS] pieces [SEP]`, zero-padded."""
  pieces = unit_pieces(sentence, tokenizer)
  tag_ids = sentence_tag_ids(sentence, tag_map)
  results = []
  for first, count in split_windows(pieces, max_seq_length - 2):
    tokens, tags, first_piece = ["[CLS]"], [0], [0]
    for unit in range(first, first + count):
      unit_tokens = pieces[unit][:max_seq_length - 2]
      tokens += unit_tokens
      tags += [tag_ids[unit]] + [0] * (len(unit_tokens) - 1)
      first_piece += [1] + [0] * (len(unit_tokens) - 1)
    tokens.append("[SEP]")
    tags.append(0)
    first_piece.append(0)
    padding = [0] * (max_seq_length - len(tokens))
    ids = tokenizer.convert_tokens_to_ids(tokens)
    results.append((Window(sentence_index, first, count), WindowFeatures(
        ids + padding, [1] * len(ids) + padding, [0] * max_seq_length, tags + padding,
        first_piece + padding)))
  return results


def padding_features(max_seq_length):
  zeros = [0] * max_seq_length
  return WindowFeatures(zeros, zeros, zeros, zeros, zeros, is_real_example=0)


def unit_probabilities(sentences, windows, first_piece, probabilities):
  """[U, L] probabilities of each sentence's units, from the windows' outputs.

  Args:
    windows: Window of each example, in order.
    first_piece: [N, T] 0/1 of each example.
    probabilities: [N, T, L] of each example.
  Returns:
    a list, one [U, L] array per sentence.
  """
  num_tags = np.shape(probabilities)[-1]
  per_sentence: List[np.ndarray] = [np.zeros((len(s.units), num_tags), np.float32) for s in sentences]
  for window, mask, probs in zip(windows, first_piece, probabilities):
    positions = np.flatnonzero(np.asarray(mask))
    if len(positions) != window.num_units:
      raise ValueError(f"example of sentence {window.sentence_index} has {len(positions)} first "
                       f"pieces for {window.num_units} units")
    per_sentence[window.sentence_index][window.first_unit:window.first_unit + window.num_units] = \
        np.asarray(probs)[positions]
  return per_sentence


def predicted_entities(sentence, probabilities, tag_names):
  """Entities over characters of the sentence, with their probability, from [U, L] unit probabilities.

  The tag of a unit is its most probable one; entities are read by conlleval's rules; an entity's
  probability is the mean, over its units, of the probability of the unit's tag.
  """
  best = np.argmax(probabilities, axis=-1)
  tags = [tag_names[i] for i in best]
  found = []
  for unit_entity in entities_lib.chunks(tags):
    (entity,) = entities_lib.unit_to_char_entities(sentence, [unit_entity])
    unit_probs = probabilities[np.arange(unit_entity.start, unit_entity.end),
                               best[unit_entity.start:unit_entity.end]]
    found.append((entity, float(np.mean(unit_probs))))
  return found
