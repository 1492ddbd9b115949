"""Exercises of the chapter "Generalization bound"."""

from __future__ import annotations

import math

import numpy as np

from overshadow_lab.exercises.framework import Case, Exercise, Mistake, register
from overshadow_lab.theory.bound import (
    dominant_features,
    h_linear,
    h_log,
    mu_paper,
    tempered_softmax_grad,
)
from overshadow_lab.theory.solvable import solve


# -- 1. the gradient of the tempered loss ---------------------------------------------------------
def _grad_reference(f, y, tau):
    return tempered_softmax_grad(np.asarray(f, dtype=float), y, tau, temper_target=True)


def _softmax(z):
    e = np.exp(z - np.max(z))
    return e / e.sum()


def _grad_untempered_target(f, y, tau):
    q = _softmax(tau * np.asarray(f, float))
    g = tau * q
    g[y] = -1 + q[y]
    return g


def _grad_no_chain_factor(f, y, tau):
    q = _softmax(tau * np.asarray(f, float))
    return q - np.eye(len(q))[y]


def _grad_plain_softmax(f, y, tau):
    q = _softmax(np.asarray(f, float))
    g = tau * q
    g[y] = -1 + tau * q[y]
    return g


def _grad_cases():
    rng = np.random.default_rng(11)
    cases = [
        Case((np.array([2.0, -1.0]), 0, 0.5), label="two answers"),
        Case((np.array([0.5, 1.5, -2.0]), 2, 1.0), label="tau = 1: ordinary cross-entropy"),
    ]
    for V, tau in [(3, 0.2), (5, 0.7), (4, 2.0)]:
        f = rng.normal(scale=2.0, size=V)
        cases.append(Case((f, int(rng.integers(V)), tau), label=f"random logits, V={V}"))
    cases.append(
        Case((np.zeros(3), 3, 0.5), label="edge case: target out of range", raises=ValueError)
    )
    return cases


check_tempered_softmax_grad = register(
    Exercise(
        name="tempered_softmax_grad",
        chapter="generalization_bound",
        reference=_grad_reference,
        description="Gradient of -f_y + log sum_y' exp(tau f_y') with respect to the logits f.",
        cases=_grad_cases,
        mistakes=[
            Mistake(
                lambda f, y, tau: -_grad_reference(f, y, tau),
                "the sign is flipped: the loss falls as f_y grows, so d/df_y must be negative",
            ),
            Mistake(
                _grad_untempered_target,
                "the target's own term in the denominator is tempered too: d/df_y = -1 + tau q_y",
            ),
            Mistake(
                _grad_no_chain_factor,
                "chain rule: each tempered logit tau f_y' brings a factor tau into its derivative",
            ),
            Mistake(
                _grad_plain_softmax,
                "the softmax inside the gradient is of the tempered logits tau f, not of f",
            ),
        ],
    )
)


# -- 2. the paper's Lipschitz constant --------------------------------------------------------------
def _mu_reference(L, h, V, p_inf):
    return mu_paper(L, h, V, p_inf)


check_lipschitz_mu = register(
    Exercise(
        name="lipschitz_mu",
        chapter="generalization_bound",
        reference=_mu_reference,
        description="mu = sqrt(1 + ((V-1)/h(L))^2) (1 - p_inf) for a length function h.",
        cases=[
            Case((5.0, h_linear, 2, 0.5), label="L = 5, h(L) = L, two answers"),
            Case((10.0, h_log, 5, 0.1), label="h(L) = 1 + log L"),
            Case((1.0, h_linear, 3, 0.0), label="no shared span (L = 1)"),
            Case((50.0, h_linear, 1000, 0.3), label="large vocabulary"),
            Case((5.0, h_linear, 2, 1.5), label="edge case: p_inf above 1", raises=ValueError),
        ],
        mistakes=[
            Mistake(
                lambda L, h, V, p: math.sqrt(1 + ((V - 1) * h(L)) ** 2) * (1 - p),
                "the temperature is h^{-1}(L) = 1 / h(L), not h(L)",
            ),
            Mistake(
                lambda L, h, V, p: math.sqrt(1 + (V / h(L)) ** 2) * (1 - p),
                "the sum runs over the V - 1 answers y' != y, not all V",
            ),
            Mistake(
                lambda L, h, V, p: math.sqrt(1 + (V - 1) / h(L) ** 2) * (1 - p),
                "square the sum, not each term: (sum_{y'!=y} 1/h(L))^2 = ((V-1)/h(L))^2",
            ),
            Mistake(
                lambda L, h, V, p: math.sqrt(1 + ((V - 1) / h(L)) ** 2),
                "the gradient vanishes as the target share grows: multiply by (1 - p_inf)",
            ),
        ],
    )
)


