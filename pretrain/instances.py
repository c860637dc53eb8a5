"""Cutting tokenized documents into training sequences (before masking).

Two modes (see data_config.INSTANCE_MODES):
- sentence_pair: the original `create_instances_from_document`, kept step for step: a target length
  (shorter with probability short_seq_prob, drawn once per document as in the original), a chunk of
  sentences split at a random point into A and B, and half the time B replaced by text from a random
  other document (`is_random_next`), the unused sentences going back to the document.
- contiguous: RoBERTa's FULL-SENTENCES, whole sentences packed in order, crossing document boundaries,
  into one segment; only a sentence longer than a whole sequence is cut (across instances).

A document is a list of TokenizedSentence(ids, continuation) with at least one token each.
"""

import collections

# ids/continuation include [CLS] and [SEP]; segment_ids has the same length.
UnmaskedInstance = collections.namedtuple(
    "UnmaskedInstance", ["ids", "continuation", "segment_ids", "is_random_next"])


class SpecialIds(collections.namedtuple("SpecialIds", ["cls", "sep"])):
  """Ids of [CLS] and [SEP] in the vocab."""

  @classmethod
  def from_vocab(cls, vocab):
    return cls(vocab["[CLS]"], vocab["[SEP]"])


def _draw_target_length(max_num_tokens, short_seq_prob, rng):
  # Short sequences now and then, so that the model also sees lengths it meets when fine-tuning.
  if rng.random() < short_seq_prob:
    return rng.randint(2, max_num_tokens)
  return max_num_tokens


def _truncate_pair(a_ids, a_cont, b_ids, b_cont, max_num_tokens, rng):
  """Shortens the longer of A and B, from the front or the back at random, until both fit."""
  while len(a_ids) + len(b_ids) > max_num_tokens:
    ids, cont = (a_ids, a_cont) if len(a_ids) > len(b_ids) else (b_ids, b_cont)
    # Cutting from both ends avoids a bias towards always-complete sentence starts.
    index = 0 if rng.random() < 0.5 else -1
    del ids[index]
    del cont[index]


def _pair_instance(a_ids, a_cont, b_ids, b_cont, is_random_next, special):
  ids = [special.cls] + a_ids + [special.sep] + b_ids + [special.sep]
  continuation = [False] + a_cont + [False] + b_cont + [False]
  segment_ids = [0] * (len(a_ids) + 2) + [1] * (len(b_ids) + 1)
  return UnmaskedInstance(ids, continuation, segment_ids, is_random_next)


def sentence_pair_instances(documents, document_index, max_num_tokens, short_seq_prob, rng, special):
  """Yields the UnmaskedInstances of documents[document_index] (A/B pairs for next-sentence prediction).

  Random B text comes from `documents` (the caller's pool of documents).
  """
  document = documents[document_index]
  target_seq_length = _draw_target_length(max_num_tokens, short_seq_prob, rng)
  current_chunk = []
  current_length = 0
  i = 0
  while i < len(document):
    current_chunk.append(document[i])
    current_length += len(document[i].ids)
    if i == len(document) - 1 or current_length >= target_seq_length:
      a_end = rng.randint(1, len(current_chunk) - 1) if len(current_chunk) >= 2 else 1
      a_ids, a_cont = _concat(current_chunk[:a_end])
      if len(current_chunk) == 1 or rng.random() < 0.5:
        is_random_next = True
        b_ids, b_cont = _random_continuation(documents, document_index,
                                             target_seq_length - len(a_ids), rng)
        # The sentences not used for B go back, to start the next chunk.
        i -= len(current_chunk) - a_end
      else:
        is_random_next = False
        b_ids, b_cont = _concat(current_chunk[a_end:])
      _truncate_pair(a_ids, a_cont, b_ids, b_cont, max_num_tokens, rng)
      yield _pair_instance(a_ids, a_cont, b_ids, b_cont, is_random_next, special)
      current_chunk = []
      current_length = 0
    i += 1


def _random_continuation(documents, document_index, target_b_length, rng):
  """Sentences from a random start in a random other document, up to target_b_length tokens."""
  # Ten tries for another document, as the original; a pool of one document reuses it.
  for _ in range(10):
    random_index = rng.randint(0, len(documents) - 1)
    if random_index != document_index:
      break
  random_document = documents[random_index]
  random_start = rng.randint(0, len(random_document) - 1)
  b_ids, b_cont = [], []
  for sentence in random_document[random_start:]:
    b_ids.extend(sentence.ids)
    b_cont.extend(sentence.continuation)
    if len(b_ids) >= target_b_length:
      break
  return b_ids, b_cont


def _concat(sentences):
  ids, cont = [], []
  for sentence in sentences:
    ids.extend(sentence.ids)
    cont.extend(sentence.continuation)
  return ids, cont


def contiguous_instances(documents, max_num_tokens, short_seq_prob, rng, special):
  """Yields single-segment UnmaskedInstances packed from all `documents`, in a random document order."""
  order = list(range(len(documents)))
  rng.shuffle(order)
  target = _draw_target_length(max_num_tokens, short_seq_prob, rng)
  ids, cont = [], []
  for document_index in order:
    for sentence in documents[document_index]:
      if ids and len(ids) + len(sentence.ids) > target:
        yield _single_instance(ids, cont, special)
        ids, cont = [], []
        target = _draw_target_length(max_num_tokens, short_seq_prob, rng)
      ids.extend(sentence.ids)
      cont.extend(sentence.continuation)
      while len(ids) > target:  # one sentence longer than the room: cut it, keep the rest
        yield _single_instance(ids[:target], cont[:target], special)
        ids, cont = ids[target:], cont[target:]
        target = _draw_target_length(max_num_tokens, short_seq_prob, rng)
  if ids:
    yield _single_instance(ids, cont, special)


def _single_instance(ids, cont, special):
  ids = [special.cls] + ids + [special.sep]
  continuation = [False] + cont + [False]
  return UnmaskedInstance(ids, continuation, [0] * len(ids), False)
