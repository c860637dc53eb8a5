#!/usr/bin/env bash
# Single-sentence sentiment: ChnSentiCorp (or TASK=weibo / shopping / thucnews, each in its own format,
# see finetune/classification/tasks/chinese.py). The ChnSentiCorp splits ship in data/chnsenticorp. Hyper-parameters
# are starting points, not tuned per task. Extra arguments go to run_classifier.py.
#   INIT_PATH=~/mobilebert-base-f2 MODEL_PATH=/tmp/csc bash run_scripts/run_chnsenticorp.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INIT_PATH="${INIT_PATH:-}"                           # mobilebert.ckpt.*, vocab.txt, the config
BERT_CONFIG="${BERT_CONFIG:-${INIT_PATH}/student_base_f2.json}"
DATA_PATH="${DATA_PATH:-$ROOT/data/chnsenticorp}"
MODEL_PATH="${MODEL_PATH:-}"
TASK="${TASK:-chnsenticorp}"
MAX_SEQ_LENGTH="${MAX_SEQ_LENGTH:-256}"
TRAIN_BATCH_SIZE="${TRAIN_BATCH_SIZE:-64}"
LEARNING_RATE="${LEARNING_RATE:-6e-5}"
NUM_TRAIN_EPOCHS="${NUM_TRAIN_EPOCHS:-3}"
USE_TPU="${USE_TPU:-False}"
TPU_NAME="${TPU_NAME:-}"
TPU_ZONE="${TPU_ZONE:-}"

# No interpreter given: make (or reuse) the project environment first.
[[ -n "${PYTHON:-}" ]] || bash "$ROOT/run_scripts/setup_env.sh"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
for name in INIT_PATH MODEL_PATH; do
  if [[ -z "${!name}" ]]; then echo "run_chnsenticorp.sh: set $name (see the top of this script)" >&2; exit 2; fi
done
cd "$ROOT"

"$PYTHON" -u -m finetune.run_classifier \
  --task_name="$TASK" --data_dir="$DATA_PATH" --output_dir="$MODEL_PATH" \
  --vocab_file="$INIT_PATH/vocab.txt" --bert_config_file="$BERT_CONFIG" \
  --init_checkpoint="$INIT_PATH/mobilebert.ckpt" --do_lower_case=True \
  --do_train=True --do_eval=True --do_predict=True --predict_checkpoint=best \
  --max_seq_length="$MAX_SEQ_LENGTH" --train_batch_size="$TRAIN_BATCH_SIZE" \
  --eval_batch_size=64 --predict_batch_size=64 --learning_rate="$LEARNING_RATE" \
  --num_train_epochs="$NUM_TRAIN_EPOCHS" --save_checkpoints_steps=150 --keep_checkpoint_max=20 \
  --rand_seed=12345 --use_tpu="$USE_TPU" --tpu_name="$TPU_NAME" --tpu_zone="$TPU_ZONE" \
  "$@"
