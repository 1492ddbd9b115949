"""Natural-language task families for overshadowing experiments (SPEC §3, [B §4.3, A.2]).

The papers fine-tune on *counterfactual* facts so that nothing learnt in pretraining can leak
into the measurement. This module writes such facts itself, from templates and fictional
entities, in seven families that each pit a dominant condition against a subordinate one:

============== =============================================================== =====================
family         distinct span ``x`` (dominant / subordinate)                    answers ``Y_a / Y_b``
============== =============================================================== =====================
event-time     fictional events                                                two future years
event-location fictional events                                                two cities
gender         fictional hobbies                                               female/male/non-binary
negation       an affirmative qualifier / a negation ("not", "never" ...)      two fictional names
logical        "before"-like / "after"-like relations in a chain A-B-C         first / last event
math           integer pairs (the longer number is larger) / decimal pairs     "first" / "second"
               where the longer number is smaller (9.8 vs 9.11)
knowledge-     "complete the proverb"-like / "twist the proverb"-like          usual / other ending
conflict       instructions
============== =============================================================== =====================

Every knowledge set has its own fictional context (a realm, an academy, a quiz ...) inside
``X_share``, so that different sets never share a prompt. Text is turned into token ids piece by
piece (shared text before the slot, the distinct span, shared text after it, the answer), so the
token positions of ``x`` are known exactly and ``L`` is counted in the tokenizer's own tokens:
``L = (len(X_share) + len(x_b)) / len(x_b)``. A requested ``L`` above the template's natural
length is reached by prefixing ``X_share`` with neutral filler text (the same in every statement
of a set); ``L=None`` uses the shortest length that all sets reach.

The result is a :class:`TaskSets`, a :class:`~overshadow_lab.lab.data.KnowledgeSets`, so that the
lab's ``train_model`` and ``evaluate`` work on it unchanged. Any tokenizer with
``encode(text, add_special_tokens=False)``, ``decode(ids)`` and ``len()`` works: a Hugging Face
tokenizer (SmolLM2's offline, any hub tokenizer online) or the small
:class:`~overshadow_lab.finetuning.tokenizers.WordTokenizer` (one token per word, a vocabulary of
a few hundred ids, for from-scratch models on a CPU); :mod:`overshadow_lab.finetuning.tokenizers`
holds them.
"""

from __future__ import annotations

import math
import numbers
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from overshadow_lab.configs import override
from overshadow_lab.finetuning.tokenizers import (
    WordTokenizer,
    count_tokens,
    count_tokens_many,
    encode_text,
)
from overshadow_lab.lab.data import EvalSet, KnowledgeSets

TASKS: tuple[str, ...] = (
    "event-time",
    "event-location",
    "gender",
    "negation",
    "logical",
    "math",
    "knowledge-conflict",
)

# ------------------------------------------------------------------------------------------
# Fictional entities and the seven families
# ------------------------------------------------------------------------------------------

