"""Our graph against what the original code builds: variables, parameter totals, shapes, numbers."""

import json

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from mobilebert import heads, modeling
from mobilebert.config import BertConfig
import export_helpers
from conftest import CONFIG_DIR, GOLDENS, QAT_CONFIG, QAT_STUDENT, REFERENCE, RELEASED_CONFIGS

STAGE_SHAPES = json.loads((REFERENCE / "shapes" / "stage_shapes.json").read_text())["configs"]
RELEASE_TOTALS = {"student_base_f2": 26_260_424, "student_base_f4": 32_232_584,
                  "student_large_f2": 40_683_144, "student_large_f4": 52_925_064}


def _build(config, batch, seq, positions, use_einsum=True, ids=None, mask=None, segments=None):
  ids = tf.zeros([batch, seq], tf.int32) if ids is None else tf.constant(ids)
  model = modeling.BertModel(
      config, is_training=False, input_ids=ids,
      input_mask=None if mask is None else tf.constant(mask),
      token_type_ids=None if segments is None else tf.constant(segments), use_einsum=use_einsum)
  logits = heads.masked_lm_logits(config, model.get_sequence_output(), model.get_embedding_table(),
                                  tf.zeros([batch, positions], tf.int32) if isinstance(positions, int)
                                  else tf.constant(positions))
  return model, logits


@pytest.mark.parametrize("name, original", [(n, n) for n in RELEASED_CONFIGS] + [
    (QAT_CONFIG, QAT_STUDENT)])
def test_variables_totals_and_stage_shapes_match_the_original(name, original):
  manifest = json.loads((REFERENCE / "manifests" / f"{original}.json").read_text())
  expected_shapes = STAGE_SHAPES[original]
  config = BertConfig.from_json_file(str(CONFIG_DIR / f"{name}.json"))
  with tf.Graph().as_default():
    model, logits = _build(config, expected_shapes["batch"], expected_shapes["seq"],
                           expected_shapes["masked_positions"])
    variables = [[v.name[:-2], v.shape.as_list()] for v in tf.trainable_variables()]
    # Name for name, shape for shape, in the original creation order.
    assert variables == manifest["variables"]

    def total(prefix):
      return sum(int(np.prod(s)) for n, s in variables if n.startswith(prefix))
    assert total("bert/") == manifest["backbone_params"]
    assert total("bert/pooler/") == manifest["pooler_params"]
    assert total("cls/predictions/") == manifest["mlm_head_params"]
    assert total("") == manifest["total_with_mlm_head"]
    if original in RELEASE_TOTALS:
      assert total("") == RELEASE_TOTALS[original]

    stages = dict(model.stages)
    stages["embedding_table"] = model.get_embedding_table()
    stages["mlm/logits [B*P,V]"] = logits
    checked = 0
    for stage, shape in expected_shapes["stages"].items():
      if stage.startswith("mlm/") and stage != "mlm/logits [B*P,V]":
        continue  # internal to the head
      assert stage in stages, f"stage {stage} not recorded by the model"
      assert stages[stage].shape.as_list() == shape, stage
      checked += 1
    assert checked >= 12
    assert len(model.get_all_encoder_layers()) == expected_shapes["num_all_encoder_layers"]
    assert len(model.get_all_attention_maps()) == expected_shapes["num_attention_maps"]
    assert config.attention_head_size == expected_shapes["attention_head_size"]


