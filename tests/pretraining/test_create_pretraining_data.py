"""create_pretraining_data end to end on the real corpora: schema, masking, NSP, whole words,
determinism, resume, and the errors a user meets."""
import collections
import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT, shared_path
from original_reference import original_decode, reference_instances
from pretraining import local_runner, segmentation
from pretraining.generation import GenerationOptions

ENGLISH = "english_corpus/wikitext-2_valid_sentences.txt"
CHINESE = "chinese_corpus/CLUECorpusSmall_bert_sampled.txt"
UNCASED = "vocab/uncased_vocab.txt"
CHINESE_VOCAB = "vocab/chinese_vocab.txt"


def vocab_tokens(path):
  with open(path, encoding="utf-8") as f:
    return [line.strip() for line in f]


def generate(tmp_path_factory, name, corpus, vocab, num_shards=1, **options):
  out = tmp_path_factory.mktemp(name) / "out.tfrecord"
  opts = GenerationOptions(vocab_file=str(shared_path(vocab)), **options)
  summary = local_runner.run(opts, str(shared_path(corpus)), str(out), num_shards=num_shards,
                             num_workers=1, show_progress=False)
  files = sorted(glob.glob(str(out) + "*"))
  return summary, original_decode(files, opts.max_seq_length, opts.max_predictions_per_seq), opts


@pytest.fixture(scope="module")
def english(tmp_path_factory):
  return generate(tmp_path_factory, "en", ENGLISH, UNCASED, dupe_factor=2)


@pytest.fixture(scope="module")
def english_wwm(tmp_path_factory):
  return generate(tmp_path_factory, "en_wwm", ENGLISH, UNCASED, dupe_factor=2,
                  do_whole_word_mask=True)


@pytest.fixture(scope="module")
def chinese_wwm(tmp_path_factory):
  return generate(tmp_path_factory, "zh_wwm", CHINESE, CHINESE_VOCAB, num_shards=2, dupe_factor=1,
                  do_whole_word_mask=True)


def originals(records):
  """Input ids before masking: the labels put back at the masked positions."""
  ids = records["input_ids"].copy()
  rows = np.repeat(np.arange(len(ids)), records["masked_lm_positions"].shape[1])
  weights = records["masked_lm_weights"].ravel() > 0
  ids[rows[weights], records["masked_lm_positions"].ravel()[weights]] = (
      records["masked_lm_ids"].ravel()[weights])
  return ids


def masked_matrix(records):
  masked = np.zeros(records["input_ids"].shape, bool)
  rows = np.repeat(np.arange(len(masked)), records["masked_lm_positions"].shape[1])
  weights = records["masked_lm_weights"].ravel() > 0
  masked[rows[weights], records["masked_lm_positions"].ravel()[weights]] = True
  return masked


