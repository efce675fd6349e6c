"""The demo's data, generated from templates this project wrote (deterministic for a seed):

  corpus     documents of a few sentences about people in small towns: where they ate, what they
             thought of it and what they did next, in English with some Chinese; one sentence per
             line, blank lines between documents (the pretraining format). Every opinion word
             keeps the company of its polarity: the guests of a "superb" meal "came back the next
             week", those of a "rancid" one "asked for the money back", and words of one polarity
             are paired ("soggy and greasy").
  sentiment  a sentiment task: "The soup at the harbour cafe was superb ." -> positive. Its labelled
             training sets are small (tens of sentences, drawn for each seed) and use only the
             first LABELLED_WORDS opinion words of each polarity; half the dev and test sentences
             use those, half the others. Those words occur in the corpus but never in
             a labelled sentence: a model from scratch knows nothing of them, a pretrained one
             has seen them keep the company of their polarity.
"""
import csv
import os
import random

NAMES = ["Anna", "Ben", "Chen", "Dora", "Emil", "Fatima", "Gus", "Hana", "Ivan", "Jun", "Kofi",
         "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tara", "Umar",
         "Vera", "Wen", "Yusuf", "Zoe"]
TOWNS = ["Riverton", "Ashford", "Millbrook", "Stonehaven", "Larkfield", "Westmere", "Oakridge",
         "Brightwater", "Fernhill", "Cobbleton"]
PLACES = ["the harbour cafe", "the corner bakery", "the old inn", "the market stall",
          "the station canteen", "the hill restaurant", "the river bistro", "the night kitchen",
          "the school canteen", "the garden tea room"]
FOODS = ["soup", "bread", "pie", "noodles", "coffee", "salad", "fish", "cake", "curry",
         "dumplings", "tea", "pasta", "stew", "rice", "pancakes"]
JOBS = ["baker", "teacher", "fisher", "doctor", "farmer", "painter", "carpenter", "nurse",
        "driver", "librarian"]
ACTIVITIES = ["walked along the river", "repaired an old fence", "read the morning paper",
              "visited the weekly market", "painted the garden gate", "fed the ducks by the pond",
              "cycled to the next village", "wrote a letter to a friend", "planted apple trees",
              "fixed the school roof"]
WEATHER = ["The morning was grey and quiet .", "A cold wind came down from the hills .",
           "The sun was warm over the square .", "Rain fell softly on the roofs .",
           "Fog covered the harbour until noon ."]
# Opinion words by polarity. The labelled sentences use the first LABELLED_WORDS of each list,
# the dev and test sentences the rest.
POSITIVE = ["delicious", "wonderful", "excellent", "fresh", "lovely", "tasty", "superb", "perfect",
            "splendid", "delightful", "marvellous", "heavenly"]
NEGATIVE = ["awful", "terrible", "stale", "bland", "soggy", "greasy", "burnt", "dreadful",
            "horrible", "disgusting", "revolting", "rancid"]
LABELLED_WORDS = 3
GOOD_AFTER = ["came back the next week with friends", "told everyone in {t} about it",
              "left a generous tip", "ordered a second plate", "thanked the cook with a smile"]
BAD_AFTER = ["complained to the owner", "asked for the money back",
             "left half of it on the plate", "warned the neighbours to stay away",
             "never went there again"]
ZH_NAMES = ["小明", "小红", "老王", "李华", "张伟", "王芳"]
ZH_PLACES = ["河边的小饭馆", "车站的面包店", "山上的茶馆", "学校的食堂"]
ZH_FOODS = ["面条", "饺子", "米饭", "包子", "鱼汤"]
ZH_GOOD, ZH_BAD = ["好吃", "新鲜", "美味"], ["难吃", "不新鲜", "太咸"]
LABELS = ("negative", "positive")


def _verb(food, present=False):
  plural = food in ("noodles", "dumplings", "pancakes")
  return ("are" if plural else "is") if present else ("were" if plural else "was")


def _review(rng, adjective):
  """A labelled sentence: the corpus's opinion contexts without what the guest did next."""
  food, place, name = rng.choice(FOODS), rng.choice(PLACES), rng.choice(NAMES)
  if rng.random() < 0.5:
    return f"The {food} at {place} {_verb(food)} {adjective} ."
  return f"{name} thought the {food} {_verb(food)} {adjective} ."


