"""Candidate spans and masking: which parts of a prompt CoDA deletes (or replaces), one at a time.

CoDA asks of each candidate span whether the prompt's answer ignores it; this module says what a
candidate is (a token, a word, a content word, an entity-like run of words) and builds the
masked prompt ``X'``. These are the detection rules of the paper's ablation ({zhang2025law},
Table 6: every token, entities, excluding the final tokens). Only token ids and a tokenizer's
``decode`` are needed: no model.

``content`` is a documented heuristic, not a tagger: no part-of-speech tagger or entity
recogniser that works offline is available from the registry without downloading a model, so a
content word is a word not in :data:`STOPWORDS` (a short list of English function words) and
not made of punctuation; on prompts of bare ids (the lab's models, no tokenizer) a content token
is one not in ``stop_ids``, for example the corpus's most frequent tokens
(:func:`~overshadow_lab.decoding.detection.frequent_tokens`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

CANDIDATES = ("token", "word", "content", "entity")

#: English function words: what ``candidates="content"`` never masks (articles, pronouns,
#: auxiliaries, prepositions, conjunctions, common adverbs).
STOPWORDS = frozenset(
    """a an the this that these those it its i you he she we they me him her us them my your his
    our their is am are was were be been being do does did have has had will would shall should
    can could may might must of in on at to for from by with without about into onto over under
    as than then and or but nor so if not no yes what which who whom whose when where why how
    there here all any some each every such only also just very too more most other again""".split()
)


_PUNCT = re.compile(r"^[\W_]*$")


def candidate_spans(
    prompt: Sequence[int],
    candidates: str = "token",
    tokenizer=None,
    max_candidates: int | None = None,
    exclude_final: int = 0,
    stop_ids: Collection[int] | None = None,
) -> list[tuple[int, int]]:
    """Half-open token spans ``(start, end)`` of ``prompt`` to mask one at a time.

    ``token``: every token (special tokens of the tokenizer skipped). ``word``: tokens grouped
    into words (a token starting with a space or following a newline or punctuation starts a
    word); words of punctuation or whitespace only are skipped. ``content``: the words not in
    :data:`STOPWORDS` (with a tokenizer), or the tokens not in ``stop_ids`` (prompts of bare
    ids). ``entity``: runs of words that start with a capital letter or contain a digit. A span
    that is the whole prompt is never a candidate (deleting it would leave nothing to condition
    on). ``exclude_final``: drop every span that touches the prompt's last ``exclude_final``
    tokens (the paper's "excluding the final tokens": deleting the last token turns the prompt
    into a prefix of a training sequence, which moves the next-token distribution for a reason
    that has nothing to do with overshadowing). ``max_candidates`` then keeps the last K spans.
    """
    if candidates not in CANDIDATES:
        raise ValueError(f"candidates={candidates!r}: use one of {', '.join(CANDIDATES)}")
    if exclude_final < 0:
        raise ValueError(f"exclude_final={exclude_final} must be >= 0 (tokens at the end to skip)")
    ids = [int(t) for t in prompt]
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    if candidates == "token" or (candidates == "content" and tokenizer is None):
        if candidates == "content" and stop_ids is None:
            raise ValueError(
                "candidates='content' on bare ids needs stop_ids (e.g. detection.frequent_tokens) "
                "or a tokenizer"
            )
        skip = special | set(int(t) for t in (stop_ids or ()))
        spans = [(i, i + 1) for i, t in enumerate(ids) if t not in skip]
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
        if candidates == "content":
            spans = [sp for sp in spans if sp[2].lower() not in STOPWORDS]
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
    spans = [(s, e) for s, e in spans if e - s < len(ids) and e <= len(ids) - exclude_final]
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
