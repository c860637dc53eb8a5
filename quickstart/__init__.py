"""The quick start: the whole MobileBERT recipe at a small scale on real Chinese data (see recipe.py)."""
