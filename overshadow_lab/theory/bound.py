"""The generalization bound of the law paper (SPEC §5), term by term, and checks of every step.

The bound concerns the dominant set ``K_A`` (m statements, single-token answer, V answers):

    risk(f) <= empirical risk + 2 mu(L) Rad_m(F) + M sqrt(log(1/delta) / (2 m))

built from four pieces, each a function here:

* the **tempered-softmax loss** posited by the paper, ``-log( e^{f_y} / sum_{y'} e^{tau f_y'} )``
  with ``tau = 1 / h(L)`` (:func:`tempered_softmax_loss`), and its closed-form gradient
  (:func:`tempered_softmax_grad`), checked against sympy (:func:`symbolic_tempered_grad`) and
  torch.autograd in the tests;
* the **Lipschitz constant** of the loss in the logits: the exact gradient norm
  (:func:`grad_norm`), a sharp bound (:func:`mu_sharp`) and the paper's bound
  (:func:`mu_paper`), which holds for the reading where the target's own term is not tempered
  (``temper_target=False``) and fails for the literal formula;
* the **Rademacher complexity** of a norm-bounded linear score class on the synthetic bag-of-token
  features: exact by enumeration (:func:`rademacher_linear_exact`), Monte Carlo
  (:func:`rademacher_linear_mc`) and the closed-form bound ``B sqrt(sum |x_i|^2) / m``
  (:func:`rademacher_linear_bound`);
* the **confidence term** of McDiarmid's inequality, and their sum (:func:`generalization_bound`,
  :func:`bound_terms`).

Plus the length argument for mean-pooled models (:func:`length_gap_bound`): the loss of the false
answer on a subordinate prompt exceeds its loss on a dominant prompt by at most ``O(1/L)``; and
sympy checks of the solvable model's closed forms (:func:`symbolic_flip_residuals`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

Array = np.ndarray


# -- the length function h(L) ---------------------------------------------------------------------
def h_linear(L: float | Array) -> float | Array:
    """h(L) = L: the scale the mean-pooling lemma suggests (the subordinate prompt is O(1/L) away)."""
    return np.asarray(L, dtype=float) * 1.0


def h_log(L: float | Array) -> float | Array:
    """h(L) = 1 + log L: a slower increasing choice (h(1) = 1, no tempering without a shared span)."""
    return 1.0 + np.log(np.asarray(L, dtype=float))


H_FUNCTIONS: dict[str, Callable] = {"linear": h_linear, "log": h_log}


def _h(h: str | Callable) -> Callable:
    if callable(h):
        return h
    try:
        return H_FUNCTIONS[h]
    except KeyError:
        raise ValueError(
            f"unknown h {h!r}: use one of {', '.join(H_FUNCTIONS)} or a callable"
        ) from None


def tau_of_L(L: float, h: str | Callable = "linear") -> float:
    """The temperature factor tau = h^{-1}(L) = 1 / h(L) of the tempered softmax."""
    if L < 1:
        raise ValueError(f"L must be >= 1 (relative length), got {L}")
    value = float(_h(h)(L))
    if value <= 0:
        raise ValueError(f"h(L) must be positive, got h({L}) = {value}")
    return 1.0 / value


# -- the tempered-softmax loss and its gradient --------------------------------------------------
def _check_logits(f: Array, y: int) -> np.ndarray:
    f = np.asarray(f, dtype=float)
    if f.ndim != 1 or f.size < 2:
        raise ValueError(f"f must be a 1-D vector of at least 2 logits, got shape {f.shape}")
    if not 0 <= int(y) < f.size:
        raise ValueError(f"target y={y} is out of range for {f.size} logits")
    return f


def _tempered_logits(f: Array, y: int, tau: float, temper_target: bool) -> np.ndarray:
    g = tau * f
    if not temper_target:
        g = g.copy()
        g[y] = f[y]
    return g


def tempered_softmax_loss(f: Array, y: int, tau: float, temper_target: bool = True) -> float:
    """The paper's tempered next-token loss ``-f_y + log sum_{y'} exp(tau f_{y'})``.

    ``temper_target=True`` is the formula as printed (every term of the denominator tempered,
    the target's too); ``False`` keeps the target's own term untempered,
    ``-f_y + log(e^{f_y} + sum_{y' != y} e^{tau f_{y'}})``, the reading under which the paper's
    Lipschitz constant holds. ``tau = 1`` gives the ordinary cross-entropy either way.
    """
    f = _check_logits(f, y)
    g = _tempered_logits(f, y, tau, temper_target)
    gmax = g.max()
    return float(-f[y] + gmax + math.log(np.exp(g - gmax).sum()))


def tempered_softmax_grad(f: Array, y: int, tau: float, temper_target: bool = True) -> np.ndarray:
    """Closed-form gradient of :func:`tempered_softmax_loss` with respect to the logits ``f``.

    With ``q = softmax(g)`` of the tempered logits ``g``:
    ``d/df_{y'} = tau q_{y'}`` for ``y' != y``, and ``d/df_y = -1 + tau q_y`` (literal formula)
    or ``-1 + q_y`` (target untempered).
    """
    f = _check_logits(f, y)
    g = _tempered_logits(f, y, tau, temper_target)
    q = np.exp(g - g.max())
    q /= q.sum()
    grad = tau * q
    grad[y] = -1.0 + (tau if temper_target else 1.0) * q[y]
    return grad


def tempered_target_prob(f: Array, y: int, tau: float, temper_target: bool = True) -> float:
    """The target's share ``q_y`` of the tempered softmax's denominator."""
    f = _check_logits(f, y)
    g = _tempered_logits(f, y, tau, temper_target)
    q = np.exp(g - g.max())
    return float(q[y] / q.sum())


def grad_norm(f: Array, y: int, tau: float, temper_target: bool = True) -> float:
    """Euclidean norm of the loss gradient at ``f``: the local Lipschitz constant."""
    return float(np.linalg.norm(tempered_softmax_grad(f, y, tau, temper_target)))


def mu_sharp(q_y: float | Array, tau: float, temper_target: bool = True) -> float | Array:
    """The largest gradient norm at target share ``q_y`` (attained with two answers).

    ``|grad|^2 = (1 - c q_y)^2 + tau^2 sum_{y' != y} q_{y'}^2 <= (1 - c q_y)^2 + tau^2 (1 - q_y)^2``
    with ``c = tau`` (literal formula) or ``c = 1`` (target untempered).
    """
    q = np.asarray(q_y, dtype=float)
    c = tau if temper_target else 1.0
    return np.sqrt((1.0 - c * q) ** 2 + tau**2 * (1.0 - q) ** 2)


def mu_paper(L: float, h: str | Callable = "linear", V: int = 2, p_inf: float = 0.5) -> float:
    """The paper's Lipschitz constant ``sqrt(1 + (sum_{y' != y} h^{-1}(L))^2) (1 - p_inf)``.

    ``p_inf`` is the smallest target share the class can give on the data (the softmax at the
    infimum of the target score). Valid (if loose) for ``temper_target=False``; see
    :func:`mu_sharp` for the exact constant and the literal formula.
    """
    if V < 2:
        raise ValueError(f"V must be >= 2 answers, got {V}")
    if not 0 <= p_inf <= 1:
        raise ValueError(f"p_inf is a probability in [0, 1], got {p_inf}")
    tau = tau_of_L(L, h)
    return math.sqrt(1.0 + ((V - 1) * tau) ** 2) * (1.0 - p_inf)


# -- sympy: the symbolic derivation ---------------------------------------------------------------
def symbolic_tempered_loss(V: int, y: int = 0, temper_target: bool = True):
    """The tempered loss as a sympy expression: returns ``(loss, f_symbols, tau_symbol)``."""
    import sympy as sp

    f = sp.symbols(f"f0:{V}", real=True)
    tau = sp.Symbol("tau", positive=True)
    terms = [sp.exp(f[k] if (k == y and not temper_target) else tau * f[k]) for k in range(V)]
    return -f[y] + sp.log(sum(terms)), f, tau


def symbolic_tempered_grad(V: int, y: int = 0, temper_target: bool = True):
    """The gradient of the tempered loss derived by sympy (list of V expressions) and symbols."""
    import sympy as sp

    loss, f, tau = symbolic_tempered_loss(V, y, temper_target)
    return [sp.diff(loss, fk) for fk in f], f, tau


def symbolic_gradient_residual(V: int, y: int = 0, temper_target: bool = True) -> list:
    """sympy's derivative minus the closed form ``tau q_{y'}`` / ``-1 + c q_y``, simplified.

    Every entry is 0 when the closed form in the text is right.
    """
    import sympy as sp

    grads, f, tau = symbolic_tempered_grad(V, y, temper_target)
    g = [f[k] if (k == y and not temper_target) else tau * f[k] for k in range(V)]
    Z = sum(sp.exp(gk) for gk in g)
    q = [sp.exp(gk) / Z for gk in g]
    closed = [tau * q[k] for k in range(V)]
    closed[y] = -1 + (tau if temper_target else 1) * q[y]
    return [sp.simplify(d - c) for d, c in zip(grads, closed, strict=True)]


def symbolic_gradient_at(
    f: Array, y: int, tau: float, temper_target: bool = True, digits: int = 30
) -> np.ndarray:
    """sympy's derivative evaluated at a point with ``digits`` significant digits."""
    import sympy as sp

    f = _check_logits(f, y)
    grads, fs, t = symbolic_tempered_grad(f.size, y, temper_target)
    subs = {fs[k]: sp.Float(repr(float(f[k])), digits) for k in range(f.size)}
    subs[t] = sp.Float(repr(float(tau)), digits)
    return np.array([float(gk.evalf(digits, subs=subs)) for gk in grads])


