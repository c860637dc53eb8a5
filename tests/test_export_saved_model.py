"""SavedModel export: golden round trip, the classifier signature, 16-bit checkpoints, bad inputs."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mobilebert import checkpoint as checkpoint_lib
from mobilebert import strip_checkpoint
from mobilebert.export import atomic
from mobilebert.export import graph
from mobilebert.export import saved_model

sys.path.insert(0, os.path.dirname(__file__))
import export_helpers  # noqa: E402  pylint: disable=g-import-not-at-top


@pytest.mark.parametrize("name", ["tiny_student_f2", "tiny_teacher_bert"])
def test_round_trip_matches_golden(tmp_path, name):
  config, _, checkpoint, npz = export_helpers.golden(name)
  export_dir = str(tmp_path / "saved_model")
  result = saved_model.export_saved_model(config, checkpoint, export_dir)
  expected = ["sequence_output", "pooled_output"] + (["nsp_logits"] if "nsp_logits" in npz else [])
  assert result.outputs == expected
  # The SavedModel runs the same float32 ops as the checkpoint's graph: measured bit for bit.
  assert all(c.value == 0.0 for c in result.checks)
  runner = saved_model.SavedModelRunner(export_dir)
  got = runner.run(npz)
  runner.close()
  for key in expected:
    np.testing.assert_allclose(got[key], npz[key], atol=1e-5, rtol=0)
  info = json.load(open(os.path.join(export_dir, "assets.extra", "mobilebert_export.json")))
  assert info["bert_config"] == config.to_dict() and info["outputs"] == expected


def test_classifier_signature_with_fixed_length(tmp_path):
  config, checkpoint = export_helpers.golden_with_classifier(
      "tiny_student_f4", str(tmp_path / "finetuned.ckpt"), num_labels=3)
  export_dir = str(tmp_path / "classifier")
  result = saved_model.export_saved_model(config, checkpoint, export_dir, seq_length=24)
  assert result.outputs == ["sequence_output", "pooled_output", "logits", "probabilities"]
  features = graph.sample_inputs(config, 24, batch_size=4, seed=3)
  runner = saved_model.SavedModelRunner(export_dir)
  got = runner.run(features)
  runner.close()
  assert got["probabilities"].shape == (4, 3)
  np.testing.assert_allclose(got["probabilities"].sum(-1), 1.0, atol=1e-6)
  # logits = pooled @ W^T + b with the checkpoint's head, computed here in NumPy.
  values = checkpoint_lib.read_checkpoint_float32(checkpoint)
  np.testing.assert_allclose(
      got["logits"], got["pooled_output"] @ values["output_weights"].T + values["output_bias"],
      atol=1e-5)
  with pytest.raises(ValueError, match="Cannot feed value of shape"):  # length fixed at 24
    saved_model.SavedModelRunner(export_dir).run(graph.sample_inputs(config, 16))


def test_16_bit_checkpoint_exports_in_float32(tmp_path):
  config, _, checkpoint, npz = export_helpers.golden("tiny_student_f2")
  cast = str(tmp_path / "bf16.ckpt")
  strip_checkpoint.strip_checkpoint(checkpoint, cast, cast_to="bfloat16")
  export_dir = str(tmp_path / "from_bf16")
  saved_model.export_saved_model(config, cast, export_dir)
  runner = saved_model.SavedModelRunner(export_dir)
  got = runner.run(npz)
  runner.close()
  scale = np.abs(npz["sequence_output"]).max()
  assert np.abs(got["sequence_output"] - npz["sequence_output"]).max() / scale < 0.03


def test_bad_inputs(tmp_path):
  config_f4 = export_helpers.golden("tiny_student_f4")[0]
  checkpoint_f2 = export_helpers.golden("tiny_student_f2")[2]
  with pytest.raises(checkpoint_lib.CheckpointError, match=(
      r"tiny_student_f2.ckpt: bert/encoder/layer_0/.* has shape \[32, 32\] in the checkpoint but "
      r"\[64, 32\] in the graph, and 1 more variable differs; likely cause: --bert_config_file does "
      r"not describe the model in --init_checkpoint$")):
    saved_model.export_saved_model(config_f4, checkpoint_f2, str(tmp_path / "mismatch"))
  assert not os.listdir(tmp_path)
  (tmp_path / "taken").mkdir()
  with pytest.raises(atomic.OutputExistsError, match="already exists"):
    saved_model.export_saved_model(config_f4, checkpoint_f2, str(tmp_path / "taken"))


def test_command_line(tmp_path):
  _, config_file, checkpoint, _ = export_helpers.golden("tiny_student_en")
  out = tmp_path / "cli"
  out.mkdir()
  args = [sys.executable, "-m", "mobilebert.export", "--format=saved_model",
          f"--bert_config_file={config_file}", f"--init_checkpoint={checkpoint}", f"--output={out}"]
  refused = subprocess.run(args, capture_output=True, text=True)
  assert refused.returncode != 0 and "export: error: --output: output already exists" in refused.stderr
  assert "pass --overwrite" in refused.stderr
  done = subprocess.run(args + ["--overwrite"], capture_output=True, text=True)
  assert done.returncode == 0, done.stderr[-2000:]
  assert "wrote SavedModel" in done.stdout and "sequence_output: max_abs 0" in done.stdout
  assert (out / "saved_model.pb").exists()