def _run_golden(name, use_einsum, use_one_hot=False):
  golden = np.load(REFERENCE / "golden" / f"{name}.npz")
  config = BertConfig.from_json_file(str(REFERENCE / "golden" / f"{name}.json"))
  with tf.Graph().as_default():
    model = modeling.BertModel(
        config, is_training=False, input_ids=tf.constant(golden["input_ids"]),
        input_mask=tf.constant(golden["input_mask"]),
        token_type_ids=tf.constant(golden["segment_ids"]),
        use_one_hot_embeddings=use_one_hot, use_einsum=use_einsum)
    outputs = {
        "word_embedding_output": model.get_word_embedding_output(),
        "embedding_output": model.get_embedding_output(),
        "all_encoder_layers": tf.stack(model.get_all_encoder_layers()),
        "all_attention_maps": tf.stack(model.get_all_attention_maps()),
        "sequence_output": model.get_sequence_output(),
        "pooled_output": model.get_pooled_output(),
        "mlm_logits": heads.masked_lm_logits(config, model.get_sequence_output(),
                                             model.get_embedding_table(),
                                             tf.constant(golden["masked_lm_positions"])),
    }
    if "nsp_logits" in golden:
      outputs["nsp_logits"] = heads.next_sentence_logits(config, model.get_pooled_output())
      outputs["nsp_log_probs"] = tf.nn.log_softmax(outputs["nsp_logits"])
    saver = tf.train.Saver()
    with tf.Session() as session:
      saver.restore(session, str(REFERENCE / "golden" / f"{name}.ckpt"))
      return golden, session.run(outputs)


@pytest.mark.parametrize("use_einsum", [True, False], ids=["einsum", "matmul"])
@pytest.mark.parametrize("name", GOLDENS)
def test_goldens_reproduce_from_their_checkpoints(name, use_einsum):
  golden, outputs = _run_golden(name, use_einsum)
  # The Saver restores every variable by name, so the checkpoint and graph hold the same set.
  key_mask = golden["input_mask"].astype(bool)[None, :, None, None, :]  # [1, B, 1, 1, T]
  for key, value in outputs.items():
    expected = golden[key]
    assert value.shape == expected.shape, key
    if key == "all_attention_maps":
      # Masked entries are score - 10000 in float32, where one ulp is ~1e-3: compare real keys.
      diff = np.where(np.broadcast_to(key_mask, value.shape), np.abs(value - expected), 0.0)
      np.testing.assert_allclose(_softmax(value), _softmax(expected), atol=1e-5, err_msg=key)
    else:
      diff = np.abs(value - expected)
    assert diff.max() <= 1e-5, f"{name} {key}: max abs diff {diff.max()}"


def _softmax(scores):
  e = np.exp(scores - scores.max(axis=-1, keepdims=True))
  return e / e.sum(axis=-1, keepdims=True)


def test_one_hot_embeddings_give_the_same_numbers():
  golden, outputs = _run_golden("tiny_student_en", use_einsum=True, use_one_hot=True)
  np.testing.assert_allclose(outputs["sequence_output"], golden["sequence_output"], atol=1e-5)


def test_variables_not_in_golden_would_be_caught():
  """The golden test is only meaningful if a wrong key bias changes the maps it compares."""
  golden = np.load(REFERENCE / "golden" / "tiny_student_f2.npz")
  config = BertConfig.from_json_file(str(REFERENCE / "golden" / "tiny_student_f2.json"))
  with tf.Graph().as_default():
    model = modeling.BertModel(config, False, tf.constant(golden["input_ids"]),
                               tf.constant(golden["input_mask"]), tf.constant(golden["segment_ids"]))
    maps = tf.stack(model.get_all_attention_maps())
    bias = [v for v in tf.global_variables() if v.name == "bert/encoder/layer_0/attention/self/key/bias:0"][0]
    with tf.Session() as session:
      tf.train.Saver().restore(session, str(REFERENCE / "golden" / "tiny_student_f2.ckpt"))
      session.run(bias.assign(tf.roll(bias, 1, axis=0)))
      rolled = session.run(maps)
  key_mask = golden["input_mask"].astype(bool)[None, :, None, None, :]
  diff = np.where(np.broadcast_to(key_mask, rolled.shape), np.abs(rolled - golden["all_attention_maps"]), 0)
  assert diff.max() > 0.1


def test_sequence_longer_than_position_table_is_rejected():
  config = BertConfig.from_json_file(str(REFERENCE / "golden" / "tiny_student_f2.json"))
  with tf.Graph().as_default():
    with pytest.raises(ValueError, match="max_position_embeddings"):
      modeling.BertModel(config, False, tf.zeros([1, config.max_position_embeddings + 1], tf.int32))


