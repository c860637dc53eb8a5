"""Span extraction (CMRC 2018, DRCD; SQuAD-style JSON): data, character alignment, windowed features,
records, head, answer post-processing and runner."""
