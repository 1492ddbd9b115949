"""Synthetic knowledge sets for overshadowing experiments (SPEC §1-3).

One *knowledge set* holds a shared token span ``X_share``, ``m = P * n`` dominant statements
``X_share ⊙ x_a_i -> Y_a`` and ``n`` subordinate statements ``X_share ⊙ x_b_j -> Y_b``. Every token
is drawn at random from a vocabulary: the built-in integer vocabulary ``0 .. vocab-1`` or the
ordinary (non-special) tokens of any Hugging Face tokenizer. Within one set all tokens are
distinct (so the distinct spans really differ and ``Y_a != Y_b``); different sets are drawn
independently and may reuse tokens, as in the paper.

Choices the papers leave open (SPEC: OPEN), all explicit parameters here:

* ``position``: where the distinct span goes into ``X_share``: ``"end"`` (default, the
  paper's "A famous ... singer" reads the distinct word last), ``"middle"``, ``"start"`` or
  ``"random"`` (one insertion point per set, drawn uniformly, shared by the set's statements).
* ``span_len`` / ``answer_len``: tokens per distinct span and per answer.
* Evaluation prompts are the training prompts themselves: RR asks whether the dominant
  statements were learnt, HR whether the subordinate prompts are answered with ``Y_a``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np
import pandas as pd

from overshadow_lab.configs import override

POSITIONS = ("end", "middle", "start", "random")


@dataclass(frozen=True)
class SyntheticConfig:
    """Parameters of one synthetic corpus (SPEC §2-3); see the module docstring."""

    P: float = 5
    L: float = 5
    n: int = 1
    n_sets: int = 100
    span_len: int = 1
    answer_len: int = 1
    position: str = "end"
    vocab: Any = 2000
    seed: int = 0

    @property
    def m(self) -> int:
        """Dominant statements per set, ``P * n``."""
        return int(round(self.P * self.n))

    @property
    def shared_len(self) -> int:
        """Tokens in ``X_share``: ``(L - 1) * span_len``."""
        return int(round((self.L - 1) * self.span_len))

    @property
    def prompt_len(self) -> int:
        return self.shared_len + self.span_len

    @property
    def seq_len(self) -> int:
        return self.prompt_len + self.answer_len

    def tokens_per_set(self) -> int:
        """Distinct tokens one set needs: shared span, every distinct span and both answers."""
        return self.shared_len + (self.m + self.n) * self.span_len + 2 * self.answer_len

    def describe(self) -> dict:
        """The configuration as plain values (the vocabulary as its size or tokenizer name)."""
        d = (
            asdict(self)
            if isinstance(self.vocab, numbers.Integral)
            else {k: getattr(self, k) for k in self.__dataclass_fields__}
        )
        if not isinstance(self.vocab, numbers.Integral):
            d["vocab"] = getattr(self.vocab, "name_or_path", type(self.vocab).__name__)
        return d


@dataclass
class EvalSet:
    """Prompts with gold answers; positions index into each prompt."""

    prompts: list[list[int]]
    answers: list[list[int]]
    set_ids: list[int]
    overshadow_answers: list[list[int]] | None = None
    shared_positions: list[list[int]] = field(default_factory=list)
    distinct_positions: list[list[int]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, indices: list[int]) -> EvalSet:
        """A new set of the prompts at ``indices`` (in that order), every per-prompt field kept
        aligned; a field that was never filled (None or empty) stays so."""
        n = len(self.prompts)
        bad = [i for i in indices if not -n <= int(i) < n]
        if bad:
            raise IndexError(f"indices {bad[:5]} out of range for an EvalSet of {n} prompts")

        def pick(values):
            return [values[int(i)] for i in indices] if values else values

        return replace(self, **{f.name: pick(getattr(self, f.name)) for f in fields(self)})


@dataclass
class KnowledgeSets:
    """A synthetic corpus: training sequences plus the dominant and subordinate evaluation sets."""

    config: SyntheticConfig
    vocab_size: int
    train_sequences: list[list[int]]
    dominant: EvalSet
    subordinate: EvalSet
    tokenizer: Any = None

    def to_frame(self) -> pd.DataFrame:
        """One row per statement: set_id, kind, index in its set, prompt, distinct span, answer."""
        rows = []
        for kind, es in (("dominant", self.dominant), ("subordinate", self.subordinate)):
            counter: dict[int, int] = {}
            for i, (p, a, s) in enumerate(zip(es.prompts, es.answers, es.set_ids, strict=True)):
                j = counter.get(s, 0)
                counter[s] = j + 1
                rows.append(
                    {
                        "set_id": s,
                        "kind": kind,
                        "index": j,
                        "prompt": list(p),
                        "distinct": [p[k] for k in es.distinct_positions[i]],
                        "answer": list(a),
                        "overshadow_answer": (
                            list(es.overshadow_answers[i]) if es.overshadow_answers else None
                        ),
                    }
                )
        return pd.DataFrame(rows).sort_values(["set_id", "kind", "index"], ignore_index=True)

    @property
    def n_train_tokens(self) -> int:
        return sum(len(s) for s in self.train_sequences)


def _is_int(x: Any) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _vocab_ids(vocab: Any) -> tuple[np.ndarray, int]:
    """Candidate token ids and the model's vocabulary size for a vocabulary source."""
    if _is_int(vocab):
        return np.arange(int(vocab)), int(vocab)
    if hasattr(vocab, "get_vocab") and hasattr(vocab, "__len__"):
        size = len(vocab)
        special = set(getattr(vocab, "all_special_ids", []) or [])
        ids = np.array([i for i in range(size) if i not in special])
        return ids, size
    raise ValueError(
        f"vocab must be an integer vocabulary size or a Hugging Face tokenizer, got "
        f"{type(vocab).__name__}; pass e.g. vocab=2000 or vocab=AutoTokenizer.from_pretrained(...)"
    )


