r"""Strips a pretraining checkpoint down to the student model, optionally casting it to 16 bits.

Released pretraining checkpoints also hold the AdamW slots (`<var>/adam_m`, `<var>/adam_v`), the whole
teacher under `teacher/` and `global_step`: 3 x student + teacher floats, where a user needs 1 x student.

  python -m mobilebert.strip_checkpoint --input_checkpoint=base-f2/mobilebert.ckpt \
      --output_checkpoint=release/mobilebert.ckpt [--cast_to=bfloat16]

Kept: names matching a `--keep` glob (default `bert/*`, `cls/*`) and no `--drop` glob; optimizer slots
are always dropped. `--remove_prefix=teacher/ --keep='teacher/*'` extracts the teacher instead. The
output is written under a temporary name, checked (every kept tensor bit-identical to the input, or to
its cast), and only then renamed into place; the input is never written. `<output>.strip.json` records
what was kept and dropped, the dtype and the sizes. A cast checkpoint records its dtype in the
checkpoint index itself; `checkpoint.init_from_checkpoint_any_dtype` casts it back to the graph's float32 on load.
"""

import collections
import fnmatch
import json
import os

from absl import flags
import numpy as np
import tensorflow.compat.v1 as tf

from mobilebert import atomic_io
from mobilebert import checkpoint as checkpoint_lib
from mobilebert import cli

DEFAULT_KEEP = ("bert/*", "cls/*")
CAST_DTYPES = {"bfloat16": tf.bfloat16, "float16": tf.float16}
SIDECAR_SUFFIX = ".strip.json"
TOOL = "mobilebert.strip_checkpoint"

StripResult = collections.namedtuple("StripResult", [
    "output_checkpoint", "kept", "dropped_by_kind", "bytes_before", "bytes_after", "dtype",
    "max_cast_error"])


class StripError(cli.UserError, ValueError):
  """Bad arguments or a result that failed verification."""


def variable_kind(name):
  """'optimizer_slot', 'teacher', 'global_step' or 'model' for a checkpoint entry name."""
  if checkpoint_lib.OPTIMIZER_SLOT_PATTERN.search(name):
    return "optimizer_slot"
  if name.startswith("teacher/"):
    return "teacher"
  if name == "global_step":
    return "global_step"
  return "model"


def select_variables(names, keep=DEFAULT_KEEP, drop=()):
  """Splits checkpoint names into (kept names, {kind: [dropped names]}); slots are always dropped."""
  kept, dropped = [], collections.defaultdict(list)
  for name in names:
    kind = variable_kind(name)
    wanted = any(fnmatch.fnmatchcase(name, p) for p in keep) and not any(
        fnmatch.fnmatchcase(name, p) for p in drop)
    if wanted and kind != "optimizer_slot":
      kept.append(name)
    else:
      dropped[kind].append(name)
  return kept, dict(dropped)


def checkpoint_files(prefix):
  """The files of a checkpoint prefix (index and data shards)."""
  return sorted(tf.io.gfile.glob(prefix + ".data-*")) + (
      [prefix + ".index"] if tf.io.gfile.exists(prefix + ".index") else [])


def checkpoint_bytes(prefix):
  return sum(tf.io.gfile.stat(f).length for f in checkpoint_files(prefix))


def cast_value(name, value, dtype):
  """`value` as `dtype` (a tf.DType) if it is float32; raises StripError if float16 would overflow."""
  if dtype is None or value.dtype != np.float32:
    return value
  with np.errstate(over="ignore"):
    cast = value.astype(dtype.as_numpy_dtype)
  overflow = np.isfinite(value) & ~np.isfinite(cast.astype(np.float32))
  if overflow.any():
    raise StripError(f"{name}: value {value[overflow].flat[0]!r} is out of the {dtype.name} range; "
                     "use --cast_to=bfloat16 (float32's range) instead")
  return cast


def write_checkpoint(prefix, tensors):
  """Writes {name: numpy array} as a TF checkpoint at `prefix` (one data shard), dtypes preserved."""
  names = sorted(tensors)
  with tf.Graph().as_default():
    placeholders = [tf.placeholder(tf.as_dtype(tensors[n].dtype), tensors[n].shape) for n in names]
    # Placeholders, not constants: a graph holding the weights as constants is limited to 2 GB.
    save = tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                             tensors=placeholders)
    with tf.Session() as session:
      session.run(save, dict(zip(placeholders, (tensors[n] for n in names))))


