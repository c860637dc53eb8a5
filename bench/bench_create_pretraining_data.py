"""Pretraining data tool: instances per second on the whole People's Daily corpus (January 1998).

Three runs in one process, same flags: ours with 1 worker, ours with 2 workers, and a plain
single-process version of the original algorithm written here (FullTokenizer on every line, jieba
marks as `##` strings like Chinese-BERT-wwm, one global generator, tf.train.Example + TFRecordWriter).
Each run is timed end to end: vocab and jieba loading, reading, tokenizing, cutting, masking, writing.

  python bench/bench_create_pretraining_data.py [--dupe_factor 5] [--repeats 2]
"""

import collections
import logging as std_logging
import os
import random
import resource
import shutil
import sys
import tempfile
import time

from absl import app
from absl import flags
from absl import logging

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402  pylint: disable=g-import-not-at-top

flags.DEFINE_integer("dupe_factor", 5, "dupe_factor of every run.")
flags.DEFINE_integer("max_seq_length", 128, "max_seq_length of every run.")
flags.DEFINE_integer("max_predictions_per_seq", 20, "max_predictions_per_seq of every run.")
flags.DEFINE_integer("repeats", 2, "Rounds over the three runs; the fastest of each counts.")
flags.DEFINE_integer("max_lines", 0, "Use only the first N lines of the corpus (0: all; for a quick try).")
FLAGS = flags.FLAGS

# ---------------------------------------------------------------------------------------------------
# The plain version: the original tool's algorithm, written straightforwardly.


def plain_read_documents(path, tokenizer, segment):
  """All documents, each a list of sentences, each a list of token strings (## marks word continuation)."""
  from mobilebert import tokenization
  documents = [[]]
  with open(path, encoding="utf-8") as f:
    for line in f:
      line = line.strip()
      if not line:
        documents.append([])
        continue
      tokens = tokenizer.tokenize(line)
      # Chinese-BERT-wwm style: a Chinese character inside a segmented word gets a ## mark.
      marks = []
      for word in segment(line):
        for k, char in enumerate(word):
          if tokenization.is_chinese_char(ord(char)):
            marks.append(k > 0 and tokenization.is_chinese_char(ord(word[k - 1])))
      chinese = [i for i, t in enumerate(tokens) if len(t) == 1 and tokenization.is_chinese_char(ord(t))]
      if len(chinese) == len(marks):
        for i, mark in zip(chinese, marks):
          if mark:
            tokens[i] = "##" + tokens[i]
      if tokens:
        documents[-1].append(tokens)
  return [d for d in documents if d]


def plain_truncate(tokens_a, tokens_b, max_num_tokens, rng):
  while len(tokens_a) + len(tokens_b) > max_num_tokens:
    trunc = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
    if rng.random() < 0.5:
      del trunc[0]
    else:
      trunc.pop()


def plain_mask(tokens, vocab_words, rng, max_predictions):
  from mobilebert import tokenization
  cand_indexes = []
  for i, token in enumerate(tokens):
    if token in ("[CLS]", "[SEP]"):
      continue
    if cand_indexes and token.startswith("##"):
      cand_indexes[-1].append(i)
    else:
      cand_indexes.append([i])
  rng.shuffle(cand_indexes)
  # Drop the marks of Chinese characters (a real WordPiece is never ## + a CJK character).
  output = [t[2:] if len(t) == 3 and t.startswith("##") and tokenization.is_chinese_char(ord(t[2]))
            else t for t in tokens]
  labels = list(output)
  num_to_predict = min(max_predictions, max(1, int(round(len(tokens) * 0.15))))
  masked = []
  for index_set in cand_indexes:
    if len(masked) >= num_to_predict:
      break
    if len(masked) + len(index_set) > num_to_predict:
      continue
    for index in index_set:
      if rng.random() < 0.8:
        output[index] = "[MASK]"
      elif rng.random() >= 0.5:
        output[index] = vocab_words[rng.randint(0, len(vocab_words) - 1)]
      masked.append((index, labels[index]))
  masked.sort()
  return output, [i for i, _ in masked], [t for _, t in masked]


