# coding=utf-8
"""The span head: variable names and shapes, logits and the averaged start/end loss."""

import numpy as np
import tensorflow.compat.v1 as tf

from finetune.span import head as span_head


def _build(batch=2, seq=5, hidden=4, with_positions=True):
  graph = tf.Graph()
  with graph.as_default():
    tf.set_random_seed(1)
    sequence = tf.placeholder(tf.float32, [batch, seq, hidden])
    starts = tf.placeholder(tf.int32, [batch]) if with_positions else None
    ends = tf.placeholder(tf.int32, [batch]) if with_positions else None
    outputs = span_head.span_head(sequence, starts, ends, initializer_range=0.5)
  return graph, sequence, starts, ends, outputs


def test_head_variables_use_googles_squad_names():
  graph, *_ = _build(hidden=4)
  with graph.as_default():
    variables = {v.name: v.shape.as_list() for v in tf.global_variables()}
  assert variables == {"cls/squad/output_weights:0": [2, 4], "cls/squad/output_bias:0": [2]}


def test_logits_and_loss_match_numpy():
  graph, sequence, starts, ends, outputs = _build()
  rng = np.random.RandomState(0)
  values = rng.randn(2, 5, 4).astype(np.float32)
  feed = {sequence: values, starts: [1, 4], ends: [3, 4]}
  bias_value = np.array([0.3, -0.2], np.float32)  # the initializer gives zeros: use distinct values
  with tf.Session(graph=graph) as sess:
    sess.run(tf.global_variables_initializer())
    by_name = {v.op.name: v for v in graph.get_collection(tf.GraphKeys.GLOBAL_VARIABLES)}
    sess.run(tf.assign(by_name["cls/squad/output_bias"], bias_value))
    weights = sess.run(by_name["cls/squad/output_weights"])
    start_logits, end_logits, start_loss, end_loss, loss = sess.run(
        [outputs.start_logits, outputs.end_logits, outputs.start_loss, outputs.end_loss,
         outputs.loss], feed)
  expected = values @ weights.T + bias_value  # [B, T, 2]
  np.testing.assert_allclose(start_logits, expected[..., 0], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(end_logits, expected[..., 1], rtol=1e-5, atol=1e-6)

  def cross_entropy(logits, positions):
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return -np.mean([log_probs[b, p] for b, p in enumerate(positions)])

  assert np.isclose(start_loss, cross_entropy(expected[..., 0], [1, 4]), rtol=1e-5)
  assert np.isclose(end_loss, cross_entropy(expected[..., 1], [3, 4]), rtol=1e-5)
  assert np.isclose(loss, (start_loss + end_loss) / 2, rtol=1e-6)


def test_no_positions_no_loss():
  _, _, _, _, outputs = _build(with_positions=False)
  assert outputs.loss is None and outputs.start_loss is None
  assert outputs.start_logits.shape.as_list() == [2, 5]
