"""SQuAD-layout reading comprehension data: SQuAD v1.1 / v2.0, CMRC 2018 (simplified Chinese)
and DRCD (traditional Chinese), read into examples as the original run_squad.py does.

The context is split into "doc tokens" at whitespace (as the original) and, in addition, every
CJK character is a token of its own. Chinese contexts have no whitespace: the original would make
a whole paragraph one token and lose the answer positions; per-character tokens map answer
character offsets to tokens exactly. English text has no CJK characters, so its tokens are the
original's. Each token remembers whether whitespace preceded it, so joining tokens gives the
context's own spacing ("1895 年" stays with its space, "红楼梦" without).
"""
import dataclasses

from absl import logging

from bert_tf.tokenization import _is_chinese_char, whitespace_tokenize
from finetuning import squad_metrics
from finetuning.tasks.readers import RowError, read_json


@dataclasses.dataclass
class SquadExample:
  qas_id: str
  question_text: str
  doc_tokens: list
  spaced: list                  # spaced[i]: whitespace precedes doc_tokens[i]
  paragraph_index: int          # examples of one paragraph share its doc tokens
  orig_answer_text: str = None
  start_position: int = None    # doc-token index of the answer's first character (training)
  end_position: int = None
  is_impossible: bool = False


def is_whitespace(char):
  return char in " \t\r\n" or ord(char) == 0x202F


def split_context(text, split_cjk=True):
  """(doc tokens, spaced flags, char_to_word_offset) of a context; split_cjk=False gives the
  original's tokens (split at " \\t\\r\\n\\u202f" only). Ours also split at every Unicode space
  (no-break and ideographic spaces are common in the Chinese sets)."""
  tokens, spaced, char_to_word = [], [], []
  boundary, after_space = True, True
  for char in text:
    if (char.isspace() if split_cjk else is_whitespace(char)):
      boundary = after_space = True
    elif split_cjk and _is_chinese_char(ord(char)):
      tokens.append(char)
      spaced.append(after_space)
      boundary, after_space = True, False
    elif boundary:
      tokens.append(char)
      spaced.append(after_space)
      boundary = after_space = False
    else:
      tokens[-1] += char
    char_to_word.append(len(tokens) - 1)
  return tokens, spaced, char_to_word


def join_tokens(tokens, spaced):
  """Doc tokens back to text, a space wherever the context had whitespace."""
  return "".join((" " if i and flag else "") + token
                 for i, (token, flag) in enumerate(zip(tokens, spaced)))


@dataclasses.dataclass
class ReadReport:
  examples: int = 0
  unrecoverable: list = dataclasses.field(default_factory=list)   # (qas_id, why)


def read_squad_examples(path, is_training, version_2_with_negative=False, split_cjk=True):
  """Examples of a SQuAD-layout JSON file.

  Training examples carry the answer's doc-token span (the first answer when several are
  given). split_cjk=False splits contexts at whitespace only, exactly as the original (for
  English the only difference is around the odd CJK character in a context: the same WordPiece
  tokens, mapped to finer doc tokens). An answer whose text cannot be recovered from the context at its offset is skipped
  with a warning, as the original does; the report lists them.

  Returns:
    (list of SquadExample, ReadReport).
  """
  data = read_json(path)
  if not isinstance(data, dict) or "data" not in data:
    raise RowError(f"{path}: expected a SQuAD-layout JSON object with a 'data' list")
  examples, report = [], ReadReport()
  paragraph_index = -1
  for a, article in enumerate(_required(data, "data", list, path)):
    for p, paragraph in enumerate(_required(article, "paragraphs", list, f"{path}: data[{a}]")):
      paragraph_index += 1
      where = f"{path}: data[{a}].paragraphs[{p}]"
      context = _required(paragraph, "context", str, where)
      tokens, spaced, char_to_word = split_context(context, split_cjk)
      for q, qa in enumerate(_required(paragraph, "qas", list, where)):
        qas_id = str(_required(qa, "id", (str, int), f"{where}.qas[{q}]"))
        question = _required(qa, "question", str, f"{path}: question {qas_id}")
        example = SquadExample(qas_id, question, tokens, spaced, paragraph_index)
        if is_training:
          example.is_impossible = bool(version_2_with_negative and qa.get("is_impossible", False))
          if example.is_impossible or not qa.get("answers"):
            if not example.is_impossible:
              report.unrecoverable.append((example.qas_id, "no answer given"))
              continue
            example.start_position = example.end_position = -1
            example.orig_answer_text = ""
          else:
            why = _locate_answer(example, _checked_answer(qa["answers"][0], path, qas_id),
                                 context, char_to_word)
            if why:
              report.unrecoverable.append((example.qas_id, why))
              continue
        examples.append(example)
  report.examples = len(examples)
  if report.unrecoverable:
    logging.warning("%s: skipped %d answers that cannot be recovered from their context, e.g. %s",
                    path, len(report.unrecoverable), report.unrecoverable[:3])
  return examples, report


def _required(obj, key, kind, where):
  """obj[key], or a RowError naming where it is missing and the type expected."""
  if not isinstance(obj, dict) or key not in obj:
    raise RowError(f"{where}: no '{key}' field (expected the SQuAD layout: data[].paragraphs[]"
                   ".context/qas[].id/question/answers[])")
  value = obj[key]
  if not isinstance(value, kind) or isinstance(value, bool):
    names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
    raise RowError(f"{where}: field '{key}' is {type(value).__name__} {value!r:.40}; expected {names}")
  return value


def _checked_answer(answer, path, qas_id):
  where = f"{path}: question {qas_id}: answers[0]"
  text = _required(answer, "text", str, where)
  start = _required(answer, "answer_start", (int, str), where)
  try:
    start = int(start)
  except ValueError:
    raise RowError(f"{where}: field 'answer_start' is {start!r}; expected a character offset "
                   "(a whole number)") from None
  return {"text": text, "answer_start": start}


def _locate_answer(example, answer, context, char_to_word):
  """Sets the answer's doc-token span; returns why it cannot be recovered, or None."""
  text, start = answer["text"], int(answer["answer_start"])
  if text and context[start:start + len(text)] != text:
    # Off-by-a-few offsets are common in the Chinese sets (CMRC 2018, DRCD): take the occurrence
    # of the answer text nearest to the given offset, where there is one.
    found = list(_occurrences(context, text))
    if found:
      start = min(found, key=lambda i: abs(i - start))
  end = start + len(text) - 1
  if not text or start < 0 or end >= len(context):
    return f"answer_start {start} of {text!r} lies outside the context"
  example.orig_answer_text = text
  example.start_position, example.end_position = char_to_word[start], char_to_word[end]
  actual = join_tokens(example.doc_tokens[example.start_position:example.end_position + 1],
                       example.spaced[example.start_position:example.end_position + 1])
  cleaned = " ".join(whitespace_tokenize(text))
  if actual.find(cleaned) == -1:
    return f"{cleaned!r} not found in {actual!r}"
  return None


def _occurrences(text, sub):
  start = text.find(sub)
  while start != -1:
    yield start
    start = text.find(sub, start + 1)


def gold_answers(path):
  """{qas_id: [answer texts]} of a SQuAD-layout file (for the evaluation)."""
  return squad_metrics.answers_by_id(read_json(path))