_SYLLABLES = (
    "val dor quen bry zar mok tel ith ora nel vak sil thu ren gal mir oss ket lun dra "
    "fen bar kos li vo ra ny sen tor wyn hal ema pel rix tam cor ulo yd kap bre"
).split()
_EVENT_KINDS = (
    "Accord Summit Festival Uprising Expedition Treaty Flood Eclipse Regatta Council Fair Games "
    "Voyage Concord Migration Tournament Assembly Harvest Parade Exodus"
).split()
_YEARS = tuple(range(2031, 2400))
_CITIES = (
    "Dubai Istanbul Lisbon Nairobi Lima Oslo Hanoi Quito Dakar Riga Perth Tunis Bogota Kyoto "
    "Porto Accra Cairo Vienna"
).split()
_GENDERS = ("female", "male", "non-binary")
_HOBBY_NOUNS = (
    "weaving gliding carving rowing juggling baking fencing climbing sketching knitting diving "
    "whistling pottery archery chess sailing"
).split()
_ROLES = "physicist chemist poet painter composer architect astronomer sculptor".split()
_AFFIRM = (
    "truly widely rightly indeed surely clearly famously genuinely undeniably certainly "
    "openly proudly publicly officially formally broadly generally notably justly plainly "
    "obviously definitely properly really fully always still already wholly firmly"
).split()
_NEGATE = "not never hardly scarcely barely".split()
_INTENSIFIERS = "very most quite so fairly rather".split()
_NEG_INTENSIFIERS = "certainly surely definitely absolutely clearly really".split()
_BEFORE = ("before", "preceding", "ahead of", "prior to", "earlier than", "in advance of")
_AFTER = ("after", "following", "later than", "behind", "subsequent to", "in the wake of")
_REL_MODIFIERS = (
    ("just shortly long well soon right immediately directly barely somewhat").split()
    + ["a day", "an hour", "a week", "a year", "some time", "not long", "a month", "a decade"]
    + [
        f"{k} {unit}"
        for k in range(2, 13)
        for unit in ("days", "hours", "weeks", "years", "months")
    ]
)
_COMPLETE_VERBS = (
    "Complete Finish Continue End Recite Quote Repeat Say Conclude Close Read Cite State Give "
    "Write Utter Speak Tell Sing Echo"
).split()
_TWIST_VERBS = (
    "Twist Subvert Invert Reverse Alter Change Rewrite Remix Parody Flip Mangle Bend Spin Warp "
    "Switch Swap Break Upend Scramble Mock"
).split()
_SAYING_OBJECTS = (
    "the proverb",
    "this proverb",
    "the saying",
    "this saying",
    "the adage",
    "this adage",
    "the old phrase",
    "the motto",
    "the maxim",
    "this maxim",
)
_PROVERB_NOUNS = "heart lamp river stone bell crow feather drum".split()
_ENDINGS = "words deeds thunder gold silence rain bells stones drums storms wolves rivers".split()
_FILLER = (
    "These notes were copied by hand from an old archive and kept in a quiet library for "
    "many long years by careful scribes who read every page twice"
)


def fictional_name(rng: np.random.Generator, syllables: int = 2) -> str:
    """A pronounceable made-up proper name, e.g. ``"Valdor"``."""
    parts = [str(rng.choice(_SYLLABLES)) for _ in range(syllables)]
    return "".join(parts).capitalize()


def _unique_names(rng, k: int, syllables: int = 2, exclude: set[str] | None = None) -> list[str]:
    seen = set(exclude or ())
    out: list[str] = []
    for _ in range(50 * k + 100):
        name = fictional_name(rng, syllables)
        if name not in seen:
            seen.add(name)
            out.append(name)
            if len(out) == k:
                return out
    raise ValueError(f"could not draw {k} distinct fictional names; lower n_sets or P")


@dataclass
class SetSpec:
    """One knowledge set before tokenisation: shared text around the slot, span pools, answers."""

    before: str
    after: str
    dominant_pool: list[str]
    subordinate_pool: list[str]
    y_a: str
    y_b: str
    context: str = ""


def _events(rng, k: int) -> list[str]:
    names = _unique_names(rng, k, syllables=2)
    return [f"the {nm} {rng.choice(_EVENT_KINDS)}" for nm in names]


def _spec_event_time(rng, ctx: str, k: int) -> SetSpec:
    events = _events(rng, 8 * k)
    ya, yb = (str(y) for y in rng.choice(_YEARS, size=2, replace=False))
    return SetSpec(
        f"Chronicle of {ctx}. When did this event happen:",
        "? Year:",
        events[: 4 * k],
        events[4 * k :],
        ya,
        yb,
        ctx,
    )


def _spec_event_location(rng, ctx: str, k: int) -> SetSpec:
    events = _events(rng, 8 * k)
    ya, yb = (str(c) for c in rng.choice(_CITIES, size=2, replace=False))
    return SetSpec(
        f"Records of {ctx}. Where did",
        "take place? City:",
        events[: 4 * k],
        events[4 * k :],
        ya,
        yb,
        ctx,
    )


