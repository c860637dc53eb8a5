"""BertConfig: original keys and defaults, and clear errors for configs a model cannot be built from."""

import json

import pytest

from mobilebert.config import IGNORED_LEGACY_KEYS, BertConfig, ConfigError
from conftest import CONFIG_DIR, QAT_CONFIG, QAT_STUDENT, REFERENCE, RELEASED_CONFIGS


@pytest.mark.parametrize("name", RELEASED_CONFIGS)
def test_released_configs_resolve_like_the_original(name):
  config = BertConfig.from_json_file(str(CONFIG_DIR / f"{name}.json"))
  manifest = json.loads((REFERENCE / "manifests" / f"{name}.json").read_text())
  resolved = {k: v for k, v in manifest["config_resolved"].items() if k not in IGNORED_LEGACY_KEYS}
  assert config.to_dict() == resolved


def test_config_dir_holds_the_released_files_byte_for_byte():
  for name in RELEASED_CONFIGS:
    assert (CONFIG_DIR / f"{name}.json").read_bytes() == \
        (REFERENCE / "configs" / f"{name}.json").read_bytes()


def test_qat_config_is_the_f4_opt_student_with_relu6():
  """Google's uncased_L-24_H-128_B-512_A-4_F-4_OPT_QAT.json: the same file but `"hidden_act": "relu6"`."""
  qat = (CONFIG_DIR / f"{QAT_CONFIG}.json").read_text()
  f4_opt = (REFERENCE / "configs" / f"{QAT_STUDENT}.json").read_text()
  assert qat == f4_opt.replace('"hidden_act": "relu",', '"hidden_act": "relu6",') != f4_opt
  config = BertConfig.from_json_file(str(CONFIG_DIR / f"{QAT_CONFIG}.json"))
  assert config.to_dict() == BertConfig.from_json_file(
      str(REFERENCE / "configs" / f"{QAT_STUDENT}.json")).copy(hidden_act="relu6").to_dict()


def test_absent_keys_take_the_original_defaults():
  config = BertConfig.from_json_file(str(CONFIG_DIR / "student_base_f2.json"))
  assert config.key_query_shared_bottleneck is False  # omitted in the file
  bare = BertConfig.from_dict({"vocab_size": 100})
  assert (bare.embedding_size, bare.intra_bottleneck_size) == (768, 768)
  assert (bare.type_vocab_size, bare.normalization_type, bare.num_feedforward_networks) == (
      16, "layer_norm", 1)
  assert bare.classifier_activation is True and bare.trigram_input is False


def test_round_trip_through_json():
  config = BertConfig.from_json_file(str(CONFIG_DIR / "student_large_f4.json"))
  assert BertConfig.from_dict(json.loads(config.to_json_string())) == config


def _write(tmp_path, obj):
  path = tmp_path / "bad_config.json"
  path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
  return str(path)


def _student(**changes):
  base = json.loads((CONFIG_DIR / "student_base_f2.json").read_text())
  base.update(changes)
  return base


@pytest.mark.parametrize("changes, key", [
    ({"hidden_sise": 768}, "hidden_sise"),                       # unknown key (typo)
    ({"hidden_size": "768"}, "hidden_size"),                     # wrong type
    ({"trigram_input": 1}, "trigram_input"),                     # int is not bool
    ({"num_hidden_layers": 0}, "num_hidden_layers"),             # non-positive
    ({"intermediate_size": -1}, "intermediate_size"),
    ({"intra_bottleneck_size": 100}, "intra_bottleneck_size"),   # not divisible by 12 heads
    ({"normalization_type": "batch_norm"}, "normalization_type"),
    ({"hidden_act": "swish"}, "hidden_act"),
    ({"key_query_shared_bottleneck": True}, "key_query_shared_bottleneck"),  # with bottleneck attn
    ({"hidden_dropout_prob": 1.5}, "hidden_dropout_prob"),
])
def test_bad_configs_name_the_file_and_the_key(tmp_path, changes, key):
  path = _write(tmp_path, _student(**changes))
  with pytest.raises(ConfigError) as info:
    BertConfig.from_json_file(path)
  assert path in str(info.value) and key in str(info.value)


def test_hidden_size_not_divisible_by_heads_without_bottleneck(tmp_path):
  path = _write(tmp_path, {"vocab_size": 10, "hidden_size": 100, "num_attention_heads": 12})
  with pytest.raises(ConfigError, match="hidden_size"):
    BertConfig.from_json_file(path)


def test_missing_vocab_size_not_json_and_missing_file(tmp_path):
  with pytest.raises(ConfigError, match="vocab_size"):
    BertConfig.from_json_file(_write(tmp_path, {"hidden_size": 64}))
  with pytest.raises(ConfigError, match="not valid JSON"):
    BertConfig.from_json_file(_write(tmp_path, "{hidden_size: 64"))
  with pytest.raises(ConfigError, match="not found"):
    BertConfig.from_json_file(str(tmp_path / "absent.json"))


def test_legacy_pooler_keys_of_google_chinese_configs_are_accepted():
  config = BertConfig.from_json_file(str(CONFIG_DIR / "roberta_wwm_ext.json"))
  assert config.hidden_size == 768 and not hasattr(config, "pooler_type")
