"""jieba's precise mode (HMM on), word for word, about 5x faster.

jieba.lcut(text) runs three stages per block of Chinese text, all in pure Python:
  1. the route: the most probable split into dictionary words (a DAG of the dictionary's words
     over the block and a dynamic programme over log frequencies);
  2. runs of single characters the route leaves are buffered; a buffer that is not itself a
     dictionary word goes to the HMM (finalseg) that finds unknown words;
  3. the HMM's Viterbi decode over the B/M/E/S states.
Stage 1 is the costly one, and it is pure dictionary arithmetic: rjieba (jieba-rs, compiled)
computes the same route from the same dictionary. Its HMM stage is not jieba's (it joins
"常在我" as 常在|我 where jieba's finalseg gives 常|在|我, and treats a buffer that is a
dictionary word differently), so only the route and the dictionary lookups are taken from it:
stages 2 and 3 are jieba's code transcribed here, the Viterbi decode specialised to jieba's four
states with jieba's order of additions and its tie-breaking, and memoised (buffers repeat).

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
_ASCII_BLOCK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+#&._%-")
# Characters jieba-rs's block pattern counts as Chinese and jieba's does not (CJK extensions and
# compatibility ideographs, U+9FD6-U+9FFF): a line holding one is cut block by block with
# jieba's blocks; any other line goes to rjieba whole.
_OTHER_HAN = re.compile("[\u3400-\u4DBF\u9FD6-\u9FFF\uF900-\uFAFF\U00020000-\U0003FFFF]")
_B, _M, _E, _S = 0, 1, 2, 3


def rjieba_available():
  try:
    import rjieba  # pylint: disable=import-outside-toplevel,unused-import
  except ImportError:
    return False
  return True


def _is_block_word(word):
  """Is this word from one of jieba's Chinese blocks (rather than a character between them)?"""
  char = word[0]
  return "\u4e00" <= char <= "\u9fd5" or char in _ASCII_BLOCK


class FastJieba:
  """jieba.Tokenizer().lcut(text) with jieba's default dictionary.

  Args:
    tokenizer: a jieba.Tokenizer of the default dictionary (initialised on first use), which
      segments the rare block whose route cannot be read back from rjieba's output.
  """

  def __init__(self, tokenizer):
    import rjieba  # pylint: disable=import-outside-toplevel
    from jieba import finalseg  # pylint: disable=import-outside-toplevel
    self._tokenizer = tokenizer
    route = rjieba.Jieba()  # a private one, as jieba's: rjieba.add_word elsewhere leaves it alone
    self._route = route.cut
    # has_word(w) == bool(jieba's FREQ.get(w)) for every entry of jieba's table (prefix entries
    # have frequency 0); it spares loading jieba's 500k-entry table in every worker.
    self._in_dictionary = route.has_word
    self._force_split = finalseg.Force_Split_Words
    low = finalseg.MIN_FLOAT
    emit = finalseg.emit_P
    self._emit = {char: tuple(emit[s].get(char, low) for s in "BMES")
                  for char in set().union(*(emit[s] for s in "BMES"))}
    self._unseen = (low,) * 4
    self._start = tuple(finalseg.start_P[s] for s in "BMES")
    trans = finalseg.trans_P
    self._trans = (trans["E"]["B"], trans["S"]["B"], trans["M"]["M"], trans["B"]["M"],
                   trans["B"]["E"], trans["M"]["E"], trans["S"]["S"], trans["E"]["S"])
    self._hmm = functools.lru_cache(maxsize=1 << 16)(self._hmm_words)

  def __call__(self, text):
    if not _OTHER_HAN.search(text):
      words = []
      if self._cut_route(self._route(text, False), words):
        return words
    words = []
    for block in _BLOCK.split(text):
      if not block:
        continue
      if not _BLOCK.match(block):  # jieba: a whitespace character alone, every other alone
        for part in _SKIP.split(block):
          if _SKIP.match(part):
            words.append(part)
          else:
            words.extend(part)
        continue
      mark = len(words)
      if not self._cut_route(self._route(block, False), words):
        del words[mark:]
        words.extend(self._tokenizer.lcut(block))
    return words

  def _cut_route(self, route, words):
    """jieba's Tokenizer.__cut_DAG over rjieba's route (HMM off) of a text; False when the route
    cannot be read back from it (then jieba segments that block)."""
    buffer = ""
    for word in route:
      if _is_block_word(word):
        if len(word) == 1:
          buffer += word
          continue
        if word.isascii() and word.isalnum():
          # Without the HMM, jieba-rs (as jieba) joins consecutive single-character route
          # steps of letters and digits. A dictionary word of letters only would look the
          # same; the default dictionary has none, a user's might.
          if self._in_dictionary(word):
            return False
          buffer += word
          continue
      if buffer:  # a multi-character route word, or a character between jieba's blocks
        self._flush(buffer, words)
        buffer = ""
      words.append(word)
    if buffer:
      self._flush(buffer, words)
    return True

  def _flush(self, buffer, words):
    if len(buffer) == 1:
      words.append(buffer)
    elif not self._in_dictionary(buffer):
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
    t_eb, t_sb, t_mm, t_bm, t_be, t_me, t_ss, t_es = self._trans
    emission, unseen = self._emit.get, self._unseen
    e_b, e_m, e_e, e_s = emission(obs[0], unseen)
    v_b, v_m, v_e, v_s = (self._start[0] + e_b, self._start[1] + e_m, self._start[2] + e_e,
                          self._start[3] + e_s)
    back = []
    for char in obs[1:]:
      e_b, e_m, e_e, e_s = emission(char, unseen)
      # jieba: max((V[y0] + trans[y0][y] + emit, y0) for y0 in PrevStatus[y]), summed in this
      # order; equal sums (common once an unseen character's MIN_FLOAT absorbs them) go to the
      # larger state letter (S > M > E > B).
      b_from_e, b_from_s = v_e + t_eb + e_b, v_s + t_sb + e_b
      m_from_m, m_from_b = v_m + t_mm + e_m, v_b + t_bm + e_m
      e_from_b, e_from_m = v_b + t_be + e_e, v_m + t_me + e_e
      s_from_s, s_from_e = v_s + t_ss + e_s, v_e + t_es + e_s
      if b_from_s >= b_from_e:
        v_b, prev_b = b_from_s, _S
      else:
        v_b, prev_b = b_from_e, _E
      if m_from_m >= m_from_b:
        v_m, prev_m = m_from_m, _M
      else:
        v_m, prev_m = m_from_b, _B
      if e_from_m >= e_from_b:
        v_e, prev_e = e_from_m, _M
      else:
        v_e, prev_e = e_from_b, _B
      if s_from_s >= s_from_e:
        v_s, prev_s = s_from_s, _S
      else:
        v_s, prev_s = s_from_e, _E
      back.append((prev_b, prev_m, prev_e, prev_s))
    # The last tag is E or S, so a word ends there; another ends at every earlier E or S (the
    # transitions allow only B/S after E/S and M/E after B/M, so the tags read as words).
    state = _S if v_s >= v_e else _E
    ends = [len(obs)]
    position = len(obs) - 1
    for pointers in reversed(back):
      state = pointers[state]
      if state >= _E:
        ends.append(position)
      position -= 1
    ends.append(0)
    ends.reverse()
    return [obs[ends[i]:ends[i + 1]] for i in range(len(ends) - 1)]
