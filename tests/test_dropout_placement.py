"""Training-mode dropout sits where the original MobileBERT / BERT code puts it, and only there.

The original (google-research mobilebert/modeling.py, copied by the Chinese release) drops out:
  - the embeddings after their normalization (hidden_dropout_prob);
  - the attention probabilities (attention_probs_dropout_prob);
  - without bottlenecks, after `attention/output/dense` and after `output/dense` (hidden_dropout_prob);
  - with bottlenecks, once per layer, after `output/bottleneck/dense` (hidden_dropout_prob);
  - never inside the extra FFNs `ffn_layer_<j>`.
Fine-tuning heads: the classifier drops out the pooled output (0.1) under `loss/`; the span head none.

Sites are recorded by wrapping the dropout function (its calling name scope and rate), not by the ops
it emits, so a different dropout implementation (e.g. stateless, seeded masks) keeps this test valid.
"""

import pytest
import tensorflow.compat.v1 as tf

from finetune.classification import head as classifier_head
from finetune.core import model as model_lib
from finetune.span import head as span_head
from mobilebert import layers, modeling
from mobilebert.config import BertConfig
from conftest import CONFIG_DIR, REFERENCE

HIDDEN, PROBS = 0.2, 0.1  # different rates, so each site's rate says which config field it used


@pytest.fixture
def sites(monkeypatch):
  """A list that collects (name scope, rate) of every dropout with a non-zero rate built from now."""
  recorded = []
  original = layers.dropout

  def recording_dropout(input_tensor, dropout_prob, *args, **kwargs):
    if dropout_prob:
      recorded.append((tf.get_default_graph().get_name_scope(), dropout_prob))
    return original(input_tensor, dropout_prob, *args, **kwargs)

  for module in (layers, modeling):
    monkeypatch.setattr(module, "dropout", recording_dropout)
  return recorded


def _config(path, **changes):
  return BertConfig.from_json_file(str(path)).copy(
      hidden_dropout_prob=HIDDEN, attention_probs_dropout_prob=PROBS, **changes)


def _expected(config, prefix="bert/"):
  """The original's dropout sites for `config`, written from its code, not from ours."""
  expected = [(prefix + "embeddings", HIDDEN)]
  for i in range(config.num_hidden_layers):
    layer = f"{prefix}encoder/layer_{i}/"
    expected.append((layer + "attention/self", PROBS))
    if config.use_bottleneck:
      expected.append((layer + "output/bottleneck", HIDDEN))
    else:
      expected += [(layer + "attention/output", HIDDEN), (layer + "output", HIDDEN)]
  return expected


CONFIGS = {
    # IB-BERT teachers: one hidden dropout per layer, not three.
    "ibbert_tiny": REFERENCE / "golden" / "tiny_teacher_ibbert.json",
    "ibbert_uncased_L-24_H-1024_B-512_A-4": CONFIG_DIR / "uncased_L-24_H-1024_B-512_A-4.json",
    # Students (released with hidden_dropout_prob 0; non-zero here so misplaced sites show).
    "student_f4_shared_qk": REFERENCE / "golden" / "tiny_student_f4.json",
    "student_f2_bottleneck_attention": CONFIG_DIR / "tiny_student_zh.json",
    # BERT teachers: after the attention output and the FFN output.
    "bert": CONFIG_DIR / "tiny_bert_zh.json",
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_training_graph_drops_out_where_the_original_does(sites, name):
  config = _config(CONFIGS[name])
  with tf.Graph().as_default():
    modeling.BertModel(config, True, tf.zeros([2, 8], tf.int32))
  assert sites == _expected(config)
  per_layer = 2 if config.use_bottleneck else 3
  assert len(sites) == 1 + per_layer * config.num_hidden_layers


def test_extra_ffns_without_bottleneck_have_no_dropout(sites):
  config = _config(CONFIG_DIR / "tiny_bert_zh.json", num_feedforward_networks=3)
  with tf.Graph().as_default():
    modeling.BertModel(config, True, tf.zeros([2, 8], tf.int32))
  assert sites == _expected(config)
  assert not [scope for scope, _ in sites if "ffn_layer_" in scope]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_evaluation_graph_has_no_dropout(sites, name):
  with tf.Graph().as_default():
    modeling.BertModel(_config(CONFIGS[name]), False, tf.zeros([2, 8], tf.int32))
  assert sites == []


def _features(batch=2, seq=8, **labels):
  zeros = tf.zeros([batch, seq], tf.int32)
  return dict(input_ids=zeros, input_mask=zeros, segment_ids=zeros, **labels)


def test_classifier_drops_out_the_pooled_output_in_training_only(sites):
  config = _config(REFERENCE / "golden" / "tiny_student_f4.json")
  encoder, head = model_lib.EncoderSettings(config), classifier_head.head(3, config)
  with tf.Graph().as_default():
    model_lib.create_model(encoder, head, True, _features(label_ids=tf.zeros([2], tf.int32)))
  # The original: `tf.nn.dropout(output_layer, keep_prob=0.9)` under `loss` when training.
  assert sites == _expected(config) + [("loss", 0.1)]
  del sites[:]
  with tf.Graph().as_default():
    model_lib.create_model(encoder, head, False, _features(label_ids=tf.zeros([2], tf.int32)))
  assert sites == []


def test_span_head_adds_no_dropout(sites):
  config = _config(CONFIG_DIR / "tiny_bert_zh.json")
  with tf.Graph().as_default():
    positions = tf.zeros([2], tf.int32)
    model_lib.create_model(model_lib.EncoderSettings(config), span_head.head(config), True,
                           _features(start_positions=positions, end_positions=positions))
  assert sites == _expected(config)
