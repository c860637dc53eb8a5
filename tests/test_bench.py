"""Model benchmarks (bench/): both run end to end on tiny configs, the worker machinery reports and
fails clearly, and the peer's distillation losses are ours on the same tensors and weights.

Timings are not checked (the machine is shared): only that every row is there with positive numbers.
"""

import json
import os
import pathlib
import re
import shutil
import sys
import time

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import compare  # noqa: E402  pylint: disable=g-import-not-at-top
import workers  # noqa: E402  pylint: disable=g-import-not-at-top

STUDENT = str(ROOT / "config" / "tiny_student_zh.json")
TEACHER = str(ROOT / "config" / "tiny_bert_zh.json")
QUICK = ["--seq", "8", "--rounds", "1", "--steps", "1", "--peak_size", "128", "--threads", "1"]


class FakeModel:
  """A worker model for the machinery tests (the worker imports this module by name)."""

  def __init__(self, seconds=0.001, fail=False):
    if fail:
      raise ValueError("the fake model refuses to build")
    self.seconds = seconds
    self.info = {"flops_per_step": 1e6}

  def step(self):
    time.sleep(self.seconds)


@pytest.fixture(name="fake_importable")
def fixture_fake_importable(monkeypatch):
  path = os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]))
  monkeypatch.setenv("PYTHONPATH", path)


def _rows(text):
  """{case: [numbers of the row]} of the markdown table in a benchmark's output."""
  rows = {}
  for line in text.splitlines():
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if line.startswith("| ") and cells[0] != "case":
      rows[cells[0]] = [float(re.sub(r"[x%]$", "", c)) for c in cells[1:]]
  return rows


def _check_report(text, cases):
  """The machine line, one row per case (regular expressions, in order), all numbers positive."""
  assert re.search(r"^CPU: .*TensorFlow \S+.*torch \S+.*transformers \S+", text, re.M), text
  rows = _rows(text)
  assert len(rows) == len(cases), text
  for (case, numbers), pattern in zip(rows.items(), cases):
    assert re.fullmatch(pattern, case), (case, pattern)
    assert len(numbers) == 7 and all(n > 0 for n in numbers), (case, numbers)


def test_bench_model_runs_every_case_with_tflite(capsys):
  import bench_model  # pylint: disable=g-import-not-at-top
  bench_model.main(["--config", STUDENT, *QUICK, "--reuse_workers", "--tflite",
                    "--tflite_variants", "dynamic_int8"])
  _check_report(capsys.readouterr().out, [
      r"fine-tuning step, batch 32", r"inference, batch 1", r"inference, batch 32",
      r"inference, batch 1, TFLite dynamic_int8 \(\d+\.\d MB, (litert|tensorflow)\)"])


def test_bench_model_tflite_formats_write_the_device_targets(tmp_path, capsys):
  """--tflite_only: every numeric format against the peer, and <kind>-<vendor>.json with the targets."""
  import bench_model  # pylint: disable=g-import-not-at-top
  import machine  # pylint: disable=g-import-not-at-top
  formats = ["float32", "dynamic_int8", "full_int8", "qat_int8"]
  bench_model.main(["--config", STUDENT, *QUICK, "--reuse_workers", "--tflite_only",
                    "--tflite_variants", ",".join(formats), "--results_dir", str(tmp_path)])
  out = capsys.readouterr().out
  _check_report(out.split("| target |")[0], [
      rf"inference, batch 1, TFLite {f} \(\d+\.\d MB, (litert|tensorflow)\)" for f in formats])
  results = json.loads((tmp_path / f"{machine.results_name()}.json").read_text())
  assert results["cpu_kind"] == machine.cpu_kind() and results["cpu_model"] == machine.cpu_model()
  cases = {c["case"].split(" (")[0].rsplit(" ", 1)[1]: c for c in results["cases"]}
  assert list(cases) == formats
  for fmt in formats[1:]:  # 8-bit weights: well under half of the float32 file
    assert cases[fmt]["size_bytes"] < 0.5 * cases["float32"]["size_bytes"], fmt
  targets = results["targets"]
  assert len(targets) == 4 and all(t["passed"] == (t["measured"] >= t["required"]) for t in targets)
  float32 = cases["float32"]
  assert targets[0]["measured"] == pytest.approx(float32["peer_ms"] / float32["ours_ms"])
  assert targets[3]["measured"] == pytest.approx(float32["ours_ms"] / cases["qat_int8"]["ours_ms"])
  assert re.search(r"^\| qat_int8 TFLite at least 2x faster .* \| (pass|FAIL) \|$", out, re.M), out


