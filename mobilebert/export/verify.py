"""Comparing an exported model's outputs with the TensorFlow graph's, with stated tolerances.

Two metrics: `max_abs` (largest absolute difference) for exports that compute in float32, and
`max_abs/range` (the same divided by the largest absolute reference value) for 16-bit and int8 exports,
whose error scales with the values.
"""

import collections

import numpy as np

from mobilebert.export.graph import ExportError

Check = collections.namedtuple("Check", ["output", "metric", "value", "tolerance"])


def compare(output, got, want, tolerance, relative=False):
  """A Check of `got` against the reference `want` (shapes must agree)."""
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  if got.shape != want.shape:
    raise ExportError(f"output {output}: exported shape {got.shape} != TensorFlow shape {want.shape}")
  if not np.all(np.isfinite(got)):
    return Check(output, "finite", float("inf"), tolerance)
  value = float(np.max(np.abs(got - want), initial=0.0))
  if relative:
    value /= max(float(np.max(np.abs(want), initial=0.0)), 1e-12)
  return Check(output, "max_abs/range" if relative else "max_abs", value, tolerance)


def require(checks, what):
  """Raises ExportError listing every Check over its tolerance; returns the checks otherwise."""
  failed = [c for c in checks if not c.value <= c.tolerance]
  if failed:
    details = "; ".join(f"{c.output}: {c.metric} {c.value:.3g} > {c.tolerance:.3g}" for c in failed)
    raise ExportError(f"{what} does not match the TensorFlow graph: {details}")
  return checks


def format_checks(checks):
  return [f"  {c.output}: {c.metric} {c.value:.3g} (tolerance {c.tolerance:.3g})" for c in checks]
