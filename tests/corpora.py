"""Text lines of the real corpora in ../shared/data, for line-by-line tokenizer comparisons."""
import functools
import json

from conftest import SHARED_DATA

UNCASED_VOCAB = "vocab/uncased_vocab.txt"
CHINESE_VOCAB = "vocab/chinese_vocab.txt"


def _plain(path):
  with open(path, "rb") as f:
    return [raw.decode("utf-8", "ignore").rstrip("\n") for raw in f]


def _squad(path):
  data = json.loads(open(path, encoding="utf-8").read())["data"]
  lines = []
  for article in data:
    for paragraph in article["paragraphs"]:
      lines.append(paragraph["context"])
      for qa in paragraph["qas"]:
        lines.append(qa["question"])
        lines.extend(a["text"] for a in qa.get("answers", []))
  return lines


def _json_lines(*keys):
  def read(path):
    lines = []
    for raw in open(path, encoding="utf-8"):
      if raw.strip():
        record = json.loads(raw)
        lines.extend(str(record[k]) for k in keys if k in record)
    return lines
  return read


def _conll(path):
  sentences, words = [], []
  for raw in open(path, encoding="utf-8"):
    parts = raw.split()
    if not parts:
      if words:
        sentences.append(" ".join(words))
      words = []
    elif parts[0] != "-DOCSTART-":
      words.append(parts[0])
  if words:
    sentences.append(" ".join(words))
  return sentences


# name: (file under ../shared/data, reader). English-language corpora, then Chinese ones.
ENGLISH = {
    "sample_text": ("pretrain_corpus/sample_text.txt", _plain),
    "wikitext2": ("english_corpus/wikitext-2_valid.txt", _plain),
    "wikitext2_sentences": ("english_corpus/wikitext-2_valid_sentences.txt", _plain),
    "mrpc_train": ("glue/MRPC/train.tsv", _plain),
    "mrpc_test": ("glue/MRPC/test.tsv", _plain),
    "sst2_dev": ("glue/SST-2/dev.tsv", _plain),
    "cola_dev": ("glue/CoLA/dev.tsv", _plain),
    "stsb_dev": ("glue/STS-B/dev.tsv", _plain),
    "rte_dev": ("glue/RTE/dev.tsv", _plain),
    "squad_dev": ("squad/expmrc-squad-dev.json", _squad),
    "conll2003_train": ("conll2003/train.txt", _conll),
}
CHINESE = {
    "clue_corpus_small": ("chinese_corpus/CLUECorpusSmall_bert_sampled.txt", _plain),
    "news_zh": ("chinese_corpus/news_zh_1.txt", _plain),
    "chnsenticorp_train": ("chnsenticorp/train.tsv", _plain),
    "chnsenticorp_test": ("chnsenticorp/test.tsv", _plain),
    "lcqmc_test": ("lcqmc/test.txt", _plain),
    "xnli_zh_test": ("xnli_zh/test.tsv", _plain),
    "tnews_train": ("tnews_fewclue/train_few_all.json", _json_lines("sentence", "keywords")),
    "cmrc2018_dev": ("cmrc2018/cmrc2018_dev.json", _squad),
    "drcd_dev": ("drcd/DRCD_dev.json", _squad),
    "cluener_train": ("cluener2020/train.json", _json_lines("text")),
}
ALL = {**ENGLISH, **CHINESE}

# The remaining text files of ../shared/data (compared by tests/test_tokenization.py), so that
# ALL and EXTRA together cover every text file there.
EXTRA = {
    "mrpc_dev": ("glue/MRPC/dev.tsv", _plain),
    "conll2003_testa": ("conll2003/eng.testa", _conll),
    "conll2003_valid": ("conll2003/valid.txt", _conll),
    "conll2003_test": ("conll2003/test.txt", _conll),
    "chnsenticorp_dev": ("chnsenticorp/dev.tsv", _plain),
    "lcqmc_dev": ("lcqmc/dev.txt", _plain),
    "xnli_zh_dev": ("xnli_zh/dev.tsv", _plain),
    "tnews_dev": ("tnews_fewclue/dev_few_all.json", _json_lines("sentence", "keywords")),
    "tnews_test": ("tnews_fewclue/test_public.json", _json_lines("sentence", "keywords")),
    "cmrc2018_trial": ("cmrc2018/cmrc2018_trial.json", _squad),
    "drcd_test": ("drcd/DRCD_test.json", _squad),
    "cluener_dev": ("cluener2020/dev.json", _json_lines("text")),
    "cluener_test": ("cluener2020/test.json", _json_lines("text")),
}

# (corpus, vocab, do_lower_case) settings compared line by line: English text with the uncased
# vocab lower-cased and not (the cased path on an uncased vocab still exercises every branch),
# Chinese text with the Chinese vocab, and each language with the other's vocab (mixed text,
# many [UNK]s and ## pieces).
SETTINGS = ([(name, UNCASED_VOCAB, True) for name in ENGLISH] +
            [(name, UNCASED_VOCAB, False) for name in ENGLISH] +
            [(name, CHINESE_VOCAB, True) for name in CHINESE] +
            [("clue_corpus_small", UNCASED_VOCAB, True), ("cmrc2018_dev", UNCASED_VOCAB, False),
             ("wikitext2_sentences", CHINESE_VOCAB, True), ("squad_dev", CHINESE_VOCAB, False)])


@functools.lru_cache(maxsize=None)
def corpus_lines(name):
  """All text lines of a corpus (None when its file is absent)."""
  relative, reader = ALL[name]
  path = SHARED_DATA / relative
  return tuple(reader(path)) if path.exists() else None


@functools.lru_cache(maxsize=None)
def full_tokenizer(vocab, do_lower_case):
  from bert_tf.tokenization import FullTokenizer
  return FullTokenizer(SHARED_DATA / vocab, do_lower_case=do_lower_case)


@functools.lru_cache(maxsize=None)
def full_ids(name, vocab, do_lower_case):
  """bert_tf FullTokenizer ids of every line, shared by the tokenizer test modules."""
  tokenizer = full_tokenizer(vocab, do_lower_case)
  return tuple(tuple(tokenizer.encode(line)) for line in corpus_lines(name))


def setting_id(setting):
  name, vocab, lower = setting
  return f"{name}-{vocab.split('/')[-1].split('_')[0]}-{'lower' if lower else 'cased'}"
