"""Exercises of the chapter "The law".

Four implement-a-function exercises (checked against a reference on fixed cases) and one
experiment, :func:`check_transfer_prediction`: the student predicts a task's R at a value of P
whose runs are hidden, and the checker grades the interval against the recorded runs.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from overshadow_lab.exercises.framework import (
    PASS_MARK,
    Case,
    Exercise,
    ExerciseFailure,
    Mistake,
    register,
)
from overshadow_lab.law.fit import critical_value, fit_law
from overshadow_lab.law.inputs import LawDataWarning
from overshadow_lab.law.predict import relative_prediction_error
from overshadow_lab.records import load_recorded

_GRID = np.array([2.0, 5.0, 10.0, 25.0, 50.0, 100.0])


def _ref_log_law_fit(x, r):
    """(slope, intercept, r2) of the OLS fit of r on log10(x)."""
    fit = fit_law(x, r)
    return (fit.slope, fit.intercept, fit.r2)


def _law_fit_cases():
    rng = np.random.default_rng(5)
    noisy = 12.0 * np.log10(_GRID) + 30 + rng.normal(0, 2.0, _GRID.size)
    reps = np.repeat([2.0, 10.0, 50.0], 3)
    return [
        Case((_GRID, 10 * np.log10(_GRID) + 20), label="points exactly on a line"),
        Case((_GRID, noisy), label="noisy points on the paper's grid"),
        Case(
            (reps, 8 * np.log10(reps) + 15 + rng.normal(0, 1.5, reps.size)),
            label="three seeds at each of three values",
        ),
        Case((np.array([2.0, 5.0, 10.0]), np.array([40.0, 30.0, 25.0])), label="falling R"),
        Case(
            (np.array([0.0, 5.0, 10.0]), np.array([1.0, 2.0, 3.0])),
            label="edge case: x = 0",
            raises=ValueError,
        ),
        Case(
            (np.array([5.0, 5.0, 10.0, 10.0]), np.array([1.0, 2.0, 3.0, 4.0])),
            label="edge case: only two distinct x values",
            raises=ValueError,
        ),
    ]


def _fit_with(transform):
    def fit(x, r):
        u, r = transform(np.asarray(x, float)), np.asarray(r, float)
        a, b = np.polyfit(u, r, 1)
        r2 = 1 - np.sum((r - a * u - b) ** 2) / np.sum((r - r.mean()) ** 2)
        return (a, b, r2)

    return fit


def _swapped(x, r):
    u, r = np.log10(np.asarray(x, float)), np.asarray(r, float)
    c, d = np.polyfit(r, u, 1)
    return (c, d, np.corrcoef(u, r)[0, 1] ** 2)


check_log_law_fit = register(
    Exercise(
        name="log_law_fit",
        chapter="law",
        reference=_ref_log_law_fit,
        description="Least-squares fit of R = a*log10(x) + b: return (a, b, R^2); x > 0 and at "
        "least three distinct x values, else ValueError.",
        cases=_law_fit_cases,
        mistakes=[
            Mistake(
                _fit_with(np.log),
                "use log base 10: the slope is in points per decade (np.log is the natural log)",
            ),
            Mistake(
                _fit_with(lambda x: x),
                "the law is linear in log x, not in x: take log10(x) before fitting",
            ),
            Mistake(_swapped, "regress R on log10(x), not log10(x) on R"),
        ],
    )
)


def _ref_rpe(predicted, actual):
    return relative_prediction_error(predicted, actual)


check_relative_prediction_error = register(
    Exercise(
        name="relative_prediction_error",
        chapter="law",
        reference=_ref_rpe,
        description="Eq. 5 of the law paper: |predicted - actual| / actual as a fraction, "
        "elementwise; ValueError if an actual R is not positive.",
        cases=[
            Case((55.0, 50.0), label="over-prediction"),
            Case((45.0, 50.0), label="under-prediction"),
            Case((np.array([37.3, 42.8, 47.0]), np.array([38.2, 43.6, 46.1])), label="arrays"),
            Case((np.array([10.0, 20.0]), np.array([20.0, 10.0])), label="asymmetric errors"),
            Case((12.0, 0.0), label="edge case: actual R = 0", raises=ValueError),
        ],
        mistakes=[
            Mistake(
                lambda p, a: np.abs(np.asarray(p, float) - a) / np.asarray(p, float),
                "divide by the actual (observed) R, not the predicted one",
            ),
            Mistake(
                lambda p, a: (np.asarray(p, float) - a) / np.asarray(a, float),
                "take the absolute value of the difference",
            ),
            Mistake(
                lambda p, a: 100 * np.abs(np.asarray(p, float) - a) / np.asarray(a, float),
                "return a fraction (0.08), not a percentage (8)",
            ),
        ],
    )
)


check_law_critical_value = register(
    Exercise(
        name="law_critical_value",
        chapter="law",
        reference=critical_value,
        description="x_c where R = slope*log10(x) + intercept reaches 0: 10**(-intercept/slope); "
        "ValueError for a zero slope.",
        cases=[
            Case((13.84, 33.17), label="the paper's Llama-2-7B vs P"),
            Case((11.57, -6.48), label="a negative intercept (x_c above 1)"),
            Case((10.0, 20.0), label="round numbers"),
            Case((-5.0, 30.0), label="a falling law"),
            Case((0.0, 30.0), label="edge case: flat law", raises=ValueError),
        ],
        mistakes=[
            Mistake(lambda a, b: 10 ** (b / a), "the sign: R = 0 where log10(x) = -b/a"),
            Mistake(lambda a, b: np.exp(-b / a), "the law is in log10, so x_c = 10**(-b/a)"),
            Mistake(lambda a, b: -b / a, "-b/a is log10(x_c); raise 10 to it"),
        ],
    )
)


def _ref_slope_ci(x, r, level=0.95):
    lo, hi = fit_law(x, r, level=level).slope_ci
    return (lo, hi)


def _slope_ci_z(x, r, level=0.95):
    u, r = np.log10(np.asarray(x, float)), np.asarray(r, float)
    a, b = np.polyfit(u, r, 1)
    s = np.sqrt(np.sum((r - a * u - b) ** 2) / (u.size - 2) / np.sum((u - u.mean()) ** 2))
    z = stats.norm.ppf(0.5 + level / 2)
    return (a - z * s, a + z * s)


def _slope_ci_n(x, r, level=0.95):
    u, r = np.log10(np.asarray(x, float)), np.asarray(r, float)
    a, b = np.polyfit(u, r, 1)
    s = np.sqrt(np.sum((r - a * u - b) ** 2) / u.size / np.sum((u - u.mean()) ** 2))
    t = stats.t.ppf(0.5 + level / 2, u.size - 2)
    return (a - t * s, a + t * s)


def _slope_ci_cases():
    rng = np.random.default_rng(11)
    y1 = 13.8 * np.log10(_GRID) + 33 + rng.normal(0, 2.0, _GRID.size)
    reps = np.repeat(_GRID, 3)
    y2 = 9 * np.log10(reps) + 20 + rng.normal(0, 4.0, reps.size)
    return [
        Case((_GRID, y1), label="six points"),
        Case((_GRID, y1), {"level": 0.9}, label="a 90% interval"),
        Case((reps, y2), label="three seeds per value"),
    ]


check_slope_confidence_interval = register(
    Exercise(
        name="slope_confidence_interval",
        chapter="law",
        reference=_ref_slope_ci,
        description="The t-based confidence interval (lo, hi) of the slope of R on log10(x).",
        cases=_slope_ci_cases,
        mistakes=[
            Mistake(
                _slope_ci_z,
                "with n - 2 degrees of freedom use Student's t quantile, not "
                "the normal 1.96: a handful of points makes the interval wider",
            ),
            Mistake(
                _slope_ci_n,
                "estimate the residual variance with n - 2 in the denominator "
                "(two parameters were fitted), not n",
            ),
        ],
    )
)


# ------------------------------------------------------------------------------------------
# An experiment: predict a held-out task before seeing it (graded against recorded runs)
# ------------------------------------------------------------------------------------------
#: The family and the value of P whose from-scratch runs the exercise hides.
HELD_OUT_TASK = "gender"
HELD_OUT_P = 16.0
#: The widest interval (points of R, after clipping its ends to the 0-100% a rate can take) that
#: still counts as a prediction: wider ones cover almost anything.
MAX_WIDTH = 60.0


def _recorded_runs() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The recorded synthetic and from-scratch runs of ``scripts/record_transfer.py`` along
    its P grid (the L grid's runs, all at one P, are left out)."""
    out = []
    for part in ("synthetic", "scratch"):
        found = load_recorded(f"transfer_{part}")
        if found is None:
            raise FileNotFoundError(
                f"the recorded runs transfer_{part} are missing: run "
                f"python scripts/record_transfer.py --part {part}"
            )
        runs = found[0]
        if "grid" in runs.columns:
            runs = runs[runs["grid"] == "P"].reset_index(drop=True)
        out.append(runs)
    return out[0], out[1]


