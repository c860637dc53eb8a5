"""One model for the BERT teacher, the IB-BERT teacher and every MobileBERT student.

The graph, its variable names and its numbers match the original MobileBERT TensorFlow code (see
tests/fixtures/reference). Dimension letters used in comments and docstrings:
  B batch, T sequence (F = "from" positions, the same length), N attention heads, D head size,
  H hidden size, E embedding size, I intra-bottleneck size, W inner width (I with a bottleneck, else H),
  V vocab size.

Dropout (training only) sits where the original puts it: after the embeddings' normalization, on the
attention probabilities, and then per layer either after `attention/output` and `output` (no
bottleneck) or once after `output/bottleneck` (bottleneck); never inside the extra FFNs.
"""

import copy

import tensorflow.compat.v1 as tf

from mobilebert import layers
from mobilebert import quantization
from mobilebert.layers import (  # noqa: F401  (re-exported for task code)
    create_initializer, dense, dropout, gather_indexes, get_shape_list, normalize)


class BertModel:
  """Builds the encoder under `bert/` (or `scope`) and exposes its tensors.

  Example:
    model = BertModel(config, is_training=False, input_ids=ids, input_mask=mask, token_type_ids=seg)
    sequence = model.get_sequence_output()  # [B, T, H]
  """

  def __init__(self, config, is_training, input_ids, input_mask=None, token_type_ids=None,
               use_one_hot_embeddings=False, scope=None, use_einsum=True, compute_type=tf.float32):
    """
    Args:
      config: BertConfig.
      is_training: False turns dropout off.
      input_ids: int32 [B, T].
      input_mask: int32 [B, T], 1 for real tokens (default all ones).
      token_type_ids: int32 [B, T] segment ids (default all zeros).
      use_one_hot_embeddings: embedding look-ups as one-hot matmuls (faster on TPU).
      scope: variable scope; default "bert".
      use_einsum: einsum (3-D) or reshape-and-matmul (2-D) dense layers; same variables.
      compute_type: dtype of the encoder's activations (tf.bfloat16 / tf.float16 for mixed precision);
        variables stay float32 and are cast where used, layer norms compute in float32, and the
        outputs exposed by the accessors are cast back to float32.
    """
    config = copy.deepcopy(config)
    if not is_training:
      config.hidden_dropout_prob = 0.0
      config.attention_probs_dropout_prob = 0.0
    self.config = config
    batch_size, seq_length = get_shape_list(input_ids, expected_rank=2, name="input_ids")
    if isinstance(seq_length, int) and seq_length > config.max_position_embeddings:
      raise ValueError(f"sequence length {seq_length} exceeds max_position_embeddings "
                       f"{config.max_position_embeddings} of the model config")
    if input_mask is None:
      input_mask = tf.ones([batch_size, seq_length], dtype=tf.int32)
    if token_type_ids is None:
      token_type_ids = tf.zeros([batch_size, seq_length], dtype=tf.int32)
    self.stages = {}  # name -> tensor of layer 0 / each stage, for shape checks and debugging

    with tf.variable_scope(scope, default_name="bert"):
      with tf.variable_scope("embeddings"):
        self.embedding_output = self._embeddings(input_ids, token_type_ids, use_one_hot_embeddings,
                                                 use_einsum)
        embedding_output = tf.cast(self.embedding_output, compute_type)
      with tf.variable_scope("encoder"):
        # [B, F, T]: every query position may attend to the real key positions. Broadcast from
        # [B, 1, T] x [1, F, 1], so no tensor's shape depends on the batch size at run time (TFLite's
        # XNNPACK delegate refuses graphs with such dynamic-sized tensors).
        attention_mask = tf.cast(tf.expand_dims(input_mask, 1), tf.float32) * tf.ones(
            [1, seq_length, 1], tf.float32)
        self.stages["encoder/attention_mask_3d"] = attention_mask
        all_layers, all_maps = self._encoder(embedding_output, attention_mask, use_einsum)
        self.all_encoder_layers = [tf.cast(t, tf.float32) for t in all_layers]
        self.all_attention_maps = [tf.cast(t, tf.float32) for t in all_maps]
      self.sequence_output = self.all_encoder_layers[-1]
      self.stages["sequence_output"] = self.sequence_output
      with tf.variable_scope("pooler"):
        first_token = tf.squeeze(self.sequence_output[:, 0:1, :], axis=1)
        if config.classifier_activation:
          self.pooled_output = tf.cast(dense(
              tf.cast(first_token, compute_type), config.hidden_size,
              create_initializer(config.initializer_range), activation=tf.tanh), tf.float32)
        else:
          self.pooled_output = first_token
      self.stages["pooled_output"] = self.pooled_output

  # -- accessors -------------------------------------------------------------------------------------
  def get_sequence_output(self):
    """[B, T, H] output of the last layer."""
    return self.sequence_output

  def get_pooled_output(self):
    """[B, H]: tanh(dense(first token)) with a pooler (classifier_activation), else the first token."""
    return self.pooled_output

  def get_all_encoder_layers(self):
    """L+1 tensors [B, T, H]; index 0 is the embedding output, index L the sequence output."""
    return self.all_encoder_layers

  def get_all_attention_maps(self):
    """L tensors [B, N, F, T]: pre-softmax attention scores with the mask adder (-10000) added."""
    return self.all_attention_maps

  def get_embedding_output(self):
    """[B, T, H] embeddings after transformation, token type and position, and normalization."""
    return self.embedding_output

  def get_word_embedding_output(self):
    """[B, T, E] raw word embeddings."""
    return self.word_embedding_output

  def get_embedding_table(self):
    """[V, E] word embedding table (tied with the MLM output)."""
    return self.embedding_table

  # -- embeddings ------------------------------------------------------------------------------------
  def _embeddings(self, input_ids, token_type_ids, use_one_hot_embeddings, use_einsum):
    config = self.config
    initializer = create_initializer(config.initializer_range)
    self.embedding_table = tf.get_variable(
        "word_embeddings", [config.vocab_size, config.embedding_size], initializer=initializer)
    word = layers.embedding_lookup(self.embedding_table, input_ids, use_one_hot_embeddings)
    self.word_embedding_output = word
    self.stages["embeddings/word_embedding_output"] = word
    output = word
    if config.trigram_input:
      output = trigram_embedding(word)
      self.stages["embeddings/trigram_concat"] = output
    if config.trigram_input or config.embedding_size != config.hidden_size:
      output = dense(output, config.hidden_size, initializer, use_einsum=use_einsum,
                     name="embedding_transformation")
      self.stages["embeddings/embedding_transformation"] = output
    token_type_table = tf.get_variable(
        "token_type_embeddings", [config.type_vocab_size, config.hidden_size],
        initializer=initializer)
    # One-hot: the token-type vocab is tiny and a matmul keeps TPU shapes static. A gather in the
    # int8 exports, whose int8 EMBEDDING_LOOKUP (the converted one-hot matmul) misreads the
    # table (quantization.py).
    output += layers.embedding_lookup(token_type_table, token_type_ids,
                                      use_one_hot_embeddings=not quantization.int8_export_graph())
    position_table = tf.get_variable(
        "position_embeddings", [config.max_position_embeddings, config.hidden_size],
        initializer=initializer)
    seq_length = get_shape_list(input_ids)[1]
    output += tf.expand_dims(tf.slice(position_table, [0, 0], [seq_length, -1]), 0)
    output = normalize(output, config.normalization_type)
    output = dropout(output, config.hidden_dropout_prob)
    self.stages["embeddings/output(after norm)"] = output
    return output

  # -- encoder ---------------------------------------------------------------------------------------
  def _encoder(self, embedding_output, attention_mask, use_einsum):
    all_layers = [embedding_output]
    all_maps = []
    layer_input = embedding_output
    for index in range(self.config.num_hidden_layers):
      with tf.variable_scope(f"layer_{index}"):
        stages = self.stages if index == 0 else {}
        layer_output, attention_map = transformer_layer(
            self.config, layer_input, attention_mask, use_einsum, stages)
      all_layers.append(layer_output)
      all_maps.append(attention_map)
      layer_input = layer_output
    self.stages["all_encoder_layers[k] (each)"] = all_layers[-1]
    return all_layers, all_maps


