r"""What a .tflite model is made of: ops by type, their operand types, and which ones the runtime's
default CPU delegate (XNNPACK) takes over versus leaves to the interpreter's own kernels.

  python -m mobilebert.export.tflite_ops model.tflite [--runtime=litert|tensorflow]
  python -m mobilebert.export --format=tflite ... --op_report   # the same table after an export

Ops the delegate leaves run on the built-in reference/optimized kernels one by one, and on ARM builds
XNNPACK is the fast path too: the "left" column is what to look at when judging a device build.

How delegation is found: after allocate_tensors the interpreter lists the model's original nodes
followed by one DELEGATE node per partition whose inputs/outputs are the partition's boundary tensors.
A partition is convex, so walking back from its outputs to its inputs through the original nodes
collects exactly the nodes it replaced.
"""

import argparse
import collections
import sys

import tensorflow.compat.v1 as tf

from mobilebert.export import tflite_eval

OpRow = collections.namedtuple("OpRow", ["op", "count", "delegated", "operand_types"])
OpReport = collections.namedtuple("OpReport", ["runtime", "size_bytes", "rows", "partitions"])
_DELEGATE = "DELEGATE"


def _delegated_nodes(ops):
  """Indices of the original nodes that some DELEGATE node replaced."""
  by_index = {op["index"]: op for op in ops if op["op_name"] != _DELEGATE}
  producer = {int(t): i for i, op in by_index.items() for t in op["outputs"]}
  taken = set()
  for delegate in (op for op in ops if op["op_name"] == _DELEGATE):
    boundary = {int(t) for t in delegate["inputs"]}
    pending = [int(t) for t in delegate["outputs"]]
    while pending:
      tensor = pending.pop()
      node = producer.get(tensor)
      if tensor in boundary or node is None or node in taken:
        continue
      taken.add(node)
      pending.extend(int(t) for t in by_index[node]["inputs"] if t >= 0)
  return taken


def _operand_types(op, dtypes):
  """"float32,int8" for an op's present inputs (TF 2.15's interpreter does not list them per op)."""
  return ",".join(getattr(dtypes.get(int(t)), "__name__", "?") for t in op["inputs"] if t >= 0)


def op_report(model_content, runtime=None, num_threads=1):
  """An OpReport of .tflite bytes: one OpRow per (op, operand types), most frequent first."""
  interpreter, runtime = tflite_eval.make_interpreter(model_content, num_threads, runtime)
  interpreter.allocate_tensors()
  ops = interpreter._get_ops_details()  # pylint: disable=protected-access  # no public per-node API
  taken = _delegated_nodes(ops)
  dtypes = {d["index"]: d["dtype"] for d in interpreter.get_tensor_details()}
  counts = collections.Counter()
  delegated = collections.Counter()
  for op in ops:
    if op["op_name"] == _DELEGATE:
      continue
    key = (op["op_name"], _operand_types(op, dtypes))
    counts[key] += 1
    delegated[key] += op["index"] in taken
  rows = [OpRow(op, n, delegated[(op, types)], types)
          for (op, types), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
  partitions = sum(op["op_name"] == _DELEGATE for op in ops)
  return OpReport(runtime, len(model_content), rows, partitions)


def file_op_report(path, runtime=None):
  """op_report of a .tflite file (local or gs://)."""
  if not tf.io.gfile.exists(path):
    raise tflite_eval.TFLiteError(f"{path}: file not found")
  with tf.io.gfile.GFile(path, "rb") as f:
    return op_report(f.read(), runtime)


def format_op_report(report, title="model"):
  """Markdown lines: a header with size/runtime/totals, then the op table."""
  total = sum(r.count for r in report.rows)
  taken = sum(r.delegated for r in report.rows)
  lines = [f"{title}: {report.size_bytes / 2 ** 20:.2f} MB, {total} ops, runtime {report.runtime}; "
           f"XNNPACK takes {taken} in {report.partitions} partition(s), leaves {total - taken}",
           "", "| op | operand types | count | XNNPACK | left |", "|---|---|---|---|---|"]
  lines += [f"| {r.op} | {r.operand_types} | {r.count} | {r.delegated} | {r.count - r.delegated} |"
            for r in report.rows]
  return lines


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("model", help=".tflite file")
  parser.add_argument("--runtime", choices=tflite_eval.RUNTIMES, default=None,
                      help="interpreter to load it in (default: LiteRT when installed)")
  args = parser.parse_args(argv)
  try:
    report = file_op_report(args.model, args.runtime)
  except (tflite_eval.TFLiteError, ValueError, RuntimeError) as e:
    sys.exit(f"tflite_ops: error: {str(e).strip()}")
  print("\n".join(format_op_report(report, args.model)))


if __name__ == "__main__":
  main()
