"""Token activations of chosen layers, as Google's extract_features.py, plus sentence vectors and
attention maps.

    python -m finetuning.extract_features --input_file=input.txt --output_file=output.jsonl \
        --model_dir=uncased_L-12_H-768_A-12 --layers=-1,-2,-3,-4 --max_seq_length=128

Each input line is a text, or a pair separated by " ||| ". Each output line is the original's
JSON: {"linex_index": i, "features": [{"token": "[CLS]", "layers": [{"index": -1, "values":
[...]}, ...]}, ...]} over the real tokens, plus "pooled_output" and "mean_pooled" (the last
layer averaged over the real tokens) sentence vectors. --output_format=npz writes arrays instead
(layers [n, num_layers, max_seq_length, hidden], input_mask, pooled_output, mean_pooled), for
large inputs. --attention_dir writes, for input line --attention_line, every layer's attention
probabilities (attention.npy: [layers, heads, tokens, tokens]) and one heat-map PNG per layer
with a panel per head. --export_dir writes a SavedModel that takes raw text and returns the two
sentence vectors (signatures serving_default: text_a, and pair: text_a, text_b; docs/serving.md);
with it, --input_file and --output_file may be left out.
"""
import io
import json

from absl import app
from absl import flags
from absl import logging

from bert_tf import errors, files
from finetuning import common_flags
from finetuning.feature_extraction import draw_attention, extract, read_inputs

FLAGS = flags.FLAGS
flags.DEFINE_string("input_file", None, "Text lines; a pair as 'text a ||| text b'.")
flags.DEFINE_string("output_file", None, "JSON Lines output (or .npz with --output_format=npz).")
flags.DEFINE_string("layers", "-1,-2,-3,-4", "Layers to output (negative: from the top).")
flags.DEFINE_integer("max_seq_length", 128, "Tokens per input after WordPiece.")
flags.DEFINE_integer("batch_size", 32, "Inputs per batch.")
flags.DEFINE_enum("output_format", "jsonl", ["jsonl", "npz"], "jsonl: the original's JSON lines; "
                  "npz: NumPy arrays.")
flags.DEFINE_string("attention_dir", None, "Write attention maps (npy and PNG per layer) here.")
flags.DEFINE_integer("attention_line", 0, "Input line whose attention is drawn.")
flags.DEFINE_string("export_dir", None, "Write a raw-text SavedModel (pooled_output, mean_pooled "
                    "per text or pair) here.")
flags.DEFINE_bool("use_tpu", False, "Accepted for compatibility; features are extracted on the "
                  "local device.")
flags.DEFINE_string("master", None, "Unused (compatibility).")
flags.DEFINE_integer("num_tpu_cores", 8, "Unused (compatibility).")
flags.DEFINE_bool("use_one_hot_embeddings", False, "Unused (compatibility).")
common_flags.define_model_flags()
flags.register_multi_flags_validator(
    ["input_file", "output_file", "export_dir"],
    lambda f: f["export_dir"] is not None or (f["input_file"] is not None and
                                              f["output_file"] is not None),
    "--input_file and --output_file are required (unless --export_dir is set)")


