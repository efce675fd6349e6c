"""The one table between original TF1 BERT variable names and bert_tf Keras weight paths.

Each row is (original name template, Keras weight path template); `{i}` stands for the layer
index. The Keras layers are nested so that paths mirror the original scopes (BertEncoder drops
the leading `bert/`), which keeps every row a pure rename: no transposes or reshapes, because
the layers keep the original kernel layouts. Loading reads the table left to right, saving right
to left; tests/checkpoint/test_name_map.py asserts it is one-to-one against the models' weights.
"""
import re

EMBEDDINGS = (
    ("bert/embeddings/word_embeddings", "embeddings/word_embeddings"),
    ("bert/embeddings/token_type_embeddings", "embeddings/token_type_embeddings"),
    ("bert/embeddings/position_embeddings", "embeddings/position_embeddings"),
    ("bert/embeddings/LayerNorm/gamma", "embeddings/LayerNorm/gamma"),
    ("bert/embeddings/LayerNorm/beta", "embeddings/LayerNorm/beta"),
)

LAYER = tuple(
    (f"bert/encoder/layer_{{i}}/{scope}", f"encoder/layer_{{i}}/{scope}")
    for scope in (
        "attention/self/query/kernel",
        "attention/self/query/bias",
        "attention/self/key/kernel",
        "attention/self/key/bias",
        "attention/self/value/kernel",
        "attention/self/value/bias",
        "attention/output/dense/kernel",
        "attention/output/dense/bias",
        "attention/output/LayerNorm/gamma",
        "attention/output/LayerNorm/beta",
        "intermediate/dense/kernel",
        "intermediate/dense/bias",
        "output/dense/kernel",
        "output/dense/bias",
        "output/LayerNorm/gamma",
        "output/LayerNorm/beta",
    ))

POOLER = (
    ("bert/pooler/dense/kernel", "pooler/dense/kernel"),
    ("bert/pooler/dense/bias", "pooler/dense/bias"),
)

PRETRAINING_HEADS = (
    ("cls/predictions/transform/dense/kernel", "cls/predictions/transform/dense/kernel"),
    ("cls/predictions/transform/dense/bias", "cls/predictions/transform/dense/bias"),
    ("cls/predictions/transform/LayerNorm/gamma", "cls/predictions/transform/LayerNorm/gamma"),
    ("cls/predictions/transform/LayerNorm/beta", "cls/predictions/transform/LayerNorm/beta"),
    ("cls/predictions/output_bias", "cls/predictions/output_bias"),
    ("cls/seq_relationship/output_weights", "cls/seq_relationship/output_weights"),
    ("cls/seq_relationship/output_bias", "cls/seq_relationship/output_bias"),
)

# Variables of training checkpoints that are not model weights: optimizer slots of Adam/AdamW/
# LAMB/momentum, step counters and loss-scale state. They are skipped on load and dropped by slim.
OPTIMIZER_STATE = re.compile(
    r"(^|/)(adam_m|adam_v|lamb_m|lamb_v|Adam(_\d+)?|LAMB(_\d+)?|Momentum|AdamWeightDecay(_\d+)?|"
    r"ExponentialMovingAverage)$"
    r"|^(global_step|good_steps|current_loss_scale|loss_scale|beta1_power|beta2_power)$")

_INDEX = re.compile(r"layer_(\d+)/")


def name_map(num_layers, with_heads=False):
  """Expands the table for a model with `num_layers` transformer blocks.

  Returns:
    list of (original name, Keras weight path) pairs.
  """
  rows = list(EMBEDDINGS)
  rows += [(orig.format(i=i), path.format(i=i)) for i in range(num_layers) for orig, path in LAYER]
  rows += list(POOLER)
  if with_heads:
    rows += list(PRETRAINING_HEADS)
  return rows


def is_optimizer_state(name):
  """True for optimizer slots, step counters and loss-scale state of a training checkpoint."""
  return bool(OPTIMIZER_STATE.search(name))


def is_model_variable(name):
  """True when `name` is a weight of a BERT model with any number of layers."""
  generic = _INDEX.sub("layer_{i}/", name, count=1)
  return any(generic == orig for orig, _ in EMBEDDINGS + LAYER + POOLER + PRETRAINING_HEADS)


def layer_index(name):
  """The layer number in an original variable name, or None."""
  match = _INDEX.search(name)
  return int(match.group(1)) if match else None
