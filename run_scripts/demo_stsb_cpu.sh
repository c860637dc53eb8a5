#!/usr/bin/env bash
# Regression demo on CPU with Chinese STS-B in data/stsb_zh (4,725 train / 506 dev / 1,458 test sentence
# pairs scored 0-5): trains, scores every checkpoint on dev (Pearson, Spearman), picks the best by dev
# Spearman, then scores the test split once with it and writes its predictions.
# By default config/tiny_student_zh.json from fresh initialization (minutes on a laptop CPU); point
# INIT_PATH at a released model (mobilebert.ckpt.*, vocab.txt, student_base_f2.json) to fine-tune it:
#   INIT_PATH=~/mobilebert-base-f2 LEARNING_RATE=5e-5 bash run_scripts/demo_stsb_cpu.sh
# Extra arguments go to both run_classifier.py calls.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# No interpreter given: make (or reuse) the project environment first.
[[ -n "${PYTHON:-}" ]] || bash "$ROOT/run_scripts/setup_env.sh"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
INIT_PATH="${INIT_PATH:-}"
DATA_DIR="${DATA_DIR:-$ROOT/data/stsb_zh}"
MODEL_DIR="${MODEL_DIR:-$ROOT/output/demo_stsb}"   # an existing run here is resumed
MAX_SEQ_LENGTH="${MAX_SEQ_LENGTH:-64}"             # 99% of the pairs are under 134 characters together
TRAIN_BATCH_SIZE="${TRAIN_BATCH_SIZE:-32}"
NUM_TRAIN_EPOCHS="${NUM_TRAIN_EPOCHS:-3}"
LEARNING_RATE="${LEARNING_RATE:-1e-3}"              # for fresh initialization; ~5e-5 when pretrained
SAVE_CHECKPOINTS_STEPS="${SAVE_CHECKPOINTS_STEPS:-100}"

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
COMMON=(--task_name=stsb_zh --data_dir="$DATA_DIR" --output_dir="$MODEL_DIR"
        --vocab_file="$VOCAB_FILE" --bert_config_file="$BERT_CONFIG"
        --max_seq_length="$MAX_SEQ_LENGTH" --eval_batch_size=100 --predict_batch_size=100)

# Train, score every checkpoint on dev, predict the test split with the best one.
"$PYTHON" -m finetune.run_classifier "${COMMON[@]}" --init_checkpoint="$INIT_CHECKPOINT" \
  --do_train=True --do_eval=True --do_predict=True --predict_checkpoint=best \
  --train_batch_size="$TRAIN_BATCH_SIZE" --num_train_epochs="$NUM_TRAIN_EPOCHS" \
  --learning_rate="$LEARNING_RATE" --save_checkpoints_steps="$SAVE_CHECKPOINTS_STEPS" \
  --keep_checkpoint_max=20 --log_every_n_steps=50 --rand_seed=12345 \
  "$@"
# Test, once, with the checkpoint dev chose (its own folder, so dev's eval_history.json stays as it is).
# The folder's checkpoint state file names that one checkpoint only (TF writes it atomically).
TEST_DIR="$MODEL_DIR/test_scores"
"$PYTHON" - "$MODEL_DIR/eval_history.json" "$TEST_DIR" <<'PY'
import json, sys
import tensorflow.compat.v1 as tf
with open(sys.argv[1], encoding="utf-8") as f:
  best = json.load(f)["best_kept"]["checkpoint"]
tf.io.gfile.makedirs(sys.argv[2])
tf.train.update_checkpoint_state(sys.argv[2], best, [best])
PY
"$PYTHON" -m finetune.run_classifier "${COMMON[@]}" --output_dir="$TEST_DIR" \
  --tfrecord_dir="$MODEL_DIR" --do_eval=True --do_test=True "$@"
echo "dev (best checkpoint):"
grep '^best_' "$MODEL_DIR/eval_results.txt"
echo "test (that checkpoint, scored once):"
grep -E '^(pearson|spearman|mse|num_examples|checkpoint) ' "$TEST_DIR/eval_results.txt"
echo "test predictions: $MODEL_DIR/test_results.tsv"
