#!/usr/bin/env bash
# Fine-tuning demo on CPU with the real ChnSentiCorp splits in data/chnsenticorp (9,600 / 1,200 / 1,200
# reviews): trains, scores every checkpoint on dev, and writes test predictions from the best one.
# By default config/tiny_student_zh.json from fresh initialization (minutes on a laptop CPU); point
# INIT_PATH at a released model (mobilebert.ckpt.*, vocab.txt, student_base_f2.json) to fine-tune it:
#   INIT_PATH=~/mobilebert-base-f2 LEARNING_RATE=6e-5 bash run_scripts/demo_chnsenticorp_cpu.sh
# Extra arguments go to run_classifier.py.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# No interpreter given: make (or reuse) the project environment first.
[[ -n "${PYTHON:-}" ]] || bash "$ROOT/run_scripts/setup_env.sh"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
INIT_PATH="${INIT_PATH:-}"
DATA_DIR="${DATA_DIR:-$ROOT/data/chnsenticorp}"
MODEL_DIR="${MODEL_DIR:-$ROOT/output/demo_chnsenticorp}"   # an existing run here is resumed
MAX_SEQ_LENGTH="${MAX_SEQ_LENGTH:-128}"
TRAIN_BATCH_SIZE="${TRAIN_BATCH_SIZE:-32}"
NUM_TRAIN_EPOCHS="${NUM_TRAIN_EPOCHS:-2}"
LEARNING_RATE="${LEARNING_RATE:-2e-3}"              # for fresh initialization; ~6e-5 when pretrained

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

"$PYTHON" -m finetune.run_classifier \
  --task_name=chnsenticorp --data_dir="$DATA_DIR" --output_dir="$MODEL_DIR" \
  --vocab_file="$VOCAB_FILE" --bert_config_file="$BERT_CONFIG" --init_checkpoint="$INIT_CHECKPOINT" \
  --do_train=True --do_eval=True --do_predict=True --predict_checkpoint=best \
  --max_seq_length="$MAX_SEQ_LENGTH" --train_batch_size="$TRAIN_BATCH_SIZE" \
  --eval_batch_size=100 --predict_batch_size=100 --num_train_epochs="$NUM_TRAIN_EPOCHS" \
  --learning_rate="$LEARNING_RATE" --save_checkpoints_steps=150 --keep_checkpoint_max=20 \
  --log_every_n_steps=50 --rand_seed=12345 \
  "$@"
if [[ -f "$MODEL_DIR/eval_results.txt" ]]; then
  cat "$MODEL_DIR/eval_results.txt"
  echo "predictions: $MODEL_DIR/test_results.tsv"
fi
