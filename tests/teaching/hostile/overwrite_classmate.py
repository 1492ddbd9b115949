# expect: 1
# A right answer, and an attempt to replace every classmate's file with a wrong one.
from pathlib import Path

import numpy as np

WRONG = "def relative_hallucination_rate(hr, rr):\n    return -1.0\n"
for path in Path("__SUBMISSIONS__").glob("*.py"):
    if path.name != "overwrite_classmate.py":
        try:
            path.write_text(WRONG)
        except OSError:
            pass


def relative_hallucination_rate(hr, rr):
    hr, rr = np.asarray(hr, float), np.asarray(rr, float)
    if ((hr < 0) | (hr > 1) | (rr < 0) | (rr > 1)).any():
        raise ValueError("rates are fractions")
    r = np.where(rr > 0, 100 * hr / np.where(rr > 0, rr, 1), np.nan)
    return float(r) if r.ndim == 0 else r
