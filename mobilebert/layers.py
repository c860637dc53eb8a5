"""Building blocks shared by the model and its heads: shapes, initializers, dense, norms, activations.

Variable names follow the original code (`dense/kernel`, `LayerNorm/{beta,gamma}`,
`FakeLayerNorm/{beta,gamma}`) so released checkpoints load by name. Dense kernels are stored 2-D
[in, out] on both the einsum and the matmul path.
"""

import math
import zlib

import numpy as np
import tensorflow.compat.v1 as tf

from mobilebert import quantization

LAYER_NORM_EPSILON = 1e-12


def get_shape_list(tensor, expected_rank=None, name=None):
  """Static dimensions where known, dynamic scalars elsewhere; checks the rank if asked.

  Args:
    tensor: a tf.Tensor.
    expected_rank: int or list of ints; raises ValueError if the rank differs.
    name: tensor name for the error message.
  Returns:
    list of Python ints (static) and scalar int32 tensors (dynamic).
  """
  if expected_rank is not None:
    assert_rank(tensor, expected_rank, name)
  shape = tensor.shape.as_list()
  dynamic = tf.shape(tensor) if any(d is None for d in shape) else None
  return [dynamic[i] if d is None else d for i, d in enumerate(shape)]


def reshape(tensor, shape):
  """tf.reshape to a get_shape_list-style `shape`, its one dynamic dimension (if one) given as -1.

  An exported serving graph has a dynamic batch; spelling it -1 keeps the target shape constant, so the
  TFLite model carries no Shape/StridedSlice/Pack chain per reshape (those ops are not delegated and
  cut the XNNPACK partitions into ~100 pieces on base-f2; issue 15).
  """
  dynamic = [i for i, d in enumerate(shape) if not isinstance(d, int)]
  if len(dynamic) == 1 and -1 not in shape[:dynamic[0]] + shape[dynamic[0] + 1:]:
    shape = list(shape)
    shape[dynamic[0]] = -1
  return tf.reshape(tensor, shape)


def assert_rank(tensor, expected_rank, name=None):
  """Raises ValueError at graph-build time if `tensor` does not have one of the expected ranks."""
  expected = {expected_rank} if isinstance(expected_rank, int) else set(expected_rank)
  actual = tensor.shape.ndims
  if actual not in expected:
    raise ValueError(f"tensor {name or tensor.name} has rank {actual}, expected one of "
                     f"{sorted(expected)} (shape {tensor.shape})")


def create_initializer(initializer_range=0.02):
  """Truncated normal with stddev `initializer_range`, as in BERT."""
  return tf.truncated_normal_initializer(stddev=initializer_range)


def dropout(input_tensor, dropout_prob):
  """Dropout with a drop probability (not a keep probability); a no-op for None or 0.

  The mask is a stateless function of (graph seed, global step, call site): a graph-mode stateful
  random op replays its sequence from the start when a killed run is restarted, so a resumed run
  would drop other units than an uninterrupted one. The site is the op's name scope (unique and
  stable for the same graph, one per replica under a distribution strategy).
  """
  if dropout_prob is None or dropout_prob == 0.0:
    return input_tensor
  with tf.name_scope(None, "dropout", [input_tensor]) as scope:
    graph_seed = (tf.get_default_graph().seed or 0) & 0x7FFFFFFF
    site_seed = (graph_seed << 32) | zlib.crc32(scope.encode("utf-8"))
    global_step = tf.train.get_global_step()
    # The read precedes this step's increment: the optimizer increments after applying gradients.
    step = tf.constant(0, tf.int64) if global_step is None else tf.cast(global_step, tf.int64)
    seed = tf.stack([tf.constant(site_seed, tf.int64), step])
    return tf.nn.experimental.stateless_dropout(input_tensor, rate=dropout_prob, seed=seed)


def gelu(x):
  """Gaussian error linear unit, tanh approximation (what the original and the released models use)."""
  cdf = 0.5 * (1.0 + tf.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * tf.pow(x, 3))))
  return x * cdf


# The config's `hidden_act` values: the original's get_activation, name for name.
ACTIVATIONS = {
    "gelu": gelu,
    "relu": tf.nn.relu,
    "relu6": tf.nn.relu6,  # Google's QAT student: bounded activations quantize to int8 well
    "tanh": tf.tanh,
    "linear": None,
}


def get_activation(name):
  """Maps a config's `hidden_act` to a function (None for linear)."""
  try:
    return ACTIVATIONS[name]
  except KeyError:
    raise ValueError(f"unsupported activation {name!r}; expected one of {sorted(ACTIVATIONS)}") from None