def trigram_embedding(word_embeddings):
  """Concatenates the next, current and previous token's embedding: [B, T, E] -> [B, T, 3E].

  Zeros stand in past either end. Padding is not zeroed: the last real token sees the embedding of
  the first padding id, as in the original.
  """
  next_token = tf.pad(word_embeddings[:, 1:], [[0, 0], [0, 1], [0, 0]])
  previous_token = tf.pad(word_embeddings[:, :-1], [[0, 0], [1, 0], [0, 0]])
  return tf.concat([next_token, word_embeddings, previous_token], axis=2)


def transformer_layer(config, layer_input, attention_mask, use_einsum=True, stages=None):
  """One encoder layer with MobileBERT's optional bottlenecks and stacked FFNs.

  Args:
    config: BertConfig.
    layer_input: [B, T, H].
    attention_mask: [B, F, T] float, 1 for key positions that may be attended.
    use_einsum: dense and attention through einsum.
    stages: dict to record intermediate tensors in (layer 0), or None.
  Returns:
    (layer_output [B, T, H], attention_map [B, N, F, T] pre-softmax scores with mask).
  """
  stages = {} if stages is None else stages
  initializer = create_initializer(config.initializer_range)
  width = config.inner_size
  query_key_input = value_input = residual = layer_input
  if config.use_bottleneck:
    with tf.variable_scope("bottleneck"):
      with tf.variable_scope("input"):
        bottlenecked = normalize(dense(layer_input, config.intra_bottleneck_size, initializer,
                                       use_einsum=use_einsum), config.normalization_type)
        stages["layer_i/bottleneck/input (layer_input)"] = bottlenecked
      residual = bottlenecked
      if config.use_bottleneck_attention:
        query_key_input = value_input = bottlenecked
      elif config.key_query_shared_bottleneck:
        with tf.variable_scope("attention"):
          query_key_input = normalize(dense(layer_input, config.intra_bottleneck_size, initializer,
                                            use_einsum=use_einsum), config.normalization_type)
          stages["layer_i/bottleneck/attention (shared q,k input)"] = query_key_input

  with tf.variable_scope("attention"):
    with tf.variable_scope("self"):
      context, attention_map = attention_layer(
          config, query_key_input, value_input, attention_mask, use_einsum, stages)
    with tf.variable_scope("output"):
      attention_output = dense(context, width, initializer, use_einsum=use_einsum)
      if not config.use_bottleneck:
        # With bottlenecks the original drops out once per layer, after the output bottleneck.
        attention_output = dropout(attention_output, config.hidden_dropout_prob)
      attention_output = normalize(attention_output + residual, config.normalization_type)
  stages["layer_i/attention/output (after norm)"] = attention_output

  hidden = attention_output
  # The original has no dropout in the extra FFNs (ffn_layer_<j>), with or without bottlenecks.
  for index in range(config.num_feedforward_networks - 1):
    with tf.variable_scope(f"ffn_layer_{index}"):
      hidden = feed_forward(config, hidden, initializer, use_einsum, stages, f"ffn_layer_{index}/",
                            dropout_prob=0.0)
  if config.use_bottleneck:
    layer_output = feed_forward(config, hidden, initializer, use_einsum, stages, "",
                                dropout_prob=0.0, output_bottleneck_to=layer_input)
  else:
    layer_output = feed_forward(config, hidden, initializer, use_einsum, stages, "",
                                dropout_prob=config.hidden_dropout_prob)
  return layer_output, attention_map


