"""Bad inputs to the pretraining data tool: a clear error naming the flag or file, and no output."""

import logging
import os
import pathlib
import subprocess
import sys

import pytest
import tensorflow.compat.v1 as tf

from mobilebert import assets
from mobilebert import atomic_io
from mobilebert import tokenization
from pretrain import data_build
from pretrain import pretraining_input
from pretrain.corpus import CorpusError
from pretrain.data_config import DataConfig, DataConfigError
from pretrain.data_files import DataFileError

ROOT = pathlib.Path(__file__).resolve().parents[1]
TEXT = ("人民日报一九九八年元旦献辞。\n我们即将以丰收的喜悦送走牛年。\n以昂扬的斗志迎来虎年。\n\n"
        "北京举行新年音乐会。\n今晚的长安街流光溢彩，火树银花。\n")


def config(tmp_path, input_file, **overrides):
  settings = dict(input_file=str(input_file), output_file=str(tmp_path / "out" / "tf_examples.tfrecord@2"),
                  vocab_file=assets.chinese_vocab_file(), dupe_factor=1, num_workers=1,
                  segmenter="none", progress_seconds=1e9)
  settings.update(overrides)
  return DataConfig(**settings)


def text_file(tmp_path, data, name="input.txt"):
  path = tmp_path / name
  path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
  return path


def assert_no_output(tmp_path):
  """Neither final files nor temporary ones (hidden) are left behind."""
  out = tmp_path / "out"
  assert not out.exists() or os.listdir(out) == []


def test_missing_input_file(tmp_path):
  with pytest.raises(DataFileError, match=r"--input_file: file not found: .*missing\.txt"):
    data_build.build(config(tmp_path, tmp_path / "missing.txt"))
  with pytest.raises(DataFileError, match=r"--input_file: pattern .*nothing-\*\.txt.* matches no file"):
    data_build.build(config(tmp_path, tmp_path / "nothing-*.txt"))
  assert_no_output(tmp_path)


def test_comma_lists_and_globs_are_read(tmp_path):
  text_file(tmp_path, TEXT, "a-1.txt")
  text_file(tmp_path, TEXT, "a-2.txt")
  text_file(tmp_path, TEXT, "b.txt")
  spec = f"{tmp_path / 'a-*.txt'},{tmp_path / 'b.txt'},{tmp_path / 'a-1.txt'}"
  summary = data_build.build(config(tmp_path, spec))
  assert [os.path.basename(p) for p in summary["input_files"]] == ["a-1.txt", "a-2.txt", "b.txt"]
  assert summary["documents"] == 6


@pytest.mark.parametrize("data", ["", "\n\n   \n\t\n"])
def test_input_without_documents(tmp_path, data):
  with pytest.raises(CorpusError, match="--input_file: no documents in"):
    data_build.build(config(tmp_path, text_file(tmp_path, data)))
  assert_no_output(tmp_path)


def test_invalid_utf8_lines_are_reported_and_skipped(tmp_path, caplog):
  data = TEXT.encode("utf-8").replace(b"\n\n", b"\n\xff\xfe broken\n\n", 1) + b"\xc3\x28\n"
  path = text_file(tmp_path, data)
  with pytest.raises(CorpusError, match=f"--input_file: {path}: 2 of 7 text lines are not valid utf-8 "
                     r"\(more than --max_invalid_line_fraction=0.01\).*--input_encoding"):
    data_build.build(config(tmp_path, path))
  assert_no_output(tmp_path)
  with caplog.at_level(logging.WARNING):
    summary = data_build.build(config(tmp_path, path, max_invalid_line_fraction=0.3))
  assert summary["invalid_utf8_lines"] == 2 and summary["sentences"] == 5
  assert f"{path}:4: not valid utf-8" in caplog.text and f"{path}:8: not valid utf-8" in caplog.text
  only_bad = text_file(tmp_path, b"\xff\xff\n\xfe\n", "bad.txt")
  with pytest.raises(CorpusError, match="2 line\\(s\\) were not utf-8"):
    data_build.build(config(tmp_path, only_bad, output_file=str(tmp_path / "out2" / "x@1"),
                            max_invalid_line_fraction=1.0))


def test_max_predictions_too_small_for_the_mask_rate(tmp_path):
  path = text_file(tmp_path, TEXT)
  with pytest.raises(DataConfigError) as e:
    data_build.build(config(tmp_path, path, max_seq_length=512, max_predictions_per_seq=75))
  message = str(e.value)
  assert "--max_predictions_per_seq=75 is too small" in message and "round(512 x 0.15) = 77" in message
  assert "at least 77" in message and "at most 0.1474" in message
  assert round(512 * 0.1474) <= 75 < round(512 * 0.1475)
  data_build.build(config(tmp_path, path, max_seq_length=512, max_predictions_per_seq=77))
  assert sorted(os.listdir(tmp_path / "out"))[:2] == [atomic_io.MANIFEST, "summary.tf_examples.tfrecord.json"]


