"""Quantization-aware training: fake-quantized weights and activations of every dense layer.

The release's `--use_quantized_training` called tf.contrib.quantize, which TF 2 no longer has. This
inserts the same kind of nodes at graph-build time instead of rewriting the graph afterwards:

  * weights: FakeQuantWithMinMaxVars, 8 bits, narrow range, per tensor, symmetric: [-m, m] with m the
    weights' largest magnitude at every training step (contrib's "last value" took [min, max]), kept in
    variables so that eval and export use the values of the checkpoint. Symmetric because TFLite's
    int8 kernels take weights with zero point 0: with [min, max] ranges the converter wrote weights
    with other zero points, which XNNPACK refuses (on a 4-layer student it left 38 of 42
    FULLY_CONNECTED ops to the reference kernels: 90 ms against 2.6 ms at batch 1, bench/README.md).
  * activations (each dense layer's output, after bias and activation): FakeQuantWithMinMaxVars,
    8 bits; min/max are exponential moving averages of the batch's min/max, widened to include 0, as
    contrib's. Two differences, both so that a short fine-tuning run learns: the averages start at the
    first batch's values instead of at [-6, 6], and decay 0.9 instead of contrib's 0.999. Measured on
    the tiny synthetic classifier (tests/export_helpers.py, relu6, 200 steps): decay 0.999 keeps the
    first batch's ranges, clips the growing activations (zero gradient outside the range) and stays at
    chance (0.50 dev accuracy); 0.99 reaches 0.69; 0.9 reaches 1.00 (float32 training: 0.997).

  * keys and values (the key and value projections' outputs): trained as the other activations;
    in the integer-only export graph quantized on the symmetric range [-b, b] (b the larger
    magnitude of the learned min/max), so that the integer-only model holds them with zero point 0.
    XNNPACK's int8 BATCH_MATMUL takes its right-hand operand (keys in the scores, values in the
    context) only with zero point 0: with the learned [min, max] ranges LiteRT 2.3 left all 8
    attention matmuls of a 4-layer base-f2 student to the builtin kernels, with symmetric ranges
    XNNPACK took all 8 (batch 1: 13.9 -> 6.8 ms). Symmetric ranges in training as well cost a QAT
    run 1.9 dev points (THUCNews, one seed); at export only, 0.1 test points (3 seeds).
    The post-training export of a float checkpoint gets the same: its keys and values are
    fake-quantized on [-b, b], b their largest magnitude on the calibration examples (Int8Export,
    export/tflite.py).
  * attention scores (scaled, before the mask): the same activation node, with the mask applied
    without the -10000 adder (mask_scores). Measured on the tiny classifier, seeds 0-8: without it
    the int8 model agreed with the fake-quant graph on 0.943-1.0 of examples (2 seeds below 0.95);
    with it on 0.99-1.0.

Where the mask is applied without the adder (under fake quantization and in the graph of an
int8 export, int8_export), the keys to mask are found by comparing the 0/1 mask
itself, not the float adder (1 - mask) * -10000 derived from it: converting the adder, TFLite gave
(1 - mask) the scale of the -10000 product (39.2), which rounds 1 to 0, so the integer-only model
attended to padding (its masked scores differed from the float graph's by 95% of their magnitude).
The graph of an integer-only export (the post-training full int8 export of a float checkpoint and the
export of a QAT checkpoint) also looks the token-type embedding up by a gather instead of the
original's one-hot matmul (modeling.py; same values, same variable): the converter turns the one-hot
matmul into EMBEDDING_LOOKUP and quantizes its output with the calibrated range of the rows looked up
(row 0 alone on a single-sentence task: scale 0.00102, zero point -7 against the table's 0.00118 and
2 on a small student) while the int8 kernel copies the table's int8 rows as they are: the token-type
vector was off by 20% of its magnitude. GATHER ties the table's scale and zero point to its output's
(a row that calibration never looked up may clip; a single-sentence task never looks it up).

The int8_float_softmax export (export/tflite.py) builds the same graph but masks with the original's
adder and keeps the adder, the masked scores and the softmax in float32: the scores are dequantized
after their int8 matmul and the probabilities quantized again before theirs. TFLite has no int8
softmax on XNNPACK; the builtin int8 kernel runs on one thread and took about half of an
integer-only 12-layer base-f2's batch-1 time.

Variables (non-trainable, saved in the checkpoint): `<dense scope>/weights_quant/{min,max}`,
`<dense scope>/act_quant/{min,max,initialized}` and `<layer>/attention/self/scores/act_quant/...`. The
TFLite converter reads the learned ranges from the FakeQuant nodes of the frozen graph
(mobilebert/export/tflite.py, --activation_quantization).

  with quantization.fake_quantization(is_training):   # around the model's construction
    model = modeling.BertModel(...)

Outside that block `weights` and `activations` return their input unchanged and `mask_scores` adds the
original's mask, so the float graph has no extra node.
"""

