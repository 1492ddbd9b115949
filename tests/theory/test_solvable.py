"""Tests of the exactly solvable model (overshadow_lab.theory.solvable)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from overshadow_lab.theory.solvable import (
    CURVE_COLUMNS,
    SolvableConfig,
    flip_threshold,
    full_objective,
    full_problem,
    hallucination_curve,
    linear_regime_margin,
    reduced_objective,
    solve,
    solve_full,
)


def _numeric_grad(fun, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in range(len(x)):
        e = np.zeros_like(x)
        e[i] = eps
        g[i] = (fun(x + e) - fun(x - e)) / (2 * eps)
    return g


@pytest.mark.parametrize("K", [2, 3])
@pytest.mark.parametrize("L", [1.0, 3.0])
def test_reduced_gradient_and_hessian_match_finite_differences(K, L):
    config = SolvableConfig(P=4, L=L, lam=0.3, n_answers=K, span_len=2)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3 if L > 1 else 2) * K)
    f, g, H = reduced_objective(x, config)
    np.testing.assert_allclose(
        g, _numeric_grad(lambda z: reduced_objective(z, config)[0], x), atol=1e-7
    )
    H_num = np.stack(
        [_numeric_grad(lambda z, i=i: reduced_objective(z, config)[1][i], x) for i in range(len(x))]
    )
    np.testing.assert_allclose(H, H_num, atol=1e-6)


def test_optimum_is_stationary_and_converged():
    sol = solve(P=10, L=5, lam=0.05, n_answers=3)
    assert sol.converged and sol.grad_norm < 1e-10
    x = np.concatenate([sol.v, sol.a, sol.b])
    _, g, H = reduced_objective(x, sol.config)
    assert np.max(np.abs(g)) < 1e-10
    assert np.all(np.linalg.eigvalsh(H) > 0)  # strictly convex: a minimum, not a saddle


@pytest.mark.parametrize(
    "config",
    [
        SolvableConfig(P=3, L=3, n=1, lam=0.05),
        SolvableConfig(P=2, L=4, n=2, lam=0.2, n_answers=3),
        SolvableConfig(P=5, L=2, n=1, lam=0.01, span_len=2),
        SolvableConfig(P=2, L=1, n=1, lam=0.1),
    ],
)
def test_reduced_solution_equals_brute_force_full_optimisation(config):
    reduced, full = solve(config), solve_full(config)
    assert full.grad_norm < 1e-8
    np.testing.assert_allclose(reduced.v, full.v, atol=1e-7)
    np.testing.assert_allclose(reduced.a, full.a, atol=1e-7)
    np.testing.assert_allclose(reduced.b, full.b, atol=1e-7)
    assert reduced.objective == pytest.approx(full.objective, abs=1e-12)
    # the symmetry argument: every dominant span carries the same weights in the full optimum
    X, _, groups = full_problem(config)
    W = full.extra["W"]
    dom = W[groups["dominant"]].reshape(-1, config.span_len, config.n_answers).sum(axis=1)
    np.testing.assert_allclose(dom, np.broadcast_to(dom[0], dom.shape), atol=1e-7)


def test_full_objective_gradient_matches_finite_differences():
    config = SolvableConfig(P=2, L=3, n=1, lam=0.1, n_answers=3)
    X, y, _ = full_problem(config)
    w = np.random.default_rng(1).normal(size=X.shape[1] * 3)
    _, g = full_objective(w, X, y, config.lam, 3)
    g_num = _numeric_grad(lambda z: full_objective(z, X, y, config.lam, 3)[0], w)
    np.testing.assert_allclose(g, g_num, atol=1e-7)


def test_weight_vectors_sum_to_zero_over_answers():
    # at the optimum lam * w = -(softmax - onehot) summed, whose entries sum to zero
    sol = solve(P=7, L=6, lam=0.02, n_answers=4)
    for w in (sol.v, sol.a, sol.b):
        assert abs(w.sum()) < 1e-10


def test_hallucination_rises_with_popularity_and_length():
    by_p = hallucination_curve("P", [1, 2, 5, 10, 25, 50, 100], L=5, lam=0.1)
    assert np.all(np.diff(by_p["p_Ya_given_sub"]) > 0)
    assert np.all(np.diff(by_p["HR"]) >= 0) and by_p["HR"].iloc[0] == 0 and by_p["HR"].iloc[-1] == 1
    by_l = hallucination_curve("L", [1, 2, 5, 10, 25, 100], P=5, lam=0.2)
    assert np.all(np.diff(by_l["p_Ya_given_sub"]) > 0)
    assert np.all(np.diff(by_l["soft_R"]) > 0)
    assert list(by_p.columns) == CURVE_COLUMNS
    assert by_p["converged"].all() and (by_p["RR"] == 1).all()


def test_weight_decay_increases_overshadowing():
    by_lam = hallucination_curve("lam", np.logspace(-3, 2, 11), P=5, L=5)
    assert np.all(np.diff(by_lam["soft_R"]) > 0)
    assert by_lam["HR"].iloc[0] == 0 and by_lam["HR"].iloc[-1] == 1
    assert np.all(np.diff(by_lam["HR"]) >= 0)
    # with almost no weight decay the subordinate fact is memorised
    assert by_lam["p_Yb_given_sub"].iloc[0] > 0.9


@pytest.mark.parametrize("P,L", [(5, 5), (10, 5), (2, 5), (25, 2), (3, 10)])
def test_flip_threshold_closed_form(P, L):
    lam_star = flip_threshold(P, L)
    assert np.isfinite(lam_star)
    at = solve(P=P, L=L, lam=lam_star)
    assert at.p_sub[0] == pytest.approx(0.5, abs=1e-9)  # exactly on the decision boundary
    assert solve(P=P, L=L, lam=lam_star * 0.9).HR == 0
    assert solve(P=P, L=L, lam=lam_star * 1.1).HR == 1


def test_no_flip_when_linear_margin_is_negative():
    # (L-1)(m-n) = 0.5 * 1 <= 1: no weight decay makes the greedy answer Y_a
    assert linear_regime_margin(2, 1.5) < 0
    assert math.isinf(flip_threshold(2, 1.5))
    assert all(solve(P=2, L=1.5, lam=lam).HR == 0 for lam in (1e-3, 1.0, 1e3))


@settings(max_examples=25, deadline=None)
@given(
    P=st.floats(1.0, 50.0),
    L=st.floats(1.0, 50.0),
    n_answers=st.integers(2, 4),
)
def test_strong_regularisation_limit_matches_linear_margin(P, L, n_answers):
    lam = 1e6
    sol = solve(P=P, L=L, lam=lam, n_answers=n_answers)
    N = P + 1
    predicted = linear_regime_margin(P, L) / (lam * N)
    assert sol.margin_sub == pytest.approx(predicted, rel=1e-3, abs=1e-12)


def test_bad_inputs_name_the_limit():
    with pytest.raises(ValueError, match="lam must be > 0"):
        SolvableConfig(lam=0)
    with pytest.raises(ValueError, match="L must be >= 1"):
        SolvableConfig(L=0.5)
    with pytest.raises(ValueError, match="n_answers"):
        SolvableConfig(n_answers=1)
    with pytest.raises(ValueError, match="integer m"):
        full_problem(SolvableConfig(P=2.5))
    with pytest.raises(ValueError, match="unknown factor"):
        hallucination_curve("S", [1, 2])
    with pytest.raises(ValueError, match="being varied"):
        hallucination_curve("P", [1, 2], P=3)
