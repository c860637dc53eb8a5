"""Variable table and parameter totals of a model config.

  python -m mobilebert.summary --bert_config_file=config/student_base_f2.json [--json]
  python -m mobilebert.summary --config_dir=config            # one table row per config

Totals follow the release README's convention: backbone (`bert/*`, embeddings + encoder + pooler),
pooler, MLM head (`cls/predictions/*`; its output matrix is the tied word embedding), and
total = backbone + MLM head (the pooler is part of the backbone).
"""

import json
import os
import sys

from absl import flags
import tensorflow.compat.v1 as tf

from mobilebert import cli
from mobilebert import heads
from mobilebert import modeling
from mobilebert.config import BertConfig

FLAGS = flags.FLAGS
flags.DEFINE_string("bert_config_file", None, "Model config JSON.")
flags.DEFINE_string("config_dir", None, "Summarize every *.json config in this directory instead.")
flags.DEFINE_bool("json", False, "Print one JSON object instead of a table.")
cli.define_verbose_flag()


def model_variables(config, seq_length=8, with_nsp=False):
  """Builds BertModel + MLM head in a fresh graph; returns [(name, shape)] in creation order."""
  graph = tf.Graph()
  with graph.as_default():
    seq_length = min(seq_length, config.max_position_embeddings)
    ids = tf.zeros([1, seq_length], tf.int32)
    model = modeling.BertModel(config, is_training=False, input_ids=ids)
    heads.masked_lm_logits(config, model.get_sequence_output(), model.get_embedding_table(),
                           tf.zeros([1, 1], tf.int32))
    if with_nsp:
      heads.next_sentence_logits(config, model.get_pooled_output())
    return [(v.name.split(":")[0], v.shape.as_list()) for v in tf.trainable_variables()]


def summarize(config):
  """Dict with keys variables, backbone_params, pooler_params, mlm_head_params, total_params."""
  variables = model_variables(config)

  def total(prefix):
    return sum(_size(shape) for name, shape in variables if name.startswith(prefix))

  backbone = total("bert/")
  mlm_head = total("cls/predictions/")
  return {
      "variables": [[name, shape] for name, shape in variables],
      "backbone_params": backbone,
      "pooler_params": total("bert/pooler/"),
      "mlm_head_params": mlm_head,
      "total_params": backbone + mlm_head,
  }


def _size(shape):
  size = 1
  for dim in shape:
    size *= dim
  return size


def format_table(summary):
  lines = [f"{'variable':<72} {'shape':>16} {'params':>12}"]
  for name, shape in summary["variables"]:
    lines.append(f"{name:<72} {str(shape):>16} {_size(shape):>12,}")
  for key in ("backbone_params", "pooler_params", "mlm_head_params", "total_params"):
    lines.append(f"{key:<72} {'':>16} {summary[key]:>12,}")
  return "\n".join(lines)


def config_table(config_dir):
  """Markdown table of every config in `config_dir`: parameters with the MLM head, in millions."""
  rows = ["| config | layers | hidden | bottleneck | FFNs | act | backbone | MLM head | total |",
          "|---|---|---|---|---|---|---|---|---|"]
  for file_name in sorted(tf.io.gfile.listdir(config_dir)):
    if not file_name.endswith(".json"):
      continue
    config = BertConfig.from_json_file(os.path.join(config_dir, file_name))
    s = summarize(config)
    bottleneck = config.intra_bottleneck_size if config.use_bottleneck else "-"
    rows.append(f"| {file_name[:-5]} | {config.num_hidden_layers} | {config.hidden_size} | "
                f"{bottleneck} | {config.num_feedforward_networks} | {config.hidden_act} | "
                f"{s['backbone_params']:,} | "
                f"{s['mlm_head_params']:,} | {s['total_params']:,} ({s['total_params'] / 1e6:.2f}M) |")
  return "\n".join(rows)


def main(argv):
  del argv
  with cli.reporting_user_errors("summary"):
    if bool(FLAGS.bert_config_file) == bool(FLAGS.config_dir):
      raise cli.FlagError("give exactly one of --bert_config_file or --config_dir")
    if FLAGS.config_dir:
      print(config_table(FLAGS.config_dir))
      return 0
    summary = summarize(BertConfig.from_json_file(FLAGS.bert_config_file))
  print(json.dumps(summary) if FLAGS.json else format_table(summary))
  return 0


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  tf.disable_eager_execution()
  sys.exit(cli.run_main(main, "summary"))
