"""BertConfig: the fields of Google's bert_config.json, verbatim."""
import copy
import json

import tensorflow as tf
from absl import logging

from bert_tf import files
from bert_tf.errors import InputFileError

# hidden_act names this package computes (bert_tf.layers.activations); "gelu" is the tanh
# approximation that Google's modeling.py and the TF Model Garden use.
ACTIVATIONS = ("gelu", "gelu_exact", "relu", "tanh", "linear")

# Fields of Google's bert_config.json with their defaults (modeling.BertConfig.__init__).
_DEFAULTS = dict(
    vocab_size=None,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    hidden_act="gelu",
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
    max_position_embeddings=512,
    type_vocab_size=16,
    initializer_range=0.02,
)


# Fields of the released configs that this model does not use (the Chinese / BERT-wwm releases'
# pooler description): kept and written back, accepted without a warning.
RELEASED_EXTRA_FIELDS = ("directionality", "pooler_fc_size", "pooler_num_attention_heads",
                         "pooler_num_fc_layers", "pooler_size_per_head", "pooler_type")


class BertConfigError(InputFileError):
  """A bert_config.json field has an invalid value; the message names the field."""


class BertConfig:
  """Configuration of a BERT model, with the field names of Google's bert_config.json.

  Fields other than the eleven original ones (the `pooler_*` and `directionality` fields of the
  Chinese releases, for example) are kept in `extra_fields` and written back unchanged.
  """

  def __init__(self, vocab_size, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
               intermediate_size=3072, hidden_act="gelu", hidden_dropout_prob=0.1,
               attention_probs_dropout_prob=0.1, max_position_embeddings=512, type_vocab_size=16,
               initializer_range=0.02, **extra_fields):
    self.vocab_size = vocab_size
    self.hidden_size = hidden_size
    self.num_hidden_layers = num_hidden_layers
    self.num_attention_heads = num_attention_heads
    self.intermediate_size = intermediate_size
    self.hidden_act = hidden_act
    self.hidden_dropout_prob = hidden_dropout_prob
    self.attention_probs_dropout_prob = attention_probs_dropout_prob
    self.max_position_embeddings = max_position_embeddings
    self.type_vocab_size = type_vocab_size
    self.initializer_range = initializer_range
    self.extra_fields = dict(extra_fields)
    self.validate()

  @property
  def head_size(self):
    return self.hidden_size // self.num_attention_heads

  def validate(self, source="BertConfig"):
    """Raises BertConfigError naming the first invalid field."""
    def fail(field, expected):
      raise BertConfigError(f"{source}: field '{field}' = {getattr(self, field)!r}; expected {expected}")

    for field in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                  "intermediate_size", "max_position_embeddings", "type_vocab_size"):
      value = getattr(self, field)
      if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        fail(field, "a positive integer")
    if self.hidden_size % self.num_attention_heads:
      fail("hidden_size", f"a multiple of num_attention_heads ({self.num_attention_heads})")
    if not isinstance(self.hidden_act, str) or self.hidden_act.lower() not in ACTIVATIONS:
      fail("hidden_act", f"one of {', '.join(ACTIVATIONS)}")
    for field in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
      value = getattr(self, field)
      if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        fail(field, "a number in [0, 1)")
    value = self.initializer_range
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
      fail("initializer_range", "a positive number")

  @classmethod
  def from_dict(cls, json_object, source="BertConfig", require_all_fields=False):
    """Builds a config from a dict with bert_config.json keys; unknown keys go to extra_fields.

    Args:
      require_all_fields: refuse a dict without one of the eleven original fields (a
        bert_config.json names them all; a missing one usually means a misspelled one, which
        would otherwise silently build a model of the default size). Unknown fields other than
        RELEASED_EXTRA_FIELDS are logged as a warning.
    """
    if not isinstance(json_object, dict):
      raise BertConfigError(f"{source}: expected a JSON object, got {type(json_object).__name__}")
    required = list(_DEFAULTS) if require_all_fields else ["vocab_size"]
    missing = [field for field in required if field not in json_object]
    unknown = sorted(k for k in json_object if k not in _DEFAULTS and k not in RELEASED_EXTRA_FIELDS)
    if missing:
      hint = f" (unknown fields: {', '.join(unknown)}; misspelled?)" if unknown else ""
      raise BertConfigError(f"{source}: field{'s' if len(missing) > 1 else ''} "
                            f"{', '.join(repr(m) for m in missing)} {'are' if len(missing) > 1 else 'is'} "
                            f"missing{hint}")
    for field in unknown:
      logging.warning("%s: unknown field '%s' is kept but not used by the model", source, field)
    kwargs = {key: json_object.get(key, default) for key, default in _DEFAULTS.items()}
    extra = {k: v for k, v in json_object.items() if k not in _DEFAULTS}
    try:
      return cls(**kwargs, **extra)
    except BertConfigError as e:
      raise BertConfigError(str(e).replace("BertConfig:", f"{source}:", 1)) from None

  @classmethod
  def from_json_file(cls, json_file):
    """Reads a bert_config.json (local path or any tf.io.gfile path such as gs://)."""
    try:
      with tf.io.gfile.GFile(json_file, "r") as reader:
        text = reader.read()
    except tf.errors.NotFoundError:
      raise FileNotFoundError(f"bert config file not found: {json_file}") from None
    try:
      data = json.loads(text)
    except json.JSONDecodeError as e:
      raise BertConfigError(f"{json_file}: not valid JSON (line {e.lineno}, column {e.colno}): {e.msg}") from None
    return cls.from_dict(data, source=str(json_file), require_all_fields=True)

  def to_dict(self):
    output = {key: getattr(self, key) for key in _DEFAULTS}
    output.update(copy.deepcopy(self.extra_fields))
    return output

  def to_json_string(self):
    return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

  def to_json_file(self, json_file):
    """Writes the config atomically (temporary name, then rename), readable as any file the
    user creates; gs:// paths via tf.io.gfile."""
    files.write_text_atomically(json_file, self.to_json_string())

  def __eq__(self, other):
    return isinstance(other, BertConfig) and self.to_dict() == other.to_dict()

  def __repr__(self):
    return f"BertConfig({self.to_dict()})"


# Fields that set a weight's shape: a checkpoint restores only into a model that agrees on them.
SHAPE_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "intermediate_size",
                "max_position_embeddings", "type_vocab_size")


def claim_model_dir(config, model_dir):
  """Writes model_dir/bert_config.json, the configuration of the checkpoints a run keeps there,
  after checking that checkpoints already in model_dir were made with the same shapes: resuming
  from another model's checkpoints fails deep in TensorFlow ("Received incompatible tensor with
  shape (32,)") after the model is built.

  Raises:
    FlagError: model_dir holds checkpoints of a configuration of other shapes.
  """
  from bert_tf.errors import FlagError  # pylint: disable=import-outside-toplevel
  path = f"{str(model_dir).rstrip('/')}/bert_config.json"
  if tf.io.gfile.exists(path) and tf.train.latest_checkpoint(str(model_dir)):
    previous = BertConfig.from_json_file(path)
    differ = [f"{field} {getattr(previous, field)} there, {getattr(config, field)} now"
              for field in SHAPE_FIELDS if getattr(previous, field) != getattr(config, field)]
    if differ:
      raise FlagError(f"--output_dir={model_dir} holds checkpoints of another model "
                      f"configuration ({'; '.join(differ)}, see {path}); choose a new "
                      "--output_dir, or use that run's bert_config.json")
  config.to_json_file(path)
