"""The demo's data, generated from templates this project wrote (deterministic for a seed):

  corpus   documents of a few sentences about people in small towns: what they did, where they
           ate and what they thought of it, in English with some Chinese; one sentence per line,
           blank lines between documents (the pretraining format).
  reviews  a sentiment task: "The soup at the harbour cafe was not fresh ." -> 0 / 1, where
           negation flips the adjective's polarity. Some adjectives appear only in the dev and
           test sets: the fine-tuned model can place them only through what pretraining learned
           from the corpus, where good and bad words keep different company (guests who
           "came back the next week" or "asked for their money back").
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
# Adjectives by polarity; the last three of each list are held out of the task's training set.
POSITIVE = ["delicious", "fresh", "wonderful", "excellent", "lovely", "tasty", "superb", "perfect",
            "splendid", "delightful", "marvellous", "heavenly"]
NEGATIVE = ["awful", "stale", "bland", "terrible", "soggy", "greasy", "burnt", "dreadful",
            "horrible", "disgusting", "revolting", "rancid"]
HELD_OUT = 3
GOOD_AFTER = ["{n} smiled and thanked the cook .", "{n} came back the next week with friends .",
              "{n} told everyone in {t} about it .", "{n} left a generous tip .",
              "{n} ordered a second plate ."]
BAD_AFTER = ["{n} complained to the owner .", "{n} asked for the money back .",
             "{n} left half of it on the plate .", "{n} warned the neighbours to stay away .",
             "{n} never went there again ."]
ZH_NAMES = ["小明", "小红", "老王", "李华", "张伟", "王芳"]
ZH_PLACES = ["河边的小饭馆", "车站的面包店", "山上的茶馆", "学校的食堂"]
ZH_FOODS = ["面条", "饺子", "米饭", "包子", "鱼汤"]
ZH_GOOD, ZH_BAD = ["好吃", "新鲜", "美味"], ["难吃", "不新鲜", "太咸"]


def _verb(food):
  return "were" if food in ("noodles", "dumplings", "pancakes") else "was"


def _review_sentence(food, place, adjective, negated):
  return f"The {food} at {place} {_verb(food)} {'not ' if negated else ''}{adjective} ."


def _document(rng):
  name, town = rng.choice(NAMES), rng.choice(TOWNS)
  sentences = [f"{name} lived in {town} and worked as a {rng.choice(JOBS)} ."]
  for _ in range(rng.randint(3, 7)):
    kind = rng.random()
    if kind < 0.45:
      good = rng.random() < 0.5
      adjective = rng.choice(POSITIVE if good else NEGATIVE)
      negated = rng.random() < 0.25
      food, place = rng.choice(FOODS), rng.choice(PLACES)
      sentences.append(f"One day {name} had {food} at {place} in {town} .")
      liked = good != negated
      after = rng.choice(GOOD_AFTER if liked else BAD_AFTER).format(n=name, t=town)
      sentences.append(f"{name} thought the {food} {_verb(food)} {'not ' if negated else ''}"
                       f"{adjective} , so {after}")
    elif kind < 0.75:
      sentences.append(f"{name} {rng.choice(ACTIVITIES)} .")
    elif kind < 0.9:
      sentences.append(rng.choice(WEATHER))
    else:
      good = rng.random() < 0.5
      zh_name = rng.choice(ZH_NAMES)
      sentences.append(f"{zh_name}在{rng.choice(ZH_PLACES)}吃了{rng.choice(ZH_FOODS)}，觉得"
                       f"{rng.choice(ZH_GOOD if good else ZH_BAD)}。")
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


def _reviews(rng, count, adjectives):
  rows = []
  for _ in range(count):
    good = rng.random() < 0.5
    adjective = rng.choice(adjectives[good])
    negated = rng.random() < 0.3
    text = _review_sentence(rng.choice(FOODS), rng.choice(PLACES), adjective, negated)
    rows.append((text, "positive" if good != negated else "negative"))
  return rows


def write_reviews(directory, train=400, dev=400, test=400, seed=2):
  """train.tsv / dev.tsv / test.tsv with header text<TAB>label."""
  rng = random.Random(seed)
  seen = {True: POSITIVE[:-HELD_OUT], False: NEGATIVE[:-HELD_OUT]}
  every = {True: POSITIVE, False: NEGATIVE}
  os.makedirs(directory, exist_ok=True)
  for split, count, adjectives in (("train", train, seen), ("dev", dev, every),
                                   ("test", test, every)):
    with open(os.path.join(directory, f"{split}.tsv"), "w", encoding="utf-8", newline="") as f:
      writer = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, lineterminator="\n")
      writer.writerow(["text", "label"])
      writer.writerows(_reviews(rng, count, adjectives))
  return directory
