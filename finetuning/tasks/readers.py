"""Reading task files as distributed: TSV (GLUE's csv.reader with tab and no quoting), CSV,
JSON Lines, and SQuAD-style JSON. Every row keeps its file and line number so that a bad row
can be reported where it is.

    for row in read_rows("glue/MRPC/dev.tsv"):   # Row(fields, source, line)
      ...
"""
import csv
import dataclasses
import io
import json
import os

import tensorflow as tf

from bert_tf.errors import InputFileError


@dataclasses.dataclass
class Row:
  fields: object          # list of str (TSV/CSV) or dict (JSON Lines)
  source: str             # file path
  line: int               # 1-based line number in the file

  @property
  def where(self):
    return f"{self.source}:{self.line}"


class RowError(InputFileError):
  """A row that cannot be read as the task's format; the message says what was expected."""


def file_format(path):
  """'tsv', 'csv' or 'json' from the file name (.txt files are tab-separated, as LCQMC's)."""
  name = os.path.basename(str(path)).lower()
  if name.endswith((".json", ".jsonl")):
    return "json"
  if name.endswith(".csv"):
    return "csv"
  return "tsv"


def _text(path):
  with tf.io.gfile.GFile(str(path), "rb") as f:
    data = f.read()
  try:
    text = data.decode("utf-8")
  except UnicodeDecodeError as e:
    line = data[:e.start].count(b"\n") + 1
    raise RowError(f"{path}:{line}: not UTF-8 ({e.reason} at byte {e.start}); convert the "
                   "file to UTF-8") from e
  return text[1:] if text.startswith("\ufeff") else text   # MRPC's header has a BOM


def read_rows(path, fmt=None):
  """Yields Row for each non-blank line (or CSV record) of a TSV, CSV or JSON Lines file.

  TSV lines are split on tabs only, as GLUE's `csv.reader(delimiter="\\t", quotechar=None)`:
  quotes are kept as text (MRPC and SST-2 contain unbalanced ones).
  """
  fmt = fmt or file_format(path)
  text = _text(path)
  if fmt == "csv":
    reader = csv.reader(io.StringIO(text, newline=""))
    for fields in reader:
      if any(field.strip() for field in fields):
        yield Row(fields, str(path), reader.line_num)
    return
  for number, line in enumerate(text.split("\n"), start=1):
    line = line.rstrip("\r")
    if not line.strip():
      continue
    if fmt == "json":
      try:
        fields = json.loads(line)
      except json.JSONDecodeError as e:
        raise RowError(f"{path}:{number}: not a JSON object ({e.msg}); expected one JSON object "
                       "per line") from e
      yield Row(fields, str(path), number)
    else:
      yield Row(line.split("\t"), str(path), number)


def read_json(path):
  """A whole JSON document (SQuAD layout); errors name the file and line."""
  text = _text(path)
  try:
    return json.loads(text)
  except json.JSONDecodeError as e:
    raise RowError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from e
