"""One factor's fit: equal to the textbook computations, robust to an outlier, strict on bad input."""

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from overshadow_lab import law
from tests.law.synthetic import GRID, sweep


def test_fit_equals_scipy_linregress():
    x, y = sweep()
    fit = law.fit_law(x, y)
    ref = stats.linregress(np.log10(x), y)
    assert fit.slope == pytest.approx(ref.slope, rel=1e-12)
    assert fit.intercept == pytest.approx(ref.intercept, rel=1e-12)
    assert fit.r2 == pytest.approx(ref.rvalue**2, rel=1e-12)
    assert fit.se_slope == pytest.approx(ref.stderr, rel=1e-10)
    assert fit.se_intercept == pytest.approx(ref.intercept_stderr, rel=1e-10)
    t = stats.t.ppf(0.975, x.size - 2)
    assert fit.slope_ci == pytest.approx((ref.slope - t * ref.stderr, ref.slope + t * ref.stderr))
    assert fit.x_c == pytest.approx(10 ** (-ref.intercept / ref.slope))


def test_bands_match_the_closed_form_formulas():
    x, y = sweep()
    fit = law.fit_law(x, y)
    u = np.log10(x)
    u0 = np.log10(np.array([3.0, 40.0, 400.0]))
    sxx = np.sum((u - u.mean()) ** 2)
    t = stats.t.ppf(0.975, x.size - 2)
    se_mean = fit.sigma * np.sqrt(1 / x.size + (u0 - u.mean()) ** 2 / sxx)
    lo, hi = fit.confidence_band(10**u0)
    assert np.allclose(hi - lo, 2 * t * se_mean)
    lo, hi = fit.prediction_interval(10**u0)
    assert np.allclose(hi - lo, 2 * t * np.sqrt(se_mean**2 + fit.sigma**2))


def test_log_base_changes_slope_units_but_not_x_c():
    x, y = sweep()
    ten, e = law.fit_law(x, y), law.fit_law(x, y, log_base="e")
    assert e.slope == pytest.approx(ten.slope / math.log(10))
    assert e.x_c == pytest.approx(ten.x_c)
    assert e.r2 == pytest.approx(ten.r2)
    with pytest.raises(ValueError, match="log base must be positive and not 1"):
        law.fit_law(x, y, log_base=1)


def test_huber_fit_resists_an_outlier_that_drags_ols():
    x, y = sweep(noise=1.0, seed=4)
    y[-1] += 40
    ols, hub = law.fit_law(x, y), law.fit_law(x, y, robust=True)
    assert abs(hub.slope - 10) < 1.0 < abs(ols.slope - 10)
    assert hub.method == "huber"
    lo, hi = hub.slope_ci
    assert lo < 10 < hi
    # on clean data the two agree closely
    x, y = sweep(noise=1.0, seed=5)
    assert law.fit_law(x, y, robust=True).slope == pytest.approx(law.fit_law(x, y).slope, abs=0.5)


def test_non_positive_x_is_an_error_that_names_the_fix():
    with pytest.raises(ValueError, match=r"not positive.*must be > 0; remove or correct"):
        law.fit_law([0, 2, 5, 10], [1, 2, 3, 4])
    with pytest.raises(ValueError, match="P are not positive"):
        law.fit_law([-1, 2, 5, 10], [1, 2, 3, 4], name="P")


def test_fewer_than_three_distinct_x_is_an_error():
    with pytest.raises(
        ValueError, match=r"at least 3 distinct values of x.*got 2 \(2, 5\).*add runs"
    ):
        law.fit_law([2, 2, 5, 5], [1, 2, 3, 4])


def test_nan_and_rr_zero_rows_are_dropped_with_a_counted_warning():
    x, y = sweep()
    rr = np.ones_like(y)
    y2, rr2 = y.copy(), rr.copy()
    y2[[0, 5]] = np.nan
    rr2[[7, 9]] = 0
    with pytest.warns(
        law.LawDataWarning,
        match=r"dropped 4 of 18 rows.*RR = 0 \(R undefined\): 2.*missing or infinite R / x: 2",
    ):
        fit = law.fit_law(x, y2, rr=rr2)
    keep = np.ones(18, bool)
    keep[[0, 5, 7, 9]] = False
    assert fit.n == 14
    assert fit.slope == pytest.approx(law.fit_law(x[keep], y[keep]).slope)
    assert fit.to_dict()["dropped"] == {"RR = 0 (R undefined)": 2, "missing or infinite R / x": 2}


def test_clean_data_raises_no_warning():
    x, y = sweep()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        law.fit_law(x, y)


def test_critical_value_edge_cases():
    assert law.critical_value(10, 20) == pytest.approx(0.01)
    assert law.critical_value(10, -20) == pytest.approx(100)
    with pytest.raises(ValueError, match="zero slope"):
        law.critical_value(0, 20)
    assert math.isnan(law.critical_value(0, 20, strict=False))
    assert law.critical_value(1e-3, -10) == math.inf


def test_reanchor_keeps_the_slope_and_fits_the_mean():
    x, y = sweep()
    src = law.fit_law(x, y)
    shifted = y + 7
    re = law.reanchor_law(src, x, shifted)
    assert re.slope == src.slope
    assert re.intercept == pytest.approx(src.intercept + 7)
    assert re.dof == x.size - 1 and re.method == "reanchored"


def test_constant_r_is_a_flat_line_with_a_warning_not_an_error():
    # all runs at the floor: slope 0 with its (zero-width) interval, R^2 and x_c undefined
    for robust in (False, True):
        with pytest.warns(law.LawFitWarning, match="R is 0 in every row.*flat"):
            fit = law.fit_law(np.repeat(GRID, 2), np.zeros(12), robust=robust)
        assert fit.slope == pytest.approx(0, abs=1e-12)
        assert fit.slope_ci == pytest.approx((0, 0), abs=1e-9)
        assert math.isnan(fit.r2) and math.isnan(fit.x_c)
        d = fit.to_dict()
        assert d["r2"] is None and d["x_c"] is None and d["slope_ci"] == pytest.approx([0, 0])


def test_level_and_log_base_are_checked_before_fitting():
    x, y = sweep()
    for level in (0, 1, 1.5, -0.2, float("nan")):
        with pytest.raises(ValueError, match=r"confidence level must lie in \(0, 1\)"):
            law.fit_law(x, y, level=level)
    for base in ("inf", float("nan"), 0, "ten"):
        with pytest.raises(ValueError, match="log base must be positive and not 1"):
            law.fit_law(x, y, log_base=base)