def feed_forward(config, ffn_input, initializer, use_einsum, stages, stage_prefix, dropout_prob,
                 output_bottleneck_to=None):
  """intermediate (act) -> output dense -> Norm(+input), then optionally the output bottleneck.

  Args:
    ffn_input: [B, T, W].
    dropout_prob: dropout after the `output` dense (0 for none).
    output_bottleneck_to: the layer input [B, T, H]; when given, the result is projected back to H
      under `output/bottleneck`, dropped out with the config's hidden_dropout_prob and normalized
      with it as the residual.
  Returns:
    [B, T, W], or [B, T, H] with the output bottleneck.
  """
  width = ffn_input.shape[-1]
  with tf.variable_scope("intermediate"):
    intermediate = dense(ffn_input, config.intermediate_size, initializer,
                         activation=layers.get_activation(config.hidden_act), use_einsum=use_einsum)
  if not stage_prefix:
    stages["layer_i/intermediate (after act)"] = intermediate
  with tf.variable_scope("output"):
    output = dense(intermediate, width, initializer, use_einsum=use_einsum)
    output = dropout(output, dropout_prob)
    output = normalize(output + ffn_input, config.normalization_type)
    if stage_prefix:
      stages[f"layer_i/{stage_prefix}output (after norm)"] = output
    else:
      stages["layer_i/output (after norm, before output bottleneck)"] = output
    if output_bottleneck_to is not None:
      with tf.variable_scope("bottleneck"):
        output = dense(output, config.hidden_size, initializer, use_einsum=use_einsum)
        output = dropout(output, config.hidden_dropout_prob)
        output = normalize(output + output_bottleneck_to, config.normalization_type)
      stages["layer_i/output/bottleneck (layer output)"] = output
  return output