def verify_checkpoint(prefix, expected):
  """Raises StripError unless the checkpoint at `prefix` holds exactly `expected`, bit for bit."""
  reader = tf.train.load_checkpoint(prefix)
  found = set(reader.get_variable_to_shape_map())
  if found != set(expected):
    raise StripError(f"{prefix}: written checkpoint has variables {sorted(found ^ set(expected))} "
                     "that differ from the selection")
  for name, value in expected.items():
    got = reader.get_tensor(name)
    if got.dtype != value.dtype or got.shape != value.shape or got.tobytes() != value.tobytes():
      raise StripError(f"{prefix}: {name} differs from the input after writing "
                       f"({got.dtype}{list(got.shape)} vs {value.dtype}{list(value.shape)})")


def _check_output(input_prefix, output, overwrite):
  if not output:
    raise StripError("--output_checkpoint is required")
  if output.endswith((".index", ".json")) or ".data-" in output:
    raise StripError(f"--output_checkpoint={output}: give a checkpoint prefix (e.g. out/model.ckpt), "
                     "not one of its files")
  if tf.io.gfile.isdir(output):
    raise StripError(f"--output_checkpoint={output} is a directory; give a prefix inside it, "
                     f"e.g. {output}/model.ckpt")
  outputs = [output, output + ".index", output + ".data-00000-of-00001", output + SIDECAR_SUFFIX]
  existing = checkpoint_files(output) + [
      f for f in [output + SIDECAR_SUFFIX] if tf.io.gfile.exists(f)]
  try:
    atomic_io.check_spares_inputs({"--output_checkpoint": outputs},
                                  {"--input_checkpoint": atomic_io.checkpoint_inputs(input_prefix)})
    atomic_io.check_replaceable(existing or outputs[1:2], TOOL, overwrite, "--output_checkpoint")
  except atomic_io.UnsafeOutputError as e:
    raise StripError(str(e)) from None
  return existing


def strip_checkpoint(input_checkpoint, output_checkpoint, keep=DEFAULT_KEEP, drop=(),
                     remove_prefix="", cast_to=None, overwrite=False):
  """Writes the selected variables of `input_checkpoint` to `output_checkpoint` and verifies them.

  Args:
    input_checkpoint: checkpoint prefix or directory (its latest checkpoint); only read.
    output_checkpoint: prefix to write; must not exist unless `overwrite`.
    keep / drop: glob patterns on the input names (optimizer slots are always dropped).
    remove_prefix: removed from the kept names (e.g. "teacher/"); every kept name must start with it.
    cast_to: None, "bfloat16" or "float16": float32 tensors are stored in that dtype.
  Returns:
    StripResult.
  """
  if cast_to and cast_to not in CAST_DTYPES:
    raise StripError(f"--cast_to={cast_to}: expected one of {sorted(CAST_DTYPES)}")
  prefix = checkpoint_lib.resolve_checkpoint(input_checkpoint)
  shapes = checkpoint_lib.list_checkpoint(prefix)
  existing = _check_output(prefix, output_checkpoint, overwrite)
  kept, dropped = select_variables(shapes, keep, drop)
  if not kept:
    scopes = sorted({n.split("/")[0] + "/*" for n in shapes})
    raise StripError(f"{prefix}: no variable matches --keep={','.join(keep)} "
                     f"(minus --drop); its top-level scopes are {scopes}")
  outside = [n for n in kept if not n.startswith(remove_prefix)]
  if outside:
    raise StripError(f"--remove_prefix={remove_prefix}: kept variable {outside[0]} does not start "
                     "with it; narrow --keep")

  reader = tf.train.load_checkpoint(prefix)
  dtype = CAST_DTYPES.get(cast_to)
  tensors, max_error = {}, 0.0
  for name in kept:
    value = reader.get_tensor(name)
    cast = cast_value(name, value, dtype)
    if cast is not value:
      max_error = max(max_error, float(np.max(np.abs(cast.astype(np.float32) - value), initial=0)))
    tensors[name[len(remove_prefix):]] = cast

  tf.io.gfile.makedirs(os.path.dirname(output_checkpoint) or ".")
  atomic_io.remove_stale_temporaries(os.path.dirname(output_checkpoint) or ".")
  temp = atomic_io.temporary_path(output_checkpoint)
  try:
    write_checkpoint(temp, tensors)
    verify_checkpoint(temp, tensors)
    for path in existing:  # only reached with overwrite
      tf.io.gfile.remove(path)
    for path in checkpoint_files(temp):
      tf.io.gfile.rename(path, output_checkpoint + path[len(temp):], overwrite=overwrite)
  finally:
    for path in checkpoint_files(temp):
      tf.io.gfile.remove(path)
  atomic_io.record_outputs(checkpoint_files(output_checkpoint), TOOL)
  verify_checkpoint(output_checkpoint, tensors)

  result = StripResult(
      output_checkpoint=output_checkpoint, kept=sorted(tensors), dropped_by_kind=dropped,
      bytes_before=checkpoint_bytes(prefix), bytes_after=checkpoint_bytes(output_checkpoint),
      dtype=cast_to or "float32", max_cast_error=max_error)
  _write_sidecar(result, prefix, tensors, keep, drop, remove_prefix)
  return result


