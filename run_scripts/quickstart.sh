#!/usr/bin/env bash
# The whole MobileBERT recipe on real Chinese data, small enough for a 2-core CPU (about an hour):
# People's Daily 1998 -> whole-word-masking TFRecords -> a small BERT teacher (masked LM) -> a MobileBERT
# student of the same hidden size and a quarter of its parameters by progressive knowledge transfer and
# distillation, and the same student trained with masked LM only as a control -> each fine-tuned on
# THUCNews (topic classification) and People's Daily NER (entity tagging) with 3 seeds (and the
# distilled student again with task-specific distillation from the fine-tuned teacher) -> results.md
# (parameters, held-out MLM accuracy, dev/test accuracy and entity F1 mean ± std, batch-1 latency) and
# curves.png.
# Builds the project environment first (.venv) unless PYTHON is given. Rerun the same command after an
# interruption: finished stages are skipped and the interrupted one resumes.
#   bash run_scripts/quickstart.sh [--output_dir=output/quickstart] [--size=tiny|small|base] [--steps_scale=1]
#       [--finetune_seeds=3]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ -n "${PYTHON:-}" ]] || bash "$ROOT/run_scripts/setup_env.sh"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"

cd "$ROOT"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec "$PYTHON" -m quickstart "$@"
