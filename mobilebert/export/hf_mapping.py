"""TensorFlow checkpoint names and config -> Hugging Face transformers state dict and config.json.

Our own mapping (transformers' TF loader walks into `teacher/*` and fails). Rules, applied to the
checkpoint names of the model's variables only:
  bert/ -> mobilebert. or bert. (nothing for a bare base model); / -> .; layer_<i> -> layer.<i>;
  ffn_layer_<j> -> ffn.<j>; FakeLayerNorm -> LayerNorm; gamma/beta -> weight/bias;
  dense kernels [in, out] -> weight [out, in]; embedding tables -> <table>.weight;
  cls/predictions/output_bias -> cls.predictions.bias;
  cls/predictions/extra_output_weights [V, H-E] -> cls.predictions.dense.weight [H-E, V];
  cls/seq_relationship/output_{weights,bias} -> cls.seq_relationship.{weight,bias} (already [out, in]);
  output_{weights,bias} (fine-tuned classifier) and tagging/output_{weights,bias} (token tagger) ->
  classifier.{weight,bias}; cls/squad/output_{weights,bias} (span head) -> qa_outputs.{weight,bias}.
The MLM decoder is tied to the word embeddings in transformers, so it is not written.

Config: the original `gelu` is the tanh approximation, transformers' `gelu_new`. transformers'
MobileBertConfig defaults `key_query_shared_bottleneck` to true (the original: false) and other fields
differently, so config.json sets every field explicitly.
"""

import collections
import re

import numpy as np

from mobilebert import checkpoint as checkpoint_lib
from mobilebert.export.graph import ExportError

# transformers' ACT2FN names of the config's `hidden_act` values (relu6: Google's QAT student).
HF_ACTIVATIONS = {"gelu": "gelu_new", "relu": "relu", "relu6": "relu6", "tanh": "tanh",
                  "linear": "linear"}
HEADS = ("sequence_classification", "token_classification", "question_answering", "pretraining",
         "masked_lm", "base")
# Heads whose transformers model has no pooler (add_pooling_layer=False).
NO_POOLER = ("masked_lm", "token_classification", "question_answering")
ARCHITECTURES = {
    ("mobilebert", "sequence_classification"): "MobileBertForSequenceClassification",
    ("mobilebert", "token_classification"): "MobileBertForTokenClassification",
    ("mobilebert", "question_answering"): "MobileBertForQuestionAnswering",
    ("mobilebert", "pretraining"): "MobileBertForPreTraining",
    ("mobilebert", "masked_lm"): "MobileBertForMaskedLM",
    ("mobilebert", "base"): "MobileBertModel",
    ("bert", "sequence_classification"): "BertForSequenceClassification",
    ("bert", "token_classification"): "BertForTokenClassification",
    ("bert", "question_answering"): "BertForQuestionAnswering",
    ("bert", "pretraining"): "BertForPreTraining",
    ("bert", "masked_lm"): "BertForMaskedLM",
    ("bert", "base"): "BertModel",
}
LAYER_NORM_EPS = 1e-12  # the original's epsilon
_EMBEDDING_TABLES = ("word_embeddings", "position_embeddings", "token_type_embeddings")


def model_type(config):
  """'bert' for a plain BERT (the teachers RoBERTa-wwm-ext), else 'mobilebert' (students, IB-BERT)."""
  plain = (not config.trigram_input and not config.use_bottleneck and
           config.embedding_size == config.hidden_size and config.num_feedforward_networks == 1 and
           config.normalization_type == "layer_norm" and config.classifier_activation)
  return "bert" if plain else "mobilebert"


