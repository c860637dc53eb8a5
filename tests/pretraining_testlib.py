"""Helpers shared by the pretraining tests: tiny TFRecords, batches and the tiny student/teacher pair.

The pair is the reference pack's release-like pair (tests/fixtures/reference/golden): the student
mirrors student_base_f2 and the teacher RoBERTa-wwm-ext, both 2 layers, hidden 64, vocab 512.
"""

import numpy as np
import tensorflow.compat.v1 as tf

from conftest import REFERENCE
from pretrain import run_pretraining

GOLDEN = REFERENCE / "golden"
STUDENT_CONFIG = str(GOLDEN / "tiny_student_f2.json")
TEACHER_CONFIG = str(GOLDEN / "tiny_teacher_bert.json")
TEACHER_CHECKPOINT = str(GOLDEN / "tiny_teacher_bert.ckpt")
VOCAB_SIZE = 512


def random_instances(count, seq_length, max_predictions, seed=0, nsp=False):
  """`count` dicts of the seven pretraining features: random ids, padding, masked positions."""
  rng = np.random.RandomState(seed)
  instances = []
  for _ in range(count):
    length = rng.randint(seq_length // 2, seq_length + 1)
    ids = np.zeros(seq_length, np.int64)
    ids[:length] = rng.randint(5, VOCAB_SIZE, length)
    segments = np.zeros(seq_length, np.int64)
    segments[length // 2:length] = 1
    num_masked = rng.randint(1, max_predictions + 1)
    positions = np.zeros(max_predictions, np.int64)
    positions[:num_masked] = np.sort(rng.choice(np.arange(1, length), num_masked, replace=False))
    labels = np.zeros(max_predictions, np.int64)
    labels[:num_masked] = ids[positions[:num_masked]]
    ids[positions[:num_masked]] = 4  # [MASK]
    weights = np.zeros(max_predictions, np.float32)
    weights[:num_masked] = 1.0
    instances.append({
        "input_ids": ids, "input_mask": (np.arange(seq_length) < length).astype(np.int64),
        "segment_ids": segments, "masked_lm_positions": positions, "masked_lm_ids": labels,
        "masked_lm_weights": weights,
        "next_sentence_labels": np.array([rng.randint(2) if nsp else 0], np.int64)})
  return instances


def write_tfrecord(path, instances):
  """Writes instances as tf.train.Examples, the way create_pretraining_data.py stores them."""
  def feature(values):
    if values.dtype == np.float32:
      return tf.train.Feature(float_list=tf.train.FloatList(value=values.tolist()))
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values.tolist()))

  with tf.io.TFRecordWriter(str(path)) as writer:
    for instance in instances:
      example = tf.train.Example(features=tf.train.Features(
          feature={name: feature(values) for name, values in instance.items()}))
      writer.write(example.SerializeToString())
  return str(path)


def batch_features(instances):
  """A batch as constant int32/float32 tensors, as the input pipeline delivers it."""
  return {name: tf.constant(np.stack([i[name] for i in instances]).astype(
      np.float32 if name == "masked_lm_weights" else np.int32)) for name in instances[0]}


def variable_values(session, scope=""):
  """{name: value} of the global variables whose name starts with `scope`."""
  variables = [v for v in tf.global_variables() if v.name.startswith(scope)]
  values = session.run(variables)
  return {v.name.split(":")[0]: value for v, value in zip(variables, values)}


def settings_for(argv):
  """Parses argv like run_pretraining's command line does and returns the checked settings."""
  flag_values = run_pretraining.FLAGS
  run_pretraining.define_flags()
  flag_values.unparse_flags()
  flag_values(["run_pretraining.py"] + list(argv))
  try:
    return run_pretraining.settings_from_flags(flag_values)
  finally:
    flag_values.unparse_flags()
