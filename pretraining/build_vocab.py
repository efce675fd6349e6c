"""Builds a WordPiece vocabulary in BERT's layout from text files.

    python -m pretraining.build_vocab --input_file=corpus.txt --output_file=vocab.txt \
        --vocab_size=30522 --do_lower_case=true

The vocabulary starts [PAD], [unused0..N-1], [UNK], [CLS], [SEP], [MASK] as Google's does; CJK
characters are tokens of their own. do_lower_case must match what data generation and
fine-tuning will use.
"""
from absl import flags

from bert_tf import errors, files
from pretraining import vocabulary

FLAGS = flags.FLAGS
flags.DEFINE_string("input_file", None, "Comma-separated text files or globs (one sentence per line).")
flags.DEFINE_string("output_file", None, "Where to write vocab.txt (one token per line).")
flags.DEFINE_integer("vocab_size", 30522, "Upper bound on the vocabulary size, reserved tokens included.")
flags.DEFINE_bool("do_lower_case", True, "Lower-case and strip accents before counting words.")
flags.DEFINE_integer("num_unused", 99, "Number of [unusedN] placeholder tokens after [PAD].")
flags.DEFINE_integer("min_count", 2, "Lower bound of the learner's frequency threshold.")
flags.mark_flags_as_required(["input_file", "output_file"])


def main(argv):
  del argv
  files.check_output_file(FLAGS.output_file)
  vocab = vocabulary.build_vocab_file(FLAGS.input_file.split(","), FLAGS.output_file,
                                      FLAGS.vocab_size, FLAGS.do_lower_case, FLAGS.num_unused,
                                      FLAGS.min_count)
  print(f"wrote {len(vocab)} tokens to {FLAGS.output_file}")


def run():
  errors.run_program(main)


if __name__ == "__main__":
  run()