def unsupported_reason(config):
  """Why transformers cannot represent `config`, or None.

  transformers' MobileBERT sizes the query/key projections for an intra_bottleneck_size-wide input.
  With use_bottleneck but neither use_bottleneck_attention nor key_query_shared_bottleneck, the original
  feeds them the hidden_size-wide layer input (IB-BERT teachers: H 512, I 1024), so unless the two
  sizes are equal transformers' MobileBERT cannot hold the weights.
  """
  if config.hidden_act not in HF_ACTIVATIONS:
    return (f"no transformers activation is known to equal hidden_act {config.hidden_act!r} "
            f"(mapped: {sorted(HF_ACTIVATIONS)})")
  if (config.use_bottleneck and not config.use_bottleneck_attention and
      not config.key_query_shared_bottleneck and config.intra_bottleneck_size != config.hidden_size):
    return (f"transformers' MobileBERT cannot represent this config: with use_bottleneck and neither "
            f"use_bottleneck_attention nor key_query_shared_bottleneck, the query/key projections take "
            f"the {config.hidden_size}-wide layer input, but transformers builds them for "
            f"intra_bottleneck_size {config.intra_bottleneck_size} inputs (the IB-BERT teacher layout)")
  return None


def choose_head(heads, requested="auto"):
  """The transformers head for a checkpoint's CheckpointHeads: one of HEADS."""
  available = ["base"]
  if heads.masked_lm:
    available.append("masked_lm")
  if heads.masked_lm and heads.next_sentence:
    available.append("pretraining")
  if heads.num_labels:
    available.append("sequence_classification")
  if heads.num_tags:
    available.append("token_classification")
  if heads.span:
    available.append("question_answering")
  if requested == "auto":
    return next(h for h in HEADS if h in available)
  if requested not in available:
    raise ExportError(f"--hf_head={requested}: the checkpoint has the variables of {available} only "
                      "(masked_lm needs cls/predictions/*, pretraining also cls/seq_relationship/*, "
                      "sequence_classification output_weights/output_bias, token_classification "
                      "tagging/*, question_answering cls/squad/*)")
  return requested


def hf_config(config, head, num_labels=None, label_names=None):
  """config.json contents (every architecture field explicit) for `config` with `head`; `num_labels`
  and `label_names` are the classifier's classes or the tagger's tags."""
  kind = model_type(config)
  d = collections.OrderedDict(
      architectures=[ARCHITECTURES[(kind, head)]], model_type=kind,
      vocab_size=config.vocab_size, hidden_size=config.hidden_size,
      num_hidden_layers=config.num_hidden_layers, num_attention_heads=config.num_attention_heads,
      intermediate_size=config.intermediate_size, hidden_act=HF_ACTIVATIONS[config.hidden_act],
      hidden_dropout_prob=config.hidden_dropout_prob,
      attention_probs_dropout_prob=config.attention_probs_dropout_prob,
      max_position_embeddings=config.max_position_embeddings, type_vocab_size=config.type_vocab_size,
      initializer_range=config.initializer_range, layer_norm_eps=LAYER_NORM_EPS, pad_token_id=0,
      classifier_dropout=None, tie_word_embeddings=True, dtype="float32")
  if kind == "mobilebert":
    d.update(embedding_size=config.embedding_size, trigram_input=config.trigram_input,
             use_bottleneck=config.use_bottleneck, intra_bottleneck_size=config.intra_bottleneck_size,
             true_hidden_size=config.inner_size,
             use_bottleneck_attention=config.use_bottleneck_attention,
             key_query_shared_bottleneck=config.key_query_shared_bottleneck,
             num_feedforward_networks=config.num_feedforward_networks,
             normalization_type=config.normalization_type,
             classifier_activation=config.classifier_activation)
  if head in ("sequence_classification", "token_classification"):
    what = "classifier has" if head == "sequence_classification" else "tagger has"
    names = list(label_names) if label_names else [f"LABEL_{i}" for i in range(num_labels)]
    if len(names) != num_labels:
      raise ExportError(f"--label_names has {len(names)} names; the {what} {num_labels} labels")
    d.update(id2label={str(i): n for i, n in enumerate(names)},
             label2id={n: i for i, n in enumerate(names)})
    if head == "sequence_classification":
      # One output is a regression head (STS-B: finetune/classification/regression_head.py).
      d.update(problem_type="regression" if num_labels == 1 else "single_label_classification")
  if head == "question_answering":
    d.update(num_labels=2)  # start and end logits
  return d


