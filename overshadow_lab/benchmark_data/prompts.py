"""Benchmark prompts as token ids: the model's chat template for an instruct model, the plain
completion prompt otherwise, and where in the ids CoDA may mask.

An instruct model (SmolLM2-135M-Instruct) given the plain completion prompt of SPEC §7 often
restates the question or answers after a blank line; given the whole prompt as a chat message it
starts a conversation instead of finishing the text. So each row is cut into a **user message**
(the instruction, or the passage and question) and an **answer start** that the assistant's turn
begins with and the model continues:

* MemoTrap: the instruction ("Write a quote that ends in the word "heavy"") is the message, the
  text to finish ("Absence makes the heart grow", or "Answer:" after a science question) starts
  the answer;
* NQ-Swap: ``"Context: {sub_context}\\nQuestion: {question}?"`` is the message, ``"Answer:"``
  starts the answer.

The ids are built piece by piece (template text, message, template text, answer start), so the
token ranges of the message and of the answer start are known exactly: CoDA's candidate spans are
taken there only, never in the template's system prompt or role markers. CAD's second input is the
same layout without the context (NQ-Swap: the question alone; MemoTrap: an empty message).

A tokenizer without a chat template gets the plain SPEC §7 prompts (``template="plain"`` forces
them), with candidates anywhere in the prompt.

``overshadow_lab.decoding`` (which imports torch) is imported in :func:`region_spans` only, so
that building prompts stays light.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from overshadow_lab.benchmark_data.memotrap import memotrap_plain_prompt
from overshadow_lab.benchmark_data.nq_swap import nq_swap_prompt

TEMPLATES = ("auto", "chat", "plain")
_SENTINEL = "\x00MESSAGE\x00"


@dataclass
class Encoded:
    """One benchmark's prompts as token ids, with the token ranges where CoDA may mask."""

    prompts: list[list[int]]  # what the model continues
    plain: list[list[int]]  # CAD's second input: the same without the context
    regions: list[list[tuple[int, int]]]  # per prompt: the message and the answer start
    template: str  # "chat" or "plain"


def memotrap_parts(prompt: str) -> tuple[str, str]:
    """``(message, answer start)`` of a MemoTrap prompt: the instruction, and the text to finish
    (:func:`~overshadow_lab.benchmark_data.memotrap.memotrap_plain_prompt`)."""
    start = memotrap_plain_prompt(prompt)
    head = prompt[: len(prompt) - len(start)].rstrip()
    if head.endswith("\nto:"):  # translation prompts: "...\n<source>\nto:\n<start>"
        head = head[: -len("\nto:")]
    return head.rstrip(":").rstrip(), start


def nq_swap_parts(row, with_context: bool = True) -> tuple[str, str]:
    """``(message, answer start)`` of an NQ-Swap row (SPEC §7's prompt, split at "Answer:")."""
    message = nq_swap_prompt(row, with_context)
    return message[: -len("\nAnswer:")], "Answer:"


def has_chat_template(tokenizer) -> bool:
    """Whether the tokenizer carries a chat template (an instruct model's)."""
    return bool(getattr(tokenizer, "chat_template", None))


def _template_pieces(tokenizer) -> tuple[str, str]:
    """The chat template's text before and after one user message, generation prompt included."""
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": _SENTINEL}], tokenize=False, add_generation_prompt=True
    )
    if text.count(_SENTINEL) != 1:
        raise ValueError("the tokenizer's chat template does not show the user message verbatim")
    before, after = text.split(_SENTINEL)
    return before, after


