"""The table-level entry points the command line uses: a small query language and grouped fits.

``--where COL=VALUE`` (repeatable) becomes ``{COL: [VALUE, ...]}`` (:func:`parse_where`) and
selects rows (:func:`select_rows`: every column must match one of its values, numeric columns
compare as numbers); :func:`fit_law_frame` fits the selected rows, one law per ``group_by``
value, and refuses rows that mix configurations (:func:`check_one_configuration`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from overshadow_lab.law.bootstrap import bootstrap_law, check_scheme
from overshadow_lab.law.fit import LawFit, fit_law
from overshadow_lab.law.inputs import check_level, check_n_boot, log_base_value


def parse_where(items: Sequence[str] | None) -> dict[str, list[str]]:
    """``["figure=fig2", "factor=P"]`` -> ``{"figure": ["fig2"], "factor": ["P"]}``."""
    out: dict[str, list[str]] = {}
    for item in items or []:
        col, sep, val = item.partition("=")
        if not sep or not col.strip():
            raise ValueError(f"--where takes COL=VALUE, got {item!r}")
        out.setdefault(col.strip(), []).append(val.strip())
    return out


def select_rows(df: pd.DataFrame, where: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Rows matching every ``column: value`` condition (a list of values means any of them).

    Numeric columns compare numerically (``P=5`` matches 5.0), others as text.
    """
    mask = pd.Series(True, index=df.index)
    for col, wanted in (where or {}).items():
        if col not in df.columns:
            raise ValueError(
                f"no column {col!r} to select on; columns: {', '.join(map(str, df.columns))}"
            )
        values = wanted if isinstance(wanted, (list, tuple, set)) else [wanted]
        series = df[col]
        if pd.api.types.is_numeric_dtype(series):
            try:
                nums = [float(v) for v in values]
            except (TypeError, ValueError):
                raise ValueError(
                    f"column {col!r} is numeric; got non-numeric value(s) {values}"
                ) from None
            m = np.zeros(len(df), dtype=bool)
            for v in nums:
                m |= np.isclose(series.to_numpy(dtype=float), v)
            mask &= m
        else:
            mask &= series.astype(str).isin([str(v) for v in values])
    out = df[mask]
    if out.empty:
        raise ValueError(f"no rows match {dict(where or {})}")
    return out


def differing_settings(df: pd.DataFrame, settings: Sequence[str]) -> dict[str, list[str]]:
    """The columns of ``settings`` that take more than one value in ``df``, with their values.

    A missing value counts as a value of its own, so a column filled in some rows and empty in
    others differs.
    """
    out = {}
    for col in settings:
        if col in df.columns:
            values = df[col].drop_duplicates()
            if len(values) > 1:
                out[col] = [str(v) for v in values.sort_values(na_position="last")]
    return out


def check_one_configuration(df: pd.DataFrame, settings: Sequence[str]) -> None:
    """Raise ``ValueError`` naming every column of ``settings`` whose value differs between rows.

    A law fitted across runs made with, say, two learning rates mixes two laws; the runs have to
    be selected (``--where lr=0.003``) or fitted apart (``--group-by lr``) first.
    """
    diff = differing_settings(df, settings)
    if diff:
        shown = "; ".join(
            f"{col} takes {len(v)} values ({', '.join(v[:4])}{', ...' if len(v) > 4 else ''})"
            for col, v in diff.items()
        )
        first = next(iter(diff))
        raise ValueError(
            f"the rows mix configurations: {shown}; select one with --where {first}=VALUE or fit "
            f"each apart with --group-by {first} (where= / group_by= in Python)"
        )


def fit_law_frame(
    df: pd.DataFrame,
    x: str,
    y: str,
    *,
    where: Mapping[str, Any] | None = None,
    group_by: str | None = None,
    settings: Sequence[str] = (),
    rr_col: str | None = "RR",
    log_base: float | str = 10,
    level: float = 0.95,
    robust: bool = False,
    ci: str = "t",
    scheme: str = "within-x",
    cluster: str | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> LawFit | dict[str, LawFit]:
    """Fit the law to a table: rows chosen by ``where``, one fit per ``group_by`` value.

    ``settings`` names the columns that must hold one value within each fit (a sweep's fixed
    settings: learning rate, data sizes, ...); rows that differ in any of them are refused before
    anything is fitted, with a message naming the columns (:func:`check_one_configuration`).
    ``rr_col`` names the recall-rate column used to drop RR = 0 rows (ignored when absent).
    ``ci="bootstrap"`` replaces the slope interval by a percentile bootstrap (``scheme``: rows,
    within-x, clusters or residuals; ``cluster`` names the cluster column, e.g. ``seed``).
    """
    for col in (x, y):
        if col not in df.columns:
            raise ValueError(f"no column {col!r}; columns: {', '.join(map(str, df.columns))}")
    if ci not in {"t", "bootstrap"}:
        raise ValueError(f"ci must be 't' or 'bootstrap', got {ci!r}")
    level = check_level(level)
    log_base_value(log_base)
    if ci == "bootstrap":
        n_boot = check_n_boot(n_boot)
        check_scheme(scheme)
        if cluster is not None and cluster not in df.columns:
            raise ValueError(f"no column {cluster!r} to bootstrap over")
    data = select_rows(df, where) if where else df
    if group_by is not None and group_by not in data.columns:
        raise ValueError(f"no column {group_by!r} to group by")
    if group_by is None:
        parts = {None: data}
    else:
        parts = {str(k): g for k, g in data.groupby(group_by, sort=True)}
    fixed = [c for c in settings if c not in {x, group_by}]
    for part in parts.values():
        check_one_configuration(part, fixed)

    def one(part: pd.DataFrame) -> LawFit:
        xs = pd.to_numeric(part[x], errors="coerce").to_numpy(dtype=float)
        ys = pd.to_numeric(part[y], errors="coerce").to_numpy(dtype=float)
        rr = (
            pd.to_numeric(part[rr_col], errors="coerce").to_numpy(dtype=float)
            if rr_col and rr_col in part.columns and rr_col != y
            else None
        )
        fit = fit_law(xs, ys, rr=rr, log_base=log_base, level=level, robust=robust, name=x)
        if ci == "bootstrap":
            boot = bootstrap_law(
                xs,
                ys,
                scheme="clusters" if cluster else scheme,
                clusters=part[cluster].to_numpy() if cluster else None,
                rr=rr,
                n_boot=n_boot,
                level=level,
                log_base=log_base,
                seed=seed,
            )
            fit.slope_ci_override = boot.slope_ci
            fit.ci_scheme = boot.scheme
        return fit

    if group_by is None:
        return one(data)
    return {k: one(g) for k, g in parts.items()}
