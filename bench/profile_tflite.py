r"""Where batch-1 TFLite inference spends its CPU time, kernel by kernel: Linux `perf` samples of a
worker process that runs one model in a loop, grouped by who runs each kernel.

  python bench/profile_tflite.py [--config config/student_base_f2.json] [--seq 128] \
      [--formats full_int8,int8_float_softmax] [--model some.tflite ...] [--seconds 10] [--top 8]

Each --formats entry is our export of a random-weight encoder (bench/tflite_models.py, as
bench_model.py --tflite times it); --model adds .tflite files of your own. Per model: the median
batch-1 latency of the profiled loop, the shares of CPU time (both threads' samples together) of
  XNNPACK           the delegate's micro-kernels (xnn_*): what runs multi-threaded and vectorized
  builtin kernels   the interpreter's own kernels (tflite::*_ops::...), for the ops XNNPACK left:
                    they run on the calling thread alone
  thread pool       XNNPACK's worker threads waiting for work (thread_main, pthreadpool) and the
                    kernel's scheduling: time a builtin kernel keeps the other thread idle shows here
  other             Python, the runtime's bookkeeping, libc
and the top kernels. The op report (python -m mobilebert.export.tflite_ops) says which ops were left
to builtin kernels; this says what they cost. Needs `perf` (linux-tools) allowed to sample the process
(kernel.perf_event_paranoid <= 2).
"""

import argparse
import collections
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
GROUPS = ("XNNPACK", "builtin kernels", "thread pool", "other")
Kernel = collections.namedtuple("Kernel", ["symbol", "share", "group"])
Profile = collections.namedtuple("Profile", ["model", "latency_ms", "groups", "kernels"])


class ProfileError(RuntimeError):
  """perf is missing or failed; the message says what to do."""


def group_of(symbol):
  """The GROUPS entry a perf symbol belongs to."""
  if symbol.startswith("xnn_"):
    return "XNNPACK"
  if re.match(r"tflite::(\w+::)*\w*ops::", symbol):
    return "builtin kernels"
  if (symbol.startswith(("thread_main", "pthreadpool", "thread_parallelize"))
      or symbol.startswith("[k]")):
    return "thread pool"
  return "other"


def parse_report(text):
  """[Kernel] of `perf report --no-children --sort symbol --stdio` output, largest first."""
  kernels = []
  for line in text.splitlines():
    match = re.match(r"\s*([\d.]+)%\s+\[(.)\]\s+(.+)$", line)
    if match:
      share, mode = float(match.group(1)) / 100, match.group(2)
      symbol = re.split(r"\s{2,}", match.group(3).strip())[0]  # perf may append "-  -" columns
      symbol = f"[k] {symbol}" if mode == "k" else symbol
      kernels.append(Kernel(symbol, share, group_of(symbol)))
  return sorted(kernels, key=lambda k: -k.share)


def run_loop(path, seconds, threads):
  """The profiled worker: loads the model, warms up, says `ready` (the parent attaches perf then),
  invokes it at batch 1 for `seconds` more and prints the median ms."""
  from tflite_models import TFLiteFile  # pylint: disable=g-import-not-at-top
  model = TFLiteFile(path, threads)
  for _ in range(5):
    model.step()
  print("ready", flush=True)
  times, end = [], time.perf_counter() + seconds
  while time.perf_counter() < end:
    start = time.perf_counter()
    model.step()
    times.append(time.perf_counter() - start)
  print(f"median_ms {1e3 * statistics.median(times):.4f}", flush=True)


