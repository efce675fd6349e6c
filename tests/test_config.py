"""BertConfig reads Google's bert_config.json and names bad fields."""
import json

import pytest

from conftest import TINY_CONFIG, shared_path
from bert_tf import BertConfig, BertConfigError


@pytest.mark.parametrize("name,vocab", [("uncased_L-12_H-768_A-12_bert_config.json", 30522),
                                        ("chinese_L-12_H-768_A-12_bert_config.json", 21128)])
def test_reads_released_configs(tmp_path, name, vocab):
  path = shared_path(f"bert_config/{name}")
  config = BertConfig.from_json_file(path)
  raw = json.loads(path.read_text())
  assert config.vocab_size == vocab and config.hidden_size == 768 and config.num_hidden_layers == 12
  assert config.hidden_act == "gelu" and config.type_vocab_size == 2
  assert config.to_dict() == raw  # extra fields (pooler_*, directionality) survive unchanged
  config.to_json_file(tmp_path / "out.json")
  assert BertConfig.from_json_file(tmp_path / "out.json") == config


def test_roberta_wwm_style_extra_fields(tmp_path):
  raw = {"attention_probs_dropout_prob": 0.1, "directionality": "bidi", "hidden_act": "gelu",
         "hidden_dropout_prob": 0.1, "hidden_size": 1024, "initializer_range": 0.02,
         "intermediate_size": 4096, "max_position_embeddings": 512, "num_attention_heads": 16,
         "num_hidden_layers": 24, "pooler_fc_size": 768, "pooler_num_attention_heads": 12,
         "pooler_num_fc_layers": 3, "pooler_size_per_head": 128, "pooler_type": "first_token_transform",
         "type_vocab_size": 2, "vocab_size": 21128, "output_past": True, "layer_norm_eps": 1e-12}
  (tmp_path / "c.json").write_text(json.dumps(raw))
  config = BertConfig.from_json_file(tmp_path / "c.json")
  assert config.head_size == 64 and config.extra_fields["pooler_type"] == "first_token_transform"
  assert config.to_dict() == raw


@pytest.mark.parametrize("field,value,expected", [
    ("hidden_size", 30, "multiple of num_attention_heads"),
    ("num_hidden_layers", -1, "positive integer"),
    ("intermediate_size", 0, "positive integer"),
    ("vocab_size", "99", "positive integer"),
    ("hidden_act", "swishy", "one of gelu"),
    ("hidden_dropout_prob", 1.5, r"\[0, 1\)"),
    ("initializer_range", -0.02, "positive number"),
])
def test_invalid_field_is_named(tmp_path, field, value, expected):
  raw = dict(TINY_CONFIG)
  raw[field] = value
  path = tmp_path / "bad_config.json"
  path.write_text(json.dumps(raw))
  with pytest.raises(BertConfigError, match=f"bad_config.json: field '{field}'.*{expected}"):
    BertConfig.from_json_file(path)


def test_missing_vocab_size_and_bad_json(tmp_path):
  (tmp_path / "a.json").write_text(json.dumps({k: v for k, v in TINY_CONFIG.items()
                                               if k != "vocab_size"}))
  with pytest.raises(BertConfigError, match="'vocab_size' is missing"):
    BertConfig.from_json_file(tmp_path / "a.json")
  (tmp_path / "b.json").write_text('{"vocab_size": 32,\n}')
  with pytest.raises(BertConfigError, match="not valid JSON .line 2"):
    BertConfig.from_json_file(tmp_path / "b.json")
  with pytest.raises(FileNotFoundError, match="nope.json"):
    BertConfig.from_json_file(tmp_path / "nope.json")


def test_defaults_are_googles():
  config = BertConfig(vocab_size=10)
  assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads,
          config.intermediate_size, config.max_position_embeddings, config.type_vocab_size,
          config.initializer_range) == (768, 12, 12, 3072, 512, 16, 0.02)


def test_misspelled_field_is_refused_and_named(tmp_path):
  """A bert_config.json misses a field when one is misspelled: refused, naming both (it used
  to build a 768-wide model and keep `hiden_size` as an extra). Mutation: from_json_file without
  require_all_fields builds the default-size model and this test fails."""
  raw = dict(TINY_CONFIG)
  raw["hiden_size"] = raw.pop("hidden_size")
  (tmp_path / "c.json").write_text(json.dumps(raw))
  with pytest.raises(BertConfigError, match=r"c.json: field 'hidden_size' is missing "
                                            r"\(unknown fields: hiden_size; misspelled\?\)"):
    BertConfig.from_json_file(tmp_path / "c.json")
  # The Python API keeps Google's defaults for fields not given (BertConfig(vocab_size=...)).
  assert BertConfig.from_dict({"vocab_size": 10}).hidden_size == 768


def test_unknown_fields_warn_released_extras_do_not(tmp_path, caplog):
  released = dict(TINY_CONFIG, directionality="bidi", pooler_fc_size=768, pooler_type="first_token_transform",
                  pooler_num_attention_heads=12, pooler_num_fc_layers=3, pooler_size_per_head=128)
  (tmp_path / "released.json").write_text(json.dumps(released))
  with caplog.at_level("WARNING"):
    BertConfig.from_json_file(tmp_path / "released.json")
  assert not [r for r in caplog.records if "unknown field" in r.getMessage()]
  (tmp_path / "odd.json").write_text(json.dumps(dict(TINY_CONFIG, layer_norm_eps=1e-12, hidden_dim=5)))
  with caplog.at_level("WARNING"):
    config = BertConfig.from_json_file(tmp_path / "odd.json")
  warned = sorted(r.getMessage() for r in caplog.records if "unknown field" in r.getMessage())
  assert len(warned) == 2 and "'hidden_dim'" in warned[0] and "'layer_norm_eps'" in warned[1]
  assert config.extra_fields == {"layer_norm_eps": 1e-12, "hidden_dim": 5}


def test_written_config_is_readable_by_others(tmp_path):
  """to_json_file used mkstemp's 0600 whatever the umask; now 0666 minus the umask."""
  import os
  old = os.umask(0o022)
  try:
    BertConfig(**TINY_CONFIG).to_json_file(tmp_path / "bert_config.json")
  finally:
    os.umask(old)
  assert (tmp_path / "bert_config.json").stat().st_mode & 0o777 == 0o644
  assert [p.name for p in tmp_path.iterdir()] == ["bert_config.json"]
