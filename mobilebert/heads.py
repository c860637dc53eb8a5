"""Pretraining heads: masked-LM (`cls/predictions/...`) and next-sentence (`cls/seq_relationship/...`);
and the fine-tuned heads that work on every token, which the export graph builds too: token tagging
(`tagging/...`) and span extraction (`cls/squad/...`).

Names and computation follow the original `run_pretraining.py` and `run_squad.py`, so their
checkpoints load.
"""

import tensorflow.compat.v1 as tf

from mobilebert import layers


def masked_lm_logits(config, sequence_output, embedding_table, positions):
  """Logits over the vocab at the masked positions.

  The output matrix is the word-embedding table, widened by `extra_output_weights` [V, H-E] when the
  embedding is narrower than the hidden size (MobileBERT's embedding factorization).

  Args:
    config: BertConfig.
    sequence_output: [B, T, H].
    embedding_table: [V, E].
    positions: [B, P] int32 masked positions.
  Returns:
    [B*P, V] float32 logits, rows ordered (example, position).
  """
  hidden = layers.gather_indexes(sequence_output, positions)  # [B*P, H]
  with tf.variable_scope("cls/predictions"):
    with tf.variable_scope("transform"):
      hidden = layers.dense(hidden, config.hidden_size,
                            layers.create_initializer(config.initializer_range),
                            activation=layers.get_activation(config.hidden_act))
      # A real LayerNorm even in no_norm students, as in the original head.
      hidden = layers.layer_norm(hidden)
    output_bias = tf.get_variable("output_bias", [config.vocab_size],
                                  initializer=tf.zeros_initializer())
    output_weights = embedding_table
    if config.embedding_size != config.hidden_size:
      extra = tf.get_variable(
          "extra_output_weights", [config.vocab_size, config.hidden_size - config.embedding_size],
          initializer=layers.create_initializer(config.initializer_range))
      output_weights = tf.concat([embedding_table, extra], axis=1)  # [V, H]
    logits = tf.matmul(hidden, tf.cast(output_weights, hidden.dtype), transpose_b=True)
    return tf.nn.bias_add(logits, tf.cast(output_bias, hidden.dtype))


def next_sentence_logits(config, pooled_output):
  """[B, 2] logits of "B follows A" (index 0) vs "B is random" (index 1) from the [B, H] pooled output.

  The weights are stored [2, H] ([out, in]), as in the original.
  """
  with tf.variable_scope("cls/seq_relationship"):
    output_weights = tf.get_variable(
        "output_weights", [2, config.hidden_size],
        initializer=layers.create_initializer(config.initializer_range))
    output_bias = tf.get_variable("output_bias", [2], initializer=tf.zeros_initializer())
    logits = tf.matmul(pooled_output, tf.cast(output_weights, pooled_output.dtype), transpose_b=True)
    return tf.nn.bias_add(logits, tf.cast(output_bias, pooled_output.dtype))


TAGGING_SCOPE = "tagging"
SPAN_SCOPE = "cls/squad"


def _per_token_logits(sequence_output, num_outputs, initializer_range):
  """[B, T, num_outputs] logits of a dense layer applied to every token, with the variables
  `output_weights` [num_outputs, H] ([out, in], like the classifier's) and `output_bias` in the
  current variable scope.

  A plain matmul over [B*T, H] (reshaped with -1) rather than an einsum: the TFLite converter maps it
  to one FULLY_CONNECTED op that int8 quantization handles, and no op is tied to the batch size (a
  SHAPE of it stayed float32 in int8 exports)."""
  _, seq_length, hidden_size = layers.get_shape_list(sequence_output, expected_rank=3)
  output_weights = tf.get_variable(
      "output_weights", [num_outputs, hidden_size],
      initializer=layers.create_initializer(initializer_range))
  output_bias = tf.get_variable("output_bias", [num_outputs], initializer=tf.zeros_initializer())
  flat = tf.reshape(sequence_output, [-1, hidden_size])
  logits = tf.matmul(flat, tf.cast(output_weights, flat.dtype), transpose_b=True)
  logits = tf.nn.bias_add(logits, tf.cast(output_bias, flat.dtype))
  return tf.reshape(logits, [-1, seq_length, num_outputs])


def token_tagging_logits(sequence_output, num_tags, initializer_range=0.02):
  """[B, T, L] logits of a tag for every token (fine-tuned token tagging, e.g. BIO named entities).

  The weights are `tagging/output_weights` [L, H] ([out, in], like the classifier's) and
  `tagging/output_bias` [L]; the export graph finds the head by these names.

  Args:
    sequence_output: [B, T, H].
    num_tags: L.
  """
  with tf.variable_scope(TAGGING_SCOPE):
    return _per_token_logits(sequence_output, num_tags, initializer_range)


def span_logits(sequence_output, initializer_range=0.02):
  """Start and end logits of every position (fine-tuned span extraction, run_cmrc2018.py).

  The weights are `cls/squad/output_weights` [2, H] ([out, in]) and `cls/squad/output_bias` [2], the
  names of Google's run_squad.py, so its checkpoints load; the export graph finds the head by them.

  Args:
    sequence_output: [B, T, H].
  Returns:
    (logits [B, T, 2], start_logits [B, T], end_logits [B, T]).
  """
  with tf.variable_scope(SPAN_SCOPE):
    logits = _per_token_logits(sequence_output, 2, initializer_range)
  by_end = tf.transpose(logits, [2, 0, 1])  # [2, B, T]
  return logits, by_end[0], by_end[1]
