"""Prints decoded examples and summary statistics of pretraining TFRecords.

    python -m pretraining.inspect_pretraining_data --input_file='out/train.tfrecord*' \
        --vocab_file=vocab.txt --num_examples=3

Predicted positions print as {input->label}: {[MASK]->cat} (80%), {dog->cat} (a random token,
10%) or {cat->cat} (unchanged, 10%). Statistics: instances, mean real length, share of real
tokens masked, the [MASK]/random/unchanged split, and the next-sentence balance.
"""
import json

from absl import flags

from bert_tf import errors
from bert_tf.tokenization import load_vocab
from pretraining import record_stats

FLAGS = flags.FLAGS
flags.DEFINE_string("input_file", None, "TFRecord files or globs, comma-separated.")
flags.DEFINE_string("vocab_file", None, "The vocabulary the records were made with.")
flags.DEFINE_integer("num_examples", 3, "Instances to print.")
flags.DEFINE_integer("max_records", 0, "Read at most this many records (0: all).")
flags.mark_flags_as_required(["input_file", "vocab_file"])


def main(argv):
  del argv
  vocab_map = load_vocab(FLAGS.vocab_file)
  vocab = [""] * (max(vocab_map.values()) + 1)
  for token, index in vocab_map.items():
    vocab[index] = token
  records = record_stats.read_records(FLAGS.input_file, FLAGS.max_records)
  if not records:
    raise errors.InputFileError(f"{FLAGS.input_file} holds no records")
  for index in range(min(FLAGS.num_examples, len(records["input_ids"]))):
    print(f"--- instance {index}")
    print(record_stats.decode(records, index, vocab))
  print("--- summary")
  print(json.dumps(record_stats.summarize(records, vocab_map["[MASK]"]), indent=1))


def run():
  errors.run_program(main)


if __name__ == "__main__":
  run()
