"""The transfer pipeline: predictions without the target's data, scores with intervals."""

import warnings

import numpy as np
import pandas as pd
import pytest

from overshadow_lab import law
from overshadow_lab.law.transfer import (
    METHODS,
    score_transfer,
    task_points,
    transfer_predictions,
    transfer_report,
)

GRID = np.array([2.0, 4.0, 8.0, 16.0, 64.0])


def _source(slope=10.0, intercept=30.0, noise=1.0, seed=0):
    rng = np.random.default_rng(seed)
    x = np.repeat(GRID, 3)
    return law.fit_law(x, slope * np.log10(x) + intercept + rng.normal(0, noise, x.size))


def _points(slopes, intercepts, noise=0.0, seed=1):
    rng = np.random.default_rng(seed)
    rows = []
    for k, (a, b) in enumerate(zip(slopes, intercepts, strict=True)):
        for x in GRID:
            rows.append({"task": f"t{k}", "x": x, "R": a * np.log10(x) + b + rng.normal(0, noise)})
    return pd.DataFrame(rows)


def _by_method(pred):
    return {m: g for m, g in pred.groupby("method")}


def test_tasks_on_lines_of_the_synthetic_slope_are_predicted_exactly_by_keep_and_refit():
    src = _source(noise=0.0)
    pts = _points([10.0, 10.0, 10.0], [40.0, 55.0, 25.0])
    pred = _by_method(transfer_predictions(pts, src))
    for m in ("keep", "refit", "oracle"):
        assert pred[m]["abs_error"].max() == pytest.approx(0, abs=1e-9), m
    # the synthetic line as it is misses every task by its offset from the synthetic intercept
    offsets = {"t0": 10.0, "t1": 25.0, "t2": 5.0}
    miss = pred["synthetic"].assign(off=lambda d: d.task.map(offsets))
    assert np.allclose(miss["abs_error"], miss["off"])
    # a flat line cannot follow a slope of 10 points per decade
    assert pred["constant"]["abs_error"].mean() > 3.0


def test_a_task_steeper_than_the_synthetic_law_is_missed_by_keep_but_not_by_refit():
    src = _source(slope=5.0, noise=0.0)
    pts = _points([20.0], [30.0])
    pred = _by_method(transfer_predictions(pts, src, methods=["keep", "refit"]))
    assert pred["refit"]["abs_error"].max() == pytest.approx(0, abs=1e-9)
    # keep misses the ends of the grid most (the re-anchored line pivots near the middle)
    keep = pred["keep"].set_index("x")["abs_error"]
    assert keep[64.0] > keep[8.0] and keep[2.0] > keep[8.0] > 0


def test_no_method_but_the_oracle_sees_the_point_it_predicts():
    src = _source()
    pts = _points([10.0, 12.0, 8.0], [40.0, 35.0, 50.0], noise=1.0)
    base = transfer_predictions(pts, src)
    moved = pts.copy()
    target = (moved.task == "t1") & (moved.x == 16.0)
    moved.loc[target, "R"] += 40.0
    after = transfer_predictions(moved, src)
    rows = (base.task == "t1") & (base.x == 16.0)
    same = base[rows].set_index("method")["predicted"]
    new = after[rows].set_index("method")["predicted"]
    for m in ("synthetic", "keep", "refit", "constant", "loto"):
        assert new[m] == pytest.approx(same[m]), m
    assert new["oracle"] > same["oracle"] + 1.0
    # leave one task out never uses the task it predicts, at any x
    others = (base.task == "t1") & (base.method == "loto")
    assert np.allclose(base[others].predicted, after[others].predicted)


def test_all_points_at_the_held_out_x_are_held_out_together():
    src = _source()
    pts = pd.DataFrame({"task": "a", "x": [2, 2, 10, 25, 50], "R": [20.0, 60.0, 40.0, 45.0, 50.0]})
    pred = transfer_predictions(pts, src, methods=["constant"])
    at2 = pred[pred.x == 2]
    assert np.allclose(at2.predicted, np.mean([40.0, 45.0, 50.0]))


