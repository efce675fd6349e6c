"""pretraining.tfrecord writes the bytes of tf.io.TFRecordWriter without TensorFlow."""
import numpy as np
import tensorflow as tf

from pretraining.tfrecord import RecordWriter, masked_crc32c


def test_bytes_equal_tensorflows_writer(tmp_path):
  """One record at a time and in blocks (write_all). Mutations caught: the CRC unmasked, the
  length CRC over the record, a big-endian length, write_all's data CRC left unmasked."""
  rng = np.random.default_rng(0)
  records = [b"", b"x"] + [rng.bytes(int(n)) for n in rng.integers(0, 5000, 50)]
  ours, theirs = tmp_path / "ours.tfrecord", tmp_path / "theirs.tfrecord"
  with RecordWriter(ours) as writer:
    for record in records[:10]:
      writer.write(record)
    writer.write_all(records[10:30])
    writer.write_all([])
    writer.write_all(records[30:])
  with tf.io.TFRecordWriter(str(theirs)) as writer:
    for record in records:
      writer.write(record)
  assert ours.read_bytes() == theirs.read_bytes()
  assert [r.numpy() for r in tf.data.TFRecordDataset(str(ours))] == records


def test_masked_crc_of_the_standard_check_value():
  # CRC-32C("123456789") = 0xE3069283 (RFC 3720's check value), then TensorFlow's mask.
  crc = 0xE3069283
  assert masked_crc32c(b"123456789") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
