r"""Exports a checkpoint: `python -m mobilebert.export --format=saved_model|tflite|hf ...`.

  python -m mobilebert.export --format=saved_model --bert_config_file=C --init_checkpoint=P \
      --output=export/saved_model [--max_seq_length=128]
  python -m mobilebert.export --format=tflite --bert_config_file=C --init_checkpoint=P \
      --output=export/model.int8.tflite --tflite_variant=full_int8 \
      --representative_tfrecords=data/train.tf_record --max_seq_length=128
  python -m mobilebert.export ... --format=tflite --op_report   # + ops by type, XNNPACK-delegated
  (--tflite_variant: float32, float16, dynamic_int8, full_int8 (integer-only) or int8_float_softmax
  (int8 but for the attention's mask and softmax: the fast one on CPUs, export/tflite.py))
  python -m mobilebert.export --format=hf --bert_config_file=C --init_checkpoint=P \
      --vocab_file=vocab.txt --output=export/hf [--hf_head=auto] [--label_names=neg,pos]

Every export is written under a temporary name, run on a few inputs and compared with the TensorFlow
graph (tolerances in saved_model.py, tflite.py, hf.py), and only then renamed to --output.
"""

from absl import flags
import tensorflow.compat.v1 as tf

from mobilebert import atomic_io
from mobilebert import checkpoint as checkpoint_lib
from mobilebert import cli
from mobilebert.config import BertConfig
from mobilebert.export import graph
from mobilebert.export import hf_mapping
from mobilebert.export import tflite as tflite_lib
from mobilebert.export import verify

FLAGS = flags.FLAGS
flags.DEFINE_enum("format", None, ["saved_model", "tflite", "hf"], "What to export to.")
flags.DEFINE_string("bert_config_file", None, "Model config JSON of the checkpoint.")
flags.DEFINE_string("init_checkpoint", None, "Checkpoint prefix or directory (pretrained, stripped, "
                    "16-bit or fine-tuned).")
flags.DEFINE_string("output", None, "SavedModel directory, .tflite file or transformers directory.")
flags.DEFINE_bool("overwrite", False, "Replace an existing --output.")
flags.DEFINE_integer("max_seq_length", None, "Sequence length of the inputs: free for saved_model "
                     "by default, 128 for tflite by default.")
flags.DEFINE_bool("use_einsum", None, "Dense layers as einsum (default: true for saved_model, false "
                  "for tflite, where 2-D matmuls become FULLY_CONNECTED kernels).")
flags.DEFINE_enum("tflite_variant", "float32", sorted(tflite_lib.VARIANTS), "TFLite numerics.")
flags.DEFINE_list("representative_tfrecords", None, "TFRecords (globs) with input_ids/input_mask/"
                  "segment_ids to calibrate full_int8 on (and verify every TFLite variant on).")
flags.DEFINE_integer("num_calibration_examples", 100, "Examples read from --representative_tfrecords.")
flags.DEFINE_string("vocab_file", None, "Vocab file (hf: copied into the directory).")
flags.DEFINE_enum("hf_head", "auto", ["auto"] + list(hf_mapping.HEADS), "transformers head class.")
flags.DEFINE_list("label_names", None, "Class names of a fine-tuned classifier, or tag names of a "
                  "tagger, in id order (default LABEL_<i>).")
flags.DEFINE_bool("do_lower_case", True, "Tokenizer lower-casing (hf tokenizer_config).")
flags.DEFINE_bool("op_report", False, "tflite only: print the model's ops by type and which ones the "
                  "XNNPACK delegate takes (see mobilebert/export/tflite_ops.py).")
flags.DEFINE_bool("verify", True, "hf only: load the export with transformers and compare outputs.")
cli.define_verbose_flag()


def run_export(config):
  """Runs the chosen export; returns the report lines."""
  if FLAGS.format == "saved_model":
    from mobilebert.export import saved_model  # pylint: disable=g-import-not-at-top
    result = saved_model.export_saved_model(
        config, FLAGS.init_checkpoint, FLAGS.output, FLAGS.max_seq_length,
        True if FLAGS.use_einsum is None else FLAGS.use_einsum, FLAGS.overwrite)
    lines = [f"wrote SavedModel {result.path} (signature serving_default: {', '.join(result.outputs)})"]
  elif FLAGS.format == "tflite":
    result = tflite_lib.export_tflite(
        config, FLAGS.init_checkpoint, FLAGS.output, FLAGS.tflite_variant,
        FLAGS.max_seq_length or 128, FLAGS.representative_tfrecords, FLAGS.num_calibration_examples,
        bool(FLAGS.use_einsum), FLAGS.overwrite)
    lines = [f"wrote TFLite {result.variant} {result.path} ({result.size:,} bytes; outputs "
             f"{', '.join(result.outputs)})"]
    if FLAGS.op_report:
      from mobilebert.export import tflite_ops  # pylint: disable=g-import-not-at-top
      lines += tflite_ops.format_op_report(tflite_ops.file_op_report(result.path), result.path)
  else:
    from mobilebert.export import hf  # pylint: disable=g-import-not-at-top
    if not FLAGS.vocab_file:
      raise graph.ExportError("--format=hf needs --vocab_file")
    result = hf.export_hf(config, FLAGS.init_checkpoint, FLAGS.vocab_file, FLAGS.output,
                          FLAGS.hf_head, FLAGS.label_names, FLAGS.do_lower_case, FLAGS.overwrite,
                          FLAGS.verify)
    lines = [f"wrote transformers {result.architecture} to {result.path}"]
  if result.checks:
    lines.append("verified against the TensorFlow graph:")
    lines.extend(verify.format_checks(result.checks))
  else:
    lines.append("not verified (--noverify)")
  return lines


def check_inputs_spared():
  """--output (and a .tflite's .json record) must not be, or hold, any input of the export."""
  outputs = [FLAGS.output] + ([FLAGS.output + ".json"] if FLAGS.format == "tflite" else [])
  prefix = checkpoint_lib.resolve_checkpoint(FLAGS.init_checkpoint)
  tfrecords = [p for pattern in FLAGS.representative_tfrecords or [] for p in tf.io.gfile.glob(pattern)]
  atomic_io.check_spares_inputs({"--output": outputs}, {
      "--bert_config_file": FLAGS.bert_config_file, "--vocab_file": FLAGS.vocab_file,
      "--init_checkpoint": [FLAGS.init_checkpoint] + atomic_io.checkpoint_inputs(prefix),
      "--representative_tfrecords": tfrecords})


def main(argv):
  del argv
  with cli.reporting_user_errors("export"):
    config = BertConfig.from_json_file(FLAGS.bert_config_file)
    check_inputs_spared()
    lines = run_export(config)
  print("\n".join(lines))


if __name__ == "__main__":
  flags.mark_flags_as_required(["format", "bert_config_file", "init_checkpoint", "output"])
  cli.run_main(main, "export")
