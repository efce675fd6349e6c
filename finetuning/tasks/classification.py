"""Sentence and sentence-pair classification tasks, one small class each, reading each task's
public files as distributed.

    task = get_task("mrpc")
    examples = task.read_examples("glue_data/MRPC", "dev")   # [InputExample]
    task.labels, task.metrics, task.submission

A task says where its files are (`files`: candidate names per split), whether their first line
is a header, and how one row becomes an example (`parse`). Everything else (reporting bad rows
with file and line, checking labels) is shared. Adding a task is one class and one registry line.
"""
import dataclasses
import os

from absl import logging

from bert_tf.errors import FlagError
from finetuning.tasks.readers import RowError, read_rows


@dataclasses.dataclass
class InputExample:
  guid: str
  text_a: str
  text_b: str = None
  label: object = None        # a label string, a float (regression) or None (unlabelled)
  where: str = ""             # file:line


class LabelError(RowError):
  """A label the task does not know: always an error (a wrong task or a corrupt file)."""


def field(fields, index):
  """fields[index] with a clear error when the row is too short."""
  try:
    return fields[index]
  except (IndexError, KeyError):
    if isinstance(fields, dict):
      raise RowError(f"has no field {index!r} (fields: {', '.join(map(str, fields))})") from None
    raise RowError(f"expected at least {index + 1 if index >= 0 else -index} tab-separated "
                   f"fields, found {len(fields)}") from None


class ClassificationTask:
  """Base class. Subclasses set the class attributes and write `parse`."""
  name = ""
  labels = ()                 # label strings in id order; empty for regression
  is_regression = False
  is_pair = True              # two texts per example
  metrics = ("accuracy",)
  files = {"train": ("train.tsv",), "dev": ("dev.tsv",), "test": ("test.tsv",)}
  header = True               # True, False, or "auto": skipped when its label field is no label
  label_field = None          # for header="auto" and header-named columns
  submission = None           # ("glue", "MRPC.tsv") | ("clue", "tnews_predict.json") | None

  def parse(self, fields, split, header):
    """One row's fields -> (guid or None, text_a, text_b, label or None); None skips the row.
    Raises RowError (the message says what was expected)."""
    raise NotImplementedError

  # -- shared -------------------------------------------------------------------------------

  def num_labels(self):
    return 1 if self.is_regression else len(self.labels)

  def find_file(self, data_dir, split):
    for name in self.files[split]:
      path = os.path.join(data_dir, name)
      if os.path.exists(path) or (str(data_dir).startswith("gs://") and _gfile_exists(path)):
        return path
    raise FileNotFoundError(f"{self.name}: no {split} file in {data_dir} (looked for "
                            f"{', '.join(self.files[split])})")

  def header_of(self, split):
    return self.header if not isinstance(self.header, dict) else self.header[split]

  def _is_header(self, fields, header):
    if header == "auto":
      value = field(fields, self.label_field) if self.label_field is not None else None
      return value not in self.labels
    return bool(header)

  def read_examples(self, data_dir, split, path=None, check_labels=True):
    """Examples of one split ("train", "dev" or "test").

    Rows that cannot be read are skipped with a warning naming file and line (train and dev);
    in the test split every row is needed for the submission, so they raise. A label outside
    `labels` always raises, naming the file, line and the known labels (unless check_labels is
    False: reading the train file to learn the labels).
    """
    path = path or self.find_file(data_dir, split)
    header_setting = self.header_of(split)
    examples, bad = [], []
    header = None
    for i, row in enumerate(read_rows(path)):
      if i == 0 and not isinstance(row.fields, dict) and self._is_header(row.fields, header_setting):
        header = row.fields
        continue
      try:
        parsed = self.parse(row.fields, split, header)
        if parsed is None:
          continue
        guid, text_a, text_b, label = parsed
        label = self._check_label(label, check_labels)
      except RowError as e:
        if split == "test" or isinstance(e, LabelError):
          raise RowError(f"{row.where}: {e}") from None
        bad.append(f"{row.where}: {e}")
        continue
      examples.append(InputExample(str(guid if guid is not None else f"{split}-{i}"),
                                   text_a, text_b, label, row.where))
    if bad:
      logging.warning("%s: skipped %d malformed rows of %s, e.g. %s", self.name, len(bad), path,
                      "; ".join(bad[:5]))
    if not examples:
      raise RowError(f"{path}: no examples could be read for {self.name}")
    return examples

  def _check_label(self, label, known=True):
    if label is None:
      return None
    if self.is_regression:
      try:
        return float(label)
      except ValueError:
        raise LabelError(f"label {label!r} is not a number (regression task)") from None
    label = str(label).strip()
    if known and label not in self.labels:
      raise LabelError(f"label {label!r} is not one of {self.name}'s labels "
                     f"{list(self.labels)}")
    return label


