"""tf.train.Example bytes for pretraining instances, encoded directly (no protobuf objects).

Workers encode their instances themselves: building Example protos and serializing them costs more than
the rest of an instance. The bytes parse to the same Example as one built with the protobuf API, with
the features in the order of PRETRAINING_FEATURES (tests check both).
"""

import struct

from pretrain.pretraining_input import PRETRAINING_FEATURES

# Wire-format tags: (field number << 3) | 2, "length-delimited". Every level of tf.train.Example is
# field 1 (Example.features, Features.feature map entries, map keys, packed list values) except the map
# value (field 2) and the list inside a Feature (float_list is field 2, int64_list field 3).
_TAG_1 = b"\x0a"
_TAG_2 = b"\x12"
_LIST_TAGS = {"float32": b"\x12", "int64": b"\x1a"}

_VARINT_TABLE_SIZE = 1 << 16
_VARINT_TABLE = []  # _VARINT_TABLE[i] == _varint(i): ids, positions and lengths are small


def _varint(value):
  if 0 <= value < len(_VARINT_TABLE):
    return _VARINT_TABLE[value]
  value &= 0xFFFFFFFFFFFFFFFF  # int64 as the wire sees it (two's complement)
  out = bytearray()
  while value > 0x7F:
    out.append((value & 0x7F) | 0x80)
    value >>= 7
  out.append(value)
  return bytes(out)


_VARINT_TABLE.extend(_varint(i) for i in range(_VARINT_TABLE_SIZE))


def _int64_payload(values):
  if values and 0 <= min(values) and max(values) < _VARINT_TABLE_SIZE:
    return b"".join(map(_VARINT_TABLE.__getitem__, values))
  return b"".join(map(_varint, values))


def _float_payload(values):
  return struct.pack(f"<{len(values)}f", *values)


_PAYLOADS = {"int64": _int64_payload, "float32": _float_payload}
_KEYS = {f.name: _TAG_1 + _varint(len(f.name)) + f.name.encode("utf-8") for f in PRETRAINING_FEATURES}


def _map_entry(key, list_tag, payload):
  """Features.feature entry {key: Feature{<list>{value: payload (packed)}}}, lengths from the inside out."""
  packed_len = _varint(len(payload))
  list_size = 1 + len(packed_len) + len(payload)
  list_len = _varint(list_size)
  feature_size = 1 + len(list_len) + list_size
  feature_len = _varint(feature_size)
  entry_size = len(key) + 1 + len(feature_len) + feature_size
  return b"".join((_TAG_1, _varint(entry_size), key, _TAG_2, feature_len, list_tag, list_len,
                   _TAG_1, packed_len, payload))


def encode_example(values):
  """Serialized tf.train.Example from a dict name -> list of numbers (every PRETRAINING_FEATURES name).

  int64 values must be non-negative (all of ours are); the bytes parse to the same Example as one
  built with the protobuf API.
  """
  features = b"".join(_map_entry(_KEYS[f.name], _LIST_TAGS[f.dtype], _PAYLOADS[f.dtype](values[f.name]))
                      for f in PRETRAINING_FEATURES)
  return _TAG_1 + _varint(len(features)) + features


_ZERO = b"\x00"  # varint 0
_ONE = b"\x01"  # varint 1
_FLOAT_ONE = struct.pack("<f", 1.0)
_FLOAT_ZERO = struct.pack("<f", 0.0)


class InstanceEncoder:
  """Encodes one masked instance, zero-padded to the fixed lengths, in a few byte joins.

  Padding is cheap in the wire format: a packed int64 zero is the byte 0, a float zero four bytes 0.
  """

  def __init__(self, max_seq_length, max_predictions_per_seq, vocab_size):
    self.max_seq_length = max_seq_length
    self.max_predictions_per_seq = max_predictions_per_seq
    # Every id, position and segment id is below this: one table lookup per value.
    size = max(vocab_size, max_seq_length, 2)
    self._varints = (_VARINT_TABLE if size <= len(_VARINT_TABLE)
                     else [_varint(i) for i in range(size)]).__getitem__
    self._heads = [(f.name, _KEYS[f.name], _LIST_TAGS[f.dtype]) for f in PRETRAINING_FEATURES]

  def encode(self, input_ids, segment_ids, positions, label_ids, is_random_next):
    """Serialized Example of one instance: lists without padding, positions sorted."""
    num_tokens, num_predictions = len(input_ids), len(positions)
    pad = self.max_seq_length - num_tokens
    pred_pad = self.max_predictions_per_seq - num_predictions
    if pad < 0 or pred_pad < 0:
      raise ValueError(f"instance of {num_tokens} tokens / {num_predictions} predictions does not fit "
                       f"max_seq_length={self.max_seq_length} / "
                       f"max_predictions_per_seq={self.max_predictions_per_seq}")
    varints = self._varints
    payloads = {
        "input_ids": b"".join(map(varints, input_ids)) + _ZERO * pad,
        "input_mask": _ONE * num_tokens + _ZERO * pad,
        "segment_ids": b"".join(map(varints, segment_ids)) + _ZERO * pad,
        "masked_lm_positions": b"".join(map(varints, positions)) + _ZERO * pred_pad,
        "masked_lm_ids": b"".join(map(varints, label_ids)) + _ZERO * pred_pad,
        "masked_lm_weights": _FLOAT_ONE * num_predictions + _FLOAT_ZERO * pred_pad,
        "next_sentence_labels": _ONE if is_random_next else _ZERO,
    }
    features = b"".join(_map_entry(key, tag, payloads[name]) for name, key, tag in self._heads)
    return _TAG_1 + _varint(len(features)) + features
