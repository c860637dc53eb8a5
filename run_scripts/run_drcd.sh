#!/usr/bin/env bash
# Fine-tune a Chinese MobileBERT on DRCD (span extraction, traditional Chinese) with the release's
# settings: learning rate 3e-5, 2 epochs, batch 32, max_seq_length 512 (doc_stride 128,
# max_query_length 64). The text is converted to simplified for the model (--convert_traditional)
# and predictions are written in the original traditional characters. Trains on DRCD_training.json,
# predicts DRCD_dev.json and scores it with the official metric
# (MODEL_PATH/eval_results.json; predictions.json and nbest_predictions.json beside it).
# Variables as in the release's scripts; each can also come from the environment. Extra arguments go
# to run_cmrc2018.py (later flags win), e.g. on one GPU:
#   INIT_PATH=~/mobilebert-base-f2 MODEL_PATH=/tmp/drcd DATA_PATH=~/DRCD \
#     USE_TPU=False bash run_scripts/run_drcd.sh --train_batch_size=16
# DATA_PATH holds DRCD_training.json and DRCD_dev.json (or set PREDICT_FILE to DRCD_test.json), from
# DRCKnowledgeTeam/DRCD.
set -euo pipefail

# TPU_NAME, TPU_ZONE: Cloud TPU only (leave empty and set USE_TPU=False on CPU/GPU).
TPU_NAME="${TPU_NAME:-}"
TPU_ZONE="${TPU_ZONE:-}"
# INIT_PATH: the unpacked pretrained MobileBERT (mobilebert.ckpt.*, vocab.txt, and its config).
INIT_PATH="${INIT_PATH:-}"
BERT_CONFIG="${BERT_CONFIG:-${INIT_PATH}/student_base_f2.json}"
# MODEL_PATH: where this fine-tuning run writes checkpoints and results.
MODEL_PATH="${MODEL_PATH:-}"
# DATA_PATH: the DRCD files.
DATA_PATH="${DATA_PATH:-}"
TRAIN_FILE="${TRAIN_FILE:-${DATA_PATH}/DRCD_training.json}"
PREDICT_FILE="${PREDICT_FILE:-${DATA_PATH}/DRCD_dev.json}"
USE_TPU="${USE_TPU:-True}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# No interpreter given: make (or reuse) the project environment first.
[[ -n "${PYTHON:-}" ]] || bash "$ROOT/run_scripts/setup_env.sh"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
for name in INIT_PATH MODEL_PATH DATA_PATH; do
  if [[ -z "${!name}" ]]; then echo "run_drcd.sh: set $name (see the top of this script)" >&2; exit 2; fi
done
cd "$ROOT"

"$PYTHON" -u -m finetune.run_cmrc2018 \
--vocab_file="${INIT_PATH}/vocab.txt" \
--bert_config_file="${BERT_CONFIG}" \
--init_checkpoint="${INIT_PATH}/mobilebert.ckpt" \
--do_train=True \
--train_file="${TRAIN_FILE}" \
--do_predict=True \
--predict_file="${PREDICT_FILE}" \
--train_batch_size=32 \
--predict_batch_size=32 \
--num_train_epochs=2 \
--learning_rate=3e-5 \
--max_seq_length=512 \
--doc_stride=128 \
--max_query_length=64 \
--n_best_size=20 \
--max_answer_length=30 \
--save_checkpoints_steps=1000 \
--rand_seed=12345 \
--output_dir="${MODEL_PATH}" \
--do_lower_case=True \
--convert_traditional=True \
--use_tpu="${USE_TPU}" \
--tpu_name="${TPU_NAME}" \
--tpu_zone="${TPU_ZONE}" \
"$@"
