"""jieba's precise mode (HMM on), word for word, about 4x faster.

jieba.lcut(text) runs three stages per block of Chinese text, all in pure Python:
  1. the route: the most probable split into dictionary words (a DAG of the dictionary's words
     over the block and a dynamic programme over log frequencies);
  2. runs of single characters the route leaves are buffered; a buffer that is not itself a
     dictionary word goes to the HMM (finalseg) that finds unknown words;
  3. the HMM's Viterbi decode over the B/M/E/S states.
Stage 1 is the costly one, and it is pure dictionary arithmetic: rjieba (jieba-rs, compiled)
computes the same route from the same dictionary. Its HMM stage is not jieba's (it joins
"常在我" as 常在|我 where jieba's finalseg gives 常|在|我, and treats a buffer that is a
dictionary word differently), so only the route is taken from it: stages 2 and 3 are jieba's
code transcribed here, the Viterbi decode specialised to jieba's four states with jieba's order
of additions and its tie-breaking, and memoised (the buffers repeat).

Checked word for word against jieba.lcut on every line of the Chinese corpora and task data in
../shared/data (tests/pretraining/test_fast_jieba.py). Used by segmentation.JiebaSegmenter
when rjieba is installed and no user dictionary is given; otherwise jieba itself runs.
"""
import functools
import re

# jieba 0.42's patterns (jieba/__init__.py re_han_default, re_skip_default, and finalseg's).
_BLOCK = re.compile("([\u4E00-\u9FD5a-zA-Z0-9+#&\\._%\\-]+)")
_SKIP = re.compile("(\r\n|\\s)")
_HMM_HAN = re.compile("([\u4E00-\u9FD5]+)")
_HMM_SKIP = re.compile("([a-zA-Z0-9]+(?:\\.\\d+)?%?)")
_ENGLISH = re.compile("[a-zA-Z0-9]+")
_STATE_INDEX = {"B": 0, "M": 1, "E": 2, "S": 3}


def rjieba_available():
  try:
    import rjieba  # pylint: disable=import-outside-toplevel,unused-import
  except ImportError:
    return False
  return True


class FastJieba:
  """jieba.Tokenizer(...).lcut(text) for an initialised jieba tokenizer of the default dictionary.

  Args:
    tokenizer: the initialised jieba.Tokenizer whose output this reproduces (its FREQ table
      decides buffers, and it segments the rare block whose route rjieba cannot tell).
  """

  def __init__(self, tokenizer):
    import rjieba  # pylint: disable=import-outside-toplevel
    from jieba import finalseg  # pylint: disable=import-outside-toplevel
    self._tokenizer = tokenizer
    self._freq = tokenizer.FREQ
    self._route = rjieba.Jieba().cut
    self._force_split = finalseg.Force_Split_Words
    start, trans, emit = finalseg.start_P, finalseg.trans_P, finalseg.emit_P
    self._start = tuple(start[s] for s in "BMES")
    self._trans = (trans["E"]["B"], trans["S"]["B"], trans["M"]["M"], trans["B"]["M"],
                   trans["B"]["E"], trans["M"]["E"], trans["S"]["S"], trans["E"]["S"])
    self._emit = tuple(emit[s].get for s in "BMES")
    self._min_float = finalseg.MIN_FLOAT
    self._hmm = functools.lru_cache(maxsize=1 << 16)(self._hmm_words)

  def __call__(self, text):
    words = []
    for block in _BLOCK.split(text):
      if not block:
        continue
      if not _BLOCK.match(block):  # jieba: whitespace runs whole, every other character alone
        for part in _SKIP.split(block):
          if _SKIP.match(part):
            words.append(part)
          else:
            words.extend(part)
        continue
      mark = len(words)
      if not self._cut_block(block, words):
        del words[mark:]
        words.extend(self._tokenizer.lcut(block))
    return words

  def _cut_block(self, block, words):
    """jieba's Tokenizer.__cut_DAG over one block, the route from rjieba; False when the route
    cannot be read back from rjieba's output (then jieba segments the block)."""
    buffer = ""
    for word in self._route(block, False):
      if len(word) == 1:
        buffer += word
      elif _ENGLISH.fullmatch(word):
        # Without the HMM, jieba-rs (as jieba) joins consecutive single-character route steps
        # of letters and digits. A dictionary word of letters only would look the same; the
        # default dictionary has none, a user's might.
        if self._freq.get(word):
          return False
        buffer += word
      else:
        if buffer:
          self._flush(buffer, words)
          buffer = ""
        words.append(word)
    if buffer:
      self._flush(buffer, words)
    return True

  def _flush(self, buffer, words):
    if len(buffer) == 1:
      words.append(buffer)
    elif not self._freq.get(buffer):
      words.extend(self._hmm(buffer))
    else:
      words.extend(buffer)

  def _hmm_words(self, buffer):
    """jieba.finalseg.cut(buffer) as a tuple."""
    words = []
    for block in _HMM_HAN.split(buffer):
      if _HMM_HAN.match(block):
        for word in self._viterbi_words(block):
          if word in self._force_split:
            words.extend(word)
          else:
            words.append(word)
      else:
        words.extend(part for part in _HMM_SKIP.split(block) if part)
    return tuple(words)

  def _viterbi_words(self, obs):
    """finalseg.viterbi + finalseg.__cut: the words of the most probable B/M/E/S tagging."""
    e_b, e_m, e_e, e_s = self._emit
    t_eb, t_sb, t_mm, t_bm, t_be, t_me, t_ss, t_es = self._trans
    low = self._min_float
    char = obs[0]
    v_b = self._start[0] + e_b(char, low)
    v_m = self._start[1] + e_m(char, low)
    v_e = self._start[2] + e_e(char, low)
    v_s = self._start[3] + e_s(char, low)
    back = []
    for char in obs[1:]:
      em_b, em_m, em_e, em_s = e_b(char, low), e_m(char, low), e_e(char, low), e_s(char, low)
      # jieba: max((V[y0] + trans[y0][y] + emit, y0) for y0 in PrevStatus[y]), the sums in this
      # order; equal sums (common once an unseen character's MIN_FLOAT absorbs them) go to the
      # larger state letter.
      b_from_e, b_from_s = v_e + t_eb + em_b, v_s + t_sb + em_b
      m_from_m, m_from_b = v_m + t_mm + em_m, v_b + t_bm + em_m
      e_from_b, e_from_m = v_b + t_be + em_e, v_m + t_me + em_e
      s_from_s, s_from_e = v_s + t_ss + em_s, v_e + t_es + em_s
      prev_b = "S" if b_from_s >= b_from_e else "E"
      prev_m = "M" if m_from_m >= m_from_b else "B"
      prev_e = "M" if e_from_m >= e_from_b else "B"
      prev_s = "S" if s_from_s >= s_from_e else "E"
      v_b = max(b_from_e, b_from_s)
      v_m = max(m_from_m, m_from_b)
      v_e = max(e_from_b, e_from_m)
      v_s = max(s_from_s, s_from_e)
      back.append((prev_b, prev_m, prev_e, prev_s))
    state = "S" if v_s >= v_e else "E"
    tags = [state]
    for pointers in reversed(back):
      state = pointers[_STATE_INDEX[state]]
      tags.append(state)
    tags.reverse()
    words, begin, following = [], 0, 0
    for i, tag in enumerate(tags):
      if tag == "B":
        begin = i
      elif tag == "E":
        words.append(obs[begin:i + 1])
        following = i + 1
      elif tag == "S":
        words.append(obs[i])
        following = i + 1
    if following < len(obs):
      words.append(obs[following:])
    return words
