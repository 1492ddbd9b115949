"""Prediction: Eq. 5, prediction intervals that cover, held-out checks, planned configurations."""

import numpy as np
import pytest

from overshadow_lab import law
from tests.law.synthetic import sweep


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
