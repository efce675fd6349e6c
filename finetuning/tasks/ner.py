"""Named-entity recognition data: CoNLL-2003 (token per line, IOB1 or BIO tags, -DOCSTART-
lines, blank lines between sentences), CLUENER2020 (JSON Lines of text and label spans), and any
BIO-tagged token-per-line file. Examples are words with BIO tags; Chinese text is tagged per
character. Predictions are written back in the input's own format.
"""
import dataclasses
import json
import os

from absl import logging

from bert_tf.errors import FlagError
from finetuning.tasks.readers import RowError, read_rows


@dataclasses.dataclass
class NerExample:
  guid: str
  words: list
  tags: list = None          # BIO tags, one per word (None: unlabelled)
  where: str = ""
  text: str = None           # CLUENER: the original text (words are its characters)


def to_bio(tags):
  """IOB1 (I- starts an entity unless it continues one of the same type) -> BIO; BIO unchanged."""
  bio, previous = [], "O"
  for tag in tags:
    if tag.startswith("I-") and previous[2:] != tag[2:]:
      tag = "B-" + tag[2:]
    bio.append(tag)
    previous = tag
  return bio


def entities(tags):
  """(type, start, end inclusive) of the entities of a BIO sequence, conlleval's way: an I- tag
  after O or after another type also starts an entity."""
  found, start, kind = [], None, None
  for i, tag in enumerate(list(tags) + ["O"]):
    prefix, _, tag_type = tag.partition("-")
    ends = start is not None and (prefix in ("O", "B") or tag_type != kind)
    if ends:
      found.append((kind, start, i - 1))
      start = kind = None
    if prefix == "B" or (prefix == "I" and start is None):
      start, kind = i, tag_type
  return found


class NerTask:
  name = ""
  labels = ()                # BIO tags, "O" first
  files = {}
  output_format = "conll"
  per_character = False      # raw text (the SavedModel) splits into characters, not words

  def find_file(self, data_dir, split):
    for name in self.files[split]:
      path = os.path.join(data_dir, name)
      if os.path.exists(path):
        return path
    raise FileNotFoundError(f"{self.name}: no {split} file in {data_dir} (looked for "
                            f"{', '.join(self.files[split])})")

  def read_examples(self, data_dir, split, path=None):
    path = path or self.find_file(data_dir, split)
    examples = self.read(path, split)
    unknown = sorted({t for e in examples for t in e.tags or () if t not in self.labels})
    if unknown:
      raise RowError(f"{path}: tags {unknown} are not among {self.name}'s labels {list(self.labels)}")
    if not examples:
      raise RowError(f"{path}: no sentences found")
    return examples


def read_token_lines(path, split):
  """Token-per-line files: the first column is the word, the last the tag (CoNLL-2003 has POS
  and chunk columns between); -DOCSTART- lines are skipped; blank lines end sentences."""
  examples, words, tags, first_line = [], [], [], None
  with open(path, encoding="utf-8") as f:
    lines = f.read().split("\n")

  def flush():
    if words:
      examples.append(NerExample(f"{split}-{len(examples)}", list(words),
                                 to_bio(tags) if all(tags) else None, f"{path}:{first_line}"))
    words.clear()
    tags.clear()
  for number, line in enumerate(lines, start=1):
    line = line.rstrip("\r")
    if not line.strip():
      flush()
      continue
    fields = line.split()
    if fields[0] == "-DOCSTART-":
      flush()
      continue
    if len(fields) < 2 and split != "test":
      raise RowError(f"{path}:{number}: {line.strip()!r} has no tag column; expected the word "
                     "first and its tag last, separated by whitespace")
    if not words:
      first_line = number
    words.append(fields[0])
    tags.append(fields[-1] if len(fields) > 1 else None)
  flush()
  return examples


class Conll2003(NerTask):
  name = "conll2003"
  labels = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
  files = {"train": ("train.txt", "eng.train"), "dev": ("valid.txt", "dev.txt", "eng.testa"),
           "test": ("test.txt", "eng.testb")}

  def read(self, path, split):
    return read_token_lines(path, split)


