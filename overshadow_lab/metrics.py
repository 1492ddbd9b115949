"""Metrics of overshadowing (SPEC §2): recall rate RR, hallucination rate HR, R = HR / RR."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def relative_hallucination_rate(hr: ArrayLike, rr: ArrayLike) -> np.ndarray | float:
    """Relative hallucination rate ``R = HR / RR`` in percent.

    ``hr`` and ``rr`` are fractions in [0, 1] (scalars or arrays of the same shape). Where the
    dominant set is not recalled at all (``rr == 0``) R is undefined and returned as NaN: the
    model has not learnt the knowledge that could overshadow anything, so no ratio is reported.
    """
    hr_arr = np.asarray(hr, dtype=float)
    rr_arr = np.asarray(rr, dtype=float)
    if np.any((hr_arr < 0) | (hr_arr > 1)) or np.any((rr_arr < 0) | (rr_arr > 1)):
        raise ValueError("hr and rr are fractions and must lie in [0, 1]; divide counts by set sizes first")
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(rr_arr > 0, 100.0 * hr_arr / np.where(rr_arr > 0, rr_arr, 1.0), np.nan)
    return float(r) if r.ndim == 0 else r
