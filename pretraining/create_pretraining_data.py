"""Raw text -> masked-LM / next-sentence TFRecords, as google-research/bert's program, faster.

    python -m pretraining.create_pretraining_data \
        --input_file=corpus/*.txt --output_file=out/train.tfrecord \
        --vocab_file=uncased_L-12_H-768_A-12/vocab.txt --do_lower_case=true \
        --max_seq_length=128 --max_predictions_per_seq=20 --masked_lm_prob=0.15 \
        --random_seed=12345 --dupe_factor=10

    # Chinese whole word masking (BERT-wwm): jieba words, optional user dictionary
    bert-create-pretraining-data --input_file=zh.txt --output_file=out/zh.tfrecord \
        --vocab_file=chinese_L-12_H-768_A-12/vocab.txt --do_whole_word_mask=true

    # The same on Apache Beam (pip install "bert_tf[beam]"), e.g. Dataflow:
    ... --runner=DataflowRunner --beam_options="--project=P --region=R --temp_location=gs://b/t"

Input: one sentence per line, blank lines between documents (files or globs, comma-separated).
Output: one file per shard, named output_file-00000-of-000NN when there are several (a
comma-separated output_file names them instead); output_file* finds them all. Each record holds
the original features (input_ids, input_mask, segment_ids, masked_lm_positions, masked_lm_ids,
masked_lm_weights, next_sentence_labels). max_seq_length and max_predictions_per_seq must match
the pretraining run's flags.

Re-running the same command continues an interrupted run: finished shards are kept.
"""
import json
import logging as py_logging

from absl import flags
from absl import logging

from bert_tf import errors, files
from bert_tf.tokenization import warn_if_many_unknown
from pretraining import generation

FLAGS = flags.FLAGS
# The original's flags, names and defaults.
flags.DEFINE_string("input_file", None, "Input raw text file (or comma-separated list of files/globs).")
flags.DEFINE_string("output_file", None, "Output TF example file (or comma-separated list of files).")
flags.DEFINE_string("vocab_file", None, "The vocabulary file that the BERT model was trained on.")
flags.DEFINE_bool("do_lower_case", True, "Lower-case the input text (True for uncased models).")
flags.DEFINE_bool("do_whole_word_mask", False, "Mask whole words (## pieces together; Chinese "
                  "words from --chinese_segmenter) instead of single tokens.")
flags.DEFINE_integer("max_seq_length", 128, "Maximum sequence length.")
flags.DEFINE_integer("max_predictions_per_seq", 20, "Maximum number of masked LM predictions per sequence.")
flags.DEFINE_integer("random_seed", 12345, "Random seed for data generation.")
flags.DEFINE_integer("dupe_factor", 10, "Number of times to duplicate the input data (with different masks).")
flags.DEFINE_float("masked_lm_prob", 0.15, "Masked LM probability.")
flags.DEFINE_float("short_seq_prob", 0.1, "Probability of creating sequences shorter than the maximum length.")
# New flags.
flags.DEFINE_bool("next_sentence_prediction", True, "False: no next-sentence task (RoBERTa-style): "
                  "single segments of contiguous sentences up to the full length; "
                  "next_sentence_labels is written as 0 to keep the schema.")
flags.DEFINE_bool("per_word_replacement", False, "Draw the 80/10/10 [MASK]/random/unchanged choice "
                  "once per masked word instead of once per token (the original).")
flags.DEFINE_string("chinese_segmenter", "jieba", "Word segmenter for Chinese whole word masking: "
                    "jieba, pkuseg, ltp, none, or package.module:function (str -> list of words).")
flags.DEFINE_string("chinese_segmenter_user_dict", "", "User dictionary for the segmenter (domain terms).")
flags.DEFINE_integer("num_shards", 0, "Output shards (0: from --shard_size_mb, or one per name of a "
                     "comma-separated output_file). The output depends on it, not on --num_workers.")
flags.DEFINE_float("shard_size_mb", 0, "Input megabytes per shard when --num_shards=0 (0: about 64 "
                   "shards of 1 to 64 MB); a worker's memory follows it.")
flags.DEFINE_integer("num_workers", 0, "Worker processes (0: all cores).")
flags.DEFINE_string("runner", "local", "local, or an Apache Beam runner (DirectRunner, DataflowRunner, "
                    "FlinkRunner, SparkRunner, ...).")
