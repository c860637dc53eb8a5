r"""Top-k predictions for each [MASK] in a text: the quickest check that a pretrained checkpoint works.

  python -m mobilebert.fill_mask --bert_config_file=config/student_base_f2.json \
      --vocab_file=vocab.txt --init_checkpoint=mobilebert.ckpt --text="今天天气很[MASK]。" [--json]

`--text` may be given several times. The text is tokenized like the training data (BERT's tokenizer,
every CJK character a token) around the literal `[MASK]` markers, wrapped in [CLS] ... [SEP], and run
through the masked-LM head (`cls/predictions/*`, which stripped and pretraining checkpoints keep).
"""

import collections
import json

from absl import flags
import numpy as np

from mobilebert import cli
from mobilebert import tokenization
from mobilebert.config import BertConfig
from mobilebert.export import graph

MASK = "[MASK]"

Encoded = collections.namedtuple("Encoded", ["text", "tokens", "input_ids", "mask_positions"])
Prediction = collections.namedtuple("Prediction", ["token", "id", "probability"])


class FillMaskError(cli.UserError, ValueError):
  """A text, vocab or checkpoint that fill-mask cannot use."""


def encode(tokenizer, text, max_seq_length):
  """Tokenizes `text` around its literal [MASK] markers; returns Encoded ([CLS] ... [SEP]).

  Raises FillMaskError if the text has no [MASK] or does not fit in `max_seq_length` tokens.
  """
  pieces = text.split(MASK)
  if len(pieces) < 2:
    raise FillMaskError(f"--text {text!r} has no {MASK}; mark each token to predict with {MASK}")
  tokens = ["[CLS]"]
  positions = []
  for index, piece in enumerate(pieces):
    if index:
      positions.append(len(tokens))
      tokens.append(MASK)
    tokens.extend(tokenizer.tokenize(piece))
  tokens.append("[SEP]")
  if len(tokens) > max_seq_length:
    raise FillMaskError(f"--text {text[:40]!r}... is {len(tokens)} tokens with [CLS] and [SEP]; the "
                        f"maximum is {max_seq_length} (--max_seq_length / the config's "
                        "max_position_embeddings)")
  return Encoded(text, tokens, tokenizer.convert_tokens_to_ids(tokens), positions)


def batch_arrays(encoded):
  """Pads a list of Encoded into int32 arrays: ids, mask, segments [B, T] and positions [B, P]."""
  seq_length = max(len(e.input_ids) for e in encoded)
  num_masks = max(len(e.mask_positions) for e in encoded)
  shape = (len(encoded), seq_length)
  input_ids, input_mask = np.zeros(shape, np.int32), np.zeros(shape, np.int32)
  positions = np.zeros((len(encoded), num_masks), np.int32)
  for b, e in enumerate(encoded):
    input_ids[b, :len(e.input_ids)] = e.input_ids
    input_mask[b, :len(e.input_ids)] = 1
    positions[b, :len(e.mask_positions)] = e.mask_positions  # extra slots repeat [CLS]; ignored
  return input_ids, input_mask, np.zeros(shape, np.int32), positions


def top_k(logits, inv_vocab, k):
  """The k most probable tokens of one [V] logits row, as Predictions (softmax over the vocab)."""
  logits = np.asarray(logits, np.float64)
  probs = np.exp(logits - logits.max())
  probs /= probs.sum()
  best = np.argsort(-probs, kind="stable")[:k]
  return [Prediction(inv_vocab.get(int(i), "[UNK]"), int(i), float(probs[i])) for i in best]


