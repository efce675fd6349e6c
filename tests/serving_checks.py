"""Test helpers for the raw-text SavedModels: call one in a fresh process that never imports
bert_tf (tests/serving_client.py), and read what `saved_model_cli show` lists."""
import json
import os
import pathlib
import subprocess
import sys
import tempfile

CLIENT = pathlib.Path(__file__).resolve().parent / "serving_client.py"


def _clean_env():
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  env.pop("PYTHONPATH", None)
  return env


def serve_in_fresh_process(export_dir, inputs, signature="serving_default"):
  """outputs dict (lists; strings decoded) of `signature` called with `inputs` (name -> list)
  in a new Python process started outside the repository, with no PYTHONPATH."""
  result = subprocess.run([sys.executable, str(CLIENT), str(export_dir), signature],
                          input=json.dumps(inputs), capture_output=True, text=True,
                          cwd=tempfile.gettempdir(), env=_clean_env(), timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  return json.loads(result.stdout)["outputs"]


def saved_model_cli_show(export_dir):
  """The text of `saved_model_cli show --dir EXPORT_DIR --all` (the TensorFlow install's tool)."""
  tool = pathlib.Path(sys.executable).parent / "saved_model_cli"
  command = [str(tool)] if tool.exists() else [sys.executable, "-m",
                                               "tensorflow.python.tools.saved_model_cli"]
  result = subprocess.run([*command, "show", "--dir", str(export_dir), "--all"],
                          capture_output=True, text=True, cwd=tempfile.gettempdir(),
                          env=_clean_env(), timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout


def signature_inputs_and_outputs(cli_text, signature="serving_default"):
  """({input names}, {output names}) of one signature in saved_model_cli's text."""
  block = cli_text.split(f"signature_def['{signature}']:", 1)[1]
  block = block.split("signature_def[", 1)[0]
  inputs_text, outputs_text = block.split("The given SavedModel SignatureDef contains the "
                                          "following output(s):", 1)

  def names(text):
    return {line.split("['", 1)[1].split("']", 1)[0] for line in text.splitlines()
            if line.strip().startswith("inputs['") or line.strip().startswith("outputs['")}
  return names(inputs_text), names(outputs_text)


def compiled_functions(export_dir):
  """Names of the functions in a SavedModel marked for XLA compilation (_XlaMustCompile): an
  export for any device and serving binary has none."""
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=import-outside-toplevel
  proto = saved_model_pb2.SavedModel()
  proto.ParseFromString((pathlib.Path(export_dir) / "saved_model.pb").read_bytes())
  names = set()
  for graph in proto.meta_graphs:
    nodes = list(graph.graph_def.node)
    for function in graph.graph_def.library.function:
      if function.attr["_XlaMustCompile"].b:
        names.add(function.signature.name)
      nodes.extend(function.node_def)
    names.update(n.name for n in nodes if n.attr["_XlaMustCompile"].b)
  return sorted(names)
