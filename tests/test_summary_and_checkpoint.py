"""The summary tool's output against the manifests, and initialization from release-like checkpoints."""

import json
import logging
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from mobilebert import checkpoint, heads, modeling, summary
from mobilebert.config import BertConfig
from conftest import CONFIG_DIR, QAT_CONFIG, QAT_STUDENT, REFERENCE, ROOT


def test_summary_json_cli_matches_the_manifest():
  result = subprocess.run(
      [sys.executable, "-m", "mobilebert.summary",
       f"--bert_config_file={CONFIG_DIR / 'uncased_L-24_H-1024_B-512_A-4.json'}", "--json"],
      capture_output=True, text=True, check=True, cwd=ROOT)
  got = json.loads(result.stdout)
  manifest = json.loads((REFERENCE / "manifests" / "uncased_L-24_H-1024_B-512_A-4.json").read_text())
  assert got["variables"] == manifest["variables"]
  assert got["backbone_params"] == manifest["backbone_params"]
  assert got["pooler_params"] == manifest["pooler_params"] == 262_656
  assert got["mlm_head_params"] == manifest["mlm_head_params"]
  assert got["total_params"] == manifest["total_with_mlm_head"]


def test_summary_table_and_bad_config_exit_code(tmp_path):
  table = summary.format_table(summary.summarize(
      BertConfig.from_json_file(str(CONFIG_DIR / "student_base_f2.json"))))
  assert "total_params" in table and "26,260,424" in table
  bad = tmp_path / "bad.json"
  bad.write_text('{"vocab_size": 10, "hidden_sise": 3}')
  result = subprocess.run([sys.executable, "-m", "mobilebert.summary", f"--bert_config_file={bad}"],
                          capture_output=True, text=True, cwd=ROOT)
  assert result.returncode == 2 and "hidden_sise" in result.stderr and str(bad) in result.stderr


def test_model_table_shows_the_qat_student_with_relu6_and_the_f4_opt_totals(tmp_path):
  for name in (QAT_CONFIG, QAT_STUDENT):
    (tmp_path / f"{name}.json").write_bytes((CONFIG_DIR / f"{name}.json").read_bytes())
  header, _, *rows = summary.config_table(str(tmp_path)).splitlines()
  cells = {row.split(" | ")[0][2:]: row.split(" | ")[1:] for row in rows}
  columns = header.split(" | ")[1:]
  qat, f4_opt = cells[QAT_CONFIG], cells[QAT_STUDENT]
  assert qat[columns.index("act")] == "relu6" and f4_opt[columns.index("act")] == "relu"
  manifest = json.loads((REFERENCE / "manifests" / f"{QAT_STUDENT}.json").read_text())
  assert qat[columns.index("total |")].startswith(f"{manifest['total_with_mlm_head']:,} ")
  assert [c for i, c in enumerate(qat) if i != columns.index("act")] == \
      [c for i, c in enumerate(f4_opt) if i != columns.index("act")]


RELEASE_LIKE = str(REFERENCE / "release_like" / "mobilebert.ckpt")


def test_student_initializes_from_a_release_checkpoint_ignoring_teacher_and_slots():
  config = BertConfig.from_json_file(str(REFERENCE / "golden" / "tiny_student_f2.json"))
  golden = np.load(REFERENCE / "golden" / "tiny_student_f2.npz")
  with tf.Graph().as_default():
    model = modeling.BertModel(config, False, tf.constant(golden["input_ids"]),
                               tf.constant(golden["input_mask"]), tf.constant(golden["segment_ids"]))
    heads.masked_lm_logits(config, model.get_sequence_output(), model.get_embedding_table(),
                           tf.constant(golden["masked_lm_positions"]))
    result = checkpoint.init_from_checkpoint(RELEASE_LIKE)
    assert len(result.initialized) == len(tf.trainable_variables()) == 72
    assert not result.shape_mismatch and not result.not_in_checkpoint
    assert not any(n.startswith("teacher/") or "adam" in n for n in result.assignment_map)
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      np.testing.assert_allclose(session.run(model.get_sequence_output()),
                                 golden["sequence_output"], atol=1e-5)


def test_teacher_initializes_from_the_teacher_scope_of_a_pretraining_checkpoint():
  config = BertConfig.from_json_file(str(REFERENCE / "golden" / "tiny_teacher_bert.json"))
  golden = np.load(REFERENCE / "golden" / "tiny_teacher_bert.npz")
  with tf.Graph().as_default():
    with tf.variable_scope("teacher"):
      model = modeling.BertModel(config, False, tf.constant(golden["input_ids"]),
                                 tf.constant(golden["input_mask"]),
                                 tf.constant(golden["segment_ids"]))
    result = checkpoint.init_from_checkpoint(RELEASE_LIKE, checkpoint_prefix="teacher/",
                                             graph_prefix="teacher/")
    assert len(result.initialized) == len(tf.trainable_variables())
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      np.testing.assert_allclose(session.run(model.get_pooled_output()), golden["pooled_output"],
                                 atol=1e-5)