def validate_config(cfg: SyntheticConfig) -> None:
    """Raise ValueError naming the limit and the fix for any inconsistent parameter."""
    for name in ("n", "n_sets", "span_len", "answer_len", "seed"):
        v = getattr(cfg, name)
        if not _is_int(v):
            if isinstance(v, float) and v.is_integer():
                continue
            raise ValueError(
                f"{name} is a count and must be a whole number, got {v!r}; pass an integer "
                f"(e.g. {name}={max(1, int(v)) if isinstance(v, numbers.Real) else 1})"
            )
    for name in ("n", "n_sets", "span_len", "answer_len"):
        if int(getattr(cfg, name)) < 1:
            raise ValueError(
                f"{name} must be at least 1, got {getattr(cfg, name)!r}; use {name}>=1"
            )
    if not isinstance(cfg.P, numbers.Real) or not math.isfinite(cfg.P) or cfg.P < 1:
        raise ValueError(
            f"P = m/n is the relative popularity of the dominant knowledge and must be >= 1, got "
            f"{cfg.P!r}; swap the roles of the two sets or use P >= 1 (paper grid 2..100)"
        )
    m = cfg.P * cfg.n
    if abs(m - round(m)) > 1e-9:
        raise ValueError(
            f"P * n = {cfg.P} * {cfg.n} = {m:g} dominant statements is not a whole number; pick n "
            f"so that P * n is an integer (e.g. n=2 for P=2.5)"
        )
    if not isinstance(cfg.L, numbers.Real) or not math.isfinite(cfg.L) or cfg.L <= 1:
        raise ValueError(
            f"L = (len(X_share) + len(x_b)) / len(x_b) must be > 1 (a shared span of at least "
            f"one token), got {cfg.L!r}; use L >= 2 (paper grid 2..100)"
        )
    shared = (cfg.L - 1) * cfg.span_len
    if abs(shared - round(shared)) > 1e-9:
        raise ValueError(
            f"L = {cfg.L} with span_len = {cfg.span_len} gives len(X_share) = (L-1)*span_len = "
            f"{shared:g} tokens, not a whole number; choose L so that (L-1)*span_len is an integer "
            f"(e.g. span_len=1 and integer L)"
        )
    if cfg.position not in POSITIONS:
        raise ValueError(f"position must be one of {', '.join(POSITIONS)}, got {cfg.position!r}")
    ids, _ = _vocab_ids(cfg.vocab)
    need = cfg.tokens_per_set()
    if len(ids) < need:
        raise ValueError(
            f"vocabulary too small: one knowledge set needs {need} distinct tokens "
            f"(len(X_share)={cfg.shared_len} + (m+n)*span_len={(cfg.m + cfg.n) * cfg.span_len} + "
            f"2*answer_len={2 * cfg.answer_len}) but the vocabulary offers {len(ids)}; "
            f"use vocab >= {need} or lower P, L or span_len"
        )


