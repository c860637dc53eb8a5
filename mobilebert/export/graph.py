"""The inference graph every export and fill-mask run: BertModel plus whichever heads a checkpoint has.

A checkpoint's heads are read from its variable names: `cls/predictions/*` (masked LM),
`cls/seq_relationship/*` (next sentence), the fine-tuned classifier's top-level `output_weights`
[num_labels, H] / `output_bias` [num_labels] (logits = pooled @ W^T + b, as in run_classifier.py), and
the token tagger's `tagging/output_weights` [num_tags, H] (a tag for every token, run_tagging.py) and
the span head's `cls/squad/output_weights` [2, H] (start and end logits, run_cmrc2018.py).
Weights are loaded strictly: every graph variable must be in the checkpoint with its shape (there is
no --skip_mismatched_variables here: an inference graph with random weights is never wanted). 16-bit
checkpoints written by strip_checkpoint are cast up to float32.
"""

import collections

import numpy as np
import tensorflow.compat.v1 as tf

from mobilebert import checkpoint as checkpoint_lib
from mobilebert import cli
from mobilebert import heads as heads_lib
from mobilebert import modeling
from mobilebert import quantization

INPUT_NAMES = ("input_ids", "input_mask", "segment_ids")

# fake_quantized: the checkpoint was fine-tuned with --use_quantized_training; its graph has the
# fake-quant nodes (and their learned ranges), and the TFLite converter reads them.
CheckpointHeads = collections.namedtuple(
    "CheckpointHeads",
    ["masked_lm", "next_sentence", "num_labels", "fake_quantized", "num_tags", "span"],
    defaults=[False, None, False])


class ExportError(cli.UserError, ValueError):
  """An export that cannot be made, or whose result does not match the TensorFlow graph."""


def detect_heads(init_checkpoint):
  """CheckpointHeads of the checkpoint at `init_checkpoint` (num_labels / num_tags None if it has no
  classifier / tagger)."""
  shapes = checkpoint_lib.list_checkpoint(init_checkpoint)
  num_labels = shapes["output_weights"][0] if "output_weights" in shapes else None
  tagger = f"{heads_lib.TAGGING_SCOPE}/output_weights"
  return CheckpointHeads(
      masked_lm=any(n.startswith("cls/predictions/") for n in shapes),
      next_sentence=any(n.startswith("cls/seq_relationship/") for n in shapes),
      num_labels=num_labels,
      fake_quantized=any(f"/{quantization.ACTIVATION_SCOPE}/" in n for n in shapes),
      num_tags=shapes[tagger][0] if tagger in shapes else None,
      span=f"{heads_lib.SPAN_SCOPE}/output_weights" in shapes)


def classifier_logits(config, pooled_output, num_labels):
  """[B, num_labels] logits of the fine-tuned classifier (top-level `output_weights`, `output_bias`)."""
  output_weights = tf.get_variable(
      "output_weights", [num_labels, config.hidden_size],
      initializer=modeling.create_initializer(config.initializer_range))
  output_bias = tf.get_variable("output_bias", [num_labels], initializer=tf.zeros_initializer())
  return tf.nn.bias_add(tf.matmul(pooled_output, output_weights, transpose_b=True), output_bias)


def build_outputs(config, heads, input_ids, input_mask, segment_ids, masked_lm_positions=None,
                  use_einsum=True, with_internals=False):
  """Builds the model and heads; returns an OrderedDict of named output tensors.

  Args:
    config: BertConfig.
    heads: CheckpointHeads; heads absent from it are not built.
    input_ids, input_mask, segment_ids: int32 [B, T].
    masked_lm_positions: int32 [B, P] or None; with a masked-LM head, adds `mlm_logits` [B*P, V].
    with_internals: also `all_encoder_layers` [L+1, B, T, H] and `all_attention_maps` [L, B, N, T, T].
  Returns:
    sequence_output [B, T, H], pooled_output [B, H]; with a classifier `logits`, `probabilities`
    [B, num_labels]; with a tagger `tag_logits`, `tag_probabilities` [B, T, num_tags]; with a span
    head `start_logits`, `end_logits` [B, T]; with an NSP
    head `nsp_logits` [B, 2]; see above for the rest.
  """
  with quantization.fake_quantization(is_training=False, enabled=heads.fake_quantized):
    model = modeling.BertModel(config, is_training=False, input_ids=input_ids,
                               input_mask=input_mask, token_type_ids=segment_ids,
                               use_einsum=use_einsum)
  outputs = collections.OrderedDict()
  outputs["sequence_output"] = tf.identity(model.get_sequence_output(), name="sequence_output")
  outputs["pooled_output"] = tf.identity(model.get_pooled_output(), name="pooled_output")
  if heads.num_labels:
    logits = classifier_logits(config, model.get_pooled_output(), heads.num_labels)
    outputs["logits"] = tf.identity(logits, name="logits")
    outputs["probabilities"] = tf.nn.softmax(logits, axis=-1, name="probabilities")
  if heads.num_tags:
    logits = heads_lib.token_tagging_logits(model.get_sequence_output(), heads.num_tags,
                                            config.initializer_range)
    outputs["tag_logits"] = tf.identity(logits, name="tag_logits")
    outputs["tag_probabilities"] = tf.nn.softmax(logits, axis=-1, name="tag_probabilities")
  if heads.span:
    _, start_logits, end_logits = heads_lib.span_logits(model.get_sequence_output(),
                                                        config.initializer_range)
    outputs["start_logits"] = tf.identity(start_logits, name="start_logits")
    outputs["end_logits"] = tf.identity(end_logits, name="end_logits")
  if heads.masked_lm and masked_lm_positions is not None:
    outputs["mlm_logits"] = tf.identity(heads_lib.masked_lm_logits(
        config, model.get_sequence_output(), model.get_embedding_table(), masked_lm_positions),
        name="mlm_logits")
  if heads.next_sentence:
    outputs["nsp_logits"] = tf.identity(
        heads_lib.next_sentence_logits(config, model.get_pooled_output()), name="nsp_logits")
  if with_internals:
    outputs["all_encoder_layers"] = tf.stack(model.get_all_encoder_layers())
    outputs["all_attention_maps"] = tf.stack(model.get_all_attention_maps())
  return outputs


