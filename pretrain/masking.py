"""Masked-LM targets by whole-word groups: BERT's `create_masked_lm_predictions`.

Candidates are groups of token positions (a token plus the continuation tokens after it), taken in
random order; whole groups are taken while they fit in round(len(tokens) * masked_lm_prob)
predictions (capped at max_predictions_per_seq). Each chosen token becomes [MASK] 80% of the time, a
random token 10%, and stays itself 10%, decided token by token as in the original. [CLS] and [SEP]
are never candidates.
"""

import collections
import itertools
import operator

MaskedSequence = collections.namedtuple(
    "MaskedSequence", ["input_ids", "positions", "label_ids", "counts"])

# What happened to the chosen tokens of one sequence.
MaskingCounts = collections.namedtuple(
    "MaskingCounts", ["masked", "mask_token", "random_token", "kept", "words", "multi_token_words"])


def is_special_token(token):
  """[PAD], [CLS], [unused7], ...: tokens that never occur in text and are never a random replacement."""
  return len(token) > 2 and token.startswith("[") and token.endswith("]")


class Masker:
  """Chooses and applies masked-LM targets; all randomness comes from the `rng` passed in."""

  def __init__(self, vocab, masked_lm_prob, max_predictions_per_seq):
    self.masked_lm_prob = masked_lm_prob
    self.max_predictions_per_seq = max_predictions_per_seq
    self.mask_id = vocab["[MASK]"]
    self.special_ids = frozenset((vocab["[CLS]"], vocab["[SEP]"]))
    # The original draws the 10% random tokens from the whole vocab, [PAD] and [unused*] included;
    # we draw from real tokens only, so the model never sees an input token it cannot meet in text.
    self.replacement_ids = [i for t, i in vocab.items() if not is_special_token(t)]

  @staticmethod
  def _spans(continuation):
    """(starts, ends) of the runs "token + its continuation tokens" (C-speed: no per-token Python)."""
    starts = list(itertools.compress(range(len(continuation)), map(operator.not_, continuation)))
    ends = starts[1:]
    ends.append(len(continuation))
    return starts, ends

  def _group(self, ids, start, end):
    # A run that starts at [CLS]/[SEP] (they are never continuations) holds the special token alone,
    # or, if the caller marked the token after it as a continuation, that token and its word.
    if ids[start] in self.special_ids:
      start += 1
    return range(start, end)

  def candidate_groups(self, ids, continuation):
    """Ranges of positions, one per word, in order; [CLS] and [SEP] belong to none."""
    groups = (self._group(ids, s, e) for s, e in zip(*self._spans(continuation)))
    return [g for g in groups if g]

  def num_to_predict(self, num_tokens):
    return min(self.max_predictions_per_seq, max(1, int(round(num_tokens * self.masked_lm_prob))))

  def mask(self, ids, continuation, rng):
    """Masks one sequence.

    Args:
      ids: token ids of the whole sequence, [CLS] and [SEP] included, no padding.
      continuation: one bool per id, True where the token continues the word of the previous token
        (always False at [CLS] and [SEP]).
      rng: random.Random.
    Returns:
      MaskedSequence: input ids with the replacements, sorted positions, the original ids there, counts.
    """
    starts, ends = self._spans(continuation)
    num_to_predict = self.num_to_predict(len(ids))
    output = list(ids)
    chosen = []
    mask_token = random_token = words = multi_token_words = 0
    order = list(range(len(starts)))
    num_runs = len(order)
    for i in range(num_runs):
      if len(chosen) >= num_to_predict:
        break
      # The groups in random order, as after the original's full shuffle, but drawn one at a time
      # (Fisher-Yates from the front): we stop after ~15 of ~100. int(random() * n) is uniform up to
      # a bias of n / 2**53.
      j = i + int(rng.random() * (num_runs - i))
      order[i], order[j] = order[j], order[i]
      group = self._group(ids, starts[order[i]], ends[order[i]])
      if not group or len(chosen) + len(group) > num_to_predict:
        continue  # a whole word or nothing; a shorter word later may still fit
      words += 1
      multi_token_words += len(group) > 1
      for index in group:
        if rng.random() < 0.8:
          output[index] = self.mask_id
          mask_token += 1
        elif rng.random() < 0.5:
          pass  # keep the original token
        else:
          output[index] = self.replacement_ids[rng.randint(0, len(self.replacement_ids) - 1)]
          random_token += 1
        chosen.append(index)
    chosen.sort()
    counts = MaskingCounts(len(chosen), mask_token, random_token, len(chosen) - mask_token - random_token,
                           words, multi_token_words)
    return MaskedSequence(output, chosen, [ids[i] for i in chosen], counts)
