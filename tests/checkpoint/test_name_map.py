"""The name table is one-to-one with the models' weights and with the original variables."""
import pytest

from conftest import TINY_CONFIG, original_variable_shapes
from bert_tf import BertConfig, BertEncoder, BertPretrainer
from bert_tf.checkpoint import name_map as nm


@pytest.mark.parametrize("cls,with_heads", [(BertEncoder, False), (BertPretrainer, True)])
def test_table_is_one_to_one(cls, with_heads):
  model = cls(BertConfig(**TINY_CONFIG))
  rows = nm.name_map(TINY_CONFIG["num_hidden_layers"], with_heads=with_heads)
  originals = [orig for orig, _ in rows]
  paths = [path for _, path in rows]
  assert len(set(originals)) == len(originals) and len(set(paths)) == len(paths)
  # Every model weight is filled exactly once ...
  assert sorted(paths) == sorted(w.path for w in model.weights)
  # ... and every original variable (written out independently in conftest) has a row, with the
  # same shape on both sides.
  shapes = original_variable_shapes(TINY_CONFIG, with_heads=with_heads)
  assert sorted(originals) == sorted(shapes)
  by_path = {w.path: tuple(w.shape) for w in model.weights}
  for orig, path in rows:
    assert by_path[path] == shapes[orig], orig


@pytest.mark.parametrize("name,expected", [
    ("bert/encoder/layer_11/output/dense/kernel/adam_m", True),
    ("bert/embeddings/word_embeddings/adam_v", True),
    ("global_step", True),
    ("bert/pooler/dense/kernel/Adam_1", True),
    ("current_loss_scale", True),
    ("bert/encoder/layer_11/output/dense/kernel", False),
    ("cls/predictions/output_bias", False),
    ("output_weights", False),
])
def test_optimizer_state_is_recognised(name, expected):
  assert nm.is_optimizer_state(name) is expected


def test_model_variables_of_any_depth():
  assert nm.is_model_variable("bert/encoder/layer_23/attention/self/query/kernel")
  assert nm.is_model_variable("cls/seq_relationship/output_weights")
  assert not nm.is_model_variable("output_weights")
  assert not nm.is_model_variable("bert/encoder/layer_1/attention/self/query/kernel/adam_m")
