"""Settings of one run of the pretraining data tool, checked before any file is read or written.

Field names are the flags of the original `create_pretraining_data.py` plus the new ones; every error
names the flag and says what was expected.
"""

import dataclasses
import math
import os

from mobilebert import cli
from mobilebert import text_encoding

# How instances are cut from the text. `sentence_pair` is the original BERT tool: segments A and B, with
# B a random document's text half of the time (next-sentence prediction). `contiguous` is RoBERTa's
# FULL-SENTENCES: contiguous sentences, crossing document boundaries, in one segment, label 0.
INSTANCE_MODES = ("sentence_pair", "contiguous")

# Word segmenters for Chinese whole-word masking; `none` masks character by character.
SEGMENTERS = ("jieba", "jieba_no_hmm", "none")


# sentence_pair needs [CLS] A [SEP] B [SEP] with A and B non-empty, and draws short targets from
# [2, max_num_tokens]; no data the tool writes is shorter, so the trainer refuses shorter lengths too.
MIN_SEQ_LENGTH = 5


class DataConfigError(cli.FlagError):
  """A flag value the tool cannot work with."""


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """Everything that decides the output of a run (and a few things that only decide how it runs)."""
  input_file: str
  output_file: str
  vocab_file: str
  do_lower_case: bool = True
  do_whole_word_mask: bool = True  # the original's default is False; this tool is for Chinese wwm
  max_seq_length: int = 128
  max_predictions_per_seq: int = 20
  random_seed: int = 12345
  dupe_factor: int = 10
  masked_lm_prob: float = 0.15
  short_seq_prob: float = 0.1
  segmenter: str = "jieba"
  instance_mode: str = "sentence_pair"
  documents_per_chunk: int = 256
  max_unk_fraction: float = 0.1
  input_encoding: str = "utf-8"
  max_invalid_line_fraction: float = 0.01
  # Not part of the output: the bytes written are the same for every value of these.
  num_workers: int = 0
  overwrite: bool = False
  progress_seconds: float = 10.0

  def resolved_num_workers(self):
    """num_workers, with 0 meaning one per CPU."""
    return self.num_workers or (os.cpu_count() or 1)

  def max_num_tokens(self):
    """Room for text in a sequence: max_seq_length minus [CLS] and one or two [SEP]."""
    return self.max_seq_length - (3 if self.instance_mode == "sentence_pair" else 2)

  def validate(self):
    """Raises DataConfigError for the first flag whose value cannot work."""
    for name in ("input_file", "output_file", "vocab_file"):
      if not getattr(self, name):
        raise DataConfigError(f"--{name} is required")
    _check(self.instance_mode in INSTANCE_MODES, "instance_mode", self.instance_mode,
           f"one of {', '.join(INSTANCE_MODES)}")
    _check(self.segmenter in SEGMENTERS, "segmenter", self.segmenter, f"one of {', '.join(SEGMENTERS)}")
    _check(self.max_seq_length >= MIN_SEQ_LENGTH, "max_seq_length", self.max_seq_length,
           f"at least {MIN_SEQ_LENGTH}")
    _check(0.0 < self.masked_lm_prob < 1.0, "masked_lm_prob", self.masked_lm_prob, "in (0, 1)")
    _check(0.0 <= self.short_seq_prob <= 1.0, "short_seq_prob", self.short_seq_prob, "in [0, 1]")
    _check(self.dupe_factor >= 1, "dupe_factor", self.dupe_factor, "at least 1")
    _check(self.num_workers >= 0, "num_workers", self.num_workers, "0 (one per CPU) or more")
    _check(self.documents_per_chunk >= 1, "documents_per_chunk", self.documents_per_chunk, "at least 1")
    _check(0.0 <= self.max_unk_fraction <= 1.0, "max_unk_fraction", self.max_unk_fraction, "in [0, 1]")
    _check(0.0 <= self.max_invalid_line_fraction <= 1.0, "max_invalid_line_fraction",
           self.max_invalid_line_fraction, "in [0, 1]")
    _check(text_encoding.known(self.input_encoding), "input_encoding", self.input_encoding,
           "a text encoding Python knows (e.g. utf-8, gbk, gb18030, big5, utf-16)")
    _check(self.max_predictions_per_seq >= 1, "max_predictions_per_seq", self.max_predictions_per_seq,
           "at least 1")
    if self.max_predictions_per_seq > self.max_seq_length:
      raise DataConfigError(
          f"--max_predictions_per_seq={self.max_predictions_per_seq} is more than --max_seq_length="
          f"{self.max_seq_length}: a sequence cannot have more masked positions than tokens "
          "(run_pretraining.py refuses such data)")
    self._check_prediction_room()

  def _check_prediction_room(self):
    # A full sequence asks for round(max_seq_length * masked_lm_prob) predictions (the original rule,
    # Python rounding); with fewer slots the mask rate would silently drop on long sequences.
    wanted = int(round(self.max_seq_length * self.masked_lm_prob))
    if wanted > self.max_predictions_per_seq:
      # round(L * p) <= M while L * p < M + 0.5; four decimals, rounded down.
      highest_prob = math.floor((self.max_predictions_per_seq + 0.5) / self.max_seq_length * 1e4) / 1e4
      raise DataConfigError(
          f"--max_predictions_per_seq={self.max_predictions_per_seq} is too small: a full sequence of "
          f"--max_seq_length={self.max_seq_length} tokens with --masked_lm_prob={self.masked_lm_prob} "
          f"gets round({self.max_seq_length} x {self.masked_lm_prob}) = {wanted} masked positions. "
          f"Set --max_predictions_per_seq to at least {wanted} (and pass the same value to "
          f"run_pretraining.py), or lower --masked_lm_prob to at most {highest_prob:.4f}.")


def _check(ok, flag, value, expected):
  if not ok:
    raise DataConfigError(f"--{flag}={value!r}: expected {expected}")
