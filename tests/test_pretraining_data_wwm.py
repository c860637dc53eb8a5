"""Whole-word grouping, masking and instance cutting on real People's Daily sentences."""

import collections
import json
import pathlib
import random

import jieba
import pytest

from mobilebert import assets
from mobilebert import tokenization
from pretrain import instances
from pretrain import prepare_peoples_daily as prepare
from pretrain.masking import Masker, is_special_token
from pretrain.wwm import CachedTokenizer, TokenizedSentence, WholeWordTokenizer

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "pretraining_data" / "199801_head.txt"

TRICKY = [
    "Hello, World! naïve café ÀÉÎ", "ＡＢＣ１２３，全角字符", "a\x00b\u200bc\ufffdd", "\ufeff开头的BOM",
    "行\u2028分隔", "豈更車 兼容汉字", "𠀀𠀁 扩展B区", "日本語のかな", "한국어 텍스트", "e\u0301 combining",
    "\t tabs  and\u3000全角空格 ", "iPhone12的价格是$999.99", "[CLS] [MASK] ##ing", "unaffable playing",
    "x" * 120, "“引号”——破折号……", "",
]


@pytest.fixture(scope="module")
def documents():
  return prepare.group_documents(prepare.read_tagged_lines(str(FIXTURE)))


@pytest.fixture(scope="module")
def sentences(documents):
  return [s for d in documents for s in d]


@pytest.fixture(scope="module")
def full():
  return tokenization.FullTokenizer(assets.chinese_vocab_file())


@pytest.fixture(scope="module")
def wwm(full):
  return WholeWordTokenizer(full, do_whole_word_mask=True, segmenter="jieba")


@pytest.fixture(scope="module")
def masker(full):
  return Masker(full.vocab, masked_lm_prob=0.15, max_predictions_per_seq=20)


@pytest.mark.parametrize("do_lower_case", [True, False])
def test_cached_tokenizer_gives_full_tokenizer_ids(sentences, do_lower_case):
  full = tokenization.FullTokenizer(assets.chinese_vocab_file(), do_lower_case=do_lower_case)
  cached = CachedTokenizer(full)
  with open(assets.thucnews_file(), encoding="utf-8") as f:
    thucnews = [s for topic in json.load(f).values() for s in topic["texts"][:30]]
  texts = sentences + thucnews + TRICKY
  for text in texts:
    assert cached.tokenize_ids(text) == full.convert_tokens_to_ids(full.tokenize(text)), text


def test_chinese_words_from_jieba_are_masking_groups(sentences, full, wwm, masker):
  """Every all-Chinese word jieba finds is exactly one group: not split, not joined to a neighbour."""
  checked = skipped = 0
  cls, sep = full.vocab["[CLS]"], full.vocab["[SEP]"]
  for sentence in sentences:
    words = jieba.lcut(sentence, HMM=True)
    word_tokens = [full.tokenize(w) for w in words]
    if sum(word_tokens, []) != full.tokenize(sentence):
      # WordPieces that straddle jieba words (jieba splits full-width digits one by one): no
      # word-level expectation for this sentence.
      skipped += 1
      continue
    expected = set()
    position = 1  # after [CLS]
    for word, tokens in zip(words, word_tokens):
      if all(tokenization.is_chinese_char(ord(c)) for c in word):
        expected.add((position, position + len(tokens)))
        checked += len(word) > 1
      position += len(tokens)
    tokenized = wwm.tokenize(sentence)
    assert tokenized.ids == full.convert_tokens_to_ids(full.tokenize(sentence))
    groups = masker.candidate_groups([cls] + tokenized.ids + [sep],
                                     [False] + tokenized.continuation + [False])
    assert expected <= {(g.start, g.stop) for g in groups}, sentence
  assert checked > 3000 and skipped < len(sentences) / 4


def test_grouping_switches(full):
  text = "我们在北京工作unaffable"  # jieba: 我们 / 在 / 北京 / 工作 / unaffable
  tokens = full.tokenize(text)
  assert tokens[:7] == list("我们在北京工作") and any(t.startswith("##") for t in tokens[7:])
  wordpiece = [t.startswith("##") for t in tokens]
  no_segmenter = WholeWordTokenizer(full, do_whole_word_mask=True, segmenter="none").tokenize(text)
  assert no_segmenter.continuation == wordpiece
  off = WholeWordTokenizer(full, do_whole_word_mask=False, segmenter="jieba").tokenize(text)
  assert off.continuation == [False] * len(tokens)
  with_jieba = WholeWordTokenizer(full, do_whole_word_mask=True, segmenter="jieba").tokenize(text)
  assert with_jieba.continuation == [False, True, False, False, True, False, True] + wordpiece[7:]
  assert with_jieba.ids == off.ids == no_segmenter.ids


