"""Model configuration: the original BertConfig JSON keys, validated.

The released configs (Google BERT, RoBERTa-wwm-ext, MobileBERT students, IB-BERT) are JSON files with the
keys of the original `modeling.BertConfig`. Absent keys take the original defaults; unknown keys, wrong
types and impossible combinations raise `ConfigError` naming the file and the key.
"""

import copy
import dataclasses
import json
from typing import Optional

import tensorflow.compat.v1 as tf

NORMALIZATION_TYPES = ("layer_norm", "no_norm")
ACTIVATIONS = ("gelu", "relu", "relu6", "tanh", "linear")

# Keys that Google's Chinese BERT / RoBERTa-wwm-ext configs carry for a pooler design that BERT never
# built. The original code accepted any key; we accept exactly these and ignore them.
IGNORED_LEGACY_KEYS = frozenset({
    "directionality", "pooler_fc_size", "pooler_num_attention_heads", "pooler_num_fc_layers",
    "pooler_size_per_head", "pooler_type",
})


class ConfigError(ValueError):
  """A model config file or dict that the model cannot be built from."""


@dataclasses.dataclass
class BertConfig:
  """Architecture of a BERT / IB-BERT / MobileBERT model (field names are the original JSON keys).

  `embedding_size` and `intra_bottleneck_size` of None mean "same as hidden_size", as in the original.
  """
  vocab_size: int
  hidden_size: int = 768
  num_hidden_layers: int = 12
  num_attention_heads: int = 12
  intermediate_size: int = 3072
  hidden_act: str = "gelu"
  hidden_dropout_prob: float = 0.1
  attention_probs_dropout_prob: float = 0.1
  max_position_embeddings: int = 512
  type_vocab_size: int = 16
  initializer_range: float = 0.02
  embedding_size: Optional[int] = None
  trigram_input: bool = False
  use_bottleneck: bool = False
  intra_bottleneck_size: Optional[int] = None
  use_bottleneck_attention: bool = False
  key_query_shared_bottleneck: bool = False
  num_feedforward_networks: int = 1
  normalization_type: str = "layer_norm"
  classifier_activation: bool = True

  def __post_init__(self):
    if self.embedding_size is None:
      self.embedding_size = self.hidden_size
    if self.intra_bottleneck_size is None:
      self.intra_bottleneck_size = self.hidden_size
    self.validate()

  # -- derived sizes ---------------------------------------------------------------------------------
  @property
  def inner_size(self):
    """Width inside a layer (attention and FFN input/output): the bottleneck when used, else hidden."""
    return self.intra_bottleneck_size if self.use_bottleneck else self.hidden_size

  @property
  def attention_head_size(self):
    return self.inner_size // self.num_attention_heads

  # -- loading ---------------------------------------------------------------------------------------
  @classmethod
  def from_dict(cls, json_object, source="<dict>"):
    """Builds a config from a dict of original keys; `source` names the file in error messages."""
    if not isinstance(json_object, dict):
      raise ConfigError(f"{source}: expected a JSON object, got {type(json_object).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in json_object.items():
      if key in IGNORED_LEGACY_KEYS:
        continue
      if key not in known:
        raise ConfigError(
            f"{source}: unknown key '{key}'; expected one of {sorted(known)} "
            f"(or the ignored legacy keys {sorted(IGNORED_LEGACY_KEYS)})")
      kwargs[key] = _check_type(source, key, value, _FIELD_TYPES[key])
    if "vocab_size" not in kwargs:
      raise ConfigError(f"{source}: missing required key 'vocab_size'")
    try:
      return cls(**kwargs)
    except ConfigError as e:
      raise ConfigError(f"{source}: {e}") from None

  @classmethod
  def from_json_file(cls, json_file):
    """Reads a config file (local path or any tf.io.gfile URL such as gs://)."""
    if not tf.io.gfile.exists(json_file):
      raise ConfigError(f"{json_file}: config file not found")
    with tf.io.gfile.GFile(json_file, "r") as reader:
      text = reader.read()
    try:
      obj = json.loads(text)
    except json.JSONDecodeError as e:
      raise ConfigError(f"{json_file}: not valid JSON ({e})") from None
    return cls.from_dict(obj, source=json_file)

  def to_dict(self):
    return dataclasses.asdict(self)

  def to_json_string(self):
    return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

  def copy(self, **changes):
    """A validated copy with some fields changed."""
    new = copy.deepcopy(self)
    for key, value in changes.items():
      if not hasattr(new, key):
        raise ConfigError(f"unknown config key '{key}'")
      setattr(new, key, value)
    new.validate()
    return new

  def check_seq_length(self, max_seq_length, flag="--max_seq_length", source="the model config"):
    """Raises ConfigError when sequences of `max_seq_length` do not fit the position table."""
    if max_seq_length > self.max_position_embeddings:
      raise ConfigError(f"{flag}={max_seq_length} exceeds max_position_embeddings "
                        f"{self.max_position_embeddings} of {source}")

  # -- validation ------------------------------------------------------------------------------------
  def validate(self):
    """Raises ConfigError (naming the key) if the model cannot be built from this config."""
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                "intermediate_size", "max_position_embeddings", "type_vocab_size", "embedding_size",
                "intra_bottleneck_size", "num_feedforward_networks"):
      value = getattr(self, key)
      if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"'{key}' must be a positive integer, got {value!r}")
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
      value = getattr(self, key)
      if not 0.0 <= value < 1.0:
        raise ConfigError(f"'{key}' must be in [0, 1), got {value!r}")
    if self.initializer_range <= 0:
      raise ConfigError(f"'initializer_range' must be positive, got {self.initializer_range!r}")
    if self.normalization_type not in NORMALIZATION_TYPES:
      raise ConfigError(f"'normalization_type' must be one of {list(NORMALIZATION_TYPES)}, "
                        f"got {self.normalization_type!r}")
    if self.hidden_act not in ACTIVATIONS:
      raise ConfigError(f"'hidden_act' must be one of {list(ACTIVATIONS)}, got {self.hidden_act!r}")
    if self.use_bottleneck_attention and self.key_query_shared_bottleneck:
      raise ConfigError("'use_bottleneck_attention' and 'key_query_shared_bottleneck' cannot both be "
                        "true: they choose different inputs for the attention")
    if (self.use_bottleneck_attention or self.key_query_shared_bottleneck) and not self.use_bottleneck:
      raise ConfigError("'use_bottleneck_attention' / 'key_query_shared_bottleneck' need "
                        "'use_bottleneck': true")
    if self.inner_size % self.num_attention_heads:
      key = "intra_bottleneck_size" if self.use_bottleneck else "hidden_size"
      raise ConfigError(f"'{key}' ({self.inner_size}) must be divisible by 'num_attention_heads' "
                        f"({self.num_attention_heads})")


