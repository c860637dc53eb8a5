"""Shared by the export and fill-mask tests: a tiny vocab, classifier TFRecords, and a tiny classifier
fine-tuned on a learnable synthetic task (which of two keyword sets an example contains)."""

import collections
import json
import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from mobilebert.config import BertConfig
from mobilebert.export import graph
from mobilebert import checkpoint as checkpoint_lib
from mobilebert import modeling
from mobilebert import quantization

REFERENCE = os.path.join(os.path.dirname(__file__), "fixtures", "reference")
GOLDEN = os.path.join(REFERENCE, "golden")
SEQ_LENGTH = 32
KEYWORDS = (range(5, 21), range(21, 37))  # label 0, label 1
FILLER = (40, 512)


def _litert_importable():
  try:
    import ai_edge_litert.interpreter  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    return False
  return True


# Both TFLite runtimes for tests to parametrize over; LiteRT's side skips where it is not installed.
RUNTIMES = [pytest.param("litert", marks=pytest.mark.skipif(not _litert_importable(),
                                                            reason="ai-edge-litert not installed")),
            "tensorflow"]

TinyClassifier = collections.namedtuple(
    "TinyClassifier", ["config", "config_file", "checkpoint", "train_records", "eval_records",
                       "eval_features", "tf_accuracy"])


def golden(name):
  """(BertConfig, config path, checkpoint prefix, npz dict) of a reference golden."""
  config_file = os.path.join(GOLDEN, f"{name}.json")
  return (BertConfig.from_json_file(config_file), config_file, os.path.join(GOLDEN, f"{name}.ckpt"),
          dict(np.load(os.path.join(GOLDEN, f"{name}.npz"))))


def write_vocab(path, size=512):
  """A vocab of `size` entries: the five special tokens, then consecutive CJK characters."""
  tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [chr(0x4E00 + i) for i in range(size - 5)]
  with open(path, "w", encoding="utf-8") as f:
    f.write("\n".join(tokens) + "\n")
  return path


def synthetic_examples(count, seed, seq_length=SEQ_LENGTH):
  """Classifier features: filler ids with 2 keywords from the label's set, padded at random lengths."""
  rng = np.random.RandomState(seed)
  features = {n: np.zeros((count, seq_length), np.int32) for n in graph.INPUT_NAMES}
  labels = rng.randint(0, 2, size=count).astype(np.int32)
  for i in range(count):
    length = rng.randint(12, seq_length + 1)
    ids = rng.randint(*FILLER, size=length)
    ids[0], ids[-1] = 2, 3  # [CLS] ... [SEP]
    for position in rng.choice(np.arange(1, length - 1), size=2, replace=False):
      ids[position] = rng.choice(list(KEYWORDS[labels[i]]))
    features["input_ids"][i, :length] = ids
    features["input_mask"][i, :length] = 1
  features["label_ids"] = labels
  return features


def write_classifier_tfrecord(path, features):
  """Writes features as run_classifier.py does (int64 lists, label_ids, is_real_example)."""
  with tf.io.TFRecordWriter(path) as writer:
    for i in range(len(features["input_ids"])):
      feature = {n: tf.train.Feature(int64_list=tf.train.Int64List(value=features[n][i].tolist()))
                 for n in graph.INPUT_NAMES}
      for name, value in (("label_ids", int(features["label_ids"][i])), ("is_real_example", 1)):
        feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
      writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
  return path


