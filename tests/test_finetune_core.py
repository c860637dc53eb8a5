"""The shared fine-tuning core: padded records of any spec, flag defaults taken from the configs, and
every kind's head exposing `logits` and a loss through the one model_fn."""

import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from finetune.classification import head as classification_head
from finetune.core import model as model_lib
from finetune.core import records
from finetune.span import head as span_head
from mobilebert.config import BertConfig
from conftest import CONFIG_DIR


def _spec():
  return {"ids": tf.io.FixedLenFeature([3], tf.int64), "real": tf.io.FixedLenFeature([], tf.int64),
          "target": tf.io.FixedLenFeature([], tf.float32)}


def test_records_of_int_and_float_fields_pad_with_zeros_to_whole_batches(tmp_path):
  spec = _spec()
  values = [{"ids": [i, i + 1, i + 2], "real": 1, "target": i / 4} for i in range(1, 6)]
  cached = records.cached_records(str(tmp_path / "cache" / "toy"), "k" * 64,
                                  lambda: ((records.serialize(spec, v) for v in values), {"n": 5}))
  assert cached.meta == {"key": "k" * 64, "n": 5}
  # A second call with the same key reuses the records without featurizing.
  again = records.cached_records(str(tmp_path / "cache" / "toy"), "k" * 64, lambda: 1 / 0)
  assert again == cached
  input_fn = records.input_fn_builder(cached.path, spec, is_training=False, num_records=5,
                                      pad_to_batch_size=4)
  with tf.Graph().as_default():
    batch = tf.data.make_one_shot_iterator(input_fn({"batch_size": 4})).get_next()
    assert batch["ids"].dtype == tf.int32 and batch["target"].dtype == tf.float32
    assert batch["ids"].shape.as_list() == [4, 3]  # static: every batch is full
    got = []
    with tf.Session() as session:
      for _ in range(2):
        got.append(session.run(batch))
      with pytest.raises(tf.errors.OutOfRangeError):
        session.run(batch)
  real = np.concatenate([b["real"] for b in got])
  assert real.tolist() == [1] * 5 + [0] * 3
  targets = np.concatenate([b["target"] for b in got])
  np.testing.assert_allclose(targets[:5], [v["target"] for v in values])
  assert not np.concatenate([b["ids"] for b in got])[5:].any()


@pytest.mark.parametrize("module, config_class", [
    ("finetune.run_classifier", "finetune.classification.runner.ClassifierRunConfig"),
    ("finetune.run_cmrc2018", "finetune.span.runner.SpanRunConfig"),
    ("finetune.run_tagging", "finetune.tagging.runner.TaggingRunConfig")])
def test_flags_an_entry_point_defines_default_to_its_config_fields(module, config_class):
  # A fresh process: the test suite imports both entry points, which share flag names (the shared
  # ones, and every flag an entry point defines through it, are defined in finetune/core/flags.py).
  code = f"""
import dataclasses, importlib
from absl import flags
importlib.import_module("{module}")
path, name = "{config_class}".rsplit(".", 1)
config = getattr(importlib.import_module(path), name)
own = [f for f in dataclasses.fields(config) if f.name in flags.FLAGS]
assert len(own) >= 15, [f.name for f in own]
assert "max_seq_length" in [f.name for f in own]  # a shared flag (mobilebert/flags.py)
for field in own:
  # A required field (no default) is a flag without one; a list flag's default is a list.
  expected = None if field.default is dataclasses.MISSING else field.default
  expected = list(expected) if isinstance(expected, tuple) else expected
  assert flags.FLAGS[field.name].default == expected, (field.name, field.default)
print("checked", len(own))
"""
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.startswith("checked")


@pytest.mark.parametrize("kind", ["classification", "span"])
def test_every_head_gives_logits_and_a_named_loss_through_the_one_model_fn(kind):
  config = BertConfig.from_json_file(str(CONFIG_DIR / "tiny_bert_zh.json"))
  with tf.Graph().as_default():
    ids = tf.zeros([2, 8], tf.int32)
    features = {"input_ids": ids, "input_mask": tf.ones_like(ids), "segment_ids": ids}
    if kind == "classification":
      head, logits_shape = classification_head.head(3, config), [2, 3]
      features.update(label_ids=tf.zeros([2], tf.int32), is_real_example=tf.ones([2], tf.int32))
    else:
      head, logits_shape = span_head.head(config), [2, 8, 2]
      features.update(start_positions=tf.zeros([2], tf.int32),
                      end_positions=tf.ones([2], tf.int32))
    outputs = model_lib.create_model(model_lib.EncoderSettings(config), head, True, features)
    assert outputs.logits.shape.as_list() == logits_shape
    assert outputs.loss.shape.as_list() == []
    assert outputs.loss.op.name in ("loss/classification_loss", "span_loss")