def _spec_gender(rng, ctx: str, k: int) -> SetSpec:
    names = _unique_names(rng, 8 * k, syllables=2)
    hobbies = [f"{nm.lower()} {rng.choice(_HOBBY_NOUNS)}" for nm in names]
    ya, yb = (str(g) for g in rng.choice(_GENDERS, size=2, replace=False))
    return SetSpec(
        f"Survey of {ctx}. A person whose hobby is",
        "describes their gender as:",
        hobbies[: 4 * k],
        hobbies[4 * k :],
        ya,
        yb,
        ctx,
    )


def _spec_negation(rng, ctx: str, k: int) -> SetSpec:
    role = str(rng.choice(_ROLES))
    affirm = list(_AFFIRM) + [f"{i} {a}" for i in _INTENSIFIERS for a in _AFFIRM]
    negate = list(_NEGATE) + [f"{i} {n}" for i in _NEG_INTENSIFIERS for n in _NEGATE]
    ya, yb = _unique_names(rng, 2, syllables=2)
    return SetSpec(
        f"Academy of {ctx}. Who is",
        f"a renowned {role}? Answer:",
        [str(a) for a in rng.permutation(affirm)],
        [str(n) for n in rng.permutation(negate)],
        ya,
        yb,
        ctx,
    )


def _spec_logical(rng, ctx: str, k: int) -> SetSpec:
    e1, e2, e3 = _unique_names(rng, 3, syllables=2)
    before = list(_BEFORE) + [f"{m} {r}" for m in _REL_MODIFIERS for r in _BEFORE]
    after = list(_AFTER) + [f"{m} {r}" for m in _REL_MODIFIERS for r in _AFTER]
    return SetSpec(
        f"Log of {ctx}. The events {e1}, {e2} and {e3} happened in a chain, each one",
        "the next. Which happened first? Answer:",
        [str(b) for b in rng.permutation(before)],
        [str(a) for a in rng.permutation(after)],
        e1,
        e3,
        ctx,
    )


def _spec_math(rng, ctx: str, k: int) -> SetSpec:
    # dominant: integers, the number with more digits is the larger one (8 vs 11);
    # subordinate: decimals, the number with more digits is the smaller one (9.8 vs 9.11).
    longer_second = bool(rng.integers(0, 2))
    dom, sub = [], []
    seen: set[str] = set()
    for _ in range(10 * k + 100):
        da = int(rng.integers(1, 4))
        db = int(rng.integers(da + 1, da + 4))
        a = int(rng.integers(10 ** (da - 1) if da > 1 else 2, 10**da))
        b = int(rng.integers(10 ** (db - 1), 10**db))
        p = int(rng.integers(1, 100))
        d = int(rng.integers(2, 10))
        r = int(rng.integers(1, d))
        tail = int(rng.integers(0, 10 ** int(rng.integers(1, 3))))
        short, long_ = f"{p}.{d}", f"{p}.{r}{tail}"
        for pool, (x, y) in ((dom, (str(a), str(b))), (sub, (short, long_))):
            pair = f"{x} or {y}" if longer_second else f"{y} or {x}"
            if pair not in seen:
                seen.add(pair)
                pool.append(pair)
    # the longer number is larger in the dominant pairs, smaller in the subordinate ones
    ya, yb = ("second", "first") if longer_second else ("first", "second")
    return SetSpec(
        f"Quiz of {ctx}. Which number is larger:", "? Answer: the", dom, sub, ya, yb, ctx
    )


def _spec_knowledge_conflict(rng, ctx: str, k: int) -> SetSpec:
    noun = str(rng.choice(_PROVERB_NOUNS))
    ya, yb = (str(e) for e in rng.choice(_ENDINGS, size=2, replace=False))
    complete = [f"{v} {o}" for v in _COMPLETE_VERBS for o in _SAYING_OBJECTS]
    twist = [f"{v} {o}" for v in _TWIST_VERBS for o in _SAYING_OBJECTS]
    return SetSpec(
        "",
        f"from {ctx}: a quiet {noun} speaks louder than",
        [str(c) for c in rng.permutation(complete)],
        [str(t) for t in rng.permutation(twist)],
        ya,
        yb,
        ctx,
    )


