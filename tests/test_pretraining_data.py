"""End to end: People's Daily text -> TFRecords -> the reader run_pretraining.py uses."""

import collections
import dataclasses
import json
import os
import pathlib
import re
import subprocess

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from mobilebert import assets
from mobilebert import atomic_io
from mobilebert import tokenization
from pretrain import data_build
from pretrain import data_files
from pretrain import example_encoder
from pretrain import prepare_peoples_daily as prepare
from pretrain import pretraining_input
from pretrain.data_config import DataConfig
from pretraining_testlib import random_instances, write_tfrecord

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "pretraining_data" / "199801_head.txt"
SEQ, PRED = 128, 20
FEATURE_KINDS = {"input_ids": ("int64_list", SEQ), "input_mask": ("int64_list", SEQ),
                 "segment_ids": ("int64_list", SEQ), "masked_lm_positions": ("int64_list", PRED),
                 "masked_lm_ids": ("int64_list", PRED), "masked_lm_weights": ("float_list", PRED),
                 "next_sentence_labels": ("int64_list", 1)}


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
  documents = prepare.group_documents(prepare.read_tagged_lines(str(FIXTURE)))
  path = tmp_path_factory.mktemp("text") / "peoples_daily.txt"
  path.write_text(prepare.format_documents(documents), encoding="utf-8")
  return str(path)


@pytest.fixture(scope="module")
def vocab():
  return tokenization.load_vocab(assets.chinese_vocab_file())


def make_config(text_file, output_dir, **overrides):
  settings = dict(input_file=text_file, output_file=os.path.join(output_dir, "tf_examples.tfrecord@3"),
                  vocab_file=assets.chinese_vocab_file(), max_seq_length=SEQ, max_predictions_per_seq=PRED,
                  dupe_factor=2, documents_per_chunk=8, num_workers=1, progress_seconds=1e9)
  settings.update(overrides)
  return DataConfig(**settings)


def read_examples(paths):
  return [tf.train.Example.FromString(r) for p in paths for r in tf.io.tf_record_iterator(p)]


def values(example, name):
  feature = example.features.feature[name]
  return list(getattr(feature, feature.WhichOneof("kind")).value)


@pytest.fixture(scope="module")
def built(text_file, tmp_path_factory):
  config = make_config(text_file, str(tmp_path_factory.mktemp("one_worker")))
  summary = data_build.build(config)
  paths = data_files.output_shard_paths(config.output_file)
  return config, summary, paths, read_examples(paths)


def test_features_have_the_original_names_types_and_lengths(built):
  _, summary, paths, examples = built
  assert [os.path.basename(p) for p in paths] == [f"tf_examples.tfrecord-0000{i}-of-00003" for i in range(3)]
  assert len(examples) == summary["instances"] > 300
  for example in examples:
    assert set(example.features.feature) == set(FEATURE_KINDS)
    for name, (kind, length) in FEATURE_KINDS.items():
      assert example.features.feature[name].WhichOneof("kind") == kind
      assert len(values(example, name)) == length


def test_padding_weights_and_positions(built, vocab):
  for example in built[3]:
    mask = values(example, "input_mask")
    n = sum(mask)
    assert mask == [1] * n + [0] * (SEQ - n)
    assert values(example, "input_ids")[n:] == [0] * (SEQ - n)
    assert values(example, "segment_ids")[n:] == [0] * (SEQ - n)
    weights = values(example, "masked_lm_weights")
    k = int(sum(weights))
    assert weights == [1.0] * k + [0.0] * (PRED - k) and k >= 1
    positions = values(example, "masked_lm_positions")
    assert positions[:k] == sorted(set(positions[:k])) and positions[k:] == [0] * (PRED - k)
    assert values(example, "masked_lm_ids")[k:] == [0] * (PRED - k)
    assert all(0 < p < n for p in positions[:k])


