"""Shared test fixtures: paths of the reference pack and the real data shipped with the project."""

import os
import pathlib

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = pathlib.Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "fixtures" / "reference"
CONFIG_DIR = ROOT / "config"
# ../shared exists beside the repository on the developers' machines and CI, not in users' clones.
SHARED = ROOT.parent / "shared"

RELEASED_CONFIGS = sorted(p.stem for p in (REFERENCE / "configs").glob("*.json"))
# Google's quantization-aware-training config (not in the Chinese release the pack was made from):
# the F-4_OPT student with relu6, so it must build exactly as that student's manifest says.
QAT_CONFIG = "uncased_L-24_H-128_B-512_A-4_F-4_OPT_QAT"
QAT_STUDENT = "uncased_L-24_H-128_B-512_A-4_F-4_OPT"
GOLDENS = ("tiny_student_f2", "tiny_student_f4", "tiny_student_en", "tiny_teacher_bert",
           "tiny_teacher_ibbert")


def pytest_collection_modifyitems(items):
  """Tests in an xdist group (tests sharing a long module fixture, e.g. the tiny quick start) come
  first: with run_scripts/test.sh's `--dist loadgroup` one worker starts them at once while the other
  takes the rest, instead of one worker running them alone at the end."""
  grouped = [item for item in items if item.get_closest_marker("xdist_group")]
  items[:] = grouped + [item for item in items if not item.get_closest_marker("xdist_group")]


def write_tiny_pair_task(directory, rows, splits):
  """A sentence-pair task in `directory`: `<split>.tsv` of `rows` (`text_a\ttext_b\tlabel`) for each
  split, a vocab of their Chinese characters and the tiny f2 student's golden config sized to it.
  Returns (vocab path, config path)."""
  for split in splits:
    (directory / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
  chars = sorted({c for row in rows for c in row if "\u4e00" <= c <= "\u9fff"})
  vocab = directory / "vocab.txt"
  vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars) + "\n",
                   encoding="utf-8")
  config = directory / "config.json"
  text = (REFERENCE / "golden" / "tiny_student_f2.json").read_text()
  config.write_text(text.replace('"vocab_size": 512', f'"vocab_size": {5 + len(chars)}'))
  return vocab, config


@pytest.fixture(scope="session")
def reference_dir():
  return REFERENCE


@pytest.fixture(scope="session")
def chinese_vocab():
  from mobilebert import assets
  return assets.chinese_vocab_file()