def main(argv):
  del argv
  errors.check_positive(batch_size=FLAGS.batch_size, max_seq_length=FLAGS.max_seq_length)
  extracting = FLAGS.input_file is not None
  if extracting and FLAGS.output_file is None:
    raise app.UsageError("--input_file is set: set --output_file too")
  if extracting:
    files.check_output_file(FLAGS.output_file)
  if FLAGS.export_dir:
    files.check_output_dir(FLAGS.export_dir, "export_dir")
  if FLAGS.attention_dir:
    files.check_output_dir(FLAGS.attention_dir, "attention_dir")
  config_file, vocab_file, init_checkpoint = common_flags.resolve_model_files()
  if not init_checkpoint:
    raise app.UsageError("set --init_checkpoint (or --model_dir with bert_model.ckpt): features "
                         "of an untrained model mean nothing")
  import numpy as np  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from bert_tf import BertConfig, BertEncoder, FastTokenizer, FullTokenizer  # pylint: disable=import-outside-toplevel
  from bert_tf.checkpoint.original import load_original_checkpoint, resolve_checkpoint  # pylint: disable=import-outside-toplevel
  from bert_tf.encoder import attention_maps  # pylint: disable=import-outside-toplevel
  from finetuning.classifier_features import encode_texts  # pylint: disable=import-outside-toplevel

  config = BertConfig.from_json_file(config_file)
  try:
    layers = [int(x) for x in FLAGS.layers.split(",") if x.strip()]
  except ValueError:
    raise errors.FlagError(f"--layers={FLAGS.layers}: expected comma-separated layer numbers "
                           "such as -1,-2,-3,-4") from None
  bad = [layer for layer in layers if not -config.num_hidden_layers <= layer < config.num_hidden_layers]
  if bad:
    raise app.UsageError(f"--layers={FLAGS.layers}: {bad} outside the model's "
                         f"{config.num_hidden_layers} layers")
  encoder = BertEncoder(config)
  init_checkpoint = resolve_checkpoint(init_checkpoint)
  names = {name for name, _ in tf.train.list_variables(init_checkpoint)}
  if "bert/embeddings/word_embeddings" in names:
    load_original_checkpoint(encoder, init_checkpoint, allow_missing=())
  else:
    from bert_tf.training import init_fn_from  # pylint: disable=import-outside-toplevel
    init_fn_from(init_checkpoint)(encoder)
  tokenizer = FastTokenizer(vocab_file, do_lower_case=FLAGS.do_lower_case)
  if FLAGS.export_dir:
    from finetuning.serving import export_feature_extractor  # pylint: disable=import-outside-toplevel
    path = export_feature_extractor(FLAGS.export_dir, encoder, tokenizer, FLAGS.max_seq_length)
    logging.info("raw-text SavedModel exported to %s", path)
  if not extracting:
    return
  vocab = FullTokenizer(vocab_file, do_lower_case=FLAGS.do_lower_case)
  pairs = read_inputs(FLAGS.input_file)
  features = extract(encoder, tokenizer, pairs, layers, FLAGS.max_seq_length, FLAGS.batch_size)
  tmp = FLAGS.output_file + ".incomplete"
  if FLAGS.output_format == "jsonl":
    with tf.io.gfile.GFile(tmp, "w") as writer:
      for index, (ids, values, pooled, mean) in enumerate(features):
        tokens = vocab.convert_ids_to_tokens(ids.tolist())
        record = {"linex_index": index, "features": [
            {"token": token, "layers": [
                {"index": layer, "values": [round(float(x), 6) for x in values[layer][position]]}
                for layer in layers]}
            for position, token in enumerate(tokens)],
                  "pooled_output": [round(float(x), 6) for x in pooled],
                  "mean_pooled": [round(float(x), 6) for x in mean]}
        writer.write(json.dumps(record, ensure_ascii=False) + "\n")
  else:
    all_layers = np.zeros((len(pairs), len(layers), FLAGS.max_seq_length, config.hidden_size),
                          np.float32)
    mask = np.zeros((len(pairs), FLAGS.max_seq_length), np.int32)
    pooled_all = np.zeros((len(pairs), config.hidden_size), np.float32)
    mean_all = np.zeros_like(pooled_all)
    for index, (ids, values, pooled, mean) in enumerate(features):
      for j, layer in enumerate(layers):
        all_layers[index, j, :len(ids)] = values[layer]
      mask[index, :len(ids)] = 1
      pooled_all[index], mean_all[index] = pooled, mean
    buffer = io.BytesIO()    # zip needs a seekable file; GFile (gs://) is not
    np.savez(buffer, layers=all_layers, layer_indexes=np.array(layers), input_mask=mask,
             pooled_output=pooled_all, mean_pooled=mean_all)
    with tf.io.gfile.GFile(tmp, "wb") as f:
      f.write(buffer.getvalue())
  tf.io.gfile.rename(tmp, FLAGS.output_file, overwrite=True)
  logging.info("features of %d inputs written to %s", len(pairs), FLAGS.output_file)
  if FLAGS.attention_dir:
    if not 0 <= FLAGS.attention_line < len(pairs):
      raise app.UsageError(f"--attention_line={FLAGS.attention_line}: the input has "
                           f"{len(pairs)} lines")
    text_a, text_b = pairs[FLAGS.attention_line]
    inputs = encode_texts(tokenizer, tf.constant([text_a]),
                          tf.constant([text_b]) if text_b is not None else None,
                          FLAGS.max_seq_length)
    length = int(inputs["input_mask"].numpy().sum())
    maps = attention_maps(encoder, inputs).numpy()[:, 0, :, :length, :length]
    tokens = vocab.convert_ids_to_tokens(inputs["input_ids"].numpy()[0, :length].tolist())
    paths = draw_attention(maps, tokens, FLAGS.attention_dir)
    logging.info("attention maps of line %d: %s", FLAGS.attention_line, paths)


def run():
  errors.run_program(main)


if __name__ == "__main__":
  run()
