# coding=utf-8
"""Character-level alignment between a context and its WordPiece tokens.

Google's SQuAD code aligns through whitespace-separated words, which does not work for Chinese (a
paragraph is one "word"). Here every WordPiece token gets the character span [start, end) of the original
text it came from, computed by redoing the BERT basic tokenizer's steps with offsets: dropped characters
(NUL, U+FFFD, controls) and whitespace separate tokens; a CJK character is a token by itself; other runs
are lower-cased and stripped of accents, split at punctuation, then split into WordPieces. A prediction
is then an exact substring of the original context: no spaces appear between Chinese characters, and
the spaces of mixed text are those of the original.
"""

import collections
import functools
import unicodedata
import weakref

from mobilebert import tokenization

# WordPieces of words already seen, per WordPiece tokenizer (texts repeat most characters and words).
_PIECES_CACHE = weakref.WeakKeyDictionary()
_MAX_CACHED_WORDS = 200000

TokenSpans = collections.namedtuple("TokenSpans", ["tokens", "starts", "ends"])
"""WordPiece `tokens` of a text with the [starts[i], ends[i]) character span each came from."""


_DROPPED, _SEPARATOR, _CJK, _OTHER = range(4)


@functools.lru_cache(maxsize=None)
def _char_class(ch):
  """How the basic tokenizer treats a character before normalization."""
  cp = ord(ch)
  if cp == 0 or cp == 0xFFFD or tokenization.is_control(ch):
    return _DROPPED
  # The tokenizer maps its whitespace class to spaces, then splits with str.split(), which also breaks
  # at line/paragraph separators (U+2028, U+2029) that its whitespace class does not include.
  if tokenization.is_whitespace(ch) or ch.isspace():
    return _SEPARATOR
  return _CJK if tokenization.is_chinese_char(cp) else _OTHER


def _is_dropped(ch):
  return _char_class(ch) == _DROPPED


@functools.lru_cache(maxsize=None)
def _normalize_char(ch, do_lower_case):
  if not do_lower_case:
    return ch
  decomposed = unicodedata.normalize("NFD", ch.lower())
  return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


def _raw_words(text):
  """[start, end) spans of the whitespace-separated words after CJK characters are isolated."""
  spans = []
  start = last = None
  for i, ch in enumerate(text):
    kind = _char_class(ch)
    if kind == _OTHER:
      if start is None:
        start = i
      last = i
    elif kind != _DROPPED:  # a dropped character does not split: its neighbours stay one word
      if start is not None:
        spans.append((start, last + 1))
        start = None
      if kind == _CJK:
        spans.append((i, i + 1))
  if start is not None:
    spans.append((start, last + 1))
  return spans


def _normalized_with_origins(text, start, end, do_lower_case):
  """The word text[start:end] as the basic tokenizer normalizes it, with, for each of its characters,
  the [start, end) span of the original character(s) it comes from."""
  chars, origins = [], []
  pending = None  # start of leading characters that normalize to nothing
  for i in range(start, end):
    if _is_dropped(text[i]):
      continue
    normalized = _normalize_char(text[i], do_lower_case)
    if not normalized:
      # A combining mark removed with the accents belongs to the character before it, so a span
      # ending there keeps it (Hebrew points, Latin accents typed as separate marks).
      if origins:
        origins[-1] = (origins[-1][0], i + 1)
      elif pending is None:
        pending = i
      continue
    for c in normalized:
      chars.append(c)
      origins.append((i if pending is None else pending, i + 1))
      pending = None
  normalized = "".join(chars)
  if do_lower_case and "\u03a3" in text[start:end]:
    # str.lower() has one context-dependent mapping, the Greek final sigma: if lower-casing the word
    # whole differs, keep the tokenizer's text and give every character the span of the whole word.
    word = "".join(c for c in text[start:end] if not _is_dropped(c))
    whole = unicodedata.normalize("NFD", word.lower())
    whole = "".join(c for c in whole if unicodedata.category(c) != "Mn")
    if whole != normalized:
      return whole, [(start, end)] * len(whole)
  return normalized, origins


def _basic_tokens(text, do_lower_case):
  """(token, origins) for each basic-tokenizer token of `text`; origins as in _normalized_with_origins."""
  out = []
  for word_start, word_end in _raw_words(text):
    if word_end == word_start + 1:
      # Most words of Chinese text are single characters: no accents, no punctuation inside.
      single = _normalize_char(text[word_start], do_lower_case)
      if len(single) == 1:
        out.append((single, ((word_start, word_end),)))
        continue
    normalized, origins = _normalized_with_origins(text, word_start, word_end, do_lower_case)
    piece_start = None
    for k, ch in enumerate(normalized):
      if tokenization.is_punctuation(ch):
        if piece_start is not None:
          out.append((normalized[piece_start:k], origins[piece_start:k]))
          piece_start = None
        out.append((ch, origins[k:k + 1]))
      elif piece_start is None:
        piece_start = k
    if piece_start is not None:
      out.append((normalized[piece_start:], origins[piece_start:]))
  return out


def align_tokens(tokenizer, text):
  """WordPiece tokens of `text` with their character spans (a `TokenSpans`).

  The tokens equal `tokenizer.tokenize(text)`. An [UNK] token spans its whole basic token; other pieces
  span the characters they spell.
  """
  do_lower_case = tokenizer.basic_tokenizer.do_lower_case
  unk = tokenizer.wordpiece_tokenizer.unk_token
  tokens, starts, ends = [], [], []
  pieces_of = _PIECES_CACHE.setdefault(tokenizer.wordpiece_tokenizer, {})
  if len(pieces_of) > _MAX_CACHED_WORDS:
    pieces_of.clear()
  for word, origins in _basic_tokens(text, do_lower_case):
    pieces = pieces_of.get(word)
    if pieces is None:
      pieces = pieces_of[word] = tokenizer.wordpiece_tokenizer.tokenize(word)
    if pieces == [unk]:
      tokens.append(unk)
      starts.append(origins[0][0])
      ends.append(origins[-1][1])
      continue
    offset = 0
    for piece in pieces:
      length = len(piece[2:]) if offset > 0 else len(piece)
      tokens.append(piece)
      starts.append(origins[offset][0])
      ends.append(origins[offset + length - 1][1])
      offset += length
  return TokenSpans(tokens, starts, ends)


def char_span_to_token_span(spans, char_start, char_end):
  """Token indexes [first, last] covering characters [char_start, char_end), or None if no token does.

  first is the first token ending after char_start, last the last token starting before char_end, so
  leading/trailing spaces of an answer are skipped and a boundary inside a token widens to the token.
  """
  first = next((i for i, end in enumerate(spans.ends) if end > char_start), None)
  last = next((i for i in range(len(spans.starts) - 1, -1, -1) if spans.starts[i] < char_end), None)
  if first is None or last is None or first > last:
    return None
  return first, last


def token_span_text(original_text, spans, first, last):
  """The original characters that tokens first..last came from (what a prediction reports)."""
  return original_text[spans.starts[first]:spans.ends[last]]