def transfer_exercise_data() -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(synthetic runs, runs of HELD_OUT_TASK without those at HELD_OUT_P)`` for the exercise."""
    syn, scratch = _recorded_runs()
    task = scratch[scratch["task"] == HELD_OUT_TASK]
    return syn.copy(), task[task["P"] != HELD_OUT_P].reset_index(drop=True)


def _reference_interval() -> tuple[float, float, float]:
    """A reference prediction: the law refitted on the visible runs, with the interval for the
    mean of as many new runs as were hidden."""
    _, visible = transfer_exercise_data()
    _, scratch = _recorded_runs()
    n_hidden = int(((scratch["task"] == HELD_OUT_TASK) & (scratch["P"] == HELD_OUT_P)).sum())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LawDataWarning)
        fit = fit_law(visible["P"], visible["R"], rr=visible["RR"])
    x = np.array([HELD_OUT_P])
    lo, hi = fit.prediction_interval(x, n_runs=max(n_hidden, 1))
    return float(fit.predict(x)[0]), float(lo[0]), float(hi[0])


def measured_held_out() -> float:
    """The seed-mean R of the hidden runs (those with RR > 0, where R is defined)."""
    _, scratch = _recorded_runs()
    hidden = scratch[(scratch["task"] == HELD_OUT_TASK) & (scratch["P"] == HELD_OUT_P)]
    hidden = hidden[(hidden["RR"] > 0) & np.isfinite(hidden["R"])]
    if hidden.empty:
        raise FileNotFoundError(f"no recorded run of {HELD_OUT_TASK} at P = {HELD_OUT_P:g}")
    return float(hidden["R"].mean())


def check_transfer_prediction(predicted: float, lo: float, hi: float, quiet: bool = False) -> bool:
    """Grade a prediction of the held-out task's R at ``HELD_OUT_P`` made before seeing it.

    Passes when ``lo <= predicted <= hi``, the interval (its ends clipped to 0-100%, the range
    of a rate) is at most :data:`MAX_WIDTH` points wide, and it covers the measured seed mean of
    the hidden runs; otherwise raises
    :class:`~overshadow_lab.exercises.framework.ExerciseFailure` saying which condition failed.
    """
    try:
        p, a, b = (float(v) for v in (predicted, lo, hi))
    except (TypeError, ValueError):
        raise ExerciseFailure(
            "transfer_prediction: give three numbers, predicted R and the interval's ends (%)"
        ) from None
    if not all(np.isfinite([p, a, b])):
        raise ExerciseFailure("transfer_prediction: the prediction and its interval must be finite")
    if not a <= p <= b:
        raise ExerciseFailure(
            f"transfer_prediction: the prediction {p:.1f} must lie inside its interval "
            f"[{a:.1f}, {b:.1f}] (pass lo before hi)"
        )
    width = min(b, 100.0) - max(a, 0.0)
    if width > MAX_WIDTH:
        raise ExerciseFailure(
            f"transfer_prediction: the interval is {width:.1f} points wide within 0-100%, more "
            f"than the {MAX_WIDTH:g} allowed; an interval that wide predicts almost nothing"
        )
    actual = measured_held_out()
    if not a <= actual <= b:
        side = "above" if actual > b else "below"
        raise ExerciseFailure(
            f"transfer_prediction: the measured R lies {side} your interval [{a:.1f}, {b:.1f}]; "
            "rethink the transfer (which slope, which anchor points) rather than widening it"
        )
    if not quiet:
        print(
            f"{PASS_MARK} transfer_prediction: your interval [{a:.1f}, {b:.1f}] (at most "
            f"{MAX_WIDTH:g} points wide) covers the measured R of {HELD_OUT_TASK} at "
            f"P = {HELD_OUT_P:g}: {actual:.1f}%"
        )
    return True
