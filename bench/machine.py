"""Machine and version facts printed with every benchmark, and the CPU's measured matmul peak."""

import importlib.metadata
import os
import platform
import time


def cpu_model():
  return _cpuinfo_field("model name") or platform.processor() or "unknown"


# Set by bench/hide_cpu_features.py: prefixes of the CPU flags it hides from this process's CPUID.
HIDDEN_FEATURES_ENV = "MOBILEBERT_BENCH_HIDDEN_CPU_FEATURES"


def _cpuinfo_field(name):
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith(name):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return None


def hidden_cpu_features():
  """The flag prefixes hidden from this process by bench/hide_cpu_features.py ([] when none)."""
  return [f for f in os.environ.get(HIDDEN_FEATURES_ENV, "").split(",") if f]


def cpu_flags(everything=False):
  """The CPU's SIMD flags this process's kernels can see (all flags with `everything`, hidden too)."""
  flags = set((_cpuinfo_field("flags") or "").split())
  if everything:
    return sorted(flags)
  hidden = tuple(hidden_cpu_features())
  return sorted(f for f in flags if f.startswith(("avx512", "avx2", "avx_vnni", "amx", "fma"))
                and not (hidden and f.startswith(hidden)))


def cpu_vendor():
  vendor = _cpuinfo_field("vendor_id")
  return {"GenuineIntel": "intel", "AuthenticAMD": "amd"}.get(vendor, "other")


def cpu_kind():
  """The SIMD class the benchmarks' results are filed under: avx512, avx2 or other."""
  flags = cpu_flags()
  if any(f.startswith("avx512") for f in flags):
    return "avx512"
  return "avx2" if "avx2" in flags else "other"


def results_name():
  """The benchmarks' results file stem: SIMD class and vendor, e.g. avx2-amd or avx512-intel.

  With features hidden (bench/hide_cpu_features.py) it says so: avx2-amd-avx512-hidden.
  """
  name = f"{cpu_kind()}-{cpu_vendor()}"
  if hidden_cpu_features():
    real = cpu_flags(everything=True)
    name += "-avx512-hidden" if any(f.startswith("avx512") for f in real) else "-hidden"
  return name


def package_version(*distributions):
  """The installed version of the first of `distributions` found (e.g. tensorflow, tensorflow-cpu)."""
  for name in distributions:
    try:
      return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      continue
  return None


def describe():
  """One line: CPU, cores, Python and library versions.

  Versions come from the package metadata, so the benchmark parents, which only drive worker
  processes, never import (and start the thread pools of) TensorFlow or torch themselves.
  """
  hidden = hidden_cpu_features()
  shown = " ".join(cpu_flags()[:6])
  if hidden:
    shown += f"; {', '.join(hidden)} hidden from CPUID by bench/hide_cpu_features.py"
  parts = [f"CPU: {cpu_model()} ({os.cpu_count()} cores; {shown})",
           f"Python {platform.python_version()}"]
  for label, distributions in (("TensorFlow", ("tensorflow", "tensorflow-cpu", "tf-nightly")),
                               ("NumPy", ("numpy",)), ("torch", ("torch",)),
                               ("transformers", ("transformers",))):
    version = package_version(*distributions)
    if version:
      parts.append(f"{label} {version}")
  return "; ".join(parts)


def tf_matmul_peak_gflops(size=2048, repeats=10, session_config=None):
  """Best float32 GFLOP/s of a square matmul in a TensorFlow graph: the machine's practical peak.

  `session_config` (a tf.ConfigProto) sets the threads, to measure the peak the benchmark's own
  thread count can reach.
  """
  import tensorflow.compat.v1 as tf
  with tf.Graph().as_default():
    a = tf.random.normal([size, size])
    b = tf.random.normal([size, size])
    a_var, b_var = tf.Variable(a), tf.Variable(b)
    product = tf.reduce_sum(tf.matmul(a_var, b_var))
    with tf.Session(config=session_config) as session:
      session.run(tf.global_variables_initializer())
      session.run(product)
      best = float("inf")
      for _ in range(repeats):
        start = time.perf_counter()
        session.run(product)
        best = min(best, time.perf_counter() - start)
  return 2 * size ** 3 / best / 1e9


if __name__ == "__main__":
  print(describe())
  print(f"float32 matmul peak (TensorFlow, 2048^3): {tf_matmul_peak_gflops():.1f} GFLOP/s")
