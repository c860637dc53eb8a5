"""The BERT tokenizer the released Chinese models were trained with.

Basic tokenization (control characters removed, whitespace cleaned, every CJK character its own token,
punctuation split off, lower-casing and accent stripping when `do_lower_case`), then greedy
longest-match-first WordPiece with `##` continuation pieces and `[UNK]` for words it cannot cover.
"""

import collections
import unicodedata

import tensorflow.compat.v1 as tf

from mobilebert import cli

REQUIRED_TOKENS = ("[UNK]", "[CLS]", "[SEP]", "[MASK]")


class VocabError(cli.DataError):
  """A vocab file that is missing, empty, or unusable for BERT."""


def convert_to_unicode(text):
  """Returns `text` as str, decoding UTF-8 bytes."""
  if isinstance(text, str):
    return text
  if isinstance(text, bytes):
    return text.decode("utf-8", "ignore")
  raise TypeError(f"expected str or bytes, got {type(text).__name__}")


def load_vocab(vocab_file, required_tokens=REQUIRED_TOKENS):
  """Reads a vocab file (one token per line, id = line number) into an OrderedDict token -> id.

  Raises VocabError if the file is missing or empty, a token appears twice, or a required special
  token is absent.
  """
  if not tf.io.gfile.exists(vocab_file):
    raise VocabError(f"vocab file not found: {vocab_file}")
  vocab = collections.OrderedDict()
  with tf.io.gfile.GFile(vocab_file, "rb") as reader:
    raw = reader.read()
  try:
    text = raw.decode("utf-8")
  except UnicodeDecodeError as e:
    raise VocabError(f"{vocab_file}: not UTF-8 text ({e})") from None
  lines = text.split("\n")
  if lines and lines[-1] == "":
    lines.pop()
  for index, line in enumerate(lines):
    token = line.strip()
    if not token:
      # Whitespace-only entries (the Chinese vocab has U+2028/U+2029 lines) can never be produced by
      # the tokenizer, which drops whitespace; they keep their id slot so later ids stay aligned.
      continue
    if token in vocab:
      raise VocabError(f"{vocab_file}:{index + 1}: duplicate token {token!r} "
                       f"(first at line {vocab[token] + 1})")
    vocab[token] = index
  if not vocab:
    raise VocabError(f"{vocab_file}: vocab file is empty")
  missing = [t for t in required_tokens if t not in vocab]
  if missing:
    raise VocabError(f"{vocab_file}: missing required special token(s) {missing}")
  return vocab


def whitespace_tokenize(text):
  """Splits on whitespace after stripping."""
  return text.strip().split()


class FullTokenizer:
  """Basic tokenization followed by WordPiece, with id conversion."""

  def __init__(self, vocab_file, do_lower_case=True):
    self.vocab = load_vocab(vocab_file)
    self.inv_vocab = {v: k for k, v in self.vocab.items()}
    self.basic_tokenizer = BasicTokenizer(do_lower_case=do_lower_case)
    self.wordpiece_tokenizer = WordpieceTokenizer(vocab=self.vocab)

  def tokenize(self, text):
    tokens = []
    for token in self.basic_tokenizer.tokenize(text):
      tokens.extend(self.wordpiece_tokenizer.tokenize(token))
    return tokens

  def convert_tokens_to_ids(self, tokens):
    return [self.vocab[t] for t in tokens]

  def convert_ids_to_tokens(self, ids):
    return [self.inv_vocab[i] for i in ids]


class BasicTokenizer:
  """Cleans text, splits CJK characters and punctuation, optionally lower-cases and strips accents."""

  def __init__(self, do_lower_case=True):
    self.do_lower_case = do_lower_case

  def tokenize(self, text):
    text = self._clean_text(convert_to_unicode(text))
    # Chinese characters are split before whitespace tokenization so that a run of them with no
    # spaces becomes one token per character, as the multilingual and Chinese models expect.
    text = self._tokenize_chinese_chars(text)
    split_tokens = []
    for token in whitespace_tokenize(text):
      if self.do_lower_case:
        token = _strip_accents(token.lower())
      split_tokens.extend(_split_on_punctuation(token))
    return whitespace_tokenize(" ".join(split_tokens))

  @staticmethod
  def _tokenize_chinese_chars(text):
    out = []
    for char in text:
      if is_chinese_char(ord(char)):
        out.extend((" ", char, " "))
      else:
        out.append(char)
    return "".join(out)

  @staticmethod
  def _clean_text(text):
    out = []
    for char in text:
      cp = ord(char)
      if cp == 0 or cp == 0xFFFD or is_control(char):
        continue
      out.append(" " if is_whitespace(char) else char)
    return "".join(out)


class WordpieceTokenizer:
  """Greedy longest-match-first WordPiece over whitespace-separated tokens."""

  def __init__(self, vocab, unk_token="[UNK]", max_input_chars_per_word=100):
    self.vocab = vocab
    self.unk_token = unk_token
    self.max_input_chars_per_word = max_input_chars_per_word

  def tokenize(self, text):
    output = []
    for token in whitespace_tokenize(convert_to_unicode(text)):
      if len(token) > self.max_input_chars_per_word:
        output.append(self.unk_token)
        continue
      pieces = self._split_word(token)
      output.extend(pieces if pieces is not None else [self.unk_token])
    return output

  def _split_word(self, word):
    """The word's pieces, or None if some part of it matches no vocab entry."""
    pieces = []
    start = 0
    while start < len(word):
      end = len(word)
      piece = None
      while start < end:
        candidate = word[start:end]
        if start > 0:
          candidate = "##" + candidate
        if candidate in self.vocab:
          piece = candidate
          break
        end -= 1
      if piece is None:
        return None
      pieces.append(piece)
      start = end
    return pieces


def _strip_accents(text):
  text = unicodedata.normalize("NFD", text)
  return "".join(c for c in text if unicodedata.category(c) != "Mn")


def _split_on_punctuation(text):
  """Splits `text` so that every punctuation character is its own piece."""
  pieces = []
  current = []
  for char in text:
    if is_punctuation(char):
      if current:
        pieces.append("".join(current))
        current = []
      pieces.append(char)
    else:
      current.append(char)
  if current:
    pieces.append("".join(current))
  return pieces


def is_chinese_char(cp):
  """True for code points in the CJK Unified Ideographs blocks (not Hangul, kana or CJK punctuation)."""
  return ((0x4E00 <= cp <= 0x9FFF) or (0x3400 <= cp <= 0x4DBF) or (0x20000 <= cp <= 0x2A6DF) or
          (0x2A700 <= cp <= 0x2B73F) or (0x2B740 <= cp <= 0x2B81F) or (0x2B820 <= cp <= 0x2CEAF) or
          (0xF900 <= cp <= 0xFAFF) or (0x2F800 <= cp <= 0x2FA1F))


def is_whitespace(char):
  """Space, tab, newline, carriage return, and Unicode space separators."""
  if char in (" ", "\t", "\n", "\r"):
    return True
  return unicodedata.category(char) == "Zs"


def is_control(char):
  """Control and format characters, except the whitespace ones (treated as spaces)."""
  if char in ("\t", "\n", "\r"):
    return False
  return unicodedata.category(char) in ("Cc", "Cf")


def is_punctuation(char):
  """All non-alphanumeric ASCII printable characters, plus Unicode punctuation (P*) categories."""
  cp = ord(char)
  if (33 <= cp <= 47) or (58 <= cp <= 64) or (91 <= cp <= 96) or (123 <= cp <= 126):
    return True
  return unicodedata.category(char).startswith("P")
