"""Bad input to every program: one line naming the file/line, flag or variable, the documented
exit status (2: flags, 1: input files), no traceback, no output under a final name.

The cases run through tests/program_driver.py: every program's console-script entry point
(`run()`, the shared boundary bert_tf.errors.run_program) in one child process, so TensorFlow
is imported once for the whole table. Each case lists what its message must contain (the flag,
the file and line, the field) and the outputs that must not exist afterwards.

Mutations checked while writing: run_program calling app.run(main) directly (every case fails:
tracebacks, absl's exit status 1 for flags); report_and_exit returning status 1 for FlagError
(the status-2 cases fail); dropping the NER tag-column check (ner_train_line_without_tag gets
the TypeError traceback); dropping records_of's error wrapping (the damaged-record cases print
a DataLossError traceback); check_input_files skipped in run_classifier (the bad dev/test row
cases leave checkpoints in output_dir).
"""
import json
import os
import subprocess
import sys

import pytest

from conftest import PRETRAINING_VOCAB, ROOT, TINY_CONFIG

VOCAB = PRETRAINING_VOCAB
CONFIG = dict(TINY_CONFIG, vocab_size=len(VOCAB))

CORPUS = ("hello world the quick brown fox .\nthe lazy dog jumps over the fox .\n\n"
          "un ##want ##ed run ##ning dog .\nhello world .\n\n") * 4


