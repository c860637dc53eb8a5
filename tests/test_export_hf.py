"""Hugging Face export: parity of transformers (PyTorch CPU) with the stored goldens and a fine-tuned
tiny classifier; config.json explicitness; what transformers cannot represent."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from mobilebert import checkpoint as checkpoint_lib
from mobilebert import heads
from mobilebert import layers
from mobilebert import modeling
from mobilebert.export import graph
from mobilebert.export import hf
from mobilebert.export import hf_mapping

sys.path.insert(0, os.path.dirname(__file__))
import export_helpers  # noqa: E402  pylint: disable=g-import-not-at-top

ATOL = 1e-5  # measured <= 2.5e-6 on every output below


@pytest.fixture(scope="module")
def vocab_file(tmp_path_factory):
  return export_helpers.write_vocab(str(tmp_path_factory.mktemp("vocab") / "vocab.txt"))


def _softmax(x):
  e = np.exp(x - x.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("name, architecture", [
    ("tiny_student_f2", "MobileBertForMaskedLM"),
    ("tiny_student_f4", "MobileBertForMaskedLM"),
    ("tiny_student_en", "MobileBertForMaskedLM"),
    ("tiny_teacher_bert", "BertForPreTraining"),
])
def test_goldens_match_in_transformers(tmp_path, vocab_file, name, architecture):
  config, _, checkpoint, npz = export_helpers.golden(name)
  out = str(tmp_path / "hf")
  result = hf.export_hf(config, checkpoint, vocab_file, out)
  assert result.architecture == architecture
  assert {c.output for c in result.checks} >= {"all_encoder_layers", "all_attention_probs",
                                                "mlm_logits_all", "tokenizer_ids"}
  assert sorted(os.listdir(out)) == ["config.json", "model.safetensors", "special_tokens_map.json",
                                     "tokenizer_config.json", "vocab.txt"]

  model, _ = hf.load_hf(out)
  got = hf.run_hf(model, npz)
  np.testing.assert_allclose(got["all_encoder_layers"], npz["all_encoder_layers"], atol=ATOL, rtol=0)
  np.testing.assert_allclose(got["sequence_output"], npz["sequence_output"], atol=ATOL, rtol=0)
  # transformers returns attention probabilities; the goldens keep the pre-softmax maps.
  np.testing.assert_allclose(got["all_attention_probs"], _softmax(npz["all_attention_maps"]),
                             atol=ATOL, rtol=0)
  positions = npz["masked_lm_positions"]
  at_masks = got["mlm_logits_all"][np.arange(2)[:, None], positions].reshape(-1, config.vocab_size)
  np.testing.assert_allclose(at_masks, npz["mlm_logits"], atol=ATOL, rtol=0)
  if "nsp_logits" in npz:
    np.testing.assert_allclose(got["nsp_logits"], npz["nsp_logits"], atol=ATOL, rtol=0)


def test_release_checkpoint_converts_without_stripping(tmp_path, vocab_file):
  """The release layout (teacher/*, adam slots, global_step) that transformers' own loader trips on."""
  config, _, _, npz = export_helpers.golden("tiny_student_f2")
  release = os.path.join(export_helpers.REFERENCE, "release_like", "mobilebert.ckpt")
  out = str(tmp_path / "hf")
  assert hf.export_hf(config, release, vocab_file, out).architecture == "MobileBertForMaskedLM"
  got = hf.run_hf(hf.load_hf(out)[0], npz)
  np.testing.assert_allclose(got["sequence_output"], npz["sequence_output"], atol=ATOL, rtol=0)


def test_student_with_nsp_head_exports_for_pretraining(tmp_path, vocab_file):
  config, checkpoint = export_helpers.golden_with_classifier(
      "tiny_student_f4", str(tmp_path / "with_nsp.ckpt"), nsp=True)
  result = hf.export_hf(config, checkpoint, vocab_file, str(tmp_path / "hf"))
  assert result.architecture == "MobileBertForPreTraining"
  assert [c.value <= ATOL for c in result.checks if c.output == "nsp_logits"] == [True]


def test_config_sets_every_field_explicitly(tmp_path, vocab_file):
  config, _, checkpoint, _ = export_helpers.golden("tiny_student_f2")
  hf_config = hf_mapping.hf_config(config, "masked_lm")
  for key in ("key_query_shared_bottleneck", "use_bottleneck_attention", "normalization_type",
              "trigram_input", "embedding_size", "true_hidden_size", "intra_bottleneck_size",
              "num_feedforward_networks", "classifier_activation", "hidden_act", "layer_norm_eps"):
    assert key in hf_config, key
  # transformers' MobileBertConfig default is True; the original's (and this config's) False.
  assert hf_config["key_query_shared_bottleneck"] is False
  assert hf_config["true_hidden_size"] == 32 and hf_config["model_type"] == "mobilebert"
  teacher = hf_mapping.hf_config(export_helpers.golden("tiny_teacher_bert")[0], "pretraining")
  assert teacher["model_type"] == "bert" and teacher["hidden_act"] == "gelu_new"


def test_relu6_student_matches_in_transformers(tmp_path, vocab_file):
  """The QAT student's relu6, with weights scaled so it clips: transformers must clip the same way."""
  config, checkpoint, npz = export_helpers.golden_relu6("tiny_student_f4", str(tmp_path / "r6.ckpt"))
  out = str(tmp_path / "hf")
  result = hf.export_hf(config, checkpoint, vocab_file, out)  # raises if transformers disagrees
  assert json.load(open(os.path.join(out, "config.json")))["hidden_act"] == "relu6"
  assert result.checks and all(c.value <= ATOL for c in result.checks if c.metric == "max_abs")
  got = hf.run_hf(hf.load_hf(out)[0], npz)["sequence_output"]
  want = {}
  for act in ("relu6", "relu"):
    model = graph.TFModel(config.copy(hidden_act=act), checkpoint)
    want[act] = model.run(*(npz[n] for n in graph.INPUT_NAMES))["sequence_output"]
    model.close()
  np.testing.assert_allclose(got, want["relu6"], atol=ATOL, rtol=0)
  assert np.abs(got - want["relu"]).max() > 0.5  # relu in transformers would not pass


def test_every_activation_has_a_transformers_name():
  assert set(hf_mapping.HF_ACTIVATIONS) == set(layers.ACTIVATIONS)
  config = export_helpers.golden("tiny_student_f4")[0]
  config.hidden_act = "swish"  # past validation, as a future table entry without a mapping would be
  assert "hidden_act 'swish'" in hf_mapping.unsupported_reason(config)


def test_ib_bert_layout_is_refused(tmp_path, vocab_file):
  config, _, checkpoint, _ = export_helpers.golden("tiny_teacher_ibbert")
  with pytest.raises(graph.ExportError, match="cannot represent this config.*64-wide layer input"):
    hf.export_hf(config, checkpoint, vocab_file, str(tmp_path / "ibbert"))
  assert not os.listdir(tmp_path)


def test_layer_norm_mobilebert_epsilon_difference(tmp_path, vocab_file):
  """transformers' MobileBERT ignores layer_norm_eps in two LayerNorms (1e-5 instead of 1e-12)."""
  config = export_helpers.golden("tiny_teacher_ibbert")[0].copy(
      intra_bottleneck_size=64)  # IB-BERT-like, representable; initializer_range 0.15
  prefix = str(tmp_path / "random.ckpt")
  with tf.Graph().as_default():
    tf.set_random_seed(1)
    ids = tf.zeros([1, 8], tf.int32)
    model = modeling.BertModel(config, False, ids)
    heads.masked_lm_logits(config, model.get_sequence_output(), model.get_embedding_table(),
                           tf.zeros([1, 1], tf.int32))
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      tf.train.Saver().save(session, prefix, write_meta_graph=False)
  result = hf.export_hf(config, prefix, vocab_file, str(tmp_path / "hf"))
  worst = max(c.value for c in result.checks if c.metric == "max_abs")
  # Measured 3.5e-4 (hidden states) and 5.0e-4 (MLM logits): above the 1e-5 of the other layouts,
  # all from the epsilon, within the stated HF_ATOL_MOBILEBERT_LAYER_NORM.
  assert 1e-5 < worst <= hf.HF_ATOL_MOBILEBERT_LAYER_NORM == hf.hf_tolerance(config)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
  return export_helpers.train_tiny_classifier(str(tmp_path_factory.mktemp("classifier")), steps=150)


def test_fine_tuned_classifier_predicts_the_same(classifier, vocab_file, tmp_path):
  out = str(tmp_path / "hf_classifier")
  result = hf.export_hf(classifier.config, classifier.checkpoint, vocab_file, out,
                        label_names=["set_a", "set_b"])
  assert result.architecture == "MobileBertForSequenceClassification"
  assert json.load(open(os.path.join(out, "config.json")))["id2label"] == {"0": "set_a", "1": "set_b"}
  model, _ = hf.load_hf(out)
  features = {n: classifier.eval_features[n][:64] for n in graph.INPUT_NAMES}
  got = hf.run_hf(model, features)
  reference = graph.TFModel(classifier.config, classifier.checkpoint)
  want = reference.run(*(features[n] for n in graph.INPUT_NAMES))
  reference.close()
  np.testing.assert_allclose(got["logits"], want["logits"], atol=ATOL, rtol=0)
  np.testing.assert_array_equal(np.argmax(got["logits"], -1), np.argmax(want["logits"], -1))
  accuracy = np.mean(np.argmax(got["logits"], -1) == classifier.eval_features["label_ids"][:64])
  assert accuracy >= 0.95


@pytest.fixture(scope="module")
def token_heads(tmp_path_factory):
  """The tiny_student_f2 golden with a 5-tag tagger (run_tagging) and a span head (run_cmrc2018),
  both initialized wide enough (stddev 0.5) that their logits differ across positions."""
  config, _, golden, _ = export_helpers.golden("tiny_student_f2")
  prefix = str(tmp_path_factory.mktemp("token_heads") / "model.ckpt")
  with tf.Graph().as_default():
    tf.set_random_seed(3)
    model = modeling.BertModel(config, is_training=False, input_ids=tf.zeros([1, 4], tf.int32))
    heads.token_tagging_logits(model.get_sequence_output(), 5, initializer_range=0.5)
    heads.span_logits(model.get_sequence_output(), initializer_range=0.5)
    tf.train.init_from_checkpoint(golden, {"bert/": "bert/"})
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      tf.train.Saver().save(session, prefix, write_meta_graph=False)
  # What run_tagging writes beside its checkpoints: the export names the tags from it.
  with open(os.path.join(os.path.dirname(prefix), "label_list.json"), "w") as f:
    json.dump({"labels": TAGS, "entity_types": ["LOC", "PER"]}, f)
  return config, prefix


TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


@pytest.mark.parametrize("head, architecture, outputs", [
    ("token_classification", "MobileBertForTokenClassification", ["tag_logits"]),
    ("question_answering", "MobileBertForQuestionAnswering", ["start_logits", "end_logits"]),
])
def test_token_heads_export_as_transformers_heads(token_heads, vocab_file, tmp_path, head,
                                                  architecture, outputs):
  config, checkpoint = token_heads
  out = str(tmp_path / head)
  result = hf.export_hf(config, checkpoint, vocab_file, out, head=head)
  assert result.architecture == architecture
  checked = {c.output: c.value for c in result.checks}
  assert all(checked[name] <= ATOL for name in outputs), checked  # measured <= 2.5e-6
  written = json.load(open(os.path.join(out, "config.json")))
  if head == "token_classification":
    assert written["id2label"] == {str(i): t for i, t in enumerate(TAGS)}  # from label_list.json
  model, _ = hf.load_hf(out)  # every weight present: no pooler, the head's own
  features = graph.sample_inputs(config, 16)
  got = hf.run_hf(model, features)
  reference = graph.TFModel(config, checkpoint)
  want = reference.run(*(features[n] for n in graph.INPUT_NAMES))
  reference.close()
  for name in outputs:
    assert np.ptp(want[name]) > 1.0  # a head that tells positions apart
    np.testing.assert_allclose(got[name], want[name], atol=ATOL, rtol=0)
  # With both heads in the checkpoint, auto picks the tagger; --label_names must fit it.
  assert hf_mapping.choose_head(graph.detect_heads(checkpoint)) == "token_classification"
  with pytest.raises(graph.ExportError, match="--label_names has 2 names; the tagger has 5 labels"):
    hf.export_hf(config, checkpoint, vocab_file, str(tmp_path / "x"), label_names=["a", "b"])


def test_bad_inputs_and_command_line(tmp_path, vocab_file):
  config, config_file, checkpoint, _ = export_helpers.golden("tiny_teacher_bert")
  small = export_helpers.write_vocab(str(tmp_path / "small.txt"), size=100)
  with pytest.raises(graph.ExportError, match="has 100 entries, the config's vocab_size is 512"):
    hf.export_hf(config, checkpoint, small, str(tmp_path / "x"))
  with pytest.raises(graph.ExportError, match="--hf_head=sequence_classification.*only"):
    hf.export_hf(config, checkpoint, vocab_file, str(tmp_path / "x"), head="sequence_classification")
  student = export_helpers.golden("tiny_student_f2")[2]
  with pytest.raises(checkpoint_lib.CheckpointError, match=(
      r"tiny_student_f2.ckpt: bert/encoder/layer_0/.* in the checkpoint but .* in the graph, and 23 "
      r"more variables differ; likely cause: --bert_config_file does not describe the model")):
    hf.export_hf(config, student, vocab_file, str(tmp_path / "x"), verify_outputs=False)
  assert not (tmp_path / "x").exists()
  out = tmp_path / "cli"
  done = subprocess.run(
      [sys.executable, "-m", "mobilebert.export", "--format=hf", f"--bert_config_file={config_file}",
       f"--init_checkpoint={checkpoint}", f"--vocab_file={vocab_file}", f"--output={out}",
       "--hf_head=masked_lm", "--noverify"], capture_output=True, text=True)
  assert done.returncode == 0, done.stderr[-2000:]
  assert "wrote transformers BertForMaskedLM" in done.stdout and "not verified" in done.stdout
  model, _ = hf.load_hf(str(out))  # loads with every weight present (no pooler, no NSP head)
  assert type(model).__name__ == "BertForMaskedLM"
