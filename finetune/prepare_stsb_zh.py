"""Splits the released Chinese STS-B files into the `stsb_zh` task's train/dev/test (what data/stsb_zh holds).

The release has train (5,231 pairs) and valid (1,458) only. valid becomes `test.tsv` unchanged: it is
scored once, never used to choose a checkpoint or a setting. A dev set is cut from train by a fixed rule
over groups of pairs that share a sentence (connected components: a sentence in dev never appears in
train, so dev measures pairs the model has not seen either half of), a group going to dev when a seeded
SHA-256 of its smallest sentence falls in the lowest `dev_percent` of 100 buckets. Rows are copied byte
for byte in file order; files are written atomically.

  python -m finetune.prepare_stsb_zh --input_dir=../shared/data/stsb_zh --output_dir=data/stsb_zh
"""

import hashlib
import json
import os

import tensorflow.compat.v1 as tf
from absl import flags, logging

from mobilebert import atomic_io, cli

TOOL = "finetune.prepare_stsb_zh"
INPUT_FILES = {"train": "train.tsv", "valid": "valid.tsv"}
OUTPUT_FILES = ("train.tsv", "dev.tsv", "test.tsv")
_DEFAULTS = {"dev_percent": 10, "seed": "stsb_zh-dev"}


def read_rows(path):
  """The lines of a released file (newline kept) and their two sentences; DataError on a malformed row."""
  if not tf.io.gfile.exists(path):
    raise cli.DataError(f"{path}: not found (expected the released STS-B file)")
  with tf.io.gfile.GFile(path, "rb") as f:
    lines = [line for line in f.read().decode("utf-8").splitlines(keepends=True) if line.strip()]
  pairs = []
  for line_no, line in enumerate(lines, 1):
    fields = line.rstrip("\r\n").split("\t")
    if len(fields) != 3:
      raise cli.DataError(f"{path}:{line_no}: expected text_a, text_b, score (3 tab-separated "
                          f"columns), found {len(fields)}")
    pairs.append((fields[0], fields[1]))
  return lines, pairs


def sentence_groups(pairs):
  """For each pair, the smallest sentence of its group (pairs linked through a shared sentence)."""
  parent = {}

  def root(sentence):
    parent.setdefault(sentence, sentence)
    while parent[sentence] != sentence:
      parent[sentence] = parent[parent[sentence]]
      sentence = parent[sentence]
    return sentence

  for a, b in pairs:
    parent[root(a)] = root(b)
  smallest = {}
  for sentence in parent:
    key = root(sentence)
    smallest[key] = min(smallest.get(key, sentence), sentence)
  return [smallest[root(a)] for a, _ in pairs]


def in_dev(group, dev_percent=_DEFAULTS["dev_percent"], seed=_DEFAULTS["seed"]):
  """True if the group keyed by `group` (its smallest sentence) belongs to dev."""
  digest = hashlib.sha256(f"{seed}\t{group}".encode("utf-8")).digest()
  return int.from_bytes(digest[:8], "big") % 100 < dev_percent


def split_train(lines, pairs, dev_percent=_DEFAULTS["dev_percent"], seed=_DEFAULTS["seed"]):
  """(train lines, dev lines) of the released train file, in file order."""
  train, dev = [], []
  for line, group in zip(lines, sentence_groups(pairs)):
    (dev if in_dev(group, dev_percent, seed) else train).append(line)
  return train, dev


def prepare(input_dir, output_dir, dev_percent=_DEFAULTS["dev_percent"], seed=_DEFAULTS["seed"]):
  """Writes train/dev/test.tsv into output_dir; returns {file name: rows}."""
  if not 0 < dev_percent < 100:
    raise cli.FlagError(f"--dev_percent must be in 1..99, got {dev_percent}")
  inputs = {name: os.path.join(input_dir, file) for name, file in INPUT_FILES.items()}
  outputs = [os.path.join(output_dir, name) for name in OUTPUT_FILES]
  atomic_io.check_spares_inputs({"--output_dir": outputs}, {"--input_dir": list(inputs.values())})
  atomic_io.check_replaceable(outputs, TOOL, True, "--output_dir")
  lines, pairs = read_rows(inputs["train"])
  test_lines, _ = read_rows(inputs["valid"])
  train, dev = split_train(lines, pairs, dev_percent, seed)
  counts = {}
  for name, rows in zip(OUTPUT_FILES, (train, dev, test_lines)):
    atomic_io.write_text(os.path.join(output_dir, name), "".join(rows), TOOL, flag="--output_dir")
    counts[name] = len(rows)
  logging.info("STS-B (zh) split into %s: %s", output_dir, counts)
  return counts


def main(argv):
  del argv
  flag_values = flags.FLAGS
  with cli.reporting_user_errors("prepare_stsb_zh"):
    counts = prepare(flag_values.input_dir, flag_values.output_dir, flag_values.dev_percent,
                     flag_values.seed)
  print(json.dumps(counts))


if __name__ == "__main__":
  flags.DEFINE_string("input_dir", None, "Directory with the released train.tsv and valid.tsv.")
  flags.DEFINE_string("output_dir", None, "Where to write train.tsv, dev.tsv and test.tsv.")
  flags.DEFINE_integer("dev_percent", _DEFAULTS["dev_percent"], "Share of sentence groups put in dev.")
  flags.DEFINE_string("seed", _DEFAULTS["seed"], "Salt of the group hash; the same salt, the same split.")
  flags.mark_flags_as_required(["input_dir", "output_dir"])
  cli.run_main(main, "prepare_stsb_zh")
