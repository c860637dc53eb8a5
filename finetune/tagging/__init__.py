"""Token tagging (BIO named entities): data, alignment to word pieces, head, scoring, predictions."""
