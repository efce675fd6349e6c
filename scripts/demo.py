"""The main job on bundled data, end to end:  bash scripts/demo.sh  (or python -m scripts.demo)

  1. generate the demo corpus and a small sentiment task from this project's templates
     (scripts/demo_data.py; nothing is downloaded)
  2. learn a WordPiece vocabulary from the corpus (bert-build-vocab's library)
  3. write whole-word-masked pretraining records (bert-create-pretraining-data)
  4. pretrain a tiny BERT (bert-run-pretraining, LAMB) and export it as an original checkpoint
  5. fine-tune it on the sentiment task (bert-run-classifier), and the same model from scratch
     for comparison, and print the accuracies against the majority class
Each program runs as a user would run it; its command line is printed first. On a 2-core CPU
the default size takes about 4 minutes (--small: under 2). --gpu=N or --tpu=NAME runs the same
pipeline on that hardware with the recipes' settings (a TPU needs --output_dir on gs://).
"""
import argparse
import json
import os
import pathlib
import shlex
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEMO_CONFIG = ROOT / "data" / "demo" / "bert_config.json"
SIZES = {  # corpus documents, pretraining steps, sentiment training examples, fine-tuning epochs
    "default": dict(documents=4000, steps=1200, reviews=2000, epochs=6),
    "small": dict(documents=600, steps=150, reviews=1000, epochs=6),
}
# Fine-tuning learning rate. The tiny model's fine-tuning is seed-sensitive at higher rates:
# at 5e-4 on 400 reviews, one demo checkpoint reached 0.47-0.91 dev accuracy over seeds; at
# 1e-4 on 2,000 reviews for 6 epochs, 0.84-0.87 over three seeds.
FINETUNE_LEARNING_RATE = 1e-4


def step(title):
  print(f"\n== {title}", flush=True)


def run(module, *args, env=None):
  command = [sys.executable, "-m", module, *args]
  print("$ " + " ".join(shlex.quote(c) for c in ["python", "-m", module, *args]), flush=True)
  started = time.perf_counter()
  result = subprocess.run(command, cwd=ROOT, env=env)
  if result.returncode:
    raise SystemExit(f"{module} failed (exit {result.returncode}); see its messages above")
  print(f"   ({time.perf_counter() - started:.0f} s)", flush=True)


