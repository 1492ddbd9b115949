"""Probing a pretrained model for amalgamated hallucination, without training it.

The lab's experiments train models on synthetic knowledge sets, where popularity and length are
set exactly. A pretrained model's training data cannot be controlled, so this module offers two
cheap probes of a model as it is, used by the introduction:

* **natural prompts** (:data:`NATURAL_PROMPTS`, :func:`natural_probe`): queries in the style of
  the papers' examples, each pairing a dominant condition (a popular entity, a frequent pattern)
  with a subordinate one. The model's greedy answer is compared with the *amalgamated* answer
  (what the dominant condition alone suggests) and with the answer the full query asks for.
* **in-context knowledge sets** (:class:`ContextProbe`, :func:`in_context_sweep`): a prompt that
  first states ``m`` dominant statements and one subordinate statement sharing a span, then asks
  the subordinate query. Popularity is ``P = m`` (one subordinate statement) and the shared span
  sets the relative length ``L``, as in the synthetic sets of [B], but the "training" is the
  context. The score is the log-probability margin of the dominant answer over the subordinate
  one; a positive margin means the model would rather amalgamate than repeat what it was just
  told.

Where the subordinate statement sits in the context is a confound (a model copies recent text):
each setting is scored with it first and last, and the sweep reports both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

#: Where the subordinate statement can sit among the dominant ones.
POSITIONS = ("first", "last")


@dataclass(frozen=True)
class NaturalPrompt:
    """A query whose dominant condition suggests ``amalgamated`` while it asks for ``correct``.

    ``family`` names the kind of overshadowing, after the task families of [A] and [B]
    (an entity fused with a popular one, negation, knowledge conflict, ...).
    """

    family: str
    prompt: str
    amalgamated: str
    correct: str


#: Prompts in the style of the papers' examples (our wording; not the papers' data).
NATURAL_PROMPTS: tuple[NaturalPrompt, ...] = (
    NaturalPrompt("entity", "The famous singer in North Korea is", " Kim Jong", " Hyon Song"),
    NaturalPrompt(
        "negation",
        "A famous physicist who is not known for relativity is",
        " Einstein",
        " Niels Bohr",
    ),
    NaturalPrompt("location", "The capital city of Australia is", " Sydney", " Canberra"),
    NaturalPrompt(
        "location", "The largest city in Canada other than Toronto is", " Toronto", " Montreal"
    ),
    NaturalPrompt(
        "knowledge conflict",
        'Write a quote that ends in the word "heavy": Absence makes the heart grow',
        " fonder",
        " heavy",
    ),
    NaturalPrompt(
        "inequality", "Which number is larger, 9.8 or 9.11? The larger number is", " 9.11", " 9.8"
    ),
)


@dataclass(frozen=True)
class ContextProbe:
    """An in-context knowledge set: ``shared`` holds one ``{}`` where a distinct span goes.

    Dominant statements read ``shared.format(x) + " " + answer_a + "."`` for ``x`` in
    ``dominant``; the subordinate statement uses ``subordinate`` and ``answer_b``. ``name``
    labels the set in tables.
    """

    name: str
    shared: str
    dominant: tuple[str, ...]
    subordinate: str
    answer_a: str
    answer_b: str

    def __post_init__(self) -> None:
        if self.shared.count("{}") != 1:
            raise ValueError(f"shared span {self.shared!r} must hold exactly one '{{}}'")
        if not self.dominant:
            raise ValueError(f"probe {self.name!r} needs at least one dominant span")
        if self.subordinate in self.dominant:
            raise ValueError(f"subordinate span {self.subordinate!r} is also a dominant span")

    def statement(self, span: str, answer: str) -> str:
        return f"{self.shared.format(span)} {answer}."

    def query(self) -> str:
        """The subordinate query the model completes."""
        return self.shared.format(self.subordinate)

    def context(self, m: int, position: str) -> str:
        """``m`` dominant statements and the subordinate one (``position`` first or last),
        followed by the subordinate query."""
        if position not in POSITIONS:
            raise ValueError(f"position must be one of {POSITIONS}, got {position!r}")
        if not 1 <= m <= len(self.dominant):
            raise ValueError(
                f"m = {m} dominant statements asked of probe {self.name!r}, which has "
                f"{len(self.dominant)} dominant spans; use 1 <= m <= {len(self.dominant)}"
            )
        dominant = [self.statement(x, self.answer_a) for x in self.dominant[:m]]
        sub = self.statement(self.subordinate, self.answer_b)
        lines = [sub, *dominant] if position == "first" else [*dominant, sub]
        return " ".join([*lines, self.query()])


def relative_length(tokenizer, probe: ContextProbe) -> float:
    """[B]'s ``L = (len(X_share) + len(x_b)) / len(x_b)`` in the tokenizer's tokens.

    The subordinate span is tokenized with its leading space, as it appears in the query, and
    the shared span's length is the query's length minus the span's.
    """
    query = tokenizer(probe.query(), add_special_tokens=False)["input_ids"]
    span = tokenizer(" " + probe.subordinate, add_special_tokens=False)["input_ids"]
    return len(query) / len(span)


@torch.no_grad()
def answer_logprobs(model, tokenizer, prompt: str, answers: Sequence[str]) -> np.ndarray:
    """Summed log-probability of each answer as the continuation of ``prompt``.

    Each answer is tokenized on its own (write it with its leading space) and appended to the
    prompt's tokens; the continuations are scored in one right-padded batch.
    """
    if not answers:
        raise ValueError("answer_logprobs needs at least one answer to score")
    prompt_ids = tokenizer(prompt)["input_ids"]
    if not prompt_ids:
        raise ValueError("the prompt is empty: a continuation needs a context to condition on")
    answer_ids = [tokenizer(a, add_special_tokens=False)["input_ids"] for a in answers]
    if any(not ids for ids in answer_ids):
        raise ValueError(f"an answer tokenizes to nothing: {list(answers)!r}")
    rows = [prompt_ids + ids for ids in answer_ids]
    width = max(map(len, rows))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    input_ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=device)
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=device)
    logp = model(input_ids=input_ids, attention_mask=mask).logits.float().log_softmax(-1)
    start = len(prompt_ids)
    scores = []
    for i, ids in enumerate(answer_ids):
        targets = torch.tensor(ids, device=device)
        steps = logp[i, start - 1 : start - 1 + len(ids)]
        scores.append(steps.gather(1, targets[:, None]).sum().item())
    return np.array(scores)


@torch.no_grad()
def greedy_continuation(model, tokenizer, prompt: str, max_new_tokens: int = 8) -> str:
    """The model's greedy continuation of ``prompt`` (``max_new_tokens`` tokens at most)."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    device = next(model.parameters()).device
    enc = tokenizer(prompt, return_tensors="pt").to(device)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad)
    return tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)


