"""bench/bench_quantization.py end to end on a slice of ChnSentiCorp with the tiny student: every
format's entry (trained, exported, scored on test, timed), the table, resuming, and bad input.

Accuracies and latencies are not checked against numbers (a few training steps, a shared machine);
what is checked is where they come from and what must hold whatever the weights.
"""

import json
import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import bench_quantization  # noqa: E402  pylint: disable=g-import-not-at-top
import quantization_steps  # noqa: E402  pylint: disable=g-import-not-at-top

STUDENT = str(ROOT / "config" / "tiny_student_zh.json")
FORMATS = ("float32", "qat_int8")  # full_int8 only differs from qat_int8 by its checkpoint
ROWS = {"train": 48, "dev": 20, "test": 25}


@pytest.fixture(name="slice_dir", scope="module")
def fixture_slice_dir(tmp_path_factory):
  """The first rows of each split of the shipped ChnSentiCorp."""
  data = tmp_path_factory.mktemp("chnsenticorp")
  for split, rows in ROWS.items():
    lines = (ROOT / "data" / "chnsenticorp" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()
    (data / f"{split}.tsv").write_text("\n".join(lines[:rows + 1]) + "\n", encoding="utf-8")
  return data


def _argv(output_dir, slice_dir):
  return ["--output_dir", str(output_dir), "--tasks", "chnsenticorp", "--chnsenticorp_data_dir",
          str(slice_dir), "--seeds", "1", "--formats", ",".join(FORMATS), "--bert_config_file",
          STUDENT, "--num_train_steps", "4", "--train_batch_size", "8", "--threads", "1",
          "--latency_rounds", "2", "--latency_steps", "2"]


@pytest.fixture(name="run", scope="module")
def fixture_run(tmp_path_factory, slice_dir):
  output_dir = tmp_path_factory.mktemp("quant")
  return output_dir, bench_quantization.main(_argv(output_dir, slice_dir))


def test_every_format_is_trained_exported_scored_on_test_and_timed(run):
  output_dir, results = run
  assert json.loads((output_dir / "results.json").read_text()) == json.loads(json.dumps(results))
  entries = {e["format"]: e for e in results["entries"]}
  assert list(entries) == list(FORMATS)
  for fmt, entry in entries.items():
    # Scored on the 25 test rows (not the 20 dev rows): a whole number of test examples.
    assert entry["test_accuracy"] * ROWS["test"] == pytest.approx(
        round(entry["test_accuracy"] * ROWS["test"])), fmt
    assert entry["latency_ms"] > 0 and entry["runtime"] in ("litert", "tensorflow")
    assert "--do_test" in entry["commands"]["score"]
    assert f"model.{fmt}.tflite" in entry["commands"]["export"]
    # The exported checkpoint is a trained one, chosen on dev.
    assert int(entry["checkpoint"].rsplit("-", 1)[1]) > 0
    assert entry["checkpoint_dev_accuracy"] * ROWS["dev"] == pytest.approx(
        round(entry["checkpoint_dev_accuracy"] * ROWS["dev"]))
  assert "--use_quantized_training" in entries["qat_int8"]["commands"]["train"]
  assert "--use_quantized_training" not in entries["float32"]["commands"]["train"]
  assert "--tflite_variant=full_int8" in entries["qat_int8"]["commands"]["export"]
  assert "/qat/" in entries["qat_int8"]["checkpoint"] and "/float/" in entries["float32"]["checkpoint"]
  # 8-bit weights: well under half of the float32 file.
  assert entries["qat_int8"]["size_bytes"] < 0.5 * entries["float32"]["size_bytes"]


def test_summary_and_table(run):
  output_dir, results = run
  summary = results["summary"]["chnsenticorp"]
  assert list(summary) == list(FORMATS)
  for fmt, stats in summary.items():
    entry = next(e for e in results["entries"] if e["format"] == fmt)
    assert stats["seeds"] == [1] and stats["test_accuracy_std"] == 0.0
    assert stats["test_accuracy_mean"] == entry["test_accuracy"]
    assert stats["change_vs_float32_mean"] == pytest.approx(
        entry["test_accuracy"] - summary["float32"]["test_accuracy_mean"])
  table = (output_dir / "results.md").read_text()
  assert table.startswith("CPU: ") and "bench/bench_quantization.py --output_dir" in table
  assert table.count("| chnsenticorp (length 64, 1 seeds) |") == len(FORMATS)


def test_a_second_run_reuses_every_finished_step(run, slice_dir, monkeypatch):
  output_dir, results = run

  def no_command(args, log_path):
    raise AssertionError(f"ran again: {args} ({log_path})")

  monkeypatch.setattr(quantization_steps, "run_command", no_command)
  again = bench_quantization.main(_argv(output_dir, slice_dir))
  assert again["entries"] == results["entries"]


def test_bad_inputs(slice_dir, tmp_path, capsys):
  with pytest.raises(SystemExit):
    bench_quantization.main(["--output_dir", str(tmp_path), "--tasks", "xnli"])
  assert "--tasks: 'xnli' is not one of" in capsys.readouterr().err
  with pytest.raises(SystemExit):
    bench_quantization.main(["--output_dir", str(tmp_path), "--formats", "int4"])
  assert "--formats: 'int4' is not one of" in capsys.readouterr().err
  with pytest.raises(SystemExit):
    bench_quantization.main(["--output_dir", str(tmp_path), "--bert_config_file",
                             str(tmp_path / "missing.json")])
  assert "missing.json: not found" in capsys.readouterr().err
  from mobilebert import atomic_io  # pylint: disable=g-import-not-at-top
  with pytest.raises(atomic_io.UnsafeOutputError, match="holds the input --chnsenticorp_data_dir"):
    bench_quantization.main(_argv(os.path.dirname(slice_dir), slice_dir))


def test_summary_over_seeds_pairs_each_format_with_float32_of_its_seed():
  import quantization_table  # pylint: disable=g-import-not-at-top
  entries = [{"task": "t", "seed": seed, "format": fmt, "seq_length": 8, "test_accuracy": accuracy,
              "size_bytes": size, "latency_ms": 1.0 + seed, "load_average_1min": 2.0 * seed}
             for seed, fmt, accuracy, size in [(1, "float32", 0.80, 400), (1, "qat_int8", 0.78, 100),
                                               (2, "float32", 0.60, 400), (2, "qat_int8", 0.59, 100)]]
  stats = quantization_table.summarize(entries, ["float32", "qat_int8"])["summary"]["t"]["qat_int8"]
  assert stats["seeds"] == [1, 2] and stats["test_accuracy_mean"] == pytest.approx(0.685)
  assert stats["test_accuracy_std"] == pytest.approx(0.13435, abs=1e-5)  # seeds differ a lot ...
  assert stats["change_vs_float32_mean"] == pytest.approx(-0.015)  # ... the format's cost little
  assert stats["change_vs_float32_std"] == pytest.approx(0.00707, abs=1e-5)
  assert stats["latency_ms_median"] == 2.5 and stats["load_average_1min_max"] == 4.0


def test_the_exported_checkpoint_is_the_best_trained_one_on_disk(tmp_path):
  entries = []
  for step, accuracy in [(0, 0.9), (2, 0.7), (4, 0.7), (6, 0.8)]:
    path = tmp_path / f"model.ckpt-{step}"
    if step != 6:  # deleted by --keep_checkpoint_max
      (tmp_path / f"model.ckpt-{step}.index").write_text("")
    entries.append({"checkpoint": str(path), "global_step": step, "accuracy": accuracy})
  history = tmp_path / "eval_history.json"
  history.write_text(json.dumps({"checkpoints": entries}))
  assert bench_quantization.best_trained_checkpoint(str(history))["global_step"] == 4
  history.write_text(json.dumps({"checkpoints": entries[:1]}))
  with pytest.raises(bench_quantization.BenchError, match="no trained checkpoint"):
    bench_quantization.best_trained_checkpoint(str(history))


def test_a_refused_full_integer_export_is_converted_unverified_and_said_so(run, slice_dir,
                                                                          monkeypatch):
  output_dir, results = run
  from mobilebert.export import tflite_eval  # pylint: disable=g-import-not-at-top
  error = "export: error: TFLite full_int8 model does not match the TensorFlow graph: pooled_output"

  def refused(args, log_path):
    with open(log_path, "w") as log:
      log.write(f"{' '.join(args)}\n{error}\n")
    raise bench_quantization.BenchError(f"command failed (exit 2), see {log_path}")

  monkeypatch.setattr(quantization_steps, "run_command", refused)
  bench = bench_quantization.Bench(bench_quantization.parse_args(_argv(output_dir, slice_dir)))
  bench.prepare_data()
  checkpoint = next(e for e in results["entries"] if e["format"] == "qat_int8")["checkpoint"]
  path, _, verification = bench.export("chnsenticorp", 9, "qat_int8", checkpoint)
  assert verification == error
  runner = tflite_eval.TFLiteRunner(path)
  assert runner.seq_length == 64 and set(runner.output_names) >= {"probabilities"}
  with pytest.raises(bench_quantization.BenchError, match="command failed"):
    bench.export("chnsenticorp", 9, "float32", checkpoint)  # only integer-only models fall back


def test_remeasure_latency_times_the_same_files_again_and_redoes_nothing_else(run, slice_dir,
                                                                              monkeypatch):
  """(Last: it rewrites the fixture's entries.)"""
  output_dir, results = run

  def no_command(args, log_path):
    raise AssertionError(f"ran again: {args} ({log_path})")

  monkeypatch.setattr(quantization_steps, "run_command", no_command)
  again = bench_quantization.main(_argv(output_dir, slice_dir) + ["--remeasure_latency"])
  for before, after in zip(results["entries"], again["entries"]):
    assert after["latency_ms"] > 0 and after["latency_ms"] != before["latency_ms"]
    unchanged = ("test_accuracy", "size_bytes", "checkpoint", "commands", "export_verification")
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}