def symbolic_norm_identity(V: int = 3, y: int = 0) -> object:
    """``|grad|^2 - [(1 - tau q_y)^2 + tau^2 sum_{y'!=y} q_{y'}^2]`` simplified (0 if right)."""
    import sympy as sp

    grads, f, tau = symbolic_tempered_grad(V, y, True)
    Z = sum(sp.exp(tau * fk) for fk in f)
    q = [sp.exp(tau * fk) / Z for fk in f]
    rhs = (1 - tau * q[y]) ** 2 + tau**2 * sum(q[k] ** 2 for k in range(V) if k != y)
    return sp.simplify(sum(gk**2 for gk in grads) - rhs)


# -- Rademacher complexity of a linear score class --------------------------------------------------
def dominant_features(m: int, L: float, pooling: str = "mean") -> np.ndarray:
    """Bag-of-token features of the m dominant prompts of one set (one token per distinct span).

    Each prompt holds ``L - 1`` shared tokens and one distinct token; features are token counts
    (``pooling="sum"``) or counts divided by the prompt length L (``"mean"``). Only inner products
    matter for a linear class, so the shared tokens are folded into one column of value
    ``sqrt(L - 1)`` (times 1/L for mean pooling), which also allows non-integer L.
    Shape ``(m, 1 + m)``.
    """
    if m < 1 or int(m) != m:
        raise ValueError(f"m must be a positive integer (dominant statements), got {m}")
    if L < 1:
        raise ValueError(f"L must be >= 1, got {L}")
    if pooling not in ("mean", "sum"):
        raise ValueError(f"pooling must be 'mean' or 'sum', got {pooling!r}")
    m = int(m)
    X = np.zeros((m, 1 + m))
    X[:, 0] = math.sqrt(L - 1)
    X[:, 1:] = np.eye(m)
    return X / L if pooling == "mean" else X


