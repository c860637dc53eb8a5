#!/usr/bin/env bash
# The release's finetune/run.xnli.sh (fine-tune MobileBERT base-f2 on XNLI), fixed:
#   * --rand_seed is a real flag of run_classifier.py (the release's program did not define it);
#   * --output_dir is MODEL_PATH (the release set MODEL_PATH but passed the unset ${MODEL_DIR});
#   * --eval_batch_size is passed too (the release scored dev with the default batch of 8).
# Variables as in the release; each can also come from the environment. Extra arguments are passed
# on to run_classifier.py (later flags win), e.g.
#   INIT_PATH=~/mobilebert-base-f2 MODEL_PATH=/tmp/xnli DATA_PATH=~/XNLI-1.0 USE_TPU=False \
#     bash run_scripts/run_xnli.sh --train_batch_size=32
# DATA_PATH holds XNLI 1.0 (xnli.dev.tsv, xnli.test.tsv) with XNLI-MT's multinli/multinli.train.zh.tsv,
# or the Chinese-only train.tsv/dev.tsv/test.tsv (text_a, text_b, label) that Chinese toolkits ship.
set -euo pipefail

# TPU_NAME, TPU_ZONE: Cloud TPU only (leave empty and set USE_TPU=False on CPU/GPU).
TPU_NAME="${TPU_NAME:-}"
TPU_ZONE="${TPU_ZONE:-}"
# INIT_PATH: the unpacked pretrained MobileBERT (mobilebert.ckpt.*, vocab.txt, student_base_f2.json).
INIT_PATH="${INIT_PATH:-}"
# MODEL_PATH: where this fine-tuning run writes checkpoints and results.
MODEL_PATH="${MODEL_PATH:-}"
# DATA_PATH: the XNLI data.
DATA_PATH="${DATA_PATH:-}"
# TASK: a task name of run_classifier.py (see finetune/classification/tasks).
TASK="${TASK:-xnli}"
USE_TPU="${USE_TPU:-True}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# No interpreter given: make (or reuse) the project environment first.
[[ -n "${PYTHON:-}" ]] || bash "$ROOT/run_scripts/setup_env.sh"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
for name in INIT_PATH MODEL_PATH DATA_PATH; do
  if [[ -z "${!name}" ]]; then echo "run_xnli.sh: set $name (see the top of this script)" >&2; exit 2; fi
done
cd "$ROOT"

"$PYTHON" -u -m finetune.run_classifier \
--vocab_file="${INIT_PATH}/vocab.txt" \
--bert_config_file="${INIT_PATH}/student_base_f2.json" \
--init_checkpoint="${INIT_PATH}/mobilebert.ckpt" \
--task_name="${TASK}" \
--do_train=True \
--do_eval=True \
--data_dir="${DATA_PATH}" \
--train_batch_size=64 \
--eval_batch_size=64 \
--predict_batch_size=64 \
--num_train_epochs=2 \
--max_seq_length=128 \
--learning_rate=6e-5 \
--save_checkpoints_steps=10000 \
--rand_seed=12345 \
--output_dir="${MODEL_PATH}" \
--do_lower_case=True \
--use_tpu="${USE_TPU}" \
--tpu_name="${TPU_NAME}" \
--tpu_zone="${TPU_ZONE}" \
"$@"
