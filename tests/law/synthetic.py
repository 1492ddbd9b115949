"""Data for the law's tests: sweeps drawn from a known law, and the paper's digitised figures."""

import numpy as np
import pandas as pd

GRID = np.array([2.0, 5.0, 10.0, 25.0, 50.0, 100.0])


def sweep(slope=10.0, intercept=30.0, noise=2.0, seeds=3, seed=0):
    """``seeds`` runs at each x of GRID from ``R = slope·log10 x + intercept`` plus normal noise."""
    rng = np.random.default_rng(seed)
    x = np.repeat(GRID, seeds)
    return x, slope * np.log10(x) + intercept + rng.normal(0, noise, x.size)


def design(seed=0):
    """A lab-style table: a P sweep at L = 5 and an L sweep at P = 5, three seeds, known law."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in GRID:
        for s in range(3):
            rows.append({"factor": "P", "P": p, "L": 5.0, "S": 1e6, "seed": s})
    for lv in GRID:
        for s in range(3):
            rows.append({"factor": "L", "P": 5.0, "L": lv, "S": 1e6, "seed": s})
    df = pd.DataFrame(rows)
    df["R"] = 12 * np.log10(df.P) + 6 * np.log10(df.L) + 20 + rng.normal(0, 1.5, len(df))
    df["RR"] = 1.0
    return df
