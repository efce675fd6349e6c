"""Input text: file lists, byte-range shards aligned to documents, and reading a shard's lines.

The input format is the original's: one sentence per line, documents separated by blank lines
(a line that is empty after str.strip(), as in google-research/bert). The end of a file also
ends a document (the original lets the last document of one file run on into the next file,
an accident of its reading loop nobody relies on).

A corpus is cut into shards without reading it first: the concatenation of the input files is
split at equal byte offsets, and each offset moves forward to the start of the next document
(`align`). Shard s holds the documents from align(B_s) to align(B_s+1), so the shards partition
the documents, no document is cut, and a shard's content depends only on the input files and
the shard count - never on how many workers process them. Each worker then reads only its own
byte range: memory follows the shard size, not the corpus size.
"""
import collections
import dataclasses

from pretraining import fileio

_BLOCK = 1 << 20


@dataclasses.dataclass(frozen=True)
class InputFile:
  path: str
  size: int


@dataclasses.dataclass(frozen=True)
class Shard:
  """Documents from global byte offset `start` to `end` of the concatenated input files."""
  index: int
  num_shards: int
  start: int
  end: int


def expand_input_files(patterns):
  """Comma-separated string or list of files/globs -> list of InputFile, in the given order.

  Each pattern's matches are sorted, so the order (and with it the output) does not depend on
  the file system's listing order. A pattern matching nothing is an error naming it.
  """
  if isinstance(patterns, str):
    patterns = [p for p in patterns.split(",") if p.strip()]
  files = []
  for pattern in patterns:
    pattern = str(pattern).strip()
    matches = sorted(fileio.glob(pattern))
    if not matches:
      raise FileNotFoundError(f"input_file: no file matches {pattern!r}")
    for path in matches:
      if fileio.isdir(path):
        raise IsADirectoryError(f"input_file: {path} is a directory; give files or a glob")
      files.append(InputFile(path, fileio.size(path)))
  if not files:
    raise ValueError("input_file: no input files given")
  return files


def _is_blank(raw_line):
  return not raw_line.decode("utf-8", "ignore").strip()


def _file_starts(files):
  starts, total = [], 0
  for f in files:
    starts.append(total)
    total += f.size
  return starts, total


def align(files, offset):
  """The global offset of the first document start at or after `offset` (see module doc).

  A document start is a file start or the line after a blank line. When no blank line follows
  `offset` within its file, the next file's start is returned.
  """
  starts, total = _file_starts(files)
  if offset <= 0:
    return 0
  if offset >= total:
    return total
  index = max(i for i, s in enumerate(starts) if s <= offset)
  local = offset - starts[index]
  if local == 0:
    return offset
  file_end = starts[index] + files[index].size
  with fileio.open_file(files[index].path) as reader:
    reader.seek(local - 1)
    # Skip to the first line that starts at or after `offset`.
    if reader.read(1) != b"\n":
      reader.readline()
    while True:
      line = reader.readline()
      if not line:
        return file_end
      if _is_blank(line):
        return starts[index] + reader.tell()


def make_shards(files, num_shards):
  """Cuts the input files into `num_shards` Shards of about equal byte size."""
  if num_shards < 1:
    raise ValueError(f"num_shards must be at least 1, got {num_shards}")
  _, total = _file_starts(files)
  cuts = [align(files, total * s // num_shards) for s in range(num_shards)] + [total]
  return [Shard(s, num_shards, cuts[s], cuts[s + 1]) for s in range(num_shards)]


class ReadStats(collections.Counter):
  """Counts kept while reading: lines, blank_lines, undecodable_lines (bytes dropped)."""


class LineLocation:
  """File and line of a shard's line, for messages; the line number is counted only on demand
  (a shard starting deep inside a large file would otherwise read all of it first)."""

  def __init__(self, path, range_start, line_in_range):
    self.path, self.range_start, self.line_in_range = path, range_start, line_in_range

  @property
  def line_number(self):
    with fileio.open_file(self.path) as reader:
      return _count_lines(reader, self.range_start) + self.line_in_range + 1

  def __str__(self):
    return f"{self.path}:{self.line_number}"


def read_shard_lines(files, shard, stats=None):
  """Yields (path, range_start, line_in_range, stripped text) for every line of the shard.

  Blank lines come as "". LineLocation(path, range_start, line_in_range) names a line in a
  message. Bytes that are not UTF-8 are dropped as the original's decode("utf-8", "ignore")
  does, and each line where that happened is counted in stats["undecodable_lines"]. The end of
  each file yields one extra "" (a document break).
  """
  stats = ReadStats() if stats is None else stats
  starts, _ = _file_starts(files)
  for f, file_start in zip(files, starts):
    lo = max(shard.start, file_start) - file_start
    hi = min(shard.end, file_start + f.size) - file_start
    if lo >= hi:
      continue
    line_in_range = 0
    with fileio.open_file(f.path) as reader:
      reader.seek(lo)
      remaining = hi - lo
      carry = b""
      while remaining > 0 or carry:
        block = reader.read(min(_BLOCK, remaining)) if remaining > 0 else b""
        remaining -= len(block)
        if remaining > 0 and not block:
          raise IOError(f"{f.path} is shorter than when the run started (file changed?)")
        data = carry + block
        if remaining > 0:
          cut = data.rfind(b"\n") + 1
          data, carry = data[:cut], data[cut:]
        else:
          carry = b""
        for k, text in enumerate(_decode_lines(data, stats)):
          yield f.path, lo, line_in_range + k, text
        line_in_range += data.count(b"\n")
    yield f.path, lo, line_in_range, ""


def _count_lines(reader, offset):
  """Number of newlines in the first `offset` bytes."""
  reader.seek(0)
  count, remaining = 0, offset
  while remaining > 0:
    block = reader.read(min(_BLOCK * 8, remaining))
    if not block:
      break
    remaining -= len(block)
    count += block.count(b"\n")
  return count


def _decode_lines(data, stats):
  if not data:
    return
  try:
    text = data.decode("utf-8")
    lines = text.split("\n")
  except UnicodeDecodeError:
    raw_lines = data.split(b"\n")
    lines = []
    for raw in raw_lines:
      try:
        lines.append(raw.decode("utf-8"))
      except UnicodeDecodeError:
        lines.append(raw.decode("utf-8", "ignore"))
        stats["undecodable_lines"] += 1
  if data.endswith(b"\n"):
    lines.pop()
  for line in lines:
    stripped = line.strip()
    stats["lines"] += 1
    if not stripped:
      stats["blank_lines"] += 1
    yield stripped
