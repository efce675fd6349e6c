"""Examples -> model inputs, as the original run_classifier's convert_single_example, in one
TensorFlow function that serves both the Python path (conversion into the TFRecord cache) and
the exported SavedModel (raw text in, probabilities out), so the two cannot drift apart.

    [CLS] a [SEP] b [SEP]   segment ids 0 for [CLS] a [SEP], 1 for b [SEP]; then zero padding.
The longer of a pair loses its last tokens first (ties trim b), as the original
_truncate_seq_pair; a single text keeps max_seq_length - 2 tokens.

The cache is a TFRecord of the original features (input_ids, input_mask, segment_ids,
label_ids, is_real_example) with a JSON sidecar; it is keyed by everything that shapes the
features, so a second run with the same settings skips the conversion.
"""
import hashlib
import json
import os
import uuid

import numpy as np
import tensorflow as tf
from absl import logging

from bert_tf.tokenization import warn_if_many_unknown

FEATURE_NAMES = ("input_ids", "input_mask", "segment_ids")
CACHE_VERSION = 1


def truncated_lengths(len_a, len_b, max_tokens):
  """Lengths after the original _truncate_seq_pair, in closed form (tensors of any shape).

  The loop pops from the longer list (from b on a tie) until the total fits, so: the longer
  side alone shrinks while that suffices, else both end at ceil/floor of max_tokens / 2.
  """
  over = len_a + len_b > max_tokens
  half = (max_tokens + 1) // 2
  new_a = tf.where(over, tf.minimum(len_a, tf.maximum(max_tokens - len_b, half)), len_a)
  return new_a, tf.where(over, max_tokens - new_a, len_b)


def _keep_first(ids, lengths):
  """The first `lengths[i]` ids of each row of a RaggedTensor."""
  return tf.RaggedTensor.from_tensor(ids.to_tensor(), lengths=lengths)


def pack_inputs(ids_a, ids_b, max_seq_length, cls_id, sep_id):
  """Token ids of text a (and b) -> the model inputs of run_classifier.

  Args:
    ids_a: int RaggedTensor [batch, (tokens)]; ids_b: the same for the second texts, or None.
    max_seq_length: output length; cls_id, sep_id: ids of [CLS] and [SEP].
  Returns:
    dict of int32 Tensors [batch, max_seq_length]: input_ids, input_mask, segment_ids.
  """
  ids_a = tf.cast(ids_a, tf.int32)
  len_a = ids_a.row_lengths()
  batch = tf.shape(len_a, out_type=tf.int64)[:1]
  if ids_b is None:
    ids_a = _keep_first(ids_a, tf.minimum(len_a, max_seq_length - 2))
  else:
    ids_b = tf.cast(ids_b, tf.int32)
    new_a, new_b = truncated_lengths(len_a, ids_b.row_lengths(), max_seq_length - 3)
    ids_a, ids_b = _keep_first(ids_a, new_a), _keep_first(ids_b, new_b)
  cls = tf.RaggedTensor.from_tensor(tf.fill(tf.concat([batch, [1]], 0), cls_id))
  sep = tf.RaggedTensor.from_tensor(tf.fill(tf.concat([batch, [1]], 0), sep_id))
  pieces, segments = [cls, ids_a, sep], [0, 0, 0]
  if ids_b is not None:
    pieces, segments = pieces + [ids_b, sep], segments + [1, 1]
  ids = tf.concat(pieces, axis=1)
  segment_ids = tf.concat([tf.zeros_like(p) + s for p, s in zip(pieces, segments)], axis=1)
  shape = [None, max_seq_length]
  return {"input_ids": ids.to_tensor(0, shape=shape),
          "input_mask": tf.ones_like(ids).to_tensor(0, shape=shape),
          "segment_ids": segment_ids.to_tensor(0, shape=shape)}


def encode_texts(tokenizer, texts_a, texts_b, max_seq_length):
  """Raw strings -> model inputs with a FastTokenizer (in graph or eagerly)."""
  ids_a = tokenizer.tokenize_to_ids(texts_a) if tf.inside_function() else \
      tokenizer.tokenize_to_ids_eagerly(texts_a)
  ids_b = None
  if texts_b is not None:
    ids_b = tokenizer.tokenize_to_ids(texts_b) if tf.inside_function() else \
        tokenizer.tokenize_to_ids_eagerly(texts_b)
  return pack_inputs(ids_a, ids_b, max_seq_length, tokenizer.cls_id, tokenizer.sep_id)


def label_ids(task, examples):
  """Label ids (int32) or regression targets (float32); unlabelled examples get 0."""
  if task.is_regression:
    return np.array([e.label if e.label is not None else 0.0 for e in examples], np.float32)
  index = {label: i for i, label in enumerate(task.labels)}
  return np.array([index[e.label] if e.label is not None else 0 for e in examples], np.int32)