@pytest.mark.parametrize("flag,value,expected", [
    ("max_seq_length", 4, "at least 5"), ("masked_lm_prob", 0.0, "in \\(0, 1\\)"),
    ("dupe_factor", 0, "at least 1"), ("segmenter", "ltp", "one of jieba"),
    ("instance_mode", "pairs", "one of sentence_pair, contiguous"),
    ("num_workers", -1, "0 \\(one per CPU\\)"),
])
def test_flag_values_are_checked_first(tmp_path, flag, value, expected):
  with pytest.raises(DataConfigError, match=f"--{flag}={value!r}: expected {expected}"):
    data_build.build(config(tmp_path, tmp_path / "missing.txt", **{flag: value}))


def write_vocab(tmp_path, tokens):
  path = tmp_path / "vocab.txt"
  path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
  return str(path)


def test_vocab_without_special_tokens(tmp_path):
  vocab = write_vocab(tmp_path, ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + list("人民日报"))
  with pytest.raises(tokenization.VocabError, match=r"--vocab_file: .*missing required special token.*MASK"):
    data_build.build(config(tmp_path, text_file(tmp_path, TEXT), vocab_file=vocab))
  assert_no_output(tmp_path)


def test_vocab_that_does_not_fit_the_text(tmp_path):
  """An English-only vocab turns Chinese text into [UNK]: stop, and leave nothing behind."""
  vocab = write_vocab(tmp_path, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("abcdefg，。"))
  with pytest.raises(data_build.VocabMismatchError,
                     match=r"--vocab_file=.*% of the \d+ tokens .* are \[UNK\]"):
    data_build.build(config(tmp_path, text_file(tmp_path, TEXT * 20), vocab_file=vocab,
                            documents_per_chunk=4))
  assert_no_output(tmp_path)
  # The threshold is a flag: accepting every [UNK] writes the files.
  data_build.build(config(tmp_path, text_file(tmp_path, TEXT), vocab_file=vocab, max_unk_fraction=1.0))
  assert len(os.listdir(tmp_path / "out")) == 4  # two shards, the summary, the manifest


def test_bad_output_spec(tmp_path):
  path = text_file(tmp_path, TEXT)
  for spec in (str(tmp_path / "x@0"), str(tmp_path / "x@two"), f"{tmp_path / 'a'},{tmp_path / 'a'}"):
    with pytest.raises(DataFileError, match="--output_file"):
      data_build.build(config(tmp_path, path, output_file=spec))


def test_reader_check_names_the_flag(tmp_path):
  path = text_file(tmp_path, TEXT)
  data_build.build(config(tmp_path, path, max_seq_length=64, max_predictions_per_seq=10))
  shards = sorted(str(p) for p in (tmp_path / "out").glob("tf_examples.tfrecord-*"))
  pretraining_input.check_feature_lengths(shards, 64, 10)
  with pytest.raises(pretraining_input.PretrainingDataError,
                     match=r"'input_ids' has 64 values but --max_seq_length=128: .* max_seq_length=64"):
    pretraining_input.check_feature_lengths(shards, 128, 10)
  with pytest.raises(pretraining_input.PretrainingDataError,
                     match=r"'masked_lm_positions' has 10 values but --max_predictions_per_seq=20"):
    pretraining_input.check_feature_lengths(shards, 64, 20)
  empty = str(tmp_path / "empty.tfrecord")
  tf.io.TFRecordWriter(empty).close()
  with pytest.raises(pretraining_input.PretrainingDataError, match="contains no records"):
    pretraining_input.check_feature_lengths([empty], 64, 10)
  with pytest.raises(pretraining_input.PretrainingDataError, match="not a readable TFRecord"):
    pretraining_input.check_feature_lengths([str(path)], 64, 10)


def test_command_line_error_is_one_line(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "pretrain.create_pretraining_data", f"--input_file={tmp_path / 'none.txt'}",
       f"--output_file={tmp_path / 'out' / 'x@2'}", f"--vocab_file={assets.chinese_vocab_file()}"],
      capture_output=True, text=True, cwd=ROOT, timeout=120,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  assert result.returncode == 2
  assert result.stderr.strip().endswith(f"create_pretraining_data: error: --input_file: file not found: "
                                        f"{tmp_path / 'none.txt'}")
  assert "Traceback" not in result.stderr
  assert_no_output(tmp_path)


def test_shards_of_another_shard_count_are_pointed_out(tmp_path, caplog):
  path = text_file(tmp_path, TEXT)
  data_build.build(config(tmp_path, path))
  with caplog.at_level(logging.WARNING):
    data_build.build(config(tmp_path, path, output_file=str(tmp_path / "out" / "tf_examples.tfrecord@3"),
                            overwrite=True))
  assert "2 shard(s) of an earlier run with another shard count" in caplog.text


def test_text_without_tokens(tmp_path):
  with pytest.raises(CorpusError, match="1 document\\(s\\) but no tokens"):
    data_build.build(config(tmp_path, text_file(tmp_path, "\x01\x02\n\u200b\n")))
  assert_no_output(tmp_path)
