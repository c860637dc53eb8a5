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
GOLDENS = ("tiny_student_f2", "tiny_student_f4", "tiny_student_en", "tiny_teacher_bert",
           "tiny_teacher_ibbert")


@pytest.fixture(scope="session")
def reference_dir():
  return REFERENCE


@pytest.fixture(scope="session")
def chinese_vocab():
  from mobilebert import assets
  return assets.chinese_vocab_file()