def test_device_targets_pass_and_fail():
  import device_targets  # pylint: disable=g-import-not-at-top
  result = lambda ours, peer: compare.Result("case", ours, peer, 1, None, {})
  targets = device_targets.check({"float32": result(0.010, 0.012), "dynamic_int8": result(0.004, 1),
                                  "full_int8": result(0.006, 1)})
  assert [(round(t.measured, 3), t.passed) for t in targets] == [(1.2, True), (2.5, True),
                                                                 (1.667, False)]
  assert device_targets.check({"float32": result(0.02, 0.01)})[0].passed is False
  assert device_targets.check({"dynamic_int8": result(0.004, 1)}) == []  # nothing to compare with


def test_benchmark_exports_have_trained_like_norms_that_xnnpack_takes():
  """The random-weight benchmark models' norms are off their initial 1 and 0: at init the converter
  drops each multiply by ones and XNNPACK leaves the int8 ADD of an all-zero offset to the builtin
  kernel, a cost no trained model has (bench/tflite_models.py)."""
  import tflite_models  # pylint: disable=g-import-not-at-top
  from mobilebert.export import tflite_ops  # pylint: disable=g-import-not-at-top
  model = tflite_models.TFLite(STUDENT, 8, "full_int8", threads=1)
  with open(model.path, "rb") as f:
    rows = tflite_ops.op_report(f.read()).rows
  count = lambda op, field="count": sum(getattr(r, field) for r in rows if r.op == op)
  # One multiply per NoNorm (embeddings, and per layer: bottleneck input, attention, each FFN's output
  # and the layer's output), none of them dropped; every ADD runs on XNNPACK.
  assert count("MUL") >= 1 + 2 * (3 + 2), rows
  assert count("ADD", "delegated") == count("ADD"), rows


PERF_REPORT = """# Samples: 17K of event 'cpu-clock:ppp'
#
    22.41%  [.] tflite::optimized_ops::Softmax<signed char, signed char>           -      -
    20.98%  [.] xnn_qs8_qc8w_gemm_minmax_fp32_ukernel_16x64c4__avx512amx
     6.91%  [.] thread_main
     6.41%  [.] tflite::reference_ops::RunSelectOp<bool, unsigned char>
     3.61%  [k] _raw_spin_unlock_irqrestore
     0.19%  [.] _PyEval_EvalFrameDefault
"""


def test_profile_groups_perf_symbols_by_who_runs_them():
  import profile_tflite  # pylint: disable=g-import-not-at-top
  kernels = profile_tflite.parse_report(PERF_REPORT)
  assert [(k.symbol, round(k.share, 4), k.group) for k in kernels] == [
      ("tflite::optimized_ops::Softmax<signed char, signed char>", 0.2241, "builtin kernels"),
      ("xnn_qs8_qc8w_gemm_minmax_fp32_ukernel_16x64c4__avx512amx", 0.2098, "XNNPACK"),
      ("thread_main", 0.0691, "thread pool"),
      ("tflite::reference_ops::RunSelectOp<bool, unsigned char>", 0.0641, "builtin kernels"),
      ("[k] _raw_spin_unlock_irqrestore", 0.0361, "thread pool"),
      ("_PyEval_EvalFrameDefault", 0.0019, "other")]