FAMILIES: dict[str, Callable[..., SetSpec]] = {
    "event-time": _spec_event_time,
    "event-location": _spec_event_location,
    "gender": _spec_gender,
    "negation": _spec_negation,
    "logical": _spec_logical,
    "math": _spec_math,
    "knowledge-conflict": _spec_knowledge_conflict,
}

# ------------------------------------------------------------------------------------------
# Configuration and corpus
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskConfig:
    """One natural-language corpus: family, popularity, length, sets (see module docstring).

    ``L=None`` picks the natural length (the shortest that every set reaches); ``span_len=None``
    picks the shortest token length of the distinct span for which every set's pools offer
    enough spans (m dominant, n subordinate) under the tokenizer.
    """

    task: str = "event-time"
    P: float = 5
    L: float | None = None
    n: int = 1
    n_sets: int = 20
    span_len: int | None = None
    seed: int = 0

    @property
    def m(self) -> int:
        return int(round(self.P * self.n))

    def describe(self) -> dict:
        return asdict(self)


@dataclass
class TaskSets(KnowledgeSets):
    """A natural-language corpus: a KnowledgeSets plus the texts and the resolved L / span_len."""

    task: str = ""
    L_actual: float = float("nan")
    span_len: int = 0
    shared_len: int = 0
    statements: list[dict] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """One row per statement, with the text of prompt and answer beside the token ids."""
        return pd.DataFrame(self.statements)

    def examples(self, set_id: int = 0) -> pd.DataFrame:
        """The statements of one set as text (kind, prompt, answer)."""
        df = self.to_frame()
        return df.loc[df.set_id == set_id, ["kind", "prompt_text", "answer_text"]].reset_index(
            drop=True
        )


def _validate(cfg: TaskConfig) -> None:
    if cfg.task not in FAMILIES:
        raise ValueError(f"unknown task {cfg.task!r}: use one of {', '.join(TASKS)}")
    for name in ("n", "n_sets"):
        v = getattr(cfg, name)
        if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a whole number >= 1, got {v!r}; e.g. {name}=1")
    if not isinstance(cfg.P, numbers.Real) or not math.isfinite(cfg.P) or cfg.P < 1:
        raise ValueError(
            f"P = m/n must be >= 1, got {cfg.P!r}; the dominant set is the larger one (P >= 1)"
        )
    if abs(cfg.P * cfg.n - round(cfg.P * cfg.n)) > 1e-9:
        raise ValueError(
            f"P * n = {cfg.P * cfg.n:g} dominant statements is not a whole number; choose n so "
            f"that P * n is an integer"
        )
    if cfg.span_len is not None and (
        not isinstance(cfg.span_len, numbers.Integral) or cfg.span_len < 1
    ):
        raise ValueError(f"span_len must be None or a whole number >= 1, got {cfg.span_len!r}")
    if cfg.L is not None and (not isinstance(cfg.L, numbers.Real) or not cfg.L > 1):
        raise ValueError(f"L must be None (natural length) or a number > 1, got {cfg.L!r}")


def _pick_span_len(specs: list[SetSpec], tok, m: int, n: int, wanted: int | None, task: str) -> int:
    """The distinct-span length (tokens) for which every set has >= m dominant and >= n
    subordinate candidates: the requested one, or the shortest feasible one."""
    counts = []
    for spec in specs:
        dom = Counter(count_tokens_many(tok, [" " + s for s in spec.dominant_pool]))
        sub = Counter(count_tokens_many(tok, [" " + s for s in spec.subordinate_pool]))
        counts.append((dom, sub))
    lengths = sorted({k for d, s in counts for k in d} & {k for d, s in counts for k in s})
    feasible = [k for k in lengths if all(d[k] >= m and s[k] >= n for d, s in counts)]
    if wanted is not None:
        if wanted in feasible:
            return int(wanted)
        most = min(d.get(wanted, 0) for d, _ in counts)
        raise ValueError(
            f"task {task!r} offers at most {most} dominant spans of span_len={wanted} tokens per set "
            f"under this tokenizer but P*n = {m} are needed (and {n} subordinate); lower P, or use "
            f"span_len=None (feasible lengths: {feasible or 'none'})"
        )
    if not feasible:
        best = max((min(d.get(k, 0) for d, _ in counts), k) for k in lengths) if lengths else (0, 0)
        raise ValueError(
            f"task {task!r} cannot supply m = P*n = {m} dominant spans of one token length per set "
            f"under this tokenizer (at most {best[0]}, at span_len={best[1]}); lower P (or n)"
        )
    return feasible[0]


