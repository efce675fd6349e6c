"""create_pretraining_data on Apache Beam: the same shards, the same ShardProcessor, any runner.

    python -m pretraining.create_pretraining_data --input_file=gs://b/wiki/*.txt \
        --output_file=gs://b/records/wiki.tfrecord --vocab_file=gs://b/vocab.txt \
        --num_shards=1024 --runner=DataflowRunner \
        --beam_options="--project=P --region=R --temp_location=gs://b/tmp --setup_file=./setup.py"

The pipeline is a fan-out over shard descriptions (file byte ranges, see pretraining.documents):
each element is processed by ShardProcessor.write_shard exactly as the local runner does, so a
shard's file has the same bytes on either, and the runner's retries are safe (a shard is
written under a temporary name and renamed when complete; finished shards are skipped).
Workers need bert_tf installed (--setup_file pointing at this repository's setup.py, or a
container image).
"""
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from pretraining import fileio, generation, local_runner


class _WriteShard(beam.DoFn):
  """(Shard, output path) -> the shard's stats dict, writing the shard's records file."""

  def __init__(self, processor):
    super().__init__()
    self.processor = processor
    self.instances = beam.metrics.Metrics.counter("create_pretraining_data", "instances")
    self.shards = beam.metrics.Metrics.counter("create_pretraining_data", "shards")

  def process(self, element):
    shard, path = element
    if fileio.exists(path):   # finished by an earlier attempt or run
      return
    stats = self.processor.write_shard(shard, path)
    self.instances.inc(stats.get("instances", 0))
    self.shards.inc()
    yield stats


def build(pipeline, processor, shards, output_paths):
  """Adds the generation steps to `pipeline`; returns the PCollection of per-shard stats."""
  return (pipeline
          | "Shards" >> beam.Create(list(zip(shards, output_paths)))
          | "SpreadOverWorkers" >> beam.Reshuffle()
          | "WriteShards" >> beam.ParDo(_WriteShard(processor)))


def run(options, input_file, output_file, num_shards=0, shard_size_mb=0.0, runner="DirectRunner",
        beam_args=()):
  """Runs the pipeline to completion; returns the same summary as the local runner."""
  files, shards, outputs = local_runner.plan(input_file, output_file, num_shards, shard_size_mb)
  processor = generation.ShardProcessor(options, files)
  local_runner.check_manifest(options, files, outputs)
  pipeline_options = PipelineOptions([f"--runner={runner}", *beam_args])
  with beam.Pipeline(options=pipeline_options) as pipeline:
    build(pipeline, processor, shards, outputs)
  return local_runner.summarize(outputs)