def _gfile_exists(path):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return tf.io.gfile.exists(path)


# -- GLUE ---------------------------------------------------------------------------------------

class Cola(ClassificationTask):
  name, labels, is_pair, metrics = "cola", ("0", "1"), False, ("accuracy", "mcc")
  header = {"train": False, "dev": False, "test": True}
  submission = ("glue", "CoLA.tsv")

  def parse(self, fields, split, header):
    if split == "test":
      return field(fields, 0), field(fields, 1), None, None
    return None, field(fields, 3), None, field(fields, 1)


class Sst2(ClassificationTask):
  name, labels, is_pair = "sst-2", ("0", "1"), False
  submission = ("glue", "SST-2.tsv")

  def parse(self, fields, split, header):
    if split == "test":
      return field(fields, 0), field(fields, 1), None, None
    return None, field(fields, 0), None, field(fields, 1)


class Mrpc(ClassificationTask):
  name, labels, metrics = "mrpc", ("0", "1"), ("accuracy", "f1")
  submission = ("glue", "MRPC.tsv")

  def parse(self, fields, split, header):
    label = None if split == "test" else field(fields, 0)
    guid = field(fields, 0) if split == "test" else None
    return guid, field(fields, 3), field(fields, 4), label


class Stsb(ClassificationTask):
  name, is_regression, metrics = "sts-b", True, ("pearson", "spearman")
  submission = ("glue", "STS-B.tsv")

  def parse(self, fields, split, header):
    label = None if split == "test" else field(fields, -1)
    return field(fields, 0), field(fields, 7), field(fields, 8), label


class Qqp(ClassificationTask):
  name, labels, metrics = "qqp", ("0", "1"), ("accuracy", "f1")
  submission = ("glue", "QQP.tsv")

  def parse(self, fields, split, header):
    if split == "test":
      return field(fields, 0), field(fields, 1), field(fields, 2), None
    return field(fields, 0), field(fields, 3), field(fields, 4), field(fields, 5)


class Mnli(ClassificationTask):
  name, labels = "mnli", ("contradiction", "entailment", "neutral")
  files = {"train": ("train.tsv",), "dev": ("dev_matched.tsv",), "test": ("test_matched.tsv",)}
  submission = ("glue", "MNLI-m.tsv")

  def parse(self, fields, split, header):
    label = None if split == "test" else field(fields, -1)
    return field(fields, 0), field(fields, 8), field(fields, 9), label


class MnliMismatched(Mnli):
  name = "mnli-mm"
  files = {"train": ("train.tsv",), "dev": ("dev_mismatched.tsv",),
           "test": ("test_mismatched.tsv",)}
  submission = ("glue", "MNLI-mm.tsv")


class Qnli(ClassificationTask):
  name, labels = "qnli", ("entailment", "not_entailment")
  submission = ("glue", "QNLI.tsv")

  def parse(self, fields, split, header):
    label = None if split == "test" else field(fields, -1)
    return field(fields, 0), field(fields, 1), field(fields, 2), label


class Rte(Qnli):
  name = "rte"
  submission = ("glue", "RTE.tsv")


