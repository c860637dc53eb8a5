r"""Named entities in raw text, from a model fine-tuned by run_tagging (the quickest check that it works).

  python -m finetune.tagging.predict --output_dir=/tmp/ner "江泽民在北京会见了联合国秘书长。" [--json]
  python -m finetune.tagging.predict --output_dir=/tmp/ner < sentences.txt     # one text a line

The output dir's label_list.json and bert_config.json say how the model reads text; the checkpoint is
the best one eval_history.json names when there is one, else the latest (--checkpoint overrides).
Texts are cut into characters and windows exactly as in training (alignment.py). Each entity comes with
its character offsets [start, end) into the text as given, its surface string and a probability (the
mean over its characters of the probability of the chosen tag).
"""

import json
import os
import sys

import numpy as np
import tensorflow.compat.v1 as tf
from absl import app, flags

from finetune.core import checkpoint_scoring
from finetune.tagging import alignment, scoring
from finetune.tagging import runner as runner_lib
from finetune.tagging.entities import TaggedSentence
from mobilebert import cli, tokenization
from mobilebert.config import BertConfig
from mobilebert.export import graph


class PredictError(cli.UserError, ValueError):
  """An output dir, checkpoint or text the predict command cannot use."""


def _read_json(path):
  if not tf.io.gfile.exists(path):
    raise PredictError(f"{path} not found: --output_dir must be a directory run_tagging --do_train "
                       "wrote")
  with tf.io.gfile.GFile(path, "r") as f:
    return json.loads(f.read())


def default_checkpoint(output_dir):
  """The best kept checkpoint by dev entity F1 if the run scored any, else the latest."""
  if tf.io.gfile.exists(os.path.join(output_dir, checkpoint_scoring.EVAL_HISTORY)):
    return checkpoint_scoring.best_kept_checkpoint(output_dir)
  on_disk = checkpoint_scoring.checkpoints_on_disk(output_dir)
  if not on_disk:
    raise PredictError(f"--output_dir={output_dir} holds no checkpoint")
  return on_disk[-1]


class Tagger:
  """A fine-tuned tagger loaded for raw text."""

  def __init__(self, output_dir, checkpoint=None, vocab_file=None, batch_size=16):
    description = _read_json(os.path.join(output_dir, runner_lib.LABEL_FILE))
    self.tag_names = description["labels"]
    self.max_seq_length = description["max_seq_length"]
    self.batch_size = batch_size
    self.tokenizer = tokenization.FullTokenizer(vocab_file or description["vocab_file"],
                                                do_lower_case=description["do_lower_case"])
    config = BertConfig.from_dict(_read_json(os.path.join(output_dir, runner_lib.BERT_CONFIG_COPY)))
    self.checkpoint = checkpoint or default_checkpoint(output_dir)
    heads = graph.detect_heads(self.checkpoint)
    if heads.num_tags != len(self.tag_names):
      raise PredictError(f"{self.checkpoint} has no tagging head of {len(self.tag_names)} tags "
                         f"(found {heads.num_tags}); use a checkpoint run_tagging wrote")
    self.model = graph.TFModel(config, self.checkpoint,
                               graph.CheckpointHeads(False, False, None, heads.fake_quantized,
                                                     heads.num_tags))

  def predict(self, texts):
    """For each text: {"text", "entities": [{"start", "end", "label", "text", "probability"}]}."""
    sentences = []
    for index, text in enumerate(texts):
      if not text.strip():
        raise PredictError(f"text {index + 1} is empty")
      sentences.append(TaggedSentence(str(index), text, tuple((i, i + 1) for i in range(len(text))),
                                      None))
    windows, rows = [], []
    for index, sentence in enumerate(sentences):
      for window, features in alignment.featurize(sentence, index, self.tokenizer, {},
                                                  self.max_seq_length):
        windows.append(window)
        rows.append(features)
    arrays = {name: np.array([getattr(r, name) for r in rows], np.int32)
              for name in graph.INPUT_NAMES + ("first_piece",)}
    probabilities = np.concatenate([
        self.model.run(*(arrays[n][start:start + self.batch_size] for n in graph.INPUT_NAMES),
                       names=["tag_probabilities"])["tag_probabilities"]
        for start in range(0, len(rows), self.batch_size)])
    per_unit = alignment.unit_probabilities(sentences, windows, arrays["first_piece"], probabilities)
    return [{"text": sentence.text,
             "entities": scoring.entity_records(
                 sentence, alignment.predicted_entities(sentence, unit_probs, self.tag_names))}
            for sentence, unit_probs in zip(sentences, per_unit)]


def format_result(result):
  lines = [result["text"]]
  for entity in result["entities"]:
    lines.append(f"  {entity['label']}\t{entity['text']}\t[{entity['start']}, {entity['end']})\t"
                 f"{entity['probability']:.3f}")
  if not result["entities"]:
    lines.append("  (no entity)")
  return lines


FLAGS = flags.FLAGS


def define_flags():
  cli.define_verbose_flag()
  flags.DEFINE_string("output_dir", None, "Directory run_tagging --do_train wrote.")
  flags.DEFINE_string("checkpoint", None, "Checkpoint to use (default: best by dev F1, else latest).")
  flags.DEFINE_string("vocab_file", None, "Vocab file (default: the one the run recorded).")
  flags.DEFINE_bool("json", False, "Print one JSON object per text instead of text lines.")


def main(argv):
  texts = argv[1:] or [line.rstrip("\n") for line in sys.stdin if line.strip()]
  with cli.reporting_user_errors("tagging.predict"):
    if not FLAGS.output_dir:
      raise cli.FlagError("--output_dir is required")
    if not texts:
      raise cli.FlagError("no text: give texts as arguments or one a line on standard input")
    results = Tagger(FLAGS.output_dir, FLAGS.checkpoint, FLAGS.vocab_file).predict(texts)
  for result in results:
    print(json.dumps(result, ensure_ascii=False) if FLAGS.json else "\n".join(format_result(result)))


if __name__ == "__main__":
  define_flags()
  app.run(main)
