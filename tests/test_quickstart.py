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


def test_a_short_stage_does_not_rescale_the_time_left(tmp_path):
  lines = []
  quick = Stage("quick", "far quicker than its cost", [lambda: None], cost=20)
  long = Stage("long", "", [lambda: None], cost=600)
  StageRunner(str(tmp_path), log=lines.append).run([quick, long])
  assert "[2/2] long:  (about 10 min left in all)" in lines


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
  assert [t.num_train_steps for t in doubled.finetuning] == [
      2 * t.num_train_steps for t in small.finetuning]
  assert [t.learning_rate for t in doubled.finetuning] == [t.learning_rate for t in small.finetuning]
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


def test_the_student_is_a_real_compression_at_every_size():
  from mobilebert import summary
  from mobilebert.config import BertConfig
  for size in sizes.SIZES.values():
    teacher = BertConfig.from_json_file(os.path.join(ROOT, size.teacher_config))
    student = BertConfig.from_json_file(os.path.join(ROOT, size.student_config))
    params = lambda config: summary.summarize(config)["backbone_params"]
    assert params(student) <= 0.3 * params(teacher), size.name
    # MobileBERT's way: a factorized embedding widened by the trigram input, a bottleneck inside
    # each block of the teacher's width, stacked FFNs.
    assert student.embedding_size < student.hidden_size and student.trigram_input, size.name
    assert student.use_bottleneck and student.intra_bottleneck_size < student.hidden_size, size.name
    assert student.num_feedforward_networks > 1, size.name


def _flag(argv, name):
  values = [a.split("=", 1)[1] for a in argv if a.startswith(f"--{name}=")]
  assert len(values) <= 1, (name, values)
  return values[0] if values else None


@pytest.mark.parametrize("supported", [False, True])
def test_every_model_task_and_seed_is_its_own_run(monkeypatch, supported):
  from quickstart import finetuning, recipe
  monkeypatch.setattr(finetuning, "task_distillation_supported", lambda: supported)
  size = sizes.get("small")
  paths = recipe.Paths("/out", ROOT)
  stages = recipe.stages(size, paths, "/vocab.txt", "cmd", num_seeds=3)
  runs = {s.name: s for s in stages if s.name.startswith("finetune_")}
  models = ["teacher", "student", "control"] + (["task_distilled"] if supported else [])
  seeds = [12345, 12346, 12347]
  assert len(runs) == len(size.finetuning) * len(models) * len(seeds)
  names = [s.name for s in stages]
  output_dirs = set()
  for task in size.finetuning:
    for seed in seeds:
      reference = runs[f"finetune_{task.task_name}_student_seed{seed}"].commands[0]
      for model in models:
        stage = runs[f"finetune_{task.task_name}_{model}_seed{seed}"]
        train, test = stage.commands[0], stage.commands[2]
        assert _flag(train, "rand_seed") == _flag(test, "rand_seed") == str(seed)
        assert _flag(train, "output_dir") == _flag(test, "output_dir")
        output_dirs.add(_flag(train, "output_dir"))
        assert "--do_test" in test and "--do_test" not in train and "--do_train" not in test
        # The same settings for every model: only the model, its output, its teacher and the
        # learning rate dev chose for it differ.
        for name in ("task_name", "labels", "num_train_steps", "train_batch_size",
                     "max_seq_length", "data_dir", "tfrecord_dir"):
          assert _flag(train, name) == _flag(reference, name), (model, name)
        assert float(_flag(train, "learning_rate")) == task.learning_rate_for(model)
        assert _flag(train, "num_train_steps") == str(task.num_train_steps)
      if supported:
        distilled = runs[f"finetune_{task.task_name}_task_distilled_seed{seed}"].commands[0]
        teacher = runs[f"finetune_{task.task_name}_teacher_seed{seed}"].commands[0]
        assert _flag(distilled, "init_checkpoint") == paths.model("student")
        assert _flag(distilled, "bert_config_file") == _flag(reference, "bert_config_file")
        # Taught by the teacher fine-tuned with the same seed, which runs first.
        assert _flag(distilled, "teacher_init_checkpoint") == _flag(teacher, "output_dir")
        assert _flag(distilled, "bert_teacher_config_file") == _flag(teacher, "bert_config_file")
        for name in ("distill_ground_truth_ratio", "distill_temperature", "hidden_distill_factor",
                     "attention_distill_factor"):
          assert _flag(distilled, name) is not None, name
        assert (names.index(f"finetune_{task.task_name}_teacher_seed{seed}")
                < names.index(f"finetune_{task.task_name}_task_distilled_seed{seed}"))
      else:
        assert all(_flag(s.commands[0], "teacher_init_checkpoint") is None for s in runs.values())
  assert len(output_dirs) == len(runs)