class BioTask(Conll2003):
  """Any token-per-line BIO (or IOB1) file; the tags are read from the train file."""
  name = "bio"
  files = {split: tuple(f"{split}.{ext}" for ext in ("txt", "tsv", "bio", "conll"))
           for split in ("train", "dev", "test")}

  def __init__(self, labels=None):
    self.labels = tuple(labels or ())

  def infer_labels(self, data_dir):
    if not self.labels:
      tags = {t for e in self.read(self.find_file(data_dir, "train"), "train") for t in e.tags}
      self.labels = ("O",) + tuple(sorted(tags - {"O"}, key=lambda t: (t[2:], t)))
    return self.labels


class Cluener(NerTask):
  """CLUENER2020: {"text": ..., "label": {type: {entity text: [[start, end], ...]}}} per line,
  end inclusive; tagged per character."""
  name = "cluener"
  types = ("address", "book", "company", "game", "government", "movie", "name", "organization",
           "position", "scene")
  labels = ("O",) + tuple(f"{p}-{t}" for t in types for p in ("B", "I"))
  files = {"train": ("train.json",), "dev": ("dev.json",), "test": ("test.json",)}
  output_format = "cluener"
  per_character = True

  def read(self, path, split):
    examples = []
    for row in read_rows(path, "json"):
      if not isinstance(row.fields, dict):
        raise RowError(f"{row.where}: expected a JSON object with 'text' and 'label', got "
                       f"{type(row.fields).__name__}")
      text = row.fields.get("text")
      if not isinstance(text, str):
        raise RowError(f"{row.where}: no 'text' string")
      tags = None
      if "label" in row.fields:
        tags = ["O"] * len(text)
        for kind, entity, start, end in _label_spans(row):
          if text[start:end + 1] != entity:
            raise RowError(f"{row.where}: span [{start}, {end}] of {kind} is "
                           f"{text[start:end + 1]!r}, not {entity!r}")
          tags[start] = f"B-{kind}"
          for i in range(start + 1, end + 1):
            tags[i] = f"I-{kind}"
      guid = row.fields.get("id", len(examples))
      examples.append(NerExample(str(guid), list(text), tags, row.where, text))
    return examples


def _label_spans(row):
  """(type, entity, start, end) of a CLUENER row's label; a RowError for another layout."""
  found = []
  try:
    for kind, spans in row.fields["label"].items():
      for entity, positions in spans.items():
        for start, end in positions:
          found.append((kind, entity, int(start), int(end)))
  except (AttributeError, TypeError, ValueError):
    raise RowError(f"{row.where}: 'label' is not {{type: {{entity: [[start, end], ...]}}}}") from None
  return found


def spans_of(example, tags):
  """CLUENER label dict {type: {entity: [[start, end], ...]}} of BIO tags over the characters."""
  label = {}
  for kind, start, end in entities(tags):
    entity = "".join(example.words[start:end + 1])
    label.setdefault(kind, {}).setdefault(entity, []).append([start, end])
  return label


def write_predictions(task, examples, predictions, path, with_gold):
  """Predicted tags in the input's format: CoNLL columns (word [gold] predicted, blank line
  between sentences) or CLUENER JSON Lines with label spans."""
  tmp = f"{path}.incomplete"
  with open(tmp, "w", encoding="utf-8") as f:
    for example, tags in zip(examples, predictions):
      if task.output_format == "cluener":
        record = {"id": int(example.guid) if example.guid.isdigit() else example.guid,
                  "text": example.text, "label": spans_of(example, tags)}
        f.write(json.dumps(record, ensure_ascii=False) + "\n")
      else:
        for i, (word, tag) in enumerate(zip(example.words, tags)):
          gold = f" {example.tags[i]}" if with_gold and example.tags else ""
          f.write(f"{word}{gold} {tag}\n")
        f.write("\n")
  os.replace(tmp, path)
  logging.info("wrote %s", path)


TASKS = {"conll2003": Conll2003, "cluener": Cluener, "bio": BioTask}


def get_task(name, **kwargs):
  key = name.lower()
  if key not in TASKS:
    raise FlagError(f"unknown NER task_name {name!r}; known: {', '.join(sorted(TASKS))}")
  return TASKS[key](**kwargs)