def wanted(tf_name, head):
  """Whether checkpoint variable `tf_name` belongs to the transformers model with `head`."""
  if checkpoint_lib.OPTIMIZER_SLOT_PATTERN.search(tf_name):
    return False
  if tf_name.startswith("bert/pooler/"):
    return head not in NO_POOLER
  if tf_name.startswith("bert/"):
    return True
  if tf_name.startswith("cls/predictions/"):
    return head in ("masked_lm", "pretraining")
  if tf_name.startswith("cls/seq_relationship/"):
    return head == "pretraining"
  if tf_name in ("output_weights", "output_bias"):
    return head == "sequence_classification"
  if tf_name.startswith("tagging/"):
    return head == "token_classification"
  if tf_name.startswith("cls/squad/"):
    return head == "question_answering"
  return False


def hf_name(tf_name, kind, head):
  """(transformers state-dict key, transpose?) for a checkpoint variable name."""
  special = {
      "cls/predictions/output_bias": ("cls.predictions.bias", False),
      "cls/predictions/extra_output_weights": ("cls.predictions.dense.weight", True),
      "cls/seq_relationship/output_weights": ("cls.seq_relationship.weight", False),
      "cls/seq_relationship/output_bias": ("cls.seq_relationship.bias", False),
      "output_weights": ("classifier.weight", False),
      "output_bias": ("classifier.bias", False),
      "tagging/output_weights": ("classifier.weight", False),
      "tagging/output_bias": ("classifier.bias", False),
      "cls/squad/output_weights": ("qa_outputs.weight", False),
      "cls/squad/output_bias": ("qa_outputs.bias", False),
  }
  if tf_name in special:
    return special[tf_name]
  name = tf_name
  if name.startswith("bert/"):
    name = name[len("bert/"):] if head == "base" else f"{kind}/{name[len('bert/'):]}"
  name = re.sub(r"ffn_layer_(\d+)", r"ffn/\1", name)
  name = re.sub(r"layer_(\d+)", r"layer/\1", name)
  name = name.replace("FakeLayerNorm", "LayerNorm")
  parts = name.split("/")
  transpose = False
  if parts[-1] == "gamma":
    parts[-1] = "weight"
  elif parts[-1] == "beta":
    parts[-1] = "bias"
  elif parts[-1] == "kernel":
    parts[-1], transpose = "weight", True
  elif parts[-1] in _EMBEDDING_TABLES:
    parts.append("weight")
  return ".".join(parts), transpose


def convert_state_dict(values, config, head):
  """{transformers key: float32 array} from {checkpoint name: array} (extra names are ignored)."""
  kind = model_type(config)
  state = collections.OrderedDict()
  for tf_name in sorted(values):
    if not wanted(tf_name, head):
      continue
    key, transpose = hf_name(tf_name, kind, head)
    value = np.asarray(values[tf_name], np.float32)
    state[key] = np.ascontiguousarray(value.T if transpose else value)
  if kind == "mobilebert" and head in ("masked_lm", "pretraining") and (
      "cls.predictions.dense.weight" not in state):
    # transformers always has this [H-E, V] matrix; with E == H it is empty.
    state["cls.predictions.dense.weight"] = np.zeros(
        (config.hidden_size - config.embedding_size, config.vocab_size), np.float32)
  return state


def tokenizer_files(config, do_lower_case):
  """tokenizer_config.json and special_tokens_map.json contents for BERT's WordPiece tokenizer."""
  special = collections.OrderedDict(unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                                    cls_token="[CLS]", mask_token="[MASK]")
  tokenizer_config = collections.OrderedDict(
      tokenizer_class="BertTokenizer", do_lower_case=do_lower_case, tokenize_chinese_chars=True,
      strip_accents=None, model_max_length=config.max_position_embeddings,
      clean_up_tokenization_spaces=True, **special)
  return tokenizer_config, special
