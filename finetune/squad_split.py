# coding=utf-8
"""Splits a SQuAD-style file by paragraph into a training part and a held-out part, reproducibly.

    python -m finetune.squad_split IN.json TRAIN_OUT.json HELD_OUT.json [--held_out_percent 20]

A paragraph is held out when a SHA-256 of its id (its context if it has none) falls in the first
`held_out_percent` of 100 buckets, so the split depends on nothing but the paragraph itself: the same
on every machine and for every order of the file, and all questions on one paragraph stay together
(questions on the same text in both parts would overstate held-out scores).
"""

import argparse
import copy
import hashlib
import sys

from finetune.span import data as span_data
from finetune.span.postprocess import write_json


def is_held_out(paragraph, held_out_percent):
  key = str(paragraph.get("id") or paragraph.get("context", ""))
  bucket = int(hashlib.sha256(key.encode("utf-8")).hexdigest(), 16) % 100
  return bucket < held_out_percent


def split_by_paragraph(dataset, held_out_percent=20):
  """Returns (train, held_out) SQuAD-style dicts; articles keep their other fields, and an article
  whose paragraphs all went to the other part is left out."""
  if not 0 < held_out_percent < 100:
    raise ValueError(f"held_out_percent must be between 0 and 100, got {held_out_percent}")
  parts = ({"version": dataset.get("version"), "data": []},
           {"version": dataset.get("version"), "data": []})
  for article in dataset["data"]:
    chosen = ([], [])
    for paragraph in article["paragraphs"]:
      chosen[is_held_out(paragraph, held_out_percent)].append(paragraph)
    for part, paragraphs in zip(parts, chosen):
      if paragraphs:
        copied = {k: v for k, v in article.items() if k != "paragraphs"}
        copied["paragraphs"] = copy.deepcopy(paragraphs)
        part["data"].append(copied)
  return parts


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("input")
  parser.add_argument("train_output")
  parser.add_argument("held_out_output")
  parser.add_argument("--held_out_percent", type=int, default=20)
  args = parser.parse_args(argv)
  dataset = span_data.read_squad_json(args.input)
  train, held_out = split_by_paragraph(dataset, args.held_out_percent)
  write_json(args.train_output, train)
  write_json(args.held_out_output, held_out)
  for name, part in (("train", train), ("held-out", held_out)):
    paragraphs = [p for a in part["data"] for p in a["paragraphs"]]
    print(f"{name}: {len(paragraphs)} paragraphs, {sum(len(p['qas']) for p in paragraphs)} questions")
  return 0


if __name__ == "__main__":
  sys.exit(main())
