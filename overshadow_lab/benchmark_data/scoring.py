"""Scoring generated text: cut at the stop pattern, normalise, text exact match; EM summaries.

This is the *text* exact match of the benchmarks (SPEC §7: case, punctuation and articles
ignored). The token-id exact match of the lab's synthetic sets is
:func:`overshadow_lab.metrics.token_exact_match_rate`.
"""

from __future__ import annotations

import re
import string

import numpy as np
import pandas as pd

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
    """The generated answer up to the first newline or sentence punctuation."""
    m = re.search(pattern, text)
    return text[: m.start()] if m else text


def text_exact_match(prediction: str, golds: list[str] | str, articles: bool = True) -> bool:
    """Exact match of the cut, normalised prediction text against any gold answer text."""
    golds = [golds] if isinstance(golds, str) else list(golds)
    pred = normalize_answer(cut_answer(prediction), articles)
    return bool(pred) and any(pred == normalize_answer(g, articles) for g in golds)


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
