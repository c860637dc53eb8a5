r"""Answer spans for a question on a context, from a model fine-tuned by run_cmrc2018.py.

  python -m finetune.span.predict --output_dir=/tmp/cmrc2018 "中国的首都是哪里？" "北京是中国的首都。"
  printf '%s\t%s\n' "$QUESTION" "$CONTEXT" | python -m finetune.span.predict --output_dir=... --json

Arguments are taken two at a time (question, context); stdin holds one tab-separated question and
context a line. The context is cut into the training run's windows (max_seq_length, doc_stride,
max_query_length), and the answer is read back from the original text as in run_cmrc2018's predictions
(n-best over windows, traditional characters kept when the run used --convert_traditional): the answer,
its character offsets in the context and its probability within the n-best list.
"""

from typing import NamedTuple

import numpy as np
from absl import flags

from finetune.core import model_dir as model_dir_lib, predict_cli
from finetune.span import data as span_data
from finetune.span import features as span_features
from finetune.span import postprocess as span_postprocess
from mobilebert import cli
from mobilebert.config import BertConfig
from mobilebert.export import graph
from mobilebert.tokenization import FullTokenizer

FLAGS = flags.FLAGS
FIELDS = ("question", "context")


class Answer(NamedTuple):
  question: str
  context: str
  answer: str
  start: int  # character offsets of the answer in the context: context[start:end]
  end: int
  probability: float
  nbest: list


class SpanPredictor:
  """A fine-tuned span-extraction model loaded from its output dir."""
  fields = FIELDS

  def __init__(self, output_dir, checkpoint=None):
    self.saved = model_dir_lib.read_model_dir(output_dir, (model_dir_lib.SPAN,))
    self.checkpoint = predict_cli.choose_checkpoint(output_dir, checkpoint or "latest")
    self.tokenizer = FullTokenizer(self.saved.vocab_file, do_lower_case=self.saved.do_lower_case)
    settings = self.saved.settings
    self.feature_settings = span_features.FeatureSettings(
        self.saved.max_seq_length, settings["doc_stride"], settings["max_query_length"])
    self.n_best_size, self.max_answer_length = settings["n_best_size"], settings["max_answer_length"]
    self.convert_traditional = settings.get("convert_traditional", False)
    heads = graph.detect_heads(self.checkpoint)
    if not heads.span:
      raise cli.DataError(f"{self.checkpoint}: no span head (cls/squad/output_weights); predict with "
                          "a checkpoint fine-tuned by run_cmrc2018")
    # The span head alone (with the checkpoint's fake quantization): the export graph's start/end logits.
    self.model = graph.TFModel(BertConfig.from_json_file(self.saved.bert_config_file), self.checkpoint,
                               graph.CheckpointHeads(False, False, None, heads.fake_quantized,
                                                     span=True))

  def predict(self, inputs, batch_size=32, nbest=3):
    """Answers for (question, context) tuples, with the `nbest` best candidates each."""
    dataset = {"data": [{"paragraphs": [{"context": context, "qas": [{"id": str(i), "question": q}]}]}
                        for i, (q, context) in enumerate(inputs)]}
    examples, _ = span_data.examples_from_dataset(dataset, self.convert_traditional, source="input")
    features = span_features.convert_examples(self.tokenizer, examples, self.feature_settings,
                                               for_training=False)
    results = []
    for batch in predict_cli.batches(features, batch_size):
      arrays = [np.array([getattr(f, name) for f in batch], np.int32)
                for name in ("input_ids", "input_mask", "segment_ids")]
      logits = self.model.run(*arrays, names=["start_logits", "end_logits"])
      starts, ends = logits["start_logits"], logits["end_logits"]
      results += [span_postprocess.RawResult(f.unique_id, s, e) for f, s, e in zip(batch, starts, ends)]
    _, candidates = span_postprocess.make_predictions(examples, features, results, self.n_best_size,
                                                       self.max_answer_length)
    answers = []
    for (question, context), example in zip(inputs, examples):
      best = candidates[example.qas_id][:nbest]
      top = best[0] if best else {"text": "", "char_start": -1, "char_end": -1, "probability": 0.0}
      answers.append(Answer(question, context, top["text"], top["char_start"], top["char_end"],
                            top["probability"],
                            [{"text": c["text"], "start": c["char_start"], "end": c["char_end"],
                              "probability": c["probability"]} for c in best]))
    return answers


def format_text(result):
  lines = [f"Q: {result['question']}", f"  -> {result['answer'] or '(no answer)'}"
           f"  [{result['start']}:{result['end']}]  {result['probability']:.3f}"]
  lines += [f"     {c['text']}  [{c['start']}:{c['end']}]  {c['probability']:.3f}"
            for c in result["nbest"][1:]]
  return lines


def main(argv):
  with cli.reporting_user_errors("span.predict"):
    if not FLAGS.output_dir:
      raise cli.FlagError("--output_dir is required (the fine-tuning run's output directory)")
    if FLAGS.nbest < 1:
      raise cli.FlagError(f"--nbest must be at least 1, got {FLAGS.nbest}")
    predictor = SpanPredictor(FLAGS.output_dir, FLAGS.checkpoint)
    inputs = predict_cli.read_inputs(argv[1:], FIELDS)
    results = [a._asdict() for a in predictor.predict(inputs, FLAGS.batch_size, FLAGS.nbest)]
  predict_cli.print_results(results, format_text, FLAGS.json)


if __name__ == "__main__":
  predict_cli.define_flags()
  flags.DEFINE_integer("nbest", 3, "Candidates shown per question (the first is the answer).")
  cli.run_main(main, "span.predict")
