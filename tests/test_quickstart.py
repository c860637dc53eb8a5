"""The quick start: the stage runner's resume rules, and the whole recipe at the tiny size end to end."""

import glob
import hashlib
import json
import os
import subprocess
import sys

import pytest

from quickstart import sizes
from quickstart.stages import Stage, StageError, StageRunner, finished_seconds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- the stage runner ------------------------------------------------------------------------------
def _python(code):
  return [sys.executable, "-c", code]


def test_finished_stages_are_skipped_and_failures_leave_no_marker(tmp_path):
  calls = []
  ok = Stage("first", "writes a file", [_python(f"open({str(tmp_path / 'a')!r}, 'w').write('1')"),
                                         lambda: calls.append("first") or ("a", "result"),
                                         lambda: _python("print('decided at run time')")], cost=1)
  bad = Stage("second", "fails", [_python("import sys; print('boom'); sys.exit(3)")], cost=1)
  lines = []
  runner = StageRunner(str(tmp_path / "out"), log=lines.append)
  with pytest.raises(StageError, match=r"stage second failed \(exit code 3\)(.|\n)*boom"):
    runner.run([ok, bad])
  assert runner.is_done(ok) and not runner.is_done(bad)
  assert calls == ["first"]
  assert "boom" in open(tmp_path / "out" / "logs" / "second.log").read()
  # A callable's result is not a command unless it is an argv list; that one ran.
  assert "decided at run time" in open(tmp_path / "out" / "logs" / "first.log").read()

  fixed = Stage("second", "now works", [lambda: calls.append("second")], cost=1)
  timings = runner.run([ok, fixed])
  assert calls == ["first", "second"]  # the finished stage did not run again
  assert list(timings) == ["second"]
  assert list(finished_seconds(str(tmp_path / "out"))) == ["first", "second"]
  assert any("1 of 2 stages finished earlier" in line for line in lines)


def test_stage_names_must_be_unique(tmp_path):
  stage = Stage("same", "", [], cost=1)
  with pytest.raises(ValueError, match="unique"):
    StageRunner(str(tmp_path)).run([stage, stage])


def test_sizes_scale_every_step_count():
  small = sizes.get("small")
  doubled = sizes.get("small", 2.0)
  assert doubled.teacher_steps == 2 * small.teacher_steps
  assert doubled.student_steps == 2 * small.student_steps
  assert doubled.distill_steps == 2 * small.distill_steps
  assert doubled.finetune_steps == 2 * small.finetune_steps
  assert doubled.max_seq_length == small.max_seq_length
  with pytest.raises(ValueError, match="--size=huge"):
    sizes.get("huge")
  with pytest.raises(ValueError, match="--steps_scale"):
    sizes.get("small", 0)


def test_the_student_trains_as_many_steps_as_the_control_at_every_size():
  from quickstart import recipe
  for size in sizes.SIZES.values():
    paths = recipe.Paths("/out", ROOT)
    stages = {s.name: s for s in recipe.pretraining_stages(size, paths)}
    student = stages["student"].commands[0]
    control = stages["control"].commands[0]
    flag = lambda argv, name: next(a.split("=", 1)[1] for a in argv if a.startswith(f"--{name}="))
    assert (int(flag(student, "num_distill_steps")) + int(flag(student, "num_train_steps"))
            == int(flag(control, "num_train_steps")) == size.student_steps)
    # Same data, batch and learning rate for both.
    for name in ("input_file", "train_batch_size", "learning_rate", "max_seq_length", "rand_seed"):
      assert flag(student, name) == flag(control, name), name
    layers = json.load(open(os.path.join(ROOT, size.student_config)))["num_hidden_layers"]
    teacher = json.load(open(os.path.join(ROOT, size.teacher_config)))
    student_config = json.load(open(os.path.join(ROOT, size.student_config)))
    assert student_config["hidden_size"] == teacher["hidden_size"]
    assert layers == teacher["num_hidden_layers"]  # layer l learns from teacher layer l
    assert size.distill_steps >= layers


