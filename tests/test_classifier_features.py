"""Feature construction, truncation, the TFRecord cache key, whole-batch padding and the predict_fn hook."""

import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from finetune.classification import features as cf
from finetune.classification.tasks import ClassificationScorer, InputExample, create_task
from mobilebert.tokenization import FullTokenizer

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "classifier"
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "今", "天", "很", "好", "不", "错", "a", "b", "c",
         "d", "e", "f", "g", "h"]


@pytest.fixture(scope="module")
def vocab_file(tmp_path_factory):
  path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
  path.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
  return str(path)


@pytest.fixture(scope="module")
def tokenizer(vocab_file):
  return FullTokenizer(vocab_file, do_lower_case=True)


def ids(*tokens):
  return [VOCAB.index(t) for t in tokens]


def test_truncation_is_longest_first_and_cuts_b_on_ties():
  a, b = cf.truncate_seq_pair(list("abcdef"), list("gh"), 6)
  assert (a, b) == (list("abcd"), list("gh"))
  a, b = cf.truncate_seq_pair(list("abc"), list("def"), 4)
  assert (a, b) == (list("ab"), list("de"))
  a, b = cf.truncate_seq_pair(list("abc"), list("de"), 3)  # tie at 2+2 cuts b
  assert (a, b) == (list("ab"), list("d"))
  source = list("abc")
  cf.truncate_seq_pair(source, [], 1)
  assert source == list("abc")  # inputs are not modified


def test_pair_features_layout(tokenizer):
  example = InputExample("dev-1", "今天很好", "不错", "1")
  features = cf.convert_example(example, {"0": 0, "1": 1}, 10, tokenizer)
  assert features.input_ids == ids("[CLS]", "今", "天", "很", "好", "[SEP]", "不", "错", "[SEP]") + [0]
  assert features.segment_ids == [0] * 6 + [1] * 3 + [0]
  assert features.input_mask == [1] * 9 + [0]
  assert features.label_id == 1 and features.is_real_example == 1


def test_truncated_pair_and_single_sentence(tokenizer):
  pair = cf.convert_example(InputExample("x", "a b c d e f", "g h", "0"), {"0": 0}, 8, tokenizer)
  # 8 - 3 special tokens = 5 text tokens: a keeps 3, b keeps 2.
  assert pair.input_ids == ids("[CLS]", "a", "b", "c", "[SEP]", "g", "h", "[SEP]")
  single = cf.convert_example(InputExample("y", "a b c d e f", None, None), {"0": 0}, 5, tokenizer)
  assert single.input_ids == ids("[CLS]", "a", "b", "c", "[SEP]")
  assert single.segment_ids == [0] * 5 and single.label_id == 0


def _task(tmp_path, rows):
  (tmp_path / "dev.tsv").write_text("".join(f"{a}\t{b}\t{l}\n" for a, b, l in rows), encoding="utf-8")
  return create_task("lcqmc", str(tmp_path))


def test_cache_is_reused_only_for_identical_inputs(tmp_path, tokenizer, vocab_file, monkeypatch):
  data = tmp_path / "data"
  data.mkdir()
  task = _task(data, [("今天", "很好", "1"), ("不错", "abc", "0"), ("a", "b", "1")])
  cache = str(tmp_path / "cache")
  first = cf.cached_features(task, "dev", tokenizer, vocab_file, True, 16, cache)
  assert first.num_examples == 3 and first.guids == ("dev-1", "dev-2", "dev-3")

  reads = []
  original = type(task).get_examples
  monkeypatch.setattr(type(task), "get_examples",
                      lambda self, *a, **k: reads.append(1) or original(self, *a, **k))
  again = cf.cached_features(task, "dev", tokenizer, vocab_file, True, 16, cache)
  assert again == first and not reads  # same key: records reused, data not re-read

  changed = {
      "max_seq_length": cf.cached_features(task, "dev", tokenizer, vocab_file, True, 32, cache),
      "casing": cf.cached_features(task, "dev", tokenizer, vocab_file, False, 16, cache),
  }
  other_vocab = tmp_path / "vocab2.txt"
  other_vocab.write_text("\n".join(VOCAB + ["新"]) + "\n", encoding="utf-8")
  changed["vocab"] = cf.cached_features(task, "dev", tokenizer, str(other_vocab), True, 16, cache)
  _task(data, [("今天", "很好", "1"), ("不错", "abc", "1")])  # the data file is edited in place
  changed["data"] = cf.cached_features(task, "dev", tokenizer, vocab_file, True, 16, cache)
  assert changed["data"].num_examples == 2
  keys = {first.key} | {split.key for split in changed.values()}
  assert len(keys) == 5 and len(reads) == 4
  records = sorted(f for f in os.listdir(cache) if f.endswith(".tf_record"))
  assert len(records) == 5 and not [f for f in os.listdir(cache) if ".tmp-" in f]


