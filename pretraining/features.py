"""The pretraining TFRecord schema (the original's feature names) and a fast batch serializer.

Each record is a tf.train.Example with, as google-research/bert's create_pretraining_data.py
writes them:
  input_ids, input_mask, segment_ids        int64 [max_seq_length]
  masked_lm_positions, masked_lm_ids        int64 [max_predictions_per_seq]
  masked_lm_weights                         float [max_predictions_per_seq]
  next_sentence_labels                      int64 [1]   (1 = segment B is a random next)

serialize_examples writes the protobuf wire format directly from numpy arrays instead of
building tf.train.Example objects one by one (which costs more than everything else in the
original's loop). Its bytes equal tf.train.Example.SerializeToString(deterministic=True):
features in sorted key order, packed repeated fields; tests/pretraining/test_features.py checks
that byte for byte.
"""
import numpy as np

INT_FEATURES = ("input_ids", "input_mask", "segment_ids", "masked_lm_positions", "masked_lm_ids",
                "next_sentence_labels")
FLOAT_FEATURES = ("masked_lm_weights",)


def feature_lengths(max_seq_length, max_predictions_per_seq):
  return {"input_ids": max_seq_length, "input_mask": max_seq_length,
          "segment_ids": max_seq_length, "masked_lm_positions": max_predictions_per_seq,
          "masked_lm_ids": max_predictions_per_seq, "masked_lm_weights": max_predictions_per_seq,
          "next_sentence_labels": 1}


def feature_spec(max_seq_length, max_predictions_per_seq):
  """tf.io.parse_example spec of the records (the same spec run_pretraining.py uses)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  lengths = feature_lengths(max_seq_length, max_predictions_per_seq)
  return {name: tf.io.FixedLenFeature([length], tf.float32 if name in FLOAT_FEATURES else tf.int64)
          for name, length in lengths.items()}


def _varint(value):
  out = bytearray()
  while True:
    low = value & 0x7F
    value >>= 7
    if value:
      out.append(low | 0x80)
    else:
      out.append(low)
      return bytes(out)


_VARINTS = [_varint(i) for i in range(1 << 14)]


def _len_varint(value):
  return _VARINTS[value] if value < (1 << 14) else _varint(value)


def _varint_groups(values, width):
  """uint64 values -> (uint8 [..., width] varint bytes, zero-padded; int64 widths)."""
  widths = np.ones(values.shape, np.int64)
  for j in range(1, width):
    widths += values >= np.uint64(1 << (7 * j))
  groups = np.empty(values.shape + (width,), np.uint8)
  for j in range(width):
    more = np.where(j < widths - 1, 0x80, 0).astype(np.uint64)
    groups[..., j] = ((values >> np.uint64(7 * j)) & np.uint64(0x7F)) | more
  return np.where(np.arange(width) < widths[..., None], groups, 0), widths


def _varint_table(limit):
  """Varint bytes of 0..limit-1 (< 2**28) packed little-endian into uint32, and their widths."""
  groups, widths = _varint_groups(np.arange(limit, dtype=np.uint64), 4)
  return groups.view("<u4")[:, 0].copy(), widths.astype(np.uint8)


_TABLE_LIMIT = 1 << 21          # ids of any real vocabulary; 3 bytes at most
_TABLE = None


def _packed_varints(values):
  """int [n, k] >= 0 -> (bytes of all rows' varints concatenated, row byte lengths [n])."""
  global _TABLE
  if values.size and values.min() < 0:
    raise ValueError("negative values are not written by this serializer")
  largest = int(values.max(initial=0))
  n = len(values)
  if largest < 128:   # one byte each: the varint is the value
    return values.astype(np.uint8).tobytes(), np.full(n, values.shape[1], np.int64)
  if largest < _TABLE_LIMIT:
    if _TABLE is None:
      _TABLE = _varint_table(_TABLE_LIMIT)
    table, table_widths = _TABLE
    groups = table.take(values).view(np.uint8).reshape(values.shape + (4,))
    widths = table_widths.take(values)
    width = 4
  else:
    width = (largest.bit_length() + 6) // 7
    groups, widths = _varint_groups(values.astype(np.uint64), width)
  keep = np.arange(width, dtype=np.uint8)[None, None, :] < widths[..., None]
  return groups[keep].tobytes(), widths.sum(axis=1, dtype=np.int64)


def serialize_examples(features):
  """dict of arrays [n, length] (the schema's names and lengths) -> list of n serialized
  tf.train.Example bytes."""
  names = sorted(features)
  n = len(next(iter(features.values())))
  columns = []          # per-row byte strings, joined row by row at the end
  fixed = []            # consecutive fixed-width entries, merged into one [n, width] block

  def flush_fixed():
    if fixed:
      block = np.concatenate(fixed, axis=1) if len(fixed) > 1 else fixed[0]
      width, data = block.shape[1], block.tobytes()
      columns.append([data[i * width:(i + 1) * width] for i in range(n)])
      fixed.clear()

  for name in names:
    values = np.asarray(features[name])
    if values.ndim != 2 or len(values) != n:
      raise ValueError(f"feature {name}: expected [n={n}, length], got shape {values.shape}")
    key = name.encode()
    entry_key = b"\x0a" + _len_varint(len(key)) + key
    if name in FLOAT_FEATURES:
      payload = values.astype("<f4").tobytes()
      row_bytes = np.full(n, 4 * values.shape[1], np.int64)
      tag = b"\x12"        # Feature.float_list
    else:
      payload, row_bytes = _packed_varints(values)
      tag = b"\x1a"        # Feature.int64_list
    # Everything before a row's packed values depends only on their byte length.
    headers = {}
    for length in np.unique(row_bytes).tolist():
      value_list_len = 1 + len(_len_varint(length)) + length
      feature_len = 1 + len(_len_varint(value_list_len)) + value_list_len
      entry = entry_key + b"\x12" + _len_varint(feature_len)
      entry_len = len(entry) + feature_len
      headers[length] = (b"\x0a" + _len_varint(entry_len) + entry + tag +
                         _len_varint(value_list_len) + b"\x0a" + _len_varint(length))
    if len(headers) == 1:   # every row the same width: header + payload as a numpy block
      header = np.frombuffer(next(iter(headers.values())), np.uint8)
      body = np.frombuffer(payload, np.uint8).reshape(n, -1) if n else np.zeros((0, 0), np.uint8)
      fixed.append(np.concatenate([np.broadcast_to(header, (n, len(header))), body], axis=1))
      continue
    flush_fixed()
    ends = np.cumsum(row_bytes).tolist()
    starts = [0] + ends[:-1]
    columns.append([headers[length] for length in row_bytes.tolist()])
    columns.append([payload[a:b] for a, b in zip(starts, ends)])
  flush_fixed()
  bodies = [b"".join(parts) for parts in zip(*columns)]
  return [b"\x0a" + _len_varint(len(body)) + body for body in bodies]


def parse_examples(serialized, max_seq_length, max_predictions_per_seq):
  """Batch of serialized records -> dict of tensors (int64 / float32), the schema's shapes."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return tf.io.parse_example(serialized, feature_spec(max_seq_length, max_predictions_per_seq))
