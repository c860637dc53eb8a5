#!/usr/bin/env bash
# The README's test command: builds the test environment if needed, then runs the whole suite.
#   bash run_scripts/test.sh [pytest args...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MOBILEBERT_VENV:-$ROOT/.venv}"
bash "$ROOT/run_scripts/setup_env.sh" --test
cd "$ROOT"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
# loadgroup: the tests of one xdist group (a long shared fixture) run on one worker, and only there.
exec "$VENV/bin/python" -m pytest -n "${MOBILEBERT_TEST_WORKERS:-2}" --dist loadgroup "$@"
