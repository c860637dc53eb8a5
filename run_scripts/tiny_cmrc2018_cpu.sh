#!/usr/bin/env bash
# Span-extraction demo on CPU with real data: the CMRC 2018 trial set shipped in data/cmrc2018 (1,002
# questions on 256 paragraphs) is split by paragraph into train (~80%) and held-out (~20%), a model is
# fine-tuned on the train part, and the held-out part is predicted and scored with the official metric.
# By default config/tiny_student_zh.json from fresh initialization: it learns little beyond answer
# shapes in a few hundred steps (held-out F1 a few points above an untrained head); point INIT_PATH at
# a released model (mobilebert.ckpt.*, vocab.txt, student_base_f2.json) for real scores:
#   INIT_PATH=~/mobilebert-base-f2 LEARNING_RATE=3e-5 MAX_SEQ_LENGTH=512 bash run_scripts/tiny_cmrc2018_cpu.sh
# Extra arguments go to run_cmrc2018.py.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# No interpreter given: make (or reuse) the project environment first.
[[ -n "${PYTHON:-}" ]] || bash "$ROOT/run_scripts/setup_env.sh"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
INIT_PATH="${INIT_PATH:-}"
DATA_FILE="${DATA_FILE:-$ROOT/data/cmrc2018/cmrc2018_trial.json}"
OUTPUT_DIR="${OUTPUT_DIR:-$ROOT/output/tiny_cmrc2018}"   # an existing run here is resumed
HELD_OUT_PERCENT="${HELD_OUT_PERCENT:-20}"
MAX_SEQ_LENGTH="${MAX_SEQ_LENGTH:-256}"
DOC_STRIDE="${DOC_STRIDE:-128}"
TRAIN_BATCH_SIZE="${TRAIN_BATCH_SIZE:-16}"
NUM_TRAIN_STEPS="${NUM_TRAIN_STEPS:-400}"
LEARNING_RATE="${LEARNING_RATE:-2e-3}"              # for fresh initialization; ~3e-5 when pretrained

cd "$ROOT"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
if [[ -n "$INIT_PATH" ]]; then
  VOCAB_FILE="$INIT_PATH/vocab.txt"
  BERT_CONFIG="${BERT_CONFIG:-$INIT_PATH/student_base_f2.json}"
  INIT_CHECKPOINT="$INIT_PATH/mobilebert.ckpt"
else
  VOCAB_FILE="$("$PYTHON" -c 'from mobilebert import assets; print(assets.chinese_vocab_file())')"
  BERT_CONFIG="${BERT_CONFIG:-$ROOT/config/tiny_student_zh.json}"
  INIT_CHECKPOINT=""
fi

# 1. Split by paragraph (the same split on every machine).
"$PYTHON" -m finetune.squad_split "$DATA_FILE" "$OUTPUT_DIR/data/train.json" \
  "$OUTPUT_DIR/data/held_out.json" --held_out_percent="$HELD_OUT_PERCENT"

# 2. Fine-tune on the train part, predict and score the held-out part.
"$PYTHON" -m finetune.run_cmrc2018 \
  --vocab_file="$VOCAB_FILE" --bert_config_file="$BERT_CONFIG" --init_checkpoint="$INIT_CHECKPOINT" \
  --do_train=True --train_file="$OUTPUT_DIR/data/train.json" \
  --do_predict=True --predict_file="$OUTPUT_DIR/data/held_out.json" \
  --output_dir="$OUTPUT_DIR/model" \
  --max_seq_length="$MAX_SEQ_LENGTH" --doc_stride="$DOC_STRIDE" --max_query_length=64 \
  --train_batch_size="$TRAIN_BATCH_SIZE" --predict_batch_size=64 \
  --num_train_steps="$NUM_TRAIN_STEPS" --learning_rate="$LEARNING_RATE" \
  --save_checkpoints_steps=100000 --log_every_n_steps=50 --rand_seed=12345 \
  "$@"

# 3. The same score from the stand-alone metric, as users run the official script.
"$PYTHON" "$ROOT/finetune/cmrc2018_evaluate.py" "$OUTPUT_DIR/data/held_out.json" \
  "$OUTPUT_DIR/model/predictions.json" "$OUTPUT_DIR/model/eval_official.json"
