"""Machine and version facts printed with every benchmark, and the CPU's measured matmul peak."""

import os
import platform
import time

import numpy as np


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


def describe():
  """One line: CPU, cores, Python and library versions."""
  import tensorflow as tf
  parts = [f"CPU: {cpu_model()} ({os.cpu_count()} cores; {' '.join(cpu_flags()[:6])})",
           f"Python {platform.python_version()}", f"TensorFlow {tf.__version__}",
           f"NumPy {np.__version__}"]
  try:
    import torch
    import transformers
    parts += [f"torch {torch.__version__}", f"transformers {transformers.__version__}"]
  except ImportError:
    pass
  return "; ".join(parts)


def tf_matmul_peak_gflops(size=2048, repeats=10):
  """Best float32 GFLOP/s of a square matmul in a TensorFlow graph: the machine's practical peak."""
  import tensorflow.compat.v1 as tf
  with tf.Graph().as_default():
    a = tf.random.normal([size, size])
    b = tf.random.normal([size, size])
    a_var, b_var = tf.Variable(a), tf.Variable(b)
    product = tf.reduce_sum(tf.matmul(a_var, b_var))
    with tf.Session() as session:
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