def _history(path, accuracies):
  path.write_text(json.dumps({"checkpoints": [
      {"global_step": step, "checkpoint": f"model.ckpt-{step}", "accuracy": accuracy}
      for step, accuracy in accuracies.items()]}))


def test_test_accuracy_is_read_at_the_checkpoint_dev_was_read_at(tmp_path):
  from quickstart import recipe, report
  paths = recipe.Paths(str(tmp_path), ROOT)
  for seed, (dev, test) in {1: (0.5, 0.4), 2: (0.7, 0.6)}.items():
    run_dir = tmp_path / "thucnews" / "student" / f"seed{seed}"
    run_dir.mkdir(parents=True)
    _history(run_dir / "dev_history.json", {0: 0.9, 30: dev})  # an early checkpoint scoring better
    _history(run_dir / "test_history.json", {0: 0.95, 30: test})
  thucnews = sizes.Finetuning("thucnews", 48, 30, 1e-3)
  result = report.finetuned_results(paths, thucnews, "student", [1, 2])
  assert result["metric"] == "accuracy"
  assert [r["test_accuracy"] for r in result["per_seed"]] == [0.4, 0.6]
  assert result["dev_accuracy"]["mean"] == pytest.approx(0.6)
  assert result["test_accuracy"]["mean"] == pytest.approx(0.5)
  assert result["test_accuracy"]["std"] == pytest.approx(0.1 * 2 ** 0.5)  # sample std
  _history(tmp_path / "thucnews" / "student" / "seed2" / "test_history.json", {0: 0.95})
  with pytest.raises(ValueError, match="no score at step 30"):
    report.finetuned_results(paths, thucnews, "student", [1, 2])