def check_schema_and_masking(records, opts, vocab, whole_word):
  n, seq = records["input_ids"].shape
  assert seq == opts.max_seq_length and records["masked_lm_ids"].shape == (n, 20)
  cls, sep, mask = vocab.index("[CLS]"), vocab.index("[SEP]"), vocab.index("[MASK]")
  lengths = records["input_mask"].sum(axis=1)
  assert (records["input_mask"] == (np.arange(seq)[None] < lengths[:, None])).all()
  assert (records["input_ids"][:, 0] == cls).all()
  assert (records["input_ids"][np.arange(n), lengths - 1] == sep).all()
  masked = masked_matrix(records)
  k = records["masked_lm_weights"].sum(axis=1).astype(int)
  positions = records["masked_lm_positions"]
  # Positions strictly increasing, inside the real tokens, never on [CLS]/[SEP].
  for i in range(0, n, max(1, n // 2000)):
    p = positions[i, :k[i]]
    assert (np.diff(p) > 0).all() and (p < lengths[i]).all() and (p > 0).all()
    assert not positions[i, k[i]:].any() and not records["masked_lm_ids"][i, k[i]:].any()
  original = originals(records)
  assert not np.isin(original[masked], [cls, sep]).any()
  budget = np.minimum(20, np.maximum(1, np.rint(lengths * opts.masked_lm_prob))).astype(int)
  if whole_word:
    assert (k <= budget).all() and (k >= budget - 4).mean() > 0.95
  else:
    assert (k == budget).all()   # every token is its own word: the budget is met exactly
  real = (lengths - 3 + (records["segment_ids"].sum(axis=1) == 0)).sum()
  rate = masked.sum() / real
  assert 0.14 < rate < 0.16, rate
  new, old = records["input_ids"][masked], original[masked]
  assert abs((new == mask).mean() - 0.8) < 0.015
  assert abs((new == old).mean() - 0.1) < 0.015
  assert abs(((new != mask) & (new != old)).mean() - 0.1) < 0.015


@pytest.mark.slow
def test_english_schema_masking_and_nsp_equal_the_original(english, monkeypatch):
  summary, records, opts = english
  vocab = vocab_tokens(shared_path(UNCASED))
  check_schema_and_masking(records, opts, vocab, whole_word=False)
  # One shard, same seed: the instances and their next-sentence labels are the original's.
  expected = reference_instances(str(shared_path(ENGLISH)), str(shared_path(UNCASED)), True, 128,
                                 2, 0.1, 12345, monkeypatch)
  assert len(records["input_ids"]) == len(expected) == summary["instances"]
  labels = records["next_sentence_labels"][:, 0]
  assert labels.tolist() == [int(r) for _, r in expected]
  lengths = records["input_mask"].sum(axis=1)
  assert [row[:n].tolist() for row, n in zip(originals(records), lengths)] == [
      ids for ids, _ in expected]


def word_runs(tokens_row, continues):
  """[start, end) of each word of a row, words never crossing [CLS]/[SEP]."""
  runs, start = [], None
  for i, cont in enumerate(continues):
    if tokens_row[i] is None:            # special token or padding
      if start is not None:
        runs.append((start, i))
      start = None
    elif cont and start is not None:
      continue
    else:
      if start is not None:
        runs.append((start, i))
      start = i
  if start is not None:
    runs.append((start, len(continues)))
  return runs


def assert_whole_words(records, continues_of, vocab):
  """Every word is masked completely or not at all; returns (#multi-token words masked)."""
  original = originals(records)
  masked = masked_matrix(records)
  lengths = records["input_mask"].sum(axis=1)
  specials = {vocab.index("[CLS]"), vocab.index("[SEP]")}
  multi = 0
  for i in range(len(original)):
    row = [None if t in specials else t for t in original[i, :lengths[i]].tolist()]
    for start, end in word_runs(row, continues_of(i, row)):
      state = masked[i, start:end]
      assert state.all() or not state.any(), (i, start, end, state)
      multi += end - start > 1 and state.all()
  return multi


@pytest.mark.slow
def test_english_whole_word_masking(english_wwm, english):
  _, records, opts = english_wwm
  vocab = vocab_tokens(shared_path(UNCASED))
  check_schema_and_masking(records, opts, vocab, whole_word=True)
  is_piece = lambda i, row: [t is not None and vocab[t].startswith("##") for t in row]
  assert assert_whole_words(records, is_piece, vocab) > 1000
  # The same check fails on per-token masking: it can tell the difference.
  with pytest.raises(AssertionError):
    assert_whole_words(english[1], is_piece, vocab)


def chinese_word_index(vocab_path, corpus_path):
  """Independent of the library: jieba words of every corpus line mapped onto FullTokenizer
  tokens through BasicTokenizer's words (one word per CJK character)."""
  import jieba  # pylint: disable=import-outside-toplevel
  from bert_tf.tokenization import FullTokenizer  # pylint: disable=import-outside-toplevel
  tokenizer = FullTokenizer(vocab_path, do_lower_case=True)
  stream, word_ids, word = [], [], 0
  with open(corpus_path, encoding="utf-8", errors="ignore") as f:
    for line in f:
      line = line.strip()
      if not line:
        continue
      char_word = []            # jieba word number of each CJK character, in order
      for piece in jieba.lcut(line):
        word += 1
        char_word += [word if len(piece) > 1 else -1 for ch in piece
                      if segmentation.is_cjk(ch)]
      chars = iter(char_word)
      for basic in tokenizer.basic_tokenizer.tokenize(line):
        pieces = tokenizer.wordpiece_tokenizer.tokenize(basic)
        is_char = len(basic) == 1 and segmentation.is_cjk(basic)
        tag = next(chars) if is_char else -1
        for p in pieces:
          stream.append(tokenizer.vocab[p])
          word_ids.append(tag if tag > 0 else -1)
  return np.array(stream), np.array(word_ids)


def jieba_word_masking(records, vocab, stream, word_ids, every=1):
  """(segments checked, multi-character words masked whole, words masked only in part), each
  segment located in the corpus token stream and compared with its jieba words."""
  key = stream.astype(">u4").tobytes()
  original = originals(records)
  masked = masked_matrix(records)
  lengths = records["input_mask"].sum(axis=1)
  cls, sep = vocab.index("[CLS]"), vocab.index("[SEP]")
  checked = multi = partial = 0
  for i in range(0, len(original), every):
    row = original[i, :lengths[i]]
    bounds = np.flatnonzero(np.isin(row, [cls, sep]))
    for lo, hi in zip(bounds[:-1] + 1, bounds[1:]):
      segment = row[lo:hi].astype(">u4").tobytes()
      at = key.find(segment)
      while at >= 0 and at % 4:
        at = key.find(segment, at + 1)
      assert at >= 0, "segment not found in the corpus"
      words = word_ids[at // 4: at // 4 + hi - lo]
      state = masked[i, lo:hi]
      for w in np.unique(words[words > 0]):
        inside = state[words == w]
        if inside.all():
          multi += len(inside) > 1
        elif inside.any():
          partial += 1
      checked += 1
  return checked, multi, partial


@pytest.mark.slow
def test_chinese_whole_word_masking_follows_jieba(chinese_wwm):
  summary, records, opts = chinese_wwm
  vocab_path = shared_path(CHINESE_VOCAB)
  vocab = vocab_tokens(vocab_path)
  check_schema_and_masking(records, opts, vocab, whole_word=True)
  # No "##字" token anywhere: inputs (random replacements included) and labels are plain
  # character ids.
  ids = np.concatenate([records["input_ids"].ravel(), records["masked_lm_ids"].ravel()])
  assert not any(vocab[t].startswith("##") and segmentation.has_cjk(vocab[t]) for t in np.unique(ids))
  stream, word_ids = chinese_word_index(str(vocab_path), str(shared_path(CHINESE)))
  checked, multi, partial = jieba_word_masking(records, vocab, stream, word_ids, every=3)
  assert checked > 2000
  assert partial == 0 and multi > 1000, (partial, multi)


@pytest.mark.slow
def test_chinese_per_character_masking_splits_words(tmp_path_factory):
  # Without whole word masking the same check finds split words: the test above can fail.
  _, records, _ = generate(tmp_path_factory, "zh_plain", "chinese_corpus/news_zh_1.txt",
                           CHINESE_VOCAB, dupe_factor=5)
  vocab = vocab_tokens(shared_path(CHINESE_VOCAB))
  stream, word_ids = chinese_word_index(str(shared_path(CHINESE_VOCAB)),
                                        str(shared_path("chinese_corpus/news_zh_1.txt")))
  _, _, partial = jieba_word_masking(records, vocab, stream, word_ids)
  assert partial > 100


@pytest.mark.slow
def test_nsp_balance_over_shards_matches_the_original(tmp_path_factory, monkeypatch):
  # Several shards draw random next segments from their own documents only; the share of
  # random next segments stays that of the original algorithm on the whole corpus.
  summary, records, _ = generate(tmp_path_factory, "zh_4", "chinese_corpus/CLUECorpusSmall_bert_sampled.txt",
                                 CHINESE_VOCAB, num_shards=4, dupe_factor=3)
  expected = reference_instances(str(shared_path(CHINESE)), str(shared_path(CHINESE_VOCAB)), True,
                                 128, 3, 0.1, 12345, monkeypatch)
  ours = records["next_sentence_labels"].mean()
  theirs = np.mean([r for _, r in expected])
  assert abs(len(records["input_ids"]) / len(expected) - 1) < 0.02
  assert abs(ours - theirs) < 0.01, (ours, theirs)
  assert summary["random_next"] == records["next_sentence_labels"].sum()


def program(*args):
  return [sys.executable, "-m", "pretraining.create_pretraining_data", *args]


def run_program(args, **kwargs):
  result = subprocess.run(program(*args), cwd=ROOT, capture_output=True, text=True, **kwargs)
  return result


@pytest.fixture
def small_corpus(tmp_path):
  """Real text (google-research/bert's sample_text plus a Chinese news sample) repeated."""
  text = (shared_path("pretrain_corpus/sample_text.txt").read_text(encoding="utf-8") + "\n\n" +
          shared_path("chinese_corpus/news_zh_1.txt").read_text(encoding="utf-8"))
  path = tmp_path / "corpus.txt"
  path.write_text((text + "\n\n") * 3, encoding="utf-8")
  return str(path)


@pytest.mark.slow
def test_output_does_not_depend_on_worker_count(tmp_path, small_corpus):
  vocab = str(shared_path(CHINESE_VOCAB))
  outputs = {}
  for workers in (1, 2):
    out = tmp_path / f"w{workers}" / "data.tfrecord"
    result = run_program([f"--input_file={small_corpus}", f"--output_file={out}",
                          f"--vocab_file={vocab}", "--num_shards=3", f"--num_workers={workers}",
                          "--do_whole_word_mask", "--dupe_factor=3"])
    assert result.returncode == 0, result.stderr[-3000:]
    files = sorted(glob.glob(str(out) + "*"))
    assert [os.path.basename(f) for f in files] == [
        f"data.tfrecord-0000{i}-of-00003" for i in range(3)]
    outputs[workers] = [open(f, "rb").read() for f in files]
  assert outputs[1] == outputs[2]
  assert all(len(b) > 1000 for b in outputs[1])


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_output(tmp_path, small_corpus):
  vocab = str(shared_path(CHINESE_VOCAB))
  common = [f"--input_file={small_corpus}", f"--vocab_file={vocab}", "--num_shards=6",
            "--num_workers=1", "--dupe_factor=300"]
  reference = tmp_path / "ref" / "data.tfrecord"
  assert run_program(common + [f"--output_file={reference}"]).returncode == 0
  out = tmp_path / "run" / "data.tfrecord"
  process = subprocess.Popen(program(*common, f"--output_file={out}"), cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 120
  while not glob.glob(str(out) + "-*") and time.time() < deadline and process.poll() is None:
    time.sleep(0.05)
  process.send_signal(signal.SIGKILL)
  process.wait()
  done = sorted(glob.glob(str(out) + "-*"))
  assert 1 <= len(done) < 6, "the kill should land between the first and the last shard"
  reference_files = sorted(glob.glob(str(reference) + "-*"))
  # What a killed run leaves visible is complete: each file equals the uninterrupted run's.
  for path in done:
    twin = str(reference) + path[len(str(out)):]
    assert open(path, "rb").read() == open(twin, "rb").read()
  finished_before = {p: os.stat(p).st_mtime_ns for p in done}
  result = run_program(common + [f"--output_file={out}"])
  assert result.returncode == 0, result.stderr[-3000:]
  assert f"{len(done)} of 6 shards exist already" in result.stderr
  files = sorted(glob.glob(str(out) + "-*"))
  assert [open(p, "rb").read() for p in files] == [open(p, "rb").read() for p in reference_files]
  assert all(os.stat(p).st_mtime_ns == t for p, t in finished_before.items())  # not redone
  assert not glob.glob(str(tmp_path / "run" / ".*incomplete"))


def test_edge_cases_and_counts(tmp_path, pretraining_vocab):
  corpus = tmp_path / "edge.txt"
  corpus.write_bytes(
      b"\n\n\nhello world\n\n" +                               # one-sentence document
      b"the quick brown fox\njumps over the lazy dog\nbad \xff byte hello\n\n" +
      ("hello " * 300).encode() + b"\n\n" +                     # a line longer than an instance
      "\u200b\n\n".encode() +                                    # a line without tokens
      b"un ##wanted running\nrun\n")                            # last line without newline
  empty = tmp_path / "empty.txt"
  empty.write_bytes(b"")
  out = tmp_path / "out" / "edge.tfrecord"
  result = run_program([f"--input_file={corpus},{empty}", f"--output_file={out}",
                        f"--vocab_file={pretraining_vocab}", "--max_seq_length=32",
                        "--max_predictions_per_seq=5", "--dupe_factor=2"])
  assert result.returncode == 0, result.stderr[-3000:]
  summary = json.loads(result.stdout.strip().splitlines()[-1])
  assert summary["undecodable_lines"] == 1 and summary["sentences_truncated"] == 1
  assert summary["lines_without_tokens"] == 1 and summary["single_sentence_documents"] == 2
  assert summary["documents"] == 4
  assert "1 lines had bytes that are not UTF-8" in result.stderr
  assert "edge.txt:10" in result.stderr        # where the long line is
  records = original_decode([str(out)], 32, 5)
  assert len(records["input_ids"]) == summary["instances"] > 0
  assert os.path.exists(out)                   # one shard: the exact name, as the original


def test_bad_inputs_name_what_to_fix(tmp_path, pretraining_vocab):
  corpus = tmp_path / "c.txt"
  corpus.write_text("hello world\nthe fox\n", encoding="utf-8")
  no_mask = tmp_path / "vocab.txt"
  no_mask.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n", encoding="utf-8")
  result = run_program([f"--input_file={corpus}", f"--output_file={tmp_path}/o.tfrecord",
                        f"--vocab_file={no_mask}"])
  assert result.returncode != 0 and "lacks [MASK]" in result.stderr and str(no_mask) in result.stderr
  result = run_program([f"--input_file={tmp_path}/missing*.txt", f"--output_file={tmp_path}/o",
                        f"--vocab_file={pretraining_vocab}"])
  assert result.returncode != 0 and "missing*.txt" in result.stderr
  # Re-running into existing outputs with other settings is refused, naming the difference.
  out = tmp_path / "o2.tfrecord"
  base = [f"--input_file={corpus}", f"--output_file={out}", f"--vocab_file={pretraining_vocab}"]
  assert run_program(base).returncode == 0
  result = run_program(base + ["--dupe_factor=3"])
  assert result.returncode != 0 and "options.dupe_factor" in result.stderr


def test_tf_models_dataloader_reads_the_records(tmp_path, pretraining_vocab):
  pretrain_dataloader = pytest.importorskip("official.nlp.data.pretrain_dataloader")
  corpus = tmp_path / "c.txt"
  corpus.write_text("\n\n".join("hello world\nthe quick brown fox\njumps over the lazy dog"
                                for _ in range(20)), encoding="utf-8")
  out = tmp_path / "o.tfrecord"
  opts = GenerationOptions(vocab_file=pretraining_vocab, max_seq_length=16,
                           max_predictions_per_seq=3)
  local_runner.run(opts, str(corpus), str(out), num_workers=1, show_progress=False)
  config = pretrain_dataloader.BertPretrainDataConfig(
      input_path=str(out), seq_length=16, max_predictions_per_seq=3, global_batch_size=4,
      is_training=False, use_next_sentence_label=True)
  batch = next(iter(pretrain_dataloader.BertPretrainDataLoader(config).load()))
  ours = original_decode([str(out)], 16, 3)
  np.testing.assert_array_equal(batch["input_word_ids"].numpy(), ours["input_ids"][:4])
  np.testing.assert_array_equal(batch["input_type_ids"].numpy(), ours["segment_ids"][:4])
  np.testing.assert_array_equal(batch["masked_lm_ids"].numpy(), ours["masked_lm_ids"][:4])
  np.testing.assert_array_equal(batch["next_sentence_labels"].numpy(),
                                ours["next_sentence_labels"][:4])


def test_program_without_next_sentence_task(tmp_path, pretraining_vocab):
  corpus = tmp_path / "c.txt"
  corpus.write_text("\n\n".join("hello world\nthe quick brown fox\njumps over the lazy dog"
                                for _ in range(20)), encoding="utf-8")
  out = tmp_path / "o.tfrecord"
  result = run_program([f"--input_file={corpus}", f"--output_file={out}",
                        f"--vocab_file={pretraining_vocab}", "--max_seq_length=16",
                        "--max_predictions_per_seq=3", "--next_sentence_prediction=false",
                        "--per_word_replacement"])
  assert result.returncode == 0, result.stderr[-3000:]
  records = original_decode([str(out)], 16, 3)
  assert len(records["input_ids"]) > 20
  assert not records["segment_ids"].any() and not records["next_sentence_labels"].any()
  lengths = records["input_mask"].sum(axis=1)
  # [CLS] whole sentences [SEP]: exactly one [SEP], at the end (before masking, which may
  # draw [SEP] as a random replacement, as the original's uniform draw does).
  original = originals(records)
  assert ((original == 4).sum(axis=1) == 1).all()
  assert (original[np.arange(len(lengths)), lengths - 1] == 4).all()


@pytest.mark.slow
@pytest.mark.parametrize("corpus,vocab", [(ENGLISH, UNCASED), (CHINESE, CHINESE_VOCAB)],
                         ids=["english", "chinese"])
def test_both_tokenizers_write_the_same_bytes(tmp_path, corpus, vocab):
  """FastTokenizer (TensorFlow) and CachedTokenizer (no TensorFlow, small jobs) give the same
  records byte for byte, with whole word masking (## pieces; jieba words)."""
  from pretraining.generation import TOKENIZERS, ShardProcessor
  opts = GenerationOptions(vocab_file=str(shared_path(vocab)), dupe_factor=1,
                           do_whole_word_mask=True)
  files, shards, _ = local_runner.plan(str(shared_path(corpus)), str(tmp_path / "x"), 3)
  written = {}
  for kind in TOKENIZERS:
    path = tmp_path / kind
    ShardProcessor(opts, files, kind).write_shard(shards[1], str(path))
    written[kind] = path.read_bytes()
  assert len(written["fast"]) > 100_000 and written["fast"] == written["cached"]


def test_small_jobs_run_without_tensorflow(tmp_path, small_corpus):
  """A small job tokenizes with CachedTokenizer and writes its records without importing
  TensorFlow (seconds); large ones use FastTokenizer. Mutation caught: _init_worker importing
  TensorFlow whatever the tokenizer."""
  assert local_runner.choose_tokenizer(2 * 2**20, 2) == "cached"
  assert local_runner.choose_tokenizer(40 * 2**20, 2) == "cached"
  assert local_runner.choose_tokenizer(200 * 2**20, 2) == "fast"
  script = f"""
import sys
from pretraining import local_runner
from pretraining.generation import GenerationOptions
opts = GenerationOptions(vocab_file={str(shared_path(CHINESE_VOCAB))!r}, do_whole_word_mask=True)
files, shards, outputs = local_runner.plan({small_corpus!r}, {str(tmp_path / 'out')!r}, 2)
processor = local_runner.generation.ShardProcessor(opts, files, "cached")
local_runner._init_worker(processor, None)   # as a worker process starts
local_runner._work(shards[0], outputs[0])
summary = local_runner.run(opts, {small_corpus!r}, {str(tmp_path / 'run')!r}, num_workers=1,
                           show_progress=False)
assert summary["instances"] > 0, summary
assert "tensorflow" not in sys.modules, "TensorFlow was imported"
"""
  result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
