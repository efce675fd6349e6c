"""TFRecord files written without TensorFlow, so a data-generation worker on a small corpus
never pays TensorFlow's import (seconds, more than the work on a 1 MB corpus).

The format (tensorflow/core/lib/io/record_writer.cc): per record, its length as a little-endian
uint64, the masked CRC-32C of those 8 bytes, the bytes, and their masked CRC-32C, where
masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8 (mod 2**32). CRC-32C comes from
google-crc32c (Google's C implementation). The bytes equal tf.io.TFRecordWriter's
(tests/pretraining/test_tfrecord.py). Remote paths (gs://, ...) go through TensorFlow's writer.
"""
import struct

import google_crc32c

_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")


def masked_crc32c(data):
  crc = google_crc32c.value(data)
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frames(records):
  """The bytes of consecutive records in a TFRecord file (one join for the lot)."""
  parts = []
  for record in records:
    length = _LENGTH.pack(len(record))
    parts.extend((length, _CRC.pack(masked_crc32c(length)), record,
                  _CRC.pack(masked_crc32c(record))))
  return b"".join(parts)


class RecordWriter:
  """with RecordWriter(path) as writer: writer.write(record); writer.write_all(records)"""

  def __init__(self, path):
    path = str(path)
    if "://" in path:
      import tensorflow as tf  # pylint: disable=import-outside-toplevel
      self._file = tf.io.TFRecordWriter(path)
      self._tensorflow = True
    else:
      self._file = open(path, "wb", buffering=1 << 20)  # pylint: disable=consider-using-with
      self._tensorflow = False

  def write(self, record):
    self.write_all([record])

  def write_all(self, records):
    """Writes records in order (one framed block and one write call on local files)."""
    if self._tensorflow:
      for record in records:
        self._file.write(record)
    else:
      self._file.write(frames(records))

  def close(self):
    self._file.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()
