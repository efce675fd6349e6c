"""Feature extraction as a library: reading the input lines, the layers' activations and sentence
vectors of each input, and attention heat maps. The program is finetuning/extract_features.py;
tests and user code import this module (the program's module defines flags)."""
import json
import os

from bert_tf import errors


def read_inputs(path):
  """(text_a, text_b or None) per non-empty line; errors name the line."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  pairs = []
  with tf.io.gfile.GFile(path, "rb") as f:
    for number, raw in enumerate(f, start=1):
      line = raw.decode("utf-8", errors="ignore").strip()
      if not line:
        continue
      parts = line.split(" ||| ")
      if len(parts) > 2:
        raise errors.InputFileError(f"{path}:{number}: more than one ' ||| ' separator")
      pairs.append((parts[0], parts[1] if len(parts) == 2 else None))
  if not pairs:
    raise errors.InputFileError(f"{path} has no input lines")
  return pairs


def extract(encoder, tokenizer, pairs, layers, max_seq_length, batch_size):
  """Yields per input: (input_ids [length], {layer: [length, hidden]}, pooled, mean_pooled),
  length = the real tokens. Pairs and single texts may be mixed (grouped per batch). Only real
  tokens are read, so the encoder skips padding (token_rows.reading_real_positions)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from bert_tf.layers import token_rows  # pylint: disable=import-outside-toplevel
  from finetuning.classifier_features import encode_texts  # pylint: disable=import-outside-toplevel
  num_layers = encoder.config.num_hidden_layers
  for start in range(0, len(pairs), batch_size):
    chunk = pairs[start:start + batch_size]
    results = {}
    for is_pair in (False, True):
      index = [i for i, (_, b) in enumerate(chunk) if (b is not None) == is_pair]
      if not index:
        continue
      texts_a = tf.constant([chunk[i][0] for i in index])
      texts_b = tf.constant([chunk[i][1] for i in index]) if is_pair else None
      inputs = encode_texts(tokenizer, texts_a, texts_b, max_seq_length)
      with token_rows.reading_real_positions():
        outputs = encoder(inputs, training=False)
      mask = inputs["input_mask"].numpy()
      sequence = outputs["sequence_output"].numpy()
      mean = (sequence * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
      chosen = {layer: outputs["encoder_outputs"][layer % num_layers].numpy() for layer in layers}
      for row, i in enumerate(index):
        length = int(mask[row].sum())
        results[i] = (inputs["input_ids"].numpy()[row, :length],
                      {layer: values[row, :length] for layer, values in chosen.items()},
                      outputs["pooled_output"].numpy()[row], mean[row])
    for i in range(len(chunk)):
      yield results[i]


def draw_attention(maps, tokens, directory):
  """attention.npy and layer_<i>.png (one panel per head) for one input."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  os.makedirs(directory, exist_ok=True)
  np.save(os.path.join(directory, "attention.npy"), maps)
  with open(os.path.join(directory, "tokens.json"), "w", encoding="utf-8") as f:
    json.dump(tokens, f, ensure_ascii=False)
  num_heads = maps.shape[1]
  columns = min(num_heads, 4)
  rows = -(-num_heads // columns)
  size = max(2.5, 0.18 * len(tokens))
  paths = []
  for layer, layer_maps in enumerate(maps):
    fig, axes = plt.subplots(rows, columns, figsize=(size * columns, size * rows), squeeze=False)
    for head in range(rows * columns):
      ax = axes[head // columns][head % columns]
      if head >= num_heads:
        ax.axis("off")
        continue
      ax.imshow(layer_maps[head], cmap="viridis", vmin=0.0, vmax=1.0)
      ax.set_title(f"layer {layer} head {head}", fontsize=8)
      ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=6)
      ax.set_yticks(range(len(tokens)), tokens, fontsize=6)
    fig.tight_layout()
    path = os.path.join(directory, f"layer_{layer}.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    paths.append(path)
  return paths
