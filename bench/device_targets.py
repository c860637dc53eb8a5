"""The device targets of issue 15 and the per-CPU-kind results file of `bench_model.py --results_dir`.

Targets, on batch-1 inference (reported as pass/fail, never asserted: they describe this machine):
  * float32 TFLite at most the PyTorch eager peer's latency (peer ms / ours ms >= 1, both medians of
    the same alternating rounds);
  * each int8 format at least 2x faster than float32 TFLite (float32 ms / int8 ms >= 2; the two come
    from different cases, each alternated with its own peer).
Results go to <results_dir>/<kind>-<vendor>.json, one file per CPU kind and vendor
(machine.results_name: avx2-amd, avx512-intel, ...), so the rows of each machine sit side by side; a run
under bench/hide_cpu_features.py is filed apart (avx2-amd-avx512-hidden) and records what was hidden.
"""

import collections
import os

import machine
import tflite_models

Target = collections.namedtuple("Target", ["name", "measured", "required", "passed"])
INT8_SPEED_UP = 2.0


def check(tflite_results):
  """[Target] for {format: compare.Result} of the TFLite cases (those targets that were measured)."""
  targets = []
  float32 = tflite_results.get("float32")
  if float32:
    ratio = float32.peer / float32.ours
    targets.append(Target("float32 TFLite batch 1 no slower than the PyTorch eager peer "
                          "(peer ms / TFLite ms)", ratio, 1.0, ratio >= 1.0))
    for fmt in tflite_models.INT8_FORMATS:
      if fmt in tflite_results:
        ratio = float32.ours / tflite_results[fmt].ours
        targets.append(Target(f"{fmt} TFLite at least {INT8_SPEED_UP:g}x faster than float32 "
                              "(float32 ms / int8 ms)", ratio, INT8_SPEED_UP,
                              ratio >= INT8_SPEED_UP))
  return targets


def format_targets(targets):
  lines = ["| target | measured | required | result |", "|---|---|---|---|"]
  lines += [f"| {t.name} | {t.measured:.2f}x | {t.required:g}x | {'pass' if t.passed else 'FAIL'} |"
            for t in targets]
  return "\n".join(lines)


def write_results(results_dir, description, results, targets, peak_gflops, settings):
  """Writes <results_dir>/<machine.results_name()>.json atomically; returns its path."""
  import json  # pylint: disable=g-import-not-at-top
  # Imported here, after every worker has finished: the parent stays free of TensorFlow while timing.
  from mobilebert import atomic_io  # pylint: disable=g-import-not-at-top
  path = os.path.join(results_dir, f"{machine.results_name()}.json")
  cases = []
  for r in results:
    case = {"case": r.case, "ours_ms": 1e3 * r.ours, "peer_ms": 1e3 * r.peer,
            "speed_up_peer_over_ours": r.peer / r.ours, "sequences_per_step": r.sequences}
    case.update({k: r.info[k] for k in ("size_bytes", "runtime") if k in r.info})
    if r.flops:
      case["ours_share_of_peak"] = r.flops / r.ours / 1e9 / peak_gflops
      case["peer_share_of_peak"] = r.flops / r.peer / 1e9 / peak_gflops
    cases.append(case)
  value = {"cpu_kind": machine.cpu_kind(), "cpu_vendor": machine.cpu_vendor(),
           "cpu_model": machine.cpu_model(), "cpu_flags": machine.cpu_flags(),
           "cpu_features_hidden": machine.hidden_cpu_features(), "cores": os.cpu_count(),
           "load_average": list(os.getloadavg()), "machine": machine.describe(),
           "description": description, "matmul_peak_gflops": peak_gflops,
           "settings": settings, "cases": cases, "targets": [t._asdict() for t in targets]}
  atomic_io.write_text(path, json.dumps(value, indent=1) + "\n")
  return path
