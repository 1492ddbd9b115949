# expect: 1
# A right answer, and a grandchild in a new session that outlives its parent and the time limit.
import os
import time

import numpy as np

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(120)
    os._exit(0)


def relative_hallucination_rate(hr, rr):
    hr, rr = np.asarray(hr, float), np.asarray(rr, float)
    if ((hr < 0) | (hr > 1) | (rr < 0) | (rr > 1)).any():
        raise ValueError("rates are fractions")
    r = np.where(rr > 0, 100 * hr / np.where(rr > 0, rr, 1), np.nan)
    return float(r) if r.ndim == 0 else r
