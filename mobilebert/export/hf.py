"""Export to a Hugging Face transformers directory, verified by loading it with transformers.

Writes config.json (every field explicit, see hf_mapping), vocab.txt, tokenizer_config.json,
special_tokens_map.json and model.safetensors. Writing needs only `safetensors`; verification loads the
directory with transformers + PyTorch (test-only dependencies, imported here lazily) and compares, on a
few inputs, every hidden state, the attention probabilities (softmax of the TF graph's maps) and the
head outputs with the TF graph, to HF_ATOL, and the tokenizer's ids with ours.

Measured (float32, CPU; tests/test_export_hf.py): the students and the BERT teacher agree with the TF
graph and the goldens to <= 2.5e-6 on every output (HF_ATOL 1e-5). transformers' MobileBERT builds two
LayerNorms (embeddings, and the output of each layer's last FFN) without the config's layer_norm_eps,
so they use PyTorch's 1e-5 where the original uses 1e-12. That only touches `layer_norm` MobileBERT
layouts (IB-BERT-like; the released students use no_norm) and grows as the variance before the norm
shrinks: 5e-4 with the goldens' weight scale, 2.5e-2 for an untrained initializer_range 0.02 model.
Such exports are verified to HF_ATOL_MOBILEBERT_LAYER_NORM and log a warning. The IB-BERT teacher
layout (query/key on the H-wide layer input, H != I) has no transformers equivalent and is refused
(hf_mapping.unsupported_reason). The trigram embedding is the same in both (padding not zeroed).
"""

import collections
import json
import os
import warnings

import numpy as np
import tensorflow.compat.v1 as tf

from mobilebert import checkpoint as checkpoint_lib
from mobilebert import tokenization
from mobilebert.export import atomic
from mobilebert.export import graph
from mobilebert.export import hf_mapping
from mobilebert.export import verify

HF_ATOL = 1e-5
# `layer_norm` MobileBERT layouts: transformers' epsilon 1e-5 in two LayerNorms (see above).
HF_ATOL_MOBILEBERT_LAYER_NORM = 1e-3
TOKENIZER_SAMPLE = "中文MobileBERT：今天天气很好，我们去北京的故宫玩吧！Hello, World 2024。"

ExportResult = collections.namedtuple("ExportResult", ["path", "architecture", "checks"])
LABEL_FILE = "label_list.json"  # beside a fine-tuned checkpoint (finetune/core/model_dir.py)


def _import_hf():
  try:
    import torch  # pylint: disable=g-import-not-at-top
    import transformers  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise graph.ExportError(
        f"verifying a Hugging Face export needs torch and transformers ({e}); install the test "
        "requirements (pip install -r requirements-test.txt) or pass --noverify") from None
  return torch, transformers


def hf_tolerance(config):
  if hf_mapping.model_type(config) == "mobilebert" and config.normalization_type == "layer_norm":
    return HF_ATOL_MOBILEBERT_LAYER_NORM
  return HF_ATOL