def plain_instances(documents, index, max_seq_length, rng, vocab_words, max_predictions):
  document = documents[index]
  max_num_tokens = max_seq_length - 3
  target = rng.randint(2, max_num_tokens) if rng.random() < 0.1 else max_num_tokens
  out, chunk, length, i = [], [], 0, 0
  while i < len(document):
    chunk.append(document[i])
    length += len(document[i])
    if i == len(document) - 1 or length >= target:
      a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
      tokens_a = [t for s in chunk[:a_end] for t in s]
      tokens_b = []
      is_random_next = len(chunk) == 1 or rng.random() < 0.5
      if is_random_next:
        for _ in range(10):
          other = rng.randint(0, len(documents) - 1)
          if other != index:
            break
        random_document = documents[other]
        for sentence in random_document[rng.randint(0, len(random_document) - 1):]:
          tokens_b.extend(sentence)
          if len(tokens_b) >= target - len(tokens_a):
            break
        i -= len(chunk) - a_end
      else:
        tokens_b = [t for s in chunk[a_end:] for t in s]
      plain_truncate(tokens_a, tokens_b, max_num_tokens, rng)
      tokens = ["[CLS]"] + tokens_a + ["[SEP]"] + tokens_b + ["[SEP]"]
      segment_ids = [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1)
      masked = plain_mask(tokens, vocab_words, rng, max_predictions)
      out.append((masked, segment_ids, is_random_next))
      chunk, length = [], 0
    i += 1
  return out


def plain_example(tf, tokenizer, instance, max_seq_length, max_predictions):
  (tokens, positions, labels), segment_ids, is_random_next = instance
  ids = tokenizer.convert_tokens_to_ids(tokens)
  pad = max_seq_length - len(ids)
  label_ids = tokenizer.convert_tokens_to_ids(labels)
  pred_pad = max_predictions - len(positions)
  ints = lambda v: tf.train.Feature(int64_list=tf.train.Int64List(value=v))
  features = collections.OrderedDict([
      ("input_ids", ints(ids + [0] * pad)), ("input_mask", ints([1] * len(ids) + [0] * pad)),
      ("segment_ids", ints(segment_ids + [0] * pad)),
      ("masked_lm_positions", ints(positions + [0] * pred_pad)),
      ("masked_lm_ids", ints(label_ids + [0] * pred_pad)),
      ("masked_lm_weights", tf.train.Feature(float_list=tf.train.FloatList(
          value=[1.0] * len(positions) + [0.0] * pred_pad))),
      ("next_sentence_labels", ints([1 if is_random_next else 0]))])
  return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def run_plain(input_path, vocab_file, output_paths, seed, dupe_factor, max_seq_length, max_predictions):
  """The original create_pretraining_data, single process. Returns the number of instances."""
  import jieba
  import tensorflow.compat.v1 as tf
  from mobilebert import tokenization
  tokenizer = tokenization.FullTokenizer(vocab_file, do_lower_case=True)
  jieba.setLogLevel(std_logging.WARNING)
  segmenter = jieba.Tokenizer()
  segmenter.initialize()
  rng = random.Random(seed)
  documents = plain_read_documents(input_path, tokenizer, segmenter.lcut)
  rng.shuffle(documents)
  vocab_words = list(tokenizer.vocab.keys())
  instances = []
  for _ in range(dupe_factor):
    for index in range(len(documents)):
      instances.extend(plain_instances(documents, index, max_seq_length, rng, vocab_words,
                                       max_predictions))
  rng.shuffle(instances)
  writers = [tf.io.TFRecordWriter(p) for p in output_paths]
  for n, instance in enumerate(instances):
    writers[n % len(writers)].write(plain_example(tf, tokenizer, instance, max_seq_length,
                                                  max_predictions))
  for writer in writers:
    writer.close()
  return len(instances)


# ---------------------------------------------------------------------------------------------------
# The benchmark.


def prepare_corpus(directory):
  from mobilebert import assets
  from pretrain import prepare_peoples_daily as prepare
  documents = prepare.group_documents(prepare.read_tagged_lines(assets.peoples_daily_file(),
                                                                FLAGS.max_lines))
  path = os.path.join(directory, "peoples_daily.txt")
  with open(path, "w", encoding="utf-8") as f:
    f.write(prepare.format_documents(documents))
  return path, len(documents), sum(len(s) for d in documents for s in d)


