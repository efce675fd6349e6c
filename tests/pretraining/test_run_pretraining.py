"""run_pretraining end to end on CPU: loss falls, kill and resume, export, eval, recipes parse."""
import glob
import json
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT, real_pretraining_records, shared_path, start_local_workers

CONFIGS = sorted((ROOT / "tpu_configs").glob("*.flags"))


def program(*args):
  return [sys.executable, "-m", "pretraining.run_pretraining", *args]


@pytest.mark.parametrize("flagfile", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_recipe_parses_and_is_consistent(flagfile, tmp_path):
  result = subprocess.run(program(f"--flagfile={flagfile}", "--input_file=unused",
                                  f"--output_dir={tmp_path}", "--dry_run"),
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-2000:]
  resolved = json.loads(result.stdout.strip().splitlines()[-1])
  assert resolved["max_predictions_per_seq"] * 4 < resolved["max_seq_length"] * 1.0
  assert resolved["num_warmup_steps"] < resolved["num_train_steps"]
  assert resolved["do_train"]
  if resolved["use_tpu"]:
    assert resolved["train_batch_size"] % resolved["num_tpu_cores"] == 0
    assert resolved["precision"] == "mixed_bfloat16"


def _recipe_value(flagfile, name):
  for line in flagfile.read_text().splitlines():
    if line.startswith(f"--{name}="):
      return line.split("=", 1)[1]
  return None


def _stand_in_records(path, seq, predictions, count=2):
  """`count` well-formed pretraining records of the given lengths (the original feature names)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from pretraining import features  # pylint: disable=import-outside-toplevel
  lengths = dict(input_ids=seq, input_mask=seq, segment_ids=seq, masked_lm_positions=predictions,
                 masked_lm_ids=predictions, masked_lm_weights=predictions, next_sentence_labels=1)
  arrays = {name: np.ones((count, length), np.float32 if name == "masked_lm_weights" else np.int64)
            for name, length in lengths.items()}
  with tf.io.TFRecordWriter(str(path)) as writer:
    for record in features.serialize_examples(arrays):
      writer.write(record)


@pytest.mark.parametrize("flagfile", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_recipe_passes_the_preflight_on_stand_in_files(flagfile, tmp_path):
  """Each recipe against a tiny stand-in of its files: a config with its vocabulary's size and
  positions for its length, the vocabulary, records of its lengths; on a TPU VM (local paths)."""
  seq = int(_recipe_value(flagfile, "max_seq_length") or 128)
  predictions = int(_recipe_value(flagfile, "max_predictions_per_seq") or 20)
  vocab = tmp_path / "vocab.txt"
  vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] +
                             [f"w{i}" for i in range(95)]) + "\n")
  config = tmp_path / "bert_config.json"
  config.write_text(json.dumps(dict(vocab_size=100, hidden_size=8, num_hidden_layers=1,
                                    num_attention_heads=2, intermediate_size=8, hidden_act="gelu",
                                    hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
                                    max_position_embeddings=seq, type_vocab_size=2,
                                    initializer_range=0.02)))
  _stand_in_records(tmp_path / "rec.tfrecord", seq, predictions)
  common = [f"--flagfile={flagfile}", f"--bert_config_file={config}", f"--vocab_file={vocab}",
            f"--input_file={tmp_path / 'rec.tfrecord'}", f"--output_dir={tmp_path / 'out'}",
            "--tpu_name=local", "--dry_run"]
  result = subprocess.run(program(*common), cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-2000:]
  # The preflight really runs: records of another length are refused, naming both lengths.
  _stand_in_records(tmp_path / "short.tfrecord", seq // 2, predictions)
  common[3] = f"--input_file={tmp_path / 'short.tfrecord'}"
  result = subprocess.run(program(*common), cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode != 0 and f"max_seq_length={seq}" in result.stderr


def test_inconsistent_flags_are_named(tmp_path):
  result = subprocess.run(program(f"--flagfile={ROOT / 'tpu_configs/tiny_cpu.flags'}",
                                  "--input_file=unused", f"--output_dir={tmp_path}",
                                  "--max_predictions_per_seq=60", "--num_warmup_steps=400",
                                  "--dry_run"),
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode != 0
  assert "max_predictions_per_seq=60" in result.stderr and "num_warmup_steps=400" in result.stderr


@pytest.fixture(scope="module")
def records(tmp_path_factory):
  """Real English text as seq-64 records (the tiny CPU recipe's lengths)."""
  corpus = shared_path("english_corpus/wikitext-2_valid_sentences.txt")
  vocab = shared_path("vocab/uncased_vocab.txt")
  out = tmp_path_factory.mktemp("records") / "wiki.tfrecord"
  result = subprocess.run([sys.executable, "-m", "pretraining.create_pretraining_data",
                           f"--input_file={corpus}", f"--output_file={out}",
                           f"--vocab_file={vocab}", "--max_seq_length=64",
                           "--max_predictions_per_seq=10", "--dupe_factor=2", "--num_shards=4"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  return f"{out}*", str(vocab)


def summaries(model_dir, tag):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  values = {}
  for path in sorted(glob.glob(str(pathlib.Path(model_dir) / "train" / "events.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == tag:
          values[event.step] = float(tf.make_ndarray(value.tensor))
  return values


def train_command(records, output_dir, *extra):
  pattern, vocab = records
  return program(f"--flagfile={ROOT / 'tpu_configs/tiny_cpu.flags'}", f"--input_file={pattern}",
                 f"--output_dir={output_dir}", f"--vocab_file={vocab}", *extra)


@pytest.fixture(scope="module")
def float32_run(records, tmp_path_factory):
  out = tmp_path_factory.mktemp("pretraining") / "run"
  result = subprocess.run(train_command(records, out), cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
  assert result.returncode == 0, result.stderr[-4000:]
  return out


@pytest.mark.slow
def test_pretraining_learns_exports_and_evaluates(float32_run):
  out = float32_run
  mlm = summaries(out, "masked_lm_loss")
  steps = sorted(mlm)
  assert steps[-1] == 300 and len(steps) == 6
  assert mlm[steps[0]] > 9.0                    # about ln(30522) = 10.3 at the start
  assert mlm[steps[-1]] < 0.75 * mlm[steps[0]]  # well below it after 300 steps
  assert set(summaries(out, "learning_rate")) == set(steps)
  results = dict(line.split(" = ") for line in (out / "eval_results.txt").read_text().splitlines())
  assert set(results) >= {"masked_lm_loss", "masked_lm_accuracy", "next_sentence_loss",
                          "next_sentence_accuracy", "global_step"}
  assert int(results["global_step"]) == 300
  assert float(results["masked_lm_loss"]) < mlm[steps[0]]
  # The export is an original checkpoint: it loads into a fresh model with identical outputs.
  check_export(out)


@pytest.mark.slow
def test_bfloat16_follows_the_float32_loss_curve(records, float32_run, tmp_path):
  """Mixed bfloat16 (float32 variables, softmax, LayerNorm and losses) learns as float32 does:
  same data, same initialisation, the masked-LM loss within 5% of float32's at every logged step."""
  out = tmp_path / "bf16"
  result = subprocess.run(train_command(records, out, "--precision=mixed_bfloat16",
                                        "--do_eval=false"),
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-4000:]
  half, full = summaries(out, "masked_lm_loss"), summaries(float32_run, "masked_lm_loss")
  assert sorted(half) == sorted(full)
  for step in full:
    assert half[step] == pytest.approx(full[step], rel=0.05), (step, half[step], full[step])
  assert half[max(half)] < 0.75 * half[min(half)]


def check_export(out):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from bert_tf import BertPretrainer  # pylint: disable=import-outside-toplevel
  exported = BertPretrainer.from_pretrained(out / "export", max_predictions_per_seq=10)
  trained = BertPretrainer(exported.config, max_predictions_per_seq=10)
  from bert_tf.training import model_checkpoint  # pylint: disable=import-outside-toplevel
  status = model_checkpoint(trained).restore(tf.train.latest_checkpoint(str(out)))
  status.assert_existing_objects_matched().expect_partial()
  names = {n for n, _ in tf.train.list_variables(str(out / "export" / "bert_model.ckpt"))}
  assert "bert/embeddings/word_embeddings" in names and "cls/predictions/output_bias" in names
  rng = np.random.default_rng(0)
  features = {"input_ids": rng.integers(0, 30522, (3, 64)).astype(np.int32),
              "input_mask": np.ones((3, 64), np.int32),
              "segment_ids": np.zeros((3, 64), np.int32),
              "masked_lm_positions": rng.integers(0, 64, (3, 10)).astype(np.int32)}
  a, b = exported(features, training=False), trained(features, training=False)
  for key in ("sequence_output", "mlm_logits", "nsp_logits"):
    np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())


def checkpoint_values(prefix):
  """Every variable of a trainer checkpoint (model, optimizer slots and step, dropout states)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  reader = tf.train.load_checkpoint(str(prefix))
  return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
          if not name.startswith(("iterator", "_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter"))}


def kill_between(command, out, first, last, seed):
  """Starts a run and SIGKILLs it at a random moment after ckpt-`first` is registered in the
  checkpoint state file and before ckpt-`last` is."""
  import random  # pylint: disable=import-outside-toplevel
  process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
  deadline = time.time() + 600
  state = out / "checkpoint"  # CheckpointManager registers a save here after writing its files
  while time.time() < deadline and process.poll() is None:
    if state.exists() and f"ckpt-{first}\"" in state.read_text():
      break
    time.sleep(0.05)
  time.sleep(random.Random(seed).uniform(0.0, 1.0))
  process.send_signal(signal.SIGKILL)
  process.wait()
  assert glob.glob(str(out / f"ckpt-{first}.index")), "no checkpoint before the kill"
  assert f"ckpt-{last}\"" not in state.read_text(), "the kill came too late"


@pytest.mark.slow
def test_killed_run_resumes_exactly(records, float32_run, tmp_path):
  """One device: a run killed at a random point after its first checkpoint and resumed ends with
  every weight, optimizer slot and the step equal to the uninterrupted run's (the input position
  and the dropout states are restored)."""
  out = tmp_path / "killed"
  kill_between(train_command(records, out, "--do_eval=false"), out, 100, 300, seed=0)
  before = summaries(out, "masked_lm_loss")
  result = subprocess.run(train_command(records, out, "--do_eval=false"), cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-4000:]
  assert "resumed from" in result.stderr
  after = summaries(out, "masked_lm_loss")
  assert max(after) == 300 and min(before) == 50
  resumed, uninterrupted = (checkpoint_values(d / "ckpt-300") for d in (out, float32_run))
  assert sorted(resumed) == sorted(uninterrupted) and len(resumed) > 100
  assert any("seed_generator" in n or "random_states" in n for n in resumed)
  for name, value in uninterrupted.items():
    np.testing.assert_array_equal(resumed[name], value, err_msg=name)


@pytest.mark.slow
def test_killed_two_replica_run_resumes_like_an_uninterrupted_one(records, tmp_path):
  """2 replicas (--num_cpu_replicas=2): a multi-device input position cannot be saved in this
  TensorFlow, so a resumed run restarts its input reshuffled by the step (documented). A run
  killed at a random point after ckpt-100 and resumed ends equal to one that started from the
  same ckpt-100 and was never interrupted."""
  extra = ("--do_eval=false", "--num_cpu_replicas=2", "--num_train_steps=200")
  out = tmp_path / "killed"
  kill_between(train_command(records, out, *extra), out, 100, 200, seed=1)
  reference = tmp_path / "from_ckpt100"
  reference.mkdir()
  for path in glob.glob(str(out / "ckpt-100.*")) + [str(out / "flags.json")]:
    (reference / pathlib.Path(path).name).write_bytes(pathlib.Path(path).read_bytes())
  (reference / "checkpoint").write_text('model_checkpoint_path: "ckpt-100"\n'
                                        'all_model_checkpoint_paths: "ckpt-100"\n')
  for folder in (out, reference):
    result = subprocess.run(train_command(records, folder, *extra), cwd=ROOT,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "resumed from" in result.stderr and "reshuffled" in result.stderr
  resumed, uninterrupted = (checkpoint_values(d / "ckpt-200") for d in (out, reference))
  assert sorted(resumed) == sorted(uninterrupted)
  for name, value in uninterrupted.items():
    np.testing.assert_array_equal(resumed[name], value, err_msg=name)


@pytest.fixture(scope="module")
def records_48(tmp_path_factory):
  """Real English text as seq-48 records: a second phase at another length (the tiny config
  has 64 positions, so the test's phase 2 is shorter, where BERT's is longer)."""
  return real_pretraining_records(tmp_path_factory.mktemp("records_48"), 300, 48, 8)


PHASE2 = ("--max_seq_length=48", "--max_predictions_per_seq=8", "--num_train_steps=20",
          "--num_warmup_steps=2", "--iterations_per_loop=10", "--save_checkpoints_steps=10",
          "--do_eval=false")


@pytest.mark.slow
def test_phase2_starts_at_step_0_from_phase1_and_refuses_phase1_directory(
    records_48, float32_run, tmp_path):
  """The documented flow (tpu_configs/*phase2*): phase 1's export as --init_checkpoint and a
  fresh --output_dir: phase 2 starts at step 0 of its own schedule from phase 1's weights. The
  mistaken resume in phase 1's directory stops with the error that says so, and changes
  nothing there."""
  phase1_files = sorted(p.name for p in float32_run.iterdir())
  phase1_flags = (float32_run / "flags.json").read_text()
  for extra in ((), ("--num_train_steps=400",)):   # past the schedule / other lengths
    result = subprocess.run(train_command(records_48, float32_run, *PHASE2, *extra), cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert "--init_checkpoint=" in message and "fresh --output_dir" in message, message
    assert ("step 300" in message) if not extra else ("max_seq_length=64 there" in message)
  assert sorted(p.name for p in float32_run.iterdir()) == phase1_files
  assert (float32_run / "flags.json").read_text() == phase1_flags

  out = tmp_path / "phase2"
  result = subprocess.run(train_command(records_48, out, *PHASE2,
                                        f"--init_checkpoint={float32_run / 'export'}"),
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-4000:]
  assert "initialized from original checkpoint" in result.stderr
  losses = summaries(out, "masked_lm_loss")
  assert sorted(losses) == [10, 20]              # its own 20 steps, from step 0
  phase1_losses = summaries(float32_run, "masked_lm_loss")
  # Phase 1's weights, not a fresh start (about ln(30522) = 10.3 at step 0 from scratch).
  assert losses[10] < phase1_losses[50]
  assert json.loads((out / "flags.json").read_text())["max_seq_length"] == 48


@pytest.mark.slow
def test_two_workers_write_one_set_of_files(records, tmp_path):
  """MultiWorkerMirroredStrategy with 2 worker processes on localhost (TF_CONFIG): both train
  (2 replicas), only the chief writes checkpoints, summaries, flags, the export and the results;
  the other worker's scratch checkpoints are removed."""
  out = tmp_path / "shared_dir"
  command = train_command(records, out, "--num_train_steps=20", "--num_warmup_steps=2",
                          "--iterations_per_loop=10", "--save_checkpoints_steps=10",
                          "--max_eval_steps=2")
  workers = start_local_workers(command, timeout=900)
  for worker, output in workers:
    assert worker.returncode == 0, output[-4000:]
    assert "2 replica(s)" in output
  names = sorted(p.name for p in out.iterdir())
  assert names == ["bert_config.json", "checkpoint", "ckpt-10.data-00000-of-00001", "ckpt-10.index",
                   "ckpt-20.data-00000-of-00001", "ckpt-20.index", "eval_results.txt", "export",
                   "flags.json", "train"], names
  assert len(list((out / "train").iterdir())) == 1           # one event file
  assert sorted(p.name for p in (out / "export").iterdir()) == [
      "bert_config.json", "bert_model.ckpt.data-00000-of-00001", "bert_model.ckpt.index",
      "vocab.txt"]
  assert "global_step = 20" in (out / "eval_results.txt").read_text()
  assert not glob.glob(f"/tmp/bert_tf_worker1_{workers[1][0].pid}*")


@pytest.mark.slow
def test_cpu_replica_rehearsal_exports_the_single_device_model(records, tmp_path):
  """--num_cpu_replicas=2 (MirroredStrategy over logical CPUs) with a dropout-free config and the
  same records exports the single-device run's checkpoint (every variable, relative 1e-5)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  config = json.loads((ROOT / "tpu_configs" / "tiny_bert_config.json").read_text())
  config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
  (tmp_path / "bert_config.json").write_text(json.dumps(config))
  exports = []
  for replicas in (1, 2):
    out = tmp_path / f"r{replicas}"
    result = subprocess.run(train_command(records, out, f"--bert_config_file={tmp_path / 'bert_config.json'}",
                                          "--num_train_steps=40", "--num_warmup_steps=4",
                                          "--iterations_per_loop=20", "--save_checkpoints_steps=20",
                                          "--do_eval=false", f"--num_cpu_replicas={replicas}"),
                            cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    assert f"{replicas} replica(s)" in result.stderr
    reader = tf.train.load_checkpoint(str(out / "export" / "bert_model.ckpt"))
    exports.append({n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()})
  one, two = exports
  assert sorted(one) == sorted(two) and "bert/embeddings/word_embeddings" in one
  for name, value in one.items():
    if name.endswith("attention/self/key/bias"):   # zero gradient: rounding noise only
      assert np.abs(two[name]).max() < 1e-6 and np.abs(value).max() < 1e-6
      continue
    assert np.abs(two[name] - value).max() <= 1e-5 * np.abs(value).max(), name


@pytest.mark.slow
def test_ctrl_c_stops_training_with_a_checkpoint_and_twice_at_once(records, tmp_path):
  """One Ctrl-C: the run stops after the loop in flight, saves a checkpoint at that step, says
  how to resume (one line, exit 130, no traceback), and the same command resumes from there.
  A second Ctrl-C ends the process at once."""
  import re  # pylint: disable=import-outside-toplevel
  extra = ("--do_eval=false", "--iterations_per_loop=10", "--save_checkpoints_steps=100",
           "--num_warmup_steps=5")
  for presses in (1, 2):
    out = tmp_path / f"presses{presses}"
    process = subprocess.Popen(train_command(records, out, *extra), cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while time.time() < deadline and not glob.glob(str(out / "train" / "events.*")):
      time.sleep(0.2)   # training has started (the first loop writes its summaries)
    process.send_signal(signal.SIGINT)
    start = time.time()
    if presses == 2:
      time.sleep(1.0)   # the first press is handled at the end of a 10-step host call
      process.send_signal(signal.SIGINT)
    stderr = process.communicate(timeout=600)[1]
    seconds = time.time() - start
    if presses == 2:
      assert process.returncode == -signal.SIGINT and seconds < 5, (process.returncode, seconds)
      continue
    assert process.returncode == 130, stderr[-3000:]
    assert seconds < 60 and "Traceback" not in stderr
    message = stderr.strip().splitlines()[-1]
    assert "run the same command again to resume" in message, message
    step = int(re.search(r"stopped at step (\d+)", message).group(1))
    assert 0 < step < 300 and (out / f"ckpt-{step}.index").exists()
    result = subprocess.run(train_command(records, out, *extra, "--num_train_steps=" + str(step + 10)),
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and f"ckpt-{step} at step {step}" in result.stderr, result.stderr[-3000:]
