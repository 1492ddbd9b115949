"""Candidate spans and masking: which parts of a prompt CoDA deletes (or replaces), one at a time.

CoDA asks of each candidate span whether the prompt's answer ignores it; this module says what a
candidate is (a token, a word, an entity-like run of words) and builds the masked prompt ``X'``.
Only token ids and a tokenizer's ``decode`` are needed: no model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

CANDIDATES = ("token", "word", "entity")


_PUNCT = re.compile(r"^[\W_]*$")


def candidate_spans(
    prompt: Sequence[int],
    candidates: str = "token",
    tokenizer=None,
    max_candidates: int | None = None,
) -> list[tuple[int, int]]:
    """Half-open token spans ``(start, end)`` of ``prompt`` to mask one at a time.

    ``token``: every token (special tokens of the tokenizer skipped). ``word``: tokens grouped
    into words (a token starting with a space or following a newline or punctuation starts a
    word); words of punctuation or whitespace only are skipped. ``entity``: runs of words that
    start with a capital letter or contain a digit. A span that is the whole prompt is never a
    candidate (deleting it would leave nothing to condition on).
    """
    if candidates not in CANDIDATES:
        raise ValueError(f"candidates={candidates!r}: use one of {', '.join(CANDIDATES)}")
    ids = [int(t) for t in prompt]
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    if candidates == "token":
        spans = [(i, i + 1) for i, t in enumerate(ids) if t not in special]
    else:
        if tokenizer is None:
            raise ValueError(
                f"candidates={candidates!r} needs a tokenizer; use 'token' or pass spans"
            )
        texts = [tokenizer.decode([t]) for t in ids]
        words: list[list[int]] = []
        prev = ""
        for i, (t, text) in enumerate(zip(ids, texts, strict=True)):
            if t in special:
                prev = "\n"
                continue
            # a tokenizer that marks no spaces in its tokens (word-level) puts one between them
            spaced = False
            if i and words and not text[:1].isspace():
                pair = tokenizer.decode([ids[i - 1], t])
                spaced = pair.startswith(texts[i - 1]) and pair[len(texts[i - 1]) :][:1].isspace()
            starts = (
                not words
                or spaced
                or text[:1].isspace()
                or prev.endswith("\n")
                or bool(_PUNCT.match(text))
                or bool(_PUNCT.match(prev))
            )
            if starts:
                words.append([i])
            else:
                words[-1].append(i)
            prev = text
        spans = []
        for w in words:
            text = "".join(texts[i] for i in w).strip()
            if text and not _PUNCT.match(text):
                spans.append((w[0], w[-1] + 1, text))
        if candidates == "entity":
            merged: list[tuple[int, int, str]] = []
            for s, e, text in spans:
                if text[:1].isupper() or any(c.isdigit() for c in text):
                    if merged and merged[-1][1] == s:
                        merged[-1] = (merged[-1][0], e, merged[-1][2] + " " + text)
                    else:
                        merged.append((s, e, text))
            spans = merged
        spans = [(s, e) for s, e, _ in spans]
    spans = [(s, e) for s, e in spans if e - s < len(ids)]
    if max_candidates is not None:
        spans = spans[-max_candidates:]
    return spans


def mask_span(
    prompt: Sequence[int],
    span: tuple[int, int],
    mask: str = "delete",
    mask_token_id: int | None = None,
) -> list[int]:
    """The prompt with one span deleted or replaced token by token with ``mask_token_id``."""
    s, e = span
    ids = [int(t) for t in prompt]
    if mask == "delete":
        return ids[:s] + ids[e:]
    if mask_token_id is None:
        raise ValueError("mask='replace' needs mask_token_id")
    return ids[:s] + [int(mask_token_id)] * (e - s) + ids[e:]