flags.DEFINE_string("beam_options", "", "Extra Beam pipeline options, space-separated.")
flags.DEFINE_bool("allow_empty", False, "Succeed (writing empty shards) when the input gives no "
                  "instance; by default that is an error, as it usually means a wrong path or "
                  "vocabulary.")
flags.mark_flags_as_required(["input_file", "output_file", "vocab_file"])


def options_from_flags():
  return generation.GenerationOptions(
      vocab_file=FLAGS.vocab_file, do_lower_case=FLAGS.do_lower_case,
      do_whole_word_mask=FLAGS.do_whole_word_mask, max_seq_length=FLAGS.max_seq_length,
      max_predictions_per_seq=FLAGS.max_predictions_per_seq, random_seed=FLAGS.random_seed,
      dupe_factor=FLAGS.dupe_factor, masked_lm_prob=FLAGS.masked_lm_prob,
      short_seq_prob=FLAGS.short_seq_prob, next_sentence=FLAGS.next_sentence_prediction,
      per_word_replacement=FLAGS.per_word_replacement,
      chinese_segmenter=FLAGS.chinese_segmenter,
      chinese_segmenter_user_dict=FLAGS.chinese_segmenter_user_dict)


def report(summary):
  """Logs totals and the warnings a user should read."""
  instances = summary.get("instances", 0)
  real = max(summary.get("real_tokens", 0), 1)
  masked = max(summary.get("masked", 0), 1)
  logging.info("wrote %d instances in %d shard(s) from %d documents, %d sentences, %d tokens",
               instances, summary.get("shards", 0), summary.get("documents", 0),
               summary.get("sentences", 0), summary.get("tokens", 0))
  logging.info("masked %.2f%% of real tokens (%.1f%% [MASK], %.1f%% unchanged); random next "
               "segment in %.1f%% of instances", 100 * summary.get("masked", 0) / real,
               100 * summary.get("masked_as_mask", 0) / masked,
               100 * summary.get("masked_unchanged", 0) / masked,
               100 * summary.get("random_next", 0) / max(instances, 1))
  examples = summary.get("examples", {})
  warnings = [
      ("undecodable_lines", "lines had bytes that are not UTF-8; they were dropped, as the "
       "original does"),
      ("sentences_truncated", "sentences are longer than an instance can hold and were cut "
       "(as the original does); split long lines into sentences to keep their text",
       "sentence_truncated"),
      ("lines_without_tokens", "non-blank lines gave no tokens and were skipped"),
      ("single_sentence_documents", "documents have a single sentence: their instances always "
       "take a random next segment"),
  ]
  for key, message, *example in warnings:
    if summary.get(key):
      where = f" (first: {examples[example[0]]})" if example and example[0] in examples else ""
      logging.warning("%d %s%s", summary[key], message, where)
  if not instances:
    logging.warning("no instances were written: is the input empty?")
  warn_if_many_unknown(summary.get("unknown_tokens", 0), summary.get("tokens", 0),
                       FLAGS.input_file, FLAGS.vocab_file)


def main(argv):
  del argv
  py_logging.getLogger("jieba").setLevel(py_logging.WARNING)
  options = options_from_flags()
  for name in FLAGS.output_file.split(","):
    if name.strip() and FLAGS.runner == "local":
      files.check_output_file(name.strip())
  if FLAGS.runner == "local":
    from pretraining import local_runner  # pylint: disable=import-outside-toplevel
    summary = local_runner.run(options, FLAGS.input_file, FLAGS.output_file, FLAGS.num_shards,
                               FLAGS.shard_size_mb, FLAGS.num_workers,
                               allow_empty=FLAGS.allow_empty)
  else:
    from pretraining import beam_pipeline  # pylint: disable=import-outside-toplevel
    summary = beam_pipeline.run(options, FLAGS.input_file, FLAGS.output_file, FLAGS.num_shards,
                                FLAGS.shard_size_mb, FLAGS.runner, FLAGS.beam_options.split())
  report(summary)
  print(json.dumps({k: v for k, v in summary.items() if k != "examples"}, sort_keys=True))


def run():
  errors.run_program(main)


if __name__ == "__main__":
  run()