class Wnli(Qnli):
  name, labels = "wnli", ("0", "1")
  submission = ("glue", "WNLI.tsv")


# -- XNLI and Chinese tasks -------------------------------------------------------------------

class Xnli(ClassificationTask):
  """XNLI in either layout: the original (multinli/multinli.train.<lang>.tsv, xnli.dev.tsv and
  xnli.test.tsv filtered by language, as google-research/bert's XnliProcessor), or one language's
  train/dev/test.tsv of text_a, text_b, label (the Chinese BERT-wwm / ERNIE copies)."""
  name, labels = "xnli", ("contradiction", "entailment", "neutral")
  header = True

  def __init__(self, language="zh"):
    self.language = language
    self.files = {"train": ("train.tsv", f"multinli/multinli.train.{language}.tsv"),
                  "dev": ("dev.tsv", "xnli.dev.tsv"), "test": ("test.tsv", "xnli.test.tsv")}

  def parse(self, fields, split, header):
    names = [h.strip() for h in header or ()]
    if "gold_label" in names:                                # xnli.dev.tsv / xnli.test.tsv
      if field(fields, 0) != self.language:
        return None
      return None, field(fields, 6), field(fields, 7), field(fields, 1)
    label = field(fields, 2)
    return None, field(fields, 0), field(fields, 1), ("contradiction" if label == "contradictory"
                                                      else label)


class ChnSentiCorp(ClassificationTask):
  name, labels, is_pair, header, label_field = "chnsenticorp", ("0", "1"), False, "auto", 0

  def parse(self, fields, split, header):
    names = [h.strip() for h in header or ()]
    label_at = names.index("label") if "label" in names else 0
    text_at = 1 - label_at if len(fields) == 2 else (names.index("text_a") if "text_a" in names
                                                    else label_at + 1)
    label = field(fields, label_at) if len(fields) > 1 or split != "test" else None
    return None, field(fields, text_at), None, label


def _chinese_files(train=(), dev=(), test=()):
  """train/dev/test with .tsv, .txt or .csv, plus other names a distribution uses."""
  extra = {"train": train, "dev": dev, "test": test}
  return {split: tuple(f"{stem}.{ext}" for stem in (split, *extra[split])
                       for ext in ("tsv", "txt", "csv")) for split in extra}


class Lcqmc(ClassificationTask):
  name, labels, header, label_field = "lcqmc", ("0", "1"), "auto", 2
  files = _chinese_files()

  def parse(self, fields, split, header):
    label = field(fields, 2) if len(fields) > 2 else None
    return None, field(fields, 0), field(fields, 1), label


class BqCorpus(Lcqmc):
  name = "bq"


class ThucNews(ClassificationTask):
  """THUCNews as the 10-class subset of the Chinese BERT-wwm benchmark (label<TAB>text)."""
  name, is_pair, header, label_field = "thucnews", False, "auto", 0
  labels = ("体育", "娱乐", "家居", "房产", "教育", "时尚", "时政", "游戏", "科技", "财经")
  files = _chinese_files(("cnews.train",), ("cnews.val",), ("cnews.test",))

  def parse(self, fields, split, header):
    return None, field(fields, 1), None, field(fields, 0)


# -- CLUE (JSON Lines) ------------------------------------------------------------------------

def _clue_files():
  return {"train": ("train.json", "train_few_all.json"), "dev": ("dev.json", "dev_few_all.json"),
          "test": ("test.json", "test_public.json")}


class _Clue(ClassificationTask):
  files = _clue_files()
  header = False
  text_keys = ("sentence1", "sentence2")

  def parse(self, fields, split, header):
    label = fields.get("label")
    if label == "-" or (label is None and split != "test"):
      return None     # CMNLI/OCNLI rows without an agreed label are not used, as CLUE does
    texts = [field(fields, k) for k in self.text_keys]
    return (fields.get("id"), texts[0], texts[1] if self.is_pair else None,
            None if label is None else str(label))


