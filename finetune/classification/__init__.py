"""Sentence and sentence-pair classification: tasks (tasks/), features, head, runner, TFLite scoring."""
