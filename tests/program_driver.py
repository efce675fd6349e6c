"""Runs program command lines in one process and reports what a user would see.

    python tests/program_driver.py cases.json results.json

cases.json: [{"id": ..., "module": "finetuning.run_ner", "argv": [...]}, ...]. Each case runs the
program's `run()` (its console-script entry point) with fresh flags, file descriptors 1 and 2
redirected to files, and records {"id", "status", "stdout", "stderr"}. One process pays
TensorFlow's import once for all the cases: the bad-input suite stays fast.

Programs define flags of the same names (max_seq_length, ...), so the flags a program module
defined are removed before the next module is imported.
"""
import importlib
import json
import os
import sys
import tempfile
import traceback

from absl import flags

FLAGS = flags.FLAGS
_PROGRAM_NAMES = {
    "pretraining.slim_checkpoint": "bert-slim-checkpoint",
    "pretraining.convert_checkpoint": "bert-convert",
    "pretraining.build_vocab": "bert-build-vocab",
    "pretraining.create_pretraining_data": "bert-create-pretraining-data",
    "pretraining.inspect_pretraining_data": "bert-inspect-pretraining-data",
    "pretraining.run_pretraining": "bert-run-pretraining",
    "finetuning.run_classifier": "bert-run-classifier",
    "finetuning.run_squad": "bert-run-squad",
    "finetuning.extract_features": "bert-extract-features",
    "finetuning.run_ner": "bert-run-ner",
    "finetuning.run_multitask": "bert-run-multitask",
    "finetuning.evaluate_squad": "bert-evaluate-squad",
}


def _forget_program_flags():
  for name in list(FLAGS):
    module = FLAGS.find_module_defining_flag(name) or ""
    if module.startswith(("pretraining.", "finetuning.", "__main__")) or name == "verbose":
      try:
        delattr(FLAGS, name)
      except AttributeError:
        pass


def _load(module_name, loaded):
  if module_name not in loaded:
    _forget_program_flags()
    for name in [m for m in sys.modules if m.startswith(("pretraining.", "finetuning.run",
                                                          "finetuning.extract_features",
                                                          "finetuning.common_flags"))]:
      del sys.modules[name]
    loaded.clear()
    loaded[module_name] = importlib.import_module(module_name)
  return loaded[module_name]


def run_case(case, loaded):
  module = _load(case["module"], loaded)
  FLAGS.unparse_flags()
  with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    os.dup2(out.fileno(), 1)
    os.dup2(err.fileno(), 2)
    sys.argv = [_PROGRAM_NAMES[case["module"]], *case["argv"]]
    status = 0
    try:
      module.run()
    except SystemExit as e:
      status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # pylint: disable=broad-except
      traceback.print_exc()   # what the interpreter prints for an uncaught error
      status = 1
    finally:
      sys.stdout.flush()
      sys.stderr.flush()
      os.dup2(saved[0], 1)
      os.dup2(saved[1], 2)
      os.close(saved[0])
      os.close(saved[1])
    out.seek(0)
    err.seek(0)
    return {"id": case["id"], "status": status,
            "stdout": out.read().decode("utf-8", "replace"),
            "stderr": err.read().decode("utf-8", "replace")}


def main():
  cases_file, results_file = sys.argv[1:3]
  with open(cases_file, encoding="utf-8") as f:
    cases = json.load(f)
  loaded = {}
  results = [run_case(case, loaded) for case in sorted(cases, key=lambda c: c["module"])]
  with open(results_file, "w", encoding="utf-8") as f:
    json.dump(results, f)


if __name__ == "__main__":
  main()
