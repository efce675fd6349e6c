"""Feature conversion against tf-models-official's copy of the original run_classifier
conversion (classifier_data_lib.convert_single_example with its own Python tokenizer) on real
dev files; the truncation rule against the original loop; the cache. (tf-models' GLUE readers
now load through TFDS, which needs the network, so both sides read the rows with our readers;
the readers are checked against the raw columns in test_classification_tasks.py.)"""
import numpy as np
import pytest
import tensorflow as tf

from conftest import shared_path
from finetuning import classifier_features as cf
from finetuning.tasks.classification import get_task

# (task, folder, vocab, rows compared)
CASES = [
    ("mrpc", "glue/MRPC", "uncased", None),
    ("sst-2", "glue/SST-2", "uncased", None),
    ("cola", "glue/CoLA", "uncased", None),
    ("sts-b", "glue/STS-B", "uncased", None),
    ("rte", "glue/RTE", "uncased", None),
    ("chnsenticorp", "chnsenticorp", "chinese", None),
    ("lcqmc", "lcqmc", "chinese", 3000),
    ("xnli", "xnli_zh", "chinese", None),
]


def _reference_features(task, data_dir, vocab, max_seq_length, limit):
  from official.nlp.data import classifier_data_lib as lib
  from official.nlp.tools import tokenization
  tokenizer = tokenization.FullTokenizer(str(vocab), do_lower_case=True)
  tokenizer.wordpiece_tokenizer.max_input_chars_per_word = 200   # the original's limit
  examples = [lib.InputExample(e.guid, e.text_a, e.text_b, e.label)
              for e in task.read_examples(str(data_dir), "dev")][:limit]
  labels = None if task.is_regression else list(task.labels)
  features = [lib.convert_single_example(i, e, labels, max_seq_length, tokenizer)
              for i, e in enumerate(examples)]
  return ({name: np.array([getattr(f, name) for f in features])
           for name in ("input_ids", "input_mask", "segment_ids")},
          np.array([f.label_id for f in features]))


@pytest.mark.slow
@pytest.mark.parametrize("name,folder,vocab,limit", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("max_seq_length", [24, 128])
def test_features_equal_the_original_conversion(name, folder, vocab, limit, max_seq_length):
  from bert_tf import FastTokenizer
  data_dir = shared_path(folder)
  vocab_file = shared_path(f"vocab/{vocab}_vocab.txt")
  task = get_task(name)
  reference, reference_labels = _reference_features(
      task, data_dir, vocab_file, max_seq_length, limit)
  examples = task.read_examples(str(data_dir), "dev")[:limit]
  ours = cf.convert_examples(task, examples, FastTokenizer(str(vocab_file)), max_seq_length)
  for key in reference:
    np.testing.assert_array_equal(ours[key], reference[key], err_msg=key)
  if task.is_regression:
    np.testing.assert_allclose(ours["label_ids"], reference_labels)
  else:
    np.testing.assert_array_equal(ours["label_ids"], reference_labels)
  # Some examples were truncated at 24, so the rule was exercised on real data.
  if max_seq_length == 24:
    assert (ours["input_mask"].sum(1) == max_seq_length).any()


def _original_truncation(len_a, len_b, max_length):
  tokens_a, tokens_b = list(range(len_a)), list(range(len_b))
  while len(tokens_a) + len(tokens_b) > max_length:   # _truncate_seq_pair, verbatim logic
    if len(tokens_a) > len(tokens_b):
      tokens_a.pop()
    else:
      tokens_b.pop()
  return len(tokens_a), len(tokens_b)


def test_truncation_closed_form_equals_the_original_loop():
  rng = np.random.default_rng(0)
  len_a, len_b = rng.integers(0, 300, 5000), rng.integers(0, 300, 5000)
  max_length = rng.integers(1, 260, 5000)
  new_a, new_b = cf.truncated_lengths(tf.constant(len_a), tf.constant(len_b),
                                      tf.constant(max_length))
  expected = np.array([_original_truncation(*args) for args in zip(len_a, len_b, max_length)])
  np.testing.assert_array_equal(np.stack([new_a.numpy(), new_b.numpy()], 1), expected)


def test_pack_inputs_layout_by_hand():
  ids_a = tf.ragged.constant([[10, 11, 12, 13], [20]])
  ids_b = tf.ragged.constant([[30, 31], [40, 41, 42, 43, 44]])
  packed = {k: v.numpy().tolist() for k, v in cf.pack_inputs(ids_a, ids_b, 8, 1, 2).items()}
  assert packed["input_ids"] == [[1, 10, 11, 12, 2, 30, 31, 2], [1, 20, 2, 40, 41, 42, 43, 2]]
  assert packed["segment_ids"] == [[0, 0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1, 1]]
  assert packed["input_mask"] == [[1] * 8, [1] * 8]
  single = cf.pack_inputs(tf.ragged.constant([[5, 6, 7, 8, 9, 10, 11], [5]]), None, 6, 1, 2)
  assert single["input_ids"].numpy().tolist() == [[1, 5, 6, 7, 8, 2], [1, 5, 2, 0, 0, 0]]
  assert single["input_mask"].numpy().tolist() == [[1] * 6, [1, 1, 1, 0, 0, 0]]


def test_cache_is_reused_and_keyed_by_settings(tmp_path, small_vocab, monkeypatch):
  from bert_tf import FastTokenizer
  (tmp_path / "data").mkdir()
  (tmp_path / "data" / "train.tsv").write_text("label\ttext_a\n1\twant\n0\tunwanted running\n",
                                               encoding="utf-8")
  task, tokenizer = get_task("chnsenticorp"), FastTokenizer(str(small_vocab))
  path, count = cf.cached_features(task, str(tmp_path / "data"), "train", tokenizer, 8,
                                   str(tmp_path / "cache"))
  assert count == 2
  calls = []
  read = task.read_examples
  monkeypatch.setattr(task, "read_examples", lambda *a, **k: calls.append(a) or read(*a, **k))
  again, _ = cf.cached_features(task, str(tmp_path / "data"), "train", tokenizer, 8,
                                str(tmp_path / "cache"))
  assert again == path and not calls                     # no conversion the second time
  other, _ = cf.cached_features(task, str(tmp_path / "data"), "train", tokenizer, 9,
                                str(tmp_path / "cache"))
  assert other != path and len(calls) == 1               # another length: converted again
  parsed = next(iter(tf.data.TFRecordDataset([path]).batch(2).map(cf.parse_fn(8, False))))
  assert parsed["input_ids"].numpy().tolist() == [[1, 3, 2, 0, 0, 0, 0, 0],
                                                  [1, 7, 4, 5, 8, 9, 2, 0]]
  assert parsed["label_ids"].numpy().tolist() == [1, 0]
  assert parsed["is_real_example"].numpy().tolist() == [1, 1]
