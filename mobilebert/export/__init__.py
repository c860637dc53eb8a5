"""Exports of a checkpoint for serving and other toolkits: SavedModel, TFLite and Hugging Face.

`python -m mobilebert.export --format=saved_model|tflite|hf ...` (see __main__.py). Every export runs
the exported model on a few inputs and compares it with the TensorFlow graph before it is kept.
"""
