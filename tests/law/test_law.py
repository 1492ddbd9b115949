"""The log-linear law: fits, intervals, prediction, bad input, the paper's numbers, exercises."""

import math
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from overshadow_lab import law
from overshadow_lab.exercises import REGISTRY
from overshadow_lab.paths import data_dir

GRID = np.array([2.0, 5.0, 10.0, 25.0, 50.0, 100.0])


def _paper():
    folder = data_dir()
    if folder is None or not (folder / "paper_law_figures.csv").is_file():
        pytest.skip("the paper's digitised figures are not available (no data folder)")
    from overshadow_lab.paper import paper_figures

    return paper_figures()


def _sweep(slope=10.0, intercept=30.0, noise=2.0, seeds=3, seed=0):
    rng = np.random.default_rng(seed)
    x = np.repeat(GRID, seeds)
    return x, slope * np.log10(x) + intercept + rng.normal(0, noise, x.size)


# -- the fit equals the textbook computations ------------------------------------------------
def test_fit_equals_scipy_linregress():
    x, y = _sweep()
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
    x, y = _sweep()
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
    x, y = _sweep()
    ten, e = law.fit_law(x, y), law.fit_law(x, y, log_base="e")
    assert e.slope == pytest.approx(ten.slope / math.log(10))
    assert e.x_c == pytest.approx(ten.x_c)
    assert e.r2 == pytest.approx(ten.r2)
    with pytest.raises(ValueError, match="log base must be positive and not 1"):
        law.fit_law(x, y, log_base=1)


def test_t_intervals_cover_the_true_slope_in_200_simulations():
    start = time.perf_counter()
    cov = law.ci_coverage(true_slope=12.0, true_intercept=25.0, noise=3.0, n_sim=200, seed=1)
    assert time.perf_counter() - start < 5
    assert cov["n_sim"] == 200
    assert cov["coverage"] >= 0.90
    assert cov["coverage_lo"] < cov["coverage"] < cov["coverage_hi"]


def test_bootstrap_intervals_with_three_seeds_run_narrow_and_the_t_interval_does_not():
    # the honest finding the chapter reports: resampling 3 seeds per x under-covers
    kw = dict(true_slope=10.0, noise=2.0, seeds=3, n_sim=150, n_boot=300, seed=2)
    t = law.ci_coverage(method="t", **kw)
    within = law.ci_coverage(method="within-x", **kw)
    rows = law.ci_coverage(method="rows", **kw)
    assert t["coverage"] >= 0.9
    assert 0.7 <= within["coverage"] < t["coverage"]
    assert 0.75 <= rows["coverage"] <= 1.0
    assert within["mean_width"] < t["mean_width"]


def test_bootstrap_is_reproducible_and_agrees_with_ols_in_scale():
    x, y = _sweep()
    a = law.bootstrap_law(x, y, n_boot=300, seed=3).slope_ci
    assert a == law.bootstrap_law(x, y, n_boot=300, seed=3).slope_ci
    ols_se = law.fit_law(x, y).se_slope
    assert 0.5 * ols_se < law.bootstrap_law(x, y, n_boot=2000).se_slope < 2 * ols_se


def test_bootstrap_over_clusters_resamples_whole_seeds():
    x, y = _sweep(seeds=4)
    seeds = np.tile(np.arange(4), GRID.size)
    w = law.bootstrap_weights(
        x.size, 50, scheme="clusters", clusters=seeds, rng=np.random.default_rng(0)
    )
    # every run of one seed gets the same count, and the counts add up to the number of seeds
    for row in w:
        per_seed = [set(row[seeds == k]) for k in range(4)]
        assert all(len(s) == 1 for s in per_seed)
        assert sum(next(iter(s)) for s in per_seed) == 4
    boot = law.bootstrap_law(x, y, scheme="clusters", clusters=seeds, n_boot=500)
    assert boot.slope_ci[0] < boot.slope_ci[1]
    with pytest.raises(ValueError, match="needs a cluster label"):
        law.bootstrap_law(x, y, scheme="clusters")


def test_within_x_weights_keep_each_x_count():
    x = np.repeat(GRID, 3)
    w = law.bootstrap_weights(x.size, 20, scheme="within-x", x=x, rng=np.random.default_rng(0))
    for v in GRID:
        assert np.all(w[:, x == v].sum(axis=1) == 3)


def test_huber_fit_resists_an_outlier_that_drags_ols():
    x, y = _sweep(noise=1.0, seed=4)
    y[-1] += 40
    ols, hub = law.fit_law(x, y), law.fit_law(x, y, robust=True)
    assert abs(hub.slope - 10) < 1.0 < abs(ols.slope - 10)
    assert hub.method == "huber"
    lo, hi = hub.slope_ci
    assert lo < 10 < hi
    # on clean data the two agree closely
    x, y = _sweep(noise=1.0, seed=5)
    assert law.fit_law(x, y, robust=True).slope == pytest.approx(law.fit_law(x, y).slope, abs=0.5)


