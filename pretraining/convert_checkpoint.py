"""Converts a BERT model folder between the original TF1 format and Hugging Face's, both ways.

    bert-convert --input_dir=chinese_L-12_H-768_A-12 --output_dir=hf/ --output_format=huggingface
    bert-convert --input_dir=hf/ --output_dir=orig/ --output_format=original
    bert-convert --input_dir=run/export --labels_file=run/labels.json --head=classification \
        --output_dir=hf/ --output_format=huggingface     # a run_classifier model

The input's format is detected from its files (bert_config.json + bert_model.ckpt, or config.json +
model.safetensors). The encoder, the pretraining heads and the fine-tuned heads of run_classifier,
run_ner and run_squad are converted, with the head type and label names; no PyTorch is needed.
"""
from absl import flags

from bert_tf import errors, files
from bert_tf.checkpoint.huggingface import HEAD_FLAG_VALUES, convert

FLAGS = flags.FLAGS
flags.DEFINE_string("input_dir", None, "An original folder (bert_config.json, vocab.txt, "
                    "bert_model.ckpt.*) or a Hugging Face one (config.json, model.safetensors, "
                    "vocab.txt).")
flags.DEFINE_string("output_dir", None, "Folder to write the converted model to.")
flags.DEFINE_enum("output_format", None, ["huggingface", "original"], "Format to write.")
flags.DEFINE_enum("head", None, list(HEAD_FLAG_VALUES), "For an original checkpoint with "
                  "run_classifier / run_ner's output_weights and no model_info.json: which head "
                  "it is.")
flags.DEFINE_string("labels_file", None, "The label names of a classifier or tagger head: the "
                    "labels.json that run_classifier / run_ner wrote in their output_dir.")
flags.DEFINE_bool("do_lower_case", None, "The tokenizer's casing, when the input does not record "
                  "it (default: inferred from the folder name, as FullTokenizer.from_pretrained).")
flags.mark_flags_as_required(["input_dir", "output_dir", "output_format"])


def main(argv):
  del argv
  files.check_output_dir(FLAGS.output_dir)
  model = convert(FLAGS.input_dir, FLAGS.output_dir, FLAGS.output_format, head=FLAGS.head,
                  do_lower_case=FLAGS.do_lower_case, labels_file=FLAGS.labels_file)
  labels = f", labels {list(model.labels)}" if model.labels is not None else ""
  print(f"{model.architecture} ({model.config.num_hidden_layers} layers, {len(model.variables)} "
        f"tensors{labels}) written to {FLAGS.output_dir} in the {FLAGS.output_format} format")


def run():
  errors.run_program(main)


if __name__ == "__main__":
  run()
