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
from finetuning.serving import save_server

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

  def _serve(self, question, context):
    s = self.settings
    seq = s.max_seq_length
    batch = tf.shape(context, out_type=tf.int64)[0]
    strings, token_row, token_first, _ = self._doc_tokens(context)
    ids, piece_start, piece_end = self.tokenizer.tokenize_with_char_offsets(strings)
    piece_token = ids.value_rowids()
    piece_row = tf.gather(token_row, piece_token)
    offset_in_row = tf.gather(token_first, piece_token)
    doc = tf.RaggedTensor.from_value_rowids(ids.flat_values, piece_row, nrows=batch)
    char_start = offset_in_row + piece_start.flat_values      # per piece, in its context
    char_end = offset_in_row + piece_end.flat_values
    doc_len = doc.row_lengths()
    query = self.tokenizer.tokenize_to_ids(question)[:, :s.max_query_length]
    query_len = query.row_lengths()

    # Windows (squad_features.window_starts): every `step` tokens until one reaches the end.
    max_tokens = seq - query_len - 3
    step = tf.minimum(max_tokens, s.doc_stride)
    extra = tf.maximum(doc_len - max_tokens, 0)
    num_windows = tf.where(doc_len == 0, tf.zeros_like(doc_len),
                           1 + (extra + step - 1) // step)
    window_row = tf.repeat(tf.range(batch), num_windows)
    window_index = tf.ragged.range(num_windows).flat_values     # k-th window of its example
    num_all = tf.shape(window_row, out_type=tf.int64)[0]
    w_start = window_index * tf.gather(step, window_row)
    w_len = tf.minimum(tf.gather(doc_len, window_row) - w_start,
                       tf.gather(max_tokens, window_row))
    q = tf.gather(query_len, window_row)[:, None]
    pos = tf.range(seq, dtype=tf.int64)[None, :]
    offset = q + 2
    in_query = (pos >= 1) & (pos <= q)
    in_doc = (pos >= offset) & (pos < offset + w_len[:, None])
    rows = tf.broadcast_to(window_row[:, None], tf.shape(in_doc, out_type=tf.int64))
    query_dense = query.to_tensor(0)
    query_dense = tf.concat([query_dense, tf.zeros([batch, 1], tf.int64)], axis=1)
    query_pos = tf.broadcast_to(tf.clip_by_value(
        pos - 1, 0, tf.shape(query_dense, out_type=tf.int64)[1] - 1), tf.shape(rows, tf.int64))
    query_at = tf.gather_nd(query_dense, tf.stack([rows, query_pos], axis=-1))
    token_index = w_start[:, None] + pos - offset               # in the example's pieces
    piece = tf.gather(doc.row_starts(), rows) + tf.clip_by_value(
        token_index, 0, tf.maximum(tf.gather(doc_len, rows) - 1, 0))
    num_pieces = tf.shape(ids.flat_values, out_type=tf.int64)[0]
    doc_at = tf.gather(tf.concat([ids.flat_values, [0]], 0), tf.minimum(piece, num_pieces))
    sep = (pos == q + 1) | (pos == offset + w_len[:, None])
    input_ids = tf.where(pos == 0, tf.cast(self.tokenizer.cls_id, tf.int64),
                         tf.where(in_query, query_at, tf.where(
                             in_doc, doc_at, tf.where(sep, tf.cast(self.tokenizer.sep_id,
                                                                   tf.int64), 0))))
    input_mask = pos <= offset + w_len[:, None]
    segment_ids = (pos >= offset) & input_mask
    outputs = self.model({"input_ids": tf.cast(input_ids, tf.int32),
                          "input_mask": tf.cast(input_mask, tf.int32),
                          "segment_ids": tf.cast(segment_ids, tf.int32)}, training=False)
    start_logits = tf.cast(outputs["start_logits"], tf.float64)
    end_logits = tf.cast(outputs["end_logits"], tf.float64)

    # Max context (squad_features.max_context_windows): the window with the best
    # min(left, right) + 0.01 * length, the first on ties.
    left = tf.cast(token_index - w_start[:, None], tf.float64)
    right = tf.cast(w_start[:, None] + w_len[:, None] - 1 - token_index, tf.float64)
    context_score = tf.minimum(left, right) + 0.01 * tf.cast(w_len[:, None], tf.float64)
    segment = tf.where(in_doc, piece, num_pieces)                # padding -> a spare segment
    best = tf.math.unsorted_segment_max(context_score, segment, num_pieces + 1)
    is_best = in_doc & (context_score == tf.gather(best, segment))
    window_id = tf.broadcast_to(tf.range(num_all)[:, None], tf.shape(in_doc, out_type=tf.int64))
    first_best = tf.math.unsorted_segment_min(tf.where(is_best, window_id, num_all), segment,
                                              num_pieces + 1)
    is_max = is_best & (window_id == tf.gather(first_best, segment))

    # Candidates: the n best starts x the n best ends of each window.
    n = min(s.n_best_size, seq)
    start_values, starts = tf.math.top_k(start_logits, n)
    end_values, ends = tf.math.top_k(end_logits, n)
    starts, ends = tf.cast(starts, tf.int64), tf.cast(ends, tf.int64)
    valid = (tf.gather(is_max, starts, batch_dims=1)[:, :, None] &
             tf.gather(in_doc, ends, batch_dims=1)[:, None, :] &
             (ends[:, None, :] >= starts[:, :, None]) &
             (ends[:, None, :] - starts[:, :, None] + 1 <= s.max_answer_length))
    scores = start_values[:, :, None] + end_values[:, None, :]
    scores = tf.reshape(tf.where(valid, scores, -float("inf")), [-1, n * n])
    # Each window's best pair, then each example's best window (the first on ties, as the
    # stable sort of squad_postprocess); examples without a valid span take the padding row.
    window_best = tf.reduce_max(scores, axis=1)
    choice = tf.argmax(scores, axis=1)
    start_piece = tf.gather(piece, tf.gather(starts, choice // n, batch_dims=1), batch_dims=1)
    end_piece = tf.gather(piece, tf.gather(ends, choice % n, batch_dims=1), batch_dims=1)
    example_best = tf.math.unsorted_segment_max(window_best, window_row, batch)
    # (a segment max over only -inf values is the lowest finite float64, not -inf)
    found = tf.math.unsorted_segment_max(tf.cast(tf.math.is_finite(window_best), tf.int32),
                                         window_row, batch) > 0
    is_top = window_best == tf.gather(example_best, window_row)
    chosen = tf.math.unsorted_segment_min(tf.where(is_top, tf.range(num_all), num_all),
                                          window_row, batch)
    chosen = tf.where(found, chosen, num_all)

    def pick(values, index):
      return tf.gather(tf.concat([values, tf.zeros([1], values.dtype)], 0), index)

    start_char = pick(char_start, pick(start_piece, chosen))
    end_char = pick(char_end, pick(end_piece, chosen))
    start_char = tf.where(found, start_char, 0)
    end_char = tf.where(found, end_char, 0)
    result = {"score": tf.cast(tf.where(found, example_best, tf.float32.min), tf.float32)}
    if s.version_2_with_negative:
      # float32 sums, as squad_postprocess adds the numpy logits
      null = tf.math.unsorted_segment_min(
          tf.cast(outputs["start_logits"][:, 0] + outputs["end_logits"][:, 0], tf.float64),
          window_row, batch)
      null = tf.where(num_windows > 0, null, 0.0)
      no_answer = ~found | (null - example_best > s.null_score_diff_threshold)
      found = found & ~no_answer
      start_char = tf.where(found, start_char, 0)
      end_char = tf.where(found, end_char, 0)
      result["no_answer_score"] = tf.cast(null, tf.float32)
    result["start_char"] = tf.cast(start_char, tf.int32)
    result["end_char"] = tf.cast(end_char, tf.int32)
    result["answer"] = tf.strings.substr(context, start_char, end_char - start_char,
                                         unit="UTF8_CHAR")
    return result


def export_reader(export_dir, model, tokenizer, settings):
  """Writes the SavedModel (signature `serving_default`: question, context -> answer, start_char,
  end_char, score [, no_answer_score]) and a `task.json` describing it."""
  outputs = ["answer", "start_char", "end_char", "score"]
  if settings.version_2_with_negative:
    outputs.append("no_answer_score")
  description = {"task_name": "squad", "inputs": ["question", "context"], "outputs": outputs,
                 "do_lower_case": bool(tokenizer.do_lower_case), **dataclasses.asdict(settings)}
  return save_server(ReaderServer(model, tokenizer, settings), export_dir, description)
