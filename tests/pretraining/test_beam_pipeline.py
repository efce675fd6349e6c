"""The Beam pipeline (DirectRunner) writes the same shards, byte for byte, as the local runner."""
import glob

import pytest

from conftest import shared_path
from pretraining import local_runner
from pretraining.generation import GenerationOptions

beam_pipeline = pytest.importorskip("pretraining.beam_pipeline",
                                    reason="apache-beam is not installed (pip install .[beam])")


@pytest.mark.slow
def test_direct_runner_equals_local_runner(tmp_path):
  corpus = tmp_path / "corpus.txt"
  corpus.write_text(shared_path("pretrain_corpus/sample_text.txt").read_text(encoding="utf-8") +
                    "\n\n" + shared_path("chinese_corpus/news_zh_1.txt").read_text(encoding="utf-8"),
                    encoding="utf-8")
  options = GenerationOptions(vocab_file=str(shared_path("vocab/chinese_vocab.txt")),
                              do_whole_word_mask=True, dupe_factor=5)
  local = local_runner.run(options, str(corpus), str(tmp_path / "local" / "d.tfrecord"),
                           num_shards=4, num_workers=1, show_progress=False)
  beam = beam_pipeline.run(options, str(corpus), str(tmp_path / "beam" / "d.tfrecord"),
                           num_shards=4, runner="DirectRunner")
  local_files = sorted(glob.glob(str(tmp_path / "local" / "d.tfrecord*")))
  beam_files = sorted(glob.glob(str(tmp_path / "beam" / "d.tfrecord*")))
  assert len(local_files) == len(beam_files) == 4
  for a, b in zip(local_files, beam_files):
    assert open(a, "rb").read() == open(b, "rb").read()
  assert beam["instances"] == local["instances"] > 300
  # A second run finds every shard done and writes nothing.
  again = beam_pipeline.run(options, str(corpus), str(tmp_path / "beam" / "d.tfrecord"),
                            num_shards=4, runner="DirectRunner")
  assert again["instances"] == beam["instances"]
