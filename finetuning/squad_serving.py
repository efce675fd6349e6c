"""SavedModel export of a fine-tuned reading-comprehension model (run_squad) that takes a raw
question and context and returns the answer: the context split into doc tokens, WordPiece, the
sliding windows, the model and the best-span search all run inside the graph.

    export_reader("out/saved_model", model, FastTokenizer(vocab), settings)
    served = tf.saved_model.load("out/saved_model")
    served.signatures["serving_default"](question=tf.constant([...]), context=tf.constant([...]))
    # -> {"answer": [n] strings, "start_char", "end_char": [n] int32, "score": [n] float32,
    #     and with SQuAD 2.0 "no_answer_score"}

The steps are those of squad_features and squad_postprocess: doc tokens at whitespace (and each
CJK character with split_cjk_characters), the question's first max_query_length tokens, windows
of max_seq_length - len(question) - 3 tokens every doc_stride tokens, a span starting in the
window where its first token has the most context, start and end among the window's
n_best_size best logits, end not before start, at most max_answer_length tokens; the best
start_logit + end_logit over all windows wins (SQuAD 2.0: no answer when the smallest [CLS]
score minus that exceeds null_score_diff_threshold).

The answer is context[start_char:end_char], the context's own characters, where the Python path
rebuilds the text with get_final_text: the two agree except that the served answer keeps the
context's whitespace between words (get_final_text joins doc tokens with one space) and, where
normalization changes a doc token's character count, the served span covers that whole doc
token (FastTokenizer.tokenize_with_char_offsets).
"""
import dataclasses

import tensorflow as tf

from bert_tf.tokenization import CJK_RANGES
from finetuning.serving import save_atomically

_SQUAD_WHITESPACE = (0x20, 0x9, 0xD, 0xA, 0x202F)   # finetuning.tasks.squad.is_whitespace
_PYTHON_SPACES = tuple(c for c in range(0x110000) if chr(c).isspace())   # str.isspace


@dataclasses.dataclass
class ReaderSettings:
  """run_squad's prediction flags, which the export keeps."""
  max_seq_length: int = 384
  doc_stride: int = 128
  max_query_length: int = 64
  n_best_size: int = 20
  max_answer_length: int = 30
  version_2_with_negative: bool = False
  null_score_diff_threshold: float = 0.0
  split_cjk_characters: bool = True

  def __post_init__(self):
    if self.max_seq_length <= self.max_query_length + 3:
      raise ValueError(f"max_seq_length={self.max_seq_length} leaves no room for the context "
                       f"after max_query_length={self.max_query_length} + 3")


def _in_set(codes, values):
  return tf.reduce_any(codes[:, None] == tf.constant(values, tf.int32)[None, :], axis=1)


def _is_cjk(codes):
  return tf.reduce_any(tf.stack([(codes >= lo) & (codes <= hi) for lo, hi in CJK_RANGES]), 0)


