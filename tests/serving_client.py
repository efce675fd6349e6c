"""Calls a raw-text SavedModel from a process that imports only TensorFlow and tensorflow-text,
as a serving client would. Never imports bert_tf, finetuning or pretraining, and checks that
loading the export did not import them either (the editable install would make them importable).

  python tests/serving_client.py EXPORT_DIR SIGNATURE < {"input_name": [values, ...]} > outputs

Prints one JSON object: {"outputs": {name: nested lists (strings decoded as UTF-8)},
"signatures": sorted signature names}.
"""
import json
import sys

import tensorflow as tf
import tensorflow_text  # noqa: F401  registers the tokenizer ops  pylint: disable=unused-import

OURS = ("bert_tf", "finetuning", "pretraining")


def _plain(value):
  value = value.numpy()
  if value.dtype == object:
    return json.loads(json.dumps(value.tolist(), default=lambda b: b.decode("utf-8")))
  return value.tolist()


def main():
  export_dir, signature = sys.argv[1], sys.argv[2]
  inputs = json.load(sys.stdin)
  served = tf.saved_model.load(export_dir)
  function = served.signatures[signature]
  outputs = function(**{name: tf.constant(values) for name, values in inputs.items()})
  imported = sorted(m for m in sys.modules if m.split(".")[0] in OURS)
  if imported:
    raise SystemExit(f"the SavedModel imported the project's modules: {imported}")
  json.dump({"outputs": {k: _plain(v) for k, v in outputs.items()},
             "signatures": sorted(served.signatures.keys())}, sys.stdout)


if __name__ == "__main__":
  main()