def profile(path, seconds, threads, work_dir):
  """Profile of one .tflite file: perf samples of a run_loop worker, from its warm-up's end."""
  perf = shutil.which("perf")
  if perf is None:
    raise ProfileError("perf not found: install linux-tools (the `perf` command) to profile")
  data = os.path.join(work_dir, os.path.basename(path) + ".perf.data")
  worker = subprocess.Popen(
      [sys.executable, os.path.abspath(__file__), "--run_loop", path, "--seconds",
       str(seconds + 1), "--threads", str(threads)],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  try:
    if worker.stdout.readline().strip() != "ready":
      raise ProfileError(f"the worker running {path} failed: "
                         f"{(worker.stderr.read().strip().splitlines() or ['no output'])[-1]}")
    record = subprocess.run([perf, "record", "-F", "999", "-o", data, "-p", str(worker.pid), "--",
                             "sleep", str(seconds)], capture_output=True, text=True)
    latency = re.search(r"^median_ms ([\d.]+)$", worker.stdout.read(), re.M)
  finally:
    worker.kill() if worker.poll() is None else None
    worker.wait()
  if record.returncode != 0 or latency is None:
    raise ProfileError(f"perf record of {path} failed ({record.returncode}): "
                       f"{(record.stderr.strip().splitlines() or ['no output'])[-1]}")
  report = subprocess.run([perf, "report", "-i", data, "--no-children", "--sort", "symbol",
                           "--stdio"], capture_output=True, text=True, check=True)
  kernels = parse_report(report.stdout)
  groups = {g: sum(k.share for k in kernels if k.group == g) for g in GROUPS}
  return Profile(path, float(latency.group(1)), groups, kernels)


def format_profiles(profiles, top):
  """Markdown: the shares per group for every model, then each model's top kernels."""
  lines = ["| model | batch-1 ms | " + " | ".join(GROUPS) + " |",
           "|---|---|" + "---|" * len(GROUPS)]
  for p in profiles:
    lines.append(f"| {os.path.basename(p.model)} | {p.latency_ms:.2f} | "
                 + " | ".join(f"{100 * p.groups[g]:.1f}%" for g in GROUPS) + " |")
  for p in profiles:
    lines += ["", f"{os.path.basename(p.model)}: top kernels", "", "| kernel | group | share |",
              "|---|---|---|"]
    lines += [f"| `{k.symbol[:90]}` | {k.group} | {100 * k.share:.1f}% |" for k in p.kernels[:top]]
  return "\n".join(lines)


def exported_models(args, work_dir):
  """{name: path} of the random-weight exports of --formats, made in a worker process."""
  if not args.formats:
    return {}
  script = ("import sys, shutil; sys.path.insert(0, sys.argv[1]); import tflite_models\n"
            "for fmt in sys.argv[5].split(','):\n"
            "  m = tflite_models.TFLite(sys.argv[2], int(sys.argv[3]), fmt, threads=1)\n"
            "  shutil.copy(m.path, f'{sys.argv[4]}/{fmt}.tflite')\n")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  done = subprocess.run([sys.executable, "-c", script, HERE, args.config, str(args.seq), work_dir,
                         ",".join(args.formats)], capture_output=True, text=True, env=env)
  if done.returncode != 0:
    raise ProfileError(f"exporting {args.formats} failed: {done.stderr.strip().splitlines()[-1]}")
  return {fmt: os.path.join(work_dir, f"{fmt}.tflite") for fmt in args.formats}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default=os.path.join(HERE, "..", "config", "student_base_f2.json"))
  parser.add_argument("--seq", type=int, default=128)
  parser.add_argument("--formats", default="full_int8,int8_float_softmax",
                      type=lambda s: [f for f in s.split(",") if f])
  parser.add_argument("--model", action="append", default=[], help="a .tflite file to profile too")
  parser.add_argument("--seconds", type=float, default=10.0, help="profiled time per model")
  parser.add_argument("--threads", type=int, default=os.cpu_count())
  parser.add_argument("--top", type=int, default=8, help="kernels listed per model")
  parser.add_argument("--run_loop", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.run_loop:
    run_loop(args.run_loop, args.seconds, args.threads)
    return 0
  from tflite_models import FORMATS  # pylint: disable=g-import-not-at-top
  unknown = [f for f in args.formats if f not in FORMATS]
  if unknown:
    parser.error(f"--formats: {unknown} not in {list(FORMATS)}")
  missing = [m for m in args.model if not os.path.isfile(m)]
  if missing:
    parser.error(f"--model: {missing[0]}: file not found")
  work_dir = tempfile.mkdtemp(prefix="profile_tflite_")
  try:
    models = exported_models(args, work_dir)
    models.update({os.path.basename(m): m for m in args.model})
    profiles = [profile(path, args.seconds, args.threads, work_dir) for path in models.values()]
  except ProfileError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  finally:
    shutil.rmtree(work_dir, ignore_errors=True)
  print(machine.describe())
  print(f"config {args.config}, length {args.seq}, batch 1, {args.threads} threads, "
        f"load average {os.getloadavg()[0]:.1f}\n")
  print(format_profiles(profiles, args.top))
  return 0


if __name__ == "__main__":
  sys.exit(main())
