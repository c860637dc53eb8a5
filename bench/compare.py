"""Ours vs peer, interleaved: run one case in two workers, and print the markdown report.

Shared by bench_model.py and bench_distillation.py. The parent process only drives workers (see
workers.py): it never runs TensorFlow or imports torch (it reads configs with the project's code).
"""

import collections
import contextlib
import os
import statistics
import time

import numpy as np

import machine
from workers import Worker, wait_all

# The idle worker's thread pools may still spin for a moment after its round; this pause keeps that
# out of the next round of the other worker.
SETTLE_SECONDS = 0.1

# Warm-up steps before timing. XLA auto-clustering compiles a cluster lazily, after it has run a
# couple of times without compilation, so with XLA the compilation must fall in the warm-up too.
WARMUP_STEPS = 2
XLA_WARMUP_STEPS = 4

Side = collections.namedtuple("Side", ["factory", "kwargs"])
# Seconds per step (medians), sequences per step, FLOPs per step (None: not counted), ours' info.
Result = collections.namedtuple("Result", ["case", "ours", "peer", "sequences", "flops", "info"])


def warmup_steps(xla, default=WARMUP_STEPS):
  return max(default, XLA_WARMUP_STEPS) if xla else default


def interleaved(ours, peer, steps, rounds, warmup=WARMUP_STEPS):
  """Median seconds per step of two ready workers, alternating rounds (ours first on even rounds).

  Returns:
    (ours seconds per step, peer seconds per step).
  """
  for worker in (ours, peer):
    worker.run(warmup)  # graph optimization, allocator, thread pools, XLA compilation
  times = {id(ours): [], id(peer): []}
  for index in range(rounds):
    order = (ours, peer) if index % 2 == 0 else (peer, ours)
    for worker in order:
      time.sleep(SETTLE_SECONDS)
      times[id(worker)].append(worker.run(steps) / steps)
  return statistics.median(times[id(ours)]), statistics.median(times[id(peer)])


class Workers:
  """Where each case's two models run.

  By default every case gets two fresh worker processes (nothing carried over from an earlier case).
  With `reuse`, one "ours" and one "peer" worker serve every case of the run, each case's model
  replacing the last: the same measurement with far fewer framework start-ups (quick checks, tests).
  """

  def __init__(self, reuse=False):
    self.reuse = reuse
    self._shared = None

  @contextlib.contextmanager
  def pair(self, case):
    if not self.reuse:
      with Worker(f"{case}: ours") as ours, Worker(f"{case}: peer") as peer:
        yield ours, peer
      return
    if self._shared is None:
      self._shared = (Worker("ours"), Worker("peer"))
    yield self._shared

  def close(self):
    for worker in self._shared or ():
      worker.close()
    self._shared = None

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


def run_case(workers, case, ours, peer, sequences, steps, rounds, warmup=WARMUP_STEPS):
  """Times one case: both models build at once, then rounds alternate; returns a Result.

  Args:
    workers: Workers.
    ours, peer: Side(factory "module:function", kwargs) of each model. Ours' info may hold
      "flops_per_step" (the FLOPs the report divides by each side's time).
    sequences: sequences processed per step (the batch size).
  """
  with workers.pair(case) as (ours_worker, peer_worker):
    ours_worker.build(ours.factory, **ours.kwargs)
    peer_worker.build(peer.factory, **peer.kwargs)
    wait_all([ours_worker, peer_worker])
    ours_time, peer_time = interleaved(ours_worker, peer_worker, steps, rounds, warmup)
    info = ours_worker.info
  return Result(case, ours_time, peer_time, sequences, info.get("flops_per_step"), info)


def hf_fields(config_file, head="base", num_labels=None):
  """transformers config fields of our config JSON, by the project's own mapping
  (mobilebert/export/hf_mapping.hf_config). Imports TensorFlow: the parent's only use of it."""
  from mobilebert.config import BertConfig  # pylint: disable=g-import-not-at-top
  from mobilebert.export import hf_mapping  # pylint: disable=g-import-not-at-top
  return dict(hf_mapping.hf_config(BertConfig.from_json_file(config_file), head, num_labels))


