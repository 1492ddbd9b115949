"""Predict before training: carry a synthetic law over to natural-language tasks, and score it.

The law paper's practical claim [B Eq. 5, Fig. 3] is that a law fitted on synthetic corpora
predicts how much a model fine-tuned on a real task will hallucinate, before that model is
trained. How the synthetic law meets a task whose R sits at another level is not stated (SPEC
§4, OPEN). This module makes every choice explicit and scores each one the same way.

**Unit of prediction.** A *point* is one task at one value x of the factor, its R the mean over
that cell's runs (as the paper's points are means over repeats). Each point is predicted from
data that does not include it: when a point is predicted, every point of its task at the same x
is held out ("before its runs"). A method may use the task's *other* points, never the target's.

**Methods** (:data:`METHODS`):

* ``synthetic``: the synthetic line as it is (no data of the task at all);
* ``keep``: the synthetic slope, the intercept re-anchored on the task's other points
  (:func:`~overshadow_lab.law.fit.reanchor_law`: one number learnt from the task);
* ``refit``: slope and intercept fitted on the task's other points (two numbers; the synthetic
  data then play no role);
* ``constant``: the mean of the task's other points (a flat line: the baseline any law must beat);
* ``loto``: leave one task out: a line fitted on every *other* task's points, none of this one's;
* ``oracle``: a line fitted on all of the task's points, the target included (it has seen the
  answer: a floor for what a straight line can do, not a prediction).

Each prediction carries a prediction interval at ``level`` for one new point;
:func:`score_transfer` gives, per method, the mean Eq. 5 error and the coverage of those
intervals, each with a percentile bootstrap interval that resamples whole tasks (points of one
task share its intercept, so they are not independent). Points whose actual R is 0 have no
relative error (Eq. 5 divides by it): they are counted, scored by the absolute error, and left
out of the relative one.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from overshadow_lab.law.distributions import t_quantile
from overshadow_lab.law.fit import LawFit, fit_law, reanchor_law
from overshadow_lab.law.inputs import (
    MIN_DISTINCT_X,
    LawDataWarning,
    check_level,
    check_n_boot,
)

METHODS = ("synthetic", "keep", "refit", "constant", "loto", "oracle")
#: What each method may learn from the target task (for tables and the command line).
METHOD_LABELS = {
    "synthetic": "synthetic law as it is",
    "keep": "synthetic slope, intercept re-anchored",
    "refit": "slope and intercept refitted on the task",
    "constant": "constant: mean of the task's other points",
    "loto": "leave one task out: line of the other tasks",
    "oracle": "oracle: line fitted on all the task's points",
}
#: Methods that need the synthetic law.
NEEDS_SOURCE = ("synthetic", "keep")
PREDICTION_COLUMNS = (
    "task", "x", "point", "actual", "method", "predicted", "pi_lo", "pi_hi", "covered",
    "rel_error", "abs_error",
)  # fmt: skip


def check_methods(methods: Sequence[str]) -> list[str]:
    """The methods asked for, each one of :data:`METHODS` (one line naming the bad one)."""
    out = [str(m) for m in methods]
    bad = [m for m in out if m not in METHODS]
    if bad or not out:
        raise ValueError(
            f"unknown transfer method(s) {', '.join(bad) or '(none given)'}: use "
            f"{', '.join(METHODS)}"
        )
    return out


def task_points(
    runs: pd.DataFrame,
    *,
    task: str = "task",
    x: str = "P",
    y: str = "R",
    rr: str | None = "RR",
) -> pd.DataFrame:
    """One point per (task, x): the mean R over that cell's runs, with the number of runs.

    Runs with a missing R, or RR = 0 (where R is undefined), are dropped first with a
    :class:`~overshadow_lab.law.inputs.LawDataWarning` that counts them. Returns columns
    ``task, x, R, runs, R_sd``.
    """
    missing = [c for c in (task, x, y) if c not in runs.columns]
    if missing:
        raise ValueError(
            f"the runs table has no column(s) {', '.join(missing)}; name them with task=, x=, y="
        )
    df = runs.copy()
    bad = ~np.isfinite(df[y].to_numpy(dtype=float))
    if rr is not None and rr in df.columns:
        bad |= df[rr].to_numpy(dtype=float) == 0
    if bad.any():
        warnings.warn(
            f"dropped {int(bad.sum())} of {len(df)} runs with a missing R or RR = 0 before "
            "averaging (R is undefined there)",
            LawDataWarning,
            stacklevel=2,
        )
        df = df[~bad]
    if (df[x].to_numpy(dtype=float) <= 0).any():
        raise ValueError(f"every {x} must be positive: the law is linear in log {x}")
    g = df.groupby([task, x], sort=True)[y]
    out = g.agg(["mean", "size", "std"]).reset_index()
    out.columns = ["task", "x", "R", "runs", "R_sd"]
    return out


def _t(level: float, dof: int) -> float:
    return float(t_quantile(0.5 + level / 2, dof)) if dof > 0 else math.inf


def _constant(y: np.ndarray, level: float) -> tuple[float, float, float]:
    """Mean of ``y`` and the prediction interval of one new value (normal, n − 1 dof)."""
    m = float(np.mean(y))
    if y.size < 2:
        return m, -math.inf, math.inf
    h = _t(level, y.size - 1) * float(np.std(y, ddof=1)) * math.sqrt(1 + 1 / y.size)
    return m, m - h, m + h


def _line(fit: LawFit, x0: float, level: float) -> tuple[float, float, float]:
    lo, hi = fit.prediction_interval(np.array([x0]), level)
    return float(fit.predict(np.array([x0]))[0]), float(lo[0]), float(hi[0])


def _quiet_fit(x, y, level: float) -> LawFit | None:
    """A line through ``(x, y)``, or None when fewer than three distinct x values remain."""
    if np.unique(x).size < MIN_DISTINCT_X:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_law(x, y, level=level)


def _predict_one(method, source, xs, ys, x0, others, level, loto_fit):
    """``(predicted, lo, hi)`` of one method for one held-out point (NaN when it cannot)."""
    nan = (math.nan, math.nan, math.nan)
    if method == "synthetic":
        return _line(source, x0, level)
    if method == "keep":
        if others.sum() < 2:
            return nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                fit = reanchor_law(source, xs[others], ys[others])
            except ValueError:  # fewer than three distinct x values remain
                return nan
        return _line(fit, x0, level)
    if method == "refit":
        fit = _quiet_fit(xs[others], ys[others], level)
        return nan if fit is None else _line(fit, x0, level)
    if method == "constant":
        return _constant(ys[others], level) if others.any() else nan
    if method == "loto":
        return nan if loto_fit is None else _line(loto_fit, x0, level)
    fit = _quiet_fit(xs, ys, level)  # oracle: every point of the task, the target included
    return nan if fit is None else _line(fit, x0, level)


def transfer_predictions(
    points: pd.DataFrame,
    source: LawFit | Mapping[str, LawFit] | None = None,
    *,
    methods: Sequence[str] = METHODS,
    level: float = 0.95,
) -> pd.DataFrame:
    """Predict every point of every task, each without its own data, by each method.

    ``points`` has columns ``task``, ``x`` and ``R`` (one row per point, e.g. from
    :func:`task_points`; several rows of a task may share an x, and are then held out
    together). ``source`` is the synthetic law (a :class:`LawFit` in the same units of x), or a
    mapping from task to its own synthetic law; the methods ``synthetic`` and ``keep`` need it.
    Returns one row per (point, method) with the prediction, its interval at ``level``, whether
    the interval covers the actual R, the Eq. 5 error (NaN where R = 0) and the absolute error.
    """
    methods = check_methods(methods)
    level = check_level(level)
    missing = [c for c in ("task", "x", "R") if c not in points.columns]
    if missing:
        raise ValueError(
            f"points need the columns task, x and R (missing {', '.join(missing)}); make them "
            "with task_points(runs, task=..., x=..., y=...)"
        )
    if source is None and any(m in NEEDS_SOURCE for m in methods):
        raise ValueError(
            "the methods 'synthetic' and 'keep' need the synthetic law: pass source=fit_law(...)"
        )
    df = points[["task", "x", "R"]].copy()
    df["task"] = df["task"].astype(str)
    if not np.isfinite(df["R"].to_numpy(float)).all():
        raise ValueError("a point has a missing R: drop it first (task_points does)")
    if (df["x"].to_numpy(float) <= 0).any():
        raise ValueError("every x must be positive: the law is linear in log x")
    tasks = list(dict.fromkeys(df["task"]))
    if isinstance(source, Mapping):
        lacking = [t for t in tasks if t not in source]
        if lacking:
            raise ValueError(f"no synthetic law given for task(s) {', '.join(lacking)}")
    rows = []
    for name in tasks:
        mine = df["task"] == name
        xs, ys = df.loc[mine, "x"].to_numpy(float), df.loc[mine, "R"].to_numpy(float)
        src = source[name] if isinstance(source, Mapping) else source
        loto_fit = None
        if "loto" in methods:
            rest = df[~mine]
            loto_fit = _quiet_fit(rest["x"].to_numpy(float), rest["R"].to_numpy(float), level)
        for i, (x0, actual) in enumerate(zip(xs, ys, strict=True)):
            others = xs != x0
            for method in methods:
                pred, lo, hi = _predict_one(method, src, xs, ys, x0, others, level, loto_fit)
                rows.append(
                    {
                        "task": name,
                        "x": x0,
                        "point": i,
                        "actual": actual,
                        "method": method,
                        "predicted": pred,
                        "pi_lo": lo,
                        "pi_hi": hi,
                        "covered": bool(lo <= actual <= hi) if np.isfinite(pred) else np.nan,
                        "rel_error": abs(pred - actual) / actual if actual > 0 else math.nan,
                        "abs_error": abs(pred - actual),
                    }
                )
    return pd.DataFrame(rows)


def predict_tasks_at(
    points: pd.DataFrame,
    source: LawFit | Mapping[str, LawFit] | None,
    x_new: float,
    *,
    methods: Sequence[str] = ("synthetic", "keep", "refit", "constant", "loto"),
    level: float = 0.95,
) -> pd.DataFrame:
    """Each task's R at a planned ``x_new``, before any run there, with every task point known.

    The same methods as :func:`transfer_predictions`, now using all of a task's points (there is
    no target to hold out: nothing has been run at ``x_new``); ``oracle`` has no meaning here
    and is refused. Returns one row per (task, method): predicted R, its interval at ``level``
    and whether ``x_new`` lies outside the x values the method's line was fitted on.
    """
    methods = check_methods(methods)
    level = check_level(level)
    if "oracle" in methods:
        raise ValueError("'oracle' needs the measured R at x_new; a planned value has none")
    x0 = float(x_new)
    if not (math.isfinite(x0) and x0 > 0):
        raise ValueError(f"the planned x must be positive and finite, got {x_new!r}")
    if source is None and any(m in NEEDS_SOURCE for m in methods):
        raise ValueError(
            "the methods 'synthetic' and 'keep' need the synthetic law: pass source=fit_law(...)"
        )
    df = points[["task", "x", "R"]].copy()
    df["task"] = df["task"].astype(str)
    rows = []
    for name in dict.fromkeys(df["task"]):
        mine = df["task"] == name
        xs, ys = df.loc[mine, "x"].to_numpy(float), df.loc[mine, "R"].to_numpy(float)
        src = source[name] if isinstance(source, Mapping) else source
        rest = df[~mine]
        loto_fit = _quiet_fit(rest["x"].to_numpy(float), rest["R"].to_numpy(float), level)
        use = np.ones(xs.size, dtype=bool)  # every point of the task: none sits at x_new
        for method in methods:
            pred, lo, hi = _predict_one(method, src, xs, ys, x0, use, level, loto_fit)
            fitted_on = {"synthetic": src.x if src is not None else xs}.get(method, xs)
            if method == "loto":
                fitted_on = rest["x"].to_numpy(float)
            rows.append(
                {
                    "task": name,
                    "x": x0,
                    "method": method,
                    "predicted": pred,
                    "pi_lo": lo,
                    "pi_hi": hi,
                    "extrapolated": bool(x0 < fitted_on.min() or x0 > fitted_on.max()),
                }
            )
    return pd.DataFrame(rows)


def _task_means(pred: pd.DataFrame, column: str, tasks: list[str]) -> np.ndarray:
    """Per task: the mean of ``column`` over its scored points and how many there are."""
    ok = pred[np.isfinite(pred[column].astype(float))]
    g = ok.groupby("task")[column].agg(["sum", "count"]).reindex(tasks).fillna(0.0)
    return g.to_numpy(dtype=float)


def _boot(sums_counts: np.ndarray, idx: np.ndarray, average: str) -> np.ndarray:
    """The bootstrap replicates of the mean, from resampled tasks ``idx`` (B × n_tasks)."""
    s, c = sums_counts[idx, 0], sums_counts[idx, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        if average == "points":
            return s.sum(axis=1) / c.sum(axis=1)
        has = c > 0
        per_task = np.where(has, s / np.where(has, c, 1), 0.0)
        n = has.sum(axis=1)
        return np.where(n > 0, per_task.sum(axis=1) / np.maximum(n, 1), np.nan)


def _mean(sums_counts: np.ndarray, average: str) -> float:
    s, c = sums_counts[:, 0], sums_counts[:, 1]
    if c.sum() == 0:
        return math.nan
    if average == "points":
        return float(s.sum() / c.sum())
    return float(np.mean(s[c > 0] / c[c > 0]))


def score_transfer(
    predictions: pd.DataFrame,
    *,
    average: str = "tasks",
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Score each method: mean Eq. 5 error and coverage of its intervals, with bootstrap CIs.

    ``average="tasks"`` averages each task's mean first (every task weighs the same, as the
    paper's 8.0% weighs its panels); ``"points"`` averages all points. The intervals at
    ``level`` resample whole tasks with replacement (``n_boot`` times). Returns one row per
    method: ``mean_rel_error``, ``rel_lo``, ``rel_hi``, ``coverage``, ``cov_lo``, ``cov_hi``,
    ``mean_abs_error``, ``abs_lo``, ``abs_hi``, ``mean_width`` (of the prediction intervals, points
    of R: a coverage near the level means little when the intervals span the whole 0-100%),
    ``n_points``, ``n_zero`` (points with R = 0, left
    out of the relative error), ``n_missing`` (points the method could not predict) and
    ``n_tasks``.
    """
    if average not in ("tasks", "points"):
        raise ValueError(f"average must be 'tasks' or 'points', got {average!r}")
    level = check_level(level)
    n_boot = check_n_boot(n_boot)
    if predictions.empty:
        raise ValueError("no predictions to score: transfer_predictions returned no rows")
    tasks = list(dict.fromkeys(predictions["task"].astype(str)))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(tasks), size=(n_boot, len(tasks)))
    q = [(1 - level) / 2, (1 + level) / 2]
    rows = []
    for method in dict.fromkeys(predictions["method"]):
        p = predictions[predictions["method"] == method].copy()
        p["task"] = p["task"].astype(str)
        p["covered_f"] = p["covered"].astype(float)
        row = {"method": method}
        for col, name in (("rel_error", "rel"), ("covered_f", "cov"), ("abs_error", "abs")):
            sc = _task_means(p, col, tasks)
            boot = _boot(sc, idx, average)
            boot = boot[np.isfinite(boot)]
            lo, hi = np.quantile(boot, q) if boot.size else (math.nan, math.nan)
            key = {"rel": "mean_rel_error", "cov": "coverage", "abs": "mean_abs_error"}[name]
            row.update({key: _mean(sc, average), f"{name}_lo": float(lo), f"{name}_hi": float(hi)})
        predicted = np.isfinite(p["predicted"].astype(float))
        widths = (p["pi_hi"] - p["pi_lo"]).astype(float)
        row["mean_width"] = (
            float(widths[np.isfinite(widths)].mean()) if predicted.any() else math.nan
        )
        row.update(
            n_points=int(len(p)),
            n_zero=int((predicted & ~np.isfinite(p["rel_error"].astype(float))).sum()),
            n_missing=int((~predicted).sum()),
            n_tasks=int(p["task"].nunique()),
        )
        rows.append(row)
    return pd.DataFrame(rows)


def transfer_report(
    points: pd.DataFrame,
    source: LawFit | Mapping[str, LawFit] | None,
    *,
    methods: Sequence[str] = METHODS,
    average: str = "tasks",
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`transfer_predictions` and :func:`score_transfer` in one call: ``(predictions,
    scores)``, the scores indexed by method in the order asked for."""
    pred = transfer_predictions(points, source, methods=methods, level=level)
    scores = score_transfer(pred, average=average, level=level, n_boot=n_boot, seed=seed)
    return pred, scores.set_index("method")


__all__ = [
    "METHODS",
    "METHOD_LABELS",
    "NEEDS_SOURCE",
    "check_methods",
    "predict_tasks_at",
    "score_transfer",
    "task_points",
    "transfer_predictions",
    "transfer_report",
]