def _batches(input_fn, batch_size):
  batches = []
  with tf.Graph().as_default():
    dataset = input_fn({"batch_size": batch_size})
    next_batch = tf.data.make_one_shot_iterator(dataset).get_next()
    with tf.Session() as session:
      while True:
        try:
          batches.append(session.run(next_batch))
        except tf.errors.OutOfRangeError:
          return batches


def test_eval_input_is_padded_to_whole_batches_and_scores_each_example_once(tmp_path, tokenizer,
                                                                             vocab_file):
  task = create_task("lcqmc", str(FIXTURES / "lcqmc"))
  split = cf.cached_features(task, "dev", tokenizer, vocab_file, True, 12, str(tmp_path))
  assert split.num_examples == 6
  input_fn = cf.input_fn_builder(split.path, 12, is_training=False, num_examples=6,
                                 pad_to_batch_size=4)
  batches = _batches(input_fn, 4)
  assert [b["input_ids"].shape for b in batches] == [(4, 12), (4, 12)]
  real = np.concatenate([b["is_real_example"] for b in batches])
  assert real.tolist() == [1] * 6 + [0] * 2
  labels = np.concatenate([b["label_ids"] for b in batches])[:6]
  assert labels.tolist() == [int(e.label) for e in task.get_examples("dev")]
  assert batches[0]["input_ids"].dtype == np.int32


def test_training_input_repeats_in_full_batches(tmp_path, tokenizer, vocab_file):
  task = create_task("lcqmc", str(FIXTURES / "lcqmc"))
  split = cf.cached_features(task, "dev", tokenizer, vocab_file, True, 12, str(tmp_path))
  input_fn = cf.input_fn_builder(split.path, 12, is_training=True, num_examples=6, seed=1)
  with tf.Graph().as_default():
    batch = tf.data.make_one_shot_iterator(input_fn({"batch_size": 4})).get_next()
    with tf.Session() as session:
      seen = [session.run(batch)["label_ids"].shape for _ in range(5)]
  assert seen == [(4,)] * 5


def test_score_with_predict_fn_hook(tokenizer):
  task = create_task("lcqmc", str(FIXTURES / "lcqmc"))
  examples = task.get_examples("dev")
  calls = []

  def predict_fn(arrays):
    calls.append(arrays["input_ids"].shape)
    # "1" for inputs longer than 20 tokens, else "0": a fixed rule, to check the plumbing.
    length = arrays["input_mask"].sum(axis=1)
    p1 = (length > 20).astype(np.float64) * 0.8 + 0.1
    return np.stack([1 - p1, p1], axis=1)

  scorer = ClassificationScorer(task.labels)
  results = cf.score_with_predict_fn(task, examples, tokenizer, 32, predict_fn, scorer, batch_size=4)
  assert calls == [(4, 32), (4, 32)] and results["num_examples"] == 6
  label_map = {"0": 0, "1": 1}
  expected = [int(sum(cf.convert_example(e, label_map, 32, tokenizer).input_mask) > 20) ==
              int(e.label) for e in examples]
  assert results["accuracy"] == pytest.approx(np.mean(expected))
