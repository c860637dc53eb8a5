#!/usr/bin/env bash
# The release's pretraining recipe (pretrain/run.pretrain.sh of Chinese-MobileBERT): MobileBERT base-f2
# from RoBERTa-wwm-ext, progressive knowledge transfer for 500k steps (output_dir/warmup) then 2M steps
# of distillation with half teacher, half ground-truth labels. Same variables and flags as the original.
#   DATA_DIR='/data/tf_examples.*' TEACHER_CHECKPOINT=roberta-wwm-ext/bert_model.ckpt \
#     OUTPUT_DIR=gs://bucket/mobilebert/base-f2 TPU_NAME=my-tpu bash run_scripts/run_pretraining.sh
# The warm-up runs exactly as the release trained it (WARMUP_SCHEDULE=original: the original code's AdamW,
# which applies no layer-wise learning rate, every student variable at --learning_rate, only the transfer
# losses staged); WARMUP_SCHEDULE=staged trains with this project's schedule instead (pretrain/README.md).
# Rerunning the same command resumes from the last checkpoint, in the right phase and stage.
# Without a TPU: USE_TPU=false (add --num_gpus=N for several GPUs). Extra arguments are passed on and
# override the flags below (absl keeps the last value), e.g. --dry_run to only check flags and data.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# No interpreter given: make (or reuse) the project environment first.
[[ -n "${PYTHON:-}" ]] || bash "$ROOT/run_scripts/setup_env.sh"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"

# Pretraining TFRecords, made like BERT's create_pretraining_data.py (run_scripts/create_pretraining_data.sh)
DATA_DIR="${DATA_DIR:-./data-dir/tf_examples.*}"
# The teacher; for base-f2 RoBERTa-wwm-ext
TEACHER_CHECKPOINT="${TEACHER_CHECKPOINT:-./roberta-wwm-ext/bert_model.ckpt}"
# Where the pretrained MobileBERT goes
OUTPUT_DIR="${OUTPUT_DIR:-./mobilebert/base-f2}"
# The layer-wise warm-up: original (as the release trained) or staged (ours)
WARMUP_SCHEDULE="${WARMUP_SCHEDULE:-original}"

# TPU only; empty names use the TPU the environment provides (a Cloud TPU VM)
TPU_NAME="${TPU_NAME:-}"
TPU_ZONE="${TPU_ZONE:-}"
USE_TPU="${USE_TPU:-true}"

"$PYTHON" "$ROOT/pretrain/run_pretraining.py" \
  --input_file="${DATA_DIR}" \
  --first_input_file="${DATA_DIR}" \
  --attention_distill_factor=1 \
  --bert_config_file="$ROOT/config/student_base_f2.json" \
  --bert_teacher_config_file="$ROOT/config/roberta_wwm_ext.json" \
  --beta_distill_factor=5000 \
  --distill_ground_truth_ratio=0.5 \
  --distill_temperature=1 \
  --do_train \
  --first_max_seq_length=128 \
  --first_num_train_steps=0 \
  --first_train_batch_size=256 \
  --gamma_distill_factor=5 \
  --hidden_distill_factor=100 \
  --init_checkpoint="${TEACHER_CHECKPOINT}" \
  --layer_wise_warmup \
  --layer_wise_warmup_schedule="${WARMUP_SCHEDULE}" \
  --learning_rate=1e-4 \
  --max_predictions_per_seq=75 \
  --max_seq_length=512 \
  --num_distill_steps=500000 \
  --num_train_steps=2000000 \
  --num_warmup_steps=10000 \
  --optimizer=adamw \
  --output_dir="${OUTPUT_DIR}" \
  --save_checkpoints_steps=10000 \
  --train_batch_size=384 \
  --use_einsum \
  --use_summary \
  --use_tpu="${USE_TPU}" \
  ${TPU_ZONE:+--tpu_zone="${TPU_ZONE}"} \
  ${TPU_NAME:+--tpu_name="${TPU_NAME}"} \
  "$@"

echo "ALL DONE"