def classify_answer(text: str, amalgamated: str, correct: str) -> str:
    """``"amalgamated"``, ``"correct"`` or ``"other"``: which answer ``text`` starts with.

    Case and surrounding blanks are ignored; an answer counts when ``text`` begins with it.
    """
    head = " ".join(text.split()).lower()
    for label, answer in (("amalgamated", amalgamated), ("correct", correct)):
        if head.startswith(" ".join(answer.split()).lower()):
            return label
    return "other"


def natural_probe(
    model, tokenizer, prompts: Iterable[NaturalPrompt] = NATURAL_PROMPTS, max_new_tokens: int = 8
) -> pd.DataFrame:
    """Greedy answer and log-probability margin for each natural prompt.

    Columns: family, prompt, greedy (the continuation), verdict (:func:`classify_answer`),
    logp_amalgamated, logp_correct and margin (their difference: positive means the model
    prefers the amalgamated answer).
    """
    rows = []
    for item in prompts:
        greedy = greedy_continuation(model, tokenizer, item.prompt, max_new_tokens)
        lp_a, lp_c = answer_logprobs(
            model, tokenizer, item.prompt, [item.amalgamated, item.correct]
        )
        rows.append(
            {
                "family": item.family,
                "prompt": item.prompt,
                "greedy": greedy.strip(),
                "verdict": classify_answer(greedy, item.amalgamated, item.correct),
                "logp_amalgamated": lp_a,
                "logp_correct": lp_c,
                "margin": lp_a - lp_c,
            }
        )
    return pd.DataFrame(rows)


def in_context_sweep(
    model,
    tokenizer,
    probes: Iterable[ContextProbe],
    m_values: Sequence[int],
    positions: Sequence[str] = POSITIONS,
) -> pd.DataFrame:
    """Score every probe at every popularity ``m`` and subordinate position.

    One row per (probe, m, position): P (= m, one subordinate statement), L
    (:func:`relative_length`), logp_a, logp_b, margin (``logp_a - logp_b``) and overshadowed
    (margin > 0: the dominant answer is preferred to the one the context stated).
    """
    probes = list(probes)
    if not probes or not m_values:
        raise ValueError("in_context_sweep needs at least one probe and one value of m")
    for position in positions:
        if position not in POSITIONS:
            raise ValueError(f"position must be one of {POSITIONS}, got {position!r}")
    rows = []
    for probe in probes:
        length = relative_length(tokenizer, probe)
        for m in m_values:
            for position in positions:
                prompt = probe.context(m, position)
                lp_a, lp_b = answer_logprobs(
                    model, tokenizer, prompt, [" " + probe.answer_a, " " + probe.answer_b]
                )
                rows.append(
                    {
                        "probe": probe.name,
                        "P": m,
                        "L": length,
                        "position": position,
                        "logp_a": lp_a,
                        "logp_b": lp_b,
                        "margin": lp_a - lp_b,
                        "overshadowed": bool(lp_a > lp_b),
                    }
                )
    return pd.DataFrame(rows)


def default_probes() -> list[ContextProbe]:
    """The introduction's in-context sets: two fictional worlds, each with a short and a long
    shared span (so two values of L), ten dominant spans (P up to 10)."""
    courts = tuple(
        "general admiral colonel minister judge bishop banker poet painter doctor".split()
    )
    guilds = tuple("smith weaver potter mason tanner miller baker brewer cooper carver".split())
    long_court = (
        "In the old northern kingdom of Vorland, far beyond the grey mountains and the "
        "cold sea, the most famous {} of the royal court is"
    )
    long_guild = (
        "In the river town of Ostmark, where the barges stop and the bells ring twice "
        "a day, the best known {} of the guild hall is"
    )
    return [
        ContextProbe(
            "Vorland, short",
            "The famous {} of Vorland is",
            courts,
            "singer",
            "Marshal Voss",
            "Ada Lune",
        ),
        ContextProbe("Vorland, long", long_court, courts, "singer", "Marshal Voss", "Ada Lune"),
        ContextProbe(
            "Ostmark, short",
            "The best known {} of Ostmark is",
            guilds,
            "piper",
            "Master Hale",
            "Lina Brook",
        ),
        ContextProbe("Ostmark, long", long_guild, guilds, "piper", "Master Hale", "Lina Brook"),
    ]


__all__ = [
    "NATURAL_PROMPTS",
    "POSITIONS",
    "ContextProbe",
    "NaturalPrompt",
    "answer_logprobs",
    "classify_answer",
    "default_probes",
    "greedy_continuation",
    "in_context_sweep",
    "natural_probe",
    "relative_length",
]