def run_ours(input_path, vocab_file, output_dir, num_workers):
  from pretrain import data_build
  from pretrain.data_config import DataConfig
  config = DataConfig(
      input_file=input_path, output_file=os.path.join(output_dir, "tf_examples.tfrecord@4"),
      vocab_file=vocab_file, max_seq_length=FLAGS.max_seq_length,
      max_predictions_per_seq=FLAGS.max_predictions_per_seq, dupe_factor=FLAGS.dupe_factor,
      num_workers=num_workers, overwrite=True, progress_seconds=1e9)
  return data_build.build(config)["instances"]


def cpu_seconds():
  """CPU time of this process and of its finished children (the worker processes)."""
  own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
  return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


Run = collections.namedtuple("Run", ["name", "workers", "instances", "seconds", "cpu_seconds", "load"])


def measure(name, workers, fn):
  load = os.getloadavg()[0]
  start, cpu_start = time.perf_counter(), cpu_seconds()
  instances = fn()
  return Run(name, workers, instances, time.perf_counter() - start, cpu_seconds() - cpu_start, load)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  from mobilebert import assets
  vocab_file = assets.chinese_vocab_file()
  work = tempfile.mkdtemp(prefix="bench_pretraining_data_")
  try:
    input_path, num_documents, num_chars = prepare_corpus(work)
    plain_dir = os.path.join(work, "plain")
    os.makedirs(plain_dir)
    plain_paths = [os.path.join(plain_dir, f"tf_examples.tfrecord-{i:05d}-of-00004") for i in range(4)]
    outputs = {w: os.path.join(work, f"ours_{w}") for w in (1, 2)}
    jobs = [("plain Python (original algorithm)", 1, lambda: run_plain(
        input_path, vocab_file, plain_paths, 12345, FLAGS.dupe_factor, FLAGS.max_seq_length,
        FLAGS.max_predictions_per_seq))]
    jobs += [("ours (pretrain/create_pretraining_data.py)", w,
              lambda w=w: run_ours(input_path, vocab_file, outputs[w], w)) for w in (1, 2)]
    # Rounds alternate between the implementations so that a change in the machine's load (it may be
    # shared) hits all of them; the fastest round of each counts.
    runs = [measure(*job) for _ in range(FLAGS.repeats) for job in jobs]
    best = [min((r for r in runs if (r.name, r.workers) == job[:2]), key=lambda r: r.seconds)
            for job in jobs]
    identical = all(_same_bytes(os.path.join(outputs[1], name), os.path.join(outputs[2], name))
                    for name in os.listdir(outputs[1]) if name.startswith("tf_examples"))
  finally:
    shutil.rmtree(work, ignore_errors=True)
  print(f"{machine.describe()}; jieba {__import__('jieba').__version__}")
  print(f"corpus: {num_documents:,} documents, {num_chars:,} characters; max_seq_length "
        f"{FLAGS.max_seq_length}, max_predictions_per_seq {FLAGS.max_predictions_per_seq}, dupe_factor "
        f"{FLAGS.dupe_factor}, jieba whole-word masking, sentence pairs, 4 output shards; "
        f"best of {FLAGS.repeats} round(s)")
  print()
  print("| implementation | workers | instances | seconds | instances/s | vs plain | CPU seconds | "
        "load before |")
  print("|---|---|---|---|---|---|---|---|")
  plain_rate = best[0].instances / best[0].seconds
  for r in best:
    rate = r.instances / r.seconds
    print(f"| {r.name} | {r.workers} | {r.instances:,} | {r.seconds:.1f} | {rate:,.0f} | "
          f"{rate / plain_rate:.2f}x | {r.cpu_seconds:.1f} | {r.load:.1f} |")
  print()
  print(f"1-worker and 2-worker outputs byte-identical: {identical}")


def _same_bytes(a, b):
  with open(a, "rb") as fa, open(b, "rb") as fb:
    return fa.read() == fb.read()


if __name__ == "__main__":
  app.run(main)