def hardware_flags(args):
  if args.tpu:
    return ["--use_tpu", f"--tpu_name={args.tpu}", "--precision=mixed_bfloat16"]
  if args.gpu:
    return [f"--num_gpus={args.gpu}", "--precision=mixed_float16"]
  return []


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--output_dir", default=str(ROOT / "runs" / "demo"))
  parser.add_argument("--small", action="store_true", help="a smaller run (about 2 minutes)")
  parser.add_argument("--gpu", type=int, default=0, help="GPUs to train on")
  parser.add_argument("--tpu", default=None, help="Cloud TPU name (needs a gs:// --output_dir)")
  parser.add_argument("--skip_baseline", action="store_true",
                      help="do not fine-tune the from-scratch model for comparison")
  args = parser.parse_args(argv)
  size = SIZES["small" if args.small else "default"]
  if args.tpu and not args.output_dir.startswith("gs://"):
    raise SystemExit("--tpu needs --output_dir on gs:// (a TPU reads only from Cloud Storage)")
  # Data and vocabulary are made on this machine; with a TPU they are copied to the bucket.
  local = pathlib.Path(args.output_dir if not args.tpu else ROOT / "runs" / "demo_local")
  out = args.output_dir.rstrip("/")
  local.mkdir(parents=True, exist_ok=True)
  (local / "summary.json").unlink(missing_ok=True)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
  started = time.perf_counter()
  hardware = hardware_flags(args)

  step("1. Demo data from the project's templates")
  from bert_tf.training import read_results_file  # pylint: disable=import-outside-toplevel
  from scripts import demo_data  # pylint: disable=import-outside-toplevel
  corpus = demo_data.write_corpus(str(local / "data" / "corpus.txt"), size["documents"])
  reviews = demo_data.write_reviews(str(local / "data" / "reviews"), train=size["reviews"])
  lines = sum(1 for line in open(corpus, encoding="utf-8") if line.strip())
  print(f"corpus: {size['documents']} documents, {lines} sentences, "
        f"{os.path.getsize(corpus) / 1e6:.1f} MB -> {corpus}")
  print(f"sentiment task: train/dev/test.tsv (text, label) -> {reviews}")

  step("2. WordPiece vocabulary")
  from bert_tf import BertConfig, FastTokenizer, FullTokenizer  # pylint: disable=import-outside-toplevel
  from pretraining.vocabulary import build_vocab_file  # pylint: disable=import-outside-toplevel
  vocab_file = local / "vocab.txt"
  vocab = build_vocab_file([corpus], str(vocab_file), vocab_size=2000, do_lower_case=True,
                           num_unused=99, min_count=2)
  full, fast = FullTokenizer(vocab_file), FastTokenizer(vocab_file)
  sample = "Nadia thought the dumplings at the river bistro were not delicious . 小红觉得饺子好吃。"
  assert fast.encode_batch([sample])[0] == full.encode(sample)
  print(f"{len(vocab)} tokens -> {vocab_file}\n{sample!r}\n  {full.tokenize(sample)}")
  config = BertConfig.from_json_file(DEMO_CONFIG).to_dict()
  config["vocab_size"] = len(vocab)
  model_dir = local / "scratch_model"          # the untrained model: config + vocabulary
  model_dir.mkdir(exist_ok=True)
  (model_dir / "bert_config.json").write_text(json.dumps(config, indent=2))
  (model_dir / "vocab.txt").write_bytes(vocab_file.read_bytes())
  print(f"model: L={config['num_hidden_layers']} H={config['hidden_size']} "
        f"A={config['num_attention_heads']} -> {model_dir / 'bert_config.json'}")

  step("3. Pretraining records (whole word masking, masked LM + next sentence)")
  records = local / "pretraining" / "records.tfrecord"
  run("pretraining.create_pretraining_data", f"--input_file={corpus}",
      f"--output_file={records}", f"--vocab_file={vocab_file}", "--do_lower_case",
      "--do_whole_word_mask", "--max_seq_length=64", "--max_predictions_per_seq=10",
      "--dupe_factor=3", "--num_shards=4", env=env)
  if args.tpu:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    for path in local.rglob("*"):
      if path.is_file():
        tf.io.gfile.makedirs(os.path.dirname(f"{out}/{path.relative_to(local)}"))
        tf.io.gfile.copy(str(path), f"{out}/{path.relative_to(local)}", overwrite=True)
  remote = (lambda p: f"{out}/{pathlib.Path(p).relative_to(local)}") if args.tpu else str

  step("4. Pretraining (LAMB) and export as an original checkpoint")
  pretrain_dir = f"{out}/pretrain"
  run("pretraining.run_pretraining", f"--bert_config_file={remote(model_dir / 'bert_config.json')}",
      f"--vocab_file={remote(vocab_file)}", f"--input_file={remote(records)}*",
      f"--output_dir={pretrain_dir}", "--do_train", "--do_eval", "--optimizer=lamb",
      "--learning_rate=2e-3", "--train_batch_size=64", "--eval_batch_size=64",
      "--max_seq_length=64", "--max_predictions_per_seq=10", f"--num_train_steps={size['steps']}",
      f"--num_warmup_steps={size['steps'] // 10}", "--iterations_per_loop=50",
      f"--save_checkpoints_steps={size['steps']}", "--max_eval_steps=20",
      *hardware, env=env)
  pretrain = read_results_file(f"{pretrain_dir}/eval_results.txt")
  print(f"masked LM accuracy {pretrain['masked_lm_accuracy']:.3f} (loss "
        f"{pretrain['masked_lm_loss']:.3f}), next sentence accuracy "
        f"{pretrain['next_sentence_accuracy']:.3f} -> {pretrain_dir}/export")

  step("5. Fine-tuning on the sentiment task")
  results = {}
  starts = [("pretrained", f"{pretrain_dir}/export")]
  if not args.skip_baseline:
    starts.append(("from scratch", remote(model_dir)))
  for label, start in starts:
    classifier_dir = f"{out}/classifier_{label.replace(' ', '_')}"
    run("finetuning.run_classifier", "--task_name=generic", f"--data_dir={remote(reviews)}",
        "--text_a_column=text", "--label_column=label", f"--model_dir={start}",
        f"--output_dir={classifier_dir}", "--do_train", "--do_eval", "--do_predict",
        "--max_seq_length=32", "--train_batch_size=16", "--eval_batch_size=64",
        "--predict_batch_size=64", f"--learning_rate={FINETUNE_LEARNING_RATE}",
        f"--num_train_epochs={size['epochs']}",
        "--iterations_per_loop=25", "--save_checkpoints_steps=100", *hardware, env=env)
    results[label] = read_results_file(f"{classifier_dir}/eval_results.txt")
  labels = [line.rstrip("\n").split("\t")[1] for line in
            open(os.path.join(reviews, "dev.tsv"), encoding="utf-8")][1:]
  majority = max(labels.count(v) for v in set(labels)) / len(labels)

  step("Summary")
  print(f"pretraining: masked LM accuracy {pretrain['masked_lm_accuracy']:.3f}, next sentence "
        f"accuracy {pretrain['next_sentence_accuracy']:.3f}")
  for label, result in results.items():
    print(f"sentiment dev accuracy, {label:12s}: {result['eval_accuracy']:.3f} "
          f"(majority class {majority:.3f})")
  print("artefacts:")
  for name, path in [("data", local / "data"), ("vocabulary", vocab_file),
                     ("pretraining records", f"{records}-*"),
                     ("pretraining run (checkpoints, TensorBoard in train/)", pretrain_dir),
                     ("pretrained model, original format", f"{pretrain_dir}/export"),
                     ("classifier run, eval_results.txt, test_results.tsv",
                      f"{out}/classifier_pretrained"),
                     ("raw-text SavedModel", f"{out}/classifier_pretrained/saved_model")]:
    print(f"  {name:55s} {path}")
  seconds = time.perf_counter() - started
  print(f"\ndone in {seconds:.0f} s")
  # For benchmarks/run_all.py's report (written last: its presence means the run completed).
  summary = {"size": "small" if args.small else "default", "seconds": round(seconds, 1),
             "masked_lm_accuracy": pretrain["masked_lm_accuracy"],
             "next_sentence_accuracy": pretrain["next_sentence_accuracy"],
             "majority_baseline": majority,
             "dev_accuracy": {label: r["eval_accuracy"] for label, r in results.items()}}
  (local / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
  return results, majority


if __name__ == "__main__":
  main()
