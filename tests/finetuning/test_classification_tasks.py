"""Task readers: real files as distributed, and bad rows reported with file and line."""
import json

import pytest

from conftest import shared_path
from finetuning.tasks.classification import GenericTask, get_task
from finetuning.tasks.readers import RowError

# (task, folder under ../shared/data, split, rows the file holds, labels seen in it)
REAL = [
    ("cola", "glue/CoLA", "dev", 1043, {"0", "1"}),
    ("sst-2", "glue/SST-2", "dev", 872, {"0", "1"}),
    ("mrpc", "glue/MRPC", "dev", 408, {"0", "1"}),
    ("mrpc", "glue/MRPC", "train", 3667, {"0", "1"}),
    ("mrpc", "glue/MRPC", "test", 1725, {None}),
    ("rte", "glue/RTE", "dev", 277, {"entailment", "not_entailment"}),
    ("chnsenticorp", "chnsenticorp", "train", 9600, {"0", "1"}),
    ("chnsenticorp", "chnsenticorp", "dev", 1200, {"0", "1"}),
    ("lcqmc", "lcqmc", "dev", 8802, {"0", "1"}),
    ("lcqmc", "lcqmc", "test", 12500, {"0", "1"}),
    ("xnli", "xnli_zh", "dev", 2490, {"contradiction", "entailment", "neutral"}),
    ("tnews", "tnews_fewclue", "train", 1185, None),
    ("tnews", "tnews_fewclue", "test", 2010, None),
]


@pytest.mark.parametrize("name,folder,split,rows,labels", REAL,
                         ids=[f"{r[0]}-{r[2]}" for r in REAL])
def test_real_files_read_completely(name, folder, split, rows, labels):
  task = get_task(name)
  data_dir = shared_path(folder)
  examples = task.read_examples(str(data_dir), split)
  assert len(examples) == rows
  seen = {e.label for e in examples}
  if labels is not None:
    assert seen == labels
  else:
    assert seen <= set(task.labels) and len(seen) == len(task.labels)
  assert all(e.text_a for e in examples)
  assert all(bool(e.text_b) == task.is_pair for e in examples)


def test_stsb_scores_are_floats_and_match_the_file():
  path = shared_path("glue/STS-B/dev.tsv")
  examples = get_task("sts-b").read_examples(str(path.parent), "dev")
  lines = path.read_text(encoding="utf-8").splitlines()[1:]
  assert [e.label for e in examples] == [float(line.split("\t")[-1]) for line in lines]
  assert examples[0].text_b == lines[0].split("\t")[8]


def test_mrpc_reads_texts_from_the_right_columns():
  path = shared_path("glue/MRPC/dev.tsv")
  first = path.read_text(encoding="utf-8-sig").splitlines()[1].split("\t")
  example = get_task("MRPC").read_examples(str(path.parent), "dev")[0]
  assert (example.label, example.text_a, example.text_b) == (first[0], first[3], first[4])
  assert example.where.endswith("dev.tsv:2")


def _write(path, text):
  path.write_text(text, encoding="utf-8")
  return path


def test_unknown_label_names_file_line_and_labels(tmp_path):
  _write(tmp_path / "dev.tsv", "label\ttext_a\n1\tgood\n7\tbad\n")
  with pytest.raises(RowError, match=r"dev.tsv:3: label '7' is not one of chnsenticorp's labels"):
    get_task("chnsenticorp").read_examples(str(tmp_path), "dev")


def test_malformed_rows_are_skipped_with_location_in_train_but_fail_in_test(tmp_path, caplog):
  _write(tmp_path / "train.tsv", "text_a\ttext_b\tlabel\na\tb\t1\nonly one field\nc\td\t0\n")
  examples = get_task("lcqmc").read_examples(str(tmp_path), "train")
  assert [e.text_a for e in examples] == ["a", "c"]
  assert "train.tsv:3" in caplog.text and "skipped 1 malformed" in caplog.text
  _write(tmp_path / "test.tsv", "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n0\t1\t2\tx\n")
  with pytest.raises(RowError, match=r"test.tsv:2: expected at least 5 tab-separated fields"):
    get_task("mrpc").read_examples(str(tmp_path), "test")


def test_lcqmc_without_header_and_blank_lines(tmp_path):
  _write(tmp_path / "train.txt", "问题一\t问题二\t1\n\n甲\t乙\t0\n")
  examples = get_task("lcqmc").read_examples(str(tmp_path), "train")
  assert [(e.text_a, e.label, e.where[-1]) for e in examples] == [("问题一", "1", "1"),
                                                                  ("甲", "0", "3")]


