"""A tagging task: train/dev/test files in one format, the entity types, tag names and the scorer.

Files are `<data_dir>/<split>.conll` or `<split>.jsonl` (--data_format). The entity types are, in this
order of precedence, those a fine-tuned --output_dir was trained with, --labels, or the types found in
the training file (sorted). A dev or test entity of another type stops the run with the file named.
"""

import os

import tensorflow.compat.v1 as tf

from finetune.tagging import entities as entities_lib
from finetune.tagging import formats
from finetune.tagging.metric import EntityScorer
from mobilebert import cli
from mobilebert import text_encoding


class TaggingTask:
  """Reads and checks one data directory's sentences (each split read once)."""

  name = "tagging"

  def __init__(self, data_dir, data_format="conll", entity_types=(), encoding=text_encoding.DEFAULT):
    if data_format not in formats.FORMATS:
      raise cli.FlagError(f"--data_format={data_format}: expected one of {', '.join(formats.FORMATS)}")
    self.data_dir = data_dir
    self.data_format = data_format
    self.encoding = encoding
    self._entity_types = tuple(entity_types)
    self._read = {}

  def data_file(self, split):
    path = os.path.join(self.data_dir, f"{split}.{self.data_format}")
    if not tf.io.gfile.exists(path):
      raise formats.TaggingFileError(f"no {split} file: {path} not found (--data_dir, --data_format)")
    return path

  @property
  def entity_types(self):
    if not self._entity_types:
      found = {e.label for s in self.sentences("train") for e in s.entities}
      if not found:
        raise formats.TaggingFileError(f"{self.data_file('train')}: no entity in the training file")
      self._entity_types = tuple(sorted(found))
    return self._entity_types

  @property
  def tag_names(self):
    """The model's classes: `O`, then `B-X`, `I-X` per entity type."""
    return entities_lib.tag_names(self.entity_types)

  def sentences(self, split, require_labels=True):
    """TaggedSentences of a split; a labelled entity of an unknown type is an error."""
    key = (split, require_labels)
    if key not in self._read:
      path = self.data_file(split)
      sentences = formats.read_sentences(path, self.data_format, require_labels, self.encoding)
      if not sentences:
        raise formats.TaggingFileError(f"{path}: no sentences")
      if self._entity_types:
        known = set(self._entity_types)
        for sentence in sentences:
          unknown = {e.label for e in sentence.entities or ()} - known
          if unknown:
            raise formats.TaggingFileError(
                f"{path}: sentence {sentence.guid} has entity type(s) {sorted(unknown)}; the model's "
                f"types are {list(self._entity_types)}")
      self._read[key] = sentences
    return self._read[key]

  def scorer(self):
    return EntityScorer(self.entity_types)

  def signature(self):
    """What besides the data file's bytes changes the features (for cache keys)."""
    signature = {"task": self.name, "format": self.data_format, "tags": self.tag_names}
    if self.encoding != text_encoding.DEFAULT:  # keys of UTF-8 data stay as they were
      signature["encoding"] = self.encoding
    return signature
