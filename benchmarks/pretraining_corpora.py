"""The largest real pretraining corpora ../shared/data allows, every line distinct.

    size = write_corpus("English", "/tmp/en.txt")   # bytes written

Each language's corpus concatenates the real text of every source in shared/data (MANIFEST.md)
in the BERT layout: one sentence per line, a blank line between documents. A document is a
source's natural unit (a WikiText article, a CoNLL-2003 -DOCSTART- document, a SQuAD/CMRC/DRCD
paragraph, a review, a NER sentence, a sentence pair), long texts split into sentences after
. ! ? (English) or 。！？ (Chinese). A line already written (by any source) is dropped, so no
text repeats: a corpus repeated k times would flatter any cache keyed on text. Labels, ids and
JSON keys are not text and are left out.
"""
import csv
import json
import re

from benchmarks.common import SHARED_DATA

_EN_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
_ZH_SPLIT = re.compile(r"(?<=[。！？!?])(?![”」』）)])")


def _sentences(text, language):
  text = " ".join(text.split()) if language == "English" else "".join(text.split())
  pattern = _EN_SPLIT if language == "English" else _ZH_SPLIT
  return [s.strip() for s in pattern.split(text) if s.strip()]


def _tsv(relative, columns, skip_header=True, language=None):
  """Rows' cells as documents (each cell split into sentences when language is given)."""
  with open(SHARED_DATA / relative, encoding="utf-8-sig", newline="") as f:
    rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
  for row in rows[1 if skip_header else 0:]:
    cells = [row[c] for c in columns if c < len(row)]
    yield [s for c in cells for s in _sentences(c, language)] if language else cells


def _json_lines(relative, key, language):
  with open(SHARED_DATA / relative, encoding="utf-8") as f:
    for line in f:
      if line.strip():
        yield _sentences(json.loads(line)[key], language)


def _squad_paragraphs(relative, language):
  with open(SHARED_DATA / relative, encoding="utf-8") as f:
    data = json.load(f)["data"]
  for article in data:
    for paragraph in article["paragraphs"]:
      yield _sentences(paragraph["context"], language)


def _text_documents(relative):
  """A file already in the BERT layout: its blank-line separated documents."""
  document = []
  with open(SHARED_DATA / relative, encoding="utf-8") as f:
    for line in f:
      if line.strip():
        document.append(line.strip())
      elif document:
        yield document
        document = []
  if document:
    yield document


def _conll_documents(relative):
  document, sentence = [], []
  with open(SHARED_DATA / relative, encoding="utf-8") as f:
    for line in f:
      fields = line.split()
      if fields and fields[0] == "-DOCSTART-":
        if document:
          yield document
        document = []
      elif fields:
        sentence.append(fields[0])
      elif sentence:
        document.append(" ".join(sentence))
        sentence = []
  if sentence:
    document.append(" ".join(sentence))
  if document:
    yield document


def _english_documents():
  yield from _text_documents("english_corpus/wikitext-2_valid_sentences.txt")
  yield from _text_documents("pretrain_corpus/sample_text.txt")
  for name in ("train.txt", "test.txt", "valid.txt"):
    yield from _conll_documents(f"conll2003/{name}")
  yield from _squad_paragraphs("squad/expmrc-squad-dev.json", "English")
  for split in ("train", "test", "dev"):
    yield from _tsv(f"glue/MRPC/{split}.tsv", (3, 4))
  yield from _tsv("glue/STS-B/dev.tsv", (7, 8))
  yield from _tsv("glue/RTE/dev.tsv", (1, 2))
  yield from _tsv("glue/SST-2/dev.tsv", (0,))
  yield from _tsv("glue/CoLA/dev.tsv", (3,), skip_header=False)


def _chinese_documents():
  yield from _text_documents("chinese_corpus/CLUECorpusSmall_bert_sampled.txt")
  yield from _text_documents("chinese_corpus/news_zh_1.txt")
  for split in ("train", "dev", "test"):
    yield from _tsv(f"chnsenticorp/{split}.tsv", (1,), language="Chinese")
  for name in ("cmrc2018/cmrc2018_dev.json", "cmrc2018/cmrc2018_trial.json",
               "drcd/DRCD_dev.json", "drcd/DRCD_test.json"):
    yield from _squad_paragraphs(name, "Chinese")
  for split in ("train", "dev", "test"):
    yield from _json_lines(f"cluener2020/{split}.json", "text", "Chinese")
  for split in ("dev", "test"):
    yield from _tsv(f"lcqmc/{split}.txt", (0, 1))
    yield from _tsv(f"xnli_zh/{split}.tsv", (0, 1))
  for split in ("train_few_all", "dev_few_all", "test_public"):
    yield from _json_lines(f"tnews_fewclue/{split}.json", "sentence", "Chinese")


DOCUMENTS = {"English": _english_documents, "Chinese": _chinese_documents}


def write_corpus(language, path):
  """Writes language's distinct-line corpus to path; returns its size in bytes."""
  seen = set()
  with open(path, "w", encoding="utf-8") as out:
    for texts in DOCUMENTS[language]():
      lines = []
      for line in texts:
        line = " ".join(line.split())
        if line and line not in seen:
          seen.add(line)
          lines.append(line)
      if lines:
        out.write("\n".join(lines) + "\n\n")
  with open(path, "rb") as f:
    return len(f.read())