class Tnews(_Clue):
  name, is_pair, text_keys = "tnews", False, ("sentence",)
  labels = tuple(str(i) for i in range(100, 117) if i not in (105, 111))
  submission = ("clue", "tnews_predict.json")


class Iflytek(_Clue):
  name, is_pair, text_keys = "iflytek", False, ("sentence",)
  labels = tuple(str(i) for i in range(119))
  submission = ("clue", "iflytek_predict.json")


class Afqmc(_Clue):
  name, labels = "afqmc", ("0", "1")
  submission = ("clue", "afqmc_predict.json")


class Cmnli(_Clue):
  name, labels = "cmnli", ("contradiction", "entailment", "neutral")
  submission = ("clue", "cmnli_predict.json")


class Ocnli(Cmnli):
  name = "ocnli"
  submission = ("clue", "ocnli_predict.json")


# -- any file -----------------------------------------------------------------------------------

class GenericTask(ClassificationTask):
  """Any CSV / TSV (with a header row naming the columns) or JSON Lines file.

  Args:
    text_a_column, text_b_column: column names (text_b_column None for single texts).
    label_column: column name of the label.
    labels: label strings in id order; None reads them from the train file (sorted).
    id_column: optional id column for the predictions.
    is_regression: float labels (e.g. a score).
    file_names: {"train": ..., "dev": ..., "test": ...} file names in data_dir (defaults:
      train/dev/test with .tsv, .csv, .jsonl, .json or .txt).
  """
  name, header = "generic", True

  def __init__(self, text_a_column="text_a", text_b_column=None, label_column="label",
               labels=None, id_column=None, is_regression=False, file_names=None):
    self.columns = (text_a_column, text_b_column, label_column, id_column)
    self.is_pair = text_b_column is not None
    self.is_regression = is_regression
    self.metrics = ("pearson", "spearman") if is_regression else ("accuracy",)
    self.labels = tuple(labels or ())
    self.files = {split: ((file_names[split],) if file_names and split in file_names else
                          tuple(f"{split}.{e}" for e in ("tsv", "csv", "jsonl", "json", "txt")))
                  for split in ("train", "dev", "test")}

  def parse(self, fields, split, header):
    if not isinstance(fields, dict):
      if header is None:
        raise RowError("a CSV/TSV file needs a header row naming its columns")
      fields = dict(zip([h.strip() for h in header], fields))
    text_a, text_b, label, guid = self.columns
    value = lambda key: None if key is None else field(fields, key)  # pylint: disable=unnecessary-lambda-assignment
    has_label = label in fields and str(fields[label]).strip() != ""
    return (value(guid), value(text_a), value(text_b),
            fields[label] if has_label else (None if split == "test" else field(fields, label)))

  def infer_labels(self, data_dir):
    """Reads the distinct labels of the train file (sorted) when none were given."""
    if not self.labels and not self.is_regression:
      examples = self.read_examples(data_dir, "train", check_labels=False)
      self.labels = tuple(sorted({e.label for e in examples}))
    return self.labels


TASKS = {task.name: task for task in (
    Cola, Sst2, Mrpc, Stsb, Qqp, Mnli, MnliMismatched, Qnli, Rte, Wnli, Xnli, ChnSentiCorp,
    Lcqmc, BqCorpus, ThucNews, Tnews, Iflytek, Afqmc, Cmnli, Ocnli, GenericTask)}
ALIASES = {"sst2": "sst-2", "stsb": "sts-b", "sts": "sts-b", "mnli-m": "mnli",
           "mnli_mismatched": "mnli-mm", "bq_corpus": "bq", "chnsenti": "chnsenticorp"}


def get_task(name, **kwargs):
  """A task by name (case-insensitive; GLUE names as in the original run_classifier)."""
  key = name.lower()
  key = ALIASES.get(key, key)
  if key not in TASKS:
    raise FlagError(f"unknown task_name {name!r}; known: {', '.join(sorted(TASKS))}")
  return TASKS[key](**kwargs)