def _check_type(source, key, value, expected):
  """Returns `value` if it has the JSON type the key needs, else raises ConfigError."""
  if expected is bool:
    ok = isinstance(value, bool)
  elif expected is int:
    ok = isinstance(value, int) and not isinstance(value, bool)
  elif expected is float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    value = float(value) if ok else value
  elif expected is str:
    ok = isinstance(value, str)
  elif expected == "optional_int":
    ok = value is None or (isinstance(value, int) and not isinstance(value, bool))
  else:  # pragma: no cover - table below is exhaustive
    raise AssertionError(expected)
  if not ok:
    name = "integer or null" if expected == "optional_int" else expected.__name__
    raise ConfigError(f"{source}: key '{key}' must be {name}, got {value!r}")
  return value


_FIELD_TYPES = {
    "vocab_size": int, "hidden_size": int, "num_hidden_layers": int, "num_attention_heads": int,
    "intermediate_size": int, "hidden_act": str, "hidden_dropout_prob": float,
    "attention_probs_dropout_prob": float, "max_position_embeddings": int, "type_vocab_size": int,
    "initializer_range": float, "embedding_size": "optional_int", "trigram_input": bool,
    "use_bottleneck": bool, "intra_bottleneck_size": "optional_int", "use_bottleneck_attention": bool,
    "key_query_shared_bottleneck": bool, "num_feedforward_networks": int, "normalization_type": str,
    "classifier_activation": bool,
}
