"""strip_checkpoint on the release-like checkpoint: exactly the student survives, bit for bit."""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from mobilebert import checkpoint as checkpoint_lib
from mobilebert import strip_checkpoint as strip
from mobilebert.export import graph

REFERENCE = os.path.join(os.path.dirname(__file__), "fixtures", "reference")
RELEASE = os.path.join(REFERENCE, "release_like", "mobilebert.ckpt")
GOLDEN = os.path.join(REFERENCE, "golden")
with open(os.path.join(REFERENCE, "release_like", "release_like.json")) as _f:
  RELEASE_INFO = json.load(_f)


def _digest(prefix):
  return {f: hashlib.sha256(open(f, "rb").read()).hexdigest() for f in strip.checkpoint_files(prefix)}


def _tensors(prefix):
  reader = tf.train.load_checkpoint(prefix)
  return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()}


@pytest.fixture(scope="module")
def stripped(tmp_path_factory):
  before = _digest(RELEASE)
  out = str(tmp_path_factory.mktemp("strip") / "student.ckpt")
  result = strip.strip_checkpoint(RELEASE, out)
  return result, before


def test_keeps_exactly_the_student_bit_for_bit(stripped):
  result, _ = stripped
  expected = {name for name, _ in RELEASE_INFO["stripped"]["variables"]}
  got = _tensors(result.output_checkpoint)
  assert set(got) == expected and len(got) == 72
  golden = _tensors(os.path.join(GOLDEN, "tiny_student_f2.ckpt"))  # the student, saved on its own
  assert set(golden) == expected
  for name, value in golden.items():
    assert got[name].dtype == value.dtype and got[name].tobytes() == value.tobytes(), name


def test_sizes_shrink_as_expected_and_input_untouched(stripped):
  result, before = stripped
  assert _digest(RELEASE) == before
  assert result.bytes_before == RELEASE_INFO["total_file_bytes"]
  data = strip.checkpoint_files(result.output_checkpoint)[0]
  assert os.path.getsize(data) == RELEASE_INFO["stripped"]["tensor_bytes"] == 354560
  assert result.bytes_after < result.bytes_before * 0.25
  counts = {kind: len(names) for kind, names in result.dropped_by_kind.items()}
  assert counts == {"optimizer_slot": 144, "teacher": 44, "global_step": 1}
  sidecar = json.load(open(result.output_checkpoint + strip.SIDECAR_SUFFIX))
  assert sidecar["dtype"] == "float32" and len(sidecar["variables"]) == 72
  assert not [f for f in os.listdir(os.path.dirname(result.output_checkpoint)) if ".tmp-" in f]


def test_refuses_to_overwrite_unless_asked(stripped, tmp_path):
  result, _ = stripped
  mtime = os.path.getmtime(result.output_checkpoint + ".index")
  with pytest.raises(strip.StripError, match="already exists.*--overwrite"):
    strip.strip_checkpoint(RELEASE, result.output_checkpoint)
  assert os.path.getmtime(result.output_checkpoint + ".index") == mtime
  with pytest.raises(strip.StripError, match="is the input --input_checkpoint=.*never written over"):
    strip.strip_checkpoint(RELEASE, RELEASE, overwrite=True)
  # A checkpoint the tool did not write is not replaced, even with --overwrite.
  foreign = str(tmp_path / "foreign.ckpt")
  strip.write_checkpoint(foreign, {"x": np.zeros(2, np.float32)})
  with pytest.raises(strip.StripError, match="foreign.ckpt.data-00000-of-00001 was not written by "
                                             "mobilebert.strip_checkpoint"):
    strip.strip_checkpoint(RELEASE, foreign, overwrite=True)
  assert list(_tensors(foreign)) == ["x"]
  out = str(tmp_path / "again.ckpt")
  strip.strip_checkpoint(RELEASE, out)
  again = strip.strip_checkpoint(RELEASE, out, keep=["bert/embeddings/*"], overwrite=True)
  assert len(_tensors(out)) == 7 and len(again.kept) == 7


def test_bad_paths_and_non_checkpoints(tmp_path):
  with pytest.raises(checkpoint_lib.CheckpointError, match="not a checkpoint.*does not exist"):
    strip.strip_checkpoint(str(tmp_path / "missing.ckpt"), str(tmp_path / "out.ckpt"))
  garbage = tmp_path / "garbage.ckpt"
  (tmp_path / "garbage.ckpt.index").write_bytes(b"this is not a checkpoint index")
  with pytest.raises(checkpoint_lib.CheckpointError, match="cannot read checkpoint"):
    strip.strip_checkpoint(str(garbage), str(tmp_path / "out.ckpt"))
  with pytest.raises(strip.StripError, match="no variable matches --keep=nothing/\\*"):
    strip.strip_checkpoint(RELEASE, str(tmp_path / "out.ckpt"), keep=["nothing/*"])
  with pytest.raises(strip.StripError, match="not one of its files"):
    strip.strip_checkpoint(RELEASE, str(tmp_path / "out.ckpt.index"))
  (tmp_path / "afile").write_text("x")
  with pytest.raises(strip.StripError, match="is a file, not a directory"):
    strip.strip_checkpoint(RELEASE, str(tmp_path / "afile" / "out.ckpt"))
  assert not list(tmp_path.glob("out.ckpt*"))