def insert_span(shared: list[int], span: list[int], position: str | int = "end") -> list[int]:
    """``X_share ⊙ x``: the prompt with the distinct ``span`` inserted into ``shared``.

    ``position``: ``"end"`` (after the shared span), ``"start"``, ``"middle"`` (after the first
    ``len(shared) // 2`` shared tokens) or an integer index in ``0 .. len(shared)``.
    """
    if isinstance(position, str):
        if position not in ("end", "start", "middle"):
            raise ValueError(
                f"position must be 'end', 'start', 'middle' or an index, got {position!r}"
            )
        at = {"end": len(shared), "start": 0, "middle": len(shared) // 2}[position]
    else:
        at = int(position)
        if not 0 <= at <= len(shared):
            raise ValueError(
                f"position index {at} is outside 0..{len(shared)} (the shared span's length)"
            )
    return list(shared[:at]) + list(span) + list(shared[at:])


def _insert(shared: list[int], span: list[int], at: int) -> tuple[list[int], list[int], list[int]]:
    prompt = insert_span(shared, span, at)
    distinct = list(range(at, at + len(span)))
    shared_pos = [i for i in range(len(prompt)) if i < at or i >= at + len(span)]
    return prompt, shared_pos, distinct


def make_knowledge_sets(config: SyntheticConfig | None = None, **overrides: Any) -> KnowledgeSets:
    """Draw a synthetic corpus of ``n_sets`` knowledge sets (deterministic for ``seed``).

    ``make_knowledge_sets(P=10, L=5, seed=1)`` or ``make_knowledge_sets(SyntheticConfig(...))``.
    Raises ValueError (naming the limit and the fix) for inconsistent parameters.
    """
    cfg = config if config is not None else SyntheticConfig()
    cfg = override(cfg, overrides, "parameter")
    validate_config(cfg)
    ids, vocab_size = _vocab_ids(cfg.vocab)
    rng = np.random.default_rng(int(cfg.seed))
    m, n, k, la = cfg.m, int(cfg.n), int(cfg.span_len), int(cfg.answer_len)
    ls = cfg.shared_len
    dom = EvalSet([], [], [], None, [], [])
    sub = EvalSet([], [], [], [], [], [])
    train: list[list[int]] = []
    for s in range(int(cfg.n_sets)):
        toks = [int(t) for t in rng.choice(ids, size=cfg.tokens_per_set(), replace=False)]
        shared, rest = toks[:ls], toks[ls:]
        ya, yb = rest[:la], rest[la : 2 * la]
        spans = [rest[2 * la + i * k : 2 * la + (i + 1) * k] for i in range(m + n)]
        if cfg.position == "end":
            at = ls
        elif cfg.position == "start":
            at = 0
        elif cfg.position == "middle":
            at = ls // 2
        else:
            at = int(rng.integers(0, ls + 1))
        for i, span in enumerate(spans):
            prompt, sp, dp = _insert(shared, span, at)
            target, es = (ya, dom) if i < m else (yb, sub)
            es.prompts.append(prompt)
            es.answers.append(list(target))
            es.set_ids.append(s)
            es.shared_positions.append(sp)
            es.distinct_positions.append(dp)
            if i >= m:
                es.overshadow_answers.append(list(ya))
            train.append(prompt + list(target))
    return KnowledgeSets(
        config=cfg,
        vocab_size=vocab_size,
        train_sequences=train,
        dominant=dom,
        subordinate=sub,
        tokenizer=None if _is_int(cfg.vocab) else cfg.vocab,
    )
