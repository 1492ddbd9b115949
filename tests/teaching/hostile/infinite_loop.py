# expect: 0
# Right on scalars, but never returns on arrays: it runs into the time limit.
import numpy as np


def relative_hallucination_rate(hr, rr):
    if np.ndim(hr):
        while True:
            pass
    if not (0 <= hr <= 1 and 0 <= rr <= 1):
        raise ValueError("rates are fractions")
    return 100 * hr / rr if rr else float("nan")