def _opinion(rng, name, town, good):
  words = POSITIVE if good else NEGATIVE
  adjective = rng.choice(words)
  after = rng.choice(GOOD_AFTER if good else BAD_AFTER).format(t=town)
  food, place = rng.choice(FOODS), rng.choice(PLACES)
  kind = rng.random()
  if kind < 0.4:
    return f"The {food} at {place} {_verb(food)} {adjective} , so {name} {after} ."
  if kind < 0.7:
    return f"{name} thought the {food} {_verb(food)} {adjective} and {after} ."
  other = rng.choice([w for w in words if w != adjective])
  return f"People in {town} say the {food} at {place} {_verb(food, present=True)} {adjective} and {other} ."


def _document(rng):
  name, town = rng.choice(NAMES), rng.choice(TOWNS)
  sentences = [f"{name} lived in {town} and worked as a {rng.choice(JOBS)} ."]
  fussy = rng.random() < 0.5      # most meals of a document please, or most disappoint
  for _ in range(rng.randint(3, 6)):
    kind = rng.random()
    if kind < 0.7:
      sentences.append(_opinion(rng, name, town, (rng.random() < 0.85) != fussy))
    elif kind < 0.85:
      sentences.append(f"{name} {rng.choice(ACTIVITIES)} .")
    elif kind < 0.95:
      sentences.append(rng.choice(WEATHER))
    else:
      good = rng.random() < 0.5
      sentences.append(f"{rng.choice(ZH_NAMES)}在{rng.choice(ZH_PLACES)}吃了{rng.choice(ZH_FOODS)}，"
                       f"觉得{rng.choice(ZH_GOOD if good else ZH_BAD)}。")
  return sentences


def write_corpus(path, num_documents, seed=1):
  rng = random.Random(seed)
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    for i in range(num_documents):
      if i:
        f.write("\n")
      f.write("\n".join(_document(rng)) + "\n")
  return path


def _write_tsv(path, rows):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", encoding="utf-8", newline="") as f:
    writer = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, lineterminator="\n")
    writer.writerow(["text", "label"])
    writer.writerows(rows)


def _balanced(rng, count, *word_sets):
  """count rows alternating negative / positive (every even prefix is balanced), the word sets
  ((negative words, positive words), ...) taking turns by pairs of rows."""
  return [(_review(rng, rng.choice(word_sets[i // 2 % len(word_sets)][i % 2])), LABELS[i % 2])
          for i in range(count)]


def write_sentiment(directory, budgets, seeds, dev=400, test=400):
  """directory/{dev,test}.tsv (half the sentences with the labelled words, half with the others)
  and, for every budget and seed, a task
  folder directory/labelled_{budget}_seed{seed}/ with train.tsv (that many labelled sentences;
  a seed's smaller budgets are prefixes of its larger ones) and copies of dev.tsv and test.tsv
  (the layout run_classifier reads). Header text<TAB>label. Returns {(budget, seed): folder}."""
  labelled = (NEGATIVE[:LABELLED_WORDS], POSITIVE[:LABELLED_WORDS])
  unlabelled = (NEGATIVE[LABELLED_WORDS:], POSITIVE[LABELLED_WORDS:])
  held_out = {}
  for split, count, seed in (("dev", dev, 10_001), ("test", test, 10_002)):
    rows = _balanced(random.Random(seed), count, labelled, unlabelled)
    random.Random(seed).shuffle(rows)
    held_out[split] = rows
    _write_tsv(os.path.join(directory, f"{split}.tsv"), rows)
  folders = {}
  for seed in seeds:
    pool = _balanced(random.Random(seed), max(budgets), labelled)
    for budget in budgets:
      folder = os.path.join(directory, f"labelled_{budget}_seed{seed}")
      _write_tsv(os.path.join(folder, "train.tsv"), pool[:budget])
      for split, rows in held_out.items():
        _write_tsv(os.path.join(folder, f"{split}.tsv"), rows)
      folders[budget, seed] = folder
  return folders