def attention_layer(config, query_key_input, value_input, attention_mask, use_einsum=True,
                    stages=None):
  """Multi-head scaled dot-product self-attention.

  Args:
    query_key_input: [B, T, Wq] input of the query and key projections.
    value_input: [B, T, Wv] input of the value projection.
    attention_mask: [B, F, T] float.
  Returns:
    (context [B, F, N*D], scores [B, N, F, T] pre-softmax with the mask adder).
  """
  stages = {} if stages is None else stages
  num_heads = config.num_attention_heads
  head_size = config.attention_head_size
  initializer = create_initializer(config.initializer_range)
  batch_size, seq_length = get_shape_list(query_key_input, expected_rank=3)[:2]

  def project(tensor, name, symmetric_quantization=False):
    projected = dense(tensor, num_heads * head_size, initializer, use_einsum=use_einsum, name=name,
                      symmetric_quantization=symmetric_quantization)
    return layers.reshape(projected, [batch_size, seq_length, num_heads, head_size])  # [B, T, N, D]

  query = project(query_key_input, "query")
  # Keys and values are the right-hand operands of the attention matmuls: with zero point 0 in the
  # integer-only model, XNNPACK runs those matmuls (quantization.py).
  key = project(query_key_input, "key", symmetric_quantization=True)
  value = project(value_input, "value", symmetric_quantization=True)
  if use_einsum:
    scores = tf.einsum("BFND,BTND->BNFT", query, key)
  else:
    scores = tf.matmul(tf.transpose(query, [0, 2, 1, 3]), tf.transpose(key, [0, 2, 1, 3]),
                       transpose_b=True)
  scores = tf.multiply(scores, 1.0 / float(head_size) ** 0.5)
  # Only key positions are masked; -10000 makes their softmax weight vanish.
  key_mask = tf.expand_dims(tf.cast(attention_mask, scores.dtype), 1)  # [B, 1, F, T]
  scores = quantization.mask_scores(scores, key_mask)
  probs = dropout(tf.nn.softmax(scores), config.attention_probs_dropout_prob)
  if use_einsum:
    context = tf.einsum("BNFT,BTND->BFND", probs, value)
  else:
    context = tf.transpose(tf.matmul(probs, tf.transpose(value, [0, 2, 1, 3])), [0, 2, 1, 3])
  stages.update({
      "layer_i/attention/self/query [B,T,N,H]": query,
      "layer_i/attention/self/key [B,T,N,H]": key,
      "layer_i/attention/self/value [B,T,N,H]": value,
      "layer_i/attention/self/context [B,T,N,H]": context,
      "layer_i/attention_map (pre-softmax scores + mask adder) [B,N,F,T]": scores,
      "layer_i/attention_probs [B,N,F,T]": probs,
  })
  return layers.reshape(context, [batch_size, seq_length, num_heads * head_size]), scores