def test_keep_intervals_cover_at_about_their_level_when_the_slope_transfers():
    src = _source(slope=10.0, noise=2.0)
    rng = np.random.default_rng(3)
    pts = _points([10.0] * 40, rng.uniform(20, 60, 40), noise=2.0, seed=4)
    scores = score_transfer(transfer_predictions(pts, src, methods=["keep", "refit"]), n_boot=200)
    cov = scores.set_index("method")["coverage"]
    assert 0.85 <= cov["keep"] <= 1.0 and 0.85 <= cov["refit"] <= 1.0


def test_scores_have_bootstrap_intervals_around_the_mean_and_count_zero_points():
    src = _source()
    pts = _points([10.0, 12.0, 8.0, 9.0], [40.0, 35.0, 50.0, 45.0], noise=2.0)
    pts.loc[0, "R"] = 0.0
    pred = transfer_predictions(pts, src)
    scores = score_transfer(pred, n_boot=500).set_index("method")
    assert list(scores.index) == list(METHODS)
    for col, lo, hi in [("mean_rel_error", "rel_lo", "rel_hi"), ("coverage", "cov_lo", "cov_hi")]:
        assert (scores[lo] <= scores[col] + 1e-12).all() and (
            scores[col] <= scores[hi] + 1e-12
        ).all()
    assert scores.loc["keep", "n_zero"] == 1 and scores.loc["keep", "n_points"] == 20
    keep = pred[pred.method == "keep"]
    assert scores.loc["keep", "mean_width"] == pytest.approx((keep.pi_hi - keep.pi_lo).mean())
    assert np.isnan(pred.loc[(pred.x == 2.0) & (pred.task == "t0"), "rel_error"]).all()


def test_averaging_over_tasks_weighs_each_task_once():
    pred = pd.DataFrame(
        {
            "task": ["a", "a", "a", "b"],
            "x": [2, 4, 8, 2],
            "actual": [10.0] * 4,
            "method": "m",
            "predicted": [11.0, 11.0, 11.0, 15.0],
            "pi_lo": 0.0,
            "pi_hi": 20.0,
            "covered": True,
            "rel_error": [0.1, 0.1, 0.1, 0.5],
            "abs_error": [1.0, 1.0, 1.0, 5.0],
        }
    )
    by_task = score_transfer(pred, n_boot=100).iloc[0]
    by_point = score_transfer(pred, average="points", n_boot=100).iloc[0]
    assert by_task.mean_rel_error == pytest.approx(0.3)
    assert by_point.mean_rel_error == pytest.approx(0.2)


def test_task_points_average_the_seeds_and_drop_undefined_runs():
    runs = pd.DataFrame(
        {
            "task": ["a"] * 4,
            "P": [2, 2, 2, 8],
            "R": [10.0, 20.0, np.nan, 50.0],
            "RR": [1.0, 0.5, 0.0, 1.0],
        }
    )
    with pytest.warns(law.LawDataWarning, match="dropped 1 of 4"):
        pts = task_points(runs)
    assert pts.to_dict("list")["R"] == [15.0, 50.0] and pts.runs.tolist() == [2, 1]


def test_transfer_report_returns_predictions_and_scores_by_method():
    pts = _points([10.0, 10.0, 10.0], [40.0, 55.0, 25.0], noise=1.0)
    pred, scores = transfer_report(pts, _source(), methods=["keep", "constant"], n_boot=100)
    assert list(scores.index) == ["keep", "constant"] and len(pred) == 2 * len(pts)
    assert scores.loc["keep", "mean_rel_error"] < scores.loc["constant", "mean_rel_error"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"methods": ["guess"]}, "unknown transfer method"),
        ({"source": None}, "need the synthetic law"),
    ],
)
def test_bad_input_fails_with_one_line(kwargs, match):
    pts = _points([10.0], [40.0])
    args = {"source": _source(), **kwargs}
    with pytest.raises(ValueError, match=match):
        transfer_predictions(pts, args.pop("source"), **args)


def test_missing_columns_and_bad_averages_are_refused():
    with pytest.raises(ValueError, match="task, x and R"):
        transfer_predictions(pd.DataFrame({"x": [1.0], "R": [1.0]}), _source())
    pts = _points([10.0], [40.0])
    pred = transfer_predictions(pts, _source(), methods=["constant"])
    with pytest.raises(ValueError, match="average"):
        score_transfer(pred, average="runs")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="no synthetic law given"):
            transfer_predictions(pts, {"other": _source()}, methods=["keep"])