def _write_sidecar(result, input_prefix, tensors, keep, drop, remove_prefix):
  record = {
      "tool": "mobilebert.strip_checkpoint",
      "input_checkpoint": input_prefix,
      "keep": list(keep), "drop": list(drop), "remove_prefix": remove_prefix,
      "dtype": result.dtype,
      "note": "float32 tensors stored as `dtype`; loaders cast them back to float32" if
              result.dtype != "float32" else "tensors as in the input",
      "max_cast_error": result.max_cast_error,
      "bytes_before": result.bytes_before, "bytes_after": result.bytes_after,
      "dropped": {kind: len(names) for kind, names in sorted(result.dropped_by_kind.items())},
      "variables": [[n, list(tensors[n].shape), str(tensors[n].dtype)] for n in result.kept],
  }
  atomic_io.write_text(result.output_checkpoint + SIDECAR_SUFFIX, json.dumps(record, indent=1) + "\n",
                       TOOL, overwrite=True, flag="--output_checkpoint")


def format_report(result):
  """Human-readable summary lines of a StripResult."""
  before, after = result.bytes_before, result.bytes_after
  lines = [f"wrote {result.output_checkpoint} ({len(result.kept)} variables, {result.dtype})",
           f"size: {before:,} bytes ({before / 2**20:.2f} MiB) -> {after:,} bytes "
           f"({after / 2**20:.2f} MiB), {after / before:.1%} of the input"]
  for kind, names in sorted(result.dropped_by_kind.items()):
    lines.append(f"dropped {len(names)} {kind} variables")
  if result.dtype != "float32":
    lines.append(f"largest change from casting to {result.dtype}: {result.max_cast_error:.3g}")
  lines.append("verified: every kept tensor equals the input" +
               (f" cast to {result.dtype}" if result.dtype != "float32" else " bit for bit"))
  return lines


FLAGS = flags.FLAGS


def define_flags():
  cli.define_verbose_flag()
  flags.DEFINE_string("input_checkpoint", None, "Checkpoint prefix (or directory) to strip; only read.")
  flags.DEFINE_string("output_checkpoint", None, "Prefix of the checkpoint to write.")
  flags.DEFINE_list("keep", list(DEFAULT_KEEP), "Glob patterns of the variables to keep.")
  flags.DEFINE_list("drop", [], "Glob patterns of kept variables to drop all the same.")
  flags.DEFINE_string("remove_prefix", "", "Prefix removed from kept names, e.g. teacher/.")
  flags.DEFINE_enum("cast_to", None, sorted(CAST_DTYPES), "Store float32 tensors in this dtype.")
  flags.DEFINE_bool("overwrite", False, "Replace an existing output checkpoint.")


def main(argv):
  del argv
  with cli.reporting_user_errors("strip_checkpoint"):
    result = strip_checkpoint(FLAGS.input_checkpoint, FLAGS.output_checkpoint, FLAGS.keep,
                              FLAGS.drop, FLAGS.remove_prefix, FLAGS.cast_to, FLAGS.overwrite)
  print("\n".join(format_report(result)))


if __name__ == "__main__":
  define_flags()
  flags.mark_flags_as_required(["input_checkpoint", "output_checkpoint"])
  cli.run_main(main, "strip_checkpoint")
