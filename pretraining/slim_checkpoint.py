"""Converts an original BERT training checkpoint into a slim one (model variables only).

    python -m pretraining.slim_checkpoint \
        --input_checkpoint=gs://bucket/pretrain/model.ckpt-100000 \
        --output_checkpoint=/tmp/slim/bert_model.ckpt

Drops the optimizer slots (adam_m / adam_v) and counters, keeping the original variable names, so
the result is about a third of the size and loads wherever Google's released checkpoints do.
"""
from absl import flags

from bert_tf import errors, files
from bert_tf.checkpoint.original import slim_original_checkpoint

FLAGS = flags.FLAGS
flags.DEFINE_string("input_checkpoint", None, "Original-name training checkpoint (prefix or folder).")
flags.DEFINE_string("output_checkpoint", None, "Prefix to write, e.g. out/bert_model.ckpt.")
flags.mark_flags_as_required(["input_checkpoint", "output_checkpoint"])


def main(argv):
  del argv
  files.check_output_file(FLAGS.output_checkpoint, "output_checkpoint")
  result = slim_original_checkpoint(FLAGS.input_checkpoint, FLAGS.output_checkpoint)
  print(f"kept {len(result['kept'])} variables, dropped {len(result['dropped'])} "
        f"(optimizer state); {result['src_bytes'] / 1e6:.1f} MB -> {result['dst_bytes'] / 1e6:.1f} MB "
        f"written to {FLAGS.output_checkpoint}")


def run():
  errors.run_program(main)


if __name__ == "__main__":
  run()