import contextlib

import tensorflow.compat.v1 as tf

NUM_BITS = 8
EMA_DECAY = 0.9
# A variable name part that only fake-quantized checkpoints contain (graph.detect_heads looks for it).
ACTIVATION_SCOPE = "act_quant"
WEIGHT_SCOPE = "weights_quant"
# A symmetric range is [-b, b * 127/128]: 8-bit steps of b/128 with 0 on the step 128 exactly. On
# [-b, b] the zero point falls on 127.5, which rounds to 128 or (float error) 127: int8 zero point -1.
SYMMETRIC_MAX = 127.0 / 128.0

_active = []  # stack of is_training flags of the enclosing fake_quantization blocks
_int8_export = []  # stack of the enclosing int8_export blocks' Int8Export


@contextlib.contextmanager
def fake_quantization(is_training, enabled=True):
  """Dense layers built inside get fake-quant nodes (training: ranges are updated)."""
  if not enabled:
    yield
    return
  _active.append(bool(is_training))
  try:
    yield
  finally:
    _active.pop()


def _range_variables(initial_min, initial_max):
  def variable(name, value):
    return tf.get_variable(name, initializer=tf.constant(value, tf.float32), trainable=False)
  return variable("min", initial_min), variable("max", initial_max)


def weights(kernel):
  """Fake-quantized float32 `kernel` (any shape) inside a fake_quantization block, else `kernel`."""
  if not _active:
    return kernel
  with tf.variable_scope(WEIGHT_SCOPE):
    min_var, max_var = _range_variables(-1.0, 1.0)
    low, high = min_var, max_var
    if _active[-1]:
      bound = tf.reduce_max(tf.abs(kernel))
      low, high = tf.assign(min_var, -bound), tf.assign(max_var, bound)
    return tf.quantization.fake_quant_with_min_max_vars(kernel, low, high, num_bits=NUM_BITS,
                                                        narrow_range=True)


def activations(tensor, symmetric=False):
  """Fake-quantized float32 `tensor` [..., W] inside a fake_quantization block, else `tensor`.

  symmetric: in the graph of an integer-only export, quantized on [-b, b] (int8 zero point 0;
  SYMMETRIC_MAX), b the larger magnitude of the learned range; training keeps [min, max].
  """
  if not _active:
    return _export_range(tensor) if symmetric and _int8_export else tensor
  with tf.variable_scope(ACTIVATION_SCOPE):
    min_var, max_var = _range_variables(-6.0, 6.0)
    # float32, not bool: checkpoints are read back as float32 (checkpoint.read_checkpoint_float32).
    initialized = tf.get_variable("initialized", initializer=0.0, trainable=False)
    low, high = min_var, max_var
    if _active[-1]:
      batch_min = tf.minimum(tf.reduce_min(tensor), 0.0)
      batch_max = tf.maximum(tf.reduce_max(tensor), 0.0)

      def average(variable, batch_value):
        ema = EMA_DECAY * variable + (1.0 - EMA_DECAY) * batch_value
        return tf.assign(variable, tf.where(initialized > 0.5, ema, batch_value))

      low, high = average(min_var, batch_min), average(max_var, batch_max)
      with tf.control_dependencies([low, high]):
        low, high = tf.identity(low), tf.identity(high)
        mark = tf.assign(initialized, 1.0)
      with tf.control_dependencies([mark]):
        low, high = tf.identity(low), tf.identity(high)
    if symmetric and _int8_export:
      bound = tf.maximum(-low, high)
      low, high = -bound, bound * SYMMETRIC_MAX
    return tf.quantization.fake_quant_with_min_max_vars(tensor, low, high, num_bits=NUM_BITS)


