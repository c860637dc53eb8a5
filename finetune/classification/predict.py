r"""Labels with probabilities (classification) or a value (regression) for raw text, from a fine-tuned model.

  python -m finetune.classification.predict --output_dir=output/demo_chnsenticorp "房间干净，服务周到。"
  python -m finetune.classification.predict --output_dir=output/demo_stsb "一个男人在弹吉他。" "一个人在弹吉他。"
  printf '%s\t%s\n' "今天很热" "天气很热" | python -m finetune.classification.predict --output_dir=... --json

A pair model (LCQMC, XNLI, STS-B) reads two texts per input: arguments two at a time, or one
tab-separated pair a line on stdin. The texts are featurized as in training (same vocab, casing and
max_seq_length, longest-first truncation) and run through the checkpoint (--checkpoint: best by dev
score when the run scored its checkpoints, else the latest).
"""

from typing import NamedTuple

import numpy as np
from absl import flags

from finetune.classification import features as classifier_features
from finetune.classification.tasks.base import CLASSIFICATION, REGRESSION, InputExample
from finetune.core import model_dir as model_dir_lib, predict_cli
from mobilebert import cli
from mobilebert.config import BertConfig
from mobilebert.export import graph
from mobilebert.tokenization import FullTokenizer

FLAGS = flags.FLAGS


class Prediction(NamedTuple):
  """One input's result: `label` and `probabilities` for classification, `value` for regression."""
  text_a: str
  text_b: str = None
  label: str = None
  label_name: str = None
  probabilities: dict = None
  value: float = None


class ClassifierPredictor:
  """A fine-tuned classification or regression model loaded from its output dir."""

  def __init__(self, output_dir, checkpoint=None):
    self.saved = model_dir_lib.read_model_dir(output_dir, (CLASSIFICATION, REGRESSION))
    self.checkpoint = predict_cli.choose_checkpoint(output_dir, checkpoint)
    self.tokenizer = FullTokenizer(self.saved.vocab_file, do_lower_case=self.saved.do_lower_case)
    self.labels = list(self.saved.settings.get("labels") or [])
    self.names = self.saved.settings.get("label_names") or {}
    heads = graph.detect_heads(self.checkpoint)
    expected = 1 if self.saved.kind == REGRESSION else len(self.labels)
    if heads.num_labels != expected:
      raise cli.DataError(f"{self.checkpoint}: head has {heads.num_labels} outputs, but "
                          f"{output_dir}/{model_dir_lib.SETTINGS_FILE} describes a {self.saved.kind} "
                          f"model with {expected}")
    config = BertConfig.from_json_file(self.saved.bert_config_file)
    self.model = graph.TFModel(config, self.checkpoint, heads._replace(masked_lm=False,
                                                                       next_sentence=False))

  @property
  def fields(self):
    return ("text_a", "text_b") if self.saved.settings.get("is_pair") else ("text",)

  def predict(self, inputs, batch_size=32):
    """Predictions for tuples of texts (one or two per input, see `fields`)."""
    results = []
    for batch in predict_cli.batches(list(inputs), batch_size):
      features = [classifier_features.convert_example(
          InputExample(guid=str(i), text_a=texts[0], text_b=texts[1] if len(texts) > 1 else None),
          None, self.saved.max_seq_length, self.tokenizer) for i, texts in enumerate(batch)]
      arrays = [np.array([getattr(f, name) for f in features], np.int32)
                for name in ("input_ids", "input_mask", "segment_ids")]
      outputs = self.model.run(*arrays, names=["logits", "probabilities"])
      for texts, logits, probabilities in zip(batch, outputs["logits"], outputs["probabilities"]):
        text_b = texts[1] if len(texts) > 1 else None
        if self.saved.kind == REGRESSION:
          results.append(Prediction(texts[0], text_b, value=float(logits[0])))
          continue
        label = self.labels[int(np.argmax(probabilities))]
        results.append(Prediction(
            texts[0], text_b, label=label, label_name=self.names.get(label, label),
            probabilities={l: float(p) for l, p in zip(self.labels, probabilities)}))
    return results


def to_dict(prediction):
  return {key: value for key, value in prediction._asdict().items() if value is not None}


def format_text(result):
  """Text lines for one result: the input, then the label and its probability, or the value."""
  shown = result["text_a"] + (f" ||| {result['text_b']}" if "text_b" in result else "")
  if "value" in result:
    return [shown, f"  -> {result['value']:.4f}"]
  ranked = sorted(result["probabilities"].items(), key=lambda item: -item[1])
  name = f" ({result['label_name']})" if result["label_name"] != result["label"] else ""
  return [shown, f"  -> {result['label']}{name}  " + "  ".join(f"{l} {p:.3f}" for l, p in ranked)]


def main(argv):
  with cli.reporting_user_errors("classification.predict"):
    if not FLAGS.output_dir:
      raise cli.FlagError("--output_dir is required (the fine-tuning run's output directory)")
    predictor = ClassifierPredictor(FLAGS.output_dir, FLAGS.checkpoint)
    inputs = predict_cli.read_inputs(argv[1:], predictor.fields)
    results = [to_dict(p) for p in predictor.predict(inputs, FLAGS.batch_size)]
  predict_cli.print_results(results, format_text, FLAGS.json)


if __name__ == "__main__":
  predict_cli.define_flags()
  cli.run_main(main, "classification.predict")