class ReaderServer(tf.Module):
  """(question, context) raw strings -> answer span. Holds the model and the FastTokenizer."""

  def __init__(self, model, tokenizer, settings):
    super().__init__(name="bert_reader_server")
    self.model, self.tokenizer, self.settings = model, tokenizer, settings
    text = tf.TensorSpec([None], tf.string)
    self.serve = tf.function(self._serve, input_signature=[text, text])

  def _doc_tokens(self, context):
    """Doc tokens of every context, flat: (strings, row, first character, end character)."""
    codes = tf.strings.unicode_decode(context, "UTF-8")
    flat = codes.flat_values
    position = tf.range(tf.shape(flat, out_type=tf.int64)[0])
    row = codes.value_rowids()
    first_in_row = position == tf.gather(codes.row_starts(), row)
    split_cjk = self.settings.split_cjk_characters
    space = _in_set(flat, _PYTHON_SPACES if split_cjk else _SQUAD_WHITESPACE)
    cjk = _is_cjk(flat) if split_cjk else tf.zeros_like(space)
    boundary_after = space | cjk                      # a token ends after this character
    previous = tf.concat([[True], boundary_after[:-1]], axis=0)
    starts = ~space & (first_in_row | previous | cjk)
    token = tf.cumsum(tf.cast(starts, tf.int64)) - 1
    num_tokens = tf.reduce_sum(tf.cast(starts, tf.int64))
    in_token = tf.where(~space)[:, 0]
    token_first = tf.boolean_mask(position, starts)
    token_end = tf.math.unsorted_segment_max(tf.gather(position, in_token) + 1,
                                             tf.gather(token, in_token), num_tokens)
    token_row = tf.gather(row, token_first)
    row_start = tf.gather(codes.row_starts(), token_row)
    first, end = token_first - row_start, token_end - row_start
    strings = tf.strings.substr(tf.gather(context, token_row), first, end - first,
                                unit="UTF8_CHAR")
    return strings, token_row, first, end

  def _context_pieces(self, context):
    """WordPiece ids of the contexts [batch, (pieces)] and each piece's character span."""
    strings, token_row, token_first, _ = self._doc_tokens(context)
    ids, piece_start, piece_end = self.tokenizer.tokenize_with_char_offsets(strings)
    piece_token = ids.value_rowids()
    offset_in_row = tf.gather(token_first, piece_token)
    doc = tf.RaggedTensor.from_value_rowids(ids.flat_values, tf.gather(token_row, piece_token),
                                            nrows=tf.shape(context, out_type=tf.int64)[0])
    return doc, offset_in_row + piece_start.flat_values, offset_in_row + piece_end.flat_values

  def _windows(self, doc, query):
    """squad_features' windows and their model inputs, all examples' windows in one batch.

    Returns a dict: row (the example of each window) and count (windows per example), [W];
    in_doc (a context token), piece (its flat index in `doc`) [W, max_seq_length]; inputs.
    """
    s, seq = self.settings, self.settings.max_seq_length
    doc_len, query_len = doc.row_lengths(), query.row_lengths()
    max_tokens = seq - query_len - 3
    step = tf.minimum(max_tokens, s.doc_stride)        # window_starts: until one reaches the end
    count = tf.where(doc_len == 0, tf.zeros_like(doc_len),
                     1 + (tf.maximum(doc_len - max_tokens, 0) + step - 1) // step)
    row = tf.repeat(tf.range(tf.shape(doc_len, out_type=tf.int64)[0]), count)
    start = tf.ragged.range(count).flat_values * tf.gather(step, row)
    length = tf.minimum(tf.gather(doc_len, row) - start, tf.gather(max_tokens, row))[:, None]
    q = tf.gather(query_len, row)[:, None]
    pos = tf.range(seq, dtype=tf.int64)[None, :]
    offset = q + 2                                      # [CLS] question [SEP]
    in_doc = (pos >= offset) & (pos < offset + length)
    rows = tf.broadcast_to(row[:, None], tf.shape(in_doc, out_type=tf.int64))
    token_index = start[:, None] + pos - offset        # among the example's pieces
    piece = tf.gather(doc.row_starts(), rows) + tf.clip_by_value(
        token_index, 0, tf.maximum(tf.gather(doc_len, rows) - 1, 0))
    num_pieces = tf.shape(doc.flat_values, out_type=tf.int64)[0]
    doc_at = tf.gather(tf.concat([doc.flat_values, [0]], 0), tf.minimum(piece, num_pieces))
    query_dense = tf.concat([query.to_tensor(0), tf.zeros_like(query_len)[:, None]], axis=1)
    query_pos = tf.broadcast_to(tf.clip_by_value(
        pos - 1, 0, tf.shape(query_dense, out_type=tf.int64)[1] - 1), tf.shape(rows, tf.int64))
    query_at = tf.gather_nd(query_dense, tf.stack([rows, query_pos], axis=-1))
    cls, sep = (tf.constant(i, tf.int64) for i in (self.tokenizer.cls_id, self.tokenizer.sep_id))
    input_ids = tf.where(pos == 0, cls, tf.where(
        (pos >= 1) & (pos <= q), query_at, tf.where(
            in_doc, doc_at, tf.where((pos == q + 1) | (pos == offset + length), sep, 0))))
    input_mask = pos <= offset + length
    segment_ids = (pos >= offset) & input_mask
    # Max context (squad_features.max_context_windows): the window with the best
    # min(left, right) + 0.01 * length for the token, the first on ties.
    context_score = tf.cast(tf.minimum(token_index - start[:, None],
                                       start[:, None] + length - 1 - token_index), tf.float64)
    context_score += 0.01 * tf.cast(length, tf.float64)
    segment = tf.where(in_doc, piece, num_pieces)      # padding -> a spare segment
    best = tf.math.unsorted_segment_max(context_score, segment, num_pieces + 1)
    is_best = in_doc & (context_score == tf.gather(best, segment))
    num_windows = tf.shape(row, out_type=tf.int64)[0]
    window = tf.broadcast_to(tf.range(num_windows)[:, None], tf.shape(in_doc, out_type=tf.int64))
    first_best = tf.math.unsorted_segment_min(tf.where(is_best, window, num_windows), segment,
                                              num_pieces + 1)
    return {"row": row, "count": count, "in_doc": in_doc, "piece": piece,
            "is_max_context": is_best & (window == tf.gather(first_best, segment)),
            "inputs": {"input_ids": tf.cast(input_ids, tf.int32),
                       "input_mask": tf.cast(input_mask, tf.int32),
                       "segment_ids": tf.cast(segment_ids, tf.int32)}}

  def _best_spans(self, windows, start_logits, end_logits, batch):
    """squad_postprocess' best span of each example: (found [batch], score [batch] float64,
    first piece, last piece)."""
    s = self.settings
    n = min(s.n_best_size, s.max_seq_length)
    # Candidates: the n best starts x the n best ends of each window (float64 sums, as Python),
    # ranked among the real tokens only (squad_postprocess: padding logits are not computed).
    real = windows["inputs"]["input_mask"] > 0
    start_values, starts = tf.math.top_k(
        tf.where(real, tf.cast(start_logits, tf.float64), -float("inf")), n)
    end_values, ends = tf.math.top_k(
        tf.where(real, tf.cast(end_logits, tf.float64), -float("inf")), n)
    starts, ends = tf.cast(starts, tf.int64), tf.cast(ends, tf.int64)
    valid = (tf.gather(windows["is_max_context"], starts, batch_dims=1)[:, :, None] &
             tf.gather(windows["in_doc"], ends, batch_dims=1)[:, None, :] &
             (ends[:, None, :] >= starts[:, :, None]) &
             (ends[:, None, :] - starts[:, :, None] + 1 <= s.max_answer_length))
    scores = start_values[:, :, None] + end_values[:, None, :]
    scores = tf.reshape(tf.where(valid, scores, -float("inf")), [-1, n * n])
    # Each window's best pair, then each example's best window (the first on ties, as the
    # stable sort of squad_postprocess); examples without a valid span take a padding row.
    window_best = tf.reduce_max(scores, axis=1)
    choice = tf.argmax(scores, axis=1)
    piece = windows["piece"]
    start_piece = tf.gather(piece, tf.gather(starts, choice // n, batch_dims=1), batch_dims=1)
    end_piece = tf.gather(piece, tf.gather(ends, choice % n, batch_dims=1), batch_dims=1)
    row = windows["row"]
    best = tf.math.unsorted_segment_max(window_best, row, batch)
    # (a segment max over only -inf values is the lowest finite float64, not -inf)
    found = tf.math.unsorted_segment_max(tf.cast(tf.math.is_finite(window_best), tf.int32),
                                         row, batch) > 0
    num_windows = tf.shape(row, out_type=tf.int64)[0]
    chosen = tf.math.unsorted_segment_min(
        tf.where(window_best == tf.gather(best, row), tf.range(num_windows), num_windows),
        row, batch)
    chosen = tf.where(found, chosen, num_windows)
    return found, best, _pick(start_piece, chosen), _pick(end_piece, chosen)

  def _serve(self, question, context):
    s = self.settings
    batch = tf.shape(context, out_type=tf.int64)[0]
    doc, char_start, char_end = self._context_pieces(context)
    query = self.tokenizer.tokenize_to_ids(question)[:, :s.max_query_length]
    windows = self._windows(doc, query)
    outputs = self.model(windows["inputs"], training=False)
    found, best, start_piece, end_piece = self._best_spans(
        windows, outputs["start_logits"], outputs["end_logits"], batch)
    result = {"score": tf.cast(tf.where(found, best, tf.float32.min), tf.float32)}
    if s.version_2_with_negative:
      # float32 sums, as squad_postprocess adds the numpy logits
      null = tf.math.unsorted_segment_min(
          tf.cast(outputs["start_logits"][:, 0] + outputs["end_logits"][:, 0], tf.float64),
          windows["row"], batch)
      null = tf.where(windows["count"] > 0, null, 0.0)
      found &= null - best <= s.null_score_diff_threshold
      result["no_answer_score"] = tf.cast(null, tf.float32)
    start_char = tf.where(found, _pick(char_start, start_piece), 0)
    end_char = tf.where(found, _pick(char_end, end_piece), 0)
    result["start_char"] = tf.cast(start_char, tf.int32)
    result["end_char"] = tf.cast(end_char, tf.int32)
    result["answer"] = tf.strings.substr(context, start_char, end_char - start_char,
                                         unit="UTF8_CHAR")
    return result


def _pick(values, index):
  """values[index], where index len(values) (a padding row) gives 0."""
  return tf.gather(tf.concat([values, tf.zeros([1], values.dtype)], 0), index)


def export_reader(export_dir, model, tokenizer, settings):
  """Writes the SavedModel (signature `serving_default`: question, context -> answer, start_char,
  end_char, score [, no_answer_score]) and a `task.json` describing it."""
  outputs = ["answer", "start_char", "end_char", "score"]
  if settings.version_2_with_negative:
    outputs.append("no_answer_score")
  description = {"task_name": "squad", "inputs": ["question", "context"], "outputs": outputs,
                 "do_lower_case": bool(tokenizer.do_lower_case), **dataclasses.asdict(settings)}
  server = ReaderServer(model, tokenizer, settings)
  return save_atomically(server, export_dir, {"serving_default": server.serve}, description)