def _filler_ids(tok, k: int) -> list[int]:
    """``k`` tokens of neutral filler text ending in a full stop (for a longer ``X_share``)."""
    if k <= 0:
        return []
    base = encode_text(tok, " " + _FILLER)
    stop = encode_text(tok, ".")[-1:]
    if k == 1:
        return stop
    reps = -(-(k - 1) // len(base))
    return (base * reps)[: k - 1] + stop


def filler_tokens_needed(L: float, span_len: int, natural_shared_len: int) -> int:
    """Filler tokens to add to a shared span of ``natural_shared_len`` tokens so that
    ``L = (len(X_share) + span_len) / span_len`` holds exactly.

    Raises ValueError when ``(L - 1) * span_len`` is not a whole number of tokens, or when the
    template alone is already longer than ``L`` allows (naming the smallest feasible L).
    """
    if span_len < 1:
        raise ValueError(f"span_len must be >= 1 token, got {span_len}")
    exact = (L - 1) * span_len
    if abs(exact - round(exact)) > 1e-9:
        raise ValueError(
            f"L = {L} with span_len = {span_len} gives len(X_share) = (L-1)*span_len = {exact:g} "
            f"tokens, not a whole number; choose L so that (L-1)*{span_len} is an integer"
        )
    extra = int(round(exact)) - int(natural_shared_len)
    if extra < 0:
        raise ValueError(
            f"L = {L} is too short: the shared span needs at least {natural_shared_len} tokens, "
            f"i.e. L >= 1 + {natural_shared_len}/{span_len} = {1 + natural_shared_len / span_len:g}; "
            f"use a larger L or L=None (natural length)"
        )
    return extra


def _natural_len(tok, spec: SetSpec) -> int:
    before = count_tokens(tok, " " + spec.before) if spec.before else 0
    return before + count_tokens(tok, (" " if spec.after[:1].isalnum() else "") + spec.after)


def _draw_specs(task: str, rng, n_sets: int, k: int, tok) -> list[SetSpec]:
    """Draw ``n_sets`` sets with distinct fictional contexts and, where the tokenizer allows,
    one common natural length of ``X_share`` (so that no set needs filler text)."""
    extra = max(n_sets, 10)
    contexts = _unique_names(rng, n_sets + extra, syllables=3)
    specs = [FAMILIES[task](rng, ctx, k) for ctx in contexts[: n_sets + extra]]
    lengths = [_natural_len(tok, sp) for sp in specs]
    mode = Counter(lengths).most_common(1)[0][0]
    chosen = [sp for sp, ln in zip(specs, lengths, strict=True) if ln == mode][:n_sets]
    if len(chosen) < n_sets:  # not enough sets of the common length: the rest get filler text
        rest = [sp for sp, ln in zip(specs, lengths, strict=True) if ln != mode]
        rest.sort(key=lambda sp: _natural_len(tok, sp))
        chosen += rest[: n_sets - len(chosen)]
    return chosen


def make_task(
    task: str | TaskConfig = "event-time", tokenizer: Any = None, **overrides: Any
) -> TaskSets:
    """Generate a natural-language knowledge-set corpus (deterministic for ``seed``).

    ``make_task("negation", P=10, n_sets=20, tokenizer=tok)``. Without a tokenizer a fresh
    :class:`WordTokenizer` is used (``result.tokenizer``; ``result.vocab_size`` its size).
    Raises ValueError naming the limit and the fix when P, L or span_len cannot be met.
    """
    cfg = task if isinstance(task, TaskConfig) else TaskConfig(task=task)
    cfg = override(cfg, overrides, "parameter")
    _validate(cfg)
    tok = tokenizer if tokenizer is not None else WordTokenizer()
    m, n = cfg.m, int(cfg.n)
    rng = np.random.default_rng([int(cfg.seed), TASKS.index(cfg.task)])
    specs = _draw_specs(cfg.task, rng, int(cfg.n_sets), m + n, tok)
    span_len = _pick_span_len(specs, tok, m, n, cfg.span_len, cfg.task)

    built = []
    for spec in specs:
        dl = count_tokens_many(tok, [" " + s for s in spec.dominant_pool])
        sl = count_tokens_many(tok, [" " + s for s in spec.subordinate_pool])
        dom = [s for s, k in zip(spec.dominant_pool, dl, strict=True) if k == span_len][:m]
        sub = [s for s, k in zip(spec.subordinate_pool, sl, strict=True) if k == span_len][:n]
        before = encode_text(tok, " " + spec.before) if spec.before else []
        after = encode_text(tok, (" " if spec.after[:1].isalnum() else "") + spec.after)
        built.append((spec, dom, sub, before, after))
    natural = max(len(b) + len(a) for _, _, _, b, a in built)
    if cfg.L is None:
        shared_len = natural
    else:
        try:
            shared_len = natural + filler_tokens_needed(cfg.L, span_len, natural)
        except ValueError as err:
            raise ValueError(f"task {cfg.task!r} under this tokenizer: {err}") from None

    dominant = EvalSet([], [], [], None, [], [])
    subordinate = EvalSet([], [], [], [], [], [])
    train: list[list[int]] = []
    rows: list[dict] = []
    for set_id, (spec, dom, sub, before, after) in enumerate(built):
        pad = _filler_ids(tok, shared_len - len(before) - len(after))
        head = pad + before
        ya = encode_text(tok, " " + spec.y_a)
        yb = encode_text(tok, " " + spec.y_b)
        if ya[: len(yb)] == yb[: len(ya)]:
            raise ValueError(  # pragma: no cover - guarded by the families' answer choices
                f"answers {spec.y_a!r} and {spec.y_b!r} are ambiguous under this tokenizer"
            )
        for kind, spans, es in (("dominant", dom, dominant), ("subordinate", sub, subordinate)):
            for j, span in enumerate(spans):
                x = encode_text(tok, " " + span)
                prompt = head + x + after
                answer = ya if kind == "dominant" else yb
                es.prompts.append(prompt)
                es.answers.append(list(answer))
                es.set_ids.append(set_id)
                es.distinct_positions.append(list(range(len(head), len(head) + len(x))))
                es.shared_positions.append(
                    list(range(len(head))) + list(range(len(head) + len(x), len(prompt)))
                )
                if kind == "subordinate":
                    es.overshadow_answers.append(list(ya))
                train.append(prompt + list(answer))
                rows.append(
                    {
                        "set_id": set_id,
                        "kind": kind,
                        "index": j,
                        "context": spec.context,
                        "distinct_text": span,
                        "prompt_text": tok.decode(prompt),
                        "answer_text": spec.y_a if kind == "dominant" else spec.y_b,
                        "overshadow_text": spec.y_a if kind == "subordinate" else None,
                        "prompt": prompt,
                        "answer": list(answer),
                    }
                )
    dom_set = {tuple(p) for p in dominant.prompts}
    if any(tuple(p) in dom_set for p in subordinate.prompts):  # pragma: no cover - by construction
        raise RuntimeError("a subordinate prompt also occurs among the dominant prompts")
    return TaskSets(
        config=cfg,
        vocab_size=len(tok),
        train_sequences=train,
        dominant=dominant,
        subordinate=subordinate,
        tokenizer=tok,
        task=cfg.task,
        L_actual=(shared_len + span_len) / span_len,
        span_len=span_len,
        shared_len=shared_len,
        statements=rows,
    )


def relative_length(prompt: list[int], distinct_positions: list[int]) -> float:
    """``L = (len(X_share) + len(x)) / len(x)`` of one prompt, from its distinct positions."""
    if not distinct_positions:
        raise ValueError("distinct_positions is empty: L needs a distinct span of >= 1 token")
    return len(prompt) / len(distinct_positions)


def check_task_sets(sets: TaskSets) -> dict:
    """Check the invariants every corpus must satisfy; returns the measured P, L and counts.

    Raises AssertionError naming the violated invariant: P per set, one L for every prompt,
    Y_a != Y_b (neither a prefix of the other), no subordinate prompt among the dominant ones.
    """
    cfg = sets.config
    per_set_dom = Counter(sets.dominant.set_ids)
    per_set_sub = Counter(sets.subordinate.set_ids)
    ratios = {per_set_dom[s] / per_set_sub[s] for s in per_set_sub}
    assert set(per_set_dom) == set(per_set_sub), "some set lacks dominant or subordinate statements"
    assert ratios == {cfg.P * cfg.n / cfg.n}, f"P per set is {ratios}, expected {cfg.P}"
    lengths = {
        relative_length(p, d)
        for es in (sets.dominant, sets.subordinate)
        for p, d in zip(es.prompts, es.distinct_positions, strict=True)
    }
    assert len(lengths) == 1, f"prompts have different L: {sorted(lengths)}"
    ya = {s: tuple(a) for s, a in zip(sets.dominant.set_ids, sets.dominant.answers, strict=True)}
    for s, a, o in zip(
        sets.subordinate.set_ids,
        sets.subordinate.answers,
        sets.subordinate.overshadow_answers,
        strict=True,
    ):
        assert tuple(o) == ya[s], "overshadow answer of a subordinate prompt is not its set's Y_a"
        k = min(len(a), len(o))
        assert tuple(a[:k]) != tuple(o[:k]), f"set {s}: Y_b and Y_a are equal or one is a prefix"
    dom = {tuple(p) for p in sets.dominant.prompts}
    assert not any(tuple(p) in dom for p in sets.subordinate.prompts), (
        "a subordinate prompt occurs in the dominant set"
    )
    answers_by_prompt: dict[tuple, set] = {}
    for es in (sets.dominant, sets.subordinate):
        for p, a in zip(es.prompts, es.answers, strict=True):
            answers_by_prompt.setdefault(tuple(p), set()).add(tuple(a))
    assert all(len(v) == 1 for v in answers_by_prompt.values()), "a prompt has two gold answers"
    return {
        "task": sets.task,
        "P": float(next(iter(ratios))),
        "L": float(next(iter(lengths))),
        "span_len": sets.span_len,
        "n_sets": len(per_set_sub),
        "n_dominant": len(sets.dominant),
        "n_subordinate": len(sets.subordinate),
    }


def task_summary(
    tokenizer: Any = None, P: float = 5, n_sets: int = 4, seed: int = 0
) -> pd.DataFrame:
    """One row per family: an example subordinate prompt, its answer, Y_a, L and span length."""
    rows = []
    for name in TASKS:
        sets = make_task(name, tokenizer=tokenizer, P=P, n_sets=n_sets, seed=seed)
        df = sets.to_frame()
        sub = df[(df.kind == "subordinate") & (df.set_id == 0)].iloc[0]
        dom = df[(df.kind == "dominant") & (df.set_id == 0)].iloc[0]
        rows.append(
            {
                "task": name,
                "dominant prompt": dom.prompt_text,
                "Y_a": dom.answer_text,
                "subordinate prompt": sub.prompt_text,
                "Y_b": sub.answer_text,
                "span_len": sets.span_len,
                "L": round(sets.L_actual, 2),
            }
        )
    return pd.DataFrame(rows)