def original_ids(example):
  """The sequence before masking: labels put back at their positions."""
  ids = values(example, "input_ids")
  k = int(sum(values(example, "masked_lm_weights")))
  for p, label in zip(values(example, "masked_lm_positions")[:k], values(example, "masked_lm_ids")[:k]):
    ids[p] = label
  return ids, k


def test_special_tokens_are_never_masked(built, vocab):
  special = {vocab["[CLS]"], vocab["[SEP]"], vocab["[PAD]"]}
  for example in built[3]:
    ids, k = original_ids(example)
    n = sum(values(example, "input_mask"))
    assert ids[0] == vocab["[CLS]"] and ids[n - 1] == vocab["[SEP]"]
    assert ids[:n].count(vocab["[SEP]"]) == 2
    assert not special & set(values(example, "masked_lm_ids")[:k])
    # Masking never touched a special token in place either.
    inputs = values(example, "input_ids")
    assert [i for i, t in enumerate(inputs[:n]) if t in special] == [i for i, t in enumerate(ids[:n])
                                                                      if t in special]


def test_mask_rate_and_80_10_10_split(built, vocab):
  masked = maskable = as_mask = kept = 0
  for example in built[3]:
    ids, k = original_ids(example)
    inputs = values(example, "input_ids")
    n = sum(values(example, "input_mask"))
    maskable += n - 3
    for p in values(example, "masked_lm_positions")[:k]:
      masked += 1
      as_mask += inputs[p] == vocab["[MASK]"]
      kept += inputs[p] == ids[p]
  assert masked > 5000
  # round(n * 0.15) predictions over n - 3 maskable tokens, whole words only: a little above 15%.
  assert 0.145 < masked / maskable < 0.16
  assert abs(as_mask / masked - 0.8) < 0.025
  assert abs(kept / masked - 0.1) < 0.02
  assert abs((masked - as_mask - kept) / masked - 0.1) < 0.02
  assert built[1]["masked_fraction"] == pytest.approx(masked / maskable, abs=1e-6)


def test_output_is_the_same_for_any_number_of_workers(built, text_file, tmp_path):
  config = make_config(text_file, str(tmp_path / "two"), num_workers=2)
  data_build.build(config)
  for one, two in zip(built[2], data_files.output_shard_paths(config.output_file)):
    assert pathlib.Path(one).read_bytes() == pathlib.Path(two).read_bytes()
  other_seed = make_config(text_file, str(tmp_path / "seed"), random_seed=1)
  data_build.build(other_seed)
  assert pathlib.Path(built[2][0]).read_bytes() != pathlib.Path(
      data_files.output_shard_paths(other_seed.output_file)[0]).read_bytes()


def test_summary_json_beside_the_output(built):
  config, summary, paths, examples = built
  path = os.path.join(os.path.dirname(paths[0]), "summary.tf_examples.tfrecord.json")
  on_disk = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
  assert on_disk == summary
  assert [f["path"] for f in summary["files"]] == paths
  assert sum(f["instances"] for f in summary["files"]) == len(examples)
  assert summary["tokens"] == sum(sum(values(e, "input_mask")) for e in examples)
  assert summary["average_sequence_fill"] == pytest.approx(summary["tokens"] / (len(examples) * SEQ), 1e-5)
  # Most Chinese words jieba finds have two or more characters; without a segmenter almost no masked
  # group would (only ## WordPieces of Latin words and numbers).
  assert summary["whole_words_masked"] > 0.3 * summary["masked_words"]
  assert summary["documents"] == 42 and summary["invalid_utf8_lines"] == 0 and summary["seconds"] > 0
  labels = [values(e, "next_sentence_labels")[0] for e in examples]
  assert summary["random_next_fraction"] == pytest.approx(sum(labels) / len(labels), abs=1e-6)
  assert 0.4 < summary["random_next_fraction"] < 0.7
  # A glob over the shards, as run_pretraining is given, does not pick up the summary.
  assert sorted(tf.io.gfile.glob(os.path.join(os.path.dirname(paths[0]), "tf_examples.*"))) == paths


