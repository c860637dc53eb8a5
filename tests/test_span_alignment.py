# coding=utf-8
"""Character <-> WordPiece alignment: tokens as the tokenizer gives them, spans that spell them."""

import pytest

from finetune.span import alignment
from mobilebert import assets, tokenization

CONTEXTS = [
    "苹果公司于1976年4月1日由Steve Jobs创立。",           # Latin words and digits
    "ＮＢＡ总决赛２０１８年 第一场",                         # full-width letters and digits
    "  北京  大学\t学生\n",                                  # spaces, tab, newline, at both ends
    "Café re\u0301sumé的iPhone X",                          # accents, precomposed and combining
    "零\u200b宽\u0000字\ufffd符\u2028行",                    # dropped characters, line separator
    "emoji😀表情 𠀀字",                                       # [UNK] words and characters
    "2,000.50元/kg（约）“引号”",                               # punctuation splits words
    "ΣΟΦΟΣ是希腊语",                                          # Greek final sigma
    "",
]


@pytest.fixture(scope="module")
def tokenizer():
  return tokenization.FullTokenizer(assets.chinese_vocab_file(), do_lower_case=True)


@pytest.mark.parametrize("text", CONTEXTS)
def test_tokens_are_the_tokenizers(tokenizer, text):
  spans = alignment.align_tokens(tokenizer, text)
  assert spans.tokens == tokenizer.tokenize(text)
  assert len(spans.starts) == len(spans.ends) == len(spans.tokens)


@pytest.mark.parametrize("text", CONTEXTS[:7])
def test_each_span_spells_its_token(tokenizer, text):
  spans = alignment.align_tokens(tokenizer, text)
  previous_end = 0
  for token, start, end in zip(*spans):
    assert previous_end <= start < end <= len(text)
    previous_end = end
    if token == "[UNK]":
      continue
    piece = token[2:] if token.startswith("##") else token
    # What the characters become under the tokenizer's normalization is the piece.
    assert tokenizer.basic_tokenizer.tokenize(text[start:end]) == [piece]


def test_spans_in_mixed_text(tokenizer):
  text = "苹果公司于1976年由Steve Jobs创立"
  spans = alignment.align_tokens(tokenizer, text)
  by_token = dict(zip(spans.tokens, zip(spans.starts, spans.ends)))
  assert text[slice(*by_token["1976"])] == "1976"
  assert text[slice(*by_token["steve"])] == "Steve"
  # A span over tokens keeps the original text: case, and the one space between the two words.
  first, last = spans.tokens.index("steve"), spans.tokens.index("jobs")
  assert alignment.token_span_text(text, spans, first, last) == "Steve Jobs"
  # Chinese characters come back without spaces between them.
  assert alignment.token_span_text(text, spans, 0, 3) == "苹果公司"


def test_combining_mark_stays_with_its_letter(tokenizer):
  text = "名叫re\u0301 的人"
  spans = alignment.align_tokens(tokenizer, text)
  index = spans.tokens.index("re")
  assert alignment.token_span_text(text, spans, index, index) == "re\u0301"


def test_full_width_pieces_map_to_their_characters(tokenizer):
  text = "ＮＢＡ总决赛"
  spans = alignment.align_tokens(tokenizer, text)
  assert spans.tokens[:3] == ["ｎ", "##ｂ", "##ａ"]
  assert [text[s:e] for s, e in zip(spans.starts[:3], spans.ends[:3])] == ["Ｎ", "Ｂ", "Ａ"]


def test_char_span_to_token_span(tokenizer):
  text = "他在1980年 说 Hello World。"
  spans = alignment.align_tokens(tokenizer, text)
  # Exact spans.
  start = text.index("Hello")
  first, last = alignment.char_span_to_token_span(spans, start, start + len("Hello World"))
  assert alignment.token_span_text(text, spans, first, last) == "Hello World"
  # Surrounding spaces of an answer are skipped.
  start = text.index(" 说 ")
  assert alignment.token_span_text(
      text, spans, *alignment.char_span_to_token_span(spans, start, start + 3)) == "说"
  # A boundary inside a token widens to the whole token: "98" is inside the token "1980".
  start = text.index("98")
  first, last = alignment.char_span_to_token_span(spans, start, start + 2)
  assert alignment.token_span_text(text, spans, first, last) == "1980"
  # A span of nothing but spaces holds no token.
  start = text.index(" 说")
  assert alignment.char_span_to_token_span(spans, start, start + 1) is None