# -- bad input ---------------------------------------------------------------------------------
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
    x, y = _sweep()
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
    x, y = _sweep()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        law.fit_law(x, y)


def test_relative_prediction_error_and_its_bad_input():
    assert law.relative_prediction_error(55, 50) == pytest.approx(0.1)
    assert np.allclose(law.relative_prediction_error([45, 60], [50, 40]), [0.1, 0.5])
    with pytest.raises(ValueError, match="actual R must be positive.*drop the rows with R = 0"):
        law.relative_prediction_error([1, 2], [1, 0])


def test_critical_value_edge_cases():
    assert law.critical_value(10, 20) == pytest.approx(0.01)
    assert law.critical_value(10, -20) == pytest.approx(100)
    with pytest.raises(ValueError, match="zero slope"):
        law.critical_value(0, 20)
    assert math.isnan(law.critical_value(0, 20, strict=False))
    assert law.critical_value(1e-3, -10) == math.inf


# -- joint law and prediction ------------------------------------------------------------------
def _design(seed=0):
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


def test_joint_fit_recovers_known_coefficients_and_holds_constant_factors():
    df = _design()
    joint = law.fit_joint_law(df)
    assert joint.factors == ["P", "L"] and joint.held == {"S": 1e6}
    assert joint.coef["P"] == pytest.approx(12, abs=1.5)
    assert joint.coef["L"] == pytest.approx(6, abs=1.5)
    lo, hi = joint.ci["P"]
    assert hi - lo == pytest.approx(2 * stats.t.ppf(0.975, joint.dof) * joint.se["P"])
    assert abs(joint.coef["P"] - 12) < 4 * joint.se["P"]
    X = np.column_stack([np.log10(df.P), np.log10(df.L), np.ones(len(df))])
    beta = np.linalg.lstsq(X, df.R, rcond=None)[0]
    assert [joint.coef["P"], joint.coef["L"], joint.intercept] == pytest.approx(list(beta))
    pred = law.predict_planned(joint, P=40, L=10)
    assert pred["pi_lo"] < pred["predicted"] < pred["pi_hi"]
    assert pred["predicted"] == pytest.approx(
        joint.coef["P"] * np.log10(40) + joint.coef["L"] + joint.intercept
    )
    with pytest.raises(ValueError, match="S was held at 1e\\+06 in every run"):
        joint.predict(P=40, L=10, S=2e6)
    with pytest.raises(ValueError, match="missing L"):
        joint.predict(P=40)


def test_joint_fit_refuses_collinear_factors():
    df = _design()
    df["L"] = df["P"] * 2
    with pytest.raises(ValueError, match="collinear"):
        law.fit_joint_law(df, ("P", "L"))


def test_prediction_intervals_cover_new_runs_about_95_percent():
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(200):
        x, y = _sweep(seed=int(rng.integers(1 << 30)))
        fit = law.fit_law(x, y)
        new = 10 * np.log10(40) + 30 + rng.normal(0, 2.0)
        p = law.predict_planned(fit, x=40)
        hits += p["pi_lo"] <= new <= p["pi_hi"]
    assert 0.90 <= hits / 200 <= 0.99
    assert law.predict_planned(fit, x=1000)["extrapolated"]


def test_holdout_prediction_on_a_true_law_has_small_error_and_an_interval():
    x, y = _sweep(noise=1.0)
    table, summary = law.holdout_prediction(x, y, lambda v: v <= 25, n_boot=500)
    assert set(table["x"]) == {50.0, 100.0} and summary["n_test"] == 6
    assert summary["ci_lo"] <= summary["mean_rel_error"] <= summary["ci_hi"]
    assert summary["mean_rel_error"] < 0.1
    assert np.allclose(table["rel_error"], np.abs(table.predicted - table.actual) / table.actual)
    with pytest.raises(ValueError, match="at least one training and one held-out"):
        law.holdout_prediction(x, y, np.ones(x.size, bool))


def test_reanchor_keeps_the_slope_and_fits_the_mean():
    x, y = _sweep()
    src = law.fit_law(x, y)
    shifted = y + 7
    re = law.reanchor_law(src, x, shifted)
    assert re.slope == src.slope
    assert re.intercept == pytest.approx(src.intercept + 7)
    assert re.dof == x.size - 1 and re.method == "reanchored"


# -- tables and the paper ----------------------------------------------------------------------
def test_select_rows_numeric_text_and_repeated_conditions():
    df = _design()
    assert len(law.select_rows(df, {"P": "5"})) == 3 + 18
    assert len(law.select_rows(df, {"factor": ["P"], "P": ["2", "100"]})) == 6
    with pytest.raises(ValueError, match="no column 'Q'"):
        law.select_rows(df, {"Q": "1"})
    with pytest.raises(ValueError, match="no rows match"):
        law.select_rows(df, {"factor": "S"})
    with pytest.raises(ValueError, match="COL=VALUE"):
        law.parse_where(["figure"])


