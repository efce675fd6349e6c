"""Shards partition the documents whatever their count; reading follows the original."""
import pytest

from pretraining import documents


def write(path, data):
  path.write_bytes(data)
  return str(path)


@pytest.fixture
def corpus(tmp_path):
  a = write(tmp_path / "a.txt", "".join(
      f"doc{d} line{i}\n" + ("\n" if i == d % 3 else "") for d in range(40) for i in range(d % 3 + 1)
  ).encode() + "  \n\n\t\nafter spaces\n\u3000\nafter ideographic space\n".encode())
  b = write(tmp_path / "b.txt", b"")                                 # empty file
  c = write(tmp_path / "c.txt", b"c first\r\nc second\n\nbad \xff\xfe byte\nno newline at end")
  return [a, b, c]


def documents_of(files, shard):
  docs, current = [], []
  for _, _, _, text in documents.read_shard_lines(files, shard):
    if text:
      current.append(text)
    elif current:
      docs.append(current)
      current = []
  if current:
    docs.append(current)
  return docs


def test_shards_partition_documents(corpus):
  files = documents.expand_input_files(",".join(corpus))
  whole = documents_of(files, documents.make_shards(files, 1)[0])
  assert whole[0] == ["doc0 line0"] and whole[-1] == ["bad  byte", "no newline at end"]
  assert ["after spaces"] in whole and ["after ideographic space"] in whole
  assert ["c first", "c second"] in whole       # \r stripped as str.strip() does
  for num_shards in (2, 3, 7, 16, 64, 500):
    shards = documents.make_shards(files, num_shards)
    assert [s.index for s in shards] == list(range(num_shards))
    parts = [documents_of(files, s) for s in shards]
    assert [d for part in parts for d in part] == whole, num_shards


def test_undecodable_bytes_are_dropped_and_counted(corpus):
  files = documents.expand_input_files(corpus)
  stats = documents.ReadStats()
  list(documents.read_shard_lines(files, documents.make_shards(files, 1)[0], stats))
  assert stats["undecodable_lines"] == 1


def test_line_locations(corpus):
  files = documents.expand_input_files(corpus)
  for shard in documents.make_shards(files, 5):
    for path, start, line_in_range, text in documents.read_shard_lines(files, shard):
      if text == "c second":
        assert str(documents.LineLocation(path, start, line_in_range)).endswith("c.txt:2")
      if text == "doc5 line2":
        with open(path, encoding="utf-8") as f:
          expected = [l.strip() for l in f].index("doc5 line2") + 1
        assert documents.LineLocation(path, start, line_in_range).line_number == expected


def test_missing_input_is_named(tmp_path):
  with pytest.raises(FileNotFoundError, match="nothing-here"):
    documents.expand_input_files(str(tmp_path / "nothing-here*.txt"))
  with pytest.raises(IsADirectoryError):
    documents.expand_input_files(str(tmp_path))


def test_automatic_shard_count():
  from pretraining.local_runner import auto_num_shards
  mb = 2**20
  assert auto_num_shards(0) == 1 and auto_num_shards(10) == 1
  assert auto_num_shards(int(2.5 * mb)) == 3            # 1 MB shards below 64 MB
  assert auto_num_shards(64 * mb) == 64
  assert auto_num_shards(640 * mb) == 64                # 10 MB shards
  assert auto_num_shards(13 * 1024 * mb) == 208         # Wikipedia-sized: 64 MB shards
  assert auto_num_shards(10 * mb, shard_size_mb=4) == 3