def chunk_instances(documents, wwm, mode, seed=7, max_num_tokens=125, short_seq_prob=0.1):
  tokenized = [[t for t in (wwm.tokenize(s) for s in d) if t.ids] for d in documents]
  rng = random.Random(seed)
  special = instances.SpecialIds.from_vocab(wwm.cached._vocab)
  if mode == "contiguous":
    return tokenized, list(instances.contiguous_instances(tokenized, max_num_tokens, short_seq_prob, rng,
                                                          special))
  return tokenized, [u for i in range(len(tokenized)) for u in instances.sentence_pair_instances(
      tokenized, i, max_num_tokens, short_seq_prob, rng, special)]


def test_masks_take_whole_groups_and_never_special_tokens(documents, wwm, masker, full):
  _, unmasked = chunk_instances(documents, wwm, "sentence_pair")
  rng = random.Random(3)
  special = {full.vocab[t] for t in full.vocab if is_special_token(t)}
  never_masked = {full.vocab[t] for t in ("[CLS]", "[SEP]", "[PAD]")}
  kinds = collections.Counter()
  wanted = 0
  for instance in unmasked:
    masked = masker.mask(instance.ids, instance.continuation, rng)
    chosen = set(masked.positions)
    assert masked.positions == sorted(chosen) and 0 < len(chosen) <= 20
    assert len(chosen) <= masker.num_to_predict(len(instance.ids))
    wanted += masker.num_to_predict(len(instance.ids))
    for group in masker.candidate_groups(instance.ids, instance.continuation):
      assert len(chosen & set(group)) in (0, len(group))
    for p in chosen:
      # [UNK] is text and may be predicted, like any token; [CLS], [SEP], [PAD] never.
      assert instance.ids[p] not in never_masked
      kind = ("mask" if masked.input_ids[p] == full.vocab["[MASK]"] else
              "kept" if masked.input_ids[p] == instance.ids[p] else "random")
      # Random replacements are real tokens, never [PAD], [UNK], [unused*], ...
      assert kind != "random" or masked.input_ids[p] not in special
      kinds[kind] += 1
    assert [t for i, t in enumerate(masked.input_ids) if i not in chosen] == \
        [t for i, t in enumerate(instance.ids) if i not in chosen]
  # Whole words rarely leave a prediction slot unused: single characters fill the gaps.
  assert sum(kinds.values()) > 0.98 * wanted > 3000 and kinds["random"] > 200


def test_sentence_pairs_are_well_formed(documents, wwm, full):
  _, unmasked = chunk_instances(documents, wwm, "sentence_pair")
  cls, sep = full.vocab["[CLS]"], full.vocab["[SEP]"]
  for instance in unmasked:
    assert len(instance.ids) <= 128 and len(instance.ids) == len(instance.continuation)
    a_len = instance.segment_ids.count(0) - 2
    b_len = instance.segment_ids.count(1) - 1
    assert a_len >= 1 and b_len >= 1
    assert instance.ids[0] == cls and instance.ids[a_len + 1] == sep and instance.ids[-1] == sep
    assert instance.segment_ids == [0] * (a_len + 2) + [1] * (b_len + 1)
  random_next = sum(u.is_random_next for u in unmasked) / len(unmasked)
  assert 0.4 < random_next < 0.7


@pytest.mark.parametrize("short_seq_prob", [0.1, 0.0])
def test_contiguous_instances_keep_every_token_in_order(documents, wwm, full, short_seq_prob):
  tokenized, unmasked = chunk_instances(documents, wwm, "contiguous", seed=11, short_seq_prob=short_seq_prob)
  order = list(range(len(tokenized)))
  random.Random(11).shuffle(order)  # the first draw of the generator: the document order
  sentence_lengths = [len(s.ids) for d in order for s in tokenized[d]]
  expected = [i for d in order for s in tokenized[d] for i in s.ids]
  cls, sep = full.vocab["[CLS]"], full.vocab["[SEP]"]
  joined = []
  for instance in unmasked:
    assert instance.ids[0] == cls and instance.ids[-1] == sep and len(instance.ids) <= 127
    assert set(instance.segment_ids) == {0} and not instance.is_random_next
    joined.extend(instance.ids[1:-1])
  assert joined == expected
  if short_seq_prob == 0.0:
    # Greedy packing: an instance ends where the next whole sentence would not fit, or is full.
    sentence_ends = {sum(sentence_lengths[:k + 1]): k for k in range(len(sentence_lengths))}
    end = 0
    for instance in unmasked[:-1]:
      length = len(instance.ids) - 2
      end += length
      if end in sentence_ends:
        assert length + sentence_lengths[sentence_ends[end] + 1] > 125
      else:
        assert length == 125


def test_overlong_sentence_is_cut_not_dropped(full):
  special = instances.SpecialIds.from_vocab(full.vocab)
  long_sentence = TokenizedSentence(list(range(1000, 1030)), [False] * 30)
  out = list(instances.contiguous_instances([[long_sentence]], 8, 0.0, random.Random(0), special))
  assert [len(u.ids) - 2 for u in out] == [8, 8, 8, 6]
  assert [i for u in out for i in u.ids[1:-1]] == long_sentence.ids
