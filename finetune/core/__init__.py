"""What every kind of fine-tuning task shares: run config, TFRecord cache and input_fn, model_fn,
runner skeleton and checkpoint scoring. How to add a kind: finetune/core/README.md."""