def test_xnli_original_layout_filters_language_and_maps_contradictory(tmp_path):
  (tmp_path / "multinli").mkdir()
  _write(tmp_path / "multinli" / "multinli.train.zh.tsv",
         "premise\thypo\tlabel\n他来了\t他走了\tcontradictory\n")
  header = "language\tgold_label\ts1b\ts2b\ts1p\ts2p\tsentence1\tsentence2\n"
  _write(tmp_path / "xnli.dev.tsv", header + "en\tneutral\t.\t.\t.\t.\tA\tB\n"
         "zh\tentailment\t.\t.\t.\t.\t甲\t乙\n")
  task = get_task("xnli", language="zh")
  assert [e.label for e in task.read_examples(str(tmp_path), "train")] == ["contradiction"]
  dev = task.read_examples(str(tmp_path), "dev")
  assert [(e.text_a, e.text_b, e.label) for e in dev] == [("甲", "乙", "entailment")]


def test_clue_json_lines_skip_unlabelled_nli_rows(tmp_path):
  rows = [{"sentence1": "a", "sentence2": "b", "label": "neutral", "id": 0},
          {"sentence1": "c", "sentence2": "d", "label": "-", "id": 1}]
  _write(tmp_path / "dev.json", "\n".join(json.dumps(r) for r in rows))
  examples = get_task("cmnli").read_examples(str(tmp_path), "dev")
  assert [(e.guid, e.label) for e in examples] == [("0", "neutral")]
  _write(tmp_path / "train.json", '{"sentence": "x", "label": "101"}\n{broken\n')
  with pytest.raises(RowError, match=r"train.json:2: not a JSON object"):
    get_task("tnews").read_examples(str(tmp_path), "train")


@pytest.mark.parametrize("suffix,text", [
    ("csv", 'review,score,id\n"good, really",pos,a1\nbad,neg,a2\n'),
    ("tsv", "review\tscore\tid\ngood, really\tpos\ta1\nbad\tneg\ta2\n"),
    ("jsonl", '{"review": "good, really", "score": "pos", "id": "a1"}\n'
              '{"review": "bad", "score": "neg", "id": "a2"}\n'),
])
def test_generic_task_reads_named_columns(tmp_path, suffix, text):
  _write(tmp_path / f"train.{suffix}", text)
  task = GenericTask(text_a_column="review", label_column="score", id_column="id")
  assert task.infer_labels(str(tmp_path)) == ("neg", "pos")
  examples = task.read_examples(str(tmp_path), "train")
  assert [(e.guid, e.text_a, e.label) for e in examples] == [("a1", "good, really", "pos"),
                                                             ("a2", "bad", "neg")]


def test_unknown_task_lists_the_known_ones():
  with pytest.raises(ValueError, match="unknown task_name 'foo'.*chnsenticorp"):
    get_task("foo")


# Columns as google-research/bert's run_classifier.py processors (and the Chinese BERT-wwm /
# ERNIE copies' headers) name them: (text_a, text_b, label) indices of a tab-split raw line, and
# whether the file has a header line. Written out here, independently of the task classes.
RAW_COLUMNS = [
    ("cola", "glue/CoLA/dev.tsv", (3, None, 1), False),
    ("sst-2", "glue/SST-2/dev.tsv", (0, None, 1), True),
    ("mrpc", "glue/MRPC/dev.tsv", (3, 4, 0), True),
    ("mrpc", "glue/MRPC/test.tsv", (3, 4, None), True),
    ("sts-b", "glue/STS-B/dev.tsv", (7, 8, 9), True),
    ("rte", "glue/RTE/dev.tsv", (1, 2, 3), True),
    ("xnli", "xnli_zh/dev.tsv", (0, 1, 2), True),
    ("lcqmc", "lcqmc/dev.txt", (0, 1, 2), True),
    ("chnsenticorp", "chnsenticorp/dev.tsv", (1, None, 0), True),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,relative,columns,header", RAW_COLUMNS,
                         ids=[f"{r[0]}-{r[1].rsplit('/', 1)[1]}" for r in RAW_COLUMNS])
def test_texts_and_labels_come_from_the_raw_columns(name, relative, columns, header):
  """Every example's text_a, text_b and label equal the named columns of its raw line (GLUE's
  tab split, no quoting). Mutation caught: text_a and text_b swapped in a pair task's parse, a
  single-text task reading the label column as text, an off-by-one column."""
  path = shared_path(relative)
  lines = [line for line in path.read_text(encoding="utf-8-sig").split("\n") if line.strip()]
  lines = lines[1:] if header else lines
  expected = []
  for line in lines:
    fields = line.rstrip("\r").split("\t")
    expected.append(tuple(None if i is None else fields[i] for i in columns))
  task = get_task(name)
  split = path.stem
  examples = task.read_examples(str(path.parent), split, path=str(path))
  got = [(e.text_a, e.text_b, e.label) for e in examples]
  if name == "sts-b":
    expected = [(a, b, float(label)) for a, b, label in expected]
  assert got == expected