def export_hf(config, init_checkpoint, vocab_file, output_dir, head="auto", label_names=None,
              do_lower_case=True, overwrite=False, verify_outputs=True, verify_inputs=None):
  """Writes and verifies the transformers directory `output_dir`.

  Args:
    head: "auto" or one of hf_mapping.HEADS; auto picks the fine-tuned head (sequence_classification,
      token_classification, question_answering), else pretraining with MLM and NSP heads, masked_lm
      with an MLM head, else base.
    label_names: class names of a classifier or tags of a tagger, in id order (default: the
      `labels` of label_list.json beside the checkpoint, written by run_classifier/run_tagging, when
      there are as many; else LABEL_<i>).
  Returns:
    ExportResult(path, transformers architecture, verification Checks or []).
  """
  try:
    from safetensors.numpy import save_file  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise graph.ExportError("the Hugging Face export writes safetensors: pip install safetensors")
  atomic.check_output(output_dir, overwrite, "--output")
  reason = hf_mapping.unsupported_reason(config)
  if reason:
    raise graph.ExportError(reason)
  vocab = tokenization.load_vocab(vocab_file)
  if max(vocab.values()) + 1 != config.vocab_size:
    raise graph.ExportError(f"--vocab_file {vocab_file} has {max(vocab.values()) + 1} entries, the "
                            f"config's vocab_size is {config.vocab_size}")
  heads = graph.detect_heads(init_checkpoint)
  # Before converting: a checkpoint of another architecture would convert to a broken model.
  graph.check_checkpoint_fits(config, init_checkpoint, heads)
  head = hf_mapping.choose_head(heads, head)
  num_labels = heads.num_tags if head == "token_classification" else heads.num_labels
  if label_names is None and head in ("sequence_classification", "token_classification"):
    label_names = saved_label_names(init_checkpoint, num_labels)
  hf_config = hf_mapping.hf_config(config, head, num_labels, label_names)
  # Only the model's own variables are read: a release checkpoint's teacher/* and optimizer slots are
  # never looked at (transformers' own TF loader copies teacher/ embeddings into the student).
  names = [n for n in checkpoint_lib.list_checkpoint(init_checkpoint) if hf_mapping.wanted(n, head)]
  values = checkpoint_lib.read_checkpoint_float32(init_checkpoint, names)
  state = hf_mapping.convert_state_dict(values, config, head)
  tokenizer_config, special_tokens = hf_mapping.tokenizer_files(config, do_lower_case)
  checks = []
  with atomic.staged(output_dir, overwrite) as temp:
    tf.io.gfile.makedirs(temp)
    atomic.write_json(f"{temp}/config.json", hf_config)
    atomic.write_json(f"{temp}/tokenizer_config.json", tokenizer_config)
    atomic.write_json(f"{temp}/special_tokens_map.json", special_tokens)
    tf.io.gfile.copy(vocab_file, f"{temp}/vocab.txt")
    save_file(dict(state), f"{temp}/model.safetensors", metadata={"format": "pt"})
    if verify_outputs:
      if verify_inputs is None:
        verify_inputs = graph.sample_inputs(config, min(16, config.max_position_embeddings))
      checks = verify_hf(temp, config, init_checkpoint, heads, verify_inputs, do_lower_case,
                         vocab_file)
  return ExportResult(output_dir, hf_config["architectures"][0], checks)


def saved_label_names(init_checkpoint, num_labels):
  """The `labels` of the label_list.json that a fine-tuning run wrote beside the checkpoint, if there
  are `num_labels` of them; else None."""
  directory = os.path.dirname(checkpoint_lib.resolve_checkpoint(init_checkpoint))
  path = os.path.join(directory, LABEL_FILE)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path, "r") as f:
    labels = json.loads(f.read()).get("labels")
  if not labels:  # a regression run's: no class names
    return None
  if not isinstance(labels, list) or len(labels) != num_labels:
    tf.logging.warning("%s: its labels %s do not fit the head's %d outputs; not used", path, labels,
                       num_labels)
    return None
  tf.logging.info("label names from %s", path)
  return [str(label) for label in labels]


def load_hf(model_dir):
  """(transformers model in eval mode, loading info) of an exported directory, eager attention."""
  _, transformers = _import_hf()
  config = transformers.AutoConfig.from_pretrained(model_dir)
  model_class = getattr(transformers, config.architectures[0])
  with warnings.catch_warnings():
    # MobileBERT with embedding_size == hidden_size has an empty [0, V] `cls.predictions.dense`.
    warnings.filterwarnings("ignore", "Initializing zero-element tensors")
    model, info = model_class.from_pretrained(model_dir, output_loading_info=True,
                                              attn_implementation="eager")
  problems = {k: sorted(v) for k, v in info.items() if k != "error_msgs" and v}
  if problems or info.get("error_msgs"):
    raise graph.ExportError(f"{model_dir}: transformers did not load every weight: {problems} "
                            f"{info.get('error_msgs') or ''}")
  return model.eval(), info


