"""Entities as character spans, BIO tags over units, and the conlleval chunk rules that join them.

A sentence is a text cut into *units* (characters, or the tokens of a CoNLL file's rows); an entity
covers whole units. Tags are IOB2 (`B-X` opens an entity of type X, `I-X` continues it, `O` is
outside). Reading tags back into entities follows conlleval (and seqeval's default mode): an `I-X`
after `O`, or after an entity of another type, opens a new entity instead of being an error, and a
change of type inside an entity (`B-PER I-LOC`) ends one entity and starts the next.
"""

from typing import NamedTuple, Optional, Tuple

OUTSIDE = "O"
BEGIN, INSIDE = "B", "I"


class Entity(NamedTuple):
  """Units [start, end) of a sentence, or characters [start, end) of its text, and the type."""
  start: int
  end: int
  label: str


class TaggedSentence(NamedTuple):
  """`units` are (start, end) character spans of `text`, in order; `entities` are over characters
  (None: the sentence carries no labels, e.g. a file to predict)."""
  guid: str
  text: str
  units: Tuple[Tuple[int, int], ...]
  entities: Optional[Tuple[Entity, ...]]


def tag_names(entity_types):
  """The model's output classes: `O`, then `B-X`, `I-X` for each type in the given order."""
  names = [OUTSIDE]
  for entity_type in entity_types:
    names += [f"{BEGIN}-{entity_type}", f"{INSIDE}-{entity_type}"]
  return names


def parse_tag(tag):
  """(prefix, type) of a tag: ("O", None), ("B", "PER"), ("I", "PER"); ValueError otherwise."""
  if tag == OUTSIDE:
    return OUTSIDE, None
  prefix, dash, entity_type = tag.partition("-")
  if prefix not in (BEGIN, INSIDE) or not dash or not entity_type:
    raise ValueError(f"tag {tag!r} is not O, B-<type> or I-<type>")
  return prefix, entity_type


def chunks(tags):
  """Entities (over tag positions) in a tag sequence, by conlleval's rules (see module doc)."""
  found, start, current = [], None, None
  for index, tag in enumerate(list(tags) + [OUTSIDE]):
    prefix, entity_type = parse_tag(tag)
    continues = prefix == INSIDE and entity_type == current
    if current is not None and not continues:
      found.append(Entity(start, index, current))
      current = None
    if prefix == BEGIN or (prefix == INSIDE and not continues):
      start, current = index, entity_type
  return found


def unit_tags(num_units, entities):
  """IOB2 tags of units for entities given over units (non-overlapping)."""
  tags = [OUTSIDE] * num_units
  for entity in entities:
    tags[entity.start] = f"{BEGIN}-{entity.label}"
    for index in range(entity.start + 1, entity.end):
      tags[index] = f"{INSIDE}-{entity.label}"
  return tags


def char_to_unit_entities(sentence):
  """The sentence's entities over unit indices (entity boundaries are unit boundaries)."""
  starts = {start: i for i, (start, _) in enumerate(sentence.units)}
  ends = {end: i + 1 for i, (_, end) in enumerate(sentence.units)}
  return [Entity(starts[e.start], ends[e.end], e.label) for e in sentence.entities]


def unit_to_char_entities(sentence, unit_entities):
  """Entities over units -> over characters of the sentence's text."""
  return [Entity(sentence.units[e.start][0], sentence.units[e.end - 1][1], e.label)
          for e in unit_entities]


def overlapping(entities):
  """The first pair of entities (sorted by start) that share a character, or None."""
  ordered = sorted(entities)
  for first, second in zip(ordered, ordered[1:]):
    if second.start < first.end:
      return first, second
  return None
