"""Fine-tuning step and inference latency: our TensorFlow graph vs transformers' PyTorch MobileBERT.

Same architecture (default config/student_base_f2.json), same sequence length, same inputs, same CPU.
Each side runs in its own worker process (bench/workers.py), built once per case; rounds alternate
between the two and the medians are reported.

  python bench/bench_model.py [--config config/student_base_f2.json] [--seq 128] [--rounds 5]
  python bench/bench_model.py --tflite     # also batch-1 inference of our TFLite exports: float32,
                                           # float16, dynamic / full / QAT int8, the last two also with
                                           # a float softmax (bench/tflite_models.py; on LiteRT when
                                           # installed; --tflite_runtime=tensorflow)
  python bench/bench_model.py --tflite_only --results_dir bench/results   # those alone, and the
                                           # device targets in bench/results/<kind>-<vendor>.json
  python bench/bench_model.py --memory     # peak RSS of a fine-tuning run, each framework alone

Prints a markdown table with the machine and versions, per-step times, throughput, the ratio
peer/ours, and the achieved GFLOP/s of each side as a fraction of the machine's measured matmul peak.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402
import device_targets  # noqa: E402
import machine  # noqa: E402
import tflite_models  # noqa: E402
from workers import Worker  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
# (label, batch, training, steps per round)
CASES = (("fine-tuning step", 32, True, 3), ("inference", 1, False, 20), ("inference", 32, False, 3))
TFLITE_STEPS = 20


# -- ours (TensorFlow worker) ----------------------------------------------------------------------
class Classifier:
  """Our graph: BertModel + classifier head, and BERT's AdamW train op (training) or the logits."""

  def __init__(self, config_file, seq, batch, training, xla=False, threads=None):
    import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
    from mobilebert import modeling, optimization  # pylint: disable=g-import-not-at-top
    from mobilebert.config import BertConfig  # pylint: disable=g-import-not-at-top
    config = BertConfig.from_json_file(config_file)
    graph = tf.Graph()
    with graph.as_default():
      tf.set_random_seed(0)
      ids = tf.placeholder(tf.int32, [batch, seq])
      mask = tf.placeholder(tf.int32, [batch, seq])
      labels = tf.placeholder(tf.int32, [batch])
      model = modeling.BertModel(config, training, ids, mask)
      weights = tf.get_variable("output_weights", [2, config.hidden_size],
                                initializer=tf.truncated_normal_initializer(stddev=0.02))
      bias = tf.get_variable("output_bias", [2], initializer=tf.zeros_initializer())
      logits = tf.matmul(model.get_pooled_output(), weights, transpose_b=True) + bias
      if training:
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=logits))
        self.fetch = optimization.create_optimizer(loss, 5e-5, 1000, 100)
      else:
        self.fetch = logits
      self.session = tf.Session(config=compare.session_config(threads, xla))
      self.session.run(tf.global_variables_initializer())
    self.feed = dict(zip((ids, mask, labels), compare.batch_of(config.vocab_size, batch, seq)))
    passes = 3 if training else 1  # backward ~ 2 x forward
    flops = compare.forward_flops_per_sequence(config, seq, compare.graph_variables(graph))
    self.info = {"flops_per_step": passes * batch * flops}

  def step(self):
    self.session.run(self.fetch, self.feed)

  def close(self):
    self.session.close()


# -- parent ----------------------------------------------------------------------------------------
def classifier_sides(args, batch, training):
  ours = compare.Side("bench_model:Classifier", dict(
      config_file=args.config, seq=args.seq, batch=batch, training=training, xla=args.xla,
      threads=args.threads))
  peer = compare.Side("peer:Classifier", dict(
      hf_fields=compare.hf_fields(args.config, "sequence_classification", 2), seq=args.seq,
      batch=batch, training=training, threads=args.threads))
  return ours, peer


