#!/usr/bin/env bash
# Sentence-pair matching: LCQMC (or TASK=bq for BQ Corpus). DATA_PATH holds train/dev/test(.tsv|.txt):
# text_a, text_b, label 0/1, with or without a header row. Hyper-parameters are starting points taken
# from the release's XNLI recipe, not tuned per task. Extra arguments go to run_classifier.py.
#   INIT_PATH=~/mobilebert-base-f2 DATA_PATH=~/lcqmc MODEL_PATH=/tmp/lcqmc bash run_scripts/run_lcqmc.sh
set -euo pipefail

INIT_PATH="${INIT_PATH:-}"                           # mobilebert.ckpt.*, vocab.txt, the config
BERT_CONFIG="${BERT_CONFIG:-${INIT_PATH}/student_base_f2.json}"
DATA_PATH="${DATA_PATH:-}"
MODEL_PATH="${MODEL_PATH:-}"
TASK="${TASK:-lcqmc}"                                # lcqmc or bq
MAX_SEQ_LENGTH="${MAX_SEQ_LENGTH:-128}"
TRAIN_BATCH_SIZE="${TRAIN_BATCH_SIZE:-64}"
LEARNING_RATE="${LEARNING_RATE:-6e-5}"
NUM_TRAIN_EPOCHS="${NUM_TRAIN_EPOCHS:-3}"
USE_TPU="${USE_TPU:-False}"
TPU_NAME="${TPU_NAME:-}"
TPU_ZONE="${TPU_ZONE:-}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# No interpreter given: make (or reuse) the project environment first.
[[ -n "${PYTHON:-}" ]] || bash "$ROOT/run_scripts/setup_env.sh"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
for name in INIT_PATH DATA_PATH MODEL_PATH; do
  if [[ -z "${!name}" ]]; then echo "run_lcqmc.sh: set $name (see the top of this script)" >&2; exit 2; fi
done
cd "$ROOT"

"$PYTHON" -u -m finetune.run_classifier \
  --task_name="$TASK" --data_dir="$DATA_PATH" --output_dir="$MODEL_PATH" \
  --vocab_file="$INIT_PATH/vocab.txt" --bert_config_file="$BERT_CONFIG" \
  --init_checkpoint="$INIT_PATH/mobilebert.ckpt" --do_lower_case=True \
  --do_train=True --do_eval=True --do_predict=True --predict_checkpoint=best \
  --max_seq_length="$MAX_SEQ_LENGTH" --train_batch_size="$TRAIN_BATCH_SIZE" \
  --eval_batch_size=64 --predict_batch_size=64 --learning_rate="$LEARNING_RATE" \
  --num_train_epochs="$NUM_TRAIN_EPOCHS" --save_checkpoints_steps=2000 --keep_checkpoint_max=20 \
  --rand_seed=12345 --use_tpu="$USE_TPU" --tpu_name="$TPU_NAME" --tpu_zone="$TPU_ZONE" \
  "$@"