# -- the recipe, tiny, end to end ------------------------------------------------------------------
def _quickstart(output_dir, *args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run([sys.executable, "-m", "quickstart", f"--output_dir={output_dir}", *args],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)


def _digests(directory):
  return {p: hashlib.sha256(open(p, "rb").read()).hexdigest()
          for p in glob.glob(os.path.join(directory, "**", "model.ckpt-*"), recursive=True)}


@pytest.fixture(name="tiny_run", scope="module")
def fixture_tiny_run(tmp_path_factory):
  output_dir = str(tmp_path_factory.mktemp("quickstart") / "out")
  result = _quickstart(output_dir, "--size=tiny")
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  return output_dir, result.stdout


def test_tiny_recipe_reports_every_model(tiny_run):
  output_dir, stdout = tiny_run
  with open(os.path.join(output_dir, "results.json")) as f:
    results = json.load(f)
  assert set(results["models"]) == {"teacher", "student", "control"}
  from mobilebert import summary
  from mobilebert.config import BertConfig
  for name, model in results["models"].items():
    config = BertConfig.from_json_file(os.path.join(ROOT, model["config"]))
    assert model["backbone_params"] == summary.summarize(config)["backbone_params"]
    for key in ("heldout_mlm_accuracy", "thucnews_dev_accuracy", "thucnews_test_accuracy"):
      assert 0.0 <= model[key] <= 1.0, (name, key)
    assert model["latency_ms"] > 0
  # The numbers come from the runs' own files.
  eval_results = open(os.path.join(output_dir, "student", "eval_results.txt")).read()
  assert f"masked_lm_accuracy = {results['models']['student']['heldout_mlm_accuracy']}" in eval_results
  markdown = open(os.path.join(output_dir, "results.md")).read()
  assert markdown in stdout  # printed at the end, too
  for label in ("BERT teacher", "MobileBERT student, distilled", "control (MLM only)"):
    assert label in markdown
  assert ("beats the control" in markdown) != ("does NOT beat the control" in markdown)
  with open(os.path.join(output_dir, "curves.png"), "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  # The student really went through the progressive transfer, layer by layer, before distilling.
  assert os.path.isdir(os.path.join(output_dir, "student", "warmup"))
  assert "[1/12] corpus" in stdout and "about" in stdout and "left in all" in stdout


def test_tiny_recipe_resumes_without_redoing_work(tiny_run):
  output_dir, _ = tiny_run
  before = _digests(output_dir)
  again = _quickstart(output_dir, "--size=tiny")
  assert again.returncode == 0, again.stderr[-3000:]
  assert "12 of 12 stages finished earlier" in again.stdout

  # An interrupted fine-tuning stage (no marker) runs again and continues from its checkpoints.
  os.remove(os.path.join(output_dir, ".stages", "finetune_control.done"))
  os.remove(os.path.join(output_dir, ".stages", "report.done"))
  os.remove(os.path.join(output_dir, "results.md"))
  resumed = _quickstart(output_dir, "--size=tiny")
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert "[10/12] finetune_control" in resumed.stdout and "[3/12] teacher" not in resumed.stdout
  assert os.path.exists(os.path.join(output_dir, "results.md"))
  assert _digests(output_dir) == before  # no checkpoint rewritten, none added


def test_other_settings_refuse_an_existing_output_dir(tiny_run):
  output_dir, _ = tiny_run
  result = _quickstart(output_dir, "--size=small")
  assert result.returncode != 0
  assert "other settings" in result.stderr and "size" in result.stderr


def test_a_missing_vocab_file_is_named_before_anything_runs(tmp_path, capsys):
  from quickstart import __main__ as quickstart_main
  output_dir = tmp_path / "out"
  code = quickstart_main.main([f"--output_dir={output_dir}", f"--vocab_file={tmp_path / 'nope.txt'}"])
  assert code == 2
  assert "--vocab_file=" in capsys.readouterr().err
  assert not output_dir.exists()