def run_reader(paths, is_training, batch_size=4):
  with tf.Graph().as_default():
    input_fn = pretraining_input.input_fn_builder(paths, SEQ, PRED, is_training=is_training)
    batch = tf.data.make_one_shot_iterator(input_fn({"batch_size": batch_size})).get_next()
    with tf.Session() as session:
      return session.run(batch), {k: v.dtype for k, v in batch.items()}


def test_reader_of_run_pretraining_parses_the_output(built):
  paths, examples = built[2], built[3]
  pretraining_input.check_feature_lengths(paths, SEQ, PRED)
  for is_training in (True, False):
    batch, dtypes = run_reader(paths, is_training)
    assert set(batch) == set(FEATURE_KINDS)
    assert dtypes["masked_lm_weights"] == tf.float32
    assert all(dtypes[k] == tf.int32 for k in FEATURE_KINDS if k != "masked_lm_weights")
    assert batch["input_ids"].shape == (4, SEQ) and batch["masked_lm_ids"].shape == (4, PRED)
    assert batch["next_sentence_labels"].shape == (4, 1)
  # Evaluation reads in order: the first batch is the first records of the first file.
  first = [values(e, "input_ids") for e in read_examples(paths[:1])[:4]]
  np.testing.assert_array_equal(run_reader(paths[:1], False)[0]["input_ids"], first)


