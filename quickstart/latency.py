"""Batch-1 inference latency of fine-tuned classifiers, measured alternately on this machine.

Each model is its TensorFlow inference graph (BertModel, pooled output, classifier; no dropout) with the
fine-tuned checkpoint's weights, fed one sequence of `--seq_length` tokens. Rounds alternate between
the models so that they share the machine's state; the median milliseconds per inference is reported.

  python -m quickstart.latency --model=student=config/quickstart/small_student.json=out/thucnews/student \
      --output_file=latency.json
"""

import argparse
import json
import os
import statistics
import time

from mobilebert import atomic_io
from mobilebert.config import BertConfig
from mobilebert.export import graph


def parse_model(text):
  """'name=config.json=checkpoint' -> (name, config path, checkpoint)."""
  parts = text.split("=", 2)
  if len(parts) != 3 or not all(parts):
    raise argparse.ArgumentTypeError(f"--model={text}: expected name=config.json=checkpoint")
  return tuple(parts)


def measure(models, seq_length, runs, rounds=5):
  """{name: median seconds per batch-1 inference}; `models` is [(name, config path, checkpoint)]."""
  loaded = []
  for name, config_file, init_checkpoint in models:
    config = BertConfig.from_json_file(config_file)
    config.check_seq_length(seq_length, flag="--seq_length", source=config_file)
    model = graph.TFModel(config, init_checkpoint)
    features = graph.sample_inputs(config, seq_length, batch_size=1)
    output = "logits" if model.heads.num_labels else "pooled_output"
    run = lambda m=model, f=features, o=output: m.run(**f, names=[o])
    for _ in range(3):
      run()  # graph optimization and allocation happen on the first runs
    loaded.append((name, model, run))
  per_round = max(1, runs // rounds)
  times = {name: [] for name, _, _ in loaded}
  for _ in range(rounds):
    for name, _, run in loaded:
      start = time.perf_counter()
      for _ in range(per_round):
        run()
      times[name].append((time.perf_counter() - start) / per_round)
  for _, model, _ in loaded:
    model.close()
  return {name: statistics.median(values) for name, values in times.items()}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", type=parse_model, action="append", required=True,
                      help="name=config.json=checkpoint (a prefix or a directory); repeat per model")
  parser.add_argument("--seq_length", type=int, default=128)
  parser.add_argument("--runs", type=int, default=50, help="inferences timed per model")
  parser.add_argument("--output_file", required=True, help="JSON: {name: milliseconds}")
  args = parser.parse_args(argv)
  result = measure(args.model, args.seq_length, args.runs)
  milliseconds = {name: round(seconds * 1e3, 3) for name, seconds in result.items()}
  for name, value in milliseconds.items():
    print(f"{name}: {value:.2f} ms per sequence (batch 1, length {args.seq_length}, "
          f"{os.cpu_count()} CPU threads)")
  atomic_io.write_text(args.output_file, json.dumps(
      {"seq_length": args.seq_length, "batch_size": 1, "milliseconds": milliseconds}, indent=2) + "\n")


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  main()