def test_relu6_clips_the_ffn_activations_where_relu_does_not(tmp_path):
  """The QAT student's activation, on a golden rescaled so that relu gives the golden's numbers and
  some FFN activations pass 6: relu6 stops at 6 and changes the output."""
  config, checkpoint, golden = export_helpers.golden_relu6("tiny_student_f4", str(tmp_path / "r6"))
  peaks, outputs = {}, {}
  for act in ("relu", "relu6"):
    with tf.Graph().as_default():
      model = modeling.BertModel(config.copy(hidden_act=act), False,
                                 tf.constant(golden["input_ids"]), tf.constant(golden["input_mask"]),
                                 tf.constant(golden["segment_ids"]))
      with tf.Session() as session:
        tf.train.Saver().restore(session, checkpoint)
        intermediate, outputs[act] = session.run(
            [model.stages["layer_i/intermediate (after act)"], model.get_sequence_output()])
        peaks[act] = intermediate.max()
  assert peaks["relu"] > 6.5 and peaks["relu6"] == 6.0
  np.testing.assert_allclose(outputs["relu"], golden["sequence_output"], atol=1e-5, rtol=0)
  assert np.abs(outputs["relu6"] - golden["sequence_output"]).max() > 0.5


def test_dropout_is_active_only_in_training_and_a_function_of_the_step():
  """Masks are stateless in (graph seed, global step, site): the same at the same step, so a resumed
  run repeats an uninterrupted one; new at the next step (the weights unchanged)."""
  config = BertConfig.from_json_file(str(CONFIG_DIR / "tiny_bert_zh.json"))

  def outputs(seed):
    with tf.Graph().as_default():
      tf.set_random_seed(seed)
      step = tf.train.get_or_create_global_step()
      ids = tf.constant([[101, 2769, 4263, 102]])
      train = modeling.BertModel(config, True, ids, scope="bert").get_sequence_output()
      evaluate = modeling.BertModel(config, False, ids, scope="bert_eval").get_sequence_output()
      with tf.Session() as session:
        session.run(tf.global_variables_initializer())
        np.testing.assert_array_equal(session.run(evaluate), session.run(evaluate))
        at_0 = session.run(train)
        np.testing.assert_array_equal(at_0, session.run(train))
        session.run(step.assign(1))
        return at_0, session.run(train)

  at_0, at_1 = outputs(seed=1)
  assert not np.allclose(at_0, at_1)
  np.testing.assert_array_equal(outputs(seed=1)[0], at_0)  # a new process, the same graph


@pytest.mark.parametrize("compute_type", [tf.bfloat16, tf.float16], ids=["bfloat16", "float16"])
def test_mixed_precision_keeps_float32_variables_and_close_outputs(compute_type):
  golden = np.load(REFERENCE / "golden" / "tiny_teacher_bert.npz")
  config = BertConfig.from_json_file(str(REFERENCE / "golden" / "tiny_teacher_bert.json"))
  with tf.Graph().as_default():
    model = modeling.BertModel(config, False, tf.constant(golden["input_ids"]),
                               tf.constant(golden["input_mask"]), tf.constant(golden["segment_ids"]),
                               compute_type=compute_type)
    assert {v.dtype.base_dtype for v in tf.global_variables()} == {tf.float32}
    assert model.get_sequence_output().dtype == tf.float32
    with tf.Session() as session:
      tf.train.Saver().restore(session, str(REFERENCE / "golden" / "tiny_teacher_bert.ckpt"))
      output = session.run(model.get_sequence_output())
  # bfloat16 keeps 8 bits of mantissa: outputs of unit scale agree to a few hundredths.
  assert np.abs(output - golden["sequence_output"]).max() < 0.1
  assert np.abs(output - golden["sequence_output"]).mean() < 0.02