class FillMask:
  """A loaded model and tokenizer that answer fill-mask queries."""

  def __init__(self, config, vocab_file, init_checkpoint, do_lower_case=True, max_seq_length=None):
    self.tokenizer = tokenization.FullTokenizer(vocab_file, do_lower_case=do_lower_case)
    vocab_rows = max(self.tokenizer.vocab.values()) + 1
    if vocab_rows != config.vocab_size:
      raise FillMaskError(f"--vocab_file {vocab_file} has {vocab_rows} entries but the config's "
                          f"vocab_size is {config.vocab_size}: they belong to different models")
    self.max_seq_length = min(max_seq_length or config.max_position_embeddings,
                              config.max_position_embeddings)
    heads = graph.detect_heads(init_checkpoint)
    if not heads.masked_lm:
      raise FillMaskError(f"{init_checkpoint} has no masked-LM head (cls/predictions/*); fine-tuned "
                          "checkpoints drop it: use a pretrained (or stripped pretrained) checkpoint")
    self.model = graph.TFModel(config, init_checkpoint, heads._replace(num_labels=None,
                                                                       next_sentence=False))

  def predict(self, texts, k=5):
    """For each text: {"text", "tokens", "masks": [{"position", "predictions": [...]}]}."""
    encoded = [encode(self.tokenizer, t, self.max_seq_length) for t in texts]
    input_ids, input_mask, segment_ids, positions = batch_arrays(encoded)
    logits = self.model.run(input_ids, input_mask, segment_ids, positions, names=["mlm_logits"])
    logits = logits["mlm_logits"].reshape(len(encoded), positions.shape[1], -1)
    results = []
    for b, e in enumerate(encoded):
      masks = [{"position": p,
                "predictions": [p_._asdict() for p_ in top_k(logits[b, j], self.tokenizer.inv_vocab, k)]}
               for j, p in enumerate(e.mask_positions)]
      results.append({"text": e.text, "tokens": e.tokens, "masks": masks})
    return results


def format_result(result):
  """Text lines for one result: the top-1 filled text, then the top-k of each [MASK]."""
  tokens = list(result["tokens"])
  for mask in result["masks"]:
    tokens[mask["position"]] = mask["predictions"][0]["token"]
  lines = [f"{result['text']}", f"  -> {''.join(t for t in tokens[1:-1])}"]
  for index, mask in enumerate(result["masks"]):
    best = "  ".join(f"{p['token']} {p['probability']:.3f}" for p in mask["predictions"])
    lines.append(f"  [MASK] #{index + 1} (token {mask['position']}): {best}")
  return lines


FLAGS = flags.FLAGS


def define_flags():
  cli.define_verbose_flag()
  flags.DEFINE_string("bert_config_file", None, "Model config JSON.")
  flags.DEFINE_string("vocab_file", None, "Vocab file of the model.")
  flags.DEFINE_string("init_checkpoint", None, "Pretrained checkpoint (prefix or directory).")
  flags.DEFINE_multi_string("text", None, "Text with one or more [MASK]; may be repeated.")
  flags.DEFINE_integer("top_k", 5, "Predictions per [MASK].")
  flags.DEFINE_bool("do_lower_case", True, "Lower-case the input (True for the Chinese models).")
  flags.DEFINE_integer("max_seq_length", None, "Longest input in tokens (default and cap: the "
                       "config's max_position_embeddings).")
  flags.DEFINE_bool("json", False, "Print one JSON object per text instead of text lines.")


def main(argv):
  del argv
  with cli.reporting_user_errors("fill_mask"):
    if FLAGS.top_k < 1:
      raise cli.FlagError("--top_k must be at least 1")
    config = BertConfig.from_json_file(FLAGS.bert_config_file)
    filler = FillMask(config, FLAGS.vocab_file, FLAGS.init_checkpoint, FLAGS.do_lower_case,
                      FLAGS.max_seq_length)
    results = filler.predict(FLAGS.text, FLAGS.top_k)
  for result in results:
    print(json.dumps(result, ensure_ascii=False) if FLAGS.json else "\n".join(format_result(result)))


if __name__ == "__main__":
  define_flags()
  flags.mark_flags_as_required(["bert_config_file", "vocab_file", "init_checkpoint", "text"])
  cli.run_main(main, "fill_mask")
