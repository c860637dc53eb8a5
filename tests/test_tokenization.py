"""The BERT tokenizer: unit behaviour, parity with `tokenizers` on real Chinese text, bad vocab files."""

import re

import pytest

from mobilebert import assets, tokenization
from mobilebert.tokenization import FullTokenizer, VocabError


def _vocab_file(tmp_path, tokens):
  path = tmp_path / "vocab.txt"
  path.write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
  return str(path)


SMALL_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##want", "##ed", "want", "runn",
               "##ing", ",", "中", "国", "hello", "world", "!"]


def test_basic_tokenizer_splits_cjk_punctuation_and_lowercases():
  basic = tokenization.BasicTokenizer(do_lower_case=True)
  assert basic.tokenize(" \tHeLLo!how  \n Are yoU?  ") == ["hello", "!", "how", "are", "you", "?"]
  assert basic.tokenize("ah\u535A\u63A8zz") == ["ah", "\u535A", "\u63A8", "zz"]
  assert basic.tokenize("H\u00E9llo") == ["hello"]  # accents stripped when lower-casing
  assert tokenization.BasicTokenizer(do_lower_case=False).tokenize("H\u00E9llo") == ["H\u00E9llo"]
  # Control characters removed, U+3000 ideographic space is whitespace, full-width letters kept.
  assert basic.tokenize("a\u0000b\u200bc\u3000ＡＢ") == ["abc", "ａｂ"]


def test_wordpiece_greedy_longest_match_and_unk(tmp_path):
  tokenizer = FullTokenizer(_vocab_file(tmp_path, SMALL_VOCAB))
  assert tokenizer.tokenize("UNwanted,running") == ["un", "##want", "##ed", ",", "runn", "##ing"]
  assert tokenizer.tokenize("unwantedX 中国") == ["[UNK]", "中", "国"]
  wordpiece = tokenization.WordpieceTokenizer(tokenizer.vocab, max_input_chars_per_word=5)
  assert wordpiece.tokenize("want wanted") == ["want", "[UNK]"]  # over 5 characters
  ids = tokenizer.convert_tokens_to_ids(["[CLS]", "中", "[SEP]"])
  assert ids == [2, 12, 3]
  assert tokenizer.convert_ids_to_tokens(ids) == ["[CLS]", "中", "[SEP]"]


def test_real_chinese_vocab_ids():
  tokenizer = FullTokenizer(assets.chinese_vocab_file())
  assert len(tokenizer.vocab) == 21127  # 21,128 lines; one is a whitespace-only entry
  assert [tokenizer.vocab[t] for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")] == [
      0, 100, 101, 102, 103]


_TAGGED_WORD = re.compile(r"^\[?(.+?)/[A-Za-z]+(?:\][A-Za-z]+)?$")  # "[中国/ns" ... "政府/n]nt"


def _peoples_daily_lines():
  """Raw sentences of People's Daily 1998-01: the POS tags ("/n", "/vn", "[...]/nt") removed."""
  with open(assets.peoples_daily_file(), encoding="utf-8") as f:
    for line in f:
      words = [_TAGGED_WORD.sub(r"\1", w) for w in line.split()]
      if words:
        yield "".join(words)


def test_parity_with_tokenizers_bert_wordpiece_on_peoples_daily():
  from tokenizers import BertWordPieceTokenizer
  vocab_file = assets.chinese_vocab_file()
  ours = FullTokenizer(vocab_file, do_lower_case=True)
  theirs = BertWordPieceTokenizer(vocab_file, lowercase=True, strip_accents=True,
                                  handle_chinese_chars=True, clean_text=True)
  lines = list(_peoples_daily_lines())
  assert len(lines) > 19_000
  encodings = theirs.encode_batch(lines, add_special_tokens=False)
  mismatches = []
  for line, encoding in zip(lines, encodings):
    tokens = ours.tokenize(line)
    if tokens != encoding.tokens or ours.convert_tokens_to_ids(tokens) != encoding.ids:
      mismatches.append(line)
  assert not mismatches, f"{len(mismatches)} lines differ, e.g. {mismatches[:3]}"


@pytest.mark.parametrize("content, message", [
    ("", "empty"),
    ("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n中\n中\n", "duplicate token '中'"),
    ("[PAD]\n[UNK]\n[CLS]\n[SEP]\n中\n", r"missing required special token\(s\) \['\[MASK\]'\]"),
    ("a\nb\n", "missing required"),
])
def test_bad_vocab_files_give_clear_errors(tmp_path, content, message):
  path = tmp_path / "vocab.txt"
  path.write_text(content, encoding="utf-8")
  with pytest.raises(VocabError, match=message) as info:
    FullTokenizer(str(path))
  assert str(path) in str(info.value)


def test_missing_and_binary_vocab_files(tmp_path):
  with pytest.raises(VocabError, match="not found"):
    FullTokenizer(str(tmp_path / "nope.txt"))
  path = tmp_path / "vocab.bin"
  path.write_bytes(b"\xff\xfe\x00bad")
  with pytest.raises(VocabError, match="not UTF-8"):
    FullTokenizer(str(path))
