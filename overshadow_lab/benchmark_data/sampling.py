"""A seeded sample of benchmark rows, spread evenly over subtasks."""

from __future__ import annotations

import numpy as np
import pandas as pd


def sample_rows(
    df: pd.DataFrame, limit: int | None, seed: int = 0, by: str | None = None
) -> pd.DataFrame:
    """A seeded random sample of ``limit`` rows (all rows if None), spread evenly over the groups
    of column ``by`` (a group smaller than its share gives the rest to the others)."""
    if limit is None or limit >= len(df):
        return df.reset_index(drop=True)
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    rng = np.random.default_rng(seed)
    if by is None or by not in df.columns:
        return df.iloc[np.sort(rng.choice(len(df), size=limit, replace=False))].reset_index(
            drop=True
        )
    groups = {g: rng.permutation(np.flatnonzero(df[by].to_numpy() == g)) for g in pd.unique(df[by])}
    quota = dict.fromkeys(groups, 0)
    left = limit
    while left:
        open_groups = [g for g in groups if quota[g] < len(groups[g])]
        for g in open_groups[:left]:
            quota[g] += 1
            left -= 1
    take = np.sort(np.concatenate([groups[g][: quota[g]] for g in groups]))
    return df.iloc[take].reset_index(drop=True)
