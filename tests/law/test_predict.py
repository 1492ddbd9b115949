"""Prediction: Eq. 5, prediction intervals that cover, held-out checks, planned configurations."""

import math

import numpy as np
import pytest

from overshadow_lab import law
from tests.law.synthetic import GRID, design, sweep


def test_relative_prediction_error_and_its_bad_input():
    assert law.relative_prediction_error(55, 50) == pytest.approx(0.1)
    assert np.allclose(law.relative_prediction_error([45, 60], [50, 40]), [0.1, 0.5])
    with pytest.raises(ValueError, match="actual R must be positive.*drop the rows with R = 0"):
        law.relative_prediction_error([1, 2], [1, 0])


def test_prediction_intervals_cover_new_runs_about_95_percent():
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(200):
        x, y = sweep(seed=int(rng.integers(1 << 30)))
        fit = law.fit_law(x, y)
        new = 10 * np.log10(40) + 30 + rng.normal(0, 2.0)
        p = law.predict_planned(fit, x=40)
        hits += p["pi_lo"] <= new <= p["pi_hi"]
    assert 0.90 <= hits / 200 <= 0.99
    assert law.predict_planned(fit, x=1000)["extrapolated"]


def test_holdout_prediction_on_a_true_law_has_small_error_and_an_interval():
    x, y = sweep(noise=1.0)
    table, summary = law.holdout_prediction(x, y, lambda v: v <= 25, n_boot=500)
    assert set(table["x"]) == {50.0, 100.0} and summary["n_test"] == 6
    assert summary["ci_lo"] <= summary["mean_rel_error"] <= summary["ci_hi"]
    assert summary["mean_rel_error"] < 0.1
    assert np.allclose(table["rel_error"], np.abs(table.predicted - table.actual) / table.actual)
    with pytest.raises(ValueError, match="at least one training and one held-out"):
        law.holdout_prediction(x, y, np.ones(x.size, bool))


def test_holdout_averages_replicates_and_skips_undefined_rows():
    x, y = sweep(noise=1.0)
    rr = np.ones_like(y)
    y[-1], rr[-2] = np.nan, 0.0
    with pytest.warns(law.LawDataWarning, match="dropped 2 of 18"):
        table, summary = law.holdout_prediction(
            x, y, lambda v: v <= 25, rr=rr, average_test=True, n_boot=300
        )
    assert list(table["x"]) == [50.0, 100.0] and list(table["runs"]) == [3, 1]
    assert table["actual"].iloc[0] == pytest.approx(np.mean(y[(x == 50)]))
    fit = law.fit_law(x[x <= 25], y[x <= 25])
    lo, hi = fit.prediction_interval(np.array([50.0]), n_runs=3)
    assert (table["pi_lo"].iloc[0], table["pi_hi"].iloc[0]) == pytest.approx((lo[0], hi[0]))
    lo1, hi1 = fit.prediction_interval(np.array([50.0]))
    assert hi - lo < hi1 - lo1


def test_holdout_drops_held_out_zeros_with_a_warning():
    x, y = sweep(noise=1.0)
    y[x == 100] = 0.0
    with pytest.warns(law.LawDataWarning, match="dropped 3 held-out point"):
        table, _ = law.holdout_prediction(x, y, lambda v: v <= 25, n_boot=100)
    assert list(table["x"].unique()) == [50.0]
    with pytest.raises(ValueError, match="every held-out point has R = 0"):
        with pytest.warns(law.LawDataWarning):
            law.holdout_prediction(x, y, lambda v: v <= 50, n_boot=100)


def test_planned_values_must_be_positive_and_finite():
    x, y = sweep()
    fit = law.fit_law(x, y)
    for bad in (float("inf"), float("nan"), 0.0, -3.0):
        with pytest.raises(ValueError, match="must be a positive finite number"):
            law.predict_planned(fit, x=bad)
    joint = law.fit_joint_law(design())
    with pytest.raises(ValueError, match="positive and finite"):
        law.predict_planned(joint, P=float("inf"), L=5)
    with pytest.raises(ValueError, match=r"confidence level must lie in \(0, 1\)"):
        law.predict_planned(fit, level=2, x=40)
    with pytest.raises(ValueError, match="whole number of at least 100"):
        law.holdout_prediction(x, y, lambda v: v <= 25, n_boot=0)


def test_leave_one_out_error_refits_without_each_point():
    u = np.log10(GRID)
    assert law.loo_relative_error(GRID, 10 * u + 30, law.fit_law) == pytest.approx(0, abs=1e-12)
    x, y = sweep(seeds=1, seed=3)
    expected = np.mean(
        [
            abs(law.fit_law(np.delete(x, i), np.delete(y, i)).predict(x[i : i + 1])[0] - y[i])
            / y[i]
            for i in range(x.size)
        ]
    )
    assert law.loo_relative_error(x, y, law.fit_law) == pytest.approx(expected)
    # with three x values, no point can be left out and still leave three
    assert math.isnan(law.loo_relative_error(GRID[:3], 10 * u[:3] + 30, law.fit_law))