def test_profile_tflite_shows_the_builtin_softmax_of_the_integer_only_model(capsys):
  """bench/profile_tflite.py end to end on the tiny student: the integer-only model spends time in
  builtin kernels (its int8 softmax, select), the float-softmax one in none."""
  import profile_tflite  # pylint: disable=g-import-not-at-top
  if shutil.which("perf") is None:
    pytest.skip("perf (linux-tools) is not installed")
  code = profile_tflite.main(["--config", STUDENT, "--seq", "64", "--seconds", "1", "--threads", "1",
                              "--formats", "full_int8,int8_float_softmax"])
  captured = capsys.readouterr()
  if code != 0 and "perf record" in captured.err:
    pytest.skip(f"perf may not sample here: {captured.err.strip()}")
  assert code == 0, captured.err
  rows = _profile_rows(captured.out)
  assert set(rows) == {"full_int8.tflite", "int8_float_softmax.tflite"}, captured.out
  assert all(r[0] > 0 and 0.99 <= sum(r[1:]) / 100 <= 1.01 for r in rows.values()), rows
  builtin = profile_tflite.GROUPS.index("builtin kernels") + 1
  # Measured (1 thread): 50% and 0.2-0.3%.
  assert rows["full_int8.tflite"][builtin] > 20 and rows["int8_float_softmax.tflite"][builtin] < 5
  assert re.search(r"`tflite::\w+::Softmax<signed char, signed char>` \| builtin kernels",
                   captured.out), captured.out


def _profile_rows(text):
  """{model: [batch-1 ms, group shares in %]} of profile_tflite's first table."""
  rows = {}
  for line in text.splitlines():
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if line.startswith("| ") and cells[0].endswith(".tflite") and len(cells) == 6:
      rows[cells[0]] = [float(c.rstrip("%")) for c in cells[1:]]
  return rows


@pytest.mark.parametrize("flags, vendor, hidden, name", [
    (["avx2", "avx512f", "fma"], "GenuineIntel", "", "avx512-intel"),
    (["avx2", "fma"], "AuthenticAMD", "", "avx2-amd"),
    (["avx2", "avx512f", "avx512_vnni", "avx_vnni", "fma"], "AuthenticAMD", "avx512,avx_vnni,amx",
     "avx2-amd-avx512-hidden"),
    ([], "CentaurHauls", "", "other-other")])
def test_cpu_kind_and_vendor_name_the_results_file(monkeypatch, flags, vendor, hidden, name):
  import machine  # pylint: disable=g-import-not-at-top
  fields = {"flags": " ".join(flags), "vendor_id": vendor}
  monkeypatch.setattr(machine, "_cpuinfo_field", fields.get)
  monkeypatch.setenv(machine.HIDDEN_FEATURES_ENV, hidden)
  assert machine.results_name() == name
  assert machine.cpu_kind() == name.split("-")[0]
  assert not any(f.startswith(tuple(hidden.split(","))) for f in machine.cpu_flags() if hidden)


def test_bench_model_refuses_unknown_tflite_formats(capsys):
  import bench_model  # pylint: disable=g-import-not-at-top
  with pytest.raises(SystemExit):
    bench_model.main(["--config", STUDENT, "--tflite", "--tflite_variants", "float32,int4"])
  assert "--tflite_variants: ['int4'] not in" in capsys.readouterr().err


def test_bench_model_memory_reports_the_peak_rss_of_each_side(fake_importable, monkeypatch, capsys):
  """The --memory plumbing (the models are stand-ins: the real ones run in the test above)."""
  del fake_importable
  import bench_model  # pylint: disable=g-import-not-at-top
  side = compare.Side("test_bench:FakeModel", {})
  monkeypatch.setattr(bench_model, "classifier_sides", lambda args, batch, training: (side, side))
  bench_model.main(["--config", STUDENT, "--memory", "--steps", "1"])
  out = capsys.readouterr().out
  match = re.search(r"^\| peak RSS MB \| (\d+) \| (\d+) \| (\d+\.\d+)x \|$", out, re.M)
  assert match and all(float(g) > 0 for g in match.groups()), out


def test_bench_distillation_runs(capsys):
  import bench_distillation  # pylint: disable=g-import-not-at-top
  bench_distillation.main(["--student_config", STUDENT, "--teacher_config", TEACHER, *QUICK,
                           "--batch", "2"])
  _check_report(capsys.readouterr().out, ["distillation step, batch 2"])


def test_run_case_times_both_sides_in_fresh_workers_per_case(fake_importable):
  """bench_model's default (its test above runs with --reuse_workers, which starts faster)."""
  del fake_importable
  side = compare.Side("test_bench:FakeModel", {"seconds": 0.001})
  with compare.Workers(reuse=False) as pool:
    first = compare.run_case(pool, "fake", side, side, sequences=4, steps=2, rounds=3)
    second = compare.run_case(pool, "fake again", side, side, sequences=4, steps=2, rounds=1)
  for result in (first, second):
    assert result.ours >= 0.001 and result.peer >= 0.001  # each step sleeps 1 ms at least
    assert result.flops == 1e6 and result.sequences == 4
  assert "| fake again |" in compare.report("fake", [first, second], peak_gflops=1.0)


