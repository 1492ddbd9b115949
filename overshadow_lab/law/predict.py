"""Prediction: the paper's Eq. 5 error, held-out checks, and R for a planned configuration.

:func:`relative_prediction_error` is Eq. 5 of the law paper; :func:`holdout_prediction` fits on
some x values and scores the others with intervals; :func:`predict_planned` is "predict before
training" from a one-factor or a joint law; :func:`loo_relative_error` scores a way of building a
law by leaving each point out in turn.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from overshadow_lab.law.bootstrap import bootstrap_weights, weighted_lines
from overshadow_lab.law.fit import LawFit, fit_law
from overshadow_lab.law.inputs import (
    MIN_DISTINCT_X,
    LawDataWarning,
    check_factor_value,
    check_level,
    check_n_boot,
    clean_xy,
    kept_rows,
    to_log,
)
from overshadow_lab.law.joint import JointLawFit


def relative_prediction_error(predicted: ArrayLike, actual: ArrayLike) -> np.ndarray | float:
    """The paper's Eq. 5, ``|predicted − actual| / actual``, as a fraction (0.08 = 8%).

    ``actual`` must be positive: the relative error of predicting an R of 0 is undefined.
    """
    p = np.asarray(predicted, dtype=float)
    a = np.asarray(actual, dtype=float)
    if np.any(~(a > 0)):
        raise ValueError(
            "actual R must be positive for a relative error (Eq. 5 divides by it); drop the "
            "rows with R = 0 or NaN, or use the absolute error |predicted − actual|"
        )
    e = np.abs(p - a) / a
    return float(e) if e.ndim == 0 else e


def holdout_prediction(
    x: ArrayLike,
    y: ArrayLike,
    train: ArrayLike | Callable[[np.ndarray], np.ndarray],
    *,
    rr: ArrayLike | None = None,
    average_test: bool = False,
    log_base: float | str = 10,
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Fit on the training rows, predict the others; Eq. 5 errors with intervals.

    ``train`` is a boolean mask or a function of x (e.g. ``lambda x: x <= 25``). With
    ``average_test`` the held-out runs at each x are averaged first (the paper's points are
    means over repeats) and the prediction interval is the one for a mean of that many runs.
    Rows with a missing R or RR = 0 are dropped first (with a warning).

    Returns one row per held-out point (x, runs, actual, predicted, pi_lo, pi_hi, covered,
    rel_error) and a summary: the mean relative error with a percentile bootstrap interval that
    resamples the training rows (refitting the line) and the held-out points together.
    """
    n_boot = check_n_boot(n_boot)
    level = check_level(level)
    xa = np.asarray(x, dtype=float).ravel()
    ya = np.asarray(y, dtype=float).ravel()
    mask = np.asarray(train(xa) if callable(train) else train, dtype=bool).ravel()
    if mask.shape != xa.shape:
        raise ValueError("the training mask must have one entry per row")
    clean_xy(xa, ya, rr)  # validates x and announces dropped rows
    kept = kept_rows(xa, ya, rr)
    xa, ya, mask = xa[kept], ya[kept], mask[kept]
    if mask.all() or not mask.any():
        raise ValueError("the split must leave at least one training and one held-out row")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LawDataWarning)
        fit = fit_law(xa[mask], ya[mask], log_base=log_base, level=level)
    test = pd.DataFrame({"x": xa[~mask], "actual": ya[~mask]})
    if average_test:
        test = test.groupby("x", sort=True)["actual"].agg(["mean", "size"]).reset_index()
        test.columns = ["x", "actual", "runs"]
    else:
        test["runs"] = 1
    zero = test["actual"] <= 0
    if zero.any():
        warnings.warn(
            f"dropped {int(zero.sum())} held-out point(s) with R = 0: Eq. 5 divides by the actual "
            "R, so their relative error is undefined",
            LawDataWarning,
            stacklevel=2,
        )
        test = test[~zero]
        if test.empty:
            raise ValueError("every held-out point has R = 0: Eq. 5 is undefined for all of them")
    xt, yt, runs = (test[c].to_numpy(dtype=float) for c in ("x", "actual", "runs"))
    pred = fit.predict(xt)
    lo, hi = fit.prediction_interval(xt, n_runs=runs)
    err = np.asarray(relative_prediction_error(pred, yt), dtype=float).ravel()
    table = pd.DataFrame(
        {
            "x": xt,
            "runs": runs.astype(int),
            "actual": yt,
            "predicted": pred,
            "pi_lo": lo,
            "pi_hi": hi,
            "covered": (yt >= lo) & (yt <= hi),
            "rel_error": err,
        }
    )
    rng = np.random.default_rng(seed)
    u_train = to_log(fit.x, log_base)
    w = bootstrap_weights(fit.n, n_boot, scheme="rows", rng=rng)
    slopes, intercepts = weighted_lines(u_train, fit.y, w)
    ok = np.isfinite(slopes)
    idx = rng.integers(0, xt.size, size=(n_boot, xt.size))
    u_test = to_log(xt, log_base)
    boot_pred = slopes[:, None] * u_test[idx] + intercepts[:, None]
    boot_err = np.mean(np.abs(boot_pred - yt[idx]) / yt[idx], axis=1)[ok]
    q = np.quantile(boot_err, [(1 - level) / 2, (1 + level) / 2])
    summary = {
        "mean_rel_error": float(err.mean()),
        "ci_lo": float(q[0]),
        "ci_hi": float(q[1]),
        "coverage": float(table["covered"].mean()),
        "n_train": int(mask.sum()),
        "n_test": int(xt.size),
        "slope": fit.slope,
        "intercept": fit.intercept,
    }
    return table, summary


def predict_planned(
    fit: LawFit | JointLawFit, level: float | None = None, **values: float
) -> dict[str, float]:
    """Predict R for a planned configuration, before training anything.

    A :class:`LawFit` takes the factor's value as ``x=``; a :class:`JointLawFit` takes every
    varying factor by name (``P=40, L=10``). Returns the predicted R with a prediction interval
    for one new run; values outside the fitted range are extrapolations, marked as such.
    """
    level = check_level(fit.level if level is None else level)
    if isinstance(fit, LawFit):
        if set(values) != {"x"}:
            raise ValueError("a one-factor law takes one value: predict_planned(fit, x=...)")
        x0 = check_factor_value(values["x"])
        lo, hi = fit.prediction_interval(np.array([x0]), level)
        extrapolated = not (fit.x.min() <= x0 <= fit.x.max())
        return {
            "predicted": float(fit.predict(np.array([x0]))[0]),
            "pi_lo": float(lo[0]),
            "pi_hi": float(hi[0]),
            "level": level,
            "extrapolated": extrapolated,
        }
    lo, hi = fit.prediction_interval(level, **values)
    return {
        "predicted": fit.predict(**values),
        "pi_lo": lo,
        "pi_hi": hi,
        "level": level,
        "extrapolated": fit.extrapolates(**values),
    }


def loo_relative_error(
    x: np.ndarray, y: np.ndarray, make: Callable[[np.ndarray, np.ndarray], LawFit]
) -> float:
    """Mean Eq. 5 error of predicting each point from a law ``make(x, y)`` fitted without it.

    Points whose removal leaves fewer than three distinct x values are skipped; NaN when none
    can be predicted.
    """
    errs = []
    for i in range(x.size):
        m = np.arange(x.size) != i
        if np.unique(x[m]).size < MIN_DISTINCT_X:
            continue
        errs.append(relative_prediction_error(make(x[m], y[m]).predict(x[i : i + 1])[0], y[i]))
    return float(np.mean(errs)) if errs else math.nan