def convert_examples(task, examples, tokenizer, max_seq_length, batch_size=4096):
  """InputExamples -> dict of numpy arrays (FEATURE_NAMES [n, max_seq_length], label_ids [n])."""
  parts = []
  for start in range(0, len(examples), batch_size):
    chunk = examples[start:start + batch_size]
    texts_b = [e.text_b or "" for e in chunk] if task.is_pair else None
    packed = encode_texts(tokenizer, [e.text_a or "" for e in chunk], texts_b, max_seq_length)
    parts.append({k: v.numpy() for k, v in packed.items()})
    if len(examples) > batch_size:
      logging.info("converted %d/%d examples", min(start + batch_size, len(examples)),
                   len(examples))
  features = {k: np.concatenate([p[k] for p in parts]) for k in FEATURE_NAMES}
  features["label_ids"] = label_ids(task, examples)
  if examples and getattr(tokenizer, "unk_id", None) is not None:
    real = features["input_mask"] > 0
    source = examples[0].where.rsplit(":", 1)[0] if examples[0].where else task.name
    warn_if_many_unknown(int((features["input_ids"][real] == tokenizer.unk_id).sum()),
                         int(real.sum()), source, tokenizer.vocab_file)
  return features


# -- the cache --------------------------------------------------------------------------------

def cache_key(**settings):
  return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_signature(path):
  """Identity of an input file for the cache key: path, size and modification time."""
  stat = tf.io.gfile.stat(path)
  return {"path": os.path.abspath(path) if "://" not in path else path, "size": stat.length,
          "mtime": stat.mtime_nsec}


def _example(features, i, is_regression):
  def ints(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
  feature = {name: ints(features[name][i]) for name in FEATURE_NAMES}
  label = features["label_ids"][i]
  feature["label_ids"] = (tf.train.Feature(float_list=tf.train.FloatList(value=[label]))
                          if is_regression else ints([label]))
  feature["is_real_example"] = ints([1])
  return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_cache(path, features, is_regression, info):
  """Writes features as TFRecord `path` plus `path`.json (atomically: temp names, renames)."""
  directory = os.path.dirname(path) or "."
  tf.io.gfile.makedirs(directory)
  tmp = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex}.incomplete")
  with tf.io.TFRecordWriter(tmp) as writer:
    for i in range(len(features["label_ids"])):
      writer.write(_example(features, i, is_regression))
  tf.io.gfile.rename(tmp, path, overwrite=True)
  with tf.io.gfile.GFile(tmp + ".json", "w") as f:
    json.dump(dict(info, num_examples=int(len(features["label_ids"]))), f, indent=1)
  tf.io.gfile.rename(tmp + ".json", path + ".json", overwrite=True)


def read_cache_info(path):
  """The sidecar of a complete cache file, or None."""
  if not (tf.io.gfile.exists(path) and tf.io.gfile.exists(path + ".json")):
    return None
  with tf.io.gfile.GFile(path + ".json") as f:
    return json.load(f)


def parse_fn(max_seq_length, is_regression):
  """Parses a batch of cached (or original run_classifier) records into int32 features."""
  spec = {name: tf.io.FixedLenFeature([max_seq_length], tf.int64) for name in FEATURE_NAMES}
  spec["label_ids"] = tf.io.FixedLenFeature([], tf.float32 if is_regression else tf.int64)
  spec["is_real_example"] = tf.io.FixedLenFeature([], tf.int64, default_value=1)

  def parse(records):
    parsed = tf.io.parse_example(records, spec)
    return {k: (tf.cast(v, tf.int32) if v.dtype == tf.int64 else v) for k, v in parsed.items()}
  return parse


def cached_features(task, data_dir, split, tokenizer, max_seq_length, cache_dir):
  """The TFRecord of one split's features, converted on the first call and reused after.

  Returns:
    (path, number of examples). The cache key covers the input file (path, size, mtime), the
    task and its labels, the vocabulary (path, size, mtime), casing and max_seq_length.
  """
  source = task.find_file(data_dir, split)
  key = cache_key(version=CACHE_VERSION, task=task.name, labels=list(task.labels), split=split,
                  source=file_signature(source), vocab=file_signature(tokenizer.vocab_file),
                  lower=bool(tokenizer.do_lower_case), max_seq_length=max_seq_length,
                  language=getattr(task, "language", None))
  path = os.path.join(cache_dir, f"{task.name}-{split}-{max_seq_length}-{key}.tf_record")
  info = read_cache_info(path)
  if info is not None:
    logging.info("using cached features %s (%d examples)", path, info["num_examples"])
    return path, info["num_examples"]
  examples = task.read_examples(data_dir, split, path=source)
  logging.info("converting %d %s examples of %s", len(examples), split, source)
  features = convert_examples(task, examples, tokenizer, max_seq_length)
  write_cache(path, features, task.is_regression, {"source": source, "split": split,
                                                   "task": task.name})
  return path, len(examples)


def read_labels(path, max_seq_length, is_regression):
  """The label_ids of a cache file, in order (for the metrics)."""
  parse = parse_fn(max_seq_length, is_regression)
  labels = [batch["label_ids"].numpy()
            for batch in tf.data.TFRecordDataset([path]).batch(4096).map(parse)]
  return np.concatenate(labels)
