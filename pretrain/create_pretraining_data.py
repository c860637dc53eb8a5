"""Raw Chinese text -> masked-LM TFRecords for run_pretraining.py (Chinese-BERT-wwm style).

Input: UTF-8 text (or --input_encoding), one sentence per line, a blank line between documents.
Output: tf.train.Examples with the original tool's seven features, sharded, written atomically, plus
summary.<name>.json.

  python -m pretrain.create_pretraining_data --input_file=data/peoples_daily/train.txt \
    --output_file=output/pretraining_data/tf_examples.tfrecord@4 --vocab_file=vocab.txt \
    --max_seq_length=128 --max_predictions_per_seq=20 --num_workers=2
"""

from absl import flags
from absl import logging

from mobilebert import cli
from pretrain import data_build
from pretrain.data_config import DataConfig, INSTANCE_MODES, SEGMENTERS

_DEFAULTS = DataConfig(input_file="-", output_file="-", vocab_file="-")

flags.DEFINE_string("input_file", None, "Input text file(s): comma-separated, globs allowed.")
flags.DEFINE_string("output_file", None,
                    "Output TFRecord file(s): comma-separated, or path@N for N shards path-0000i-of-0000N.")
flags.DEFINE_string("vocab_file", None, "The vocab file of the BERT model to pretrain.")
flags.DEFINE_bool("do_lower_case", _DEFAULTS.do_lower_case, "Lower-case and strip accents (uncased vocab).")
flags.DEFINE_bool("do_whole_word_mask", _DEFAULTS.do_whole_word_mask,
                  "Mask whole words: ## WordPieces with their word, and with --segmenter Chinese words "
                  "(on by default here: this tool is for Chinese whole-word masking; the original's "
                  "default was off).")
flags.DEFINE_integer("max_seq_length", _DEFAULTS.max_seq_length, "Tokens per sequence, padded.")
flags.DEFINE_integer("max_predictions_per_seq", _DEFAULTS.max_predictions_per_seq,
                     "Masked-LM predictions per sequence, padded.")
flags.DEFINE_integer("random_seed", _DEFAULTS.random_seed, "Seed of every random choice.")
flags.DEFINE_integer("dupe_factor", _DEFAULTS.dupe_factor,
                     "Times the input is used, with different masks each time.")
flags.DEFINE_float("masked_lm_prob", _DEFAULTS.masked_lm_prob, "Share of tokens to mask.")
flags.DEFINE_float("short_seq_prob", _DEFAULTS.short_seq_prob,
                   "Probability of a sequence shorter than max_seq_length.")
flags.DEFINE_integer("num_workers", _DEFAULTS.num_workers,
                     "Worker processes (0: one per CPU). The output is the same for any value.")
flags.DEFINE_enum("segmenter", _DEFAULTS.segmenter, SEGMENTERS,
                  "Chinese word segmenter for whole-word masking (none: character by character).")
flags.DEFINE_enum("instance_mode", _DEFAULTS.instance_mode, INSTANCE_MODES,
                  "sentence_pair: segments A/B with next-sentence labels (original BERT). contiguous: "
                  "contiguous sentences, across documents, in one segment, label 0 (RoBERTa, no NSP).")
flags.DEFINE_integer("documents_per_chunk", _DEFAULTS.documents_per_chunk,
                     "Documents per unit of parallel work; instances are shuffled within a chunk and "
                     "random next sentences come from it. Changes the output (num_workers does not).")
flags.DEFINE_float("max_unk_fraction", _DEFAULTS.max_unk_fraction,
                   "Fail if more than this share of the text's tokens are [UNK] (vocab mismatch).")
flags.DEFINE_string("input_encoding", _DEFAULTS.input_encoding,
                    "Encoding of the input text, e.g. gbk, gb18030 or big5 for a corpus that is not UTF-8.")
flags.DEFINE_float("max_invalid_line_fraction", _DEFAULTS.max_invalid_line_fraction,
                   "Skip (and count) lines that do not decode, but fail if more than this share of a "
                   "file's lines do (wrong --input_encoding).")
flags.DEFINE_bool("overwrite", False, "Replace output files this tool wrote before (never other files).")
cli.define_verbose_flag()

FLAGS = flags.FLAGS


def config_from_flags():
  """The run's DataConfig, from the flags of the same names."""
  return DataConfig(**{name: FLAGS[name].value for name in (
      "input_file", "output_file", "vocab_file", "do_lower_case", "do_whole_word_mask",
      "max_seq_length", "max_predictions_per_seq", "random_seed", "dupe_factor", "masked_lm_prob",
      "short_seq_prob", "segmenter", "instance_mode", "documents_per_chunk", "max_unk_fraction",
      "input_encoding", "max_invalid_line_fraction", "num_workers", "overwrite")})


def main(argv):
  del argv
  logging.set_verbosity(logging.INFO)
  with cli.reporting_user_errors("create_pretraining_data"):
    data_build.build(config_from_flags())


if __name__ == "__main__":
  flags.mark_flags_as_required(["input_file", "output_file", "vocab_file"])
  cli.run_main(main, "create_pretraining_data")
