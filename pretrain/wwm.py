"""Whole-word grouping for masking: BERT tokens plus a mark on each token that continues a word.

Token ids are exactly those of `mobilebert.tokenization.FullTokenizer` (every CJK character its own
token). A token is a *continuation* when it belongs to the same word as the token before it: a `##`
WordPiece (Google's whole-word masking), or, as Chinese-BERT-wwm does with its segmenter, a Chinese
character that is not the first character of a word the segmenter found. The marks only group tokens
for masking; they never change an id.
"""

import collections
import logging as std_logging

from mobilebert import tokenization

TokenizedSentence = collections.namedtuple("TokenizedSentence", ["ids", "continuation"])

# Character classes of the basic tokenizer, computed once per distinct character.
_DROP, _SPACE, _CJK, _OTHER = range(4)


class CachedTokenizer:
  """FullTokenizer's output, computed piece by piece with a cache.

  The basic tokenizer splits text on whitespace and around every CJK character, then handles each
  piece on its own (lower-casing, accents, punctuation, WordPiece). So the tokens of a text are the
  tokens of its pieces in order, and a piece seen before (every character of Chinese text) costs one
  dictionary lookup instead of several passes of per-character Python.
  """

  def __init__(self, full_tokenizer):
    self._full = full_tokenizer
    self._vocab = full_tokenizer.vocab
    self._char_class = {}
    self._piece_tokens = {}

  def _class_of(self, char):
    cls = self._char_class.get(char)
    if cls is None:
      cp = ord(char)
      if cp == 0 or cp == 0xFFFD or tokenization.is_control(char):
        cls = _DROP
      elif tokenization.is_whitespace(char):
        cls = _SPACE
      elif tokenization.is_chinese_char(cp):
        cls = _CJK
      else:
        cls = _OTHER
      self._char_class[char] = cls
    return cls

  def pieces(self, text):
    """The pieces of `text` as (string, is_cjk) pairs: CJK characters, and runs of other characters."""
    out = []
    run = []
    class_of = self._class_of
    for char in text:
      cls = class_of(char)
      if cls == _OTHER:
        run.append(char)
      elif cls == _DROP:
        continue  # removed before splitting, so the characters around it join
      else:
        if run:
          out.append(("".join(run), False))
          run = []
        if cls == _CJK:
          out.append((char, True))
    if run:
      out.append(("".join(run), False))
    return out

  def piece_tokens(self, piece):
    """(ids, is_wordpiece_continuation) of one piece, as FullTokenizer tokenizes it."""
    cached = self._piece_tokens.get(piece)
    if cached is None:
      tokens = self._full.tokenize(piece)
      cached = (tuple(self._vocab[t] for t in tokens), tuple(t.startswith("##") for t in tokens))
      self._piece_tokens[piece] = cached
    return cached

  def tokenize_ids(self, text):
    """Token ids of `text`, equal to FullTokenizer.convert_tokens_to_ids(FullTokenizer.tokenize(text))."""
    ids = []
    for piece, _ in self.pieces(text):
      ids.extend(self.piece_tokens(piece)[0])
    return ids


def _jieba_segmenter(hmm):
  import jieba  # pylint: disable=g-import-not-at-top
  jieba.setLogLevel(std_logging.WARNING)
  # A tokenizer of our own with the default dictionary: words a user added to jieba's global
  # tokenizer in the same process cannot change our segmentation.
  segmenter = jieba.Tokenizer()
  # jieba reuses /tmp/jieba.cache for its default dictionary whatever version wrote it; a cache file of
  # our own per jieba version keeps an upgrade from segmenting with an old dictionary.
  segmenter.cache_file = f"jieba-{jieba.__version__}.mobilebert.cache"
  segmenter.initialize()
  return lambda text: segmenter.lcut(text, HMM=hmm)


# Segmenter name -> factory of a function text -> list of words whose concatenation is the text.
SEGMENTER_FACTORIES = {
    "jieba": lambda: _jieba_segmenter(hmm=True),
    "jieba_no_hmm": lambda: _jieba_segmenter(hmm=False),
    "none": lambda: None,
}


def word_start_marks(words):
  """For every CJK character of the text, in order: True if it continues a word (its predecessor in the
  same segmenter word is also a CJK character)."""
  marks = []
  for word in words:
    previous_cjk = False
    for char in word:
      is_cjk = tokenization.is_chinese_char(ord(char))
      if is_cjk:
        marks.append(previous_cjk)
      previous_cjk = is_cjk
  return marks


class WholeWordTokenizer:
  """Sentence -> TokenizedSentence(ids, continuation) for whole-word masking.

  With `do_whole_word_mask` false every token is its own group (the original tool's default). With it
  true, `##` pieces join the token before them, and with a segmenter so do the non-first characters of
  each segmented word.
  """

  def __init__(self, full_tokenizer, do_whole_word_mask=True, segmenter="jieba"):
    self.cached = CachedTokenizer(full_tokenizer)
    self.do_whole_word_mask = do_whole_word_mask
    self._segment = SEGMENTER_FACTORIES[segmenter]() if do_whole_word_mask else None
    self.num_segmenter_mismatches = 0

  def tokenize(self, text):
    ids = []
    continuation = []
    pieces = self.cached.pieces(text)
    cjk_marks = self._cjk_marks(text, pieces)
    cjk_index = 0
    for piece, is_cjk in pieces:
      piece_ids, piece_wordpiece = self.cached.piece_tokens(piece)
      ids.extend(piece_ids)
      if is_cjk:
        # One CJK character is one token (itself or [UNK]).
        continuation.append(cjk_marks[cjk_index] if cjk_marks is not None else False)
        cjk_index += 1
      elif self.do_whole_word_mask:
        continuation.extend(piece_wordpiece)
      else:
        continuation.extend([False] * len(piece_ids))
    return TokenizedSentence(ids, continuation)

  def _cjk_marks(self, text, pieces):
    if self._segment is None:
      return None
    marks = word_start_marks(self._segment(text))
    if len(marks) != sum(1 for _, is_cjk in pieces if is_cjk):
      # The segmenter lost or added characters: group this sentence by WordPiece only.
      self.num_segmenter_mismatches += 1
      return None
    return marks
