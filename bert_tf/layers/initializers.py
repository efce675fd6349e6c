"""The weight initializer of the original BERT."""
import keras


def truncated_normal(initializer_range):
  """Truncated normal with stddev initializer_range (modeling.create_initializer)."""
  return keras.initializers.TruncatedNormal(stddev=initializer_range)
