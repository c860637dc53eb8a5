"""People's Daily conversion: tags stripped, sentences and documents found, held-out part by document."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

from mobilebert import atomic_io
from pretrain import data_files
from pretrain import prepare_peoples_daily as prepare

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "pretraining_data" / "199801_head.txt"


@pytest.fixture(scope="module")
def tagged_lines():
  return prepare.read_tagged_lines(str(FIXTURE))


@pytest.fixture(scope="module")
def documents(tagged_lines):
  return prepare.group_documents(tagged_lines)


def test_tags_are_stripped_and_nothing_else_is_lost(tagged_lines, documents):
  assert prepare.strip_tags("迈向/v  充满/v  希望/n  １/m  张/q  ）/w") == ["迈向", "充满", "希望", "１", "张", "）"]
  words = "".join(w for line in tagged_lines for w in prepare.strip_tags(line))
  assert "".join(s for d in documents for s in d) == words
  assert not any(re.search(r"/[A-Za-z]+", s) for d in documents for s in d)


def test_sentences_end_after_final_punctuation_with_closing_quotes():
  words = ["他", "说", "：", "“", "好", "！", "”", "我们", "走", "。", "（", "完", "）"]
  assert prepare.split_sentences(words) == ["他说：“好！”", "我们走。", "（完）"]
  assert prepare.split_sentences(["真", "的", "？", "！", "是", "。"]) == ["真的？！", "是。"]
  assert prepare.split_sentences(["标题", "没有", "句号"]) == ["标题没有句号"]


def test_documents_start_at_headlines(documents):
  assert len(documents) == 42
  first = documents[0]
  assert first[0] == "迈向充满希望的新世纪——一九九八年新年讲话（附图片１张）"
  # Subtitle, date line, a photo credit in parentheses and the salutation stay in the article.
  assert first[1:3] == ["中共中央总书记、国家主席江泽民", "（一九九七年十二月三十一日）"]
  assert "（新华社记者兰红光摄）" in first and "同胞们、朋友们、女士们、先生们：" in first
  assert first[-1] == "（新华社北京１２月３１日电）"
  assert documents[1][0] == "在十五大精神指引下胜利前进——元旦献辞"
  assert documents[2][0] == "北京举行新年音乐会"
  assert all(d and all(s for s in d) for d in documents)


def test_heldout_split_is_by_document_and_reproducible(documents):
  train, heldout = prepare.split_heldout(documents, 0.1, seed=5)
  assert len(heldout) == 4 and len(train) == 38
  assert prepare.split_heldout(documents, 0.1, seed=5) == (train, heldout)
  assert prepare.split_heldout(documents, 0.1, seed=6)[1] != heldout
  # Each document goes whole to one side; both keep the corpus order.
  position = {id(d): i for i, d in enumerate(documents)}
  assert sorted(position[id(d)] for d in train + heldout) == list(range(len(documents)))
  assert [position[id(d)] for d in train] == sorted(position[id(d)] for d in train)
  assert prepare.split_heldout(documents, 0.0, seed=5) == (documents, [])


def test_format_round_trips_through_the_reader(documents, tmp_path):
  from pretrain import corpus  # pylint: disable=g-import-not-at-top
  path = tmp_path / "text.txt"
  path.write_text(prepare.format_documents(documents), encoding="utf-8")
  assert corpus.read_documents([str(path)]).documents == documents
  assert prepare.format_documents([]) == ""


def test_command_line_writes_both_parts(tmp_path):
  command = [sys.executable, "-m", "pretrain.prepare_peoples_daily", f"--input_file={FIXTURE}",
             f"--output_file={tmp_path / 'train.txt'}", f"--heldout_file={tmp_path / 'heldout.txt'}",
             "--heldout_fraction=0.1"]
  subprocess.run(command, check=True, capture_output=True, cwd=ROOT, timeout=120,
                 env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  # No temporary file left; the manifest records what the tool wrote.
  assert sorted(os.listdir(tmp_path)) == [atomic_io.MANIFEST, "heldout.txt", "train.txt"]
  assert (tmp_path / "train.txt").read_text(encoding="utf-8").count("\n\n") == 37  # 38 documents
  assert (tmp_path / "heldout.txt").read_text(encoding="utf-8").count("\n\n") == 3


def test_existing_files_are_kept(tmp_path):
  train, heldout = tmp_path / "train.txt", tmp_path / "heldout.txt"
  heldout.write_text("mine", encoding="utf-8")
  with pytest.raises(data_files.DataFileError,
                     match=f"--heldout_file: output already exists: {re.escape(str(heldout))}; pass "
                           f"--overwrite to replace it"):
    prepare.convert(str(FIXTURE), str(train), str(heldout), 0.1, seed=1)
  # Checked before anything is written: the training part is not there either.
  assert sorted(os.listdir(tmp_path)) == ["heldout.txt"] and heldout.read_text(encoding="utf-8") == "mine"
  # --overwrite replaces only what the tool wrote: a file of the user's is never replaced.
  with pytest.raises(data_files.DataFileError, match=f"--heldout_file: {re.escape(str(heldout))} was "
                     "not written by pretrain.prepare_peoples_daily.*--overwrite replaces only"):
    prepare.convert(str(FIXTURE), str(train), str(heldout), 0.1, seed=1, overwrite=True)
  assert heldout.read_text(encoding="utf-8") == "mine"
  heldout.unlink()
  prepare.convert(str(FIXTURE), str(train), str(heldout), 0.1, seed=1)
  prepare.convert(str(FIXTURE), str(train), str(heldout), 0.2, seed=1, overwrite=True)  # its own: replaced
  assert heldout.read_text(encoding="utf-8").count("\n\n") == 7