def batch_of(vocab_size, batch, seq, seed=0):
  """(input ids, all-ones mask, binary labels) as int32 arrays; both sides of a case get the same."""
  rng = np.random.RandomState(seed)
  ids = rng.randint(1, vocab_size, size=(batch, seq)).astype(np.int32)
  return ids, np.ones((batch, seq), np.int32), rng.randint(0, 2, size=batch).astype(np.int32)


def forward_flops_per_sequence(config, seq, variables=None, scope="bert/"):
  """2 x multiply-adds of the encoder's dense layers and attention for one sequence.

  Embedding look-ups, the pooler and the heads are left out (small next to the encoder).

  Args:
    config: BertConfig of the model.
    variables: [(name, shape)] of a built graph (default: built for `config` in a throw-away graph);
      the kernels under `scope` are counted.
  """
  if variables is None:
    from mobilebert import summary  # pylint: disable=g-import-not-at-top
    variables = summary.model_variables(config)
  flops = 0
  for name, shape in variables:
    if name.endswith("/kernel") and name.startswith(scope) and "pooler" not in name:
      flops += 2 * shape[0] * shape[1] * seq
  if not flops:
    raise ValueError(f"no encoder kernels under {scope!r} to count FLOPs of")
  flops += config.num_hidden_layers * 2 * 2 * seq * seq * config.inner_size
  return flops


def graph_variables(graph):
  """[(name, shape)] of a TensorFlow graph's trainable variables."""
  return [(v.op.name, v.shape.as_list()) for v in graph.get_collection("trainable_variables")]


def enable_xla_on_cpu():
  """Lets the workers started from now on auto-cluster for XLA on the CPU.

  A session's global_jit_level alone clusters nothing on the CPU (checked with TensorFlow 2.15: no
  XLA op in the step's trace); TensorFlow also needs --tf_xla_cpu_global_jit in TF_XLA_FLAGS, read
  once per process, so it goes into the environment the workers inherit.
  """
  flags = os.environ.get("TF_XLA_FLAGS", "")
  if "--tf_xla_cpu_global_jit" not in flags:
    os.environ["TF_XLA_FLAGS"] = f"{flags} --tf_xla_cpu_global_jit".strip()


def session_config(threads=None, xla=False):
  """tf.ConfigProto with `threads` intra- and inter-op threads (None: TensorFlow's default, all
  cores) and optionally XLA auto-clustering (jit ON_1; on the CPU see enable_xla_on_cpu)."""
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  config = tf.ConfigProto()
  if threads:
    config.intra_op_parallelism_threads = threads
    config.inter_op_parallelism_threads = threads
  if xla:
    config.graph_options.optimizer_options.global_jit_level = tf.OptimizerOptions.ON_1
  return config


class MatmulPeak:
  """Worker model measuring the machine's float32 matmul peak (machine.tf_matmul_peak_gflops)."""

  def __init__(self, size=2048, repeats=10, threads=None):
    self.info = {"gflops": machine.tf_matmul_peak_gflops(size, repeats, session_config(threads))}

  def step(self):
    pass


def matmul_peak_gflops(workers, size=2048, threads=None):
  """The peak, measured in a TensorFlow worker (the parent stays free of TensorFlow)."""
  with workers.pair("matmul peak") as (ours, _):
    return ours.build("compare:MatmulPeak", size=size, threads=threads).wait_ready().info["gflops"]


def report(description, results, peak_gflops):
  """The markdown report: machine and versions, what was measured, and one row per Result."""
  lines = ["", machine.describe(), f"{description}; matmul peak {peak_gflops:.1f} GFLOP/s", "",
           "| case | ours ms | peer ms | ours seq/s | peer seq/s | speed-up (peer time / ours) "
           "| ours % of peak | peer % of peak |",
           "|---|---|---|---|---|---|---|---|"]
  for r in results:
    if r.flops:
      shares = [f"{100 * r.flops / t / 1e9 / peak_gflops:.1f}%" for t in (r.ours, r.peer)]
    else:
      shares = ["n/a", "n/a"]
    lines.append(f"| {r.case} | {r.ours * 1e3:.1f} | {r.peer * 1e3:.1f} | "
                 f"{r.sequences / r.ours:.1f} | {r.sequences / r.peer:.1f} | "
                 f"{r.peer / r.ours:.2f}x | {shares[0]} | {shares[1]} |")
  return "\n".join(lines)