def run_hf(model, features):
  """{name: numpy} of a transformers model on {input name: int [B, T]}, named like TFModel outputs."""
  torch, _ = _import_hf()
  with torch.no_grad():
    out = model(input_ids=torch.as_tensor(features["input_ids"], dtype=torch.long),
                attention_mask=torch.as_tensor(features["input_mask"], dtype=torch.long),
                token_type_ids=torch.as_tensor(features["segment_ids"], dtype=torch.long),
                output_hidden_states=True, output_attentions=True, return_dict=True)
  result = {"all_encoder_layers": np.stack([h.numpy() for h in out.hidden_states]),
            "all_attention_probs": np.stack([a.numpy() for a in out.attentions])}
  result["sequence_output"] = result["all_encoder_layers"][-1]
  if getattr(out, "pooler_output", None) is not None:
    result["pooled_output"] = out.pooler_output.numpy()
  named = {"prediction_logits": "mlm_logits_all", "seq_relationship_logits": "nsp_logits",
           "start_logits": "start_logits", "end_logits": "end_logits"}
  tagger = model.config.architectures[0].endswith("ForTokenClassification")
  for key, value in out.items():
    if key in named:
      result[named[key]] = value.numpy()
    elif key == "logits":
      result["logits" if value.dim() == 2 else "tag_logits" if tagger else
             "mlm_logits_all"] = value.numpy()
  return result


def tf_reference(config, init_checkpoint, heads, features):
  """The TF graph's outputs named as run_hf's: attention softmaxed, MLM logits at every position."""
  model = graph.TFModel(config, init_checkpoint, heads, with_internals=True)
  batch, seq = features["input_ids"].shape
  positions = np.tile(np.arange(seq, dtype=np.int32), [batch, 1]) if heads.masked_lm else None
  try:
    out = model.run(features["input_ids"], features["input_mask"], features["segment_ids"], positions)
  finally:
    model.close()
  maps = out.pop("all_attention_maps")
  probs = np.exp(maps - maps.max(-1, keepdims=True))
  out["all_attention_probs"] = probs / probs.sum(-1, keepdims=True)
  if "mlm_logits" in out:
    out["mlm_logits_all"] = out.pop("mlm_logits").reshape(batch, seq, -1)
  return out


def verify_hf(model_dir, config, init_checkpoint, heads, features, do_lower_case, vocab_file):
  """Compares the transformers model in `model_dir` with the TF graph; raises ExportError on mismatch."""
  model, _ = load_hf(model_dir)
  got = run_hf(model, features)
  want = tf_reference(config, init_checkpoint, heads, features)
  tolerance = hf_tolerance(config)
  if tolerance != HF_ATOL:
    tf.logging.warning("transformers' MobileBERT uses LayerNorm epsilon 1e-5 (not 1e-12) in its "
                       "embeddings and last-FFN outputs; verifying to %g instead of %g", tolerance,
                       HF_ATOL)
  checks = [verify.compare(name, got[name], want[name], tolerance)
            for name in sorted(got) if name in want]
  checks.append(_tokenizer_check(model_dir, vocab_file, do_lower_case))
  return verify.require(checks, f"transformers model {model_dir}")


def _tokenizer_check(model_dir, vocab_file, do_lower_case):
  """A Check counting the token ids where transformers' tokenizer and ours disagree on a sample."""
  _, transformers = _import_hf()
  theirs = transformers.AutoTokenizer.from_pretrained(model_dir)(
      TOKENIZER_SAMPLE, add_special_tokens=False)["input_ids"]
  ours_tokenizer = tokenization.FullTokenizer(vocab_file, do_lower_case=do_lower_case)
  ours = ours_tokenizer.convert_tokens_to_ids(ours_tokenizer.tokenize(TOKENIZER_SAMPLE))
  differ = sum(a != b for a, b in zip(theirs, ours)) + abs(len(theirs) - len(ours))
  return verify.Check("tokenizer_ids", "count_differing", float(differ), 0.0)
