#!/usr/bin/env bash
# Prints the parameter table of every config in config/ (what the README's model table shows).
# Sets up the environment first (.venv), so it works on a fresh machine.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFIG_DIR="${CONFIG_DIR:-$ROOT/config}"
bash "$ROOT/run_scripts/setup_env.sh"
export TF_CPP_MIN_LOG_LEVEL=2
"${MOBILEBERT_VENV:-$ROOT/.venv}/bin/python" -m mobilebert.summary --config_dir="$CONFIG_DIR"