def run_speed(args):
  with compare.Workers(reuse=args.reuse_workers) as workers:
    peak = compare.matmul_peak_gflops(workers, args.peak_size, args.threads)
    results = []
    for label, batch, training, steps in () if args.tflite_only else CASES:
      ours, peer = classifier_sides(args, batch, training)
      results.append(compare.run_case(workers, f"{label}, batch {batch}", ours, peer, batch,
                                      args.steps or steps, args.rounds,
                                      compare.warmup_steps(args.xla)))
    tflite_results = {}
    if args.tflite or args.tflite_only:
      _, peer = classifier_sides(args, 1, False)
      for fmt in args.tflite_variants:
        ours = compare.Side("tflite_models:TFLite", dict(config_file=args.config, seq=args.seq,
                                                         fmt=fmt, threads=args.threads,
                                                         runtime=args.tflite_runtime))
        result = compare.run_case(workers, f"inference, batch 1, TFLite {fmt}", ours, peer, 1,
                                  args.steps or TFLITE_STEPS, args.rounds)
        tflite_results[fmt] = result
        size = result.info["size_bytes"] / 2 ** 20
        results.append(result._replace(
            case=f"{result.case} ({size:.1f} MB, {result.info['runtime']})"))
  description = (
      f"config {os.path.basename(args.config)}, sequence length {args.seq}, float32, "
      f"{'XLA' if args.xla else 'no XLA'}, {args.threads or 'all'} thread(s); peer: transformers "
      f"MobileBertForSequenceClassification (PyTorch); medians of {args.rounds} alternating rounds")
  print(compare.report(description, results, peak))
  targets = device_targets.check(tflite_results)
  if targets:
    print("\n" + device_targets.format_targets(targets))
  if args.results_dir:
    path = device_targets.write_results(args.results_dir, description, results, targets, peak,
                                        vars(args))
    print(f"\nwrote {path}")


def run_memory(args):
  """Peak RSS of each side's worker after 3 fine-tuning steps, one worker at a time."""
  ours, peer = classifier_sides(args, 32, True)
  rss = {}
  for who, side in (("ours", ours), ("peer", peer)):
    with Worker(f"memory ({who})") as worker:
      worker.build(side.factory, **side.kwargs).run(args.steps or 3)
      rss[who] = worker.peak_rss_mb()
  print(f"\n{machine.describe()}\nfine-tuning batch 32, sequence {args.seq}, "
        f"{os.path.basename(args.config)}; peak RSS of each worker process after "
        f"{args.steps or 3} steps (framework, model, optimizer, activations)\n")
  print("| | ours | peer | peer / ours |\n|---|---|---|---|")
  print(f"| peak RSS MB | {rss['ours']:.0f} | {rss['peer']:.0f} | {rss['peer'] / rss['ours']:.2f}x |")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default=os.path.join(HERE, "..", "config", "student_base_f2.json"))
  parser.add_argument("--seq", type=int, default=128)
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--steps", type=int, default=None,
                      help="steps per round for every case (default: 3 for batch 32, 20 for batch 1)")
  parser.add_argument("--xla", action="store_true",
                      help="compile our graph with XLA (auto-clustering, on the CPU too)")
  parser.add_argument("--memory", action="store_true",
                      help="measure fine-tuning peak RSS instead of speed")
  parser.add_argument("--tflite", action="store_true",
                      help="also time batch-1 inference of our float32 and int8 TFLite exports")
  parser.add_argument("--tflite_variants", default=",".join(tflite_models.FORMATS),
                      type=lambda s: s.split(","),
                      help="comma-separated numeric formats timed with --tflite, of "
                      f"{','.join(tflite_models.FORMATS)}")
  parser.add_argument("--tflite_only", action="store_true",
                      help="time the TFLite formats only (not the TensorFlow graph's cases)")
  parser.add_argument("--results_dir", default=None,
                      help="also write the results and the device targets' pass/fail as JSON to "
                      "RESULTS_DIR/<kind>-<vendor>.json (bench/results: one file per CPU kind and vendor)")
  parser.add_argument("--tflite_runtime", choices=("litert", "tensorflow"), default=None,
                      help="interpreter of --tflite (default: LiteRT when installed, else the one "
                      "bundled with TensorFlow)")
  parser.add_argument("--threads", type=int, default=None,
                      help="threads of each side (TensorFlow intra/inter-op, TFLite, torch); "
                      "default: all cores")
  parser.add_argument("--reuse_workers", action="store_true",
                      help="one worker per framework for all cases instead of two fresh ones per "
                      "case (fewer start-ups; for quick checks)")
  parser.add_argument("--peak_size", type=int, default=2048,
                      help="matrix size of the matmul-peak measurement")
  args = parser.parse_args(argv)
  if not os.path.isfile(args.config):
    parser.error(f"--config {args.config}: no such file")
  unknown = [f for f in args.tflite_variants if f not in tflite_models.FORMATS]
  if unknown:
    parser.error(f"--tflite_variants: {unknown} not in {list(tflite_models.FORMATS)}")
  if args.xla:
    compare.enable_xla_on_cpu()
  if args.memory:
    run_memory(args)
  else:
    run_speed(args)


if __name__ == "__main__":
  main()
