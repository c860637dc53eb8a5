"""fill_mask: the golden graph, text encoding, a tiny MLM that learned to count, and bad --text."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from mobilebert import fill_mask
from mobilebert import heads
from mobilebert import modeling
from mobilebert import strip_checkpoint

sys.path.insert(0, os.path.dirname(__file__))
import export_helpers  # noqa: E402  pylint: disable=g-import-not-at-top

CJK = 0x4E00  # vocab id k >= 5 is chr(CJK + k - 5) in export_helpers.write_vocab


@pytest.fixture(scope="module")
def vocab_file(tmp_path_factory):
  return export_helpers.write_vocab(str(tmp_path_factory.mktemp("vocab") / "vocab.txt"))


@pytest.fixture(scope="module")
def golden_filler(vocab_file):
  config, _, checkpoint, npz = export_helpers.golden("tiny_student_f2")
  return fill_mask.FillMask(config, vocab_file, checkpoint), npz


def test_model_reproduces_golden_mlm_logits(golden_filler):
  filler, npz = golden_filler
  got = filler.model.run(npz["input_ids"], npz["input_mask"], npz["segment_ids"],
                         npz["masked_lm_positions"])
  np.testing.assert_allclose(got["mlm_logits"], npz["mlm_logits"], atol=1e-5, rtol=0)
  np.testing.assert_allclose(got["sequence_output"], npz["sequence_output"], atol=1e-5, rtol=0)
  row = npz["mlm_logits"][0]
  predictions = fill_mask.top_k(row, filler.tokenizer.inv_vocab, 3)
  assert [p.id for p in predictions] == list(np.argsort(-row)[:3])
  softmax = np.exp(row - row.max()) / np.exp(row - row.max()).sum()
  np.testing.assert_allclose([p.probability for p in predictions], np.sort(softmax)[::-1][:3],
                             rtol=1e-6)


def test_encoding_and_predictions_per_mask(golden_filler):
  filler, _ = golden_filler
  text = f"{chr(CJK)}{chr(CJK + 1)}[MASK]{chr(CJK + 2)} [MASK]"
  encoded = fill_mask.encode(filler.tokenizer, text, 64)
  assert encoded.tokens == ["[CLS]", chr(CJK), chr(CJK + 1), "[MASK]", chr(CJK + 2), "[MASK]", "[SEP]"]
  assert encoded.input_ids == [2, 5, 6, 4, 7, 4, 3] and encoded.mask_positions == [3, 5]
  results = filler.predict([text, "[MASK]"], k=4)
  assert [len(r["masks"]) for r in results] == [2, 1]
  ids = np.array([encoded.input_ids], np.int32)
  direct = filler.model.run(ids, np.ones_like(ids), np.zeros_like(ids), np.array([[3, 5]], np.int32))
  for mask, logits in zip(results[0]["masks"], direct["mlm_logits"]):
    assert [p["id"] for p in mask["predictions"]] == list(np.argsort(-logits)[:4])
    probabilities = [p["probability"] for p in mask["predictions"]]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1


def test_malformed_text(golden_filler):
  filler, _ = golden_filler
  with pytest.raises(fill_mask.FillMaskError, match="has no \\[MASK\\]"):
    filler.predict(["no mask here"])
  with pytest.raises(fill_mask.FillMaskError, match="is 66 tokens.*maximum is 64"):
    filler.predict([chr(CJK) * 63 + "[MASK]"])
  assert fill_mask.encode(filler.tokenizer, chr(CJK) * 61 + "[MASK]", 64).tokens[-2] == "[MASK]"


def test_bad_vocab_and_checkpoint_without_mlm_head(tmp_path, vocab_file):
  config, _, checkpoint, _ = export_helpers.golden("tiny_student_f2")
  small = export_helpers.write_vocab(str(tmp_path / "small.txt"), size=100)
  with pytest.raises(fill_mask.FillMaskError, match="has 100 entries.*vocab_size is 512"):
    fill_mask.FillMask(config, small, checkpoint)
  backbone = str(tmp_path / "backbone.ckpt")
  strip_checkpoint.strip_checkpoint(checkpoint, backbone, keep=["bert/*"])
  with pytest.raises(fill_mask.FillMaskError, match="no masked-LM head"):
    fill_mask.FillMask(config, vocab_file, backbone)


@pytest.fixture(scope="module")
def counting_model(tmp_path_factory):
  """A tiny MLM trained on runs of consecutive vocab ids (5..59): a masked id is its left neighbour+1."""
  out = tmp_path_factory.mktemp("counting")
  config = export_helpers.golden("tiny_student_f2")[0].copy(initializer_range=0.02)
  rng = np.random.RandomState(0)
  with tf.Graph().as_default():
    tf.set_random_seed(0)
    ids = tf.placeholder(tf.int32, [None, 12])
    positions = tf.placeholder(tf.int32, [None, 2])
    targets = tf.placeholder(tf.int32, [None])
    model = modeling.BertModel(config, True, ids)
    logits = heads.masked_lm_logits(config, model.get_sequence_output(), model.get_embedding_table(),
                                    positions)
    model_vars = tf.global_variables()
    loss = tf.losses.sparse_softmax_cross_entropy(targets, logits)
    train_op = tf.train.AdamOptimizer(3e-3).minimize(loss)
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      for _ in range(150):
        starts = rng.randint(5, 50, size=32)
        batch = np.stack([np.concatenate([[2], np.arange(s, s + 10), [3]]) for s in starts])
        where = np.stack([rng.choice(np.arange(1, 11), 2, replace=False) for _ in starts])
        answer = batch[np.arange(32)[:, None], where].reshape(-1)
        batch[np.arange(32)[:, None], where] = 4
        session.run(train_op, {ids: batch, positions: where, targets: answer})
      prefix = tf.train.Saver(model_vars).save(session, str(out / "mlm.ckpt"), write_meta_graph=False)
  config_file = str(out / "config.json")
  with open(config_file, "w") as f:
    json.dump(config.to_dict(), f)
  return config_file, prefix


def test_command_line_on_a_trained_tiny_checkpoint(counting_model, vocab_file):
  config_file, checkpoint = counting_model
  text = "".join(chr(CJK + k) for k in range(20, 24)) + "[MASK]" + chr(CJK + 25)
  args = [sys.executable, "-m", "mobilebert.fill_mask", f"--bert_config_file={config_file}",
          f"--vocab_file={vocab_file}", f"--init_checkpoint={checkpoint}", "--top_k=3"]
  done = subprocess.run(args + [f"--text={text}", "--json"], capture_output=True, text=True,
                        check=True)
  result = json.loads(done.stdout.strip().splitlines()[-1])
  assert result["text"] == text and len(result["masks"]) == 1
  assert result["masks"][0]["position"] == 5 and len(result["masks"][0]["predictions"]) == 3
  assert result["masks"][0]["predictions"][0]["token"] == chr(CJK + 24)
  assert fill_mask.format_result(result)[1] == f"  -> {''.join(chr(CJK + k) for k in range(20, 26))}"
  bad = subprocess.run(args + ["--text=nothing to fill"], capture_output=True, text=True)
  assert bad.returncode != 0 and "fill_mask: error: --text 'nothing to fill' has no [MASK]" in bad.stderr