def layer_norm(input_tensor, name="LayerNorm"):
  """Layer normalization over the last axis (variables `<name>/beta`, `<name>/gamma`)."""
  with tf.variable_scope(name):
    # Statistics in float32 even under mixed precision: bfloat16 moments lose too much.
    x = tf.cast(input_tensor, tf.float32)
    beta, gamma = _norm_variables(x)
    mean, variance = tf.nn.moments(x, [-1], keepdims=True)
    inv = tf.math.rsqrt(variance + LAYER_NORM_EPSILON) * gamma
    return tf.cast(x * inv + (beta - mean * inv), input_tensor.dtype)


def no_norm(input_tensor, name="FakeLayerNorm"):
  """MobileBERT's NoNorm: an element-wise affine map, x * gamma + beta (no statistics)."""
  with tf.variable_scope(name):
    beta, gamma = _norm_variables(input_tensor)
    return input_tensor * gamma + beta


def _norm_variables(input_tensor):
  width = input_tensor.shape[-1]
  beta = tf.get_variable("beta", [width], initializer=tf.zeros_initializer())
  gamma = tf.get_variable("gamma", [width], initializer=tf.ones_initializer())
  return tf.cast(beta, input_tensor.dtype), tf.cast(gamma, input_tensor.dtype)


NORMALIZATIONS = {
    "layer_norm": layer_norm,
    "no_norm": no_norm,
}


def normalize(input_tensor, normalization_type):
  """Applies the config's `normalization_type` (LayerNorm or FakeLayerNorm)."""
  return NORMALIZATIONS[normalization_type](input_tensor)


def dense(input_tensor, output_size, initializer, activation=None, use_einsum=True, name="dense",
          symmetric_quantization=False):
  """A dense layer over the last axis of a [..., in] tensor; kernel stored [in, out].

  The einsum path keeps the 3-D shape (what TPUs like); the matmul path flattens to 2-D. Both create
  the same variables and give the same numbers within float rounding. symmetric_quantization: the
  output's fake-quantization range is symmetric in the integer-only export
  (quantization.activations).
  """
  input_width = input_tensor.shape[-1]
  if input_width is None:
    raise ValueError(f"dense {name}: last dimension of {input_tensor.name} must be static")
  with tf.variable_scope(name):
    kernel = tf.get_variable("kernel", [input_width, output_size], initializer=initializer)
    bias = tf.get_variable("bias", [output_size], initializer=tf.zeros_initializer())
    kernel = tf.cast(quantization.weights(kernel), input_tensor.dtype)
    bias = tf.cast(bias, input_tensor.dtype)
    rank = input_tensor.shape.ndims
    if rank == 2:
      output = tf.matmul(input_tensor, kernel)
    elif use_einsum and rank == 3:
      output = tf.einsum("BTI,IO->BTO", input_tensor, kernel)
    else:
      shape = get_shape_list(input_tensor)
      flat = tf.reshape(input_tensor, [-1, input_width])
      output = reshape(tf.matmul(flat, kernel), shape[:-1] + [output_size])
    output = tf.nn.bias_add(output, bias)
    if activation is not None:
      output = activation(output)
    # identity unless fake-quantized training or export
    return quantization.activations(output, symmetric=symmetric_quantization)


def gather_indexes(sequence_tensor, positions):
  """Gathers the vectors at `positions` of each example.

  Args:
    sequence_tensor: [B, T, H].
    positions: [B, P] int32 positions in [0, T).
  Returns:
    [B*P, H], rows ordered (example, position).
  """
  batch_size, seq_length, width = get_shape_list(sequence_tensor, expected_rank=3)
  flat_offsets = tf.reshape(tf.range(0, batch_size, dtype=tf.int32) * seq_length, [-1, 1])
  flat_positions = tf.reshape(positions + flat_offsets, [-1])
  flat_sequence = tf.reshape(sequence_tensor, [batch_size * seq_length, width])
  return tf.gather(flat_sequence, flat_positions)


def embedding_lookup(table, ids, use_one_hot_embeddings=False):
  """Rows of `table` [V, E] for `ids` [B, T]; one-hot matmul on TPU, where gathers are slow."""
  if use_one_hot_embeddings:
    vocab_size = table.shape[0]
    flat_ids = tf.reshape(ids, [-1])
    one_hot = tf.one_hot(flat_ids, depth=vocab_size, dtype=table.dtype)
    flat = tf.matmul(one_hot, table)
    return reshape(flat, get_shape_list(ids) + [table.shape[-1]])
  return tf.nn.embedding_lookup(table, ids)


def count_params(variables):
  """Total number of scalars in a list of variables."""
  return int(sum(np.prod(v.shape.as_list()) for v in variables))
