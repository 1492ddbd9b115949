"""Tests of overshadow_lab.theory.bound: every algebraic step of the bound, checked three ways."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from overshadow_lab.theory.bound import (
    bound_terms,
    cross_entropy,
    dominant_features,
    generalization_bound,
    grad_norm,
    length_gap_bound,
    linear_class_sup,
    mean_pooled_prompts,
    mu_paper,
    mu_sharp,
    rademacher_dominant,
    rademacher_linear_bound,
    rademacher_linear_exact,
    rademacher_linear_mc,
    symbolic_flip_residuals,
    symbolic_gradient_at,
    symbolic_gradient_residual,
    symbolic_norm_identity,
    tau_of_L,
    tempered_softmax_grad,
    tempered_softmax_loss,
    tempered_target_prob,
)

logits = st.integers(2, 6).flatmap(
    lambda V: arrays(np.float64, V, elements=st.floats(-8, 8, allow_nan=False))
)
taus = st.floats(0.01, 3.0)


def torch_tempered_loss(f: torch.Tensor, y: int, tau: float, temper_target: bool) -> torch.Tensor:
    """The loss of SPEC §5 written directly in torch (the definition autograd differentiates)."""
    g = tau * f
    if not temper_target:
        g = torch.cat([g[:y], f[y : y + 1], g[y + 1 :]])
    return -f[y] + torch.logsumexp(g, dim=0)


# -- the gradient: closed form == torch.autograd == sympy -------------------------------------------
@settings(max_examples=60, deadline=None)
@given(f=logits, tau=taus, data=st.data(), temper_target=st.booleans())
def test_closed_form_gradient_equals_autograd(f, tau, data, temper_target):
    y = data.draw(st.integers(0, f.size - 1))
    ft = torch.tensor(f, dtype=torch.float64, requires_grad=True)
    loss = torch_tempered_loss(ft, y, tau, temper_target)
    (auto,) = torch.autograd.grad(loss, ft)
    np.testing.assert_allclose(
        tempered_softmax_grad(f, y, tau, temper_target), auto.numpy(), rtol=1e-10, atol=1e-12
    )
    assert tempered_softmax_loss(f, y, tau, temper_target) == pytest.approx(loss.item(), rel=1e-12)


@pytest.mark.parametrize("temper_target", [True, False])
@pytest.mark.parametrize("V,y", [(2, 0), (3, 1), (4, 3)])
def test_closed_form_gradient_is_sympys_derivative(V, y, temper_target):
    assert all(r == 0 for r in symbolic_gradient_residual(V, y, temper_target))


@pytest.mark.parametrize("temper_target", [True, False])
def test_closed_form_gradient_equals_sympy_at_random_points(temper_target):
    rng = np.random.default_rng(3)
    for _ in range(4):
        f = rng.normal(scale=3, size=3)
        tau = float(rng.uniform(0.1, 2))
        np.testing.assert_allclose(
            tempered_softmax_grad(f, 2, tau, temper_target),
            symbolic_gradient_at(f, 2, tau, temper_target),
            rtol=1e-12,
            atol=1e-14,
        )


def test_tau_one_is_ordinary_cross_entropy():
    f = np.array([1.0, -0.5, 2.0])
    for tt in (True, False):
        assert tempered_softmax_loss(f, 1, 1.0, tt) == pytest.approx(cross_entropy(f, 1))
    p = np.exp(f) / np.exp(f).sum()
    np.testing.assert_allclose(tempered_softmax_grad(f, 1, 1.0), p - np.eye(3)[1])


# -- the norm bound: mu ---------------------------------------------------------------------------
def test_norm_identity_symbolic():
    assert symbolic_norm_identity(3, 0) == 0


@settings(max_examples=80, deadline=None)
@given(f=logits, tau=taus, data=st.data(), temper_target=st.booleans())
def test_gradient_norm_never_exceeds_sharp_mu(f, tau, data, temper_target):
    y = data.draw(st.integers(0, f.size - 1))
    q = tempered_target_prob(f, y, tau, temper_target)
    norm = grad_norm(f, y, tau, temper_target)
    assert norm <= mu_sharp(q, tau, temper_target) * (1 + 1e-12) + 1e-15
    if f.size == 2:  # two answers: the bound is attained
        assert norm == pytest.approx(float(mu_sharp(q, tau, temper_target)), rel=1e-9, abs=1e-15)


@settings(max_examples=80, deadline=None)
@given(f=logits, L=st.floats(1.0, 200.0), data=st.data())
def test_paper_mu_bounds_the_gradient_when_the_target_is_untempered(f, L, data):
    y = data.draw(st.integers(0, f.size - 1))
    tau = tau_of_L(L)
    q = tempered_target_prob(f, y, tau, temper_target=False)
    bound = mu_paper(L, "linear", V=f.size, p_inf=q)
    assert grad_norm(f, y, tau, temper_target=False) <= bound * (1 + 1e-12) + 1e-15


def test_paper_mu_fails_for_the_literal_formula():
    # the printed loss tempers the target too: its gradient does not vanish as q_y -> 1
    f, tau = np.array([10.0, 0.0]), 0.5
    q = tempered_target_prob(f, 0, tau, temper_target=True)
    assert grad_norm(f, 0, tau, True) > 50 * mu_paper(2, "linear", V=2, p_inf=q)
    # and that loss is unbounded below: raising the target logit lowers it forever
    assert tempered_softmax_loss(np.array([100.0, 0.0]), 0, tau) < -40


def test_mu_decreases_with_length():
    mus = [mu_paper(L, "linear", V=10, p_inf=0.2) for L in (1, 2, 5, 10, 100)]
    assert np.all(np.diff(mus) < 0)
    assert mu_paper(1, "linear", V=2, p_inf=0.0) == pytest.approx(math.sqrt(2))


# -- Rademacher complexity --------------------------------------------------------------------------
def test_monte_carlo_rademacher_matches_exact_enumeration():
    X = dominant_features(10, 5.0)
    exact = rademacher_linear_exact(X)
    est, se = rademacher_linear_mc(X, n_draws=4000, seed=1)
    assert abs(est - exact) < 4 * se
    assert exact <= rademacher_linear_bound(X) + 1e-12


@settings(max_examples=30, deadline=None)
@given(
    X=st.integers(1, 8).flatmap(
        lambda m: arrays(np.float64, (m, 3), elements=st.floats(-5, 5, allow_nan=False))
    ),
    B=st.floats(0.1, 10),
)
def test_exact_rademacher_never_exceeds_jensen_bound(X, B):
    assert rademacher_linear_exact(X, B) <= rademacher_linear_bound(X, B) * (1 + 1e-12) + 1e-15


def test_linear_sup_is_attained_by_the_aligned_weight():
    rng = np.random.default_rng(0)
    X, sigma = rng.normal(size=(6, 4)), rng.choice([-1.0, 1.0], size=6)
    w = X.T @ sigma
    w *= 2.0 / np.linalg.norm(w)  # |w| = B = 2
    assert linear_class_sup(X, sigma, B=2.0)[0] == pytest.approx(float(sigma @ X @ w) / 6)
    for _ in range(50):  # no other weight of norm 2 does better
        u = rng.normal(size=4)
        u *= 2.0 / np.linalg.norm(u)
        assert float(sigma @ X @ u) / 6 <= linear_class_sup(X, sigma, B=2.0)[0] + 1e-12


@pytest.mark.parametrize("m,L", [(5, 5), (12, 2.5), (30, 100)])
def test_dominant_set_bound_closed_form(m, L):
    assert rademacher_linear_bound(dominant_features(m, L)) == pytest.approx(
        rademacher_dominant(m, L)
    )
    assert rademacher_linear_bound(dominant_features(m, L, "sum")) == pytest.approx(
        rademacher_dominant(m, L, pooling="sum")
    )


# -- the bound ------------------------------------------------------------------------------------
def test_bound_terms_fall_with_popularity_and_length():
    by_m = bound_terms("m", [2, 5, 10, 50, 100])
    by_l = bound_terms("L", [1, 2, 5, 10, 100])
    for frame in (by_m, by_l):
        assert np.all(np.diff(frame["bound"]) < 0)
        assert np.all(np.diff(frame["complexity"]) < 0)
        total = frame["empirical_risk"] + frame["complexity"] + frame["confidence"]
        np.testing.assert_allclose(frame["bound"], total)
    assert np.all(np.diff(by_m["mu"]) == 0)  # mu does not depend on m
    maurer = generalization_bound(5, 5, V=4, contraction="maurer")
    paper = generalization_bound(5, 5, V=4)
    assert maurer["complexity"] == pytest.approx(paper["complexity"] * math.sqrt(2) * 4)


# -- the length argument ----------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(L=st.integers(1, 200), seed=st.integers(0, 10_000))
def test_length_gap_bound_holds_for_mean_pooled_linear_models(L, seed):
    rng = np.random.default_rng(seed)
    d, V = 8, 5
    W = rng.normal(size=(V, d))
    dom, sub = mean_pooled_prompts(L, d, rng)
    gap = cross_entropy(W @ sub, 0) - cross_entropy(W @ dom, 0)
    lip = np.linalg.norm(W, 2)
    dist = np.linalg.norm(sub - dom) * L  # the distinct spans' distance, before pooling
    assert gap <= length_gap_bound(L, lip, dist) + 1e-12


# -- the solvable model's flip threshold, by sympy ----------------------------------------------------
@pytest.mark.parametrize("P,L,n,s", [(5, 5, 1, 1), (10, 3.5, 2, 2), (3, 2, 1, 1)])
def test_flip_threshold_is_a_stationary_point(P, L, n, s):
    assert all(abs(r) < 1e-40 for r in symbolic_flip_residuals(P, L, n, s))


# -- bad inputs -------------------------------------------------------------------------------------
def test_bad_inputs_name_the_limit():
    with pytest.raises(ValueError, match="out of range"):
        tempered_softmax_grad(np.zeros(3), 3, 1.0)
    with pytest.raises(ValueError, match="L must be >= 1"):
        tau_of_L(0.5)
    with pytest.raises(ValueError, match="m <= 16"):
        rademacher_linear_exact(np.zeros((17, 2)))
    with pytest.raises(ValueError, match="one sign per point"):
        linear_class_sup(np.zeros((3, 2)), np.ones(4))
    with pytest.raises(ValueError, match="delta"):
        generalization_bound(5, 5, delta=1.5)
    with pytest.raises(ValueError, match="unknown h"):
        mu_paper(5, "cubic")


# -- the chapter's exercises --------------------------------------------------------------------------
def test_exercise_references_pass_and_mistakes_are_named():
    from overshadow_lab.exercises import ExerciseFailure, get_exercise
    from overshadow_lab.exercises.generalization_bound import (
        check_lipschitz_mu,
        check_rademacher_estimate,
        check_tempered_softmax_grad,
    )

    for name in ("tempered_softmax_grad", "lipschitz_mu", "rademacher_estimate"):
        ex = get_exercise(name)
        assert ex.run(ex.reference).passed
        for mistake in ex.mistakes:
            result = ex.run(mistake.fn)
            assert not result.passed and mistake.hint in result.message, (name, mistake.hint)
    with pytest.raises(ExerciseFailure):
        check_tempered_softmax_grad(lambda f, y, tau: -tempered_softmax_grad(f, y, tau))
    with pytest.raises(ExerciseFailure):
        check_lipschitz_mu(lambda L, h, V, p_inf: 0.0)
    with pytest.raises(ExerciseFailure):
        check_rademacher_estimate(lambda X, sigmas, B: 0.0)


# -- the measurement helpers on a tiny lab model -----------------------------------------------------
def test_answer_nll_equals_a_plain_forward_pass_and_length_argument_runs():
    from overshadow_lab.lab.data import make_knowledge_sets
    from overshadow_lab.lab.models import make_model
    from overshadow_lab.theory.bound import answer_nll, length_argument

    sets = make_knowledge_sets(P=2, L=3, n_sets=4, seed=0)
    model = make_model("nano", vocab_size=sets.vocab_size, seed=0)
    sub = sets.subordinate
    got = answer_nll(model, sub.prompts, sub.overshadow_answers)
    with torch.no_grad():
        for i, (p, a) in enumerate(zip(sub.prompts, sub.overshadow_answers, strict=True)):
            logits = model(torch.tensor([p])).logits[0, -1]
            assert got[i] == pytest.approx(-torch.log_softmax(logits, -1)[a[0]].item(), rel=1e-5)
    with pytest.raises(ValueError, match="one answer per prompt"):
        answer_nll(model, sub.prompts, sub.answers[:-1])
    table = length_argument([2, 3], P=2, n_sets=4, size="nano", rule="epochs", epochs=1)
    assert list(table["L"]) == [2, 3] and (table["nll_Ya_sub"] > 0).all()