def mask_scores(scores, key_mask):
  """Attention scores [B, N, F, T] with the keys where `key_mask` [B, 1, F, T] (float, 1 for keys
  that may be attended) is 0 masked.

  Float graph: the original's `scores + (1 - key_mask) * -10000`. Inside a fake_quantization block
  the -10000 would set the integer-only model's softmax input range (scale ~39: every real score
  lands in one int8 bucket, attention becomes uniform); instead the scores are fake-quantized with a
  learned range and masked keys sit 10 below the batch's lowest score (weight under e^-10 of any
  unmasked key's). The keys to mask are read from the 0/1 mask, which int8 holds exactly.

  In the graph of an int8 export with a float softmax the original's adder is back, and the ops from
  the scaling of the scores (the op that produced `scores`) to the masked scores are named for the
  converter to keep in float32 (Int8Export.float_nodes): the scores leave int8 at their matmul's
  output. With the scaling in int8 the converter gave its output the range of the masked scores,
  -10000 included (scale 39: every score rounded to 0); a QAT checkpoint's learned range of the
  scaled scores is not used there.
  """
  export = _int8_export[-1] if _int8_export else None
  if export is not None and export.float_softmax:
    inverse = tf.subtract(1.0, key_mask, name="mask_inverse")
    adder = tf.multiply(inverse, -10000.0, name="mask_adder")
    masked = tf.add(scores, adder, name="masked_scores")
    export.float_nodes.extend(t.op.name for t in (scores, inverse, adder, masked))
    return masked
  if _active:
    with tf.variable_scope("scores"):
      scores = activations(scores)
  elif export is None:
    return scores + (1.0 - key_mask) * -10000.0
  return tf.where_v2(key_mask < 0.5, tf.reduce_min(scores) - 10.0, scores)


class Int8Export:
  """What the graph of an int8 export needs and finds.

  bounds: {scope: b} of a float checkpoint's symmetric ranges (keys and values), or None: then
    activations(symmetric=True) collects those tensors in `tensors` {scope: tensor}, to be measured
    on the calibration data.
  float_softmax: the attention's mask and softmax stay float32 (the int8_float_softmax export);
    `float_nodes` lists the mask's op names the converter must keep in float.
  """

  def __init__(self, bounds=None, float_softmax=False):
    self.bounds = bounds
    self.float_softmax = float_softmax
    self.tensors = {}
    self.float_nodes = []


def _export_range(tensor):
  export = _int8_export[-1]
  scope = tf.get_variable_scope().name
  if export.bounds is None:
    export.tensors[scope] = tensor
    return tensor
  bound = max(float(export.bounds[scope]), 1e-6)  # a zero range has no int8 scale
  return tf.quantization.fake_quant_with_min_max_vars(
      tensor, tf.constant(-bound), tf.constant(bound * SYMMETRIC_MAX), num_bits=NUM_BITS)


@contextlib.contextmanager
def int8_export(bounds=None, float_softmax=False):
  """The graph built inside is converted to an int8 TFLite model (full_int8, integer-only, or
  int8_float_softmax): mask_scores masks as under fake quantization (for a float checkpoint, whose
  calibration would otherwise take the softmax input's range from the -10000) or, with
  `float_softmax`, with the original's adder in float; int8_export_graph() is true (the token-type
  embedding is a gather) and, outside fake quantization, the symmetric activations (keys and values)
  are collected, or with `bounds` fake-quantized on them. Yields the Int8Export."""
  export = Int8Export(bounds, float_softmax)
  _int8_export.append(export)
  try:
    yield export
  finally:
    _int8_export.pop()


def int8_export_graph():
  """True inside an int8_export block."""
  return bool(_int8_export)


def fake_quant_nodes(graph):
  """Names of the FakeQuant nodes of `graph` (for tests and logs)."""
  return [op.name for op in graph.get_operations() if op.type.startswith("FakeQuantWithMinMax")]
