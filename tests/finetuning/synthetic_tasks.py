"""Small synthetic fine-tuning tasks whose labels follow from the input, for end-to-end tests
that must show learning: a tiny BERT trained from scratch for a few epochs scores near 1 on them,
a broken training or decoding path near chance.

- BIO tagging: person names (john/mary, optionally followed by smith/jones) and places
  (paris/berlin, "new york") among filler words; B-/I- tags follow from the words.
- Sentiment: label 1 when the sentence holds a positive word, 0 when it holds a negative one.
- Extractive QA (SQuAD v1.1 layout): the answer is the one colour word of the context.
"""
import json

import numpy as np

FILLER = "the a went to saw and in city big small old with from of day night".split()
FIRST, LAST, PLACES = ["john", "mary", "alice"], ["smith", "jones"], ["paris", "berlin"]
POSITIVE, NEGATIVE = ["good", "great", "nice"], ["bad", "awful", "poor"]
COLOURS = ["red", "green", "blue", "yellow"]
QUESTIONS = ["what colour is it", "which colour", "colour"]
VOCAB = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + FILLER + FIRST + LAST + PLACES +
         ["new", "york"] + POSITIVE + NEGATIVE + COLOURS + ["what", "colour", "is", "it", "which"])


def write_model(folder, tiny_config):
  """A model folder (vocab.txt, bert_config.json; no checkpoint: trained from scratch)."""
  folder.mkdir(parents=True, exist_ok=True)
  (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
  (folder / "bert_config.json").write_text(json.dumps(
      dict(tiny_config, vocab_size=len(VOCAB), max_position_embeddings=64)))
  return folder


def bio_sentence(rng):
  words, tags = [], []
  for _ in range(int(rng.integers(4, 10))):
    kind = rng.random()
    if kind < 0.15:
      words.append(str(rng.choice(FIRST)))
      tags.append("B-PER")
      if rng.random() < 0.5:
        words.append(str(rng.choice(LAST)))
        tags.append("I-PER")
    elif kind < 0.25:
      words.append(str(rng.choice(PLACES)))
      tags.append("B-LOC")
    elif kind < 0.3:
      words += ["new", "york"]
      tags += ["B-LOC", "I-LOC"]
    else:
      words.append(str(rng.choice(FILLER)))
      tags.append("O")
  return words, tags


def write_bio(folder, sizes, seed=0):
  """train/dev/test.txt ("word tag" lines, blank line between sentences) of `sizes` sentences."""
  rng = np.random.default_rng(seed)
  folder.mkdir(parents=True, exist_ok=True)
  for split, count in zip(("train", "dev", "test"), sizes):
    blocks = ["\n".join(f"{w} {t}" for w, t in zip(*bio_sentence(rng))) for _ in range(count)]
    (folder / f"{split}.txt").write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
  return folder


def write_sentiment(folder, sizes, seed=1):
  """ChnSentiCorp-layout train/dev/test.tsv (label<TAB>text_a with a header)."""
  rng = np.random.default_rng(seed)
  folder.mkdir(parents=True, exist_ok=True)
  for split, count in zip(("train", "dev", "test"), sizes):
    rows = ["label\ttext_a"]
    for _ in range(count):
      label = int(rng.integers(2))
      words = list(rng.choice(FILLER, size=int(rng.integers(3, 8))))
      words.insert(int(rng.integers(len(words) + 1)), str(rng.choice(POSITIVE if label else NEGATIVE)))
      rows.append(f"{label}\t{' '.join(words)}")
    (folder / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
  return folder


def squad_dataset(count, seed=2):
  """SQuAD v1.1 layout: each context holds one colour word, the answer."""
  rng = np.random.default_rng(seed)
  paragraphs = []
  for i in range(count):
    words = list(rng.choice(FILLER, size=int(rng.integers(5, 15))))
    colour = str(rng.choice(COLOURS))
    words.insert(int(rng.integers(len(words) + 1)), colour)
    context = " ".join(words)
    paragraphs.append({"context": context, "qas": [{
        "id": f"q{i}", "question": str(rng.choice(QUESTIONS)),
        "answers": [{"text": colour, "answer_start": context.index(f"{colour}")}]}]})
  return {"version": "1.1", "data": [{"title": "colours", "paragraphs": paragraphs}]}