def load_variables(session, init_checkpoint, variables=None):
  """Sets every variable (default: all global variables) from the checkpoint, strictly.

  Raises checkpoint.CheckpointError naming the first variable the checkpoint lacks or holds with
  another shape, or the first tensor that cannot be read.
  """
  prefix = checkpoint_lib.resolve_checkpoint(init_checkpoint)
  variables = tf.global_variables() if variables is None else variables
  fit = checkpoint_lib.assignment_map(prefix, variables)
  checkpoint_lib.check_fits(prefix, fit, require_all=True)
  names = [v.name.split(":")[0] for v in variables]
  values = checkpoint_lib.read_checkpoint_float32(prefix, names)
  feeds, assigns = {}, []
  for name, var in zip(names, variables):
    placeholder = tf.placeholder(var.dtype.base_dtype, var.shape)
    assigns.append(tf.assign(var, placeholder))
    feeds[placeholder] = values[name]
  session.run(assigns, feeds)
  tf.logging.info("load_variables %s: loaded all %d variables of the graph", prefix, len(names))


def check_checkpoint_fits(config, init_checkpoint, heads):
  """Raises checkpoint.CheckpointError unless every variable of the inference graph of `config` and
  `heads` is in the checkpoint with its shape; for exports that read the checkpoint without a graph."""
  with tf.Graph().as_default():
    inputs = [tf.placeholder(tf.int32, [None, None]) for _ in INPUT_NAMES]
    positions = tf.placeholder(tf.int32, [None, None]) if heads.masked_lm else None
    build_outputs(config, heads, *inputs, masked_lm_positions=positions)
    prefix = checkpoint_lib.resolve_checkpoint(init_checkpoint)
    fit = checkpoint_lib.assignment_map(prefix, tf.global_variables())
    checkpoint_lib.check_fits(prefix, fit, require_all=True)


class TFModel:
  """The TensorFlow reference: the model and its checkpoint's heads in a graph of its own.

  Example:
    model = TFModel(config, "model.ckpt")
    outputs = model.run(input_ids, input_mask, segment_ids)  # {"sequence_output": ..., ...}
  """

  def __init__(self, config, init_checkpoint, heads=None, use_einsum=True, with_internals=False):
    self.config = config
    self.heads = detect_heads(init_checkpoint) if heads is None else heads
    self.graph = tf.Graph()
    with self.graph.as_default():
      self.inputs = {name: tf.placeholder(tf.int32, [None, None], name=name) for name in INPUT_NAMES}
      self.positions = tf.placeholder(tf.int32, [None, None], name="masked_lm_positions")
      self.outputs = build_outputs(
          config, self.heads, *(self.inputs[n] for n in INPUT_NAMES),
          masked_lm_positions=self.positions if self.heads.masked_lm else None,
          use_einsum=use_einsum, with_internals=with_internals)
      self.session = tf.Session(graph=self.graph)
      load_variables(self.session, init_checkpoint)

  def run(self, input_ids, input_mask, segment_ids, masked_lm_positions=None, names=None):
    """{output name: numpy array} for int [B, T] inputs; `mlm_logits` only when positions are given."""
    names = [n for n in (names or self.outputs) if n != "mlm_logits" or masked_lm_positions is not None]
    feeds = {self.inputs["input_ids"]: input_ids, self.inputs["input_mask"]: input_mask,
             self.inputs["segment_ids"]: segment_ids}
    if masked_lm_positions is not None:
      feeds[self.positions] = masked_lm_positions
    fetched = self.session.run([self.outputs[n] for n in names], feeds)
    return dict(zip(names, fetched))

  def close(self):
    self.session.close()


def sample_inputs(config, seq_length, batch_size=3, seed=0):
  """Deterministic int32 inputs for verification: random ids, the later examples padded, two segments."""
  rng = np.random.RandomState(seed)
  input_ids = rng.randint(1, config.vocab_size, size=(batch_size, seq_length)).astype(np.int32)
  input_mask = np.ones_like(input_ids)
  segment_ids = np.zeros_like(input_ids)
  for b in range(batch_size):
    length = max(2, seq_length - b * seq_length // (batch_size + 1))
    input_ids[b, length:] = 0
    input_mask[b, length:] = 0
    segment_ids[b, length // 2:length] = min(1, config.type_vocab_size - 1)
  return {"input_ids": input_ids, "input_mask": input_mask, "segment_ids": segment_ids}


def max_abs_diff(a, b):
  return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)), initial=0.0))