def test_worker_reports_build_errors_with_the_traceback(fake_importable):
  del fake_importable
  with workers.Worker("fake side") as worker:
    with pytest.raises(workers.WorkerError, match=r"(?s)fake side.*refuses to build"):
      worker.build("test_bench:FakeModel", fail=True).wait_ready()
    with pytest.raises(workers.WorkerError, match="No module named 'no_such_module'"):
      worker.build("no_such_module:Model").wait_ready()
    # The worker survives a failed build.
    assert worker.build("test_bench:FakeModel").run(2) > 0


# -- our distillation losses vs the peer's ---------------------------------------------------------
def test_peer_transfer_losses_equal_ours_on_the_same_tensors():
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  import peer  # pylint: disable=g-import-not-at-top
  from pretrain import distillation  # pylint: disable=g-import-not-at-top
  rng = np.random.RandomState(0)
  hidden = [rng.normal(1.0, 2.0, size=(2, 5, 8)).astype(np.float32) for _ in range(2)]
  mask_adder = np.array([0, 0, 0, -10000, -10000], np.float32)  # the last two keys are padding
  scores = [rng.normal(size=(2, 3, 5, 5)).astype(np.float32) + mask_adder for _ in range(2)]
  factors = (100.0, 1.0, 5000.0, 5.0)
  with tf.Graph().as_default(), tf.Session() as session:
    ours = session.run(distillation.layer_transfer_losses(
        *map(tf.constant, hidden + scores), distillation.TransferLosses(*factors)))
  probs = [torch.softmax(torch.from_numpy(s), dim=-1) for s in scores]
  theirs = peer.layer_transfer_losses(*map(torch.from_numpy, hidden), *probs, factors)
  assert all(o > 0 for o in ours)
  np.testing.assert_allclose([t.item() for t in theirs], ours, rtol=2e-5)


def test_peer_distillation_step_loss_equals_ours_on_the_same_weights():
  """The loss both benchmark sides differentiate, in stage 0 and 1, with our weights in both."""
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  import bench_distillation  # pylint: disable=g-import-not-at-top
  import peer  # pylint: disable=g-import-not-at-top
  from mobilebert.config import BertConfig  # pylint: disable=g-import-not-at-top
  from mobilebert.export import hf_mapping  # pylint: disable=g-import-not-at-top
  args = dict(seq=8, batch=2, factors=bench_distillation.RELEASE_FACTORS,
              learning_rate=bench_distillation.RELEASE_LEARNING_RATE, threads=1)
  ours = bench_distillation.Ours(STUDENT, TEACHER, **args)
  graph = ours.session.graph
  variables = graph.get_collection("trainable_variables")
  values = dict(zip([v.op.name for v in variables], ours.session.run(variables)))
  with graph.as_default():
    step = tf.placeholder(tf.int64, [])
    set_step = tf.train.get_global_step(graph).assign(step)
  student_state = hf_mapping.convert_state_dict(
      values, BertConfig.from_json_file(STUDENT), "base")
  teacher_state = hf_mapping.convert_state_dict(
      {n[len("teacher/"):]: v for n, v in values.items() if n.startswith("teacher/")},
      BertConfig.from_json_file(TEACHER), "base")
  for stage in (0, 1):
    ours.session.run(set_step, {step: stage * bench_distillation.STEPS_PER_STAGE})
    ours_loss = ours.session.run(ours.loss, ours.feed)
    theirs = peer.Distillation(compare.hf_fields(STUDENT), compare.hf_fields(TEACHER), stage=stage,
                               **args)
    for model, state in ((theirs.student, student_state), (theirs.teacher, teacher_state)):
      missing, unexpected = model.load_state_dict(
          {k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
      assert not unexpected and all(k.startswith("pooler.") for k in missing), (missing, unexpected)
    peer_loss = sum(theirs.losses()).item()
    assert ours_loss > 0.1 and peer_loss == pytest.approx(ours_loss, rel=1e-5), stage
  ours.close()
