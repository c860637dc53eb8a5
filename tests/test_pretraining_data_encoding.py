"""Text that is not in the expected encoding, or not text at all: an error naming the file and count."""

import subprocess
import sys

import pytest

from mobilebert import assets
from pretrain import data_build
from pretrain.corpus import CorpusError
from pretrain.data_config import DataConfig, DataConfigError

TEXT = ("人民日报一九九八年元旦献辞。\n我们即将以丰收的喜悦送走牛年。\n以昂扬的斗志迎来虎年。\n\n"
        "北京举行新年音乐会。\n今晚的长安街流光溢彩，火树银花。\n")


def config(tmp_path, input_file, **overrides):
  settings = dict(input_file=str(input_file), output_file=str(tmp_path / "out" / "x@1"),
                  vocab_file=assets.chinese_vocab_file(), dupe_factor=1, num_workers=1,
                  segmenter="none", progress_seconds=1e9)
  settings.update(overrides)
  return DataConfig(**settings)


def test_gbk_corpus_is_an_error_unless_its_encoding_is_given(tmp_path):
  gbk = tmp_path / "gbk.txt"
  gbk.write_bytes((TEXT * 3).encode("gbk"))
  with pytest.raises(CorpusError, match=f"--input_file: {gbk}: 15 of 15 text lines are not valid utf-8 .*"
                                        "--input_encoding"):
    data_build.build(config(tmp_path, gbk))
  assert not (tmp_path / "out").exists()
  summary = data_build.build(config(tmp_path, gbk, input_encoding="gbk"))
  utf8 = tmp_path / "utf8.txt"
  utf8.write_text(TEXT * 3, encoding="utf-8")
  same = data_build.build(config(tmp_path, utf8, output_file=str(tmp_path / "out2" / "x@1")))
  assert summary["sentences"] == same["sentences"] == 15 and summary["invalid_utf8_lines"] == 0
  assert (tmp_path / "out" / "x-00000-of-00001").read_bytes() == \
      (tmp_path / "out2" / "x-00000-of-00001").read_bytes()


def test_utf16_is_read_when_named(tmp_path):
  path = tmp_path / "utf16.txt"
  path.write_bytes(TEXT.encode("utf-16"))
  with pytest.raises(CorpusError, match="binary file \\(NUL byte at offset"):
    data_build.build(config(tmp_path, path))
  assert data_build.build(config(tmp_path, path, input_encoding="utf-16"))["sentences"] == 5


def test_binary_file_is_refused(tmp_path):
  elf = tmp_path / "program"
  elf.write_bytes(open(sys.executable, "rb").read(65536))
  with pytest.raises(CorpusError, match=f"--input_file: {elf} is a binary file \\(NUL byte at offset "
                                        "\\d+\\), not text"):
    data_build.build(config(tmp_path, elf, max_invalid_line_fraction=1.0))
  assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flag,value,expected", [
    ("input_encoding", "klingon", "a text encoding Python knows"),
    ("max_invalid_line_fraction", 1.5, "in \\[0, 1\\]"),
])
def test_encoding_flags_are_checked(tmp_path, flag, value, expected):
  with pytest.raises(DataConfigError, match=f"--{flag}={value!r}: expected {expected}"):
    data_build.build(config(tmp_path, tmp_path / "missing.txt", **{flag: value}))


def test_more_predictions_than_tokens_is_refused_up_front(tmp_path):
  with pytest.raises(DataConfigError, match="--max_predictions_per_seq=40 is more than "
                                            "--max_seq_length=32"):
    data_build.build(config(tmp_path, tmp_path / "missing.txt", max_seq_length=32,
                            max_predictions_per_seq=40))


def test_command_line_names_the_gbk_file(tmp_path):
  gbk = tmp_path / "gbk.txt"
  gbk.write_bytes(TEXT.encode("gbk"))
  args = [sys.executable, "-m", "pretrain.create_pretraining_data", f"--input_file={gbk}",
          f"--output_file={tmp_path / 'out' / 'x@1'}", f"--vocab_file={assets.chinese_vocab_file()}",
          "--dupe_factor=1", "--num_workers=1", "--segmenter=none"]
  refused = subprocess.run(args, capture_output=True, text=True)
  assert refused.returncode == 2 and "Traceback" not in refused.stderr
  assert f"create_pretraining_data: error: --input_file: {gbk}: 5 of 5 text lines are not valid utf-8" in \
      refused.stderr
  done = subprocess.run(args + ["--input_encoding=gbk"], capture_output=True, text=True)
  assert done.returncode == 0, done.stderr
