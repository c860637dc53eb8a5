"""Machine and version facts printed with every benchmark, and the CPU's measured matmul peak."""

import importlib.metadata
import os
import platform
import time


def cpu_model():
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown"


def cpu_flags():
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("flags"):
          flags = set(line.split(":", 1)[1].split())
          return sorted(f for f in flags if f.startswith(("avx512", "avx2", "amx", "fma")))
  except OSError:
    pass
  return []


def cpu_kind():
  """The SIMD class the benchmarks' results are filed under: avx512, avx2 or other."""
  flags = cpu_flags()
  if any(f.startswith("avx512") for f in flags):
    return "avx512"
  return "avx2" if "avx2" in flags else "other"


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
  parts = [f"CPU: {cpu_model()} ({os.cpu_count()} cores; {' '.join(cpu_flags()[:6])})",
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
