# expect: 1
# A right answer, then allocates without end: the memory limit stops that cell, not the grader.
import numpy as np


def relative_hallucination_rate(hr, rr):
    hr, rr = np.asarray(hr, float), np.asarray(rr, float)
    if ((hr < 0) | (hr > 1) | (rr < 0) | (rr > 1)).any():
        raise ValueError("rates are fractions")
    r = np.where(rr > 0, 100 * hr / np.where(rr > 0, rr, 1), np.nan)
    return float(r) if r.ndim == 0 else r


def _bomb():
    hog = []
    while True:
        hog.append(bytes(64 * 2**20))  # calloc'd: address space, not resident memory


_bomb()
