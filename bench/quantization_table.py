"""The accuracy table of bench_quantization.py: mean and std over seeds per task and numeric format."""

import statistics

FORMAT_LABELS = {
    "float32": "float32", "float16": "float16 weights", "dynamic_int8": "dynamic-range int8",
    "full_int8": "full int8, post-training (integer-only)",
    "int8_float_softmax": "int8, float softmax, post-training",
    "qat_int8": "QAT int8 (--use_quantized_training, integer-only)",
    "qat_int8_float_softmax": "QAT int8, float softmax"}


def mean_std(values):
  """(mean, sample standard deviation; 0 for one value)."""
  values = list(values)
  return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarize(entries, formats):
  """{"summary": {task: {format: stats}}} over seeds.

  stats: seeds, test accuracy mean/std, the change against float32 on the same seed (paired, the
  smaller spread when seeds differ more than formats), size in bytes, median batch-1 latency in ms.
  """
  by_key = {(e["task"], e["seed"], e["format"]): e for e in entries}
  summary = {}
  for task in dict.fromkeys(e["task"] for e in entries):
    seeds = sorted({e["seed"] for e in entries if e["task"] == task})
    summary[task] = {}
    for fmt in formats:
      rows = [by_key[(task, s, fmt)] for s in seeds if (task, s, fmt) in by_key]
      if not rows:
        continue
      accuracy, accuracy_std = mean_std(r["test_accuracy"] for r in rows)
      stats = {"seeds": [r["seed"] for r in rows], "seq_length": rows[0]["seq_length"],
               "test_accuracy_mean": accuracy, "test_accuracy_std": accuracy_std,
               "size_bytes": statistics.median(r["size_bytes"] for r in rows),
               "latency_ms_median": statistics.median(r["latency_ms"] for r in rows),
               "load_average_1min_max": max(r["load_average_1min"] for r in rows),
               "exports_refused": sum(r.get("export_verification", "verified") != "verified"
                                      for r in rows)}
      paired = [r["test_accuracy"] - by_key[(task, r["seed"], "float32")]["test_accuracy"]
                for r in rows if (task, r["seed"], "float32") in by_key]
      if paired:
        stats["change_vs_float32_mean"], stats["change_vs_float32_std"] = mean_std(paired)
      summary[task][fmt] = stats
  return {"summary": summary}


def markdown(results):
  """The table (one row per task and format) with the machine and the command."""
  lines = [results["machine"], f"`{results['command']}`", "",
           "| task | format | test accuracy (mean ± std) | change vs float32 | .tflite size | "
           "batch-1 latency (noisy) |", "|---|---|---|---|---|---|"]
  for task, formats in results["summary"].items():
    for fmt, s in formats.items():
      change = ("" if "change_vs_float32_mean" not in s or fmt == "float32" else
                f"{100 * s['change_vs_float32_mean']:+.1f} ± {100 * s['change_vs_float32_std']:.1f}")
      refused = (f" ({s['exports_refused']} of {len(s['seeds'])} refused by the export's "
                 "verification, scored unverified)" if s.get("exports_refused") else "")
      lines.append(
          f"| {task} (length {s['seq_length']}, {len(s['seeds'])} seeds) | {FORMAT_LABELS[fmt]}{refused} | "
          f"{100 * s['test_accuracy_mean']:.1f} ± {100 * s['test_accuracy_std']:.1f} | {change} | "
          f"{s['size_bytes'] / 2 ** 20:.2f} MB | {s['latency_ms_median']:.2f} ms |")
  loads = [s["load_average_1min_max"] for f in results["summary"].values() for s in f.values()]
  if loads:
    lines += ["", f"Latency: median over seeds of each file's median of alternating rounds; 1-minute "
              f"load average up to {max(loads):.1f} on {results['settings'].get('threads') or 'all'} "
              "thread(s) while timing, so noisy: rerun on a quiet machine."]
  return "\n".join(lines)
