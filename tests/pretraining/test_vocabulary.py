"""WordPiece vocabulary building in BERT's layout."""
import json
import subprocess
import sys

import pytest

from conftest import ROOT
from bert_tf.tokenization import FullTokenizer
from pretraining import vocabulary

DEMO = ROOT / "data" / "demo"


def test_reserved_layout_is_googles():
  reserved = vocabulary.reserved_tokens(99)
  assert reserved[0] == "[PAD]" and reserved[1] == "[unused0]" and reserved[99] == "[unused98]"
  assert reserved[100:] == ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # ids 100-103 as in uncased BERT


def test_built_vocab_covers_the_corpus(tmp_path):
  vocab = vocabulary.build_vocab_file([str(DEMO / "corpus.txt")], str(tmp_path / "vocab.txt"),
                                      vocab_size=2000, min_count=1)
  assert vocab[:104] == vocabulary.reserved_tokens(99)
  assert len(vocab) == len(set(vocab)) <= 2000
  tokenizer = FullTokenizer(tmp_path / "vocab.txt")
  for line in (DEMO / "corpus.txt").read_text(encoding="utf-8").splitlines():
    assert "[UNK]" not in tokenizer.tokenize(line), line
  # CJK characters are tokens of their own: no multi-character CJK entry.
  cjk = [t for t in vocab if any("\u4e00" <= ch <= "\u9fff" for ch in t.lstrip("#"))]
  assert cjk and all(len(t.lstrip("#")) == 1 for t in cjk)
  # Continuation pieces exist for English words.
  assert any(t.startswith("##") and t[2:].isalpha() and t[2:].isascii() for t in vocab)


def test_bundled_config_matches_the_generated_vocab(tmp_path):
  vocab = vocabulary.build_vocab_file([str(DEMO / "corpus.txt")], str(tmp_path / "v.txt"),
                                      vocab_size=2000, min_count=1)
  assert json.loads((DEMO / "bert_config.json").read_text())["vocab_size"] == len(vocab)


def test_program_and_its_errors(tmp_path):
  out = tmp_path / "vocab.txt"
  ok = subprocess.run([sys.executable, "-m", "pretraining.build_vocab",
                       f"--input_file={DEMO / 'corpus.txt'}", f"--output_file={out}",
                       "--vocab_size=1000", "--num_unused=10"],
                      cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert ok.returncode == 0, ok.stderr
  lines = out.read_text(encoding="utf-8").splitlines()
  assert lines[11:15] == ["[UNK]", "[CLS]", "[SEP]", "[MASK]"] and len(lines) <= 1000
  with pytest.raises(FileNotFoundError, match="no file matches .*missing"):
    vocabulary.build_vocab_file([str(tmp_path / "missing*.txt")], str(out), 1000)
  with pytest.raises(ValueError, match="leaves no room"):
    vocabulary.learn_vocab({"a": 3}, vocab_size=50)
