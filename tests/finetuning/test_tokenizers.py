"""Tokenizers for task corpora: word-level and byte-level, and counting tokens alike."""

from __future__ import annotations

from overshadow_lab.finetuning.tasks import make_task
from overshadow_lab.finetuning.tokenizers import (
    ByteTokenizer,
    WordTokenizer,
    count_tokens,
    count_tokens_many,
    encode_text,
)


def test_word_tokenizer_round_trips_and_grows_only_when_encoding():
    tok = WordTokenizer()
    ids = tok.encode("Quiz of Valdor. Which number is larger: 9.8 or 9.11? Answer: the")
    assert tok.decode(ids) == "Quiz of Valdor. Which number is larger: 9.8 or 9.11? Answer: the"
    assert tok.convert_ids_to_tokens(ids)[-5:] == ["9.11", "?", "Answer", ":", "the"]
    n = len(tok)
    make_task("math", P=10, n_sets=3, tokenizer=tok)
    # only the statements actually used enter the vocabulary, not every candidate span
    assert len(tok) - n < 200
    frozen = WordTokenizer(["a", "b"]).freeze()
    assert frozen.encode("a c") == [2, 1]


def test_counting_tokens_never_grows_a_vocabulary_and_bytes_round_trip():
    tok = WordTokenizer(["the"])
    n = len(tok)
    assert count_tokens(tok, "the fictional city of Orvane.") == 6
    assert count_tokens_many(tok, ["a b", "c"]) == [2, 1] and count_tokens_many(tok, []) == []
    assert len(tok) == n  # counting added nothing
    assert encode_text(tok, "the") == [2]
    text = "Zürich, 9.11"
    ids = encode_text(ByteTokenizer(), text)
    assert all(isinstance(i, int) and 0 <= i < 256 for i in ids)
    assert ByteTokenizer().decode(ids) == text and count_tokens(ByteTokenizer(), text) == len(ids)
