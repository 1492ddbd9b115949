"""Scoring generated text: cut at the stop pattern, normalise, text exact match; EM summaries
with Wilson intervals, and paired tests between two methods on the same rows.

This is the *text* exact match of the benchmarks (SPEC §7: case, punctuation and articles
ignored). The token-id exact match of the lab's synthetic sets is
:func:`overshadow_lab.metrics.token_exact_match_rate`.

Two matches are scored on every row: :func:`text_exact_match` (the protocol's: the cut answer
equals a gold answer) and :func:`text_contains_match` (a gold answer occurs, as whole words, in
the cut answer: an instruct model that restates the question before the answer, "The captain of
the Mayflower was Ed Sheeran", is right by this one and wrong by the first).
"""

from __future__ import annotations

import re
import string

import numpy as np
import pandas as pd
from scipy.stats import binomtest, norm

from overshadow_lab.metrics import bootstrap_ci

STOP_PATTERN = r"\n|[.,!?;](?=\s|$)"  # newline, or sentence punctuation not inside a number/name

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT_TABLE = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str, articles: bool = True) -> str:
    """Lower case, drop punctuation (and, by default, the articles a/an/the), squeeze spaces."""
    text = str(text).lower().translate(_PUNCT_TABLE)
    if articles:
        text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def cut_answer(text: str, pattern: str = STOP_PATTERN) -> str:
    """The generated answer up to the first newline or sentence punctuation after its first
    visible character (leading spaces and blank lines are kept, not taken for the end)."""
    lead = len(text) - len(text.lstrip())
    m = re.search(pattern, text[lead:])
    return text[: lead + m.start()] if m else text


def text_exact_match(prediction: str, golds: list[str] | str, articles: bool = True) -> bool:
    """Exact match of the cut, normalised prediction text against any gold answer text."""
    golds = [golds] if isinstance(golds, str) else list(golds)
    pred = normalize_answer(cut_answer(prediction), articles)
    return bool(pred) and any(pred == normalize_answer(g, articles) for g in golds)


def text_contains_match(prediction: str, golds: list[str] | str, articles: bool = True) -> bool:
    """Whether a normalised gold answer occurs as whole words in the cut, normalised prediction."""
    golds = [golds] if isinstance(golds, str) else list(golds)
    pred = f" {normalize_answer(cut_answer(prediction), articles)} "
    return any((g := normalize_answer(gold, articles)) and f" {g} " in pred for gold in golds)


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n`` (never zero-width, stays in [0, 1])."""
    if n <= 0:
        return (np.nan, np.nan)
    z = float(norm.ppf(0.5 + confidence / 2))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def em_wilson(em) -> dict[str, float]:
    """EM as a fraction with its Wilson 95% interval."""
    v = np.asarray(em, dtype=bool)
    lo, hi = wilson_interval(int(v.sum()), len(v))
    return {"em": float(v.mean()) if len(v) else np.nan, "em_lo": lo, "em_hi": hi, "n": len(v)}


def mcnemar_exact(a, b) -> dict[str, float]:
    """McNemar's exact test of two methods' right/wrong on the same rows: ``only_a`` rows right
    by ``a`` only, ``only_b`` by ``b`` only, and the two-sided binomial p-value of that split
    (1.0 when no row differs)."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired results need the same rows: got {a.size} and {b.size}")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    n = only_a + only_b
    p = float(binomtest(only_a, n, 0.5).pvalue) if n else 1.0
    return {"only_a": only_a, "only_b": only_b, "p": p}


def em_summary(em, n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """EM as a fraction with a percentile-bootstrap 95% interval over rows."""
    v = np.asarray(em, dtype=float)
    lo, hi = bootstrap_ci(v, n_boot=n_boot, seed=seed) if len(v) else (np.nan, np.nan)
    return {"em": float(v.mean()) if len(v) else np.nan, "em_lo": lo, "em_hi": hi, "n": int(len(v))}


def paired_difference(a, b, n_boot: int = 2000, seed: int = 0) -> dict[str, float]:
    """Mean of ``a - b`` over paired rows with a bootstrap 95% interval (rows resampled together)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    lo, hi = bootstrap_ci(d, n_boot=n_boot, seed=seed)
    return {"diff": float(d.mean()), "diff_lo": lo, "diff_hi": hi, "n": int(len(d))}


def table3_layout(
    results: pd.DataFrame, model_name: str, value: str = "em", n_boot: int = 1000
) -> pd.DataFrame:
    """EM in percent in the layout of the paper's Table 3: one row per method, one column per task,
    each cell ``"EM [lo, hi]"`` (bootstrap 95% interval over rows)."""
    rows = []
    for method, g in results.groupby("method", sort=False):
        row = {"model": model_name, "method": method}
        for task, t in g.groupby("subtask", sort=False):
            s = em_summary(t[value].astype(float), n_boot=n_boot)
            row[task] = f"{100 * s['em']:.1f} [{100 * s['em_lo']:.0f}, {100 * s['em_hi']:.0f}]"
        rows.append(row)
    return pd.DataFrame(rows)
