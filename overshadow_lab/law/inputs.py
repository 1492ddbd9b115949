"""Checks and cleaning before any fit: the log base, the factor's values, R, the options.

Every public entry point of :mod:`overshadow_lab.law` calls these first, so bad input fails with
one line that names the fix before anything is computed: x ≤ 0 and fewer than three distinct x
values raise ``ValueError``; rows with a missing R, or with RR = 0 (where R is undefined), are
dropped with a :class:`LawDataWarning` that says how many; a confidence level outside (0, 1) or
too few bootstrap resamples raise ``ValueError``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from numpy.typing import ArrayLike

MIN_DISTINCT_X = 3
MIN_BOOT = 100  # a percentile interval needs resamples in both tails


class LawDataWarning(UserWarning):
    """Rows were dropped before a fit (the message says how many and why)."""


class LawFitWarning(UserWarning):
    """The data cannot support part of the answer (a constant R, a bootstrap scheme that would
    resample nothing); the message says what was done instead."""


def log_base_value(log_base: float | str) -> float:
    """The numeric base of a log (``"e"`` means Euler's number); must be > 0 and ≠ 1."""
    text = str(log_base).strip().lower()
    try:
        base = math.e if text in {"e", "ln"} else float(log_base)
    except (TypeError, ValueError):
        base = math.nan
    if not (math.isfinite(base) and base > 0) or base == 1:
        raise ValueError(
            f"log base must be positive and not 1 (a finite number such as 10, or e), "
            f"got {log_base!r}"
        )
    return base


def to_log(x: ArrayLike, log_base: float | str = 10) -> np.ndarray:
    """``log_base(x)`` elementwise."""
    return np.log(np.asarray(x, dtype=float)) / math.log(log_base_value(log_base))


def clean_xy(
    x: ArrayLike, y: ArrayLike, rr: ArrayLike | None = None, *, name: str = "x"
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Check and clean one factor's data before a fit; return ``(x, y, dropped_counts)``.

    * rows with RR = 0 (when ``rr`` is given) are dropped: R = HR / RR is undefined there;
    * rows with a missing or infinite R, or a missing x, are dropped;
    * both drops are announced with a :class:`LawDataWarning` that gives the counts;
    * an x that is zero, negative or infinite raises ``ValueError`` (log x is undefined);
    * fewer than ``MIN_DISTINCT_X`` distinct x values raise ``ValueError``.
    """
    xa = np.asarray(x, dtype=float).ravel()
    ya = np.asarray(y, dtype=float).ravel()
    if xa.shape != ya.shape:
        raise ValueError(f"{name} and R have different lengths ({xa.size} vs {ya.size})")
    keep = np.ones(xa.size, dtype=bool)
    dropped: dict[str, int] = {}
    if rr is not None:
        rra = np.asarray(rr, dtype=float).ravel()
        if rra.shape != xa.shape:
            raise ValueError(f"RR has {rra.size} values but there are {xa.size} rows")
        zero = rra == 0
        if zero.any():
            dropped["RR = 0 (R undefined)"] = int(zero.sum())
        keep &= ~zero
    missing = keep & (np.isnan(xa) | ~np.isfinite(ya))
    if missing.any():
        dropped["missing or infinite R / x"] = int(missing.sum())
    keep &= ~missing
    if dropped:
        what = ", ".join(f"{k}: {v}" for k, v in dropped.items())
        warnings.warn(
            f"dropped {sum(dropped.values())} of {xa.size} rows before fitting ({what})",
            LawDataWarning,
            stacklevel=3,
        )
    xa, ya = xa[keep], ya[keep]
    bad = ~(np.isfinite(xa) & (xa > 0))
    if bad.any():
        examples = ", ".join(f"{v:g}" for v in np.unique(xa[bad])[:3])
        raise ValueError(
            f"{int(bad.sum())} value(s) of {name} are not positive and finite ({examples}): the law "
            f"is linear in log {name}, so every {name} must be > 0; remove or correct those rows"
        )
    distinct = np.unique(xa)
    if distinct.size < MIN_DISTINCT_X:
        shown = ", ".join(f"{v:g}" for v in distinct) or "none"
        raise ValueError(
            f"need at least {MIN_DISTINCT_X} distinct values of {name} to fit a log-linear law and "
            f"judge it, got {distinct.size} ({shown}); add runs at more values of {name}"
        )
    return xa, ya, dropped


def kept_rows(x: ArrayLike, y: ArrayLike, rr: ArrayLike | None) -> np.ndarray:
    """The mask of rows that :func:`clean_xy` keeps (it raises on the rest)."""
    xr = np.asarray(x, dtype=float).ravel()
    yr = np.asarray(y, dtype=float).ravel()
    mask = ~(np.isnan(xr) | ~np.isfinite(yr))
    if rr is not None:
        mask &= np.asarray(rr, dtype=float).ravel() != 0
    return mask


def check_level(level: float) -> float:
    """A confidence level, which must lie strictly between 0 and 1 (0.95 means 95%)."""
    try:
        value = float(level)
    except (TypeError, ValueError):
        value = math.nan
    if not 0 < value < 1:
        raise ValueError(f"confidence level must lie in (0, 1), got {level}; use e.g. 0.95")
    return value


def check_n_boot(n_boot: int) -> int:
    """A number of bootstrap resamples: a whole number of at least :data:`MIN_BOOT`."""
    try:
        whole = not isinstance(n_boot, bool) and float(n_boot).is_integer()
    except (TypeError, ValueError):
        whole = False
    if not whole or n_boot < MIN_BOOT:
        raise ValueError(
            f"the number of bootstrap resamples must be a whole number of at least {MIN_BOOT} "
            f"(a percentile interval needs resamples in both tails; 2000 is usual), got {n_boot}"
        )
    return int(n_boot)


def check_factor_value(value: float, name: str = "x") -> float:
    """A planned value of a factor: finite and positive, since the law uses its log."""
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(
            f"{name} must be a positive finite number (the law uses its log), got {v:g}"
        )
    return v