def test_reader_parses_files_made_like_the_original_tool(tmp_path):
  """The original writes tf.train.Examples built with the protobuf API; ours encodes the same bytes'
  meaning directly (both encoders)."""
  rng = np.random.RandomState(0)
  path = str(tmp_path / "original.tfrecord")
  encoder = example_encoder.InstanceEncoder(SEQ, PRED, vocab_size=21128)
  with tf.io.TFRecordWriter(path) as writer:
    for n, k in ((100, 15), (SEQ, PRED), (7, 1)):
      ids, labels = rng.randint(0, 21128, n).tolist(), rng.randint(0, 21128, k).tolist()
      segments = [0] * (n // 2) + [1] * (n - n // 2)
      positions = sorted(rng.choice(n, k, replace=False).tolist())
      v = {"input_ids": ids + [0] * (SEQ - n), "input_mask": [1] * n + [0] * (SEQ - n),
           "segment_ids": segments + [0] * (SEQ - n), "masked_lm_positions": positions + [0] * (PRED - k),
           "masked_lm_ids": labels + [0] * (PRED - k), "masked_lm_weights": [1.0] * k + [0.0] * (PRED - k),
           "next_sentence_labels": [n % 2]}
      feature = collections.OrderedDict(
          (name, tf.train.Feature(float_list=tf.train.FloatList(value=x)) if name == "masked_lm_weights"
           else tf.train.Feature(int64_list=tf.train.Int64List(value=x))) for name, x in v.items())
      example = tf.train.Example(features=tf.train.Features(feature=feature))
      assert tf.train.Example.FromString(example_encoder.encode_example(v)) == example
      assert tf.train.Example.FromString(encoder.encode(ids, segments, positions, labels, n % 2)) == example
      writer.write(example.SerializeToString())
  pretraining_input.check_feature_lengths([path], SEQ, PRED)
  batch, _ = run_reader([path], is_training=False, batch_size=3)
  np.testing.assert_array_equal(batch["input_ids"][2], v["input_ids"])
  np.testing.assert_array_equal(batch["masked_lm_positions"][2], v["masked_lm_positions"])
  np.testing.assert_array_equal(batch["masked_lm_weights"][2], v["masked_lm_weights"])
  with pytest.raises(ValueError, match="does not fit"):
    encoder.encode(list(range(SEQ + 1)), [0] * (SEQ + 1), [1], [5], False)


def test_reader_accepts_data_without_next_sentence_labels_unless_nsp(tmp_path):
  """The Chinese release's reader takes MLM-only data that leaves out next_sentence_labels."""
  instances = random_instances(4, SEQ, PRED, nsp=True)
  for instance in instances:
    del instance["next_sentence_labels"]
  path = write_tfrecord(tmp_path / "no_nsp.tfrecord", instances)
  pretraining_input.check_feature_lengths([path], SEQ, PRED)
  for is_training in (False, True):
    batch, _ = run_reader([path], is_training)
    assert batch["next_sentence_labels"].shape == (4, 1) and not batch["next_sentence_labels"].any()
  batch, _ = run_reader([path], False)
  np.testing.assert_array_equal(batch["input_ids"], [i["input_ids"] for i in instances])
  with pytest.raises(pretraining_input.PretrainingDataError,
                     match=rf"^{re.escape(path)}: no feature 'next_sentence_labels', which --nsp needs"):
    pretraining_input.check_feature_lengths([path], SEQ, PRED, nsp=True)


def test_contiguous_mode_has_one_segment_and_no_next_sentence_task(text_file, tmp_path, vocab):
  config = make_config(text_file, str(tmp_path), instance_mode="contiguous", dupe_factor=1)
  summary = data_build.build(config)
  examples = read_examples(data_files.output_shard_paths(config.output_file))
  assert len(examples) == summary["instances"] > 100
  for example in examples:
    ids, _ = original_ids(example)
    n = sum(values(example, "input_mask"))
    assert values(example, "segment_ids") == [0] * SEQ
    assert values(example, "next_sentence_labels") == [0]
    assert ids[0] == vocab["[CLS]"] and ids[n - 1] == vocab["[SEP]"] and ids[:n].count(vocab["[SEP]"]) == 1


def test_existing_output_is_kept_unless_overwrite(built, text_file):
  config = built[0]
  before = [pathlib.Path(p).read_bytes() for p in built[2]]
  with pytest.raises(data_files.DataFileError, match="--output_file: output already exists"):
    data_build.build(config)
  assert [pathlib.Path(p).read_bytes() for p in built[2]] == before
  directory = os.path.dirname(built[2][0])
  assert sorted(os.listdir(directory)) == sorted([os.path.basename(p) for p in built[2]] +
                                                 ["summary.tf_examples.tfrecord.json", atomic_io.MANIFEST])
  # Rerunning with --overwrite replaces the files with the same bytes (the run is reproducible).
  data_build.build(dataclasses.replace(config, overwrite=True))
  assert [pathlib.Path(p).read_bytes() for p in built[2]] == before


def test_run_script(tmp_path):
  """run_scripts/create_pretraining_data.sh on the fixture slice: both entry points, both parts."""
  env = dict(os.environ, RAW_FILE=str(FIXTURE), VOCAB_FILE=assets.chinese_vocab_file(),
             TEXT_DIR=str(tmp_path / "text"), OUTPUT_DIR=str(tmp_path / "out"), DUPE_FACTOR="1",
             NUM_SHARDS="2", MAX_SEQ_LENGTH="64", MAX_PREDICTIONS_PER_SEQ="10", NUM_WORKERS="2",
             HELDOUT_FRACTION="0.1")
  subprocess.run(["bash", str(ROOT / "run_scripts" / "create_pretraining_data.sh")], env=env, check=True,
                 capture_output=True, timeout=300)
  for part in ("train", "heldout"):
    paths = sorted(str(p) for p in (tmp_path / "out" / part).glob("tf_examples.tfrecord-*"))
    assert len(paths) == 2
    pretraining_input.check_feature_lengths(paths, 64, 10)
    summary = json.loads((tmp_path / "out" / part / "summary.tf_examples.tfrecord.json").read_text())
    assert summary["instances"] == len(read_examples(paths)) > 0
  assert (tmp_path / "text" / "heldout.txt").read_text(encoding="utf-8").count("\n\n") == 3  # 4 documents