def test_a_shape_mismatch_is_an_error_naming_variable_shapes_checkpoint_and_cause():
  config = BertConfig.from_json_file(str(REFERENCE / "golden" / "tiny_student_f2.json"))
  wider = config.copy(intermediate_size=96)
  with tf.Graph().as_default():
    modeling.BertModel(wider, False, tf.zeros([1, 8], tf.int32))
    with pytest.raises(checkpoint.CheckpointError) as error:
      checkpoint.init_from_checkpoint(RELEASE_LIKE)
  message = str(error.value)
  assert "\n" not in message and message.startswith(RELEASE_LIKE + ": bert/encoder/layer_0/")
  assert "has shape [32, 64] in the checkpoint but [32, 96] in the graph" in message
  assert "--bert_config_file does not describe the model in --init_checkpoint" in message
  assert "--skip_mismatched_variables" in message


def test_shape_mismatches_are_skipped_and_reported_only_on_request(caplog):
  caplog.set_level(logging.INFO, logger="tensorflow")
  config = BertConfig.from_json_file(str(REFERENCE / "golden" / "tiny_student_f2.json"))
  wider = config.copy(intermediate_size=96)
  with tf.Graph().as_default():
    modeling.BertModel(wider, False, tf.zeros([1, 8], tf.int32))
    result = checkpoint.init_from_checkpoint(RELEASE_LIKE, skip_mismatched=True)
    mismatched = {name for name, _, _ in result.shape_mismatch}
    assert "bert/encoder/layer_0/intermediate/dense/kernel" in mismatched
    assert "bert/embeddings/word_embeddings" in result.initialized
  total = len(result.initialized) + len(mismatched)
  assert (f"loaded {len(result.initialized)} of {total} variables; 0 left at their initializer (not "
          f"in the checkpoint), {len(mismatched)} skipped (shape mismatch)") in caplog.text
  assert "left at initializer (shape mismatch" in caplog.text


def test_a_checkpoint_that_initializes_nothing_is_an_error():
  with tf.Graph().as_default():
    with tf.variable_scope("other"):
      tf.get_variable("kernel", [3, 4])
    with pytest.raises(checkpoint.CheckpointError, match=r"none of the 1 graph variables is in the "
                       r"checkpoint \(e.g. other/kernel\)"):
      checkpoint.init_from_checkpoint(RELEASE_LIKE)
    result = checkpoint.init_from_checkpoint(RELEASE_LIKE, skip_mismatched=True)
    assert result.not_in_checkpoint == ["other/kernel"] and not result.initialized


def test_a_truncated_or_corrupt_init_checkpoint_is_named(tmp_path):
  for suffix in (".index", ".data-00000-of-00001"):
    (tmp_path / f"m.ckpt{suffix}").write_bytes((REFERENCE / "release_like" /
                                                f"mobilebert.ckpt{suffix}").read_bytes())
  data = tmp_path / "m.ckpt.data-00000-of-00001"
  data.write_bytes(data.read_bytes()[:data.stat().st_size // 2])
  config = BertConfig.from_json_file(str(REFERENCE / "golden" / "tiny_student_f2.json"))
  with tf.Graph().as_default():
    modeling.BertModel(config, False, tf.zeros([1, 8], tf.int32))
    with pytest.raises(checkpoint.CheckpointError, match=r"m\.ckpt: cannot read .*, the checkpoint "
                       r"is truncated or corrupt \(Read less bytes than requested\)"):
      checkpoint.init_from_checkpoint(str(tmp_path / "m.ckpt"))


def test_bad_checkpoint_paths(tmp_path):
  with pytest.raises(checkpoint.CheckpointError, match="not a checkpoint"):
    checkpoint.resolve_checkpoint(str(tmp_path / "model.ckpt"))
  with pytest.raises(checkpoint.CheckpointError, match="holds no checkpoint"):
    checkpoint.resolve_checkpoint(str(tmp_path))
  (tmp_path / "junk.ckpt.index").write_bytes(b"not a checkpoint index")
  with pytest.raises(checkpoint.CheckpointError, match="cannot read"):
    checkpoint.list_checkpoint(str(tmp_path / "junk.ckpt"))