# -- the recipe, tiny, end to end ------------------------------------------------------------------
def _quickstart(output_dir, *args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run([sys.executable, "-m", "quickstart", f"--output_dir={output_dir}", *args],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)


def _digests(directory):
  return {p: hashlib.sha256(open(p, "rb").read()).hexdigest()
          for p in glob.glob(os.path.join(directory, "**", "model.ckpt-*"), recursive=True)}


# Two seeds keep the run short; the default is three.
TINY_ARGS = ("--size=tiny", "--finetune_seeds=2")


def _stage_names():
  from quickstart import recipe
  return [s.name for s in recipe.stages(sizes.get("tiny"), recipe.Paths("/out", ROOT), "v", "c", 2)]


@pytest.fixture(name="tiny_run", scope="module")
def fixture_tiny_run(tmp_path_factory):
  output_dir = str(tmp_path_factory.mktemp("quickstart") / "out")
  result = _quickstart(output_dir, *TINY_ARGS)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  return output_dir, result.stdout


@pytest.mark.xdist_group("tiny_quickstart")  # one worker runs the 7-min fixture, once
def test_tiny_recipe_reports_every_model(tiny_run):
  from quickstart import finetuning
  output_dir, stdout = tiny_run
  with open(os.path.join(output_dir, "results.json")) as f:
    results = json.load(f)
  # The fourth row wherever run_classifier.py can distil a fine-tuned teacher.
  expected = {"teacher", "student", "control"}
  if finetuning.task_distillation_supported():
    expected.add("task_distilled")
  assert set(results["models"]) == expected
  assert results["finetune_seeds"] == [12345, 12346]
  from mobilebert import summary
  from mobilebert.config import BertConfig
  for name, model in results["models"].items():
    config = BertConfig.from_json_file(os.path.join(ROOT, model["config"]))
    assert model["backbone_params"] == summary.summarize(config)["backbone_params"]
    assert 0.0 <= model["heldout_mlm_accuracy"] <= 1.0, name
    assert model["latency_ms"] > 0
    assert set(model["tasks"]) == {"thucnews", "peoples_daily_ner"}
    for task, scores in model["tasks"].items():
      metric = scores["metric"]
      assert metric == {"thucnews": "accuracy", "peoples_daily_ner": "f1"}[task]
      assert [r["seed"] for r in scores["per_seed"]] == [12345, 12346]
      for split in (f"dev_{metric}", f"test_{metric}"):
        values = [r[split] for r in scores["per_seed"]]
        assert all(0.0 <= v <= 1.0 for v in values), (name, task, split)
        assert scores[split]["mean"] == pytest.approx(sum(values) / 2)
        assert scores[split]["std"] == pytest.approx(abs(values[0] - values[1]) / 2 ** 0.5)
      # Each seed's numbers are its own run's, at its last checkpoint.
      for run in scores["per_seed"]:
        run_dir = os.path.join(output_dir, task, name, f"seed{run['seed']}")
        with open(os.path.join(run_dir, "test_history.json")) as f:
          test = {e["global_step"]: e[metric] for e in json.load(f)["checkpoints"]}
        assert run["global_step"] == max(test) and run[f"test_{metric}"] == test[max(test)]
  assert results["models"]["student"]["params_vs_teacher"] <= 0.3
  # The numbers come from the runs' own files.
  eval_results = open(os.path.join(output_dir, "student", "eval_results.txt")).read()
  assert f"masked_lm_accuracy = {results['models']['student']['heldout_mlm_accuracy']}" in eval_results
  markdown = open(os.path.join(output_dir, "results.md")).read()
  assert markdown in stdout  # printed at the end, too
  for label in ("BERT teacher", "MobileBERT student, distilled", "control (MLM only)",
                "THUCNews test", "People's Daily NER test entity F1", " ± ", "chosen on dev"):
    assert label in markdown
  assert ("task distillation moves" in markdown) == ("task_distilled" in expected)
  for task in ("THUCNews", "People's Daily NER"):
    verdict = next(line for line in markdown.splitlines() if line.startswith(f"{task} test:"))
    assert ("beats the control" in verdict) != ("does NOT beat the control" in verdict)
  with open(os.path.join(output_dir, "curves.png"), "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  # The student really went through the progressive transfer, layer by layer, before distilling.
  assert os.path.isdir(os.path.join(output_dir, "student", "warmup"))
  total = len(_stage_names())
  assert f"[1/{total}] corpus" in stdout and "about" in stdout and "left in all" in stdout


@pytest.mark.xdist_group("tiny_quickstart")  # one worker runs the 7-min fixture, once
def test_tiny_recipe_resumes_without_redoing_work(tiny_run):
  output_dir, _ = tiny_run
  before = _digests(output_dir)
  again = _quickstart(output_dir, *TINY_ARGS)
  assert again.returncode == 0, again.stderr[-3000:]
  names = _stage_names()
  assert f"{len(names)} of {len(names)} stages finished earlier" in again.stdout

  # An interrupted fine-tuning stage (no marker) runs again and continues from its checkpoints.
  interrupted = "finetune_peoples_daily_ner_control_seed12346"
  os.remove(os.path.join(output_dir, ".stages", f"{interrupted}.done"))
  os.remove(os.path.join(output_dir, ".stages", "report.done"))
  os.remove(os.path.join(output_dir, "results.md"))
  resumed = _quickstart(output_dir, *TINY_ARGS)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  index = names.index(interrupted) + 1
  assert f"[{index}/{len(names)}] {interrupted}" in resumed.stdout
  assert f"[3/{len(names)}] teacher" not in resumed.stdout
  assert os.path.exists(os.path.join(output_dir, "results.md"))
  assert _digests(output_dir) == before  # no checkpoint rewritten, none added


@pytest.mark.xdist_group("tiny_quickstart")  # one worker runs the 7-min fixture, once
def test_other_settings_refuse_an_existing_output_dir(tiny_run):
  output_dir, _ = tiny_run
  result = _quickstart(output_dir, "--size=small", "--finetune_seeds=2")
  assert result.returncode != 0
  assert "other settings" in result.stderr and "size" in result.stderr
  result = _quickstart(output_dir, "--size=tiny")  # three seeds: other stages, other report
  assert result.returncode != 0
  assert "other settings (finetune_seeds differ" in result.stderr


def test_no_seed_is_refused_before_anything_runs(tmp_path, capsys):
  from quickstart import __main__ as quickstart_main
  output_dir = tmp_path / "out"
  assert quickstart_main.main([f"--output_dir={output_dir}", "--finetune_seeds=0"]) == 2
  assert "--finetune_seeds must be at least 1, got 0" in capsys.readouterr().err
  assert not output_dir.exists()


def test_a_missing_vocab_file_is_named_before_anything_runs(tmp_path, capsys):
  from quickstart import __main__ as quickstart_main
  output_dir = tmp_path / "out"
  code = quickstart_main.main([f"--output_dir={output_dir}", f"--vocab_file={tmp_path / 'nope.txt'}"])
  assert code == 2
  assert "--vocab_file=" in capsys.readouterr().err
  assert not output_dir.exists()


@pytest.mark.xdist_group("tiny_quickstart")  # one worker runs the 7-min fixture, once
def test_sweep_scores_settings_on_dev_only(tiny_run):
  """quickstart.sweep on the finished tiny run: the quick start's own setting reproduces its dev
  score, every run is scored on dev alone, and the best setting is the highest mean."""
  from quickstart import finetuning
  output_dir, _ = tiny_run
  args = ["--output_dir", output_dir, "--task=thucnews", "--models=student",
          "--learning_rates=1e-3,3e-3"]
  result = subprocess.run([sys.executable, "-m", "quickstart.sweep", *args], cwd=ROOT,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), capture_output=True,
                          text=True, timeout=900)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  with open(os.path.join(output_dir, "sweep", "thucnews.json")) as f:
    rows = json.load(f)["models"]["student"]
  assert [r["setting"] for r in rows] == ["lr0.001_steps30", "lr0.003_steps30"]
  # One best row, with the highest mean (the first of equal means: a tiny run can tie).
  assert [r["best"] for r in rows].count(True) == 1
  assert next(r for r in rows if r["best"]) is max(rows, key=lambda r: r["dev"])
  quickstart_run = os.path.join(output_dir, "thucnews", "student", "seed12345", "dev_history.json")
  with open(quickstart_run) as f:
    own = max(json.load(f)["checkpoints"], key=lambda e: e["global_step"])["accuracy"]
  assert rows[0]["per_seed"] == [own]  # same settings and seed as the quick start: same weights
  for history in glob.glob(os.path.join(output_dir, "sweep", "thucnews", "**", "eval_history.json"),
                           recursive=True):
    with open(history) as f:
      assert {e["split"] for e in json.load(f)["checkpoints"]} == {"dev"}
  assert not glob.glob(os.path.join(output_dir, "sweep", "**", "test_history.json"), recursive=True)
  assert "**best**" in open(os.path.join(output_dir, "sweep", "thucnews.md")).read()
  # The task-distilled grid: each ratio:temperature pair is one run with those flags.
  from quickstart import recipe, sweep
  parsed = sweep.parse_args(["--output_dir=x", "--task=thucnews", "--models=task_distilled",
                             "--distill_settings=0.5:1,0:2"])
  size = sizes.get("tiny")
  stages = sweep.sweep_stages(size, recipe.Paths(output_dir, ROOT), "v", size.finetuning[0],
                              [finetuning.TASK_DISTILLED], parsed)
  assert [(float(_flag(s.commands[0], "distill_ground_truth_ratio")),
           float(_flag(s.commands[0], "distill_temperature"))) for s in stages] == [(0.5, 1.0),
                                                                                   (0.0, 2.0)]
  assert sweep.main(["--output_dir", output_dir, "--task=chnsenticorp"]) == 2


@pytest.mark.parametrize("args, message", [
    (["--task=nope"], "--task=nope: expected one of thucnews, peoples_daily_ner"),
    (["--task=thucnews", "--models=student,nope"], "--models: unknown nope"),
    (["--task=thucnews", "--learning_rates=1e-3,fast"], "--learning_rates=1e-3,fast: expected"),
    (["--task=thucnews", "--models=task_distilled", "--distill_settings=0.5"],
     "--distill_settings=0.5: expected ratio:temperature pairs"),
    (["--task=thucnews", "--seeds=0"], "--seeds must be at least 1, got 0"),
])
def test_sweep_refuses_bad_arguments_before_running(tmp_path, capsys, args, message):
  from quickstart import sweep
  assert sweep.main([f"--output_dir={tmp_path}", "--task=thucnews"]) == 2
  assert "no quickstart.json; run the quick start first" in capsys.readouterr().err
  (tmp_path / "quickstart.json").write_text(json.dumps({"size": "tiny", "steps_scale": 1.0,
                                                         "vocab_file": "v"}))
  assert sweep.main([f"--output_dir={tmp_path}", *args]) == 2
  assert message in capsys.readouterr().err
  assert not (tmp_path / "sweep").exists()
