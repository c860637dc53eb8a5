"""Word-piece alignment of tagging: tags on first pieces, windows for long sentences, predictions put
back together into entities over the original text."""

import numpy as np
import pytest

from finetune.tagging import alignment
from finetune.tagging import entities as entities_lib
from finetune.tagging.entities import Entity, TaggedSentence
from mobilebert.tokenization import FullTokenizer

TAGS = entities_lib.tag_names(["PER", "LOC"])
TAG_MAP = {tag: i for i, tag in enumerate(TAGS)}


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
  vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "张", "三", "在", "北", "京", "ab", "##cd", "##e"]
  path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
  path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
  return FullTokenizer(str(path))


def _sentence(tokens, entities):
  units, offset = [], 0
  for token in tokens:
    units.append((offset, offset + len(token)))
    offset += len(token)
  return TaggedSentence("s", "".join(tokens), tuple(units), tuple(entities))


def test_tag_on_first_piece_only(tokenizer):
  # Units: 张 三 abcde 在 " " 北 京 ; "abcde" is three pieces, the space none (fed as [UNK]).
  sentence = _sentence(["张", "三", "abcde", "在", " ", "北", "京"],
                       [Entity(0, 7, "PER"), Entity(9, 11, "LOC")])
  ((window, features),) = alignment.featurize(sentence, 0, tokenizer, TAG_MAP, 16)
  assert window == alignment.Window(0, 0, 7)
  tokens = [tokenizer.inv_vocab[i] for i in features.input_ids[:sum(features.input_mask)]]
  assert tokens == ["[CLS]", "张", "三", "ab", "##cd", "##e", "在", "[UNK]", "北", "京", "[SEP]"]
  assert features.first_piece[:11] == [0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0]
  tags = [TAGS[t] for t in features.tag_ids[:11]]
  assert tags == ["O", "B-PER", "I-PER", "I-PER", "O", "O", "O", "O", "B-LOC", "I-LOC", "O"]
  assert len(features.input_ids) == 16 and features.first_piece[11:] == [0] * 5


def test_long_sentences_are_cut_into_windows_and_joined_back(tokenizer):
  tokens = ["张", "三", "在", "北", "京"] * 3
  entities = [Entity(5 * k, 5 * k + 2, "PER") for k in range(3)] + [Entity(13, 15, "LOC")]
  sentence = _sentence(tokens, entities)
  windows = alignment.featurize(sentence, 4, tokenizer, TAG_MAP, 8)  # 6 pieces a window
  assert [w for w, _ in windows] == [alignment.Window(4, 0, 6), alignment.Window(4, 6, 6),
                                     alignment.Window(4, 12, 3)]
  # The second window starts inside the second 张三 (units 5-6); every unit keeps its gold tag.
  units = [TAGS[t] for _, f in windows for t, m in zip(f.tag_ids, f.first_piece) if m]
  assert units == entities_lib.unit_tags(15, entities)
  # Feeding the gold tags back as one-hot probabilities gives the gold entities, the cut one whole.
  first = np.array([f.first_piece for _, f in windows])
  probabilities = np.eye(len(TAGS))[np.array([f.tag_ids for _, f in windows])]
  per_unit = alignment.unit_probabilities([_sentence(["x"], [])] * 4 + [sentence],
                                          [w for w, _ in windows], first, probabilities)
  found = alignment.predicted_entities(sentence, per_unit[4], TAGS)
  assert [e for e, _ in found] == sorted(entities)
  assert all(p == 1.0 for _, p in found)


def test_windows_never_split_a_unit_and_cap_a_huge_one():
  assert alignment.split_windows([["a"]] * 5, 2) == [(0, 2), (2, 2), (4, 1)]
  assert alignment.split_windows([["a", "b", "c"], ["d"]], 2) == [(0, 1), (1, 1)]


def test_predicted_entities_use_conlleval_rules_and_original_offsets():
  sentence = _sentence(["ab", "c", "d", "e"], [])
  probabilities = np.zeros((4, len(TAGS)))
  # I-PER after O opens an entity; I-LOC after I-PER starts another one.
  for unit, tag, p in ((0, "O", 0.9), (1, "I-PER", 0.6), (2, "I-PER", 0.8), (3, "I-LOC", 0.7)):
    probabilities[unit, TAG_MAP[tag]] = p
  found = alignment.predicted_entities(sentence, probabilities, TAGS)
  assert found == [(Entity(2, 4, "PER"), pytest.approx(0.7)), (Entity(4, 5, "LOC"), pytest.approx(0.7))]
  assert sentence.text[2:4] == "cd"


def test_unit_probabilities_refuses_misaligned_windows():
  with pytest.raises(ValueError, match="2 first pieces for 3 units"):
    alignment.unit_probabilities([_sentence(["a", "b", "c"], [])], [alignment.Window(0, 0, 3)],
                                 np.array([[0, 1, 1, 0]]), np.zeros((1, 4, 5)))
