"""Honest submissions shared by the grading tests: one right, one with the classic slip."""

GOOD = """
import numpy as np
def relative_hallucination_rate(hr, rr):
    hr, rr = np.asarray(hr, float), np.asarray(rr, float)
    if ((hr < 0) | (hr > 1) | (rr < 0) | (rr > 1)).any():
        raise ValueError("bad")
    r = np.where(rr > 0, 100 * hr / np.where(rr > 0, rr, 1), np.nan)
    return float(r) if r.ndim == 0 else r
"""

NO_PERCENT = "def relative_hallucination_rate(hr, rr):\n    return hr / rr\n"
