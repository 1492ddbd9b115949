"""The joint law over P, L and S, and the curvature check of one factor's line."""

import numpy as np
import pytest
from scipy import stats

from overshadow_lab import law
from tests.law.synthetic import GRID, design


def test_joint_fit_recovers_known_coefficients_and_holds_constant_factors():
    df = design()
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
    df = design()
    df["L"] = df["P"] * 2
    with pytest.raises(ValueError, match="collinear"):
        law.fit_joint_law(df, ("P", "L"))


def test_joint_prediction_flags_extrapolation():
    joint = law.fit_joint_law(design())
    assert not law.predict_planned(joint, P=40, L=5)["extrapolated"]
    assert law.predict_planned(joint, P=400, L=5)["extrapolated"]


def test_curvature_check_finds_a_bend_and_passes_a_line():
    x = np.repeat(GRID, 3)
    rng = np.random.default_rng(3)
    u = np.log10(x)
    straight = law.curvature_check(x, 10 * u + 30 + rng.normal(0, 1, x.size))
    bent = law.curvature_check(x, 10 * u - 8 * (u - u.mean()) ** 2 + 30 + rng.normal(0, 1, x.size))
    assert straight["p_value"] > 0.01 and bent["p_value"] < 1e-4 and bent["curvature"] < 0
    with pytest.raises(ValueError, match="at least 4 distinct"):
        law.curvature_check([2, 5, 10], [1, 2, 3])
