r"""Named entities in raw text, from a model fine-tuned by run_tagging (the quickest check that it works).

  python -m finetune.tagging.predict --output_dir=/tmp/ner "江泽民在北京会见了联合国秘书长。" [--json]
  python -m finetune.tagging.predict --output_dir=/tmp/ner < sentences.txt     # one text a line

The output dir's finetune_settings.json, config and vocab (finetune/core/model_dir.py) say how the model
reads text; the checkpoint is the best one eval_history.json names when there is one, else the latest
(--checkpoint overrides). Texts are cut into characters and windows exactly as in training
(alignment.py). Each entity comes with its character offsets [start, end) into the text as given, its
surface string and a probability (the mean over its characters of the probability of the chosen tag).
"""

import numpy as np

from finetune.core import model_dir as model_dir_lib, predict_cli
from finetune.tagging import alignment, scoring
from finetune.tagging.entities import TaggedSentence
from mobilebert import cli, tokenization
from mobilebert.config import BertConfig
from mobilebert.export import graph

FLAGS = predict_cli.FLAGS
FIELDS = ("text",)


class Tagger:
  """A fine-tuned tagger loaded from its output dir."""

  def __init__(self, output_dir, checkpoint=None):
    self.saved = model_dir_lib.read_model_dir(output_dir, (model_dir_lib.TAGGING,))
    self.tag_names = list(self.saved.settings["labels"])
    self.tokenizer = tokenization.FullTokenizer(self.saved.vocab_file,
                                                do_lower_case=self.saved.do_lower_case)
    self.checkpoint = predict_cli.choose_checkpoint(output_dir, checkpoint)
    heads = graph.detect_heads(self.checkpoint)
    if heads.num_tags != len(self.tag_names):
      raise cli.DataError(f"{self.checkpoint}: tagging head has {heads.num_tags} outputs, but "
                          f"{output_dir}/{model_dir_lib.SETTINGS_FILE} names {len(self.tag_names)} "
                          "tags")
    config = BertConfig.from_json_file(self.saved.bert_config_file)
    self.model = graph.TFModel(config, self.checkpoint,
                               graph.CheckpointHeads(False, False, None, heads.fake_quantized,
                                                     heads.num_tags))

  def predict(self, texts, batch_size=32):
    """For each text: {"text", "entities": [{"start", "end", "label", "text", "probability"}]}."""
    sentences = [TaggedSentence(str(i), text, tuple((c, c + 1) for c in range(len(text))), None)
                 for i, text in enumerate(texts)]
    windows, rows = [], []
    for index, sentence in enumerate(sentences):
      for window, features in alignment.featurize(sentence, index, self.tokenizer, {},
                                                  self.saved.max_seq_length):
        windows.append(window)
        rows.append(features)
    arrays = {name: np.array([getattr(r, name) for r in rows], np.int32)
              for name in graph.INPUT_NAMES + ("first_piece",)}
    probabilities = np.concatenate([
        self.model.run(*(arrays[n][start:start + batch_size] for n in graph.INPUT_NAMES),
                       names=["tag_probabilities"])["tag_probabilities"]
        for start in range(0, len(rows), batch_size)])
    per_unit = alignment.unit_probabilities(sentences, windows, arrays["first_piece"], probabilities)
    return [{"text": sentence.text,
             "entities": scoring.entity_records(
                 sentence, alignment.predicted_entities(sentence, unit_probs, self.tag_names))}
            for sentence, unit_probs in zip(sentences, per_unit)]


def format_text(result):
  lines = [result["text"]]
  for entity in result["entities"]:
    lines.append(f"  {entity['label']}\t{entity['text']}\t[{entity['start']}, {entity['end']})\t"
                 f"{entity['probability']:.3f}")
  if not result["entities"]:
    lines.append("  (no entity)")
  return lines


def main(argv):
  with cli.reporting_user_errors("tagging.predict"):
    if not FLAGS.output_dir:
      raise cli.FlagError("--output_dir is required (the fine-tuning run's output directory)")
    tagger = Tagger(FLAGS.output_dir, FLAGS.checkpoint)
    texts = [values[0] for values in predict_cli.read_inputs(argv[1:], FIELDS)]
    if FLAGS.batch_size < 1:
      raise cli.FlagError(f"--batch_size must be at least 1, got {FLAGS.batch_size}")
    results = tagger.predict(texts, FLAGS.batch_size)
  predict_cli.print_results(results, format_text, FLAGS.json)


if __name__ == "__main__":
  predict_cli.define_flags()
  cli.run_main(main, "tagging.predict")