def linear_class_sup(X: Array, sigma: Array, B: float = 1.0) -> np.ndarray:
    """``sup_{|w| <= B} (1/m) sum_i sigma_i <w, x_i> = B |X^T sigma| / m`` (Cauchy-Schwarz).

    ``sigma`` has shape ``(m,)`` or ``(draws, m)``; returns one value per draw.
    """
    X = np.asarray(X, dtype=float)
    sigma = np.atleast_2d(np.asarray(sigma, dtype=float))
    if sigma.shape[1] != X.shape[0]:
        raise ValueError(
            f"sigma has {sigma.shape[1]} signs for {X.shape[0]} points; give one sign per point"
        )
    return B * np.linalg.norm(sigma @ X, axis=1) / X.shape[0]


def rademacher_linear_mc(
    X: Array, B: float = 1.0, n_draws: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Monte Carlo estimate of the empirical Rademacher complexity of ``{x -> <w,x> : |w| <= B}``.

    Returns ``(estimate, standard error)``: the mean over ``n_draws`` random sign vectors of the
    supremum, which has a closed form for this class (:func:`linear_class_sup`).
    """
    if n_draws < 2:
        raise ValueError(f"n_draws must be >= 2 to have a standard error, got {n_draws}")
    rng = np.random.default_rng(seed)
    sigma = rng.choice([-1.0, 1.0], size=(n_draws, np.asarray(X).shape[0]))
    sups = linear_class_sup(X, sigma, B)
    return float(sups.mean()), float(sups.std(ddof=1) / math.sqrt(n_draws))


def rademacher_linear_exact(X: Array, B: float = 1.0) -> float:
    """The exact empirical Rademacher complexity by enumerating all 2^m sign vectors (m <= 16)."""
    m = np.asarray(X).shape[0]
    if m > 16:
        raise ValueError(
            f"exact enumeration needs m <= 16 (2^m sign vectors), got m={m}; use rademacher_linear_mc"
        )
    sigma = np.array(list(itertools.product([-1.0, 1.0], repeat=m)))
    return float(linear_class_sup(X, sigma, B).mean())


def rademacher_linear_bound(X: Array, B: float = 1.0) -> float:
    """The closed-form upper bound ``B sqrt(sum_i |x_i|^2) / m`` (Jensen's inequality)."""
    X = np.asarray(X, dtype=float)
    return float(B * math.sqrt(float((X**2).sum())) / X.shape[0])


def rademacher_dominant(m: int, L: float, B: float = 1.0, pooling: str = "mean") -> float:
    """Closed-form bound on the linear class's Rademacher complexity on one dominant set.

    ``B / sqrt(m L)`` for mean pooling (each prompt has norm 1/sqrt(L)), ``B sqrt(L / m)`` for
    sum pooling.
    """
    if m <= 0 or L < 1:
        raise ValueError(f"need m > 0 and L >= 1, got m={m}, L={L}")
    return B / math.sqrt(m * L) if pooling == "mean" else B * math.sqrt(L / m)


# -- the bound ------------------------------------------------------------------------------------
def logit_bound(L: float, B: float = 1.0, pooling: str = "mean") -> float:
    """The largest absolute logit of the class on a prompt: ``B |x|``, with ``|x| = 1/sqrt(L)`` (mean)."""
    return B / math.sqrt(L) if pooling == "mean" else B * math.sqrt(L)


def generalization_bound(
    m: float,
    L: float,
    V: int = 2,
    h: str | Callable = "linear",
    B: float = 1.0,
    delta: float = 0.05,
    empirical_risk: float = 0.0,
    pooling: str = "mean",
    contraction: str = "paper",
) -> dict:
    """The bound of SPEC §5, term by term, for a linear score class on one dominant set.

    Scores ``f_k(x) = <w_k, x>`` with ``|w_k| <= B``, so every logit lies in ``[-C, C]`` with
    ``C = B |x|`` (:func:`logit_bound`). The loss is the tempered softmax with ``tau = 1/h(L)``
    and the untempered target term (the reading under which the paper's constant holds); it then
    lies in ``[0, M]`` with ``M = log(1 + (V-1) e^{(1+tau) C})``. Terms:

    * ``mu``: :func:`mu_paper` with ``p_inf`` the smallest target share the class allows;
    * ``rademacher``: :func:`rademacher_dominant`;
    * ``complexity = 2 mu Rad`` (``contraction="paper"``, the scalar contraction lemma applied as
      the paper does) or ``2 sqrt(2) mu V Rad`` (``"maurer"``, the vector-contraction inequality
      that a vector-valued score needs);
    * ``confidence = M sqrt(log(1/delta) / (2m))``;
    * ``bound = empirical_risk + complexity + confidence``.
    """
    if m <= 0:
        raise ValueError(f"m must be positive (dominant statements), got {m}")
    if not 0 < delta < 1:
        raise ValueError(f"delta is a failure probability in (0, 1), got {delta}")
    if contraction not in ("paper", "maurer"):
        raise ValueError(f"contraction must be 'paper' or 'maurer', got {contraction!r}")
    tau = tau_of_L(L, h)
    C = logit_bound(L, B, pooling)
    p_inf = math.exp(-C) / (math.exp(-C) + (V - 1) * math.exp(tau * C))
    mu = mu_paper(L, h, V, p_inf)
    rad = rademacher_dominant(m, L, B, pooling)
    factor = 2.0 if contraction == "paper" else 2.0 * math.sqrt(2.0) * V
    M = math.log1p((V - 1) * math.exp((1.0 + tau) * C))
    complexity = factor * mu * rad
    confidence = M * math.sqrt(math.log(1.0 / delta) / (2.0 * m))
    return {
        "m": m,
        "L": L,
        "tau": tau,
        "p_inf": p_inf,
        "mu": mu,
        "rademacher": rad,
        "loss_range": M,
        "empirical_risk": empirical_risk,
        "complexity": complexity,
        "confidence": confidence,
        "bound": empirical_risk + complexity + confidence,
    }


def bound_terms(factor: str, values: Sequence[float], **fixed) -> pd.DataFrame:
    """:func:`generalization_bound` along ``factor`` ("m" or "L"), one row per value."""
    if factor not in ("m", "L"):
        raise ValueError(f"factor must be 'm' (popularity) or 'L' (length), got {factor!r}")
    base = {"m": 5, "L": 5, **fixed}
    rows = []
    for value in values:
        row = generalization_bound(**{**base, factor: value})
        rows.append({"factor": factor, **row})
    return pd.DataFrame(rows)


# -- the length argument --------------------------------------------------------------------------
def cross_entropy(z: Array, y: int) -> float:
    """Ordinary cross-entropy ``-z_y + logsumexp(z)``."""
    z = np.asarray(z, dtype=float)
    zmax = z.max()
    return float(-z[y] + zmax + math.log(np.exp(z - zmax).sum()))


def length_gap_bound(L: float, lipschitz: float, span_distance: float = math.sqrt(2)) -> float:
    """Upper bound on ``CE(f(sub), Y_a) - CE(f(dom), Y_a)`` for a mean-pooled model.

    A mean-pooled prompt representation puts weight ``1/L`` on the distinct span, so a subordinate
    and a dominant prompt that share ``X_share`` are ``span_distance / L`` apart; a score map with
    Lipschitz constant ``lipschitz`` (l2 -> l2) moves the logits by at most that times
    ``lipschitz``; cross-entropy is 2-Lipschitz in the logits under the max norm, hence
    ``gap <= 2 lipschitz span_distance / L``. ``span_distance = sqrt(2)`` for two different
    one-hot tokens.
    """
    if L < 1:
        raise ValueError(f"L must be >= 1, got {L}")
    return 2.0 * lipschitz * span_distance / L


def mean_pooled_prompts(L: int, d: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random mean-pooled embeddings of a dominant and a subordinate prompt sharing L-1 tokens."""
    shared = rng.normal(size=(max(L - 1, 0), d))
    x_a, x_b = rng.normal(size=d), rng.normal(size=d)
    total = shared.sum(axis=0) if L > 1 else np.zeros(d)
    return (total + x_a) / L, (total + x_b) / L


def answer_nll(
    model, prompts: Sequence[Sequence[int]], answers: Sequence[Sequence[int]]
) -> np.ndarray:
    """``-log p(first answer token | prompt)`` under a causal LM, one value per prompt (nats).

    Prompts are grouped by length, so no padding is needed; the model is run in eval mode
    without gradients.
    """
    import torch

    if len(prompts) != len(answers):
        raise ValueError(
            f"{len(prompts)} prompts but {len(answers)} answers: give one answer per prompt"
        )
    device = next(model.parameters()).device
    out = np.empty(len(prompts))
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(len(p), []).append(i)
    model.eval()
    with torch.no_grad():
        for idx in groups.values():
            ids = torch.tensor([list(prompts[i]) for i in idx], device=device)
            logp = torch.log_softmax(model(ids).logits[:, -1].float(), dim=-1)
            target = torch.tensor([answers[i][0] for i in idx], device=device)
            out[idx] = -logp[torch.arange(len(idx), device=device), target].cpu().numpy()
    return out


def length_argument(
    L_values: Sequence[float],
    seeds: Sequence[int] = (0,),
    P: float = 5,
    n_sets: int = 30,
    size: str = "tiny",
    **train_overrides,
) -> pd.DataFrame:
    """Train a small model of the lab per (L, seed) and measure the loss on the false answer.

    For every subordinate prompt ``X_share ⊙ x_b`` the table reports the mean over sets of
    ``nll_Ya_sub = -log p(Y_a | sub)`` (the false, dominant answer), ``nll_Yb_sub`` (the true
    one) and, for reference, ``nll_Ya_dom`` on the dominant prompts; plus the lab's RR and HR,
    the training steps and seconds. ``train_overrides`` go to :func:`overshadow_lab.lab.train.train_model`.
    """
    # Deferred on purpose, the one such place here: the lab brings torch and transformers, which
    # the bound's own algebra (numpy, sympy) does not need.
    from overshadow_lab.lab.data import make_knowledge_sets
    from overshadow_lab.lab.models import make_model
    from overshadow_lab.lab.train import train_model
    from overshadow_lab.metrics import evaluate

    options = {"progress": False, **train_overrides}
    rows = []
    for L in L_values:
        for seed in seeds:
            sets = make_knowledge_sets(P=P, L=L, n_sets=n_sets, seed=seed)
            model = make_model(size, vocab_size=sets.vocab_size, seed=seed)
            result = train_model(model, sets, seed=seed, **options)
            sub, dom = sets.subordinate, sets.dominant
            rates = evaluate(result.model, sets, n_boot=200, seed=seed)
            rows.append(
                {
                    "L": L,
                    "seed": seed,
                    "steps": result.steps,
                    "seconds": result.seconds,
                    "nll_Ya_sub": float(
                        answer_nll(result.model, sub.prompts, sub.overshadow_answers).mean()
                    ),
                    "nll_Yb_sub": float(answer_nll(result.model, sub.prompts, sub.answers).mean()),
                    "nll_Ya_dom": float(answer_nll(result.model, dom.prompts, dom.answers).mean()),
                    "RR": rates["RR"],
                    "HR": rates["HR"],
                }
            )
    return pd.DataFrame(rows)


# -- sympy: the solvable model's flip threshold ------------------------------------------------------
def symbolic_flip_residuals(
    P: float, L: float, n: int = 1, span_len: int = 1, digits: int = 50
) -> list[float]:
    """Stationarity of the two-answer solvable model at the closed-form flip point, by sympy.

    Writes the reduced objective in logit differences,
    ``J = (m/N) log(1+e^{-(V+A)}) + (n/N) log(1+e^{V+B}) + (lam/4)(V^2/((L-1)s) + m A^2/s + n B^2/s)``,
    differentiates it symbolically, and evaluates the three partial derivatives at
    ``V = c/2, B = -c/2, A = c q, lam = 2 s / (N c)`` with ``q = (n + 1/(L-1)) / (2m)`` and
    ``c = log((1-q)/q) / (1/2 + q)``. All three are 0 (to ``digits`` digits) when the closed form of
    :func:`overshadow_lab.theory.solvable.flip_threshold` is right.
    """
    import sympy as sp

    Vs, As, Bs, lam = sp.symbols("V A B lam", real=True)
    m = sp.nsimplify(P) * n
    N = m + n
    Lr, s = sp.nsimplify(L), sp.Integer(span_len)
    J = (
        (m / N) * sp.log(1 + sp.exp(-(Vs + As)))
        + (n / N) * sp.log(1 + sp.exp(Vs + Bs))
        + (lam / 4) * (Vs**2 / ((Lr - 1) * s) + m * As**2 / s + n * Bs**2 / s)
    )
    q = (n + 1 / (Lr - 1)) / (2 * m)
    c = sp.log((1 - q) / q) / (sp.Rational(1, 2) + q)
    point = {Vs: c / 2, Bs: -c / 2, As: c * q, lam: 2 * s / (N * c)}
    return [float(sp.diff(J, var).subs(point).evalf(digits)) for var in (Vs, As, Bs)]


__all__ = [
    "answer_nll",
    "length_argument",
    "H_FUNCTIONS",
    "bound_terms",
    "cross_entropy",
    "dominant_features",
    "generalization_bound",
    "grad_norm",
    "h_linear",
    "h_log",
    "length_gap_bound",
    "linear_class_sup",
    "logit_bound",
    "mean_pooled_prompts",
    "mu_paper",
    "mu_sharp",
    "rademacher_dominant",
    "rademacher_linear_bound",
    "rademacher_linear_exact",
    "rademacher_linear_mc",
    "symbolic_flip_residuals",
    "symbolic_gradient_at",
    "symbolic_gradient_residual",
    "symbolic_norm_identity",
    "symbolic_tempered_grad",
    "symbolic_tempered_loss",
    "tau_of_L",
    "tempered_softmax_grad",
    "tempered_softmax_loss",
    "tempered_target_prob",
]