def _write_records(path, n=3, seq=16, predictions=3, ids=None):
  import tensorflow as tf
  with tf.io.TFRecordWriter(str(path)) as writer:
    for i in range(n):
      feature = lambda values: tf.train.Feature(int64_list=tf.train.Int64List(value=values))  # noqa: E731
      example = tf.train.Example(features=tf.train.Features(feature={
          "input_ids": feature(ids or [3] + [6 + i] * (seq - 2) + [4]),
          "input_mask": feature([1] * seq), "segment_ids": feature([0] * seq),
          "masked_lm_positions": feature([1, 2, 0][:predictions]),
          "masked_lm_ids": feature([6, 7, 0][:predictions]),
          "masked_lm_weights": tf.train.Feature(float_list=tf.train.FloatList(
              value=[1.0, 1.0, 0.0][:predictions])),
          "next_sentence_labels": feature([0])}))
      writer.write(example.SerializeToString())


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
  """Every input file the cases read; {w} in a case is this folder."""
  from conftest import make_original_checkpoint
  w = tmp_path_factory.mktemp("bad_inputs")
  (w / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
  model = w / "model"
  model.mkdir()
  (model / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
  (model / "bert_config.json").write_text(json.dumps(CONFIG))
  (w / "config_misspelled.json").write_text(json.dumps(
      {("hiden_size" if k == "hidden_size" else k): v for k, v in CONFIG.items()}))
  (w / "config_bad_json.json").write_text('{"vocab_size": 33,\n "hidden_size": }')
  (w / "config_other_vocab.json").write_text(json.dumps(dict(CONFIG, vocab_size=99)))
  (w / "config_bad_value.json").write_text(json.dumps(dict(CONFIG, num_attention_heads=5)))
  (w / "corpus.txt").write_text(CORPUS, encoding="utf-8")
  (w / "empty.txt").write_text("")
  (w / "blank.txt").write_text("\n   \n\n")
  (w / "foreign.txt").write_text("東京都庁 hello world .\n大阪城 the fox .\n\n札幌 run .\n名古屋 dog .\n")
  (w / "a_file").write_text("not a folder")
  (w / "a_folder").mkdir()
  (w / "no_mask_vocab.txt").write_text("\n".join(t for t in VOCAB if t != "[MASK]") + "\n")
  (w / "readonly").mkdir()
  os.chmod(w / "readonly", 0o555)
  # Pretraining records: good, truncated, random bytes, a folder, a later shard damaged.
  records = w / "records"
  records.mkdir()
  _write_records(records / "good.tfrecord")
  data = (records / "good.tfrecord").read_bytes()
  (records / "truncated.tfrecord").write_bytes(data[:len(data) - 17])
  (records / "garbage.tfrecord").write_bytes(os.urandom(300))
  (records / "folder.tfrecord").mkdir()
  (records / "empty.tfrecord").write_bytes(b"")
  (records / "shards").mkdir()
  _write_records(records / "shards" / "s-0")
  (records / "shards" / "s-1").write_bytes(data[:len(data) // 2])  # cut inside a record
  # Checkpoints: a good one and one whose data file is cut.
  ckpt = w / "ckpt"
  ckpt.mkdir()
  make_original_checkpoint(ckpt, CONFIG)
  broken = w / "ckpt_truncated"
  broken.mkdir()
  for name in os.listdir(ckpt):
    if name == "checkpoint":   # its state file names the good copy by absolute path
      continue
    content = (ckpt / name).read_bytes()
    (broken / name).write_bytes(content[:len(content) // 2] if ".data-" in name else content)
  # An output folder with checkpoints of a 64-wide model.
  used = w / "used_out"
  used.mkdir()
  (used / "bert_config.json").write_text(json.dumps(dict(CONFIG, hidden_size=64)))
  import tensorflow as tf
  tf.train.CheckpointManager(tf.train.Checkpoint(v=tf.Variable(tf.zeros([64]))), str(used),
                             max_to_keep=1).save()
  # Classification (generic task): a dev row with an unknown label, a test row too short.
  cls = w / "cls"
  cls.mkdir()
  (cls / "train.tsv").write_text("text_a\tlabel\nhello world\tpos\nlazy dog\tneg\n" * 3)
  (cls / "dev.tsv").write_text("text_a\tlabel\nhello world\tpos\nthe fox\tmaybe\n")
  (cls / "test.tsv").write_text("text_a\tlabel\nhello\tpos\n")
  bad_test = w / "cls_bad_test"
  bad_test.mkdir()
  (bad_test / "train.tsv").write_text((cls / "train.tsv").read_text())
  (bad_test / "test.jsonl").write_text('{"text_a": "hello"}\n{"text_a": \n')
  latin1 = w / "cls_latin1"
  latin1.mkdir()
  (latin1 / "train.tsv").write_bytes("text_a\tlabel\ncaf\u00e9\tpos\n".encode("latin-1"))
  # NER (bio task): a line without its tag; a dev tag unknown to the train file.
  ner = w / "ner"
  ner.mkdir()
  (ner / "train.txt").write_text("hello B-X\nworld I-X\n\nthe O\nfox B-Y\n")
  (ner / "dev.txt").write_text("hello B-Z\n")
  good_line = json.dumps({"text": "hello北京", "label": {"address": {"北京": [[5, 6]]}}},
                         ensure_ascii=False)
  for name, train, dev in (
      ("cluener_bad_dev", good_line, good_line + "\n" + '{"text": "hi", "label": '),
      ("cluener_list_row", good_line + "\n" + '["hello", "O"]', good_line),
      ("cluener_bad_label", '{"text": "hello", "label": {"name": ["hello"]}}', good_line)):
    (w / name).mkdir()
    (w / name / "train.json").write_text(train + "\n", encoding="utf-8")
    (w / name / "dev.json").write_text(dev + "\n", encoding="utf-8")
  (w / "ner_foreign").mkdir()
  (w / "ner_foreign" / "train.txt").write_text("東京 B-LOC\n大阪 B-LOC\nhello O\n\n札幌 B-LOC\n")
  no_tag = w / "ner_no_tag"
  no_tag.mkdir()
  (no_tag / "train.txt").write_text("hello B-X\nworld\n")
  # SQuAD: a question without "question"; an answer_start that is not a number; not JSON.
  squad = {"data": [{"paragraphs": [{"context": "hello world the quick fox", "qas": [
      {"id": "q1", "question": "who?", "answers": [{"text": "world", "answer_start": 6}]}]}]}]}
  no_question = json.loads(json.dumps(squad))
  del no_question["data"][0]["paragraphs"][0]["qas"][0]["question"]
  (w / "squad_no_question.json").write_text(json.dumps(no_question))
  bad_start = json.loads(json.dumps(squad))
  bad_start["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = "six"
  (w / "squad_bad_start.json").write_text(json.dumps(bad_start))
  unusable = json.loads(json.dumps(squad))
  unusable["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["text"] = "zebra"
  (w / "squad_unusable.json").write_text(json.dumps(unusable))
  (w / "squad_not_json.json").write_text('{"data": [\n  {"paragraphs": oops}]}')
  (w / "squad_no_data.json").write_text('{"version": "1.1"}')
  (w / "squad_good.json").write_text(json.dumps(squad))
  # extract_features inputs; multitask task lists.
  (w / "sentences.txt").write_text("hello world\nthe fox ||| the dog\n")
  (w / "two_separators.txt").write_text("hello ||| world ||| again\n")
  (w / "tasks_not_json.json").write_text("{tasks: []}")
  (w / "tasks_missing.json").write_text(json.dumps({"tasks": [{"name": "a", "kind": "classification"}]}))
  (w / "tasks_bad_dev.json").write_text(json.dumps({"tasks": [
      {"name": "sentiment", "kind": "classification", "task_name": "generic",
       "data_dir": str(w / "cls"), "labels": ["neg", "pos"]}]}))
  (w / "tasks_empty.json").write_text(json.dumps({"tasks": []}))
  yield w
  os.chmod(w / "readonly", 0o755)


M = "--model_dir={w}/model"
CLS = ["--task_name=generic", "--data_dir={w}/cls", M, "--max_seq_length=32"]
NER = ["--task_name=bio", "--data_dir={w}/ner", M]
SQUAD = [M, "--max_seq_length=32", "--max_query_length=8", "--doc_stride=8"]
PRE = ["--bert_config_file={w}/model/bert_config.json", "--max_seq_length=16",
       "--max_predictions_per_seq=3", "--do_train", "--num_train_steps=2", "--num_warmup_steps=1",
       "--train_batch_size=2", "--eval_batch_size=2", "--iterations_per_loop=1",
       "--save_checkpoints_steps=1"]
CREATE = ["--vocab_file={w}/vocab.txt", "--max_seq_length=16", "--max_predictions_per_seq=3",
          "--dupe_factor=1", "--num_workers=1"]
EXTRACT = [M, "--init_checkpoint={w}/ckpt/bert_model.ckpt", "--max_seq_length=16", "--layers=-1,-2"]

# (id, module, argv, exit status, what the message names, paths that must not exist after)
CASES = [
    # --- bert-build-vocab
    ("vocab_missing_flag", "pretraining.build_vocab", ["--output_file={w}/out/v1.txt"], 2,
     ["--input_file"], ["{w}/out/v1.txt"]),
    ("vocab_unknown_flag", "pretraining.build_vocab", ["--input_file={w}/corpus.txt",
     "--output_file={w}/out/v2.txt", "--vocab_sise=50"], 2, ["vocab_sise"], ["{w}/out/v2.txt"]),
    ("vocab_not_a_number", "pretraining.build_vocab", ["--input_file={w}/corpus.txt",
     "--output_file={w}/out/v3.txt", "--vocab_size=lots"], 2, ["--vocab_size", "lots"],
     ["{w}/out/v3.txt"]),
    ("vocab_size_too_small", "pretraining.build_vocab", ["--input_file={w}/corpus.txt",
     "--output_file={w}/out/v4.txt", "--vocab_size=10"], 2, ["vocab_size=10", "reserved"],
     ["{w}/out/v4.txt"]),
    ("vocab_empty_corpus", "pretraining.build_vocab", ["--input_file={w}/empty.txt",
     "--output_file={w}/out/v5.txt"], 1, ["empty.txt", "no words"], ["{w}/out/v5.txt"]),
    ("vocab_missing_corpus", "pretraining.build_vocab", ["--input_file={w}/nope*.txt",
     "--output_file={w}/out/v6.txt"], 1, ["nope*.txt", "no file matches"], ["{w}/out/v6.txt"]),
    ("vocab_output_in_file", "pretraining.build_vocab", ["--input_file={w}/corpus.txt",
     "--output_file={w}/a_file/v.txt"], 2, ["--output_file", "a_file", "is a file"], []),
    ("vocab_output_is_folder", "pretraining.build_vocab", ["--input_file={w}/corpus.txt",
     "--output_file={w}/a_folder"], 2, ["--output_file", "a_folder", "is a folder"], []),
    ("vocab_output_unwritable", "pretraining.build_vocab", ["--input_file={w}/corpus.txt",
     "--output_file={w}/readonly/v.txt"], 2, ["readonly", "not writable"],
     ["{w}/readonly/v.txt"]),
    # --- bert-create-pretraining-data
    ("create_missing_vocab_flag", "pretraining.create_pretraining_data",
     ["--input_file={w}/corpus.txt", "--output_file={w}/out/c1.tfrecord"], 2, ["--vocab_file"],
     ["{w}/out/c1.tfrecord"]),
    ("create_predictions_too_many", "pretraining.create_pretraining_data",
     [*CREATE, "--input_file={w}/corpus.txt", "--output_file={w}/out/c2.tfrecord",
      "--max_predictions_per_seq=20"], 2, ["--max_predictions_per_seq=20", "at most 13"],
     ["{w}/out/c2.tfrecord"]),
    ("create_masked_lm_prob", "pretraining.create_pretraining_data",
     [*CREATE, "--input_file={w}/corpus.txt", "--output_file={w}/out/c3.tfrecord",
      "--masked_lm_prob=1.5"], 2, ["--masked_lm_prob=1.5", "(0, 1)"], ["{w}/out/c3.tfrecord"]),
    ("create_dupe_factor_zero", "pretraining.create_pretraining_data",
     [*CREATE, "--input_file={w}/corpus.txt", "--output_file={w}/out/c4.tfrecord",
      "--dupe_factor=0"], 2, ["--dupe_factor=0"], ["{w}/out/c4.tfrecord"]),
    ("create_empty_corpus", "pretraining.create_pretraining_data",
     [*CREATE, "--input_file={w}/empty.txt", "--output_file={w}/out/c5.tfrecord"], 1,
     ["empty.txt", "empty", "--allow_empty"], ["{w}/out/c5.tfrecord"]),
    ("create_blank_corpus", "pretraining.create_pretraining_data",
     [*CREATE, "--input_file={w}/blank.txt", "--output_file={w}/out/c6.tfrecord"], 1,
     ["blank.txt", "no instance", "--allow_empty"], ["{w}/out/c6.tfrecord"]),
    ("create_missing_corpus", "pretraining.create_pretraining_data",
     [*CREATE, "--input_file={w}/nope.txt", "--output_file={w}/out/c7.tfrecord"], 1,
     ["nope.txt", "no file matches"], ["{w}/out/c7.tfrecord"]),
    ("create_corpus_is_folder", "pretraining.create_pretraining_data",
     [*CREATE, "--input_file={w}/a_folder", "--output_file={w}/out/c8.tfrecord"], 1,
     ["a_folder", "is a directory"], ["{w}/out/c8.tfrecord"]),
    ("create_vocab_without_mask", "pretraining.create_pretraining_data",
     [*CREATE, "--input_file={w}/corpus.txt", "--output_file={w}/out/c9.tfrecord",
      "--vocab_file={w}/no_mask_vocab.txt"], 1, ["no_mask_vocab.txt", "[MASK]"],
     ["{w}/out/c9.tfrecord"]),
    ("create_vocab_missing", "pretraining.create_pretraining_data",
     [*CREATE, "--input_file={w}/corpus.txt", "--output_file={w}/out/c10.tfrecord",
      "--vocab_file={w}/nope_vocab.txt"], 1, ["nope_vocab.txt"], ["{w}/out/c10.tfrecord"]),
    ("create_output_in_file", "pretraining.create_pretraining_data",
     [*CREATE, "--input_file={w}/corpus.txt", "--output_file={w}/a_file/c.tfrecord"], 2,
     ["--output_file", "a_file"], []),
    ("create_bad_segmenter", "pretraining.create_pretraining_data",
     [*CREATE, "--input_file={w}/corpus.txt", "--output_file={w}/out/c11.tfrecord",
      "--chinese_segmenter=nosuch"], 2, ["chinese_segmenter", "nosuch"], ["{w}/out/c11.tfrecord"]),
    # --- bert-inspect-pretraining-data
    ("inspect_truncated", "pretraining.inspect_pretraining_data",
     ["--input_file={w}/records/truncated.tfrecord", "--vocab_file={w}/vocab.txt"], 1,
     ["truncated.tfrecord", "damaged"], []),
    ("inspect_garbage", "pretraining.inspect_pretraining_data",
     ["--input_file={w}/records/garbage.tfrecord", "--vocab_file={w}/vocab.txt"], 1,
     ["garbage.tfrecord", "damaged"], []),
    ("inspect_folder", "pretraining.inspect_pretraining_data",
     ["--input_file={w}/records/folder.tfrecord", "--vocab_file={w}/vocab.txt"], 1,
     ["folder.tfrecord", "directory"], []),
    ("inspect_later_shard", "pretraining.inspect_pretraining_data",
     ["--input_file={w}/records/shards/s-*", "--vocab_file={w}/vocab.txt"], 1,
     ["s-1", "damaged"], []),
    ("inspect_not_records", "pretraining.inspect_pretraining_data",
     ["--input_file={w}/corpus.txt", "--vocab_file={w}/vocab.txt"], 1,
     ["corpus.txt", "not a TFRecord file"], []),
    ("inspect_empty_file", "pretraining.inspect_pretraining_data",
     ["--input_file={w}/records/empty.tfrecord", "--vocab_file={w}/vocab.txt"], 1,
     ["empty.tfrecord", "no records"], []),
    ("inspect_missing_vocab", "pretraining.inspect_pretraining_data",
     ["--input_file={w}/records/good.tfrecord", "--vocab_file={w}/nope.txt"], 1, ["nope.txt"], []),
    # --- bert-run-pretraining
    ("pretrain_batch_zero", "pretraining.run_pretraining",
     [*PRE, "--input_file={w}/records/good.tfrecord", "--output_dir={w}/out/p1",
      "--train_batch_size=0"], 2, ["train_batch_size=0", "positive"], ["{w}/out/p1"]),
    ("pretrain_lengths_mismatch", "pretraining.run_pretraining",
     [*PRE, "--input_file={w}/records/good.tfrecord", "--output_dir={w}/out/p2",
      "--max_seq_length=32", "--max_predictions_per_seq=5"], 2,
     ["good.tfrecord", "max_seq_length=32"], ["{w}/out/p2/checkpoint"]),
    ("pretrain_output_is_file", "pretraining.run_pretraining",
     [*PRE, "--input_file={w}/records/good.tfrecord", "--output_dir={w}/a_file"], 2,
     ["--output_dir", "a_file", "is a file"], []),
    ("pretrain_later_shard", "pretraining.run_pretraining",
     [*PRE, "--input_file={w}/records/shards/s-*", "--output_dir={w}/out/p3"], 1,
     ["s-1", "damaged"], ["{w}/out/p3/checkpoint"]),
    ("pretrain_truncated", "pretraining.run_pretraining",
     [*PRE, "--input_file={w}/records/truncated.tfrecord", "--output_dir={w}/out/p4"], 1,
     ["truncated.tfrecord", "damaged"], ["{w}/out/p4/checkpoint"]),
    ("pretrain_records_folder", "pretraining.run_pretraining",
     [*PRE, "--input_file={w}/records/folder.tfrecord", "--output_dir={w}/out/p5"], 1,
     ["folder.tfrecord", "directory"], ["{w}/out/p5/checkpoint"]),
    ("pretrain_misspelled_config", "pretraining.run_pretraining",
     [*PRE, "--input_file={w}/records/good.tfrecord", "--output_dir={w}/out/p6",
      "--bert_config_file={w}/config_misspelled.json"], 1,
     ["config_misspelled.json", "'hidden_size'", "hiden_size"], ["{w}/out/p6/checkpoint"]),
    ("pretrain_vocab_mismatch", "pretraining.run_pretraining",
     [*PRE, "--input_file={w}/records/good.tfrecord", "--output_dir={w}/out/p7",
      "--vocab_file={w}/vocab.txt", "--bert_config_file={w}/config_other_vocab.json"], 1,
     ["config_other_vocab.json", "vocab_size=99", "vocab.txt"], ["{w}/out/p7/checkpoint"]),
    ("pretrain_output_of_another_model", "pretraining.run_pretraining",
     [*PRE, "--input_file={w}/records/good.tfrecord", "--output_dir={w}/used_out"], 2,
     ["--output_dir", "used_out", "another model configuration", "hidden_size 64 there, 32 now"],
     ["{w}/used_out/flags.json"]),
    ("pretrain_missing_records", "pretraining.run_pretraining",
     [*PRE, "--input_file={w}/records/nope*", "--output_dir={w}/out/p8"], 1,
     ["nope*", "no file matches"], ["{w}/out/p8/checkpoint"]),
    # --- bert-run-classifier
    ("cls_no_action", "finetuning.run_classifier", [*CLS, "--output_dir={w}/out/k1"], 2,
     ["--do_train"], ["{w}/out/k1/checkpoint"]),
    ("cls_batch_zero", "finetuning.run_classifier",
     [*CLS, "--output_dir={w}/out/k2", "--do_train", "--train_batch_size=0"], 2,
     ["--train_batch_size=0"], ["{w}/out/k2"]),
    ("cls_output_is_file", "finetuning.run_classifier",
     [*CLS, "--output_dir={w}/a_file", "--do_train"], 2, ["--output_dir", "a_file"], []),
    ("cls_output_unwritable", "finetuning.run_classifier",
     [*CLS, "--output_dir={w}/readonly/o", "--do_train"], 2, ["readonly"], ["{w}/readonly/o"]),
    ("cls_unknown_task", "finetuning.run_classifier",
     ["--task_name=nosuchtask", "--data_dir={w}/cls", M, "--output_dir={w}/out/k3", "--do_train",
      "--max_seq_length=32"],
     2, ["nosuchtask"], ["{w}/out/k3/checkpoint"]),
    ("cls_seq_too_long", "finetuning.run_classifier",
     [*CLS, "--output_dir={w}/out/k4", "--do_train", "--max_seq_length=500"], 2,
     ["--max_seq_length=500", "max_position_embeddings=64"], ["{w}/out/k4/checkpoint"]),
    ("cls_bad_dev_row_before_training", "finetuning.run_classifier",
     [*CLS, "--output_dir={w}/out/k5", "--do_train", "--do_eval", "--labels=neg,pos"], 1,
     ["cls/dev.tsv:3", "maybe"], ["{w}/out/k5/checkpoint", "{w}/out/k5/export"]),
    ("cls_bad_test_row_before_training", "finetuning.run_classifier",
     ["--task_name=generic", "--data_dir={w}/cls_bad_test", M, "--max_seq_length=32", "--output_dir={w}/out/k6",
      "--do_train", "--do_predict"], 1, ["test.jsonl:2", "JSON"],
     ["{w}/out/k6/checkpoint", "{w}/out/k6/export"]),
    ("cls_missing_dev_file", "finetuning.run_classifier",
     ["--task_name=generic", "--data_dir={w}/cls_bad_test", M, "--max_seq_length=32", "--output_dir={w}/out/k7",
      "--do_train", "--do_eval"], 1, ["no dev file", "cls_bad_test"], ["{w}/out/k7/checkpoint"]),
    ("cls_not_utf8", "finetuning.run_classifier",
     ["--task_name=generic", "--data_dir={w}/cls_latin1", M, "--max_seq_length=32", "--output_dir={w}/out/k8",
      "--do_train"], 1, ["train.tsv:2", "UTF-8"], ["{w}/out/k8/checkpoint"]),
    ("cls_config_bad_json", "finetuning.run_classifier",
     [*CLS, "--output_dir={w}/out/k9", "--do_train", "--bert_config_file={w}/config_bad_json.json",
      "--vocab_file={w}/vocab.txt"], 1, ["config_bad_json.json", "line 2"],
     ["{w}/out/k9/checkpoint"]),
    ("cls_config_bad_value", "finetuning.run_classifier",
     [*CLS, "--output_dir={w}/out/k10", "--do_train", "--bert_config_file={w}/config_bad_value.json",
      "--vocab_file={w}/vocab.txt"], 1, ["config_bad_value.json", "hidden_size",
                                         "num_attention_heads"], ["{w}/out/k10/checkpoint"]),
    ("cls_config_missing", "finetuning.run_classifier",
     [*CLS, "--output_dir={w}/out/k11", "--do_train", "--bert_config_file={w}/nope.json",
      "--vocab_file={w}/vocab.txt"], 1, ["nope.json"], ["{w}/out/k11/checkpoint"]),
    ("cls_vocab_mismatch", "finetuning.run_classifier",
     [*CLS, "--output_dir={w}/out/k12", "--do_train",
      "--bert_config_file={w}/config_other_vocab.json", "--vocab_file={w}/vocab.txt"], 1,
     ["vocab_size=99", "vocab.txt"], ["{w}/out/k12/checkpoint"]),
    ("cls_truncated_checkpoint", "finetuning.run_classifier",
     [*CLS, "--output_dir={w}/out/k13", "--do_train", "--train_batch_size=4",
      "--init_checkpoint={w}/ckpt_truncated/bert_model.ckpt"], 1,
     ["ckpt_truncated", "truncated or damaged"], ["{w}/out/k13/checkpoint", "{w}/out/k13/export"]),
    ("cls_output_of_another_model", "finetuning.run_classifier",
     [*CLS, "--output_dir={w}/used_out", "--do_train"], 2,
     ["--output_dir", "used_out", "another model configuration", "hidden_size 64 there, 32 now"],
     ["{w}/used_out/flags.json"]),
    # --- bert-run-ner
    ("ner_no_action", "finetuning.run_ner", [*NER, "--output_dir={w}/out/n1"], 2, ["--do_train"], []),
    ("ner_unknown_task", "finetuning.run_ner",
     ["--task_name=nosuch", "--data_dir={w}/ner", M, "--output_dir={w}/out/n2", "--do_train"], 2,
     ["nosuch", "conll2003"], ["{w}/out/n2/checkpoint"]),
    ("ner_train_line_without_tag", "finetuning.run_ner",
     ["--task_name=bio", "--data_dir={w}/ner_no_tag", M, "--output_dir={w}/out/n3", "--do_train"],
     1, ["ner_no_tag/train.txt:2", "no tag column"], ["{w}/out/n3/checkpoint"]),
    ("ner_unknown_dev_tag_before_training", "finetuning.run_ner",
     [*NER, "--output_dir={w}/out/n4", "--do_train", "--do_eval"], 1, ["dev.txt", "B-Z"],
     ["{w}/out/n4/checkpoint", "{w}/out/n4/export"]),
    ("ner_cluener_broken_dev_line_before_training", "finetuning.run_ner",
     ["--task_name=cluener", "--data_dir={w}/cluener_bad_dev", M, "--output_dir={w}/out/n7",
      "--do_train", "--do_eval"], 1, ["cluener_bad_dev/dev.json:2", "JSON"],
     ["{w}/out/n7/checkpoint", "{w}/out/n7/export"]),
    ("ner_cluener_row_not_object", "finetuning.run_ner",
     ["--task_name=cluener", "--data_dir={w}/cluener_list_row", M, "--output_dir={w}/out/n8",
      "--do_train"], 1, ["cluener_list_row/train.json:2", "JSON object", "list"],
     ["{w}/out/n8/checkpoint"]),
    ("ner_cluener_bad_label", "finetuning.run_ner",
     ["--task_name=cluener", "--data_dir={w}/cluener_bad_label", M, "--output_dir={w}/out/n9",
      "--do_train"], 1, ["cluener_bad_label/train.json:1", "'label'"], ["{w}/out/n9/checkpoint"]),
    ("ner_missing_test_file", "finetuning.run_ner",
     [*NER, "--output_dir={w}/out/n5", "--do_train", "--do_predict"], 1, ["no test file"],
     ["{w}/out/n5/checkpoint", "{w}/out/n5/export"]),
    ("ner_batch_zero", "finetuning.run_ner",
     [*NER, "--output_dir={w}/out/n6", "--do_train", "--eval_batch_size=0"], 2,
     ["--eval_batch_size=0"], ["{w}/out/n6"]),
    # --- bert-run-squad
    ("squad_no_action", "finetuning.run_squad", [*SQUAD, "--output_dir={w}/out/s1"], 2,
     ["--do_train", "--do_predict"], []),
    ("squad_train_without_file", "finetuning.run_squad",
     [*SQUAD, "--output_dir={w}/out/s2", "--do_train"], 2, ["--train_file"], []),
    ("squad_missing_question", "finetuning.run_squad",
     [*SQUAD, "--output_dir={w}/out/s3", "--do_train", "--train_file={w}/squad_no_question.json"],
     1, ["squad_no_question.json", "q1", "'question'"], ["{w}/out/s3/checkpoint",
                                                          "{w}/out/s3/train.tf_record"]),
    ("squad_answer_start_not_number", "finetuning.run_squad",
     [*SQUAD, "--output_dir={w}/out/s4", "--do_train", "--train_file={w}/squad_bad_start.json"],
     1, ["squad_bad_start.json", "q1", "answer_start", "six"], ["{w}/out/s4/train.tf_record"]),
    ("squad_not_json", "finetuning.run_squad",
     [*SQUAD, "--output_dir={w}/out/s5", "--do_predict", "--predict_file={w}/squad_not_json.json",
      "--init_checkpoint={w}/ckpt/bert_model.ckpt"], 1, ["squad_not_json.json:2", "JSON"],
     ["{w}/out/s5/predictions.json"]),
    ("squad_no_data", "finetuning.run_squad",
     [*SQUAD, "--output_dir={w}/out/s6", "--do_train", "--train_file={w}/squad_no_data.json"], 1,
     ["squad_no_data.json", "'data'"], ["{w}/out/s6/train.tf_record"]),
    ("squad_no_usable_answer", "finetuning.run_squad",
     [*SQUAD, "--output_dir={w}/out/s8", "--do_train", "--train_file={w}/squad_unusable.json"], 1,
     ["squad_unusable.json", "no usable training question", "q1"],
     ["{w}/out/s8/train.tf_record", "{w}/out/s8/checkpoint"]),
    ("squad_bad_predict_file_before_training", "finetuning.run_squad",
     [*SQUAD, "--output_dir={w}/out/s9", "--do_train", "--train_file={w}/squad_no_data.json",
      "--do_predict", "--predict_file={w}/squad_no_question.json"], 1,
     ["squad_no_question.json", "'question'"], ["{w}/out/s9/train.tf_record"]),
    ("squad_query_too_long", "finetuning.run_squad",
     [*SQUAD, "--output_dir={w}/out/s7", "--do_train", "--train_file={w}/x.json",
      "--max_query_length=40"], 2, ["--max_seq_length=32", "--max_query_length=40"], []),
    # --- bert-extract-features
    ("extract_missing_input", "finetuning.extract_features",
     [*EXTRACT, "--input_file={w}/nope.txt", "--output_file={w}/out/e1.jsonl"], 1, ["nope.txt"],
     ["{w}/out/e1.jsonl"]),
    ("extract_two_separators", "finetuning.extract_features",
     [*EXTRACT, "--input_file={w}/two_separators.txt", "--output_file={w}/out/e2.jsonl"], 1,
     ["two_separators.txt:1", "|||"], ["{w}/out/e2.jsonl"]),
    ("extract_empty_input", "finetuning.extract_features",
     [*EXTRACT, "--input_file={w}/empty.txt", "--output_file={w}/out/e3.jsonl"], 1,
     ["empty.txt", "no input lines"], ["{w}/out/e3.jsonl"]),
    ("extract_bad_layers", "finetuning.extract_features",
     [*EXTRACT, "--input_file={w}/sentences.txt", "--output_file={w}/out/e4.jsonl",
      "--layers=-1,top"], 2, ["--layers=-1,top"], ["{w}/out/e4.jsonl"]),
    ("extract_layer_out_of_range", "finetuning.extract_features",
     [*EXTRACT, "--input_file={w}/sentences.txt", "--output_file={w}/out/e5.jsonl",
      "--layers=7"], 2, ["--layers=7", "2 layers"], ["{w}/out/e5.jsonl"]),
    ("extract_truncated_checkpoint", "finetuning.extract_features",
     [M, "--init_checkpoint={w}/ckpt_truncated/bert_model.ckpt", "--max_seq_length=16", "--layers=-1",
      "--input_file={w}/sentences.txt", "--output_file={w}/out/e6.jsonl"], 1,
     ["ckpt_truncated", "truncated or damaged"], ["{w}/out/e6.jsonl"]),
    ("extract_output_folder_is_file", "finetuning.extract_features",
     [*EXTRACT, "--input_file={w}/sentences.txt", "--output_file={w}/a_file/e.jsonl"], 2,
     ["--output_file", "a_file"], []),
    ("extract_missing_checkpoint", "finetuning.extract_features",
     [M, "--init_checkpoint={w}/nockpt/bert_model.ckpt", "--layers=-1", "--input_file={w}/sentences.txt",
      "--output_file={w}/out/e7.jsonl"], 1, ["nockpt"], ["{w}/out/e7.jsonl"]),
    # --- bert-run-multitask
    ("multitask_no_action", "finetuning.run_multitask",
     ["--task_list={w}/tasks_missing.json", M, "--output_dir={w}/out/m1"], 2, ["--do_train"], []),
    ("multitask_not_json", "finetuning.run_multitask",
     ["--task_list={w}/tasks_not_json.json", M, "--output_dir={w}/out/m2", "--do_train"], 1,
     ["tasks_not_json.json:1", "JSON"], ["{w}/out/m2/checkpoint"]),
    ("multitask_task_incomplete", "finetuning.run_multitask",
     ["--task_list={w}/tasks_missing.json", M, "--output_dir={w}/out/m3", "--do_train"], 1,
     ["tasks_missing.json task 0", "task_name", "data_dir"], ["{w}/out/m3/checkpoint"]),
    ("multitask_no_tasks", "finetuning.run_multitask",
     ["--task_list={w}/tasks_empty.json", M, "--output_dir={w}/out/m4", "--do_train"], 1,
     ["tasks_empty.json", "no tasks"], ["{w}/out/m4/checkpoint"]),
    ("multitask_bad_dev_row_before_training", "finetuning.run_multitask",
     ["--task_list={w}/tasks_bad_dev.json", M, "--output_dir={w}/out/m5", "--do_train",
      "--do_eval", "--max_seq_length=32"], 1, ["cls/dev.tsv:3", "maybe"],
     ["{w}/out/m5/checkpoint", "{w}/out/m5/export"]),
    # --- bert-slim-checkpoint
    ("slim_missing_flag", "pretraining.slim_checkpoint", ["--input_checkpoint={w}/ckpt"], 2,
     ["--output_checkpoint"], []),
    ("slim_missing_checkpoint", "pretraining.slim_checkpoint",
     ["--input_checkpoint={w}/nockpt/model.ckpt", "--output_checkpoint={w}/out/slim1/m.ckpt"], 1,
     ["nockpt/model.ckpt"], ["{w}/out/slim1/m.ckpt.index"]),
    ("slim_truncated_checkpoint", "pretraining.slim_checkpoint",
     ["--input_checkpoint={w}/ckpt_truncated", "--output_checkpoint={w}/out/slim2/m.ckpt"], 1,
     ["ckpt_truncated", "truncated or damaged"], ["{w}/out/slim2/m.ckpt.index"]),
    ("slim_output_in_file", "pretraining.slim_checkpoint",
     ["--input_checkpoint={w}/ckpt", "--output_checkpoint={w}/a_file/m.ckpt"], 2,
     ["--output_checkpoint", "a_file"], []),
    # --- bert-evaluate-squad
    ("evaluate_squad_one_argument", "finetuning.evaluate_squad", ["{w}/squad_good.json"], 2,
     ["DATASET_FILE PREDICTION_FILE"], []),
    ("evaluate_squad_missing_predictions", "finetuning.evaluate_squad",
     ["{w}/squad_good.json", "{w}/no_predictions.json"], 1, ["no_predictions.json", "cannot read"],
     []),
    # --- bert-convert
    ("convert_missing_flag", "pretraining.convert_checkpoint",
     ["--input_dir={w}/model", "--output_dir={w}/out/conv1"], 2, ["--output_format"], []),
    ("convert_no_checkpoint", "pretraining.convert_checkpoint",
     ["--input_dir={w}/model", "--output_dir={w}/out/conv2", "--output_format=huggingface"], 1,
     ["{w}/model", "without bert_model.ckpt.index"], ["{w}/out/conv2/config.json"]),
    ("convert_not_a_model_folder", "pretraining.convert_checkpoint",
     ["--input_dir={w}/ckpt", "--output_dir={w}/out/conv3", "--output_format=original"], 1,
     ["{w}/ckpt", "neither an original BERT folder"], ["{w}/out/conv3/bert_config.json"]),
]
# Runs that succeed but must warn: (id, module, argv, what stderr must contain).
WARNING_CASES = [
    ("create_many_unknown_tokens", "pretraining.create_pretraining_data",
     [*CREATE, "--input_file={w}/foreign.txt", "--output_file={w}/out/w1.tfrecord"],
     ["% of the tokens are [UNK]", "vocab.txt", "does not fit the text"]),
    ("ner_many_unknown_tokens", "finetuning.run_ner",
     ["--task_name=bio", "--data_dir={w}/ner_foreign", M, "--output_dir={w}/out/w3", "--do_train",
      "--max_seq_length=16", "--train_batch_size=2", "--num_train_epochs=1"],
     ["ner_foreign/train.txt: ", "% of the tokens are [UNK]"]),
    ("create_allow_empty", "pretraining.create_pretraining_data",
     [*CREATE, "--input_file={w}/blank.txt", "--output_file={w}/out/w2.tfrecord", "--allow_empty"],
     ["no instances were written"]),
]
# The boundary's --verbose: the same error with its traceback.
VERBOSE = ("vocab_empty_corpus_verbose", "pretraining.build_vocab",
           ["--input_file={w}/empty.txt", "--output_file={w}/out/v7.txt", "--verbose"], 1,
           ["empty.txt", "no words"], ["{w}/out/v7.txt"])


def _fill(value, w):
  return value.replace("{w}", str(w))


@pytest.fixture(scope="module")
def results(workspace, tmp_path_factory):
  """{case id: {status, stdout, stderr}} of every case, run by one driver process."""
  folder = tmp_path_factory.mktemp("driver")
  cases = [{"id": c[0], "module": c[1], "argv": [_fill(a, workspace) for a in c[2]]}
           for c in CASES + WARNING_CASES + [VERBOSE]]
  (folder / "cases.json").write_text(json.dumps(cases))
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
             TF_CPP_MIN_LOG_LEVEL="2")
  proc = subprocess.run([sys.executable, str(ROOT / "tests" / "program_driver.py"),
                         str(folder / "cases.json"), str(folder / "results.json")],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return {r["id"]: r for r in json.loads((folder / "results.json").read_text())}


def test_at_least_sixty_cases_cover_every_program():
  import re
  programs = set(re.findall(r'"bert-[\w-]+=([\w.]+):run"', (ROOT / "setup.py").read_text()))
  assert len(CASES) >= 60 and len(programs) == 12   # every console script of setup.py
  assert {c[1] for c in CASES} == programs


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, results, workspace):
  case_id, _, _, status, names, absent = case
  if "unwritable" in case_id and os.geteuid() == 0:
    pytest.skip("root writes into a read-only folder")
  result = results[case_id]
  stderr = result["stderr"]
  assert "Traceback" not in stderr, stderr[-3000:]
  error_lines = [line for line in stderr.splitlines() if ": error: " in line]
  assert len(error_lines) == 1, stderr[-3000:]
  line = error_lines[0]
  for name in names:
    assert _fill(name, workspace) in line, line
  assert result["status"] == status, (result["status"], line)
  for path in absent:
    assert not os.path.exists(_fill(path, workspace)), f"{_fill(path, workspace)} left after: {line}"


def test_verbose_shows_the_traceback(results, workspace):
  result = results[VERBOSE[0]]
  assert result["status"] == 1
  assert "Traceback" in result["stderr"] and "InputFileError" in result["stderr"]
  assert "empty.txt" in result["stderr"].splitlines()[-1]


@pytest.mark.parametrize("case", WARNING_CASES, ids=[c[0] for c in WARNING_CASES])
def test_warning_without_failure(case, results, workspace):
  result = results[case[0]]
  assert result["status"] == 0, result["stderr"][-3000:]
  for text in case[3]:
    assert _fill(text, workspace) in result["stderr"], result["stderr"][-3000:]


# --- the Python API -------------------------------------------------------------------------------

def test_unknown_share_warning_threshold(caplog):
  """Hand-checked: 6 of 100 tokens is 6% (> 5%: warned), 5 of 100 is not."""
  from bert_tf.tokenization import warn_if_many_unknown
  with caplog.at_level("WARNING"):
    assert warn_if_many_unknown(5, 100, "a.txt", "v.txt") == 0.05
    assert not caplog.records
    assert warn_if_many_unknown(6, 100, "a.txt", "v.txt") == 0.06
  assert "a.txt: 6.0% of the tokens are [UNK] with the vocabulary v.txt" in caplog.records[0].getMessage()
  assert warn_if_many_unknown(0, 0, "a.txt", "v.txt") == 0.0


@pytest.mark.parametrize("name,value,expected", [
    ("input_ids", 99, "input_ids holds 99; expected ids in [0, 99): vocab_size=99"),
    ("input_ids", -1, "input_ids holds -1; expected ids in [0, 99)"),
    ("segment_ids", 2, "segment_ids holds 2; expected ids in [0, 2): type_vocab_size=2"),
])
@pytest.mark.parametrize("as_tensor", [False, True])
def test_ids_out_of_range_are_refused(tiny_config, name, value, expected, as_tensor):
  """On GPUs an out-of-range gather returns zeros silently: the API refuses such ids at once.
  Mutation: select_inputs without check_id_ranges gives an InvalidArgumentError on CPU (not a
  UserInputError naming the field) and this test fails."""
  import numpy as np
  import tensorflow as tf
  from bert_tf import BertEncoder
  from bert_tf.errors import UserInputError
  encoder = BertEncoder(tiny_config)
  inputs = {"input_ids": np.ones((2, 5), np.int32), "input_mask": np.ones((2, 5), np.int32),
            "segment_ids": np.zeros((2, 5), np.int32)}
  inputs[name][1, 3] = value
  if as_tensor:
    inputs = {k: tf.constant(v) for k, v in inputs.items()}
  with pytest.raises(UserInputError) as error:
    encoder(inputs)
  assert expected in str(error.value)


def test_ids_out_of_range_in_a_traced_call(tiny_config):
  import numpy as np
  import tensorflow as tf
  from bert_tf import BertEncoder
  encoder = BertEncoder(tiny_config)
  inputs = {"input_ids": np.full((2, 5), 120, np.int32), "input_mask": np.ones((2, 5), np.int32),
            "segment_ids": np.zeros((2, 5), np.int32)}
  with pytest.raises(tf.errors.InvalidArgumentError, match="input_ids must be < vocab_size=99"):
    tf.function(lambda x: encoder(x, training=False))(inputs)


def test_from_pretrained_without_vocab_says_so(tmp_path, caplog):
  from bert_tf import BertEncoder
  from conftest import make_original_checkpoint
  make_original_checkpoint(tmp_path, TINY_CONFIG, with_heads=False, with_optimizer=False)
  (tmp_path / "bert_config.json").write_text(json.dumps(TINY_CONFIG))
  with caplog.at_level("WARNING"):
    BertEncoder.from_pretrained(tmp_path)
  assert any("has no vocab.txt: the vocabulary was not checked" in r.getMessage()
             for r in caplog.records)


def test_build_vocab_output_is_readable_by_others(tmp_path):
  from pretraining.vocabulary import build_vocab_file
  (tmp_path / "c.txt").write_text(CORPUS)
  old = os.umask(0o022)
  try:
    build_vocab_file([str(tmp_path / "c.txt")], str(tmp_path / "vocab.txt"), 120, min_count=1,
                     num_unused=3)
  finally:
    os.umask(old)
  assert (tmp_path / "vocab.txt").stat().st_mode & 0o777 == 0o644
  assert sorted(p.name for p in tmp_path.iterdir()) == ["c.txt", "vocab.txt"]


def test_truncated_checkpoint_in_the_api(tmp_path, tiny_config):
  from bert_tf import BertEncoder, load_original_checkpoint
  from bert_tf.errors import InputFileError
  from conftest import make_original_checkpoint
  prefix, _ = make_original_checkpoint(tmp_path, TINY_CONFIG, with_heads=False)
  data = [p for p in tmp_path.iterdir() if ".data-" in p.name][0]
  data.write_bytes(data.read_bytes()[:1000])
  with pytest.raises(InputFileError, match="bert_model.ckpt: variable .* cannot be read: a data "
                                           "file of the checkpoint is truncated"):
    load_original_checkpoint(BertEncoder(tiny_config), prefix)


def test_python_dash_m_and_absl_verbosity(tmp_path):
  """The same boundary for `python -m program` (a real interpreter exit): a flag error exits 2
  with one line; absl's `-v 1` prints the traceback of an input error as --verbose does."""
  env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")

  def run(*args):
    return subprocess.run([sys.executable, "-m", "pretraining.build_vocab", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
  flag_error = run(f"--input_file={tmp_path}/c.txt", f"--output_file={tmp_path}/v.txt",
                   "--min_count=two")
  assert flag_error.returncode == 2 and "Traceback" not in flag_error.stderr
  assert flag_error.stderr.strip().splitlines()[-1].startswith(
      "build_vocab: error: flag --min_count=two:"), flag_error.stderr
  (tmp_path / "c.txt").write_text("")
  verbose = run(f"--input_file={tmp_path}/c.txt", f"--output_file={tmp_path}/v.txt", "-v", "1")
  assert verbose.returncode == 1 and "Traceback" in verbose.stderr
  assert "no words to learn a vocabulary from" in verbose.stderr.strip().splitlines()[-1]
  assert not (tmp_path / "v.txt").exists()