def test_teacher_extraction_with_remove_prefix(tmp_path):
  out = str(tmp_path / "teacher.ckpt")
  strip.strip_checkpoint(RELEASE, out, keep=["teacher/*"], remove_prefix="teacher/")
  got = _tensors(out)
  golden = _tensors(os.path.join(GOLDEN, "tiny_teacher_bert.ckpt"))
  # The pretraining graph never builds the teacher's NSP head, so the release has none.
  expected = {n: v for n, v in golden.items() if not n.startswith("cls/seq_relationship/")}
  assert set(got) == set(expected) and len(got) == 44
  assert all(got[n].tobytes() == expected[n].tobytes() for n in expected)


@pytest.mark.parametrize("cast_to, numpy_dtype", [("bfloat16", tf.bfloat16.as_numpy_dtype),
                                                   ("float16", np.float16)])
def test_cast_halves_size_and_loaders_cast_back(tmp_path, cast_to, numpy_dtype):
  out = str(tmp_path / f"{cast_to}.ckpt")
  result = strip.strip_checkpoint(RELEASE, out, cast_to=cast_to)
  dtypes = tf.train.load_checkpoint(out).get_variable_to_dtype_map()
  assert {d.name for d in dtypes.values()} == {cast_to}
  assert os.path.getsize(strip.checkpoint_files(out)[0]) == 354560 // 2
  assert json.load(open(out + strip.SIDECAR_SUFFIX))["dtype"] == cast_to
  original = _tensors(RELEASE)
  values = checkpoint_lib.read_checkpoint_float32(out)
  for name, value in values.items():
    assert value.dtype == np.float32
    np.testing.assert_array_equal(value, original[name].astype(numpy_dtype).astype(np.float32))
  # bfloat16 keeps 8 significant bits, float16 11: the largest change follows.
  assert 0 < result.max_cast_error <= (2e-2 if cast_to == "bfloat16" else 2e-3)

  # Training-side loading: float32 graph variables initialized from the 16-bit checkpoint.
  with tf.Graph().as_default():
    variables = [tf.get_variable(n, v.shape, tf.float32) for n, v in sorted(values.items())]
    init = checkpoint_lib.assignment_map(out, variables)
    checkpoint_lib.init_from_checkpoint_any_dtype(out, init.assignment_map)
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      for var in variables:
        np.testing.assert_array_equal(session.run(var), values[var.op.name])


@pytest.mark.parametrize("cast_to, bound", [("bfloat16", 0.03), ("float16", 0.003)])
def test_cast_model_stays_close_to_golden(tmp_path, cast_to, bound):
  out = str(tmp_path / "cast.ckpt")
  strip.strip_checkpoint(RELEASE, out, cast_to=cast_to)
  from mobilebert.config import BertConfig  # pylint: disable=g-import-not-at-top
  config = BertConfig.from_json_file(os.path.join(GOLDEN, "tiny_student_f2.json"))
  npz = np.load(os.path.join(GOLDEN, "tiny_student_f2.npz"))
  model = graph.TFModel(config, out)
  got = model.run(npz["input_ids"], npz["input_mask"], npz["segment_ids"], npz["masked_lm_positions"])
  model.close()
  # max|diff| / max|golden|, measured: bfloat16 6.9e-3 (sequence) 1.3e-2 (MLM logits); float16
  # 7.4e-4 and 1.0e-3. The float32 checkpoint reproduces the golden to 1e-5 (test_fill_mask).
  for name in ("sequence_output", "mlm_logits"):
    assert np.abs(got[name] - npz[name]).max() / np.abs(npz[name]).max() < bound, name


def test_float16_overflow_is_refused(tmp_path):
  source = str(tmp_path / "big.ckpt")
  strip.write_checkpoint(source, {"bert/x": np.array([1.0, 1e6], np.float32)})
  with pytest.raises(strip.StripError, match="out of the float16 range.*bfloat16"):
    strip.strip_checkpoint(source, str(tmp_path / "out.ckpt"), cast_to="float16")


def test_command_line(tmp_path):
  out = str(tmp_path / "cli.ckpt")
  cmd = [sys.executable, "-m", "mobilebert.strip_checkpoint", f"--input_checkpoint={RELEASE}",
         f"--output_checkpoint={out}"]
  done = subprocess.run(cmd, capture_output=True, text=True, check=True)
  after = os.path.getsize(out + ".index") + 354560
  assert f"1,525,151 bytes (1.45 MiB) -> {after:,} bytes" in done.stdout
  assert "dropped 44 teacher variables" in done.stdout
  again = subprocess.run(cmd, capture_output=True, text=True)
  assert again.returncode != 0
  assert "strip_checkpoint: error:" in again.stderr and "--overwrite" in again.stderr
