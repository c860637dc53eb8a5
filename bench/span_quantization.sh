#!/usr/bin/env bash
# What each int8 TFLite format costs a span model (CMRC 2018), through run_cmrc2018.py's own flags.
#
#   bash bench/span_quantization.sh [OUTPUT_DIR]     # default /tmp/span_quantization
#
# Fine-tunes config/tiny_student_zh.json from scratch on 80% of the CMRC 2018 trial set's paragraphs
# (run_scripts/tiny_cmrc2018_cpu.sh: 400 steps, length 256; a finished run in OUTPUT_DIR is reused),
# then exports its last checkpoint in each int8 format with --use_post_quantization and answers two
# question sets with the checkpoint and the TFLite model: the held-out paragraphs' questions, and the
# training questions (where a tiny model trained from scratch is confident: what int8 changes shows).
# Prints one line per format and question set: the checkpoint's F1/EM, the TFLite model's, F1_change.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-/tmp/span_quantization}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
SEQ=256

PYTHON="$PYTHON" OUTPUT_DIR="$OUT" MAX_SEQ_LENGTH="$SEQ" bash "$ROOT/run_scripts/tiny_cmrc2018_cpu.sh" \
  > "$OUT.train.log" 2>&1 || { tail -20 "$OUT.train.log"; exit 1; }
VOCAB="$("$PYTHON" -c 'from mobilebert import assets; print(assets.chinese_vocab_file())')"
CHECKPOINT="$("$PYTHON" -c "import tensorflow as tf; print(tf.train.latest_checkpoint('$OUT/model'))")"

declare -A FLAGS=(
  [dynamic_int8]="--use_post_quantization"
  [full_int8]="--use_post_quantization --activation_quantization"
  [int8_float_softmax]="--use_post_quantization --activation_quantization --float_softmax"
)
printf '%-20s %-9s %s\n' format questions "eval_results_tflite.json"
for questions in held_out train; do
  for format in dynamic_int8 full_int8 int8_float_softmax; do
    run="$OUT/$format.$questions"
    # shellcheck disable=SC2086  # the flags are words
    (cd "$ROOT" && "$PYTHON" -m finetune.run_cmrc2018 --vocab_file="$VOCAB" \
      --bert_config_file="$ROOT/config/tiny_student_zh.json" --max_seq_length="$SEQ" \
      --do_predict --predict_file="$OUT/data/$questions.json" --train_file="$OUT/data/train.json" \
      --predict_checkpoint="$CHECKPOINT" --predict_batch_size=64 --output_dir="$run" \
      --lite_model_path="$OUT/$format.tflite" ${FLAGS[$format]}) > "$run.log" 2>&1 \
      || { tail -20 "$run.log"; exit 1; }
    printf '%-20s %-9s %s\n' "$format" "$questions" "$(cat "$run/eval_results_tflite.json")"
  done
done
