"""Export to a TensorFlow SavedModel with a `serving_default` signature.

Inputs: `input_ids`, `input_mask`, `segment_ids`, int32 [batch, seq] (seq fixed by --max_seq_length or
free). Outputs: `sequence_output` [batch, seq, H], `pooled_output` [batch, H], and for a fine-tuned
classifier checkpoint `logits` and `probabilities` [batch, num_labels]; for a tagger `tag_logits` and
`tag_probabilities` [batch, seq, num_tags]; for a span (run_cmrc2018) checkpoint `start_logits` and
`end_logits` [batch, seq]; with an NSP head `nsp_logits`.
The model config and the detected heads go to `assets.extra/mobilebert_export.json`.

Verification: the loaded SavedModel and the graph built from the checkpoint run the same float32 ops, so
they agree to SAVED_MODEL_ATOL (measured: 0, bit for bit, on the goldens and a fine-tuned classifier).
"""

import collections

import tensorflow.compat.v1 as tf

from mobilebert.export import atomic
from mobilebert.export import graph
from mobilebert.export import verify

SIGNATURE_KEY = "serving_default"
SAVED_MODEL_ATOL = 1e-6

ExportResult = collections.namedtuple("ExportResult", ["path", "outputs", "checks"])


def build_serving_graph(config, init_checkpoint, seq_length=None, use_einsum=True, heads=None):
  """A new graph and session holding the serving inputs, outputs and checkpoint weights.

  Returns:
    (graph, session, {input name: placeholder}, OrderedDict {output name: tensor}, CheckpointHeads).
  """
  heads = graph.detect_heads(init_checkpoint) if heads is None else heads
  serving_graph = tf.Graph()
  with serving_graph.as_default():
    inputs = {n: tf.placeholder(tf.int32, [None, seq_length], name=n) for n in graph.INPUT_NAMES}
    outputs = graph.build_outputs(config, heads, *(inputs[n] for n in graph.INPUT_NAMES),
                                  use_einsum=use_einsum)
    session = tf.Session(graph=serving_graph)
    graph.load_variables(session, init_checkpoint)
  return serving_graph, session, inputs, outputs, heads


class SavedModelRunner:
  """Runs the `serving_default` signature of a SavedModel in a graph of its own."""

  def __init__(self, export_dir):
    self.graph = tf.Graph()
    self.session = tf.Session(graph=self.graph)
    with self.graph.as_default():
      meta = tf.saved_model.loader.load(self.session, [tf.saved_model.tag_constants.SERVING],
                                        export_dir)
    signature = meta.signature_def[SIGNATURE_KEY]
    self.inputs = {k: v.name for k, v in signature.inputs.items()}
    self.outputs = {k: v.name for k, v in signature.outputs.items()}

  def run(self, features):
    """{output name: array} for {input name: int array [B, T]}."""
    names = sorted(self.outputs)
    values = self.session.run([self.outputs[n] for n in names],
                              {self.inputs[k]: features[k] for k in self.inputs})
    return dict(zip(names, values))

  def close(self):
    self.session.close()


def export_saved_model(config, init_checkpoint, export_dir, seq_length=None, use_einsum=True,
                       overwrite=False, verify_inputs=None):
  """Writes the SavedModel to `export_dir` after checking it against the checkpoint's graph.

  Args:
    config: BertConfig of the checkpoint.
    init_checkpoint: checkpoint prefix or directory (pretrained, stripped or fine-tuned).
    export_dir: directory to create; must not exist unless `overwrite`.
    seq_length: fixed sequence length of the inputs, or None for any length.
    verify_inputs: {input name: int32 [B, T]} to verify on (default: graph.sample_inputs).
  Returns:
    ExportResult(path, output names, verification Checks).
  """
  atomic.check_output(export_dir, overwrite, "--output")
  if verify_inputs is None:
    verify_inputs = graph.sample_inputs(
        config, seq_length or min(32, config.max_position_embeddings))
  serving_graph, session, inputs, outputs, heads = build_serving_graph(
      config, init_checkpoint, seq_length, use_einsum)
  with atomic.staged(export_dir, overwrite) as temp:
    with serving_graph.as_default():
      builder = tf.saved_model.builder.SavedModelBuilder(temp)
      signature = tf.saved_model.signature_def_utils.predict_signature_def(inputs, outputs)
      builder.add_meta_graph_and_variables(session, [tf.saved_model.tag_constants.SERVING],
                                           signature_def_map={SIGNATURE_KEY: signature},
                                           strip_default_attrs=True)
      builder.save()
    session.close()
    atomic.write_json(f"{temp}/assets.extra/mobilebert_export.json", {
        "format": "saved_model", "source_checkpoint": init_checkpoint, "seq_length": seq_length,
        "heads": heads._asdict(), "outputs": list(outputs), "bert_config": config.to_dict()})
    checks = verify_saved_model(temp, config, init_checkpoint, verify_inputs, heads, use_einsum)
  return ExportResult(export_dir, list(outputs), checks)


def verify_saved_model(export_dir, config, init_checkpoint, features, heads=None, use_einsum=True):
  """Runs the SavedModel and the checkpoint's graph on `features`; raises ExportError on mismatch."""
  reference = graph.TFModel(config, init_checkpoint, heads, use_einsum=use_einsum)
  runner = SavedModelRunner(export_dir)
  try:
    want = reference.run(features["input_ids"], features["input_mask"], features["segment_ids"])
    got = runner.run(features)
  finally:
    reference.close()
    runner.close()
  checks = [verify.compare(name, got[name], want[name], SAVED_MODEL_ATOL) for name in sorted(got)]
  return verify.require(checks, f"SavedModel {export_dir}")