def _ids(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


def chat_ids(tokenizer, message: str, start: str) -> tuple[list[int], list[tuple[int, int]]]:
    """Token ids of ``message`` as the user's turn and ``start`` opening the assistant's, with
    the token ranges of the message and of the start."""
    before, after = _template_pieces(tokenizer)
    pieces = [_ids(tokenizer, t) for t in (before, message, after, start)]
    ids, bounds = [], []
    for piece in pieces:
        bounds.append((len(ids), len(ids) + len(piece)))
        ids += piece
    return ids, [b for b in (bounds[1], bounds[3]) if b[1] > b[0]]


def _resolve(tokenizer, template: str) -> str:
    if template not in TEMPLATES:
        raise ValueError(f"template={template!r}: use one of {', '.join(TEMPLATES)}")
    if template == "auto":
        return "chat" if has_chat_template(tokenizer) else "plain"
    if template == "chat" and not has_chat_template(tokenizer):
        raise ValueError("template='chat' needs a tokenizer with a chat template; use 'plain'")
    return template


def encode_benchmark(
    tokenizer, benchmark: str, df: pd.DataFrame, template: str = "auto"
) -> Encoded:
    """The prompts of ``df`` as ids (see the module doc), CAD's context-free inputs and the
    regions CoDA may mask."""
    if benchmark not in ("memotrap", "nq_swap"):
        raise ValueError(
            f"unknown benchmark {benchmark!r}: use memotrap or nq_swap (synthetic has token ids)"
        )
    kind = _resolve(tokenizer, template)
    if benchmark == "memotrap":
        parts = [memotrap_parts(p) for p in df["prompt"]]
        plain_parts = [("", start) for _, start in parts]
        texts = list(df["prompt"])
        plain_texts = [memotrap_plain_prompt(p) for p in df["prompt"]]
    else:
        rows = [r for _, r in df.iterrows()]
        parts = [nq_swap_parts(r) for r in rows]
        plain_parts = [nq_swap_parts(r, with_context=False) for r in rows]
        texts = [nq_swap_prompt(r) for r in rows]
        plain_texts = [nq_swap_prompt(r, with_context=False) for r in rows]
    if kind == "plain":
        prompts = [_ids(tokenizer, t) for t in texts]
        return Encoded(
            prompts,
            [_ids(tokenizer, t) for t in plain_texts],
            [[(0, len(p))] for p in prompts],
            "plain",
        )
    built = [chat_ids(tokenizer, m, s) for m, s in parts]
    return Encoded(
        [ids for ids, _ in built],
        [chat_ids(tokenizer, m, s)[0] for m, s in plain_parts],
        [regions for _, regions in built],
        "chat",
    )


def region_spans(
    prompt: list[int],
    regions: list[tuple[int, int]],
    candidates: str,
    tokenizer,
    max_candidates: int | None = None,
) -> list[tuple[int, int]]:
    """CoDA's candidate spans (:func:`~overshadow_lab.decoding.spans.candidate_spans`) inside
    the given token ranges of ``prompt``, in prompt order; ``max_candidates`` keeps the last K.

    Word and entity candidates skip HTML tag names and the prompt's labels
    (:func:`_markup_or_label`): on NQ-Swap they were about four in five of the "entities", and
    every candidate costs a forward pass over the rest of the prompt."""
    from overshadow_lab.decoding.spans import candidate_spans

    spans = []
    for a, b in regions:
        spans += [(s + a, e + a) for s, e in candidate_spans(prompt[a:b], candidates, tokenizer)]
    spans = [(s, e) for s, e in spans if e - s < len(prompt)]
    if candidates != "token":
        spans = [sp for sp in spans if not _markup_or_label(prompt, sp, tokenizer)]
    return spans[-max_candidates:] if max_candidates is not None else spans


PROTOCOL_LABELS = ("Context", "Question", "Answer")


def _markup_or_label(prompt: list[int], span: tuple[int, int], tokenizer) -> bool:
    """Whether a word or entity span is an HTML tag name (NQ-Swap's passages keep Wikipedia's
    ``<P>``, ``<Td>``, ``<Tr>`` ...: most capitalised words of a table) or one of the prompt's own
    labels ("Context:", "Question:", "Answer:"): text that carries no knowledge to mask."""
    s, e = span
    text = tokenizer.decode(prompt[s:e]).strip()
    before = "".join(tokenizer.decode(prompt[max(0, s - 2) : s]).split())
    after = tokenizer.decode(prompt[e : e + 1])
    if before.endswith(("<", "</")) and text.isalnum():
        return True
    return text in PROTOCOL_LABELS and after.startswith(":")