def test_fit_law_frame_groups_and_drops_rr_zero_rows():
    df = _design()
    df.loc[0, "RR"] = 0.0
    with pytest.warns(law.LawDataWarning, match="RR = 0"):
        fits = law.fit_law_frame(df, "P", "R", where={"factor": "P"}, group_by="seed")
    assert sorted(fits) == ["0", "1", "2"]
    assert fits["0"].n == 5 and fits["1"].n == 6
    boot = law.fit_law_frame(
        df.iloc[1:], "P", "R", where={"factor": "P"}, ci="bootstrap", n_boot=300
    )
    assert boot.to_dict()["ci"] == "bootstrap" and boot.slope_ci != boot.to_dict()["intercept_ci"]


def test_paper_fig2_llama_p_panel_matches_the_spec():
    fits = law.fit_law_frame(
        _paper(), "x", "observed_R_pct", where={"figure": "fig2", "factor": "P"}, group_by="model"
    )
    llama = fits["Llama-2-7B"]
    assert llama.slope == pytest.approx(13.84, abs=0.05)
    assert llama.intercept == pytest.approx(33.17, abs=0.05)
    assert llama.r2 == pytest.approx(0.96, abs=0.05)
    panels = law.fit_paper_panels(_paper())
    assert len(panels) == 7 and panels["slope"].between(7, 17.5).all()


def test_paper_fig3_mean_relative_error_is_about_8_percent():
    panels, summary = law.paper_fig3_errors(_paper())
    assert summary["mean_over_panels"] == pytest.approx(0.0804, abs=0.001)
    assert summary["mean_S"] == pytest.approx(0.0698, abs=0.001)
    assert summary["mean_P"] == pytest.approx(0.0801, abs=0.001)
    assert summary["mean_L"] == pytest.approx(0.0968, abs=0.001)
    assert len(panels) == 8


def test_transfer_table_computes_both_choices():
    table = law.transfer_table(_paper())
    assert len(table) == 8
    llama = table[table.task == "time-event"].iloc[0]
    assert llama.source_slope == pytest.approx(13.84, abs=0.01)
    # refitting two parameters in-sample can never do worse in squared error than keeping one
    assert (table["err_refit"] <= table["err_keep"] + 0.02).all()
    assert table[["loo_keep", "loo_refit"]].notna().all().all()


# -- exercises -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    ["log_law_fit", "relative_prediction_error", "law_critical_value", "slope_confidence_interval"],
)
def test_law_exercises_accept_the_reference_and_name_each_mistake(name):
    ex = REGISTRY[name]
    assert ex.chapter == "law"
    assert ex.run(ex.reference).passed
    for mistake in ex.mistakes:
        result = ex.run(mistake.fn)
        assert not result.passed
        assert mistake.hint in result.message, (name, result.message)


def test_set_level_noise_widens_the_bootstrap_and_x_c_interval_brackets_x_c():
    x, y = _sweep()
    plain = law.bootstrap_law(x, y, scheme="within-x", n_boot=1000)
    two = law.bootstrap_law(x, y, scheme="within-x", n_boot=1000, y_sd=np.full(x.size, 3.0))
    assert two.se_slope > plain.se_slope
    lo, hi = plain.x_c_ci
    assert lo < law.fit_law(x, y).x_c < hi
    with pytest.raises(ValueError, match="one value per row"):
        law.bootstrap_law(x, y, y_sd=[1.0])


def test_holdout_averages_replicates_and_skips_undefined_rows():
    x, y = _sweep(noise=1.0)
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


def test_curvature_check_finds_a_bend_and_passes_a_line():
    x = np.repeat(GRID, 3)
    rng = np.random.default_rng(3)
    u = np.log10(x)
    straight = law.curvature_check(x, 10 * u + 30 + rng.normal(0, 1, x.size))
    bent = law.curvature_check(x, 10 * u - 8 * (u - u.mean()) ** 2 + 30 + rng.normal(0, 1, x.size))
    assert straight["p_value"] > 0.01 and bent["p_value"] < 1e-4 and bent["curvature"] < 0
    with pytest.raises(ValueError, match="at least 4 distinct"):
        law.curvature_check([2, 5, 10], [1, 2, 3])


def test_joint_prediction_flags_extrapolation():
    joint = law.fit_joint_law(_design())
    assert not law.predict_planned(joint, P=40, L=5)["extrapolated"]
    assert law.predict_planned(joint, P=400, L=5)["extrapolated"]


def test_holdout_drops_held_out_zeros_with_a_warning():
    x, y = _sweep(noise=1.0)
    y[x == 100] = 0.0
    with pytest.warns(law.LawDataWarning, match="dropped 3 held-out point"):
        table, _ = law.holdout_prediction(x, y, lambda v: v <= 25, n_boot=100)
    assert list(table["x"].unique()) == [50.0]
    with pytest.raises(ValueError, match="every held-out point has R = 0"):
        with pytest.warns(law.LawDataWarning):
            law.holdout_prediction(x, y, lambda v: v <= 50, n_boot=100)