# -- 3. a Monte Carlo Rademacher estimate -----------------------------------------------------------
def _rademacher_reference(X, sigmas, B):
    X, sigmas = np.asarray(X, float), np.asarray(sigmas, float)
    return float(np.mean(B * np.linalg.norm(sigmas @ X, axis=1) / X.shape[0]))


def _rademacher_cases():
    rng = np.random.default_rng(5)
    cases = []
    for m, L, B in [(5, 5.0, 1.0), (10, 2.0, 3.0), (20, 50.0, 0.5)]:
        X = dominant_features(m, L)
        sigmas = rng.choice([-1.0, 1.0], size=(200, m))
        cases.append(Case((X, sigmas, B), label=f"dominant set, m={m}, L={L:g}, B={B:g}"))
    X = rng.normal(size=(8, 3))
    cases.append(Case((X, rng.choice([-1.0, 1.0], size=(100, 8)), 2.0), label="Gaussian points"))
    return cases


check_rademacher_estimate = register(
    Exercise(
        name="rademacher_estimate",
        chapter="generalization_bound",
        reference=_rademacher_reference,
        description="Mean over sign draws of sup_{|w|<=B} (1/m) sum_i sigma_i <w, x_i>.",
        cases=_rademacher_cases,
        mistakes=[
            Mistake(
                lambda X, s, B: float(
                    np.mean(B * np.linalg.norm(np.asarray(s) @ np.asarray(X), axis=1))
                ),
                "the complexity is an average over the m points: divide by m",
            ),
            Mistake(
                lambda X, s, B: float(
                    np.mean(B * np.linalg.norm(np.asarray(s) @ np.asarray(X), axis=1) ** 2)
                    / np.asarray(X).shape[0]
                ),
                "the supremum of <w, v> over |w| <= B is B |v|, the norm, not its square",
            ),
            Mistake(
                lambda X, s, B: float(
                    np.mean(B * np.linalg.norm(np.asarray(s) @ np.asarray(X), axis=1))
                    / math.sqrt(np.asarray(X).shape[0])
                ),
                "divide by m, not sqrt(m): the 1/sqrt(m) rate comes out of the norm of the sum",
            ),
            Mistake(
                lambda X, s, B: float(
                    np.linalg.norm(np.mean(np.asarray(s), axis=0) @ np.asarray(X))
                    * B
                    / np.asarray(X).shape[0]
                ),
                "take the supremum for each sign draw, then average: not the sup of the averaged signs",
            ),
        ],
    )
)


# -- 4. an experiment: predict, then measure, the effect of weight decay ---------------------------
def _weight_decay_reference(P, L, lam_low, lam_high):
    """The solvable model at two weight decays: sign of the change of the subordinate margin
    (logit of Y_a minus logit of Y_b on a subordinate prompt) and whether the greedy answer
    changes between them."""
    if not 0 < lam_low < lam_high:
        raise ValueError("weight decays must satisfy 0 < lam_low < lam_high")
    low, high = solve(P=P, L=L, lam=lam_low), solve(P=P, L=L, lam=lam_high)
    change = high.margin_sub - low.margin_sub
    return {"sign": int(np.sign(change)), "flips": bool(low.HR != high.HR)}


def _weight_decay_hr_only(P, L, lam_low, lam_high):
    low, high = solve(P=P, L=L, lam=lam_low), solve(P=P, L=L, lam=lam_high)
    return {"sign": int(np.sign(high.HR - low.HR)), "flips": bool(low.HR != high.HR)}


check_weight_decay_effect = register(
    Exercise(
        name="weight_decay_effect",
        chapter="generalization_bound",
        reference=_weight_decay_reference,
        description="Solvable model: sign of the change of the subordinate margin between two "
        "weight decays, and whether the greedy answer flips.",
        cases=[
            Case((5.0, 5.0, 0.01, 1.0), label="P = L = 5, across the threshold"),
            Case((5.0, 5.0, 0.001, 0.01), label="P = L = 5, both below the threshold"),
            Case((5.0, 5.0, 10.0, 100.0), label="P = L = 5, both far above the threshold"),
            Case((1.5, 2.0, 0.01, 1.0), label="(L-1)(m-n) <= 1: no weight decay flips it"),
            Case((50.0, 25.0, 0.001, 0.01), label="very popular, long shared span"),
            Case(
                (5.0, 5.0, 0.1, 0.01),
                label="edge case: decays in the wrong order",
                raises=ValueError,
            ),
        ],
        mistakes=[
            Mistake(
                _weight_decay_hr_only,
                "the sign is that of the change in the margin, not of the greedy indicator: "
                "the margin moves even when the greedy answer does not",
            ),
        ],
    )
)