def train_tiny_classifier(out_dir, steps=300, batch_size=32, seed=0, quantized_training=False,
                          hidden_act=None):
  """Fine-tunes a tiny student (golden tiny_student_f2 architecture) on the synthetic task.

  Saves the model variables only (as a fine-tuned checkpoint would be stripped) and the data.
  """
  config = golden("tiny_student_f2")[0].copy(initializer_range=0.02)
  if hidden_act:
    config = config.copy(hidden_act=hidden_act)
  config_file = os.path.join(out_dir, "tiny_classifier.json")
  with open(config_file, "w") as f:
    json.dump(config.to_dict(), f)
  train = synthetic_examples(2000, seed)
  evaluation = synthetic_examples(300, seed + 1)
  with tf.Graph().as_default():
    tf.set_random_seed(seed)
    # Dropout masks are keyed by the global step (layers.dropout): without one every step drops the
    # same units.
    global_step = tf.train.get_or_create_global_step()
    inputs = {n: tf.placeholder(tf.int32, [None, SEQ_LENGTH], name=n) for n in graph.INPUT_NAMES}
    labels = tf.placeholder(tf.int32, [None])
    with quantization.fake_quantization(True, enabled=quantized_training):
      model = modeling.BertModel(config, True, inputs["input_ids"], inputs["input_mask"],
                                 inputs["segment_ids"])
    pooled = tf.nn.dropout(model.get_pooled_output(), rate=0.1)
    logits = graph.classifier_logits(config, pooled, 2)
    model_vars = [v for v in tf.global_variables() if v is not global_step]
    loss = tf.losses.sparse_softmax_cross_entropy(labels, logits)
    train_op = tf.train.AdamOptimizer(1e-3).minimize(loss, global_step=global_step)
    rng = np.random.RandomState(seed)
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      for _ in range(steps):
        batch = rng.randint(0, len(train["label_ids"]), size=batch_size)
        session.run(train_op, {**{inputs[n]: train[n][batch] for n in graph.INPUT_NAMES},
                               labels: train["label_ids"][batch]})
      checkpoint = tf.train.Saver(model_vars).save(
          session, os.path.join(out_dir, "classifier.ckpt"), write_meta_graph=False)
  reference = graph.TFModel(config, checkpoint)
  probabilities = reference.run(*(evaluation[n] for n in graph.INPUT_NAMES))["probabilities"]
  reference.close()
  tf_accuracy = float(np.mean(np.argmax(probabilities, -1) == evaluation["label_ids"]))
  return TinyClassifier(
      config, config_file, checkpoint,
      write_classifier_tfrecord(os.path.join(out_dir, "train.tf_record"), train),
      write_classifier_tfrecord(os.path.join(out_dir, "eval.tf_record"), evaluation),
      evaluation, tf_accuracy)


def golden_with_classifier(name, out_prefix, num_labels=3, seed=0, nsp=False):
  """The golden's checkpoint plus a random head, laid out like a fine-tuned checkpoint (top-level
  `output_weights`/`output_bias`) or, with `nsp`, like a pretrained one with an NSP head
  (`cls/seq_relationship/*`); no training."""
  from mobilebert import strip_checkpoint  # pylint: disable=g-import-not-at-top
  config, _, checkpoint, _ = golden(name)
  values = checkpoint_lib.read_checkpoint_float32(checkpoint)
  rng = np.random.RandomState(seed)
  scope = "cls/seq_relationship/" if nsp else ""
  num_labels = 2 if nsp else num_labels
  values[scope + "output_weights"] = rng.normal(0, 0.5, (num_labels, config.hidden_size)).astype(
      np.float32)
  values[scope + "output_bias"] = rng.normal(0, 0.1, num_labels).astype(np.float32)
  strip_checkpoint.write_checkpoint(out_prefix, values)
  return config, out_prefix



def golden_relu6(name, out_prefix, scale=4.0):
  """The golden's config with `hidden_act` relu6 (as Google's QAT student) and a checkpoint in which
  relu6 clips: each FFN's intermediate dense is multiplied by `scale` and its output kernel divided by
  it (and the MLM transform, before its LayerNorm, multiplied). Under relu the model computes what
  the golden does (relu(s*x)/s = relu(x)); under relu6 every activation above 6/scale of the golden's
  (which peak near 3.5) is clipped."""
  from mobilebert import strip_checkpoint  # pylint: disable=g-import-not-at-top
  config, _, checkpoint, npz = golden(name)
  values = checkpoint_lib.read_checkpoint_float32(checkpoint)
  for key in list(values):
    if "intermediate/dense/" in key or key.startswith("cls/predictions/transform/dense/"):
      values[key] = values[key] * np.float32(scale)
    if key.endswith("intermediate/dense/kernel"):
      output_kernel = key.replace("intermediate/dense/kernel", "output/dense/kernel")
      values[output_kernel] = values[output_kernel] / np.float32(scale)
  strip_checkpoint.write_checkpoint(out_prefix, values)
  return config.copy(hidden_act="relu6"), out_prefix, npz
