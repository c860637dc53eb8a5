#!/usr/bin/env bash
# CLUE classification: TASK=afqmc | tnews | iflytek | ocnli | cmnli, DATA_PATH = the task's directory as
# CLUE publishes it (train.json, dev.json, test.json; OCNLI also train.50k.json / train.3k.json).
# --do_predict writes test_results.tsv (guid = test-<id>) from the best dev checkpoint. Hyper-parameters
# are starting points, not tuned per task. Extra arguments go to run_classifier.py.
#   TASK=tnews INIT_PATH=~/mobilebert-base-f2 DATA_PATH=~/clue/tnews MODEL_PATH=/tmp/tnews \
#     bash run_scripts/run_clue.sh
set -euo pipefail

TASK="${TASK:-afqmc}"
INIT_PATH="${INIT_PATH:-}"                           # mobilebert.ckpt.*, vocab.txt, the config
BERT_CONFIG="${BERT_CONFIG:-${INIT_PATH}/student_base_f2.json}"
DATA_PATH="${DATA_PATH:-}"
MODEL_PATH="${MODEL_PATH:-}"
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
  if [[ -z "${!name}" ]]; then echo "run_clue.sh: set $name (see the top of this script)" >&2; exit 2; fi
done
cd "$ROOT"

"$PYTHON" -u -m finetune.run_classifier \
  --task_name="$TASK" --data_dir="$DATA_PATH" --output_dir="$MODEL_PATH" \
  --vocab_file="$INIT_PATH/vocab.txt" --bert_config_file="$BERT_CONFIG" \
  --init_checkpoint="$INIT_PATH/mobilebert.ckpt" --do_lower_case=True \
  --do_train=True --do_eval=True --do_predict=True --predict_checkpoint=best \
  --max_seq_length="$MAX_SEQ_LENGTH" --train_batch_size="$TRAIN_BATCH_SIZE" \
  --eval_batch_size=64 --predict_batch_size=64 --learning_rate="$LEARNING_RATE" \
  --num_train_epochs="$NUM_TRAIN_EPOCHS" --save_checkpoints_steps=1000 --keep_checkpoint_max=20 \
  --rand_seed=12345 --use_tpu="$USE_TPU" --tpu_name="$TPU_NAME" --tpu_zone="$TPU_ZONE" \
  "$@"
